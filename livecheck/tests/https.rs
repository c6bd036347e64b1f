//! Fake requests reach `https://` services: a real TLS server (Python's, with a certificate made by `openssl`)
//! trusted through `SSL_CERT_FILE`.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
};

use livecheck::{http::FakeRequestClient, CaseSettings};

/// A TLS server answering `secure` to every GET; it exits by itself after a minute, and is killed when dropped.
const SERVER: &str = r#"
import http.server, os, ssl, sys, threading
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"secure"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
threading.Timer(60, lambda: os._exit(0)).start()
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(name: &str, version_arg: &str, env: &str, install: &str) -> String {
    let program = std::env::var(env).unwrap_or_else(|_| name.to_owned());
    let found = Command::new(&program).arg(version_arg).stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(found.is_ok_and(|s| s.success()), "this test needs {name} ({env} or on PATH): {install}");
    program
}

fn certificate(dir: &Path) -> (String, String) {
    let openssl = tool("openssl", "version", "LIVECHECK_OPENSSL", "apt-get install openssl");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new(openssl)
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl could not make a certificate");
    (cert.display().to_string(), key.display().to_string())
}

#[tokio::test]
async fn a_fake_request_reaches_an_https_service() {
    let dir = std::env::temp_dir().join(format!("livecheck-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = certificate(&dir);
    let python = tool("python3", "--version", "LIVECHECK_PYTHON", "apt-get install python3 (or run scripts/test)");
    let mut child = Command::new(python)
        .args(["-c", SERVER, &cert, &key])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut port).unwrap();
    let _server = Server(child);
    let port: u16 = port.trim().parse().expect("the server printed its port");

    // Only this test runs in this binary: setting the variable cannot race another test.
    std::env::set_var("SSL_CERT_FILE", &cert);
    let client = FakeRequestClient::new(&CaseSettings::new("secure")).unwrap();
    let body = client.get(&format!("https://localhost:{port}/")).await.unwrap();
    assert_eq!(body, b"secure");
    let _ = std::fs::remove_dir_all(&dir);
}
