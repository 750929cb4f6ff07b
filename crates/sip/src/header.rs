//! Typed views of the headers the server reads. Each is parsed on access from
//! the raw value and borrows from it. Nothing here allocates: parameter
//! lists are [`Params`] views over the raw `;a=b` text, and list headers
//! have `*_iter` accessors that walk their elements in place. The
//! `Vec`-returning accessors are conveniences that collect those iterators.
//!
//! Every parser first offers its value to the single-pass scanner of the
//! `scan` module, which reads the usual shapes in one forward walk; what it
//! declines goes to the general parser here (the `parse_general` functions),
//! which alone decides errors and their texts. [`crate::Parsed`] keeps the
//! results for the headers read on every request. The general parsers are
//! `#[cold]` and out of line: they run only on what a scanner declines, and
//! inlined beside the fast paths they spread those over more lines of the
//! instruction cache.
//!
//! Folded lines (CRLF followed by white space) inside a value are ordinary
//! white space to every parser here.

use crate::message::{Header, HeaderName, Message};
use crate::scan::{self, Elements, Kind, Stop};
pub use crate::text::ParamIter;
use crate::text::{
    all_digits, is_lws, is_token, is_token_byte, parse_params, scan_params, trim, unquote, Cursor,
};
use crate::uri::{parse_ip_loose, Host, Uri};
use std::fmt;
use std::net::IpAddr;

/// Why a header's value could not be read. Its `Display` is short enough to be
/// a SIP reason phrase, e.g. `Bad CSeq: number out of range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    /// Canonical name of the header at fault.
    pub header: &'static str,
    /// What was wrong, in a few words.
    pub what: &'static str,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bad {}: {}", self.header, self.what)
    }
}

impl std::error::Error for HeaderError {}

/// One `;name=value` (or `;name`) parameter. Names compare
/// case-insensitively; values are raw (quotes kept where they were quoted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter name.
    pub name: &'a str,
    /// The value, if any, as written (a quoted-string keeps its quotes).
    pub value: Option<&'a str>,
}

/// The parameters of a header element or URI, in order: a view over the
/// raw `;a=b;c` text, checked when the element was parsed and read again on
/// each call. Nothing is copied or allocated; `get` scans the few bytes of
/// parameter text, which costs less than building a list would.
#[derive(Clone, Copy, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

impl<'a> Params<'a> {
    /// Wrap parameter text that has already been validated.
    pub(crate) fn from_checked(raw: &'a str) -> Params<'a> {
        Params { raw }
    }
    /// The parameter with this name (case-insensitive): `Some(None)` if it is
    /// present without a value. The first one wins when a name repeats.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }
    /// Whether the parameter is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// Every parameter in order. Names and values are slices of the message,
    /// values raw (a quoted-string keeps its quotes and escapes).
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter::new(self.raw)
    }
    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }
    /// The parameter text as written, from the first `;` (possibly preceded
    /// by white space) to the end of the element.
    pub fn raw(&self) -> &'a str {
        self.raw
    }
}

impl<'a> IntoIterator for Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

/// Equal when they hold the same parameters in the same order, whatever the
/// white space between them.
impl PartialEq for Params<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Params<'_> {}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A Via element (RFC 3261 §20.42, RFC 3581 rport, RFC 5118 IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// `UDP`, `TCP`, `TLS`, ... as written.
    pub transport: &'a str,
    /// sent-by host: a name, an IPv4 address, or an IPv6 reference *with* its brackets.
    pub host: &'a str,
    /// sent-by port, if written.
    pub port: Option<u16>,
    /// `branch` parameter.
    pub branch: Option<&'a str>,
    /// `received` parameter (an IPv4 or IPv6 address, brackets or not).
    pub received: Option<&'a str>,
    /// `rport`: `None` absent, `Some(None)` present without value, `Some(Some(p))` with value.
    pub rport: Option<Option<u16>>,
    /// All parameters, including the ones above.
    pub params: Params<'a>,
    /// The whole element as written.
    pub raw: &'a str,
}

/// A name-addr or addr-spec with parameters: From, To, Contact, Route,
/// Record-Route (RFC 3261 §20.10).
#[derive(Clone)]
pub struct NameAddr<'a> {
    /// Display name (quotes removed, escapes left as written), if any.
    pub display: Option<&'a str>,
    /// The URI text inside `<>` (or the bare addr-spec).
    pub uri: &'a str,
    /// Header parameters after the URI (for a bare addr-spec, everything after the first `;`).
    pub params: Params<'a>,
    /// The whole element as written.
    pub raw: &'a str,
    /// `tag()`'s answer, when the scanner that read the parameters met it
    /// on its way (`None`: not known, read from `params` when asked). Not
    /// part of the value: equality and `Debug` leave it out. It describes
    /// `params` as parsed; nothing in the workspace reassigns `params` of a
    /// parsed `NameAddr`, and code that did would have to clear this.
    pub(crate) tag_seen: Option<Option<&'a str>>,
}

impl PartialEq for NameAddr<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.display == other.display
            && self.uri == other.uri
            && self.params == other.params
            && self.raw == other.raw
    }
}

impl Eq for NameAddr<'_> {}

impl fmt::Debug for NameAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NameAddr")
            .field("display", &self.display)
            .field("uri", &self.uri)
            .field("params", &self.params)
            .field("raw", &self.raw)
            .finish()
    }
}

impl<'a> NameAddr<'a> {
    /// The `tag` parameter.
    #[inline]
    pub fn tag(&self) -> Option<&'a str> {
        match self.tag_seen {
            Some(t) => t,
            None => self.tag_in_params(),
        }
    }

    /// [`NameAddr::tag`] read from the parameter text.
    #[inline(never)]
    fn tag_in_params(&self) -> Option<&'a str> {
        // The usual shape first: `;tag=value` leading the parameters, with
        // no LWS or quote after `=`. That is exactly where `ParamIter`
        // would find the first parameter and its value, without its walk.
        let b = self.params.raw().as_bytes();
        if let [b';', t0, t1, t2, b'=', v, ..] = *b {
            if crate::swar::lower_eq(&[t0, t1, t2], b"tag") && !matches!(v, b'"') && !is_lws(v) {
                let end = crate::simd::value_end(b, 5, false);
                return self.params.raw().get(5..end);
            }
        }
        // `Params::get("tag")`, with a word compare: the names of checked
        // parameters are tokens, free of bytes below 0x21, for which
        // `lower_eq` is an exact case-insensitive compare.
        self.params
            .iter()
            .find(|p| crate::swar::lower_eq(p.name.as_bytes(), b"tag"))
            .and_then(|p| p.value)
    }
    /// The URI, parsed.
    pub fn parsed_uri(&self) -> Result<Uri<'a>, HeaderError> {
        Uri::parse(self.uri).map_err(|_| HeaderError {
            header: "URI",
            what: "malformed URI",
        })
    }
}

