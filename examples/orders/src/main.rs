//! The LiveCheck tutorial: a stock ordering system (`worker`), the LiveCheck instance that tests it
//! (`livecheck`), a client (`post-order`), all of it in one process (`demo`), and a fault-injection run of it
//! (`chaos`).
//!
//! ```text
//! orders worker -l info          # terminal 1: web server on :6066 and the order agents
//! orders livecheck -l info       # terminal 2: runs test_order, fake order every 0.5 s; dashboard on :9999
//! orders post-order --side=sell  # terminal 3 (or open http://localhost:6066/order/init/sell/)
//! ```
//!
//! With `LIVECHECK_SIGNING_SECRET` set (the same value for `worker` and `livecheck`), test context is signed and
//! requests that claim to be tests without the signature are handled as ordinary orders.

mod cache;
mod chaos;
mod order;
mod test_order;
mod worker;

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use livecheck::{transport, LiveCheck, LiveCheckBuilder};

#[derive(Parser)]
#[command(version, about = "The LiveCheck tutorial: a stock ordering system and its live tests")]
struct Cli {
    /// Log level (error, warn, info, debug, trace, off), or directives like `warn,livecheck=debug`.
    #[arg(short = 'l', long, default_value = "info", global = true, value_parser = log_filter)]
    loglevel: String,
    /// Broker URL: sqlite://PATH (default sqlite://livecheck-data/livecheck.sqlite3), kafka://HOST:PORT or memory://.
    #[arg(long, env = "LIVECHECK_BROKER", global = true)]
    broker: Option<String>,
    /// The orders cache: redis://HOST:PORT, or (default) a table on the broker.
    #[arg(long, global = true)]
    cache: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The ordering system: web server and agents.
    Worker {
        #[arg(long, default_value_t = 6066)]
        port: u16,
        /// Break a stage on purpose: do not send this signal.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(test_order::SIGNALS))]
        skip_signal: Option<String>,
        /// Break a stage on purpose: store orders with the opposite side.
        #[arg(long)]
        flip_side: bool,
        #[command(flatten)]
        tuning: test_order::Tuning,
    },
    /// The LiveCheck instance running test_order.
    Livecheck {
        /// Where the worker is, for fake requests.
        #[arg(long, default_value = "http://localhost:6066")]
        base_url: String,
        /// Port of the instance's web server on 127.0.0.1: dashboard, JSON API, /healthz and /metrics.
        #[arg(long, default_value_t = 9999)]
        port: u16,
        #[command(flatten)]
        tuning: test_order::Tuning,
    },
    /// Places one order.
    PostOrder {
        #[arg(long)]
        side: String,
        #[arg(long, default_value = "http://localhost:6066")]
        base_url: String,
    },
    /// Worker, LiveCheck instance and an order every second, in one process.
    Demo {
        #[arg(long, default_value_t = 6066)]
        port: u16,
        /// Port of the LiveCheck instance's web server on 127.0.0.1: dashboard, JSON API, /healthz and /metrics.
        #[arg(long, default_value_t = 9999)]
        web_port: u16,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Fault injection: checks that every execution gets one PASS report while instances are killed.
    ///
    /// Worker and LiveCheck instances as separate processes, on a fresh log in a temporary directory (or
    /// `--broker`), under load while instances are killed, restarted, added and removed; then counts the
    /// executions lost, duplicated and wrong. Exit status 1 if there are any.
    Chaos(chaos::ChaosArgs),
}

/// The app on the broker; its builder reads `LIVECHECK_SIGNING_SECRET` (and `_PREVIOUS`) to sign test context.
fn app(broker: Option<&str>) -> anyhow::Result<LiveCheck> {
    Ok(builder(broker)?.build())
}

/// The LiveCheck instance's app on the broker, with its web server on 127.0.0.1:`port`.
fn instance_app(broker: Option<&str>, port: u16) -> anyhow::Result<LiveCheck> {
    Ok(builder(broker)?.web_address(format!("127.0.0.1:{port}")).build())
}

fn builder(broker: Option<&str>) -> anyhow::Result<LiveCheckBuilder> {
    Ok(LiveCheck::builder().shared_transport(transport::from_env(broker)?))
}

/// Waits `seconds` (forever if `None`), or until the process is interrupted.
async fn until_stopped(seconds: Option<u64>) {
    match seconds {
        Some(seconds) => {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(seconds)) => {}
                () = until_interrupted() => {}
            }
        }
        None => until_interrupted().await,
    }
}

