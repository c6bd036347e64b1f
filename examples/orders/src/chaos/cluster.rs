//! The processes under test: one `worker` and a group of `livecheck` instances on one embedded log, each started,
//! stopped and restarted by name, each logging into the run's directory.

use std::{
    path::{Path, PathBuf},
    process::ExitStatus,
    time::Duration,
};

use super::process::{free_port, ChildProcess, StopSignal};

/// How long a started process may take to answer over HTTP.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// One process of the cluster by name: its HTTP port, and its process while it runs.
struct Node {
    name: String,
    port: u16,
    process: Option<ChildProcess>,
}

impl Node {
    fn new(name: String) -> anyhow::Result<Self> {
        Ok(Node { name, port: free_port()?, process: None })
    }
}

/// How the processes are started, besides their broker.
#[derive(Clone, Debug)]
pub(super) struct Setup {
    /// The orders cache (`--cache`), or the table on the broker.
    pub(super) cache: Option<String>,
    /// `-l` of every process.
    pub(super) log_level: String,
    /// Options every process gets (after its subcommand's).
    pub(super) common_args: Vec<String>,
    /// Options the worker gets.
    pub(super) worker_args: Vec<String>,
    /// Options each LiveCheck instance gets.
    pub(super) instance_args: Vec<String>,
    /// Environment variables every process gets.
    pub(super) env: Vec<(String, String)>,
}