/// CSeq (RFC 3261 §20.16): a 32-bit number and a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number (at most 2^31 - 1 per RFC 3261 §8.1.1.5 for
    /// requests we send; we accept up to 2^32 - 1).
    pub seq: u32,
    /// The method token.
    pub method: &'a str,
}

/// Event (RFC 6665 §8.2.1): a package name and an optional `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// Package name, e.g. `call-info` (compared case-insensitively).
    pub package: &'a str,
    /// The `id` parameter.
    pub id: Option<&'a str>,
    /// All parameters.
    pub params: Params<'a>,
}

/// A Content-Type media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType<'a> {
    /// `type/subtype`, as written.
    pub media: &'a str,
    /// Parameters.
    pub params: Params<'a>,
}

/// A Call-Info element as used by shared call appearances (RFC 3261 §20.9,
/// draft-anil-sipping-bla / the SCA call-info package).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo<'a> {
    /// The URI inside `<>`.
    pub uri: &'a str,
    /// `appearance-index` as written (a number or `*`).
    pub appearance_index: Option<&'a str>,
    /// `appearance-state` as written.
    pub appearance_state: Option<&'a str>,
    /// `appearance-uri` as written (a quoted string keeps its quotes and escapes).
    pub appearance_uri: Option<&'a str>,
    /// All parameters.
    pub params: Params<'a>,
}

/// The state in a Subscription-State header (RFC 6665 §8.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    /// active
    Active,
    /// pending
    Pending,
    /// terminated
    Terminated,
}

/// Subscription-State.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState<'a> {
    /// The state.
    pub state: SubState,
    /// `expires` parameter.
    pub expires: Option<u32>,
    /// `reason` parameter.
    pub reason: Option<&'a str>,
    /// `retry-after` parameter.
    pub retry_after: Option<u32>,
}

fn err(header: &'static str, what: &'static str) -> HeaderError {
    HeaderError { header, what }
}

impl<'a> Via<'a> {
    /// Parse one Via element (from [`Message::elements`]).
    pub fn parse(s: &'a str) -> Result<Via<'a>, HeaderError> {
        let raw = trim(s);
        if let Some((v, stop)) = scan::via(raw, 0) {
            if stop.next == raw.len() {
                return Ok(v);
            }
        }
        Via::parse_general(raw)
    }

    /// The general Via parser, for what the single-pass scanner declines.
    #[cold]
    #[inline(never)]
    pub(crate) fn parse_general(s: &'a str) -> Result<Via<'a>, HeaderError> {
        const H: &str = "Via";
        let raw = trim(s);
        let mut c = Cursor::new(raw);
        // sent-protocol: name SLASH version SLASH transport, LWS allowed
        // around the slashes.
        let name = c.token();
        c.skip_lws();
        if name.is_empty() || !c.eat(b'/') {
            return Err(err(H, "bad sent-protocol"));
        }
        c.skip_lws();
        let version = c.token();
        c.skip_lws();
        if version.is_empty() || !c.eat(b'/') {
            return Err(err(H, "bad sent-protocol"));
        }
        c.skip_lws();
        let transport = c.token();
        if transport.is_empty() {
            return Err(err(H, "missing transport"));
        }
        let before = c.pos();
        c.skip_lws();
        if c.pos() == before {
            return Err(err(H, "missing sent-by"));
        }
        let host = if c.peek() == Some(b'[') {
            let start = c.pos();
            c.take_while(|b| b != b']');
            if !c.eat(b']') {
                return Err(err(H, "bad sent-by host"));
            }
            c.since(start)
        } else {
            c.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        if Host::parse(host).is_err() {
            return Err(err(H, "bad sent-by host"));
        }
        c.skip_lws();
        let port = if c.eat(b':') {
            c.skip_lws();
            let p = c.take_while(|b| b.is_ascii_digit());
            Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|_| all_digits(p))
                    .ok_or(err(H, "bad sent-by port"))?,
            )
        } else {
            None
        };
        let (mut branch, mut received, mut rport) = (None, None, None);
        let params = scan_params(&mut c, |p| {
            if p.name.eq_ignore_ascii_case("branch") {
                match p.value {
                    // "z9hG4bK" alone is the RFC 3261 cookie with no
                    // transaction id after it (RFC 4475 badbranch).
                    Some(v) if is_token(v) && v != "z9hG4bK" => branch = Some(v),
                    _ => return Err("bad branch"),
                }
            } else if p.name.eq_ignore_ascii_case("received") {
                match p.value {
                    Some(v) if parse_ip_loose(v).is_some() => received = Some(v),
                    _ => return Err("bad received"),
                }
            } else if p.name.eq_ignore_ascii_case("rport") {
                rport = match p.value {
                    None => Some(None),
                    Some(v) if all_digits(v) => Some(Some(v.parse().map_err(|_| "bad rport")?)),
                    Some(_) => return Err("bad rport"),
                };
            }
            Ok(())
        })
        .map_err(|w| err(H, w))?;
        let via = Via {
            transport,
            host,
            port,
            branch,
            received,
            rport,
            params,
            raw,
        };
        Ok(via)
    }

    /// The `received` address, brackets or not (RFC 5118 §4.5).
    pub fn received_ip(&self) -> Option<IpAddr> {
        self.received.and_then(parse_ip_loose)
    }

    /// The sent-by host, parsed.
    pub fn sent_by(&self) -> Option<Host<'a>> {
        Host::parse(self.host).ok()
    }
}

/// A display name: a quoted string (returned without its quotes) or tokens
/// separated by LWS, followed by `<`.
fn display_name<'a>(c: &mut Cursor<'a>, h: &'static str) -> Result<Option<&'a str>, HeaderError> {
    c.skip_lws();
    if c.peek() == Some(b'"') {
        let q = c.quoted().map_err(|_| err(h, "unbalanced quotes"))?;
        c.skip_lws();
        if c.peek() != Some(b'<') {
            return Err(err(h, "missing <"));
        }
        return Ok(Some(unquote(q)));
    }
    let start = c.pos();
    loop {
        c.skip_lws();
        match c.peek() {
            Some(b'<') => break,
            Some(b) if is_token_byte(b) => {
                c.token();
            }
            _ => return Err(err(h, "bad display name")),
        }
    }
    let d = trim(c.since(start));
    Ok(if d.is_empty() { None } else { Some(d) })
}

/// The text up to `>` (not consumed), which must be non-empty and hold no
/// white space; `None` if it is empty or holds white space. A missing `>`
/// leaves the cursor at the end for the caller to report.
fn angle_uri<'a>(c: &mut Cursor<'a>) -> Option<&'a str> {
    let mut lws = false;
    let uri = c.take_while(|b| {
        lws |= is_lws(b);
        b != b'>'
    });
    if c.at_end() {
        return Some(uri);
    }
    (!uri.is_empty() && !lws).then_some(uri)
}

