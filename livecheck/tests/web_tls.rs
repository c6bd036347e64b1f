//! The web server over real HTTPS: a self-signed certificate made here (rcgen), a client trusting it gets the API
//! and the metrics; a client that does not trust it, or that speaks plain HTTP, is refused and counted. Missing or
//! invalid certificate and key files stop the start, naming the file.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use livecheck::{LiveCheck, LiveCheckBuilder};

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("livecheck-{name}-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, private key PEM).
fn self_signed() -> (String, String) {
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

fn instance(cert: &Path, key: &Path) -> LiveCheckBuilder {
    LiveCheck::builder().web_address("127.0.0.1:0").web_tls(cert, key).web_header_read_timeout(Duration::from_secs(5))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_server_speaks_https_with_its_certificate_to_a_client_that_trusts_it() {
    let dir = TempDir::new("web-tls");
    let (cert_pem, key_pem) = self_signed();
    let (cert, key) = (dir.write("cert.pem", &cert_pem), dir.write("key.pem", &key_pem));
    let app = instance(&cert, &key).build();
    let running = app.start().await.unwrap();
    let address = running.web_address().unwrap();

    let trusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let status = trusting.get(format!("https://{address}/api/status")).send().await.unwrap();
    assert_eq!(status.status(), 200);
    let status: serde_json::Value = status.json().await.unwrap();
    assert!(status["cases"].is_array(), "{status}");
    // By name too: the certificate names localhost.
    let health = trusting.get(format!("https://localhost:{}/healthz", address.port())).send().await.unwrap();
    assert_eq!(health.status(), 200);

    // A client that does not know the certificate refuses it; plain HTTP to the HTTPS port gets no answer.
    let stranger = reqwest::Client::builder().tls_built_in_root_certs(true).build().unwrap();
    let refused = stranger.get(format!("https://{address}/healthz")).send().await;
    assert!(refused.is_err(), "an untrusted self-signed certificate is refused: {refused:?}");
    let plain = reqwest::get(format!("http://{address}/healthz")).await;
    assert!(plain.is_err(), "plain HTTP is not answered: {plain:?}");

    // The server counts a failed handshake when it gives up on the connection, which may come just after the
    // client did: asked until it shows (5 s at most).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let metrics = trusting.get(format!("https://{address}/metrics")).send().await.unwrap().text().await.unwrap();
        let failed = metrics
            .lines()
            .find_map(|line| line.strip_prefix("livecheck_web_tls_handshakes_failed_total "))
            .unwrap_or_else(|| panic!("no handshake failure counter: {metrics}"))
            .to_owned();
        if failed == "2" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the stranger's and the plain HTTP client's: {metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn missing_or_invalid_certificate_and_key_files_stop_the_start_naming_the_file() {
    let dir = TempDir::new("web-tls-bad");
    let (cert_pem, key_pem) = self_signed();
    let (other_cert_pem, _) = self_signed();
    let (cert, key) = (dir.write("cert.pem", &cert_pem), dir.write("key.pem", &key_pem));
    let other_cert = dir.write("other-cert.pem", &other_cert_pem);
    let garbage = dir.write("garbage.pem", "not a certificate\n");
    let missing = dir.0.join("missing.pem");

    let cases = [
        (missing.clone(), key.clone(), format!("its TLS certificate `{}` cannot be read", missing.display())),
        (cert.clone(), missing.clone(), format!("its TLS private key `{}` cannot be read", missing.display())),
        (garbage.clone(), key.clone(), format!("`{}` holds no PEM certificate", garbage.display())),
        (cert.clone(), cert.clone(), format!("`{}` holds no PEM private key", cert.display())),
        (other_cert.clone(), key.clone(), "do not make a usable pair".to_owned()),
    ];
    for (cert, key, expected) in cases {
        let app = instance(&cert, &key).build();
        let error = app.start().await.err().unwrap_or_else(|| panic!("started with {cert:?} and {key:?}"));
        let said = format!("{:#}", anyhow::Error::from(error));
        assert!(said.contains(&expected), "expected `{expected}` in: {said}");
        assert!(said.starts_with("configuration: LiveCheck web server: "), "{said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_finish_its_handshake_is_closed_at_the_header_read_timeout() {
    use tokio::io::AsyncReadExt;
    let dir = TempDir::new("web-tls-slow");
    let (cert_pem, key_pem) = self_signed();
    let (cert, key) = (dir.write("cert.pem", &cert_pem), dir.write("key.pem", &key_pem));
    let app = instance(&cert, &key).web_header_read_timeout(Duration::from_millis(300)).build();
    let running = app.start().await.unwrap();
    let address = running.web_address().unwrap();

    // Connects and says nothing: no ClientHello.
    let mut silent = tokio::net::TcpStream::connect(address).await.unwrap();
    let started = std::time::Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed by the server: {read:?}");
    assert!(started.elapsed() >= Duration::from_millis(250), "not before the timeout: {:?}", started.elapsed());

    let metrics = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
        .get(format!("https://{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("livecheck_web_connections_timed_out_total{timeout=\"header_read\"} 1"), "{metrics}");
    running.shutdown().await.unwrap();
}