impl Setup {
    /// Processes logging at `log_level`, on the broker's cache, with nothing else added.
    pub(super) fn new(log_level: &str) -> Self {
        Setup {
            cache: None,
            log_level: log_level.to_owned(),
            common_args: Vec::new(),
            worker_args: Vec::new(),
            instance_args: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// The worker and the LiveCheck instances, killed when dropped.
pub(super) struct Cluster {
    dir: PathBuf,
    broker: String,
    setup: Setup,
    http: reqwest::Client,
    worker: Node,
    instances: Vec<Node>,
}

impl Cluster {
    /// Starts the worker (probability 1: every order is a test execution) and `instances` LiveCheck instances on
    /// `broker`, and waits until each answers over HTTP. Logs go to `dir`.
    pub(super) async fn start(
        dir: &Path,
        broker: &str,
        setup: Setup,
        instances: usize,
    ) -> anyhow::Result<(Self, Vec<String>)> {
        let mut cluster = Cluster {
            dir: dir.to_owned(),
            broker: broker.to_owned(),
            setup,
            http: reqwest::Client::new(),
            worker: Node::new("worker".into())?,
            instances: Vec::new(),
        };
        let mut started = Vec::new();
        let ready = cluster.start_worker().await?;
        started.push(format!("started worker {ready}"));
        for _ in 0..instances {
            let (index, ready) = cluster.add_instance().await?;
            started.push(format!("started {} {ready}", cluster.instances[index].name));
        }
        Ok((cluster, started))
    }

    /// The worker's base URL.
    pub(super) fn worker_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.worker.port)
    }

    /// (Re)starts the stopped worker, on its port; returns a note on its start.
    pub(super) async fn start_worker(&mut self) -> anyhow::Result<String> {
        anyhow::ensure!(self.worker.process.is_none(), "the worker is running");
        let port = self.worker.port.to_string();
        let mut args = self.args(&["worker", "--port", &port, "--probability", "1"]);
        args.extend(self.setup.worker_args.iter().cloned());
        // Any answer will do, even 404: the worker binds its port once its agents run.
        let url = format!("{}/", self.worker_url());
        start_node(&mut self.worker, &self.http, &self.dir, &self.setup.env, &args, &url).await
    }

    /// Stops the worker with `signal` and waits up to `within` for its exit: its pid and exit status, `None` when
    /// it did not exit in time (it is killed then).
    pub(super) async fn stop_worker(
        &mut self,
        signal: StopSignal,
        within: Duration,
    ) -> anyhow::Result<(u32, Option<ExitStatus>)> {
        let mut process = self.worker.process.take().ok_or_else(|| anyhow::anyhow!("the worker is not running"))?;
        let pid = process.pid();
        Ok((pid, process.stop_with(signal, within).await?))
    }

    /// The process id of instance `index`, while it runs.
    pub(super) fn instance_pid(&self, index: usize) -> Option<u32> {
        self.instances.get(index)?.process.as_ref().map(ChildProcess::pid)
    }

    /// The counters of instance `index` (`instance.metrics` of its `/api/status`), if it answers.
    pub(super) async fn instance_metrics(&self, index: usize) -> Option<serde_json::Value> {
        let node = self.instances.get(index).filter(|node| node.process.is_some())?;
        self.metrics_of(node.port, Duration::from_secs(5)).await
    }

    /// The status code and body of instance `index`'s `/healthz`, if it answers.
    pub(super) async fn instance_health(&self, index: usize) -> Option<(u16, serde_json::Value)> {
        let node = self.instances.get(index).filter(|node| node.process.is_some())?;
        let url = format!("http://127.0.0.1:{}/healthz", node.port);
        let response = self.http.get(&url).timeout(Duration::from_secs(5)).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.json::<serde_json::Value>().await.ok()?))
    }

    /// The JSON that instance `index`'s web API answers on `path` (`/api/cases/NAME` …), if it answers 200 with
    /// JSON within 5 s.
    pub(super) async fn instance_api(&self, index: usize, path: &str) -> Option<serde_json::Value> {
        let node = self.instances.get(index).filter(|node| node.process.is_some())?;
        let url = format!("http://127.0.0.1:{}{path}", node.port);
        let response = self.http.get(&url).timeout(Duration::from_secs(5)).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json::<serde_json::Value>().await.ok()
    }

    /// `instance.metrics` of the web API on `port`, if it answers within `timeout`.
    async fn metrics_of(&self, port: u16, timeout: Duration) -> Option<serde_json::Value> {
        let url = format!("http://127.0.0.1:{port}/api/status");
        let response = self.http.get(&url).timeout(timeout).send().await.ok()?;
        let mut status = response.json::<serde_json::Value>().await.ok()?;
        Some(status["instance"]["metrics"].take())
    }

    /// The log file of the process named `name` (`worker`, `livecheck-1` …).
    pub(super) fn log_of(&self, name: &str) -> PathBuf {
        log_path(&self.dir, name)
    }

    /// The instance's name (`livecheck-1` …).
    pub(super) fn instance_name(&self, index: usize) -> &str {
        self.instances.get(index).map_or("livecheck-?", |node| &node.name)
    }

    /// Indices among `0..below` of the instances running now.
    pub(super) fn running_instances(&self, below: usize) -> Vec<usize> {
        (0..below.min(self.instances.len())).filter(|i| self.instances[*i].process.is_some()).collect()
    }

    /// How many instances there are, running or not.
    pub(super) fn instance_count(&self) -> usize {
        self.instances.len()
    }

    /// Starts one more instance (it joins the group); returns its index and a note on its start.
    pub(super) async fn add_instance(&mut self) -> anyhow::Result<(usize, String)> {
        self.instances.push(Node::new(format!("livecheck-{}", self.instances.len() + 1))?);
        let index = self.instances.len() - 1;
        let ready = self.start_instance(index).await?;
        Ok((index, ready))
    }

    /// (Re)starts the stopped instance `index` on a fresh status port; returns a note on its start.
    pub(super) async fn start_instance(&mut self, index: usize) -> anyhow::Result<String> {
        let base_url = self.worker_url();
        let node = self.instances.get_mut(index).ok_or_else(|| anyhow::anyhow!("no instance {index}"))?;
        anyhow::ensure!(node.process.is_none(), "{} is running", node.name);
        node.port = free_port()?;
        let port = node.port.to_string();
        let url = format!("http://127.0.0.1:{port}/");
        let mut args = self.args(&["livecheck", "--base-url", &base_url, "--port", &port]);
        args.extend(self.setup.instance_args.iter().cloned());
        let node = &mut self.instances[index];
        start_node(node, &self.http, &self.dir, &self.setup.env, &args, &url).await
    }

    /// SIGKILLs instance `index`; returns its pid.
    pub(super) fn kill_instance(&mut self, index: usize) -> anyhow::Result<u32> {
        let node = self.instances.get_mut(index).ok_or_else(|| anyhow::anyhow!("no instance {index}"))?;
        let mut process = node.process.take().ok_or_else(|| anyhow::anyhow!("{} is not running", node.name))?;
        let pid = process.pid();
        process.kill()?;
        Ok(pid)
    }

    /// Stops instance `index` with SIGINT and waits up to `within` for its exit: its pid and exit status, `None`
    /// when it did not exit in time (it is killed then).
    pub(super) async fn interrupt_instance(
        &mut self,
        index: usize,
        within: Duration,
    ) -> anyhow::Result<(u32, Option<ExitStatus>)> {
        self.stop_instance(index, StopSignal::Interrupt, within).await
    }

    /// Stops instance `index` with `signal` and waits up to `within` for its exit: its pid and exit status,
    /// `None` when it did not exit in time (it is killed then).
    pub(super) async fn stop_instance(
        &mut self,
        index: usize,
        signal: StopSignal,
        within: Duration,
    ) -> anyhow::Result<(u32, Option<ExitStatus>)> {
        let node = self.instances.get_mut(index).ok_or_else(|| anyhow::anyhow!("no instance {index}"))?;
        let mut process = node.process.take().ok_or_else(|| anyhow::anyhow!("{} is not running", node.name))?;
        let pid = process.pid();
        Ok((pid, process.stop_with(signal, within).await?))
    }

    /// The processes that exited without being told to since the last call, with their status; they are
    /// forgotten (not restarted).
    pub(super) fn unexpected_exits(&mut self) -> Vec<String> {
        let mut exits = Vec::new();
        for node in std::iter::once(&mut self.worker).chain(&mut self.instances) {
            if let Some(status) = node.process.as_mut().and_then(ChildProcess::exit_status) {
                exits.push(format!("{} exited by itself ({status})", node.name));
                node.process = None;
            }
        }
        exits
    }

    /// Tests executing now, summed over the running instances' web APIs (an instance that does not answer counts
    /// none).
    pub(super) async fn tests_executing(&self) -> u64 {
        let mut executing = 0;
        for node in self.instances.iter().filter(|node| node.process.is_some()) {
            if let Some(metrics) = self.metrics_of(node.port, Duration::from_secs(2)).await {
                executing += metrics["tests_executing"].as_u64().unwrap_or(0);
            }
        }
        executing
    }

    /// The log files of the worker and of every instance.
    pub(super) fn logs(&self) -> Vec<(String, PathBuf)> {
        std::iter::once(&self.worker)
            .chain(&self.instances)
            .map(|node| (node.name.clone(), log_path(&self.dir, &node.name)))
            .collect()
    }

    /// `command` followed by the options every process gets: the broker, the cache, the log level and the
    /// setup's common options.
    fn args(&self, command: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = command.iter().map(|arg| (*arg).to_owned()).collect();
        args.extend(["--broker".into(), self.broker.clone(), "-l".into(), self.setup.log_level.clone()]);
        if let Some(cache) = &self.setup.cache {
            args.extend(["--cache".into(), cache.clone()]);
        }
        args.extend(self.setup.common_args.iter().cloned());
        args
    }
}

fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// Starts `node`'s process and waits until `url` answers; returns a note with its pid and how long that took. The
/// process is kept in `node` even when it does not get ready, so that it is killed with the cluster.
async fn start_node(
    node: &mut Node,
    http: &reqwest::Client,
    dir: &Path,
    env: &[(String, String)],
    args: &[String],
    url: &str,
) -> anyhow::Result<String> {
    let log = log_path(dir, &node.name);
    let process = node.process.insert(ChildProcess::spawn(&node.name, args, env, &log)?);
    let pid = process.pid();
    match process.wait_until_answering(http, url, READY_WITHIN).await {
        Ok(took) => Ok(format!("(pid {pid}), ready after {:.1} s", took.as_secs_f64())),
        Err(error) => {
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = log_text.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(error.context(format!(
                "{} (pid {pid}) did not get ready; its log ends:\n{}",
                node.name,
                tail.join("\n")
            )))
        }
    }
}