fn name_addr<'a>(s: &'a str, h: &'static str) -> Result<NameAddr<'a>, HeaderError> {
    let raw = trim(s);
    if let Some(na) = scan::single_name_addr(raw) {
        return Ok(na);
    }
    name_addr_general(raw, h)
}

/// The general name-addr parser, for what the single-pass scanner declines.
#[cold]
#[inline(never)]
pub(crate) fn name_addr_general<'a>(
    s: &'a str,
    h: &'static str,
) -> Result<NameAddr<'a>, HeaderError> {
    let raw = trim(s);
    if raw.is_empty() {
        return Err(err(h, "empty value"));
    }
    let mut c = Cursor::new(raw);
    // `raw` was checked non-empty just above.
    let first = raw.as_bytes().first().copied().unwrap_or(b' ');
    // The usual `<uri>;params` skips the display-name scan and the search
    // for `<`.
    if first == b'<' || first == b'"' || memchr::memchr(b'<', raw.as_bytes()).is_some() {
        let display = if first == b'<' {
            None
        } else {
            display_name(&mut c, h)?
        };
        c.eat(b'<');
        let uri = angle_uri(&mut c).ok_or(err(h, "bad URI in <>"))?;
        if !c.eat(b'>') {
            return Err(err(h, "missing >"));
        }
        let params = parse_params(&mut c).map_err(|w| err(h, w))?;
        return Ok(NameAddr {
            display,
            uri,
            params,
            raw,
            tag_seen: None,
        });
    }
    // addr-spec: the URI runs to the first ';' (RFC 3261 §20.10: a URI
    // holding ',', '?' or ';' must be in <>).
    let uri = c.take_while(|b| b != b';' && !is_lws(b));
    if uri.is_empty() {
        return Err(err(h, "empty URI"));
    }
    if uri.contains(['?', ',']) {
        return Err(err(h, "URI with ? or , must be in <>"));
    }
    let params = parse_params(&mut c).map_err(|w| err(h, w))?;
    Ok(NameAddr {
        display: None,
        uri,
        params,
        raw,
        tag_seen: None,
    })
}