/// Waits for Ctrl-C (SIGINT) or, on unix, SIGTERM: both stop the process gracefully. Returns at once if they
/// cannot be watched.
async fn until_interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Starts the LiveCheck instance (and its web server): the case gets the cache table and the worker's URL.
async fn start_livecheck(
    app: &LiveCheck,
    base_url: String,
    tuning: &test_order::Tuning,
    cache_url: Option<&str>,
) -> anyhow::Result<livecheck::Running> {
    let cache = cache::Cache::open(app, cache_url).await?;
    test_order::register(app, Some(cache), Some(base_url), tuning)?;
    Ok(app.start().await?)
}

/// A log level, or comma-separated directives `LEVEL` / `TARGET=LEVEL`; anything else is an error (an unknown
/// word would otherwise be taken for a target name and silence everything).
fn log_filter(text: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let is_level = |level: &str| LEVELS.contains(&level.to_ascii_lowercase().as_str());
    for directive in text.split(',') {
        let level =
            directive.rsplit_once('=').map_or(directive, |(target, level)| if target.is_empty() { "" } else { level });
        if !is_level(level) {
            return Err(format!("`{directive}` is not a log level ({}) or TARGET=LEVEL", LEVELS.join(", ")));
        }
    }
    Ok(text.to_owned())
}

async fn post_order(base_url: &str, side: &str) -> anyhow::Result<String> {
    let response = reqwest::get(format!("{base_url}/order/init/{side}/")).await?;
    let status = response.status();
    let body = response.text().await?;
    anyhow::ensure!(status.is_success(), "HTTP {status}: {body}");
    Ok(body)
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(cli.loglevel.as_str())
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let broker = cli.broker.as_deref();
    let cache_url = cli.cache.as_deref();
    match cli.command {
        Command::Worker { port, skip_signal, flip_side, tuning } => {
            let app = app(broker)?;
            let case = test_order::register(&app, None, None, &tuning)?;
            let cache = cache::Cache::open(&app, cache_url).await?;
            let breakage = worker::Breakage { skip_signal, flip_side };
            let running = worker::start(&app, case, port, breakage, cache).await?;
            until_stopped(None).await;
            running.stop().await;
        }
        Command::Livecheck { base_url, port, tuning } => {
            let app = instance_app(broker, port)?;
            let running = start_livecheck(&app, base_url, &tuning, cache_url).await?;
            until_stopped(None).await;
            running.shutdown().await;
        }
        Command::PostOrder { side, base_url } => {
            println!("{}", post_order(&base_url, &side).await?)
        }
        Command::Demo { port, web_port, seconds } => {
            let worker_app = app(broker)?;
            let tuning = test_order::Tuning::default();
            let case = test_order::register(&worker_app, None, None, &tuning)?;
            let cache = cache::Cache::open(&worker_app, cache_url).await?;
            let worker = worker::start(&worker_app, case, port, worker::Breakage::default(), cache).await?;
            let livecheck_app = instance_app(broker, web_port)?;
            let base = format!("http://127.0.0.1:{port}");
            let livecheck = start_livecheck(&livecheck_app, base, &tuning, cache_url).await?;
            let base_url = format!("http://127.0.0.1:{port}");
            let orders = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let side = if fastrand::bool() { "buy" } else { "sell" };
                    if let Err(error) = post_order(&base_url, side).await {
                        tracing::warn!(%error, "posting an order failed");
                    }
                }
            });
            until_stopped(seconds).await;
            orders.abort();
            livecheck.shutdown().await;
            worker.stop().await;
        }
        Command::Chaos(args) => {
            if !chaos::run(args, broker, cache_url).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
