//! The client's SIP without I/O: building its requests, keeping the one
//! dialog a `watch` or `seize` lives in, judging the NOTIFYs that arrive in
//! it, the UDP retransmit schedule (RFC 3261 Timer E), and reading a
//! call-info NOTIFY into the rows a person reads.

use engine::Transport;
use sip::{HeaderName, Message, Method, RequestWriter, ResponseWriter};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// RFC 3261 T1: the first retransmit interval.
pub(crate) const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2: the longest retransmit interval.
pub(crate) const T2: Duration = Duration::from_secs(4);
/// RFC 3261 Timer F (64 × T1): a request with no final response by then has failed.
pub(crate) const TIMER_F: Duration = Duration::from_secs(32);

/// Where the client sits: the socket's address and transport, which its
/// Via and Contact name so the server can answer and NOTIFY.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Local {
    /// Our socket's address as the server can reach it.
    pub addr: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
}

impl Local {
    /// Our Contact for `from` (the user part is kept so a log reads well).
    fn contact(&self, from: &str) -> String {
        let user = sip::Uri::parse(from)
            .ok()
            .and_then(|u| u.user)
            .unwrap_or("sharedline-client");
        match self.transport {
            Transport::Udp => format!("<sip:{user}@{}>", self.addr),
            Transport::Tcp => format!("<sip:{user}@{};transport=tcp>", self.addr),
        }
    }
}

/// A token for tags, Call-IDs and branches: unique within this process
/// (a counter) and unlikely to meet another process's (hashed with the
/// process id, the clock and std's per-process random hash keys).
pub(crate) fn token() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(n);
    h.write_u32(std::process::id());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(now);
    format!("{:016x}{n:x}", h.finish())
}

/// The host of a line's AOR (`example.com` in `sip:bob@example.com`), which
/// the SCA Call-Info elements name as `<sip:HOST>`.
pub(crate) fn aor_host(aor: &str) -> Result<String, String> {
    let uri = sip::Uri::parse(aor).map_err(|()| format!("`{aor}` is not a SIP URI"))?;
    if !uri.is_sip() {
        return Err(format!("`{aor}` is not a sip: or sips: URI"));
    }
    Ok(match uri.port {
        Some(p) => format!("{}:{p}", uri.host),
        None => uri.host.to_string(),
    })
}

/// `text` as a SIP quoted-string (RFC 3261 §25.1): `"` and `\` escaped.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A quoted-string's content with its escapes undone; other text trimmed.
pub(crate) fn unquote(raw: &str) -> String {
    let raw = raw.trim();
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return raw.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A request ready to send, and what its response must match.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The top Via branch.
    pub branch: String,
    /// The method (a response matches by branch and CSeq method).
    pub method: &'static str,
}

impl Outgoing {
    /// Whether `msg` is a response to this request.
    pub(crate) fn matches(&self, msg: &Message<'_>) -> bool {
        if msg.status().is_none() {
            return false;
        }
        let branch_ok = matches!(msg.via(), Ok(Some(v)) if v.branch == Some(self.branch.as_str()));
        let method_ok = matches!(msg.cseq(), Ok(Some(c)) if c.method == self.method);
        branch_ok && method_ok
    }
}

/// When to send a UDP request again: T1, 2·T1, ... capped at T2 (Timer E);
/// after a provisional response, every T2.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retransmit {
    interval: Duration,
}

impl Retransmit {
    /// A fresh schedule.
    pub(crate) fn new() -> Retransmit {
        Retransmit { interval: T1 }
    }
    /// The wait before the next copy; advances the schedule.
    pub(crate) fn next_interval(&mut self) -> Duration {
        let now = self.interval;
        self.interval = (self.interval * 2).min(T2);
        now
    }
    /// A provisional response arrived: from now on wait T2 between copies.
    pub(crate) fn provisional(&mut self) {
        self.interval = T2;
    }
}

/// What to do with a NOTIFY that arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotifyVerdict {
    /// Ours and new: answer 200 and show it.
    Fresh,
    /// Ours, seen before (our 200 was lost): answer 200 again, show nothing.
    Repeat,
    /// Not in our dialog: answer 481.
    Stranger,
}

/// One SUBSCRIBE dialog of ours (RFC 6665 §4.1), from the initial request
/// until it ends.
#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    /// The line watched or seized.
    pub aor: String,
    /// Our address-of-record, in From.
    pub from: String,
    /// The Event package.
    pub event: &'static str,
    call_id: String,
    local_tag: String,
    /// The server's To tag, once a 2xx gave it.
    remote_tag: Option<String>,
    /// Where in-dialog requests go (the server's Contact), once known.
    target: Option<String>,
    cseq: u32,
    /// The highest NOTIFY CSeq seen, to spot retransmissions.
    last_notify: Option<u32>,
}

