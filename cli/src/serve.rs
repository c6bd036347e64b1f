//! `livecheck serve`: a LiveCheck instance with its web server, running declarative case files, reloaded on
//! SIGHUP and when the files change. Settings come from the flags, then the environment, then `--config FILE`.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Args;
use livecheck::{
    declare::{ServeConfig, ServeControl},
    instance::StreamNames,
    transport, LiveCheck,
};
use serde::Deserialize;

/// What `serve` takes. Each setting is the flag's, else the environment variable's, else the config file's.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// The case file (.yaml, .yml, .toml), or a directory of them.
    #[arg(long, env = "LIVECHECK_CASES", value_name = "FILE|DIR")]
    cases: Option<PathBuf>,
    /// Broker URL: sqlite://PATH (default sqlite://livecheck-data/livecheck.sqlite3), kafka://HOST:PORT.
    #[arg(long, env = transport::BROKER_ENV)]
    broker: Option<String>,
    /// The web server's address (port 0 picks a free one; the one bound is printed on stderr).
    #[arg(long, env = "LIVECHECK_WEB_ADDRESS", value_name = "HOST:PORT")]
    web_address: Option<String>,
    /// The consumer group of the instances (several `serve` share the work when they share it).
    #[arg(long, env = "LIVECHECK_GROUP")]
    group: Option<String>,
    /// Stream name prefix (PREFIX-livecheck, …), when several apps share the broker.
    #[arg(long, env = "LIVECHECK_PREFIX", value_name = "PREFIX")]
    prefix: Option<String>,
    /// How often the case files are looked at for changes (0: only on SIGHUP).
    #[arg(long, env = "LIVECHECK_WATCH_EVERY", value_parser = crate::args::duration_or_zero)]
    watch_every: Option<Duration>,
    /// Requests a second the API's publishing routes take.
    #[arg(long, env = "LIVECHECK_API_RATE_LIMIT")]
    api_rate_limit: Option<u32>,
    /// A YAML or TOML file with any of: cases, broker, web_address, group, prefix, watch_every, api_rate_limit.
    #[arg(long, env = "LIVECHECK_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The settings a config file may hold.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    cases: Option<PathBuf>,
    broker: Option<String>,
    web_address: Option<String>,
    group: Option<String>,
    prefix: Option<String>,
    watch_every: Option<String>,
    api_rate_limit: Option<u32>,
}

/// The write and read tokens of the web server (never flags: they would show in `ps`).
const WRITE_TOKEN_ENV: &str = "LIVECHECK_WEB_TOKEN";
const READ_TOKEN_ENV: &str = "LIVECHECK_WEB_READ_TOKEN";

/// Runs until SIGINT or SIGTERM; reloads the cases on SIGHUP and on change.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<std::process::ExitCode> {
    let file = match &args.config {
        Some(path) => read_config(path)?,
        None => ConfigFile::default(),
    };
    let cases = args
        .cases
        .or(file.cases)
        .context("--cases FILE|DIR is required (or LIVECHECK_CASES, or `cases` in --config)")?;
    let broker = args.broker.or(file.broker).unwrap_or_else(|| transport::DEFAULT_BROKER.to_owned());
    let web_address =
        args.web_address.or(file.web_address).unwrap_or_else(|| livecheck::web::DEFAULT_WEB_ADDRESS.to_owned());
    let group = args.group.or(file.group);
    let prefix = args.prefix.or(file.prefix);
    let watch_every = match (args.watch_every, file.watch_every) {
        (Some(every), _) => every,
        (None, Some(text)) => {
            crate::args::duration_or_zero(&text).map_err(|e| anyhow::anyhow!("config `watch_every`: {e}"))?
        }
        (None, None) => livecheck::declare::DEFAULT_WATCH_EVERY,
    };
    let rate_limit = args.api_rate_limit.or(file.api_rate_limit);
    // Fails early, with the file and line, before anything connects.
    livecheck::declare::load(&cases).map_err(|error| anyhow::anyhow!("{error}"))?;
    let write_token = std::env::var(WRITE_TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let read_token = std::env::var(READ_TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let factory_broker = broker.clone();
    let builder = Box::new(move || {
        let transport = transport::from_url(&factory_broker)?;
        let mut builder = LiveCheck::builder().shared_transport(transport);
        if let Some(prefix) = &prefix {
            builder = builder.streams(StreamNames::prefixed(prefix));
        }
        if let Some(group) = &group {
            builder = builder.group(group.clone());
        }
        if let Some(token) = &write_token {
            builder = builder.web_write_token(token);
        }
        if let Some(token) = &read_token {
            builder = builder.web_read_token(token);
        }
        if let Some(rate) = rate_limit {
            builder = builder.web_api_rate_limit(rate);
        }
        Ok(builder)
    });
    let on_start = Box::new(move |address: std::net::SocketAddr, cases: &[livecheck::declare::CaseFile]| {
        let names: Vec<&str> = cases.iter().map(|case| case.definition.name()).collect();
        eprintln!("livecheck serve: running {} on {}; web server on http://{address}/", names.join(", "), broker);
    });
    let config = ServeConfig {
        cases,
        web_address,
        builder,
        watch_every: (!watch_every.is_zero()).then_some(watch_every),
        on_start: Some(on_start),
    };
    let control = ServeControl::new();
    tokio::spawn(signals(control.clone()));
    livecheck::declare::serve(config, control).await?;
    Ok(std::process::ExitCode::SUCCESS)
}

fn read_config(path: &std::path::Path) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading --config {}", path.display()))?;
    let toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let parsed = if toml {
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    } else {
        serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    };
    Ok(parsed)
}

/// Stops on SIGINT or SIGTERM, reloads on SIGHUP.
async fn signals(control: ServeControl) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut hangup) = signal(SignalKind::hangup()) {
            let stop = control.clone();
            tokio::spawn(async move {
                crate::interrupted().await;
                stop.stop();
            });
            while hangup.recv().await.is_some() {
                control.reload();
            }
            return;
        }
    }
    crate::interrupted().await;
    control.stop();
}