impl<'a> NameAddr<'a> {
    /// Parse one name-addr / addr-spec element.
    pub fn parse(s: &'a str) -> Result<NameAddr<'a>, HeaderError> {
        name_addr(s, "address")
    }
}

impl<'a> CallInfo<'a> {
    /// Parse one Call-Info element.
    pub fn parse(s: &'a str) -> Result<CallInfo<'a>, HeaderError> {
        let t = trim(s);
        if let Some((ci, stop)) = scan::call_info(t, 0) {
            if stop.next == t.len() {
                return Ok(ci);
            }
        }
        CallInfo::parse_general(t)
    }

    /// The general Call-Info parser.
    #[cold]
    #[inline(never)]
    pub(crate) fn parse_general(s: &'a str) -> Result<CallInfo<'a>, HeaderError> {
        const H: &str = "Call-Info";
        let mut c = Cursor::new(trim(s));
        if !c.eat(b'<') {
            return Err(err(H, "missing <"));
        }
        let uri = angle_uri(&mut c).ok_or(err(H, "bad URI in <>"))?;
        if !c.eat(b'>') {
            return Err(err(H, "missing >"));
        }
        let (mut index, mut state, mut auri) = (None, None, None);
        // The first occurrence of a name wins, as with `Params::get`.
        let params = scan_params(&mut c, |p| {
            let slot = if p.name.eq_ignore_ascii_case("appearance-index") {
                &mut index
            } else if p.name.eq_ignore_ascii_case("appearance-state") {
                &mut state
            } else if p.name.eq_ignore_ascii_case("appearance-uri") {
                &mut auri
            } else {
                return Ok(());
            };
            if slot.is_none() {
                *slot = Some(p.value);
            }
            Ok(())
        })
        .map_err(|w| err(H, w))?;
        Ok(CallInfo {
            uri,
            appearance_index: index.flatten(),
            appearance_state: state.flatten(),
            appearance_uri: auri.flatten(),
            params,
        })
    }
}

impl<'a> Event<'a> {
    /// Parse an Event value: `package *(;param)`.
    pub fn parse(s: &'a str) -> Result<Event<'a>, HeaderError> {
        let t = trim(s);
        match scan::event(t) {
            Some(e) => Ok(e),
            None => Event::parse_general(t),
        }
    }

    /// The general Event parser.
    #[cold]
    #[inline(never)]
    pub(crate) fn parse_general(s: &'a str) -> Result<Event<'a>, HeaderError> {
        const H: &str = "Event";
        let mut c = Cursor::new(trim(s));
        let package = c.token();
        if package.is_empty() {
            return Err(err(H, "missing package"));
        }
        let mut id = None;
        let params = scan_params(&mut c, |p| {
            if id.is_none() && p.name.eq_ignore_ascii_case("id") {
                id = Some(p.value);
            }
            Ok(())
        })
        .map_err(|w| err(H, w))?;
        let id = id.flatten();
        Ok(Event {
            package,
            id,
            params,
        })
    }
}

impl<'a> ContentType<'a> {
    /// Parse a media type `type/subtype *(;param)`.
    pub fn parse(s: &'a str) -> Result<ContentType<'a>, HeaderError> {
        let t = trim(s);
        match scan::content_type(t) {
            Some(c) => Ok(c),
            None => ContentType::parse_general(t),
        }
    }

    /// The general Content-Type parser.
    #[cold]
    #[inline(never)]
    pub(crate) fn parse_general(s: &'a str) -> Result<ContentType<'a>, HeaderError> {
        const H: &str = "Content-Type";
        let v = trim(s);
        let mut c = Cursor::new(v);
        let media = media_range(&mut c).ok_or(err(H, "bad media type"))?;
        let params = parse_params(&mut c).map_err(|w| err(H, w))?;
        Ok(ContentType { media, params })
    }
}

/// `type SLASH subtype` at the cursor, returned as one slice.
fn media_range<'a>(c: &mut Cursor<'a>) -> Option<&'a str> {
    let start = c.pos();
    let t = c.token();
    c.skip_lws();
    if t.is_empty() || !c.eat(b'/') {
        return None;
    }
    c.skip_lws();
    if c.token().is_empty() {
        return None;
    }
    Some(c.since(start))
}

impl<'a> SubscriptionState<'a> {
    /// Parse `substate *(;param)`.
    pub fn parse(s: &'a str) -> Result<SubscriptionState<'a>, HeaderError> {
        let t = trim(s);
        match scan::subscription_state(t) {
            Some(st) => Ok(st),
            None => SubscriptionState::parse_general(t),
        }
    }

    /// The general Subscription-State parser.
    #[cold]
    #[inline(never)]
    pub(crate) fn parse_general(s: &'a str) -> Result<SubscriptionState<'a>, HeaderError> {
        const H: &str = "Subscription-State";
        let mut c = Cursor::new(trim(s));
        let st = c.token();
        let state = if st.eq_ignore_ascii_case("active") {
            SubState::Active
        } else if st.eq_ignore_ascii_case("pending") {
            SubState::Pending
        } else if st.eq_ignore_ascii_case("terminated") {
            SubState::Terminated
        } else {
            return Err(err(H, "unknown state"));
        };
        // First occurrence of each name, as `Params::get` would find it.
        let (mut exp, mut retry, mut reason) = (None, None, None);
        scan_params(&mut c, |p| {
            let slot = if p.name.eq_ignore_ascii_case("expires") {
                &mut exp
            } else if p.name.eq_ignore_ascii_case("retry-after") {
                &mut retry
            } else if p.name.eq_ignore_ascii_case("reason") {
                &mut reason
            } else {
                return Ok(());
            };
            if slot.is_none() {
                *slot = Some(p.value);
            }
            Ok(())
        })
        .map_err(|w| err(H, w))?;
        let num = |p: Option<Option<&str>>| -> Result<Option<u32>, HeaderError> {
            match p {
                None => Ok(None),
                Some(Some(v)) => delta_seconds(v).map(Some).ok_or(err(H, "bad number")),
                Some(None) => Err(err(H, "missing value")),
            }
        };
        let expires = num(exp)?;
        let retry_after = num(retry)?;
        let reason = match reason {
            None => None,
            Some(Some(v)) if is_token(v) => Some(v),
            Some(_) => return Err(err(H, "bad reason")),
        };
        Ok(SubscriptionState {
            state,
            expires,
            reason,
            retry_after,
        })
    }
}

/// delta-seconds, clamped to u32::MAX when larger (RFC 3261 §20.19).
/// One pass: the running value is capped just above u32::MAX, so it cannot
/// overflow and still tells a clamped value from an exact one.
pub(crate) fn delta_seconds(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let cap = u64::from(u32::MAX) + 1;
    let mut n = 0u64;
    for &c in s.as_bytes() {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = (n * 10 + u64::from(d)).min(cap);
    }
    Some(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Readers of single header values, shared by the accessors below and by
/// [`crate::check::check_request`] (which finds the values in one pass over
/// the headers and hands them here).
pub(crate) mod value {
    use super::{err, HeaderError};
    use crate::header::{delta_seconds, CSeq};
    use crate::simd::all_token;
    use crate::text::{all_digits, has_lws, parse_u64, Cursor};

    pub(crate) fn call_id(v: &str) -> Result<&str, HeaderError> {
        if v.is_empty() || has_lws(v) {
            Err(err("Call-ID", "malformed"))
        } else {
            Ok(v)
        }
    }

    pub(crate) fn cseq(v: &str) -> Result<CSeq<'_>, HeaderError> {
        // The usual shape in one pass: at most nine digits (so the number
        // fits), one space, a token to the end. Anything else is read by
        // the general code below, which gives the same answer here.
        let b = v.as_bytes();
        let mut i = 0;
        let mut seq = 0u32;
        while i < b.len().min(9) && b[i].is_ascii_digit() {
            seq = seq * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        if i > 0 && b.get(i) == Some(&b' ') {
            let method = &b[i + 1..];
            if all_token(method) && !method.is_empty() {
                if let Some(method) = v.get(i + 1..) {
                    return Ok(CSeq { seq, method });
                }
            }
        }
        cseq_general(v)
    }

    /// What the one-pass shape of [`cseq`] declines.
    #[cold]
    #[inline(never)]
    fn cseq_general(v: &str) -> Result<CSeq<'_>, HeaderError> {
        const H: &str = "CSeq";
        let mut c = Cursor::new(v);
        let digits = c.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(err(H, "missing number"));
        }
        let seq = parse_u64(digits)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(err(H, "number out of range"))?;
        let before = c.pos();
        c.skip_lws();
        let spaced = c.pos() > before;
        let method = c.token();
        if !spaced || method.is_empty() || !c.at_end() {
            return Err(err(H, "bad method"));
        }
        Ok(CSeq { seq, method })
    }

    pub(crate) fn max_forwards(v: &str) -> Result<u32, HeaderError> {
        const H: &str = "Max-Forwards";
        if !all_digits(v) {
            return Err(err(H, "not a number"));
        }
        match parse_u64(v) {
            Some(n) if n <= 255 => Ok(n as u32),
            _ => Err(err(H, "value out of range")),
        }
    }

    pub(crate) fn content_length(v: &str) -> Result<u32, HeaderError> {
        const H: &str = "Content-Length";
        if !all_digits(v) {
            return Err(err(H, "not a number"));
        }
        parse_u64(v)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(err(H, "value out of range"))
    }

    pub(crate) fn delta(v: &str, header: &'static str) -> Result<u32, HeaderError> {
        delta_seconds(v).ok_or(err(header, "not a number"))
    }
}

/// One Contact element; `*` is a NameAddr whose uri is `*`.
pub(crate) fn contact(e: &str) -> Result<NameAddr<'_>, HeaderError> {
    if e == "*" {
        Ok(NameAddr {
            display: None,
            uri: e,
            params: Params::default(),
            raw: e,
            tag_seen: Some(None),
        })
    } else {
        name_addr(e, "Contact")
    }
}

pub(crate) fn from_value(v: &str) -> Result<NameAddr<'_>, HeaderError> {
    name_addr(v, "From")
}

pub(crate) fn to_value(v: &str) -> Result<NameAddr<'_>, HeaderError> {
    name_addr(v, "To")
}

#[cold]
#[inline(never)]
pub(crate) fn accept_range(e: &str) -> Result<&str, HeaderError> {
    let mut c = Cursor::new(e);
    let m = media_range(&mut c).ok_or(err("Accept", "bad media range"))?;
    parse_params(&mut c).map_err(|w| err("Accept", w))?;
    Ok(m)
}

pub(crate) fn token_of<'a>(e: &'a str, header: &'static str) -> Result<&'a str, HeaderError> {
    if is_token(e) {
        Ok(e)
    } else {
        Err(err(header, "not a token"))
    }
}

fn require_token(e: &str) -> Result<&str, HeaderError> {
    token_of(e, "Require")
}

fn supported_token(e: &str) -> Result<&str, HeaderError> {
    token_of(e, "Supported")
}

fn allow_events_token(e: &str) -> Result<&str, HeaderError> {
    token_of(e, "Allow-Events")
}

/// The element iterators behind the `*_iter` accessors, over a run of header
/// lines (the whole index for [`Message`], the part from the first line of
/// that name for [`crate::Parsed`]).
pub(crate) mod lists {
    use super::*;

    type Lines<'m, 'a> = &'m [Header<'a>];

    /// A list header's [`Kind`]: its name, scanner and general parser.
    macro_rules! kinds {
        ($( $f:ident, $kind:ident, $item:ty, $name:ident, $fast:expr, $slow:expr; )*) => {
            $(
                pub(crate) struct $kind;

                impl<'a> Kind<'a> for $kind {
                    type Item = $item;
                    const NAME: HeaderName<'static> = HeaderName::$name;
                    fn fast(s: &'a str, i: usize) -> Option<($item, Stop)> {
                        $fast(s, i)
                    }
                    fn slow(s: &'a str) -> Result<$item, HeaderError> {
                        $slow(s)
                    }
                }

                pub(crate) fn $f<'m, 'a>(h: Lines<'m, 'a>) -> Elements<'m, 'a, $kind> {
                    Elements::new(h)
                }
            )*
        };
    }

    kinds! {
        vias, ViaKind, Via<'a>, Via, scan::via, Via::parse_general;
        contacts, ContactKind, NameAddr<'a>, Contact, scan::contact, contact_general;
        routes, RouteKind, NameAddr<'a>, Route, scan::name_addr, |e| name_addr_general(e, "Route");
        record_routes, RecordRouteKind, NameAddr<'a>, RecordRoute, scan::name_addr,
            |e| name_addr_general(e, "Record-Route");
        call_info, CallInfoKind, CallInfo<'a>, CallInfo, scan::call_info, CallInfo::parse_general;
        require, RequireKind, &'a str, Require, scan::token, require_token;
        supported, SupportedKind, &'a str, Supported, scan::token, supported_token;
        allow_events, AllowEventsKind, &'a str, AllowEvents, scan::token, allow_events_token;
        accept, AcceptKind, &'a str, Accept, scan::accept, accept_range;
    }

    pub(crate) fn sip_if_match<'m, 'a>(
        h: Lines<'m, 'a>,
    ) -> impl Iterator<Item = Result<&'a str, HeaderError>> + 'm {
        h.iter()
            .filter(|h| h.name == HeaderName::SipIfMatch)
            .map(|h| token_of(trim(h.value), "SIP-If-Match"))
    }

    #[cold]
    #[inline(never)]
    fn contact_general(e: &str) -> Result<NameAddr<'_>, HeaderError> {
        if e == "*" {
            contact(e)
        } else {
            name_addr_general(e, "Contact")
        }
    }
}

/// Typed accessors. Each returns `Ok(None)` when the header is absent and an
/// error when it is present but malformed, or (for single-valued headers)
/// present more than once.
///
/// List headers come two ways. The `*_iter` methods (`vias_iter`,
/// `contacts_iter`, `record_routes_iter`, `routes_iter`, `call_info_iter`,
/// `require_iter`, `supported_iter`, `allow_events_iter`, `accept_iter`,
/// `sip_if_match_iter`) allocate nothing: they walk every element of every
/// line of the header, in order, yielding each parsed element or the error
/// for a malformed one (and carry on after it). The `Vec` methods of the same
/// name without `_iter` collect them, stopping at the first error; use them
/// where a list is handier than speed.
impl<'a> Message<'a> {
    /// The one value of a single-valued header, trimmed.
    fn single(&self, name: HeaderName<'_>) -> Result<Option<&'a str>, HeaderError> {
        let mut found = None;
        for h in &self.headers {
            if h.name == name {
                if found.is_some() {
                    return Err(err(canonical(name), "header repeated"));
                }
                found = Some(trim(h.value));
            }
        }
        Ok(found)
    }

    /// Every Via element, top first, without allocating.
    pub fn vias_iter(&self) -> impl Iterator<Item = Result<Via<'a>, HeaderError>> + '_ {
        lists::vias(&self.headers)
    }
    /// All Via elements, top first.
    pub fn vias(&self) -> Result<Vec<Via<'a>>, HeaderError> {
        self.vias_iter().collect()
    }
    /// The top Via.
    pub fn via(&self) -> Result<Option<Via<'a>>, HeaderError> {
        self.vias_iter().next().transpose()
    }
    /// From (single-valued).
    pub fn from(&self) -> Result<Option<NameAddr<'a>>, HeaderError> {
        self.single(HeaderName::From)?.map(from_value).transpose()
    }
    /// To (single-valued).
    pub fn to(&self) -> Result<Option<NameAddr<'a>>, HeaderError> {
        self.single(HeaderName::To)?.map(to_value).transpose()
    }
    /// Call-ID (single-valued, trimmed).
    pub fn call_id(&self) -> Result<Option<&'a str>, HeaderError> {
        self.single(HeaderName::CallId)?
            .map(value::call_id)
            .transpose()
    }
    /// CSeq (single-valued).
    pub fn cseq(&self) -> Result<Option<CSeq<'a>>, HeaderError> {
        self.single(HeaderName::CSeq)?.map(value::cseq).transpose()
    }
    /// Max-Forwards (single-valued; values above 255 are an error).
    pub fn max_forwards(&self) -> Result<Option<u32>, HeaderError> {
        self.single(HeaderName::MaxForwards)?
            .map(value::max_forwards)
            .transpose()
    }
    /// Every Contact element, without allocating (`*` is a NameAddr whose
    /// uri is `*`).
    pub fn contacts_iter(&self) -> impl Iterator<Item = Result<NameAddr<'a>, HeaderError>> + '_ {
        lists::contacts(&self.headers)
    }
    /// All Contact elements (`*` is returned as a NameAddr whose uri is `*`).
    pub fn contacts(&self) -> Result<Vec<NameAddr<'a>>, HeaderError> {
        self.contacts_iter().collect()
    }
    /// Every Record-Route element in order, without allocating.
    pub fn record_routes_iter(
        &self,
    ) -> impl Iterator<Item = Result<NameAddr<'a>, HeaderError>> + '_ {
        lists::record_routes(&self.headers)
    }
    /// All Record-Route elements, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr<'a>>, HeaderError> {
        self.record_routes_iter().collect()
    }
    /// Every Route element in order, without allocating.
    pub fn routes_iter(&self) -> impl Iterator<Item = Result<NameAddr<'a>, HeaderError>> + '_ {
        lists::routes(&self.headers)
    }
    /// All Route elements, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr<'a>>, HeaderError> {
        self.routes_iter().collect()
    }
    /// Expires as delta-seconds (single-valued). Values above 2^32-1 clamp to
    /// u32::MAX (RFC 3261 §20.19 lets a too-large value be read as the maximum).
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.delta(HeaderName::Expires)
    }
    /// Min-Expires.
    pub fn min_expires(&self) -> Result<Option<u32>, HeaderError> {
        self.delta(HeaderName::MinExpires)
    }
    fn delta(&self, name: HeaderName<'_>) -> Result<Option<u32>, HeaderError> {
        self.single(name)?
            .map(|v| value::delta(v, canonical(name)))
            .transpose()
    }
    /// Event (single-valued).
    pub fn event(&self) -> Result<Option<Event<'a>>, HeaderError> {
        self.single(HeaderName::Event)?
            .map(Event::parse)
            .transpose()
    }
    /// Every Allow-Events token, without allocating.
    pub fn allow_events_iter(&self) -> impl Iterator<Item = Result<&'a str, HeaderError>> + '_ {
        lists::allow_events(&self.headers)
    }
    /// Allow-Events tokens.
    pub fn allow_events(&self) -> Result<Vec<&'a str>, HeaderError> {
        self.allow_events_iter().collect()
    }
    /// Every Accept media range (`type/subtype`, parameters checked and
    /// dropped), without allocating.
    pub fn accept_iter(&self) -> impl Iterator<Item = Result<&'a str, HeaderError>> + '_ {
        lists::accept(&self.headers)
    }
    /// Accept media ranges (`type/subtype`, parameters dropped).
    pub fn accept(&self) -> Result<Vec<&'a str>, HeaderError> {
        self.accept_iter().collect()
    }
    /// Content-Type (single-valued).
    pub fn content_type(&self) -> Result<Option<ContentType<'a>>, HeaderError> {
        self.single(HeaderName::ContentType)?
            .map(ContentType::parse)
            .transpose()
    }
    /// Content-Length (single-valued).
    pub fn content_length(&self) -> Result<Option<u32>, HeaderError> {
        self.single(HeaderName::ContentLength)?
            .map(value::content_length)
            .transpose()
    }
    /// Every Require option tag, without allocating.
    pub fn require_iter(&self) -> impl Iterator<Item = Result<&'a str, HeaderError>> + '_ {
        lists::require(&self.headers)
    }
    /// Require option tags.
    pub fn require(&self) -> Result<Vec<&'a str>, HeaderError> {
        self.require_iter().collect()
    }
    /// Every Supported option tag, without allocating.
    pub fn supported_iter(&self) -> impl Iterator<Item = Result<&'a str, HeaderError>> + '_ {
        lists::supported(&self.headers)
    }
    /// Supported option tags.
    pub fn supported(&self) -> Result<Vec<&'a str>, HeaderError> {
        self.supported_iter().collect()
    }
    /// Every Call-Info element, across comma lists and repeated lines,
    /// without allocating.
    pub fn call_info_iter(&self) -> impl Iterator<Item = Result<CallInfo<'a>, HeaderError>> + '_ {
        lists::call_info(&self.headers)
    }
    /// Every Call-Info element, across comma lists and repeated lines.
    pub fn call_info(&self) -> Result<Vec<CallInfo<'a>>, HeaderError> {
        self.call_info_iter().collect()
    }
    /// SIP-ETag (single-valued).
    pub fn sip_etag(&self) -> Result<Option<&'a str>, HeaderError> {
        self.single(HeaderName::SipETag)?
            .map(|v| token_of(v, "SIP-ETag"))
            .transpose()
    }
    /// Every SIP-If-Match value, one per header line, without allocating
    /// (more than one is the caller's 400).
    pub fn sip_if_match_iter(&self) -> impl Iterator<Item = Result<&'a str, HeaderError>> + '_ {
        lists::sip_if_match(&self.headers)
    }
    /// Every SIP-If-Match value (more than one is the caller's 400).
    pub fn sip_if_match(&self) -> Result<Vec<&'a str>, HeaderError> {
        self.sip_if_match_iter().collect()
    }
    /// Subscription-State (single-valued).
    pub fn subscription_state(&self) -> Result<Option<SubscriptionState<'a>>, HeaderError> {
        self.single(HeaderName::SubscriptionState)?
            .map(SubscriptionState::parse)
            .transpose()
    }
}

