//! A real headless Chromium driven over the Chrome DevTools Protocol, for the web client's
//! tests: pages in isolated browser contexts (each its own cookies and storage, like separate
//! devices), tablet-sized viewports with touch, JavaScript evaluated in the page, network cut
//! and restored, file inputs, screenshots, and every uncaught exception, console error and
//! CSP violation collected so that a test can insist on none.
//!
//! The protocol is JSON over one WebSocket (tokio-tungstenite, which the tests already use),
//! with sessions flattened onto it. We use a dozen of its methods; a full CDP crate
//! (chromiumoxide's generated bindings) would add minutes to every CI build for them.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::chromium::find_chromium;

/// How long a single protocol call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Page::wait_for`] waits by default.
pub const WAIT: Duration = Duration::from_secs(20);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;
type Problems = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// A running headless Chromium.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    outgoing: mpsc::UnboundedSender<String>,
    pending: Pending,
    problems: Problems,
    next_id: Arc<AtomicU64>,
    _profile: tempfile::TempDir,
}

/// A tab in its own browser context.
#[derive(Debug, Clone)]
pub struct Page {
    session_id: String,
    context_id: String,
    outgoing: mpsc::UnboundedSender<String>,
    pending: Pending,
    problems: Problems,
    next_id: Arc<AtomicU64>,
}

