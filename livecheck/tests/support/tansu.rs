//! A real Kafka-protocol broker for tests: tansu, started on a free loopback port with in-memory storage, stopped
//! when dropped. A missing tansu fails the test and says how to install it.

use std::{
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A running tansu broker.
pub struct Tansu {
    child: Child,
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
        let listener = format!("tcp://127.0.0.1:{port}");
        let binary = binary();
        let child = Command::new(&binary)
            .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &listener])
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("STORAGE_ENGINE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "the tansu Kafka broker is needed ({} could not be started: {error}): run scripts/test, or \
                     `cargo install tansu --version 0.6.0 --locked --features dynostore --root .tools/tansu` at the \
                     workspace root (or set LIVECHECK_TANSU to its path)",
                    binary.display()
                )
            });
        let mut tansu = Tansu { child, url: format!("kafka://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = tansu.child.try_wait() {
                panic!("tansu exited ({status}) before listening on {port}");
            }
            assert!(Instant::now() < deadline, "tansu did not listen on {port} within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        tansu
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