/// The canonical name as a `'static` string for error messages.
fn canonical(name: HeaderName<'_>) -> &'static str {
    name.canonical().unwrap_or("header")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tag_is_the_first_tag_parameter_whatever_its_shape() {
        // The `;tag=value` shortcut of `NameAddr::tag` and the walk it
        // skips give the same answer as `Params::get` on every shape.
        for v in [
            "<sip:a@b>;tag=1",
            "<sip:a@b>;tag=abc;x=1",
            "<sip:a@b>;TaG=Up",
            "<sip:a@b>;tag=\"q\"",
            "<sip:a@b> ;tag=1",
            "<sip:a@b>; tag=1",
            "<sip:a@b>;tag =1",
            "<sip:a@b>;tag= 1",
            "<sip:a@b>;tag",
            "<sip:a@b>;tag;tag=2",
            "<sip:a@b>;tagx=1;tag=2",
            "<sip:a@b>;x=1;tag=2",
            "<sip:a@b>;tag=1;tag=2",
            "<sip:a@b>;tag=a-long-tag-value-over-sixteen-bytes",
            "<sip:a@b>",
            "sip:a@b;tag=1",
        ] {
            let a = super::from_value(v).unwrap();
            assert_eq!(a.tag(), a.params.get("tag").flatten(), "{v}");
            // What the scanner remembered is what the walk finds.
            assert_eq!(a.tag(), a.tag_in_params(), "{v}");
        }
        let a = super::from_value("<sip:a@b>;tag=1x").unwrap();
        assert_eq!(a.tag(), Some("1x"));
    }

    #[test]
    fn delta_seconds_clamps_and_refuses_like_the_rfc_says() {
        for (text, want) in [
            ("0", Some(0)),
            ("3600", Some(3600)),
            ("4294967295", Some(u32::MAX)),
            ("4294967296", Some(u32::MAX)),
            ("99999999999999999999999999", Some(u32::MAX)),
            ("", None),
            ("12a", None),
            ("-1", None),
            (" 1", None),
        ] {
            assert_eq!(delta_seconds(text), want, "{text}");
        }
    }

    use super::*;
    use crate::parse::parse;

    fn msg(headers: &str) -> Vec<u8> {
        format!("NOTIFY sip:a@example.com SIP/2.0\r\n{headers}\r\nl: 0\r\n\r\n").into_bytes()
    }

    #[test]
    fn compact_forms_map_to_full_names() {
        let b = msg("v: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\ni: id1\r\nm: <sip:e@f>\r\no: call-info;id=3\r\nu: call-info, line-seize\r\nk: replaces\r\nc: application/x-call-info");
        let m = parse(&b, true).unwrap();
        assert_eq!(m.via().unwrap().unwrap().branch, Some("z9hG4bK1"));
        assert_eq!(m.from().unwrap().unwrap().tag(), Some("1"));
        assert_eq!(m.to().unwrap().unwrap().uri, "sip:c@d");
        assert_eq!(m.call_id().unwrap(), Some("id1"));
        assert_eq!(m.contacts().unwrap()[0].uri, "sip:e@f");
        let ev = m.event().unwrap().unwrap();
        assert_eq!((ev.package, ev.id), ("call-info", Some("3")));
        assert_eq!(m.allow_events().unwrap(), vec!["call-info", "line-seize"]);
        assert_eq!(m.supported().unwrap(), vec!["replaces"]);
        assert_eq!(
            m.content_type().unwrap().unwrap().media,
            "application/x-call-info"
        );
        assert_eq!(m.content_length().unwrap(), Some(0));
    }

    #[test]
    fn quoted_display_with_escaped_quotes_and_commas() {
        let b = msg("From: \"Smith, \\\"Bob\\\", Jr\" <sip:bob@example.com>;tag=9\r\nContact: \"a,b\" <sip:x@y>, <sip:z@w>;expires=5");
        let m = parse(&b, true).unwrap();
        let f = m.from().unwrap().unwrap();
        assert_eq!(f.display, Some("Smith, \\\"Bob\\\", Jr"));
        assert_eq!(f.tag(), Some("9"));
        let c = m.contacts().unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].display, Some("a,b"));
        assert_eq!(c[1].params.get("expires"), Some(Some("5")));
    }

    #[test]
    fn call_info_elements_across_lines_and_headers() {
        let b = msg("Call-Info: <sip:x@example.com>;appearance-index=1;\r\n appearance-state=active;appearance-uri=\"\\\"A\\\" <sip:a@b>\",\r\n\t<sip:x@example.com>;appearance-index=2;appearance-state=seized\r\nCall-Info: <sip:x@example.com>;appearance-index=*;appearance-state=idle");
        let m = parse(&b, true).unwrap();
        let ci = m.call_info().unwrap();
        let got: Vec<_> = ci
            .iter()
            .map(|c| (c.appearance_index, c.appearance_state))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("1"), Some("active")),
                (Some("2"), Some("seized")),
                (Some("*"), Some("idle"))
            ]
        );
        assert_eq!(ci[0].appearance_uri, Some("\"\\\"A\\\" <sip:a@b>\""));
        assert_eq!(ci[0].uri, "sip:x@example.com");
        let b = msg("Call-Info: sip:x@example.com;appearance-index=1");
        assert!(parse(&b, true).unwrap().call_info().is_err());
    }

    #[test]
    fn sip_if_match_repeated_and_etag() {
        let b = msg("SIP-If-Match: abc\r\nSIP-If-Match: def\r\nSIP-ETag: e1");
        let m = parse(&b, true).unwrap();
        assert_eq!(m.sip_if_match().unwrap(), vec!["abc", "def"]);
        assert_eq!(m.sip_etag().unwrap(), Some("e1"));
        let b = msg("SIP-ETag: e1\r\nSIP-ETag: e2");
        assert_eq!(
            parse(&b, true).unwrap().sip_etag().unwrap_err().to_string(),
            "Bad SIP-ETag: header repeated"
        );
    }

    #[test]
    fn subscription_state_params() {
        let read = |v: &str| {
            let b = msg(&format!("Subscription-State: {v}"));
            let m = parse(&b, true).unwrap();
            m.subscription_state().map(|s| {
                s.map(|s| {
                    (
                        s.state,
                        s.expires,
                        s.reason.map(str::to_owned),
                        s.retry_after,
                    )
                })
            })
        };
        assert_eq!(
            read("active;expires=3600"),
            Ok(Some((SubState::Active, Some(3600), None, None)))
        );
        assert_eq!(
            read("PENDING"),
            Ok(Some((SubState::Pending, None, None, None)))
        );
        assert_eq!(
            read("terminated ; reason=noresource;retry-after=30"),
            Ok(Some((
                SubState::Terminated,
                None,
                Some("noresource".into()),
                Some(30)
            )))
        );
        assert!(read("waiting").is_err());
        assert!(read("active;expires=x").is_err());
    }

    #[test]
    fn cseq_max_forwards_expires_edges() {
        let one = |h: &str| {
            parse(&msg(h), true)
                .map(|m| {
                    (
                        m.cseq().map(|c| c.map(|c| c.seq)),
                        m.max_forwards(),
                        m.expires(),
                    )
                })
                .unwrap()
        };
        assert_eq!(one("CSeq: 4294967295 NOTIFY").0, Ok(Some(u32::MAX)));
        assert_eq!(
            one("CSeq: 4294967296 NOTIFY").0.unwrap_err().to_string(),
            "Bad CSeq: number out of range"
        );
        assert!(one("CSeq: 1").0.is_err());
        assert!(one("CSeq: 1NOTIFY").0.is_err());
        // Either side of the one-pass shape (nine digits, one space).
        fn cseq(v: &str) -> Result<(u32, &str), HeaderError> {
            value::cseq(v).map(|c| (c.seq, c.method))
        }
        assert_eq!(cseq("123456789 NOTIFY"), Ok((123_456_789, "NOTIFY")));
        assert_eq!(cseq("0001234567 NOTIFY"), Ok((1_234_567, "NOTIFY")));
        assert_eq!(cseq("7 \t NOTIFY"), Ok((7, "NOTIFY")));
        assert_eq!(cseq("7 x-Y.z!"), Ok((7, "x-Y.z!")));
        for bad in [
            "7 ",
            "7 NO TIFY",
            "7 NOTIFY ",
            "7 NOT;IFY",
            " 7 NOTIFY",
            "-7 NOTIFY",
        ] {
            assert!(cseq(bad).is_err(), "{bad}");
        }
        assert_eq!(one("Max-Forwards: 255").1, Ok(Some(255)));
        assert!(one("Max-Forwards: 256").1.is_err());
        assert_eq!(one("Expires: 99999999999").2, Ok(Some(u32::MAX)));
        assert!(one("Expires: -1").2.is_err());
    }

    #[test]
    fn iterators_match_the_vec_accessors() {
        let b = msg("Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b:5061;branch=z9hG4bK2;rport\r\nVia: SIP/2.0/UDP c;branch=z9hG4bK3;received=192.0.2.9\r\nContact: <sip:x@y>, \"Q, R\" <sip:z@w>;expires=5\r\nRecord-Route: <sip:p1;lr>,<sip:p2;lr>\r\nRoute: <sip:r1;lr>\r\nRequire: replaces\r\nSupported: timer, 100rel\r\nAllow-Events: call-info,\r\n line-seize\r\nAccept: application/x-call-info;q=1, text/plain\r\nSIP-If-Match: t1\r\nSIP-If-Match: t2\r\nCall-Info: <sip:l@s>;appearance-index=1, <sip:l@s>;appearance-index=2;appearance-state=idle");
        let m = parse(&b, true).unwrap();
        assert_eq!(
            m.vias_iter().map(Result::unwrap).collect::<Vec<_>>(),
            m.vias().unwrap()
        );
        let branches: Vec<_> = m.vias_iter().map(|v| v.unwrap().branch).collect();
        assert_eq!(
            branches,
            [Some("z9hG4bK1"), Some("z9hG4bK2"), Some("z9hG4bK3")]
        );
        assert_eq!(
            m.contacts_iter().map(Result::unwrap).collect::<Vec<_>>(),
            m.contacts().unwrap()
        );
        assert_eq!(m.contacts_iter().count(), 2);
        let rr: Vec<_> = m.record_routes_iter().map(|a| a.unwrap().uri).collect();
        assert_eq!(rr, ["sip:p1;lr", "sip:p2;lr"]);
        assert_eq!(
            m.routes_iter().map(Result::unwrap).collect::<Vec<_>>(),
            m.routes().unwrap()
        );
        assert_eq!(
            m.require_iter().map(Result::unwrap).collect::<Vec<_>>(),
            ["replaces"]
        );
        assert_eq!(
            m.supported_iter().map(Result::unwrap).collect::<Vec<_>>(),
            ["timer", "100rel"]
        );
        assert_eq!(
            m.allow_events_iter()
                .map(Result::unwrap)
                .collect::<Vec<_>>(),
            ["call-info", "line-seize"]
        );
        assert_eq!(
            m.accept_iter().map(Result::unwrap).collect::<Vec<_>>(),
            ["application/x-call-info", "text/plain"]
        );
        assert_eq!(
            m.sip_if_match_iter()
                .map(Result::unwrap)
                .collect::<Vec<_>>(),
            ["t1", "t2"]
        );
        let ci: Vec<_> = m
            .call_info_iter()
            .map(|c| {
                let c = c.unwrap();
                (c.appearance_index, c.appearance_state)
            })
            .collect();
        assert_eq!(ci, [(Some("1"), None), (Some("2"), Some("idle"))]);
        assert_eq!(m.call_info().unwrap().len(), 2);
    }

    #[test]
    fn iterators_report_bad_elements_and_go_on() {
        let b = msg("Contact: <sip:a@b>, sip:x?y, <sip:c@d>\r\nSupported: ok, (bad), fine");
        let m = parse(&b, true).unwrap();
        let c: Vec<_> = m.contacts_iter().map(|r| r.map(|a| a.uri)).collect();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0], Ok("sip:a@b"));
        assert!(c[1].is_err());
        assert_eq!(c[2], Ok("sip:c@d"));
        assert!(m.contacts().is_err());
        let s: Vec<_> = m.supported_iter().collect();
        assert_eq!(s[0], Ok("ok"));
        assert_eq!(
            s[1].as_ref().unwrap_err().to_string(),
            "Bad Supported: not a token"
        );
        assert_eq!(s[2], Ok("fine"));
        // Absent headers: empty iterators, empty vectors.
        assert_eq!(m.vias_iter().count(), 0);
        assert_eq!(m.require().unwrap(), Vec::<&str>::new());
    }

    #[test]
    fn lazy_params_with_quoted_semicolons_commas_and_escapes() {
        let b = msg("Contact: <sip:a@b;uparam=1>;q=\"x;y,z \\\"w\\\"\" ; lr ;EXPIRES= 60, <sip:c@d>;n=\"a,b\"");
        let m = parse(&b, true).unwrap();
        let c: Vec<_> = m.contacts_iter().map(Result::unwrap).collect();
        assert_eq!(c.len(), 2, "commas inside quotes do not split");
        let p = c[0].params;
        assert_eq!(p.get("q"), Some(Some("\"x;y,z \\\"w\\\"\"")));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.get("expires"), Some(Some("60")));
        assert!(p.has("LR") && !p.has("uparam") && !p.has("x"));
        let names: Vec<_> = p.iter().map(|p| p.name).collect();
        assert_eq!(names, ["q", "lr", "EXPIRES"]);
        assert_eq!((p.len(), p.is_empty()), (3, false));
        assert_eq!(c[1].params.get("n"), Some(Some("\"a,b\"")));
        // The URI's own parameters stay with the URI.
        let u = c[0].parsed_uri().unwrap();
        assert_eq!(u.params.get("uparam"), Some(Some("1")));
        assert_eq!(u.params.len(), 1);
        // Equality is by content, not spacing.
        let a = NameAddr::parse("<sip:a@b>;tag=1 ;lr").unwrap();
        let b2 = NameAddr::parse("<sip:a@b> ; tag=1;lr").unwrap();
        assert_eq!(a.params, b2.params);
        assert_ne!(
            a.params,
            NameAddr::parse("<sip:a@b>;tag=2;lr").unwrap().params
        );
        assert_eq!(
            format!("{:?}", a.params),
            r#"[Param { name: "tag", value: Some("1") }, Param { name: "lr", value: None }]"#
        );
        assert!(NameAddr::parse("<sip:a@b>").unwrap().params.is_empty());
        // Unbalanced or escaped-to-the-end quotes are refused up front.
        assert!(NameAddr::parse("<sip:a@b>;q=\"x;y").is_err());
        assert!(NameAddr::parse("<sip:a@b>;q=\"x\\\"").is_err());
    }

    #[test]
    fn via_and_call_info_fields_come_from_the_same_scan() {
        let v = Via::parse("SIP/2.0/UDP h;x=\"a;branch=no\";branch=z9hG4bKok;rport").unwrap();
        assert_eq!(v.branch, Some("z9hG4bKok"));
        assert_eq!(v.rport, Some(None));
        assert_eq!(v.params.get("x"), Some(Some("\"a;branch=no\"")));
        let ci = CallInfo::parse(
            "<sip:l@s>;appearance-uri=\"<sip:a@b;x=1>, y\";appearance-index=3;appearance-index=4",
        )
        .unwrap();
        assert_eq!(ci.appearance_uri, Some("\"<sip:a@b;x=1>, y\""));
        assert_eq!(
            ci.appearance_index,
            ci.params.get("appearance-index").flatten()
        );
        assert_eq!(ci.appearance_index, Some("3"));
    }

    #[test]
    fn ipv6_via_and_received() {
        let v = Via::parse(
            "SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKx;received=[2001:db8::2];rport=5062",
        )
        .unwrap();
        assert_eq!((v.host, v.port), ("[2001:db8::1]", Some(5061)));
        assert_eq!(v.received_ip(), Some("2001:db8::2".parse().unwrap()));
        assert_eq!(v.rport, Some(Some(5062)));
        assert!(Via::parse("SIP/2.0/UDP [2001:db8::1;branch=z9hG4bKx").is_err());
        assert!(Via::parse("SIP/2.0/UDP h;received=nothost").is_err());
        assert!(Via::parse("SIP/2.0/UDP h;rport=99999").is_err());
        assert!(Via::parse("SIP/2.0 h").is_err());
    }
}
