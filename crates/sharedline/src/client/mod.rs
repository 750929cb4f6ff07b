//! `watch`, `publish` and `seize`: a small SIP client, so a person can try
//! the server from two terminals and a script can drive it.
//!
//! - `watch LINE` subscribes to the line's `call-info` and prints its busy
//!   appearances on every NOTIFY until Ctrl-C, then unsubscribes.
//! - `publish LINE` sends one call-info PUBLISH (as a PBX would) and prints
//!   `STATUS REASON etag=TAG expires=N` on stdout.
//! - `seize LINE --index N` holds a `line-seize` subscription until Ctrl-C,
//!   printing `seized N` or `refused STATUS REASON`.
//!
//! [`dialog`] builds and judges the messages without I/O; [`link`] is the
//! one blocking socket; this module runs the transactions (Timer E
//! retransmits on UDP, Timer F gives up), answers every NOTIFY, and prints.
//! Results go to stdout, progress and errors to stderr. Exit status: 0 done,
//! 1 refused or failed, 2 bad arguments.

mod dialog;
mod link;

use clap::Args;
use dialog::{Dialog, NotifyVerdict, Outgoing, PublishSpec, Retransmit, TIMER_F};
use link::{Link, Recv};
use sip::{HeaderName, Message, SubState};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the unsubscribe after Ctrl-C may take, then its final NOTIFY.
const GOODBYE: Duration = Duration::from_secs(5);
const FINAL_NOTIFY: Duration = Duration::from_secs(2);
/// How long `seize --index '*'` waits for the NOTIFY naming its index.
const FIRST_NOTIFY: Duration = Duration::from_secs(5);

/// Flags every client command takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// The server, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5060")]
    pub server: String,
    /// Use TCP instead of UDP.
    #[arg(long)]
    pub tcp: bool,
    /// Our address-of-record, in From.
    #[arg(
        long,
        value_name = "URI",
        default_value = "sip:sharedline-client@localhost"
    )]
    pub from: String,
}