impl Browser {
    /// Starts Chromium (see [`find_chromium`]), or `None` when there is none.
    ///
    /// # Errors
    /// Chromium did not start or did not offer its DevTools endpoint.
    pub async fn launch() -> anyhow::Result<Option<Browser>> {
        let Some(binary) = find_chromium() else {
            return Ok(None);
        };
        let profile = tempfile::tempdir()?;
        let mut command = Command::new(&binary);
        command
            .arg("--headless")
            .arg("--disable-gpu")
            .arg("--no-first-run")
            .arg("--no-default-browser-check")
            .arg("--disable-extensions")
            .arg("--disable-background-networking")
            .arg("--disable-sync")
            .arg("--password-store=basic")
            .arg("--lang=ja-JP")
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()));
        if is_root() {
            command.arg("--no-sandbox");
        }
        command
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().context("chromium stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return Ok::<_, anyhow::Error>(url.trim().to_owned());
                }
            }
            bail!("chromium exited before offering DevTools")
        })
        .await
        .context("waiting for chromium's DevTools endpoint")??;
        // Keep draining stderr so that Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .context("connecting to DevTools")?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut to_send) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = to_send.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let problems: Problems = Arc::default();
        {
            let pending = pending.clone();
            let problems = problems.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                        continue;
                    };
                    dispatch(value, &pending, &problems);
                }
            });
        }
        Ok(Some(Browser {
            child,
            outgoing,
            pending,
            problems,
            next_id: Arc::new(AtomicU64::new(1)),
            _profile: profile,
        }))
    }

    async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        call(
            &self.outgoing,
            &self.pending,
            &self.next_id,
            None,
            method,
            params,
        )
        .await
    }

    /// A new tab in a new browser context (no shared cookies or storage), with a viewport of
    /// `width`×`height` CSS pixels and touch input, like a tablet.
    ///
    /// # Errors
    /// A protocol call failed.
    pub async fn new_page(&self, width: u32, height: u32) -> anyhow::Result<Page> {
        let context = self
            .call(
                "Target.createBrowserContext",
                json!({"disposeOnDetach": true}),
            )
            .await?;
        let context_id = string_field(&context, "browserContextId")?;
        let target = self
            .call(
                "Target.createTarget",
                json!({"url": "about:blank", "browserContextId": context_id}),
            )
            .await?;
        let target_id = string_field(&target, "targetId")?;
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await?;
        let session_id = string_field(&attached, "sessionId")?;
        let page = Page {
            session_id,
            context_id,
            outgoing: self.outgoing.clone(),
            pending: self.pending.clone(),
            problems: self.problems.clone(),
            next_id: self.next_id.clone(),
        };
        for method in [
            "Page.enable",
            "Runtime.enable",
            "Network.enable",
            "Log.enable",
        ] {
            page.call(method, json!({})).await?;
        }
        page.set_viewport(width, height).await?;
        page.call(
            "Emulation.setTouchEmulationEnabled",
            json!({"enabled": true, "maxTouchPoints": 5}),
        )
        .await?;
        page.call("Emulation.setLocaleOverride", json!({"locale": "ja-JP"}))
            .await?;
        page.call(
            "Emulation.setTimezoneOverride",
            json!({"timezoneId": "Asia/Tokyo"}),
        )
        .await?;
        Ok(page)
    }

    /// Stops Chromium.
    pub async fn close(mut self) {
        let _ = self.call("Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

#[cfg(unix)]
fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|user| user == "root")
        || std::fs::metadata("/proc/self")
            .map(|meta| std::os::unix::fs::MetadataExt::uid(&meta) == 0)
            .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_root() -> bool {
    false
}

fn string_field(value: &Value, name: &str) -> anyhow::Result<String> {
    value
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no {name} in {value}"))
}

/// Routes a message from Chromium: an answer to its caller, a problem event to its page.
fn dispatch(value: Value, pending: &Pending, problems: &Problems) {
    if let Some(id) = value.get("id").and_then(Value::as_u64) {
        let sender = pending.lock().ok().and_then(|mut map| map.remove(&id));
        if let Some(sender) = sender {
            let result = match value.get("error") {
                Some(error) => Err(error.to_string()),
                None => Ok(value.get("result").cloned().unwrap_or(Value::Null)),
            };
            let _ = sender.send(result);
        }
        return;
    }
    let session = value
        .get("sessionId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let params = value.get("params").cloned().unwrap_or(Value::Null);
    let problem = match value.get("method").and_then(Value::as_str) {
        Some("Runtime.exceptionThrown") => Some(format!(
            "uncaught exception: {}",
            params["exceptionDetails"]["exception"]["description"]
                .as_str()
                .or(params["exceptionDetails"]["text"].as_str())
                .unwrap_or("?")
        )),
        Some("Runtime.consoleAPICalled") if params["type"] == "error" => Some(format!(
            "console.error: {}",
            params["args"]
                .as_array()
                .map(|args| args
                    .iter()
                    .map(|arg| arg["value"]
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| arg["description"].as_str().map(str::to_owned))
                        .unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        )),
        // The API's refusals (4xx) are answers the page handles, not faults of the page.
        Some("Log.entryAdded")
            if params["entry"]["source"] == "network"
                && params["entry"]["url"]
                    .as_str()
                    .is_some_and(|url| url.contains("/api/"))
                && params["entry"]["text"]
                    .as_str()
                    .is_some_and(|text| text.contains("status of 4")) =>
        {
            None
        }
        Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
            let text = params["entry"]["text"].as_str().unwrap_or_default();
            let url = params["entry"]["url"].as_str().unwrap_or_default();
            Some(format!("log error: {text} {url}"))
        }
        _ => None,
    };
    if let Some(problem) = problem
        && let Ok(mut map) = problems.lock()
    {
        map.entry(session).or_default().push(problem);
    }
}

async fn call(
    outgoing: &mpsc::UnboundedSender<String>,
    pending: &Pending,
    next_id: &AtomicU64,
    session_id: Option<&str>,
    method: &str,
    params: Value,
) -> anyhow::Result<Value> {
    let id = next_id.fetch_add(1, Ordering::Relaxed);
    let (sender, receiver) = oneshot::channel();
    pending
        .lock()
        .map_err(|_| anyhow!("poisoned"))?
        .insert(id, sender);
    let mut message = json!({"id": id, "method": method, "params": params});
    if let Some(session_id) = session_id {
        message["sessionId"] = json!(session_id);
    }
    outgoing
        .send(message.to_string())
        .map_err(|_| anyhow!("the browser connection is closed"))?;
    match tokio::time::timeout(CALL_TIMEOUT, receiver).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(error))) => bail!("{method}: {error}"),
        Ok(Err(_)) => bail!("{method}: the browser connection closed"),
        Err(_) => bail!("{method}: no answer in {CALL_TIMEOUT:?}"),
    }
}

/// A JavaScript string literal of `text`.
pub fn js_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

