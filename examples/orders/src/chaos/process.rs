//! One child process of the harness: this binary started with a subcommand, its stderr in a log file, killed and
//! reaped when dropped so that no process outlives the harness, however it ends.

use std::{
    fs::OpenOptions,
    io::Write,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;

/// How often an exit or an HTTP endpoint is polled.
const POLL: Duration = Duration::from_millis(50);

/// A process started by the harness; SIGKILLed and reaped when dropped.
pub(super) struct ChildProcess {
    child: Child,
}

impl ChildProcess {
    /// Starts this binary with `args` and the environment variables `env` added; its stderr is appended to `log`,
    /// after a line saying who started it.
    pub(super) fn spawn(name: &str, args: &[String], env: &[(String, String)], log: &Path) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating this binary")?;
        let mut log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        writeln!(log_file, "--- orders chaos: starting {name}: {}", args.join(" "))?;
        let child = Command::new(exe)
            .args(args)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(ChildProcess { child })
    }

    /// The process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it with SIGKILL (no chance to clean up) and reaps it.
    pub(super) fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().context("SIGKILL")?;
        self.child.wait().context("reaping a killed process")?;
        Ok(())
    }

    /// Sends `signal` (the binary shuts down gracefully on either) and waits up to `within` for the exit. `None`
    /// when it did not exit in time; it is then killed.
    pub(super) async fn stop_with(
        &mut self,
        signal: StopSignal,
        within: Duration,
    ) -> anyhow::Result<Option<ExitStatus>> {
        let (pid, flag) = (self.pid().to_string(), signal.kill_flag());
        let sent = Command::new("kill").args([flag, &pid]).status().with_context(|| format!("running kill {flag}"))?;
        anyhow::ensure!(sent.success(), "kill {flag} {pid}: {sent}");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                self.kill()?;
                return Ok(None);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Its exit status, if it has exited.
    pub(super) fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Polls `url` until it answers with any HTTP status, failing if the process exits first or after `within`.
    /// Returns how long that took.
    pub(super) async fn wait_until_answering(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        within: Duration,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exit_status() {
                anyhow::bail!("exited ({status}) before {url} answered");
            }
            if http.get(url).timeout(Duration::from_secs(1)).send().await.is_ok() {
                return Ok(started.elapsed());
            }
            anyhow::ensure!(started.elapsed() < within, "{url} did not answer within {within:?}");
            tokio::time::sleep(POLL).await;
        }
    }
}

/// A signal that asks a process to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StopSignal {
    /// SIGINT, what Ctrl-C sends.
    Interrupt,
    /// SIGTERM, what systemd, Kubernetes and Docker send.
    Terminate,
}

impl StopSignal {
    fn kill_flag(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "-INT",
            StopSignal::Terminate => "-TERM",
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free now (the OS picks it; another process could take it before we use it, which is unlikely).
pub(super) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