/// Flags of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The line, e.g. sip:bob@example.com.
    #[arg(value_name = "LINE")]
    pub line: String,
    /// Subscription lifetime to ask for, in seconds (default: the server's).
    #[arg(long, value_name = "SECONDS")]
    pub expires: Option<u32>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Flags of `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The line, e.g. sip:bob@example.com.
    #[arg(value_name = "LINE")]
    pub line: String,
    /// The appearance index (a number, or `*` with state idle).
    #[arg(long, value_name = "N")]
    pub index: Option<String>,
    /// The appearance state: idle, seized, progressing, alerting, active,
    /// held or held-private. Omit it with --etag to refresh.
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,
    /// Who is on the appearance, e.g. '"Alice" <sip:alice@example.com>'.
    #[arg(long, value_name = "NAME-ADDR")]
    pub uri: Option<String>,
    /// Publication lifetime to ask for, in seconds (default: the server's).
    #[arg(long, value_name = "SECONDS")]
    pub expires: Option<u32>,
    /// Act on the publication with this entity-tag (SIP-If-Match): modify it
    /// (with --state), refresh it (without), or remove it (--remove).
    #[arg(long, value_name = "TAG")]
    pub etag: Option<String>,
    /// Remove the publication named by --etag (Expires: 0).
    #[arg(long, requires = "etag")]
    pub remove: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Flags of `seize`.
#[derive(Debug, Args)]
pub struct SeizeArgs {
    /// The line, e.g. sip:bob@example.com.
    #[arg(value_name = "LINE")]
    pub line: String,
    /// The appearance index to seize, or `*` for the lowest idle one.
    #[arg(long, value_name = "N")]
    pub index: String,
    /// Seize lifetime to ask for, in seconds (default: the server's);
    /// refreshed before it runs out.
    #[arg(long, value_name = "SECONDS")]
    pub expires: Option<u32>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Why a command stopped early: a message for stderr and the exit status.
struct Fail {
    message: String,
    code: u8,
}

impl Fail {
    fn usage(message: impl Into<String>) -> Fail {
        Fail {
            message: message.into(),
            code: crate::EXIT_USAGE,
        }
    }
    fn run(message: impl Into<String>) -> Fail {
        Fail {
            message: message.into(),
            code: crate::EXIT_FAILURE,
        }
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Fail {
        Fail::run(e.to_string())
    }
}

fn finish(result: Result<ExitCode, Fail>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("sharedline: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Run `watch`.
pub fn watch(a: WatchArgs) -> ExitCode {
    finish(run_watch(a))
}

/// Run `publish`.
pub fn publish(a: PublishArgs) -> ExitCode {
    finish(run_publish(a))
}

/// Run `seize`.
pub fn seize(a: SeizeArgs) -> ExitCode {
    finish(run_seize(a))
}

/// The socket plus the stop flag Ctrl-C sets.
struct Session {
    link: Link,
    stop: Arc<AtomicBool>,
}

/// What a wait between transactions found.
enum Waited {
    Notify(Vec<u8>),
    Timeout,
    Stopped,
}

impl Session {
    fn open(common: &CommonArgs) -> Result<Session, Fail> {
        let server = resolve(&common.server)?;
        check_uri(&common.from, "--from")?;
        let stop = stop_flag()?;
        let link = Link::open(server, common.tcp)
            .map_err(|e| Fail::run(format!("cannot reach {server}: {e}")))?;
        Ok(Session { link, stop })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Send `out` and wait for its final response (retransmitting on UDP),
    /// giving up after `limit`, or at Ctrl-C when `interruptible`. NOTIFYs
    /// arriving meanwhile are answered; the fresh ones of `dialog` are
    /// returned with the response, in order.
    fn transact(
        &mut self,
        out: &Outgoing,
        limit: Duration,
        mut dialog: Option<&mut Dialog>,
        interruptible: bool,
    ) -> Result<(Vec<u8>, Vec<Vec<u8>>), Fail> {
        let give_up = Instant::now() + limit;
        let mut timer_e = Retransmit::new();
        let mut resend_at = Instant::now() + timer_e.next_interval();
        let mut notifies = Vec::new();
        self.link.send(&out.bytes)?;
        loop {
            let until = if self.link.unreliable() {
                resend_at.min(give_up)
            } else {
                give_up
            };
            let stop = interruptible.then_some(&*self.stop);
            match self.link.recv(until, stop)? {
                Recv::Stopped => return Err(Fail::run("interrupted")),
                Recv::Timeout if Instant::now() >= give_up => {
                    return Err(Fail::run(format!(
                        "no final response to {} within {} s",
                        out.method,
                        limit.as_secs()
                    )))
                }
                Recv::Timeout => {
                    self.link.send(&out.bytes)?;
                    resend_at = Instant::now() + timer_e.next_interval();
                }
                Recv::Message(bytes) => {
                    let Ok(msg) = sip::parse(&bytes, !self.link.unreliable()) else {
                        continue;
                    };
                    if out.matches(&msg) {
                        match msg.status() {
                            Some(code) if code >= 200 => return Ok((bytes.clone(), notifies)),
                            _ => timer_e.provisional(),
                        }
                    } else if msg.is_request() && self.answer(&msg, dialog.as_deref_mut())? {
                        notifies.push(bytes.clone());
                    }
                }
            }
        }
    }

    /// Wait for the next fresh NOTIFY of `dialog` until `until`, or Ctrl-C.
    fn wait(
        &mut self,
        until: Instant,
        dialog: &mut Dialog,
        interruptible: bool,
    ) -> Result<Waited, Fail> {
        loop {
            let stop = interruptible.then_some(&*self.stop);
            match self.link.recv(until, stop)? {
                Recv::Stopped => return Ok(Waited::Stopped),
                Recv::Timeout => return Ok(Waited::Timeout),
                Recv::Message(bytes) => {
                    let Ok(msg) = sip::parse(&bytes, !self.link.unreliable()) else {
                        continue;
                    };
                    if msg.is_request() && self.answer(&msg, Some(&mut *dialog))? {
                        return Ok(Waited::Notify(bytes.clone()));
                    }
                }
            }
        }
    }

    /// Answer a request from the server; true if it is a fresh NOTIFY of
    /// `dialog`. Stray responses (retransmitted 200s) never get here.
    fn answer(&mut self, msg: &Message<'_>, dialog: Option<&mut Dialog>) -> Result<bool, Fail> {
        use sip::Method;
        let Some(method) = msg.method() else {
            return Ok(false);
        };
        if method == Method::Ack {
            return Ok(false);
        }
        if method != Method::Notify {
            self.link
                .send(&dialog::answer(msg, 501, "Not Implemented"))?;
            return Ok(false);
        }
        let verdict = dialog.map_or(NotifyVerdict::Stranger, |d| d.on_notify(msg));
        match verdict {
            NotifyVerdict::Stranger => {
                self.link
                    .send(&dialog::answer(msg, 481, "Subscription Does Not Exist"))?;
                Ok(false)
            }
            NotifyVerdict::Repeat => {
                self.link.send(&dialog::answer(msg, 200, "OK"))?;
                Ok(false)
            }
            NotifyVerdict::Fresh => {
                self.link.send(&dialog::answer(msg, 200, "OK"))?;
                Ok(true)
            }
        }
    }

    /// Unsubscribe (Expires: 0) and wait briefly for the final NOTIFY;
    /// fresh NOTIFYs on the way go to `show`.
    fn unsubscribe(
        &mut self,
        dialog: &mut Dialog,
        extra: &[(HeaderName<'static>, String)],
        show: &mut dyn FnMut(&Message<'_>) -> bool,
    ) -> Result<(), Fail> {
        let out = dialog.subscribe(self.link.local(), Some(0), extra);
        let (resp, notes) = self.transact(&out, GOODBYE, Some(&mut *dialog), false)?;
        let mut ended = false;
        for n in &notes {
            if let Ok(m) = sip::parse(n, !self.link.unreliable()) {
                ended |= show(&m);
            }
        }
        let status = parse_status(&resp);
        if !(200..300).contains(&status.0) {
            // 481: the server had already let the subscription go.
            eprintln!("sharedline: unsubscribe answered {} {}", status.0, status.1);
            return Ok(());
        }
        let deadline = Instant::now() + FINAL_NOTIFY;
        while !ended {
            match self.wait(deadline, dialog, false)? {
                Waited::Notify(bytes) => {
                    if let Ok(m) = sip::parse(&bytes, !self.link.unreliable()) {
                        ended = show(&m);
                    }
                }
                Waited::Timeout | Waited::Stopped => break,
            }
        }
        Ok(())
    }
}

/// A flag that SIGINT or SIGTERM sets; a second one exits at once. The
/// handlers are installed before this returns, so an early Ctrl-C is not lost.
fn stop_flag() -> Result<Arc<AtomicBool>, Fail> {
    let flag = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::run(format!("cannot start the signal handler: {e}")))?;
    #[cfg(unix)]
    let (mut int, mut term) = {
        use tokio::signal::unix::{signal, SignalKind};
        let _enter = rt.enter();
        let fail = |e: std::io::Error| Fail::run(format!("cannot catch signals: {e}"));
        (
            signal(SignalKind::interrupt()).map_err(fail)?,
            signal(SignalKind::terminate()).map_err(fail)?,
        )
    };
    let set = flag.clone();
    std::thread::spawn(move || {
        rt.block_on(async move {
            for round in 0..2 {
                #[cfg(unix)]
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                #[cfg(not(unix))]
                let _ = tokio::signal::ctrl_c().await;
                if round == 0 {
                    set.store(true, Ordering::SeqCst);
                } else {
                    std::process::exit(130);
                }
            }
        })
    });
    Ok(flag)
}

fn resolve(server: &str) -> Result<SocketAddr, Fail> {
    server
        .to_socket_addrs()
        .map_err(|e| Fail::usage(format!("--server `{server}`: {e}")))?
        .next()
        .ok_or_else(|| Fail::usage(format!("--server `{server}` resolves to no address")))
}

fn check_uri(uri: &str, what: &str) -> Result<(), Fail> {
    match sip::Uri::parse(uri) {
        Ok(u) if u.is_sip() => Ok(()),
        _ => Err(Fail::usage(format!("{what} `{uri}` is not a sip: URI"))),
    }
}

/// `1`..: a positive integer; `*` if `star` allows it.
fn check_index(index: &str, star: bool) -> Result<(), Fail> {
    let ok = (star && index == "*")
        || (index.bytes().all(|b| b.is_ascii_digit())
            && index.parse::<u32>().is_ok_and(|n| n >= 1));
    if ok {
        Ok(())
    } else {
        Err(Fail::usage(format!(
            "--index `{index}` is not a positive integer{}",
            if star { " or *" } else { "" }
        )))
    }
}

/// A value that goes into a header as it is: a SIP token, nothing that
/// could break the message.
fn check_token(value: &str, what: &str) -> Result<(), Fail> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Fail::usage(format!("{what} `{value}` is not a SIP token")))
    }
}

/// A response's status code and reason phrase (0 if it does not parse).
fn parse_status(bytes: &[u8]) -> (u16, String) {
    match sip::parse(bytes, false) {
        Ok(m) => match m.start {
            sip::StartLine::Response { code, reason, .. } => (code, reason.to_string()),
            sip::StartLine::Request { .. } => (0, String::new()),
        },
        Err(_) => (0, String::new()),
    }
}

/// When to refresh a subscription granted for `secs`: a third before it ends.
fn refresh_delay(secs: u32) -> Duration {
    Duration::from_millis(u64::from(secs.max(1)) * 2000 / 3)
}

/// `HH:MM:SS UTC` of now (no time-zone database here).
fn clock() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The Subscription-State of a NOTIFY, as written, and whether it ends the
/// subscription.
fn sub_state(msg: &Message<'_>) -> (String, bool) {
    let raw = msg
        .header(HeaderName::SubscriptionState)
        .unwrap_or("?")
        .trim()
        .to_string();
    let ended = matches!(msg.subscription_state(), Ok(Some(s)) if s.state == SubState::Terminated);
    (raw, ended)
}

fn run_watch(a: WatchArgs) -> Result<ExitCode, Fail> {
    check_uri(&a.line, "LINE")?;
    let mut s = Session::open(&a.common)?;
    let mut d = Dialog::new(&a.line, &a.common.from, "call-info");
    let mut show = |msg: &Message<'_>| -> bool {
        let cseq = msg.cseq().ok().flatten().map_or(0, |c| c.seq);
        let (state, ended) = sub_state(msg);
        let table = match dialog::rows(msg) {
            Ok(rows) => dialog::format_rows(&rows),
            Err(e) => format!("  (unreadable Call-Info: {e})\n"),
        };
        print!("{}  NOTIFY CSeq {cseq}  {state}\n{table}", clock());
        ended
    };

    let out = d.subscribe(s.link.local(), a.expires, &[]);
    let (resp, notes) = s.transact(&out, TIMER_F, Some(&mut d), true)?;
    let resp_msg = sip::parse(&resp, false).map_err(|e| Fail::run(format!("{e:?}")))?;
    let (code, reason) = parse_status(&resp);
    if !(200..300).contains(&code) {
        return Err(Fail::run(format!("SUBSCRIBE refused: {code} {reason}")));
    }
    d.on_success(&resp_msg);
    let mut granted = resp_msg
        .expires()
        .ok()
        .flatten()
        .or(a.expires)
        .unwrap_or(3600);
    eprintln!(
        "watching {} at {} over {}, expires {granted} s; Ctrl-C to stop",
        a.line,
        a.common.server,
        if a.common.tcp { "TCP" } else { "UDP" }
    );
    for n in &notes {
        if let Ok(m) = sip::parse(n, a.common.tcp) {
            if show(&m) {
                return Err(Fail::run("the server ended the subscription"));
            }
        }
    }
    let mut refresh_at = Instant::now() + refresh_delay(granted);
    loop {
        match s.wait(refresh_at, &mut d, true)? {
            Waited::Notify(bytes) => {
                if let Ok(m) = sip::parse(&bytes, a.common.tcp) {
                    if show(&m) {
                        return Err(Fail::run("the server ended the subscription"));
                    }
                }
            }
            Waited::Timeout => {
                let out = d.subscribe(s.link.local(), Some(granted), &[]);
                let (resp, notes) = s.transact(&out, TIMER_F, Some(&mut d), true)?;
                for n in &notes {
                    if let Ok(m) = sip::parse(n, a.common.tcp) {
                        if show(&m) {
                            return Err(Fail::run("the server ended the subscription"));
                        }
                    }
                }
                let (code, reason) = parse_status(&resp);
                if !(200..300).contains(&code) {
                    return Err(Fail::run(format!("refresh refused: {code} {reason}")));
                }
                if let Ok(m) = sip::parse(&resp, false) {
                    d.on_success(&m);
                    granted = m.expires().ok().flatten().unwrap_or(granted);
                }
                refresh_at = Instant::now() + refresh_delay(granted);
            }
            Waited::Stopped => break,
        }
    }
    debug_assert!(s.stopped());
    s.unsubscribe(&mut d, &[], &mut show)?;
    eprintln!("unsubscribed");
    Ok(ExitCode::SUCCESS)
}

fn run_publish(a: PublishArgs) -> Result<ExitCode, Fail> {
    check_uri(&a.line, "LINE")?;
    let host = dialog::aor_host(&a.line).map_err(Fail::usage)?;
    if let Some(i) = &a.index {
        check_index(i, true)?;
    }
    if let Some(st) = &a.state {
        check_token(st, "--state")?;
        if a.index.is_none() {
            return Err(Fail::usage("--state needs --index"));
        }
    } else if a.etag.is_none() {
        return Err(Fail::usage("give --state (or --etag to refresh or remove)"));
    }
    if let Some(t) = &a.etag {
        check_token(t, "--etag")?;
    }
    if a.uri.as_deref().is_some_and(|u| u.contains(['\r', '\n'])) {
        return Err(Fail::usage("--uri must be one line"));
    }
    let spec = PublishSpec {
        index: a.index.clone(),
        state: a.state.clone(),
        uri: a.uri.clone(),
        expires: a.expires,
        etag: a.etag.clone(),
        remove: a.remove,
    };
    let mut s = Session::open(&a.common)?;
    let out = dialog::publish(&a.line, &host, &a.common.from, s.link.local(), &spec);
    let (resp, _) = s.transact(&out, TIMER_F, None, true)?;
    let msg = sip::parse(&resp, false).map_err(|e| Fail::run(format!("{e:?}")))?;
    let (code, reason) = parse_status(&resp);
    let mut line = format!("{code} {reason}");
    if let Ok(Some(tag)) = msg.sip_etag() {
        line.push_str(&format!(" etag={tag}"));
    }
    if let Ok(Some(e)) = msg.expires() {
        line.push_str(&format!(" expires={e}"));
    }
    if let Ok(Some(m)) = msg.min_expires() {
        line.push_str(&format!(" min-expires={m}"));
    }
    println!("{line}");
    Ok(if (200..300).contains(&code) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_FAILURE)
    })
}

fn run_seize(a: SeizeArgs) -> Result<ExitCode, Fail> {
    check_uri(&a.line, "LINE")?;
    check_index(&a.index, true)?;
    let host = dialog::aor_host(&a.line).map_err(Fail::usage)?;
    let extra = [(
        HeaderName::CallInfo,
        format!("<sip:{host}>;appearance-index={}", a.index),
    )];
    let mut s = Session::open(&a.common)?;
    let mut d = Dialog::new(&a.line, &a.common.from, "line-seize");
    let out = d.subscribe(s.link.local(), a.expires, &extra);
    let (resp, notes) = s.transact(&out, TIMER_F, Some(&mut d), true)?;
    let resp_msg = sip::parse(&resp, false).map_err(|e| Fail::run(format!("{e:?}")))?;
    let (code, reason) = parse_status(&resp);
    if !(200..300).contains(&code) {
        println!("refused {code} {reason}");
        if let Some(r) = resp_msg.header(HeaderName::RetryAfter) {
            eprintln!("sharedline: the server says to retry after {} s", r.trim());
        }
        return Ok(ExitCode::from(crate::EXIT_FAILURE));
    }
    d.on_success(&resp_msg);
    let mut granted = resp_msg
        .expires()
        .ok()
        .flatten()
        .or(a.expires)
        .unwrap_or(15);

    // The NOTIFY names the index held (the only way to learn it for `*`),
    // and a terminated one says the seize is already over.
    let mut index = (a.index != "*").then(|| a.index.clone());
    let mut end: Option<String> = None;
    let note = |msg: &Message<'_>, index: &mut Option<String>, end: &mut Option<String>| {
        if let Ok(Some(ci)) = msg.call_info().map(|v| v.into_iter().next()) {
            if let Some(i) = ci.appearance_index {
                *index = Some(i.trim().to_string());
            }
        }
        if let Ok(Some(st)) = msg.subscription_state() {
            if st.state == SubState::Terminated {
                *end = Some(st.reason.unwrap_or("terminated").to_string());
            }
        }
    };
    for n in &notes {
        if let Ok(m) = sip::parse(n, a.common.tcp) {
            note(&m, &mut index, &mut end);
        }
    }
    if d.established() && (index.is_none() || notes.is_empty()) {
        let deadline = Instant::now() + FIRST_NOTIFY;
        if let Waited::Notify(bytes) = s.wait(deadline, &mut d, true)? {
            if let Ok(m) = sip::parse(&bytes, a.common.tcp) {
                note(&m, &mut index, &mut end);
            }
        }
    }
    let shown = index.clone().unwrap_or_else(|| a.index.clone());
    println!("seized {shown}");
    let mut refresh_at = Instant::now() + refresh_delay(granted);
    while end.is_none() {
        match s.wait(refresh_at, &mut d, true)? {
            Waited::Notify(bytes) => {
                if let Ok(m) = sip::parse(&bytes, a.common.tcp) {
                    note(&m, &mut index, &mut end);
                }
            }
            Waited::Timeout => {
                let out = d.subscribe(s.link.local(), Some(granted), &extra);
                let (resp, notes) = s.transact(&out, TIMER_F, Some(&mut d), true)?;
                for n in &notes {
                    if let Ok(m) = sip::parse(n, a.common.tcp) {
                        note(&m, &mut index, &mut end);
                    }
                }
                let (code, reason) = parse_status(&resp);
                if !(200..300).contains(&code) {
                    println!("lost {shown} {code} {reason}");
                    return Ok(ExitCode::SUCCESS);
                }
                if let Ok(m) = sip::parse(&resp, false) {
                    granted = m.expires().ok().flatten().unwrap_or(granted);
                }
                refresh_at = Instant::now() + refresh_delay(granted);
            }
            Waited::Stopped => {
                let mut ended = |m: &Message<'_>| -> bool { sub_state(m).1 };
                s.unsubscribe(&mut d, &extra, &mut ended)?;
                println!("released {shown}");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    println!("ended {shown} {}", end.unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}
