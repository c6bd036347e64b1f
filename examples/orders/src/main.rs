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
mod limits;
mod logs;
mod order;
mod test_order;
mod worker;

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use livecheck::{transport, LiveCheck, LiveCheckBuilder, SignalSet};

#[derive(Parser)]
#[command(version, about = "The LiveCheck tutorial: a stock ordering system and its live tests")]
struct Cli {
    /// Log level (error, warn, info, debug, trace, off), or directives like `warn,livecheck=debug`.
    #[arg(short = 'l', long, default_value = "info", global = true, value_parser = log_filter)]
    loglevel: String,
    /// Log lines as text, or as JSON objects (one per line, with fields such as case, test, state and runtime).
    #[arg(long, value_enum, default_value_t = logs::LogFormat::Text, global = true)]
    log_format: logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// Where the processes meet: the broker, and the orders cache.
#[derive(clap::Args)]
struct Backend {
    /// Broker URL: sqlite://PATH (default sqlite://livecheck-data/livecheck.sqlite3), kafka://HOST:PORT or memory://.
    #[arg(long, env = "LIVECHECK_BROKER")]
    broker: Option<String>,
    /// The orders cache: redis://HOST:PORT, or (default) a table on the broker.
    #[arg(long)]
    cache: Option<String>,
}

/// HTTPS for the instance's web server.
#[derive(clap::Args)]
struct WebTls {
    /// Serve the web server over HTTPS with this PEM certificate chain (needs --web-tls-key).
    #[arg(long, value_name = "PEM", env = livecheck::web::WEB_TLS_CERT_ENV, requires = "web_tls_key")]
    web_tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --web-tls-cert.
    #[arg(long, value_name = "PEM", env = livecheck::web::WEB_TLS_KEY_ENV, requires = "web_tls_cert")]
    web_tls_key: Option<std::path::PathBuf>,
}

impl WebTls {
    fn apply(self, builder: LiveCheckBuilder) -> LiveCheckBuilder {
        match (self.web_tls_cert, self.web_tls_key) {
            (Some(cert), Some(key)) => builder.web_tls(cert, key),
            _ => builder,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// The ordering system: web server and agents.
    Worker {
        /// Port of the ordering system's web server.
        #[arg(long, default_value_t = 6066)]
        port: u16,
        /// Break a stage on purpose: do not send this signal.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(test_order::OrderSignals::NAMES))]
        skip_signal: Option<String>,
        /// Break a stage on purpose: store orders with the opposite side.
        #[arg(long)]
        flip_side: bool,
        /// Break the contract for a fraction of orders: this share (0 to 1) of the orders this worker starts is
        /// taken with the opposite side (deterministically: ⌊n·F⌋ of the first n).
        #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = test_order::probability)]
        flip_side_fraction: f64,
        /// Slow a stage down on purpose: wait MS milliseconds before sending SIGNAL, wherever this worker handles
        /// that stage.
        #[arg(long, value_name = "SIGNAL:MS", value_parser = delay_stage)]
        delay_stage: Option<(String, Duration)>,
        /// This worker's version (default: LIVECHECK_SERVICE_VERSION): on the tests it samples and the signals
        /// it sends, so that LiveCheck counts results per version and can gate a canary.
        #[arg(long, value_name = "VERSION")]
        service_version: Option<String>,
        #[command(flatten)]
        tuning: test_order::WorkerTuning,
        #[command(flatten)]
        backend: Backend,
    },
    /// The LiveCheck instance running test_order.
    Livecheck {
        /// Where the worker is, for fake requests.
        #[arg(long, default_value = "http://localhost:6066")]
        base_url: String,
        /// Port of the instance's web server on 127.0.0.1: dashboard, JSON API, /healthz and /metrics.
        #[arg(long, default_value_t = 9999)]
        port: u16,
        /// Seconds a stopping instance (Ctrl-C, SIGTERM) still tries to publish the reports, suite reports and
        /// alerts under way (a full disk, a broker away) before it gives them up, logs what was lost and exits.
        #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = shutdown_timeout)]
        shutdown_timeout: f64,
        /// Webhooks told of suite failures and recoveries, comma-separated: https://… (LiveCheck's JSON),
        /// https://hooks.slack.com/… or slack+https://…, https://events.pagerduty.com/v2/enqueue?routing_key=KEY,
        /// alertmanager+http://HOST:9093.
        #[arg(long = "alert-webhook", value_name = "URL", env = "LIVECHECK_ALERT_WEBHOOKS", value_delimiter = ',')]
        alert_webhooks: Vec<String>,
        /// Secret the alerts are signed with (LiveCheck-Webhook-Signature).
        #[arg(long, value_name = "SECRET", env = "LIVECHECK_ALERT_WEBHOOK_SECRET", hide_env_values = true)]
        alert_webhook_secret: Option<String>,
        #[command(flatten)]
        tls: WebTls,
        #[command(flatten)]
        tuning: test_order::InstanceTuning,
        #[command(flatten)]
        limits: limits::MemoryLimits,
        #[command(flatten)]
        backend: Backend,
    },
    /// Places one order.
    PostOrder {
        /// buy or sell.
        #[arg(long)]
        side: String,
        /// Where the worker is.
        #[arg(long, default_value = "http://localhost:6066")]
        base_url: String,
    },
    /// Worker, LiveCheck instance and an order every second, in one process.
    Demo {
        /// Port of the ordering system's web server.
        #[arg(long, default_value_t = 6066)]
        port: u16,
        /// Port of the LiveCheck instance's web server on 127.0.0.1: dashboard, JSON API, /healthz and /metrics.
        #[arg(long, default_value_t = 9999)]
        web_port: u16,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
        #[command(flatten)]
        backend: Backend,
    },
    /// Fault injection: checks that every execution gets one PASS report while instances are killed.
    ///
    /// Worker and LiveCheck instances as separate processes, on a fresh log in a temporary directory (or
    /// `--broker`), under load while instances are killed, restarted, added and removed; then counts the
    /// executions lost, duplicated and wrong. Exit status 1 if there are any.
    Chaos {
        #[command(flatten)]
        args: chaos::ChaosArgs,
        /// Broker URL (sqlite://PATH, kafka://HOST:PORT); default: a fresh SQLite log in the run's temporary
        /// directory (LIVECHECK_BROKER is not read: a fault run never writes to the tutorial's log by mistake).
        #[arg(long)]
        broker: Option<String>,
        /// The orders cache: redis://HOST:PORT, or (default) a table on the broker.
        #[arg(long)]
        cache: Option<String>,
    },
    /// Fault injection, one scenario after the other: a full disk, a deleted log, SIGTERM, forged test headers,
    /// poison rows, 1 MB fields. Prints per scenario the messages and reports lost, the orders answered 200 but
    /// never executed and the instance's peak memory. Exit status 1 if a scenario failed, 3 if one could not run.
    Inject {
        #[command(flatten)]
        args: chaos::inject::InjectArgs,
    },
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

/// Logs which broker (for the embedded one, which file) and which cache this process uses.
fn log_backend(process: &str, backend: &Backend) {
    let env = std::env::var(transport::BROKER_ENV).ok();
    let broker = backend.broker.clone().or(env).unwrap_or_else(|| transport::DEFAULT_BROKER.to_owned());
    let file = broker.strip_prefix("sqlite://").map(|rest| {
        let path = rest.split('?').next().unwrap_or_default();
        let path = if path.is_empty() { transport::DEFAULT_BROKER.trim_start_matches("sqlite://") } else { path };
        let path = std::path::Path::new(path);
        let absolute = std::env::current_dir().map(|cwd| cwd.join(path)).unwrap_or_else(|_| path.to_owned());
        format!(" (file {})", absolute.display())
    });
    let cache =
        backend.cache.as_deref().map_or_else(|| "the user-orders table on the broker".to_owned(), str::to_owned);
    tracing::info!("{process}: broker {broker}{}; cache {cache}", file.unwrap_or_default());
}

/// Waits `seconds` (forever if `None`), until the process is interrupted, or until nobody reads its logs.
async fn until_stopped(seconds: Option<u64>, reader_gone: logs::ReaderGone) {
    let timer = async {
        match seconds {
            Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = timer => {}
        () = until_interrupted() => {}
        () = reader_gone.wait() => {}
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

/// Starts the LiveCheck instance (and its web server): the case gets the cache and the worker's URL.
async fn start_livecheck(
    app: &LiveCheck,
    base_url: String,
    tuning: &test_order::InstanceTuning,
    cache_url: Option<&str>,
) -> anyhow::Result<livecheck::Running> {
    let cache = cache::Cache::open(app, cache_url).await?;
    test_order::register(app, cache, base_url, tuning)?;
    Ok(app.start().await?)
}

/// `SIGNAL:MS`: a declared signal and a delay of at most a minute.
fn delay_stage(text: &str) -> Result<(String, Duration), String> {
    let (signal, ms) = text.rsplit_once(':').ok_or_else(|| format!("`{text}` is not SIGNAL:MS"))?;
    if !test_order::OrderSignals::NAMES.contains(&signal) {
        return Err(format!("`{signal}` is not a signal: {}", test_order::OrderSignals::NAMES.join(", ")));
    }
    match ms.parse::<u64>() {
        Ok(ms) if ms <= 60_000 => Ok((signal.to_owned(), Duration::from_millis(ms))),
        _ => Err(format!("`{ms}` is not a number of milliseconds up to 60000")),
    }
}

/// Seconds from 0 to an hour: a shutdown timeout (an infinite or huge one is an error, not a panic).
fn shutdown_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if (0.0..=3600.0).contains(&seconds) => Ok(seconds),
        _ => Err(format!("`{text}` is not a number of seconds from 0 to 3600")),
    }
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

/// An order placed: the worker's answer (the order, as JSON) and the test it was sampled into, if any.
struct Placed {
    body: String,
    test: Option<String>,
}

impl Placed {
    /// What `post-order` prints: the order, then whether it is tested.
    fn lines(&self) -> String {
        let tested = match &self.test {
            Some(id) => format!("sampled into test {id} (case {})", test_order::CASE),
            None => "not sampled into a test (the worker draws with --probability)".to_owned(),
        };
        format!("{}\n{tested}", self.body)
    }
}

async fn post_order(base_url: &str, side: &str) -> anyhow::Result<Placed> {
    let response = reqwest::get(format!("{base_url}/order/init/{side}/")).await?;
    let status = response.status();
    let test =
        response.headers().get(worker::HEADER_SAMPLED_TEST).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let body = response.text().await?;
    anyhow::ensure!(status.is_success(), "HTTP {status}: {body}");
    Ok(Placed { body, test })
}

/// Errors are printed as one line with their causes (no backtrace, whatever `RUST_BACKTRACE` says: a refused
/// order is not a crash).
fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            logs::eprint(&format!("error: cannot start the async runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Blocking work still under way (a query of a log or broker that does not answer) does not hold the exit up:
    // the instance bounded its own shutdown already.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(error) => {
            logs::eprint(&format!("error: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let reader_gone = logs::init(&cli.loglevel, cli.log_format);
    match cli.command {
        Command::Worker {
            port,
            skip_signal,
            flip_side,
            flip_side_fraction,
            delay_stage,
            service_version,
            tuning,
            backend,
        } => {
            log_backend("worker", &backend);
            let (broker, cache_url) = (backend.broker.as_deref(), backend.cache.as_deref());
            let mut builder = builder(broker)?;
            if let Some(version) = service_version {
                builder = builder.service_version(version);
            }
            let app = builder.build();
            let test_order = test_order::sender(&app, &tuning)?;
            let cache = cache::Cache::open(&app, cache_url).await?;
            let breakage = worker::Breakage { skip_signal, flip_side, flip_side_fraction, delay_stage };
            let running = worker::start(&app, test_order, port, breakage, cache).await?;
            until_stopped(None, reader_gone).await;
            running.stop().await;
        }
        Command::Livecheck {
            base_url,
            port,
            shutdown_timeout,
            alert_webhooks,
            alert_webhook_secret,
            tls,
            tuning,
            limits,
            backend,
        } => {
            log_backend("livecheck", &backend);
            let (broker, cache_url) = (backend.broker.as_deref(), backend.cache.as_deref());
            let mut alerts = builder(broker)?;
            for url in alert_webhooks.iter().map(|url| url.trim()).filter(|url| !url.is_empty()) {
                alerts = alerts.alert_webhook(url);
            }
            if let Some(secret) = alert_webhook_secret {
                alerts = alerts.alert_webhook_secret(secret);
            }
            let app = tls
                .apply(limits.apply(alerts))
                .web_address(format!("127.0.0.1:{port}"))
                .shutdown_timeout(Duration::from_secs_f64(shutdown_timeout))
                .build();
            let running = start_livecheck(&app, base_url, &tuning, cache_url).await?;
            until_stopped(None, reader_gone).await;
            running.shutdown().await?;
        }
        Command::PostOrder { side, base_url } => logs::print(&post_order(&base_url, &side).await?.lines()),
        Command::Demo { port, web_port, seconds, backend } => {
            log_backend("demo", &backend);
            let (broker, cache_url) = (backend.broker.as_deref(), backend.cache.as_deref());
            let worker_app = app(broker)?;
            let test_order = test_order::sender(&worker_app, &test_order::WorkerTuning::default())?;
            let cache = cache::Cache::open(&worker_app, cache_url).await?;
            let worker = worker::start(&worker_app, test_order, port, worker::Breakage::default(), cache).await?;
            let livecheck_app = instance_app(broker, web_port)?;
            let base = format!("http://127.0.0.1:{port}");
            let tuning = test_order::InstanceTuning::default();
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
            until_stopped(seconds, reader_gone).await;
            orders.abort();
            livecheck.shutdown().await?;
            worker.stop().await;
        }
        Command::Chaos { args, broker, cache } => {
            if !chaos::run(args, broker.as_deref(), cache.as_deref()).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Inject { args } => return chaos::inject::run(args).await,
    }
    Ok(ExitCode::SUCCESS)
}
