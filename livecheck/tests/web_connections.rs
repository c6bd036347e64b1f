//! The web server's connections, from outside with raw TCP sockets (feature `web`): a request whose headers do not
//! arrive in time, a kept-alive connection left idle, and more connections than the server holds. (200 slowloris
//! connections once stayed open for a minute and more: nothing closed them.)

use std::time::Duration;

use livecheck::{Case, CaseResult, CaseSettings, LiveCheck, LiveCheckBuilder, Running, TestRun};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

/// Passes at once.
struct Audit;

impl Case for Audit {
    type Args = ();
    async fn run(&self, _test: &TestRun, _: ()) -> CaseResult {
        Ok(())
    }
}

/// How long a test waits for the server to do what it must, at most.
const WITHIN: Duration = Duration::from_secs(5);

async fn start(builder: LiveCheckBuilder) -> Running {
    let app = builder.web_address("127.0.0.1:0").build();
    app.register(CaseSettings::new("audit"), |_| Audit).unwrap();
    app.start().await.unwrap()
}

async fn connect(running: &Running) -> TcpStream {
    TcpStream::connect(running.web_address().unwrap()).await.unwrap()
}

/// Sends `GET path` on `stream` (kept alive) and reads the answer: its status and body.
async fn get(stream: &mut TcpStream, path: &str) -> (u16, String) {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes()).await.unwrap();
    tokio::time::timeout(WITHIN, read_answer(stream)).await.expect("an answer in time")
}

async fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    let mut bytes = Vec::new();
    let mut chunk = [0; 4096];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed before an answer: {}", String::from_utf8_lossy(&bytes));
        bytes.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(bytes[..head_end].to_vec()).unwrap();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("a status: {head}"));
    let length: usize = head
        .lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("a content length: {head}"));
    while bytes.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed in the middle of an answer");
        bytes.extend_from_slice(&chunk[..n]);
    }
    (status, String::from_utf8_lossy(&bytes[head_end..head_end + length]).into_owned())
}

/// Waits for the server to close `stream` without answering: true when it did (end of stream, or reset), false
/// when bytes came; panics when nothing happened within [`WITHIN`].
async fn closed_unanswered(stream: &mut TcpStream) -> bool {
    let mut byte = [0; 1];
    match tokio::time::timeout(WITHIN, stream.read(&mut byte)).await.expect("closed in time") {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => matches!(error.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe),
    }
}

/// `GET path` on a new connection, again and again until one is answered (at most [`WITHIN`]): its answer.
async fn served_on_a_new_connection(running: &Running, path: &str) -> (u16, String) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let mut connection = connect(running).await;
        let _ = connection.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes()).await;
        let mut byte = [0; 1];
        if matches!(tokio::time::timeout(WITHIN, connection.peek(&mut byte)).await, Ok(Ok(n)) if n > 0) {
            return read_answer(&mut connection).await;
        }
        assert!(Instant::now() < deadline, "no new connection served within {WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A sample's value in the OpenMetrics text of `/metrics`, asked on a connection of its own.
async fn metric(running: &Running, series: &str) -> f64 {
    let (status, text) = get(&mut connect(running).await, "/metrics").await;
    assert_eq!(status, 200);
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_headers_do_not_arrive_in_time_is_closed_after_the_header_read_timeout() {
    let timeout = Duration::from_millis(300);
    let running =
        start(LiveCheck::builder().web_header_read_timeout(timeout).web_idle_timeout(Duration::from_secs(60))).await;

    // A first request that never ends: from the connection's opening.
    let opened = Instant::now();
    let mut slowloris = connect(&running).await;
    slowloris.write_all(b"GET /healthz HTT").await.unwrap();
    assert!(closed_unanswered(&mut slowloris).await, "closed, not answered");
    assert!(opened.elapsed() >= timeout, "not before the timeout: {:?}", opened.elapsed());

    // A kept-alive connection's next request that never ends: from its first byte, not the idle timeout (60 s).
    let mut kept_alive = connect(&running).await;
    assert_eq!(get(&mut kept_alive, "/healthz").await.0, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    kept_alive.write_all(b"GET /hea").await.unwrap();
    assert!(closed_unanswered(&mut kept_alive).await, "closed, not answered");
    assert!(started.elapsed() >= timeout, "not before the timeout: {:?}", started.elapsed());

    assert_eq!(metric(&running, r#"livecheck_web_connections_timed_out_total{timeout="header_read"}"#).await, 2.0);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let timeout = Duration::from_millis(300);
    let running =
        start(LiveCheck::builder().web_header_read_timeout(Duration::from_secs(60)).web_idle_timeout(timeout)).await;
    let mut connection = connect(&running).await;
    assert_eq!(get(&mut connection, "/healthz").await.0, 200);
    // Kept alive: a second request on it is answered.
    let asked = Instant::now();
    assert_eq!(get(&mut connection, "/healthz").await.0, 200);
    assert!(closed_unanswered(&mut connection).await, "closed once idle");
    assert!(asked.elapsed() >= timeout, "not before the idle timeout: {:?}", asked.elapsed());

    // A connection that never sends anything is under the header-read timeout (60 s here), not the idle one.
    let mut silent = connect(&running).await;
    tokio::time::sleep(timeout * 3).await;
    assert_eq!(get(&mut silent, "/healthz").await.0, 200, "still open after the idle timeout");

    assert_eq!(metric(&running, r#"livecheck_web_connections_timed_out_total{timeout="idle"}"#).await, 1.0);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_most_connections_new_ones_are_closed_until_a_held_one_closes() {
    let long = Duration::from_secs(60);
    let running =
        start(LiveCheck::builder().web_max_connections(2).web_header_read_timeout(long).web_idle_timeout(long)).await;
    let mut held = [connect(&running).await, connect(&running).await];
    for connection in &mut held {
        assert_eq!(get(connection, "/healthz").await.0, 200);
    }

    // Three more, one after the other: none served while the two are held.
    for _ in 0..3 {
        let mut beyond = connect(&running).await;
        let _ = beyond.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await;
        assert!(closed_unanswered(&mut beyond).await, "a connection beyond the limit was answered");
    }
    assert_eq!(get(&mut held[1], "/healthz").await.0, 200, "the held ones are still served");

    // One closes: a new connection is served again (once the server saw it close).
    let [first, second] = held;
    drop(first);
    assert_eq!(served_on_a_new_connection(&running, "/healthz").await.0, 200);
    drop(second);
    let (_, text) = served_on_a_new_connection(&running, "/metrics").await;
    let refused: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix("livecheck_web_connections_refused_total "))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("the refused connections are counted:\n{text}"));
    assert!(refused >= 3.0, "{refused} refused");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_and_unfinished_connections_at_once() {
    let long = Duration::from_secs(60);
    let running = start(LiveCheck::builder().web_header_read_timeout(long).web_idle_timeout(long)).await;
    let mut idle = connect(&running).await;
    assert_eq!(get(&mut idle, "/healthz").await.0, 200);
    let mut unfinished = connect(&running).await;
    unfinished.write_all(b"GET /healthz HTT").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let address = running.web_address().unwrap();
    let stopping = Instant::now();
    running.shutdown().await.unwrap();
    // Not held for the 5 s the server gives requests in progress.
    assert!(stopping.elapsed() < Duration::from_secs(4), "the shutdown took {:?}", stopping.elapsed());
    assert!(closed_unanswered(&mut idle).await);
    assert!(closed_unanswered(&mut unfinished).await);
    assert!(TcpStream::connect(address).await.is_err(), "nothing listens any more");
}
