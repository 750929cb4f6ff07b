//! The live page in a real browser: headless Chromium (Debian's `chromium`,
//! installed by `.ci/run`) opens `/`, a PBX publishes over SIP, and the
//! appearance key changes colour without the page reloading. Chromium is
//! driven over the DevTools protocol on a websocket.
//!
//! Set `SHAREDLINE_SCREENSHOT=path.png` to also keep a screenshot of the
//! page (that is how `docs/live-page.png` is made).

mod common;
mod http_support;

use http_support::{start_http, Phone};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

const BOB: &str = "sip:bob@example.com";
/// The page's colours (its CSS variables), as computed styles report them.
const ACTIVE_GREEN: &str = "rgb(47, 168, 79)";
const ALERTING_ORANGE: &str = "rgb(240, 138, 36)";
const IDLE_GREY: &str = "rgb(184, 190, 198)";

fn chromium_path() -> String {
    if let Ok(p) = std::env::var("CHROMIUM") {
        return p;
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(p).exists() {
            return p.to_string();
        }
    }
    panic!(
        "Chromium is not installed (apt-get install chromium; .ci/run does it), or set CHROMIUM"
    );
}

/// A headless Chromium and a DevTools session on its first page.
struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium_path())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,760",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        // Chromium prints its DevTools address on stderr; keep reading the
        // rest in the background so it never blocks on a full pipe.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let browser_url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!("chromium did not print its DevTools address within 30 s");
            }
        };
        // ws://127.0.0.1:PORT/devtools/browser/ID → the page targets list.
        let host = browser_url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let addr: SocketAddr = host.parse().expect("DevTools host:port");
        let deadline = Instant::now() + Duration::from_secs(10);
        let page_ws = loop {
            let list = http_support::call("GET", addr, "/json/list", None).json();
            let page = list
                .as_array()
                .and_then(|a| a.iter().find(|t| t["type"] == "page"))
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                .map(str::to_string);
            if let Some(p) = page {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "chromium has no page target: {list}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let (ws, _) = tungstenite::client(page_ws.as_str(), stream).expect("DevTools websocket");
        Browser {
            child,
            ws,
            next_id: 1,
            _profile: profile,
        }
    }

    /// Call a DevTools method and return its result (events are skipped).
    fn cdp(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws.send(Message::text(msg)).expect("send to DevTools");
        loop {
            let m = self.ws.read().expect("read from DevTools");
            let Message::Text(text) = m else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluate a JS expression in the page; its value as JSON.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.cdp(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr} threw: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Evaluate `expr` until it gives `want`, for up to `timeout`.
    fn wait_for(&mut self, expr: &str, want: &Value, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.eval(expr);
            if &got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{expr} is {got}, not {want}, after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The computed colour of appearance key `index` of `line` (null if absent).
fn key_colour(line: &str, index: u32) -> String {
    format!(
        "(() => {{ const k = document.querySelector('.row[data-resource=\"{line}\"] .key[data-index=\"{index}\"]'); \
         return k ? getComputedStyle(k).backgroundColor : null; }})()"
    )
}

fn base64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn key_changes_colour_live_when_a_pbx_publishes() {
    let (server, http) = start_http(&[]);
    let mut pbx = Phone::new(&server);
    let etag = pbx.publish_state(BOB, 1, "alerting");
    // More lines, so the page (and its screenshot) shows several states.
    let mut other = Phone::new(&server);
    let r = other.publish(
        "sip:sales@example.com",
        "Expires: 600\r\nCall-Info: <sip:example.com>;appearance-index=1;appearance-state=active, \
         <sip:example.com>;appearance-index=2;appearance-state=held, \
         <sip:example.com>;appearance-index=4;appearance-state=held-private\r\n",
    );
    assert_eq!(r.status, 200);
    other.publish_state("sip:support@example.com", 2, "progressing");
    let mut seizer = Phone::new(&server);
    seizer.seize("sip:support@example.com", 1);
    let mut watcher = Phone::new(&server);
    watcher.watch(BOB);

    let mut b = Browser::launch();
    b.cdp("Page.enable", json!({}));
    b.cdp("Page.navigate", json!({ "url": format!("http://{http}/") }));
    let ten = Duration::from_secs(10);
    b.wait_for(
        "document.getElementById('status') && document.getElementById('status').textContent",
        &json!("live"),
        ten,
    );
    b.wait_for(&key_colour(BOB, 1), &json!(ALERTING_ORANGE), ten);
    assert_eq!(b.eval(&key_colour(BOB, 2)), json!(IDLE_GREY));
    assert_eq!(
        b.eval(&key_colour("sip:support@example.com", 1)),
        json!("rgb(242, 194, 48)"),
        "a seized key is yellow"
    );
    // Marks this document: a reload would lose it.
    b.eval("window.__loadedOnce = 'yes'");

    // The PBX answers the call: the same publication, now active.
    let r = pbx.publish(
        BOB,
        &format!(
            "SIP-If-Match: {etag}\r\nCall-Info: <sip:example.com>;appearance-index=1;appearance-state=active\r\n"
        ),
    );
    assert_eq!(r.status, 200, "{}", r.start);
    let t = Instant::now();
    b.wait_for(&key_colour(BOB, 1), &json!(ACTIVE_GREEN), ten);
    let took = t.elapsed();
    assert_eq!(
        b.eval("window.__loadedOnce"),
        json!("yes"),
        "the page did not reload"
    );
    assert_eq!(
        b.eval(&format!("document.querySelector('.row[data-resource=\"{BOB}\"] .key[data-index=\"1\"]').dataset.state")),
        json!("active")
    );
    eprintln!("key turned green {took:?} after the 200 to PUBLISH");

    // The search box filters lines.
    b.eval("(() => { const s = document.getElementById('search'); s.value = 'sales'; s.dispatchEvent(new Event('input')); })()");
    b.wait_for("document.querySelectorAll('.row').length", &json!(1), ten);
    b.eval("(() => { const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input')); })()");
    b.wait_for("document.querySelectorAll('.row').length", &json!(3), ten);

    // The detail view lists the line's appearances and watchers.
    b.eval(&format!(
        "document.querySelector('.row[data-resource=\"{BOB}\"]').click()"
    ));
    b.wait_for(
        "(() => { const d = document.getElementById('detail'); return d.classList.contains('shown') && d.textContent.includes('call-info') && d.textContent.includes('active'); })()",
        &json!(true),
        ten,
    );
    // A release from the API shows up in the open page too.
    let r = http_support::call(
        "POST",
        http,
        "/api/lines/bob@example.com/appearances/1/release",
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    b.wait_for(&key_colour(BOB, 1), &json!(IDLE_GREY), ten);
    // Put it back for the picture.
    pbx.publish_state(BOB, 1, "active");
    b.wait_for(&key_colour(BOB, 1), &json!(ACTIVE_GREEN), ten);
    b.wait_for(
        "document.getElementById('detail').textContent.includes('publication')",
        &json!(true),
        ten,
    );

    let shot = b.cdp("Page.captureScreenshot", json!({ "format": "png" }));
    let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(png.len() > 10_000, "a real picture, {} bytes", png.len());
    if let Ok(path) = std::env::var("SHAREDLINE_SCREENSHOT") {
        std::fs::write(&path, &png).expect("write the screenshot");
    }
}
