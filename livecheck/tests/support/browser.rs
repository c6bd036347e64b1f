//! A real browser for tests: Debian's headless Chromium driven over the DevTools protocol (JSON over a WebSocket).
//! It is started on a free port with a profile directory of its own and one page attached; dropping the [`Browser`]
//! kills it and removes the profile, also when the test fails. A missing chromium fails the test and says how to
//! install it; `LIVECHECK_CHROMIUM` names another binary.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::{net::TcpStream, sync::oneshot, time::Instant};
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};

/// How Chromium gets onto a Debian machine (scripts/test does it).
const INSTALL: &str = "apt-get install chromium";
/// From start to the DevTools line on stderr; a first start on a busy machine takes a few seconds.
const LAUNCH_WITHIN: Duration = Duration::from_secs(60);
/// For any one DevTools command to be answered.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// The browser's last lines of output kept to explain a failure.
const KEPT_LINES: usize = 40;

/// A headless Chromium with one page.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    output: Arc<Mutex<VecDeque<String>>>,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The DevTools session of the page (commands with it go to the page, without it to the browser).
    session: String,
    next_id: u64,
}

fn binary() -> PathBuf {
    std::env::var_os("LIVECHECK_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("chromium"))
}

impl Browser {
    /// Starts Chromium and opens a blank page.
    pub async fn launch() -> Browser {
        let profile =
            std::env::temp_dir().join(format!("livecheck-chromium-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&profile).unwrap();
        let binary = binary();
        let mut child = Command::new(&binary)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
            .args(["--no-default-browser-check", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                let _ = std::fs::remove_dir_all(&profile);
                panic!(
                    "a Chromium browser is needed for the dashboard test ({} could not be started: {error}): run \
                     scripts/test, or `{INSTALL}` (as root), or set LIVECHECK_CHROMIUM to its path",
                    binary.display()
                )
            });

        // Chromium says where its DevTools endpoint is on stderr; the rest of its output is kept for failures (and
        // read to the end, so that a full pipe never blocks it).
        let output = Arc::new(Mutex::new(VecDeque::new()));
        let (found, endpoint) = oneshot::channel();
        let stderr = child.stderr.take().unwrap();
        let kept = output.clone();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    if let Some(found) = found.take() {
                        let _ = found.send(url.trim().to_string());
                    }
                }
                let mut kept = kept.lock().unwrap();
                kept.push_back(line);
                if kept.len() > KEPT_LINES {
                    kept.pop_front();
                }
            }
        });
        let endpoint = match tokio::time::timeout(LAUNCH_WITHIN, endpoint).await {
            Ok(Ok(url)) => url,
            failed => {
                let exited = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&profile);
                let lines = output.lock().unwrap().iter().cloned().collect::<Vec<_>>().join("\n");
                let why = match (failed, exited) {
                    (_, Some(status)) => format!("exited ({status})"),
                    (Err(_), None) => format!("said nothing of DevTools within {LAUNCH_WITHIN:?}"),
                    (Ok(_), None) => "closed its output".to_string(),
                };
                panic!("{} {why} before listening for DevTools. Its output:\n{lines}", binary.display());
            }
        };

        let socket = match tokio_tungstenite::connect_async(&endpoint).await {
            Ok((socket, _)) => socket,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&profile);
                panic!("cannot connect to Chromium's DevTools at {endpoint}: {error}");
            }
        };
        let mut browser = Browser { child, profile, output, socket, session: String::new(), next_id: 0 };
        let target = browser.command(None, "Target.createTarget", json!({"url": "about:blank"})).await.unwrap();
        let attached = browser
            .command(None, "Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}))
            .await
            .unwrap();
        browser.session = attached["sessionId"].as_str().expect("a DevTools session id").to_string();
        browser
    }

    /// Sends one DevTools command (to the page when `session` is given, else to the browser) and waits for its
    /// answer: the result, or the protocol's error message.
    async fn command(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            request["sessionId"] = json!(session);
        }
        self.socket.send(Message::text(request.to_string())).await.map_err(|e| format!("{method}: {e}"))?;
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Err(format!("{method}: no answer within {ANSWER_WITHIN:?}")),
                Ok(None) => return Err(format!("{method}: the browser closed the DevTools connection")),
                Ok(Some(Err(error))) => return Err(format!("{method}: {error}")),
                Ok(Some(Ok(message))) => message,
            };
            let Message::Text(text) = message else { continue };
            let answer: Value = serde_json::from_str(&text).map_err(|e| format!("{method}: bad DevTools JSON: {e}"))?;
            // Events (no id) and answers to other commands are not waited for.
            if answer["id"] != json!(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                return Err(format!("{method}: {}", error["message"].as_str().unwrap_or("error")));
            }
            return Ok(answer["result"].clone());
        }
    }

    /// A DevTools command to the page; panics on an error.
    pub async fn page(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.command(Some(&session), method, params).await.unwrap_or_else(|error| panic!("{error}"))
    }

    /// Opens `url` in the page and waits until it has loaded.
    pub async fn navigate(&mut self, url: &str) {
        let result = self.page("Page.navigate", json!({"url": url})).await;
        if let Some(error) = result.get("errorText") {
            panic!("the browser could not open {url}: {error}");
        }
        self.wait_for(&format!("{url} loaded"), "document.readyState === 'complete'", Duration::from_secs(30)).await;
    }

    /// Evaluates a JavaScript expression in the page (awaiting a promise), its value as JSON, or the exception.
    pub async fn try_eval(&mut self, expression: &str) -> Result<Value, String> {
        let session = self.session.clone();
        let params = json!({"expression": expression, "returnByValue": true, "awaitPromise": true});
        let result = self.command(Some(&session), "Runtime.evaluate", params).await?;
        if let Some(exception) = result.get("exceptionDetails") {
            let text = exception["exception"]["description"].as_str().or(exception["text"].as_str());
            return Err(format!("{expression}: {}", text.unwrap_or("exception")));
        }
        Ok(result["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// Evaluates a JavaScript expression in the page; panics when it throws.
    pub async fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression).await.unwrap_or_else(|error| panic!("{error}"))
    }

    /// Evaluates `expression` every 100 ms until its value is truthy, and returns it; panics after `within`, with
    /// the last value and the page's text.
    pub async fn wait_for(&mut self, what: &str, expression: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let last = self.try_eval(expression).await;
            if let Ok(value) = &last {
                if truthy(value) {
                    return value.clone();
                }
            }
            if Instant::now() >= deadline {
                let text = self.try_eval("document.body && document.body.innerText").await;
                panic!("{what}: not within {within:?} (`{expression}` was {last:?}); the page's text:\n{text:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first element matching the CSS `selector`; panics when there is none.
    pub async fn click(&mut self, selector: &str) {
        let quoted = serde_json::to_string(selector).unwrap();
        let clicked = self
            .eval(&format!("(() => {{ const e = document.querySelector({quoted}); e && e.click(); return !!e; }})()"))
            .await;
        assert_eq!(clicked, json!(true), "nothing to click at {selector}");
    }

    /// Makes the page's viewport `width` × `height` CSS pixels, as on a phone when `mobile`.
    pub async fn set_viewport(&mut self, width: u32, height: u32, mobile: bool) {
        let scale = if mobile { 2 } else { 1 };
        let params = json!({"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile,
                            "screenWidth": width, "screenHeight": height});
        self.page("Emulation.setDeviceMetricsOverride", params).await;
        // The screen, not the window: a page wider than a phone's screen widens its window (zoomed out).
        let expression = format!("screen.width === {width}");
        self.wait_for(&format!("a viewport {width} px wide"), &expression, Duration::from_secs(10)).await;
    }

    /// A PNG of the whole page, beyond the viewport too.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        let metrics = self.page("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let clip = json!({"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1});
        let params = json!({"format": "png", "captureBeyondViewport": true, "clip": clip});
        let shot = self.page("Page.captureScreenshot", params).await;
        let data = shot["data"].as_str().expect("screenshot data");
        base64::engine::general_purpose::STANDARD.decode(data).expect("a base64 screenshot")
    }

    /// The browser's last lines of output.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// JavaScript's truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