impl Dialog {
    /// A dialog about to start.
    pub(crate) fn new(aor: &str, from: &str, event: &'static str) -> Dialog {
        Dialog {
            aor: aor.to_string(),
            from: from.to_string(),
            event,
            call_id: format!("{}@sharedline-client", token()),
            local_tag: token(),
            remote_tag: None,
            target: None,
            cseq: 0,
            last_notify: None,
        }
    }

    /// Whether a 2xx established the dialog.
    pub(crate) fn established(&self) -> bool {
        self.remote_tag.is_some()
    }

    /// A SUBSCRIBE in this dialog (the initial one until a 2xx came back),
    /// with `Expires` and any extra headers.
    pub(crate) fn subscribe(
        &mut self,
        local: Local,
        expires: Option<u32>,
        extra: &[(HeaderName<'static>, String)],
    ) -> Outgoing {
        self.cseq += 1;
        let branch = format!("z9hG4bK{}", token());
        let uri = self.target.clone().unwrap_or_else(|| self.aor.clone());
        let to = match &self.remote_tag {
            Some(tag) => format!("<{}>;tag={tag}", self.aor),
            None => format!("<{}>", self.aor),
        };
        let mut buf = Vec::with_capacity(512);
        let mut w = start(&mut buf, Method::Subscribe, &uri, local, &branch)
            .header(
                HeaderName::From,
                &format!("<{}>;tag={}", self.from, self.local_tag),
            )
            .header(HeaderName::To, &to)
            .header(HeaderName::CallId, &self.call_id)
            .header(HeaderName::CSeq, &format!("{} SUBSCRIBE", self.cseq))
            .header(HeaderName::Contact, &local.contact(&self.from))
            .header(HeaderName::Event, self.event);
        if let Some(e) = expires {
            w = w.header(HeaderName::Expires, &e.to_string());
        }
        for (name, value) in extra {
            w = w.header(*name, value);
        }
        w.finish();
        Outgoing {
            bytes: buf,
            branch,
            method: "SUBSCRIBE",
        }
    }

    /// Learn the server's tag and Contact from a 2xx to our SUBSCRIBE.
    pub(crate) fn on_success(&mut self, msg: &Message<'_>) {
        if self.remote_tag.is_none() {
            if let Ok(Some(to)) = msg.to() {
                self.remote_tag = to.tag().map(str::to_string);
            }
        }
        if let Ok(contacts) = msg.contacts() {
            if let Some(c) = contacts.first() {
                self.target = Some(c.uri.to_string());
            }
        }
    }

    /// Judge a NOTIFY: ours if its Call-ID and To tag are, and (once we know
    /// it) its From tag is the server's. A NOTIFY may beat the 2xx to the
    /// SUBSCRIBE (RFC 6665 §4.1.2.4): then it gives us the server's tag.
    pub(crate) fn on_notify(&mut self, msg: &Message<'_>) -> NotifyVerdict {
        let call_ok = matches!(msg.call_id(), Ok(Some(c)) if c == self.call_id);
        let to_ok = matches!(msg.to(), Ok(Some(t)) if t.tag() == Some(self.local_tag.as_str()));
        let from_tag = msg
            .from()
            .ok()
            .flatten()
            .and_then(|f| f.tag().map(str::to_string));
        let from_ok = match (&self.remote_tag, &from_tag) {
            (Some(ours), Some(theirs)) => ours == theirs,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if !(call_ok && to_ok && from_ok) {
            return NotifyVerdict::Stranger;
        }
        if self.remote_tag.is_none() {
            self.remote_tag = from_tag;
        }
        let seq = match msg.cseq() {
            Ok(Some(c)) => c.seq,
            _ => return NotifyVerdict::Stranger,
        };
        if self.last_notify.is_some_and(|last| seq <= last) {
            return NotifyVerdict::Repeat;
        }
        self.last_notify = Some(seq);
        NotifyVerdict::Fresh
    }
}

/// The request line and Via, Max-Forwards of any request we send.
fn start<'b>(
    buf: &'b mut Vec<u8>,
    method: Method<'_>,
    uri: &str,
    local: Local,
    branch: &str,
) -> RequestWriter<'b> {
    RequestWriter::new(buf, method, uri)
        .header(
            HeaderName::Via,
            &format!(
                "SIP/2.0/{} {};branch={branch};rport",
                local.transport.via_token(),
                local.addr
            ),
        )
        .header(HeaderName::MaxForwards, "70")
}

/// What one `publish` says.
#[derive(Debug, Clone, Default)]
pub(crate) struct PublishSpec {
    /// The appearance index, a number or `*`.
    pub index: Option<String>,
    /// The appearance state.
    pub state: Option<String>,
    /// The appearance-uri as a person writes it (we quote it).
    pub uri: Option<String>,
    /// Expires to ask for.
    pub expires: Option<u32>,
    /// SIP-If-Match: modify, refresh or remove that publication.
    pub etag: Option<String>,
    /// Remove the publication (Expires: 0).
    pub remove: bool,
}

/// A call-info PUBLISH to `aor`. With a state it carries a Call-Info
/// element; without one (a refresh, a removal) none.
pub(crate) fn publish(
    aor: &str,
    host: &str,
    from: &str,
    local: Local,
    spec: &PublishSpec,
) -> Outgoing {
    let branch = format!("z9hG4bK{}", token());
    let mut buf = Vec::with_capacity(512);
    let mut w = start(&mut buf, Method::Publish, aor, local, &branch)
        .header(HeaderName::From, &format!("<{from}>;tag={}", token()))
        .header(HeaderName::To, &format!("<{aor}>"))
        .header(
            HeaderName::CallId,
            &format!("{}@sharedline-client", token()),
        )
        .header(HeaderName::CSeq, "1 PUBLISH")
        .header(HeaderName::Event, "call-info");
    if let Some(tag) = &spec.etag {
        w = w.header(HeaderName::SipIfMatch, tag);
    }
    let expires = if spec.remove { Some(0) } else { spec.expires };
    if let Some(e) = expires {
        w = w.header(HeaderName::Expires, &e.to_string());
    }
    if let (false, Some(state)) = (spec.remove, &spec.state) {
        let index = spec.index.as_deref().unwrap_or("*");
        let mut value = format!("<sip:{host}>;appearance-index={index};appearance-state={state}");
        if let Some(uri) = &spec.uri {
            value.push_str(";appearance-uri=");
            value.push_str(&quote(uri));
        }
        w = w.header(HeaderName::CallInfo, &value);
    }
    w.finish();
    Outgoing {
        bytes: buf,
        branch,
        method: "PUBLISH",
    }
}

/// Our answer to a request the server sent (a NOTIFY): its Via, From, To,
/// Call-ID and CSeq copied back.
pub(crate) fn answer(req: &Message<'_>, code: u16, reason: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    ResponseWriter::new(&mut buf, req, code, reason, None, None).finish();
    buf
}

/// One row of a line's appearance table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// The appearance index.
    pub index: String,
    /// Its state.
    pub state: String,
    /// Who is on it, unquoted, if the server said.
    pub uri: Option<String>,
}

