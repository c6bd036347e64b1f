//! The processes of one scenario — a worker (every order a test) and one LiveCheck instance on the scenario's
//! embedded log — and what every scenario does with them: place orders, wait for the reports, account.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    ledger::{Figures, LogContents},
    traffic::{OrderRecord, Traffic},
    Context,
};
use crate::chaos::{
    cluster::{Cluster, Setup},
    Timeline,
};

/// How often the log is read while waiting for the reports.
const DRAIN_POLL: Duration = Duration::from_millis(500);

/// A scenario's running processes, killed when dropped.
pub(super) struct Stage {
    pub(super) cluster: Cluster,
    /// The broker URL of its log.
    pub(super) broker: String,
    /// The log's file.
    pub(super) log_file: PathBuf,
    pub(super) timeline: Timeline,
}

impl Stage {
    /// Starts the worker and one instance on a new log in `log_dir` (the scenario's directory, or a tmpfs), with
    /// `setup` changed by `configure`; the processes log JSON lines into the scenario's directory.
    pub(super) async fn start(
        context: &Context,
        log_dir: &Path,
        configure: impl FnOnce(&mut Setup),
    ) -> anyhow::Result<Stage> {
        let timeline = Timeline { started: Instant::now() };
        let log_file = log_dir.join("livecheck.sqlite3");
        let broker = format!("sqlite://{}", log_file.display());
        let mut setup = Setup::new(&context.log_level);
        setup.common_args = vec!["--log-format".into(), "json".into()];
        configure(&mut setup);
        timeline.note(format!("directory {}; broker {broker}", context.dir.display()));
        let (cluster, started) = Cluster::start(&context.dir, &broker, setup, 1).await?;
        for note in started {
            timeline.note(note);
        }
        Ok(Stage { cluster, broker, log_file, timeline })
    }

    /// A client of the worker.
    pub(super) fn traffic(&self) -> Traffic {
        Traffic::new(self.cluster.worker_url())
    }

    /// Waits until every order of `orders` answered 200 is executed and every tested one reported, and the
    /// instance runs no test (at most `within`); whether it got there.
    pub(super) async fn drain(&self, orders: &[OrderRecord], within: Duration) -> anyhow::Result<bool> {
        let started = Instant::now();
        let mut last_note = Instant::now();
        loop {
            let contents = LogContents::read(&self.broker, false).await?;
            let executing = self.tests_executing().await;
            if contents.drained(orders) && executing == Some(0) {
                self.timeline.note(format!("drained in {:.1} s", started.elapsed().as_secs_f64()));
                return Ok(true);
            }
            if started.elapsed() >= within {
                self.timeline.note(format!("NOT drained within {within:?}"));
                return Ok(false);
            }
            if last_note.elapsed() >= Duration::from_secs(10) {
                self.timeline.note(format!("draining… ({} tests executing)", executing.unwrap_or(0)));
                last_note = Instant::now();
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
    }

    /// Reads the whole log and accounts for `orders`: the figures, and examples of what was lost.
    pub(super) async fn account(&self, orders: &[OrderRecord]) -> anyhow::Result<(Figures, Vec<String>)> {
        Ok(LogContents::read(&self.broker, true).await?.account(orders))
    }

    /// Tests the instance is executing now (`None` when it does not answer).
    async fn tests_executing(&self) -> Option<u64> {
        self.cluster.instance_metrics(0).await?["tests_executing"].as_u64()
    }

    /// One of the instance's counters (`instance.metrics` of its `/api/status`), `None` when it does not answer.
    pub(super) async fn instance_metric(&self, name: &str) -> Option<u64> {
        self.cluster.instance_metrics(0).await?[name].as_u64()
    }

    /// Waits until `metric` of the instance is at least `at_least` (at most `within`); its last value.
    pub(super) async fn wait_for_metric(&self, name: &str, at_least: u64, within: Duration) -> Option<u64> {
        let deadline = Instant::now() + within;
        loop {
            let value = self.instance_metric(name).await;
            if value.is_some_and(|v| v >= at_least) || Instant::now() >= deadline {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How long to wait for the reports after the load.
pub(super) fn drain_timeout(context: &Context) -> Duration {
    Duration::from_secs(context.pick(90, 180))
}

/// A random lowercase hex string of `bytes` random bytes.
pub(super) fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", fastrand::u8(..))).collect()
}

/// Orders of `orders` sent at or after `since` (and before `until`, when given).
pub(super) fn sent_between(orders: &[OrderRecord], since: Instant, until: Option<Instant>) -> Vec<&OrderRecord> {
    orders.iter().filter(|o| o.sent_at >= since && until.is_none_or(|until| o.sent_at < until)).collect()
}
