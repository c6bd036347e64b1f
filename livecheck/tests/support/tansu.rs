//! A real Kafka-protocol broker for tests: tansu, started on a free loopback port with its SQLite storage in a
//! directory of its own (so it can be restarted and keeps its topics, messages and committed offsets), stopped and
//! removed when dropped. A missing tansu fails the test and says how to install it.

use std::{
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// How tansu is built by scripts/test: the SQLite storage engine needs the `libsql` feature.
const INSTALL: &str = "cargo install tansu --version 0.6.0 --locked --features dynostore,libsql --root .tools/tansu";

/// A running tansu broker.
pub struct Tansu {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// `kafka://127.0.0.1:PORT`
    pub url: String,
}

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LIVECHECK_TANSU") {
        return path.into();
    }
    // Where scripts/test builds it: .tools/tansu at the workspace root, above this crate.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let installed = manifest.ancestors().map(|dir| dir.join(".tools/tansu/bin/tansu")).find(|path| path.exists());
    installed.unwrap_or_else(|| PathBuf::from("tansu"))
}

impl Tansu {
    pub fn start() -> Tansu {
        Tansu::start_on(std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
    }

    /// On a given loopback port.
    pub fn start_on(port: u16) -> Tansu {
        let dir = std::env::temp_dir().join(format!("livecheck-tansu-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut tansu = Tansu { child: None, port, dir, url: format!("kafka://127.0.0.1:{port}") };
        tansu.spawn();
        tansu
    }

    /// Stops the broker (SIGKILL) and starts it again on the same port and storage, as after a crash.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Stops the broker (SIGKILL); [`Tansu::restart`] starts it again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spawn(&mut self) {
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let binary = binary();
        let log = self.dir.join("tansu.log");
        let child = Command::new(&binary)
            .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &listener])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .env_remove("STORAGE_ENGINE")
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(std::fs::File::options().append(true).open(&log).unwrap()))
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "the tansu Kafka broker is needed ({} could not be started: {error}): run scripts/test, or \
                     `{INSTALL}` at the workspace root (or set LIVECHECK_TANSU to its path)",
                    binary.display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.as_mut().unwrap().try_wait() {
                let output = std::fs::read_to_string(&log).unwrap_or_default();
                panic!(
                    "tansu exited ({status}) before listening on {}; a tansu built without the SQLite storage \
                     engine needs `{INSTALL}`. Its output:\n{output}",
                    self.port
                );
            }
            assert!(Instant::now() < deadline, "tansu did not listen on {} within 20 s", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