impl Page {
    async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        call(
            &self.outgoing,
            &self.pending,
            &self.next_id,
            Some(&self.session_id),
            method,
            params,
        )
        .await
    }

    /// Sets the viewport (CSS pixels, scale 1).
    ///
    /// # Errors
    /// A protocol call failed.
    pub async fn set_viewport(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await?;
        Ok(())
    }

    /// Loads `url` and waits until its document has loaded.
    ///
    /// # Errors
    /// Navigation failed or the page did not load within [`WAIT`].
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        let answer = self.call("Page.navigate", json!({"url": url})).await?;
        if let Some(error) = answer.get("errorText").and_then(Value::as_str) {
            bail!("navigating to {url}: {error}");
        }
        self.wait_for("document.readyState === 'complete'", WAIT)
            .await?;
        Ok(())
    }

    /// Loads the current page again (a new document: the app starts afresh, its session in
    /// the cookies).
    ///
    /// # Errors
    /// The reload did not finish within [`WAIT`].
    pub async fn reload(&self) -> anyhow::Result<()> {
        self.eval("window.__before_reload = true").await?;
        self.call("Page.reload", json!({})).await?;
        self.wait_for(
            "!window.__before_reload && document.readyState === 'complete'",
            WAIT,
        )
        .await?;
        Ok(())
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value as JSON.
    ///
    /// # Errors
    /// The expression threw.
    pub async fn eval(&self, expression: &str) -> anyhow::Result<Value> {
        let answer = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true,
                       "userGesture": true}),
            )
            .await?;
        if let Some(details) = answer.get("exceptionDetails") {
            let description = details["exception"]["description"]
                .as_str()
                .or(details["text"].as_str())
                .unwrap_or("?");
            bail!("evaluating {expression:?}: {description}");
        }
        Ok(answer["result"]["value"].clone())
    }

    /// Waits until `expression` is truthy (polling every 100 ms) and returns its value.
    ///
    /// # Errors
    /// It was not truthy within `timeout`; the message shows the page's visible text.
    pub async fn wait_for(&self, expression: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            match self.eval(expression).await {
                Ok(value) if truthy(&value) => return Ok(value),
                Ok(_) => {}
                Err(error) => last_error = Some(error.to_string()),
            }
            if Instant::now() >= deadline {
                let text = self
                    .eval("document.body ? document.body.innerText.slice(0, 1500) : ''")
                    .await
                    .unwrap_or_default();
                bail!(
                    "waited {timeout:?} for {expression}; last error {last_error:?}; the page shows:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for an element matching `selector` to be present and visible.
    ///
    /// # Errors
    /// None appeared within [`WAIT`].
    pub async fn wait_visible(&self, selector: &str) -> anyhow::Result<()> {
        let sel = js_string(selector);
        self.wait_for(
            &format!(
                "(() => {{ const e = document.querySelector({sel}); \
                 return !!e && !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length); }})()"
            ),
            WAIT,
        )
        .await?;
        Ok(())
    }

    /// Types `value` into the input, select or text area matching `selector` (waiting for it),
    /// the way a user would: the value set through the native setter, then `input` and
    /// `change` events.
    ///
    /// # Errors
    /// No such element within [`WAIT`].
    pub async fn fill(&self, selector: &str, value: &str) -> anyhow::Result<()> {
        self.wait_visible(selector).await?;
        let sel = js_string(selector);
        let value = js_string(value);
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); e.focus(); \
             const proto = e instanceof HTMLSelectElement ? HTMLSelectElement.prototype \
               : e instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype; \
             Object.getOwnPropertyDescriptor(proto, 'value').set.call(e, {value}); \
             e.dispatchEvent(new Event('input', {{bubbles: true}})); \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()"
        ))
        .await?;
        Ok(())
    }

    /// Clicks the element matching `selector` (waiting for it to be visible) with a real
    /// mouse event at its centre, scrolled into view first.
    ///
    /// # Errors
    /// No such element within [`WAIT`], or something else covers it.
    pub async fn click(&self, selector: &str) -> anyhow::Result<()> {
        self.wait_visible(selector).await?;
        let sel = js_string(selector);
        let point = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); \
                 e.scrollIntoView({{block: 'center', inline: 'center'}}); \
                 const r = e.getBoundingClientRect(); \
                 const x = r.left + r.width / 2, y = r.top + r.height / 2; \
                 const top = document.elementFromPoint(x, y); \
                 return {{x, y, hit: !!top && (top === e || e.contains(top) || top.contains(e))}}; }})()"
            ))
            .await?;
        if point["hit"] != Value::Bool(true) {
            bail!("{selector} is covered by another element");
        }
        let (x, y) = (point["x"].clone(), point["y"].clone());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await?;
        }
        Ok(())
    }

    /// The trimmed text of the element matching `selector`, waiting for it.
    ///
    /// # Errors
    /// No such element within [`WAIT`].
    pub async fn text(&self, selector: &str) -> anyhow::Result<String> {
        let sel = js_string(selector);
        let value = self
            .wait_for(
                &format!(
                    "(() => {{ const e = document.querySelector({sel}); \
                     return e ? [e.innerText.trim()] : null; }})()"
                ),
                WAIT,
            )
            .await?;
        Ok(value[0].as_str().unwrap_or_default().to_owned())
    }

    /// How many elements match `selector` now.
    ///
    /// # Errors
    /// The selector is invalid.
    pub async fn count(&self, selector: &str) -> anyhow::Result<u64> {
        let sel = js_string(selector);
        Ok(self
            .eval(&format!("document.querySelectorAll({sel}).length"))
            .await?
            .as_u64()
            .unwrap_or(0))
    }

    /// Chooses files for the file input matching `selector`.
    ///
    /// # Errors
    /// No such element, or the files were refused.
    pub async fn set_files(&self, selector: &str, files: &[&Path]) -> anyhow::Result<()> {
        self.wait_for(
            &format!("!!document.querySelector({})", js_string(selector)),
            WAIT,
        )
        .await?;
        let found = self
            .call(
                "Runtime.evaluate",
                json!({"expression": format!("document.querySelector({})", js_string(selector))}),
            )
            .await?;
        let object_id = string_field(&found["result"], "objectId")?;
        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        self.call(
            "DOM.setFileInputFiles",
            json!({"files": files, "objectId": object_id}),
        )
        .await?;
        Ok(())
    }

    /// Cuts this page's network (`offline = true`) or restores it. The page sees
    /// `navigator.onLine` change and gets `offline`/`online` events; requests fail meanwhile.
    ///
    /// # Errors
    /// A protocol call failed.
    pub async fn set_offline(&self, offline: bool) -> anyhow::Result<()> {
        self.call(
            "Network.emulateNetworkConditions",
            json!({"offline": offline, "latency": 0, "downloadThroughput": -1,
                   "uploadThroughput": -1}),
        )
        .await?;
        Ok(())
    }

    /// A PNG of the viewport, written to `path`.
    ///
    /// # Errors
    /// The capture or the write failed.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        use base64::Engine as _;
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": false}),
            )
            .await?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(string_field(&shot, "data")?)
            .context("screenshot data")?;
        std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Closes the tab and discards its browser context (its cookies and storage).
    ///
    /// # Errors
    /// A protocol call failed.
    pub async fn close(self) -> anyhow::Result<()> {
        call(
            &self.outgoing,
            &self.pending,
            &self.next_id,
            None,
            "Target.disposeBrowserContext",
            json!({"browserContextId": self.context_id}),
        )
        .await?;
        Ok(())
    }

    /// The cookies of the page's current URL, as `(name, value, http_only, secure,
    /// same_site)`.
    ///
    /// # Errors
    /// A protocol call failed.
    pub async fn cookies(&self) -> anyhow::Result<Vec<(String, String, bool, bool, String)>> {
        let answer = self.call("Network.getCookies", json!({})).await?;
        Ok(answer["cookies"]
            .as_array()
            .map(|cookies| {
                cookies
                    .iter()
                    .map(|c| {
                        (
                            c["name"].as_str().unwrap_or_default().to_owned(),
                            c["value"].as_str().unwrap_or_default().to_owned(),
                            c["httpOnly"].as_bool().unwrap_or(false),
                            c["secure"].as_bool().unwrap_or(false),
                            c["sameSite"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every uncaught exception, console error and failed load of this page so far (CSP
    /// violations are console errors; the API's 4xx answers are not counted), emptied.
    pub fn take_problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .ok()
            .and_then(|mut map| map.remove(&self.session_id))
            .unwrap_or_default()
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}
