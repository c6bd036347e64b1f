//! Serving case files (what `livecheck serve` runs): an instance with its web server running the cases of a file
//! or directory, reloaded when they change or when asked (SIGHUP in the command).
//!
//! A reload is a graceful restart: the new files are read and checked first (an error is logged with its file and
//! line, and the running cases stay as they are); then the running instance stops — its executions in flight reach
//! no verdict and are not committed — and an instance with the new cases starts in the same group on the same web
//! address, where the executions are delivered again with the signals they had (the bus is committed only below
//! what unfinished tests need). So no test in flight is lost, and none is reported twice.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{load, CaseFile};
use crate::{error::with_causes, Error, LiveCheck, LiveCheckBuilder, Result, Running};

/// Makes the builder of each instance (a new transport each time: the stopped instance's is let go).
pub type BuilderFactory = Box<dyn Fn() -> Result<LiveCheckBuilder> + Send + Sync>;

/// Told of each instance started: its web address and its cases.
pub type OnStart = Box<dyn Fn(SocketAddr, &[CaseFile]) + Send + Sync>;

/// How often the case files are looked at for changes, by default.
pub const DEFAULT_WATCH_EVERY: Duration = Duration::from_secs(1);

/// How long a restart tries to bind the web address again (the stopped instance's socket may linger).
const REBIND_FOR: Duration = Duration::from_secs(10);

/// What [`serve`] runs.
pub struct ServeConfig {
    /// The case file, or a directory of them.
    pub cases: PathBuf,
    /// The web server's address (`host:port`; port 0 picks one, kept across reloads).
    pub web_address: String,
    /// The builder of each instance, before its cases, web address and alert webhooks are added.
    pub builder: BuilderFactory,
    /// How often the files are looked at for changes; `None`: only on [`ServeControl::reload`].
    pub watch_every: Option<Duration>,
    /// Called after each start (the first and each reload).
    pub on_start: Option<OnStart>,
}

/// Stops or reloads a [`serve`] from outside (a signal handler, a test).
#[derive(Clone, Default)]
pub struct ServeControl {
    stop: CancellationToken,
    reload: Arc<Notify>,
}

impl ServeControl {
    /// A control that neither stopped nor asked for a reload yet.
    pub fn new() -> Self {
        ServeControl::default()
    }

    /// Stops the instance (gracefully) and ends [`serve`].
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Reads the case files again and, when they are valid, restarts the instance with them.
    pub fn reload(&self) {
        self.reload.notify_one();
    }
}

/// Runs the cases of `config.cases` until `control` stops it. An error when the cases cannot be read at the start
/// (with the file and line) or the first instance cannot start; later, a bad file only logs its error.
pub async fn serve(config: ServeConfig, control: ServeControl) -> Result<()> {
    let cases = load(&config.cases).map_err(|error| Error::Config(error.to_string()))?;
    let mut seen = Fingerprint::of(&config.cases);
    let mut address = config.web_address.clone();
    let mut running = start(&config, &cases, &address).await?;
    if let Some(bound) = running.web_address() {
        address = bound.to_string();
    }
    loop {
        let changed = async {
            match config.watch_every {
                Some(every) => loop {
                    tokio::time::sleep(every).await;
                    let now = Fingerprint::of(&config.cases);
                    if now != seen {
                        break now;
                    }
                },
                None => std::future::pending().await,
            }
        };
        let fingerprint = tokio::select! {
            () = control.stop.cancelled() => break,
            () = control.reload.notified() => Fingerprint::of(&config.cases),
            now = changed => now,
        };
        seen = fingerprint;
        let cases = match load(&config.cases) {
            Ok(cases) => cases,
            Err(error) => {
                tracing::error!(%error, "case files not reloaded: the running cases stay as they are");
                continue;
            }
        };
        tracing::info!(cases = cases.len(), path = %config.cases.display(), "reloading the case files: restarting the instance");
        if let Err(error) = running.shutdown().await {
            tracing::warn!(error = %with_causes(&error), "the instance stopped with an error before the reload");
        }
        running = restart(&config, &cases, &address, &control).await?;
    }
    running.shutdown().await
}

/// Starts an instance with `cases` on `address`, retrying a bind that fails for [`REBIND_FOR`].
async fn restart(config: &ServeConfig, cases: &[CaseFile], address: &str, control: &ServeControl) -> Result<Running> {
    let deadline = tokio::time::Instant::now() + REBIND_FOR;
    loop {
        match start(config, cases, address).await {
            Err(Error::WebServer { .. }) if tokio::time::Instant::now() < deadline && !control.stop.is_cancelled() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

async fn start(config: &ServeConfig, cases: &[CaseFile], address: &str) -> Result<Running> {
    let mut builder = (config.builder)()?.web_address(address);
    let mut webhooks: Vec<&str> = Vec::new();
    for url in cases.iter().flat_map(|case| case.definition.alert_webhooks()) {
        if !webhooks.contains(&url.as_str()) {
            webhooks.push(url);
            builder = builder.alert_webhook(url.clone());
        }
    }
    let app: LiveCheck = builder.build();
    for case in cases {
        case.register(&app)?;
    }
    let running = app.start().await?;
    if let (Some(on_start), Some(bound)) = (&config.on_start, running.web_address()) {
        on_start(bound, cases);
    }
    Ok(running)
}

/// What the case files are now: each file's path, size and modification time, and a hash of its content.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>, u64)>);

impl Fingerprint {
    fn of(path: &std::path::Path) -> Self {
        use std::hash::{Hash, Hasher};
        let mut files: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| super::Format::of_path(p).is_some())
                .collect(),
            Err(_) => vec![path.to_owned()],
        };
        files.sort();
        Fingerprint(
            files
                .into_iter()
                .map(|file| {
                    let metadata = std::fs::metadata(&file).ok();
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
                    let (size, modified) = metadata.map_or((0, None), |m| (m.len(), m.modified().ok()));
                    (file, size, modified, hasher.finish())
                })
                .collect(),
        )
    }
}