/// The busy appearances a call-info NOTIFY lists (the `*` idle element
/// left out), in the order it lists them.
pub(crate) fn rows(msg: &Message<'_>) -> Result<Vec<Row>, String> {
    let elements = msg.call_info().map_err(|e| e.to_string())?;
    Ok(elements
        .iter()
        .filter(|e| e.appearance_index.map(str::trim) != Some("*"))
        .map(|e| Row {
            index: e.appearance_index.unwrap_or("?").trim().to_string(),
            state: e.appearance_state.unwrap_or("?").trim().to_string(),
            uri: e.appearance_uri.map(unquote),
        })
        .collect())
}

/// The table as printed: one line per busy appearance, or `(all idle)`.
pub(crate) fn format_rows(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "  (all idle)\n".to_string();
    }
    let mut out = String::new();
    for r in rows {
        let line = format!(
            "  {:>3}  {:<12}  {}",
            r.index,
            r.state,
            r.uri.as_deref().unwrap_or("")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Local {
        Local {
            addr: "127.0.0.1:5070".parse().unwrap(),
            transport: Transport::Udp,
        }
    }

    #[test]
    fn quoting_round_trips() {
        let s = r#""Alice" <sip:alice@example.com> \ x"#;
        let q = quote(s);
        assert_eq!(q, r#""\"Alice\" <sip:alice@example.com> \\ x""#);
        assert_eq!(unquote(&q), s);
        assert_eq!(unquote(" bare "), "bare");
    }

    #[test]
    fn timer_e_doubles_to_t2_and_stays() {
        let mut r = Retransmit::new();
        let got: Vec<u64> = (0..6)
            .map(|_| r.next_interval().as_millis() as u64)
            .collect();
        assert_eq!(got, [500, 1000, 2000, 4000, 4000, 4000]);
        let mut r = Retransmit::new();
        r.provisional();
        assert_eq!(r.next_interval(), T2);
    }

    #[test]
    fn publish_parses_back_with_the_quoted_uri() {
        let spec = PublishSpec {
            index: Some("1".into()),
            state: Some("alerting".into()),
            uri: Some(r#""Alice" <sip:alice@example.com>"#.into()),
            expires: Some(120),
            ..PublishSpec::default()
        };
        let out = publish(
            "sip:bob@example.com",
            "example.com",
            "sip:me@localhost",
            local(),
            &spec,
        );
        let msg = sip::parse(&out.bytes, false).unwrap();
        let ci = msg.call_info().unwrap();
        assert_eq!(ci.len(), 1);
        assert_eq!(ci[0].uri, "sip:example.com");
        assert_eq!(ci[0].appearance_state, Some("alerting"));
        assert_eq!(
            unquote(ci[0].appearance_uri.unwrap()),
            r#""Alice" <sip:alice@example.com>"#
        );
        assert_eq!(msg.expires().unwrap(), Some(120));
        assert!(msg.sip_if_match().unwrap().is_empty());
    }

    #[test]
    fn removal_has_no_call_info_and_expires_zero() {
        let spec = PublishSpec {
            index: Some("1".into()),
            state: Some("active".into()),
            etag: Some("abc".into()),
            remove: true,
            ..PublishSpec::default()
        };
        let out = publish(
            "sip:bob@example.com",
            "example.com",
            "sip:me@localhost",
            local(),
            &spec,
        );
        let msg = sip::parse(&out.bytes, false).unwrap();
        assert_eq!(msg.count(HeaderName::CallInfo), 0);
        assert_eq!(msg.expires().unwrap(), Some(0));
        assert_eq!(msg.sip_if_match().unwrap(), ["abc"]);
    }

    #[test]
    fn dialog_learns_the_tag_and_spots_repeats_and_strangers() {
        let mut d = Dialog::new("sip:bob@example.com", "sip:me@localhost", "call-info");
        let sub = d.subscribe(local(), Some(60), &[]);
        let req = sip::parse(&sub.bytes, false).unwrap();
        let mut ok = Vec::new();
        ResponseWriter::new(&mut ok, &req, 200, "OK", None, Some("srv"))
            .header(HeaderName::Contact, "<sip:127.0.0.1:5060>")
            .finish();
        let ok = sip::parse(&ok, false).unwrap();
        assert!(sub.matches(&ok));
        d.on_success(&ok);
        assert!(d.established());
        let local_tag = d.local_tag.clone();
        let notify = |tag: &str, call: &str, seq: u32| {
            format!(
                "NOTIFY sip:me@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKn{seq}\r\n\
                 From: <sip:bob@example.com>;tag={tag}\r\nTo: <sip:me@localhost>;tag={}\r\n\
                 Call-ID: {call}\r\nCSeq: {seq} NOTIFY\r\nContent-Length: 0\r\n\r\n",
                local_tag
            )
        };
        let call = d.call_id.clone();
        let n1 = notify("srv", &call, 1);
        assert_eq!(
            d.on_notify(&sip::parse(n1.as_bytes(), false).unwrap()),
            NotifyVerdict::Fresh
        );
        assert_eq!(
            d.on_notify(&sip::parse(n1.as_bytes(), false).unwrap()),
            NotifyVerdict::Repeat
        );
        let other = notify("other", &call, 2);
        assert_eq!(
            d.on_notify(&sip::parse(other.as_bytes(), false).unwrap()),
            NotifyVerdict::Stranger
        );
        let wrong_call = notify("srv", "x@y", 3);
        assert_eq!(
            d.on_notify(&sip::parse(wrong_call.as_bytes(), false).unwrap()),
            NotifyVerdict::Stranger
        );
        // The refresh goes to the server's Contact, in the dialog.
        let refresh = d.subscribe(local(), Some(60), &[]);
        let r = sip::parse(&refresh.bytes, false).unwrap();
        assert_eq!(r.request_uri(), Some("sip:127.0.0.1:5060"));
        assert_eq!(r.to().unwrap().unwrap().tag(), Some("srv"));
        assert_eq!(r.cseq().unwrap().unwrap().seq, 2);
    }

    #[test]
    fn rows_skip_the_idle_element() {
        let raw = "NOTIFY sip:x@127.0.0.1 SIP/2.0\r\nCall-Info: <sip:example.com>;appearance-index=1;\
                   appearance-state=alerting;appearance-uri=\"\\\"Alice\\\" <sip:alice@example.com>\", \
                   <sip:example.com>;appearance-index=*;appearance-state=idle\r\nContent-Length: 0\r\n\r\n";
        let msg = sip::parse(raw.as_bytes(), false).unwrap();
        let rows = rows(&msg).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            format_rows(&rows),
            "    1  alerting      \"Alice\" <sip:alice@example.com>\n"
        );
        assert_eq!(format_rows(&[]), "  (all idle)\n");
    }
}
