//! Single-pass scanners for the shapes real requests use, and the element
//! iterator that drives them.
//!
//! Each scanner walks its element's bytes once, front to back, finding every
//! boundary (display name, `<uri>`, parameters, the comma that ends the
//! element) as it goes. It recognises a common subset of the grammar only:
//! on anything outside it (a token display name, LWS around a slash, an
//! IPv6 sent-by, a malformed value...) it gives up with `None`, and the
//! caller hands the element to the general parser in `header`, which decides
//! with the exact rules and error texts. So a scanner never has to reproduce
//! an error; it only has to agree with the general parser on what it
//! accepts, which the differential tests check fixture by fixture.

use crate::header::{
    delta_seconds, CallInfo, ContentType, Event, HeaderError, NameAddr, Params, SubState,
    SubscriptionState, Via,
};
use crate::message::Header;
use crate::message::HeaderName;
use crate::simd::{find2, find_or_space, value_end};
use crate::swar::lower_eq;
use crate::text::{is_lws, is_token, run_while, split_commas, LWS, TOKEN};
use crate::uri::{parse_ip_loose, scan_host};
use std::marker::PhantomData;

/// Skip LWS (folds included) from `i`.
#[inline]
fn skip_lws(b: &[u8], i: usize) -> usize {
    run_while(b, i, LWS)
}

#[inline]
fn token_end(b: &[u8], i: usize) -> usize {
    run_while(b, i, TOKEN)
}

#[inline]
fn sub(s: &str, a: usize, b: usize) -> &str {
    // Callers cut next to ASCII delimiters; a wrong cut would be an empty
    // slice, never a panic.
    s.get(a..b).unwrap_or("")
}

/// Whether the token `t` is `lower` (lowercase letters and `-`), ignoring
/// case. A token holds no byte below 0x21, which makes the word-at-a-time
/// `lower_eq` exact here.
#[inline(always)]
pub(crate) fn named(t: &str, lower: &str) -> bool {
    lower_eq(t.as_bytes(), lower.as_bytes())
}

/// A quoted-string at `i` (which holds `"`): the index after its closing
/// quote, with the rules of `Cursor::quoted` (no escaped CR, LF or non-ASCII).
#[inline]
fn quoted_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        // From one quote or backslash to the next, sixteen bytes a step: an
        // escaped appearance-uri holds some forty bytes and a few of those.
        i = find2(b, i, b'"', b'\\');
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            _ => match b.get(i + 1) {
                Some(&n) if n < 0x80 && n != b'\r' && n != b'\n' => i += 2,
                _ => return None,
            },
        }
    }
}

/// Where a scanned element stops: `end` is the end of its text (LWS
/// trimmed), `next` the index of the comma after it or the end of the value.
#[derive(Clone, Copy)]
pub(crate) struct Stop {
    pub(crate) end: usize,
    pub(crate) next: usize,
}

/// `*( SEMI generic-param )` from `i`, calling `each` with every name and
/// value. Stops at the end of the value or at a top-level comma. `None` for
/// anything the general parameter parser might judge differently, which
/// includes a `<` or `"` inside an unquoted value (the comma splitter treats
/// them as opening a span).
#[inline]
pub(crate) fn params<'a>(
    s: &'a str,
    mut i: usize,
    mut each: impl FnMut(&'a str, Option<&'a str>) -> Option<()>,
) -> Option<Stop> {
    let b = s.as_bytes();
    loop {
        let j = skip_lws(b, i);
        match b.get(j) {
            None => return Some(Stop { end: i, next: j }),
            Some(b',') => return Some(Stop { end: i, next: j }),
            Some(b';') => {}
            Some(_) => return None,
        }
        let ns = skip_lws(b, j + 1);
        let ne = token_end(b, ns);
        if ne == ns {
            return None;
        }
        let name = sub(s, ns, ne);
        let k = skip_lws(b, ne);
        if b.get(k) == Some(&b'=') {
            let vs = skip_lws(b, k + 1);
            let ve = if b.get(vs) == Some(&b'"') {
                quoted_end(b, vs)?
            } else {
                let e = value_end(b, vs, true);
                if matches!(b.get(e), Some(b'"' | b'<')) {
                    return None;
                }
                e
            };
            if ve == vs {
                return None;
            }
            each(name, Some(sub(s, vs, ve)))?;
            i = ve;
        } else {
            each(name, None)?;
            i = ne;
        }
    }
}

/// `<uri>` at `i` (which holds `<`): the URI and the index after `>`. The
/// URI must be non-empty and free of white space, as the general parser
/// asks; its syntax is judged later, by `Uri::parse`, only where needed.
#[inline]
fn angle(s: &str, i: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    let mut close = i + 1;
    loop {
        // Jump to the next `>` or byte below 0x21; only LWS among the
        // latter stops the URI, other control bytes are left to `Uri::parse`.
        close = find_or_space(b, close, b'>');
        match *b.get(close)? {
            b'>' => break,
            c if is_lws(c) => return None,
            _ => close += 1,
        }
    }
    if close == i + 1 {
        return None;
    }
    Some((sub(s, i + 1, close), close + 1))
}

/// One name-addr element (`"display" <uri>;params` or `<uri>;params`) at
/// `i`, which must not be LWS.
pub(crate) fn name_addr(s: &str, i: usize) -> Option<(NameAddr<'_>, Stop)> {
    let b = s.as_bytes();
    let (display, lt) = match b.get(i)? {
        b'<' => (None, i),
        b'"' => {
            let q = quoted_end(b, i)?;
            let lt = skip_lws(b, q);
            if b.get(lt) != Some(&b'<') {
                return None;
            }
            (Some(sub(s, i + 1, q - 1)), lt)
        }
        _ => return None,
    };
    let (uri, after) = angle(s, lt)?;
    // The first `tag` met is what `NameAddr::tag` would find by walking
    // these parameters again.
    let mut tag = None;
    let stop = params(s, after, |name, value| {
        if tag.is_none() && named(name, "tag") {
            tag = Some(value);
        }
        Some(())
    })?;
    Some((
        NameAddr {
            display,
            uri,
            params: Params::from_checked(sub(s, after, stop.end)),
            raw: sub(s, i, stop.end),
            tag_seen: Some(tag.flatten()),
        },
        stop,
    ))
}

/// One Contact element: a name-addr, or `*` alone.
pub(crate) fn contact(s: &str, i: usize) -> Option<(NameAddr<'_>, Stop)> {
    let b = s.as_bytes();
    if b.get(i) == Some(&b'*') {
        let next = skip_lws(b, i + 1);
        if next == b.len() || b[next] == b',' {
            let raw = sub(s, i, i + 1);
            let na = NameAddr {
                display: None,
                uri: raw,
                params: Params::default(),
                raw,
                tag_seen: Some(None),
            };
            return Some((na, Stop { end: i + 1, next }));
        }
        return None;
    }
    name_addr(s, i)
}

/// One Via element at `i`: `SIP/2.0/UDP host[:port] *(;param)`, with no
/// LWS inside the protocol and a name or IPv4 sent-by.
pub(crate) fn via(s: &str, i: usize) -> Option<(Via<'_>, Stop)> {
    let b = s.as_bytes();
    let p1 = token_end(b, i);
    if p1 == i || b.get(p1) != Some(&b'/') {
        return None;
    }
    let p2 = token_end(b, p1 + 1);
    if p2 == p1 + 1 || b.get(p2) != Some(&b'/') {
        return None;
    }
    let te = token_end(b, p2 + 1);
    if te == p2 + 1 {
        return None;
    }
    let transport = sub(s, p2 + 1, te);
    let mut h = te;
    while h < b.len() && matches!(b[h], b' ' | b'\t') {
        h += 1;
    }
    if h == te {
        return None;
    }
    let he = scan_host(b, h)?;
    let host = sub(s, h, he);
    let (port, pe) = if b.get(he) == Some(&b':') {
        let mut n = 0u32;
        let mut e = he + 1;
        while e < b.len() && b[e].is_ascii_digit() {
            n = n * 10 + u32::from(b[e] - b'0');
            if n > 65535 {
                return None;
            }
            e += 1;
        }
        if e == he + 1 {
            return None;
        }
        (Some(n as u16), e)
    } else {
        (None, he)
    };
    // Without a port the general parser has already skipped the LWS after
    // the host when it looks for parameters, so their raw text starts later.
    let sent_by_end = pe;
    let pe = if port.is_some() { pe } else { skip_lws(b, pe) };
    let (mut branch, mut received, mut rport) = (None, None, None);
    let stop = params(s, pe, |name, value| {
        if named(name, "branch") {
            match value {
                Some(v) if is_token(v) && v != "z9hG4bK" => branch = Some(v),
                _ => return None,
            }
        } else if named(name, "received") {
            match value {
                Some(v) if parse_ip_loose(v).is_some() => received = Some(v),
                _ => return None,
            }
        } else if named(name, "rport") {
            rport = match value {
                None => Some(None),
                Some(v) => Some(Some(digits_u16(v)?)),
            };
        }
        Some(())
    })?;
    // No parameters: the element ends with the sent-by, not after the LWS
    // skipped above.
    let (params_raw, stop) = if stop.end == pe {
        let end = Stop {
            end: sent_by_end,
            next: stop.next,
        };
        ("", end)
    } else {
        (sub(s, pe, stop.end), stop)
    };
    let via = Via {
        transport,
        host,
        port,
        branch,
        received,
        rport,
        params: Params::from_checked(params_raw),
        raw: sub(s, i, stop.end),
    };
    Some((via, stop))
}

fn digits_u16(v: &str) -> Option<u16> {
    if v.is_empty() {
        return None;
    }
    let mut n = 0u32;
    for d in v.bytes() {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(d - b'0');
        if n > 65535 {
            return None;
        }
    }
    Some(n as u16)
}

/// One Call-Info element at `i`: `<uri>` and parameters, the three
/// appearance parameters picked out on the way (first occurrence wins).
pub(crate) fn call_info(s: &str, i: usize) -> Option<(CallInfo<'_>, Stop)> {
    if s.as_bytes().get(i) != Some(&b'<') {
        return None;
    }
    let (uri, after) = angle(s, i)?;
    let (mut index, mut state, mut auri) = (None, None, None);
    let stop = params(s, after, |name, value| {
        let slot = if named(name, "appearance-index") {
            &mut index
        } else if named(name, "appearance-state") {
            &mut state
        } else if named(name, "appearance-uri") {
            &mut auri
        } else {
            return Some(());
        };
        if slot.is_none() {
            *slot = Some(value);
        }
        Some(())
    })?;
    let ci = CallInfo {
        uri,
        appearance_index: index.flatten(),
        appearance_state: state.flatten(),
        appearance_uri: auri.flatten(),
        params: Params::from_checked(sub(s, after, stop.end)),
    };
    Some((ci, stop))
}

/// A token element (Require, Supported, Allow-Events) at `i`.
pub(crate) fn token(s: &str, i: usize) -> Option<(&str, Stop)> {
    let b = s.as_bytes();
    let e = token_end(b, i);
    if e == i {
        return None;
    }
    let next = skip_lws(b, e);
    if next < b.len() && b[next] != b',' {
        return None;
    }
    Some((sub(s, i, e), Stop { end: e, next }))
}

/// `type/subtype` with no LWS around the slash, at `i`; the end of it.
#[inline]
fn media(b: &[u8], i: usize) -> Option<usize> {
    let t = token_end(b, i);
    if t == i || b.get(t) != Some(&b'/') {
        return None;
    }
    let st = token_end(b, t + 1);
    (st > t + 1).then_some(st)
}

/// An Accept element at `i`: its media range (parameters checked, dropped).
pub(crate) fn accept(s: &str, i: usize) -> Option<(&str, Stop)> {
    let me = media(s.as_bytes(), i)?;
    let stop = params(s, me, |_, _| Some(()))?;
    Some((sub(s, i, me), stop))
}

/// A whole single value (already trimmed): the scanner must reach its end.
fn whole<T>(s: &str, scanned: Option<(T, Stop)>) -> Option<T> {
    scanned.and_then(|(t, stop)| (stop.next == s.len()).then_some(t))
}

/// Event: `package *(;param)`, picking out `id`.
pub(crate) fn event(s: &str) -> Option<Event<'_>> {
    let b = s.as_bytes();
    let pe = token_end(b, 0);
    if pe == 0 {
        return None;
    }
    let mut id = None;
    let stop = params(s, pe, |name, value| {
        if id.is_none() && named(name, "id") {
            id = Some(value);
        }
        Some(())
    })?;
    let ev = Event {
        package: sub(s, 0, pe),
        id: id.flatten(),
        params: Params::from_checked(sub(s, pe, stop.end)),
    };
    whole(s, Some((ev, stop)))
}

/// Content-Type: `type/subtype *(;param)`.
pub(crate) fn content_type(s: &str) -> Option<ContentType<'_>> {
    let me = media(s.as_bytes(), 0)?;
    let stop = params(s, me, |_, _| Some(()))?;
    let ct = ContentType {
        media: sub(s, 0, me),
        params: Params::from_checked(sub(s, me, stop.end)),
    };
    whole(s, Some((ct, stop)))
}

/// From or To: one name-addr filling the whole value.
pub(crate) fn single_name_addr(s: &str) -> Option<NameAddr<'_>> {
    whole(s, name_addr(s, 0))
}

/// One list header's elements: the header's name, the single-pass
/// scanner for the usual shapes and the general parser for the rest. A
/// zero-sized type per header, so that [`Elements`] calls both directly
/// (and may inline them) wherever its walk is compiled, rather than
/// through function pointers where LLVM keeps `next` out of line.
pub(crate) trait Kind<'a> {
    type Item;
    const NAME: HeaderName<'static>;
    fn fast(s: &'a str, i: usize) -> Option<(Self::Item, Stop)>;
    fn slow(s: &'a str) -> Result<Self::Item, HeaderError>;
}

/// Every element of every line of one header, in order. Each element is
/// first offered to the single-pass scanner `K::fast`; if it declines, the
/// element is cut by the general comma splitter and read by `K::slow`, so
/// the answers (and errors) are those of the general parsers.
pub(crate) struct Elements<'m, 'a, K> {
    lines: &'m [Header<'a>],
    at: Resume<'a>,
    kind: PhantomData<K>,
}

/// Where an [`Elements`] walk stands: the next line to look at, the line
/// being read and the position in it. Kept so that a walk can go on later
/// from where an earlier one stopped.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Resume<'a> {
    next_line: usize,
    line: &'a str,
    pos: usize,
}

impl<'a> Resume<'a> {
    /// A walk that has read `line` (a header's first line, at `next_line
    /// - 1` of the lines walked) up to `pos`.
    pub(crate) fn at(next_line: usize, line: &'a str, pos: usize) -> Resume<'a> {
        Resume {
            next_line,
            line,
            pos,
        }
    }
}

impl<'m, 'a, K: Kind<'a>> Elements<'m, 'a, K> {
    pub(crate) fn new(lines: &'m [Header<'a>]) -> Self {
        Elements {
            lines,
            at: Resume::default(),
            kind: PhantomData,
        }
    }

    /// Go on from a place an earlier walk over the same lines reached.
    pub(crate) fn resume(mut self, at: Resume<'a>) -> Self {
        self.at = at;
        self
    }

    /// Where this walk stands now.
    pub(crate) fn position(&self) -> Resume<'a> {
        self.at
    }
}

impl<'a, K: Kind<'a>> Iterator for Elements<'_, 'a, K> {
    type Item = Result<K::Item, HeaderError>;

    // A walk resumed after the last element (the usual case for the check
    // and the accessors, which go on from the first element `Known` read)
    // ends here, without a call.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.at.pos >= self.at.line.len() && self.at.next_line >= self.lines.len() {
            return None;
        }
        self.read()
    }
}

impl<'a, K: Kind<'a>> Elements<'_, 'a, K> {
    // One copy per header kind, shared by `Known::build`, the check and
    // the accessors: inlined at each walk, the copies cost more in
    // instruction cache than returning the element through memory does.
    #[inline(never)]
    fn read(&mut self) -> Option<Result<K::Item, HeaderError>> {
        loop {
            let line = self.at.line;
            let b = line.as_bytes();
            let mut i = self.at.pos;
            while i < b.len() && (is_lws(b[i]) || b[i] == b',') {
                i += 1;
            }
            if i >= b.len() {
                loop {
                    let h = self.lines.get(self.at.next_line)?;
                    self.at.next_line += 1;
                    if h.name == K::NAME {
                        self.at.line = h.value;
                        self.at.pos = 0;
                        break;
                    }
                }
                continue;
            }
            if let Some((t, stop)) = K::fast(line, i) {
                self.at.pos = stop.next + 1;
                return Some(Ok(t));
            }
            // The general splitter from here: the same element the old
            // path would have cut, since the bytes skipped were LWS and
            // empty elements.
            let rest = sub(line, i, line.len());
            let mut parts = split_commas(rest);
            let elem = parts.next().unwrap_or("");
            self.at.pos = i + parts.consumed();
            return Some(K::slow(elem));
        }
    }
}

/// Subscription-State: `substate *(;param)`, picking out `expires`,
/// `retry-after` and `reason`.
pub(crate) fn subscription_state(s: &str) -> Option<SubscriptionState<'_>> {
    // What a notifier sends nearly always: `active;expires=N`, no space.
    if let Some(n) = s
        .get(..15)
        .filter(|h| h.eq_ignore_ascii_case("active;expires="))
        .and_then(|_| delta_seconds(&s[15..]))
    {
        return Some(SubscriptionState {
            state: SubState::Active,
            expires: Some(n),
            reason: None,
            retry_after: None,
        });
    }
    let b = s.as_bytes();
    let se = token_end(b, 0);
    let st = sub(s, 0, se);
    let state = if named(st, "active") {
        SubState::Active
    } else if named(st, "pending") {
        SubState::Pending
    } else if named(st, "terminated") {
        SubState::Terminated
    } else {
        return None;
    };
    let (mut exp, mut retry, mut reason) = (None, None, None);
    let stop = params(s, se, |name, value| {
        let slot = if named(name, "expires") {
            &mut exp
        } else if named(name, "retry-after") {
            &mut retry
        } else if named(name, "reason") {
            &mut reason
        } else {
            return Some(());
        };
        if slot.is_none() {
            *slot = Some(value);
        }
        Some(())
    })?;
    if stop.next != s.len() {
        return None;
    }
    let num = |p: Option<Option<&str>>| -> Option<Option<u32>> {
        match p {
            None => Some(None),
            Some(Some(v)) => delta_seconds(v).map(Some),
            Some(None) => None,
        }
    };
    let reason = match reason {
        None => None,
        Some(Some(v)) if is_token(v) => Some(v),
        Some(_) => return None,
    };
    Some(SubscriptionState {
        state,
        expires: num(exp)?,
        reason,
        retry_after: num(retry)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::header::SubscriptionState;
    use proptest::prelude::*;

    #[test]
    fn the_usual_subscription_state_reads_as_the_general_parser_reads_it() {
        for text in [
            "active;expires=3599",
            "ACTIVE;Expires=0",
            "active;expires=007",
            "active;expires=99999999999",
            "active;expires=",
            "active;expires=60;reason=x",
            "active;expires=6 0",
            "active;expires=60,",
            "active;expires=-1",
        ] {
            assert_eq!(
                super::subscription_state(text).ok_or(()),
                SubscriptionState::parse_general(text).map_err(|_| ()),
                "{text}"
            );
        }
    }

    /// `quoted_end` as a byte loop, the way it was written before it
    /// jumped between quotes and backslashes.
    fn quoted_end_ref(b: &[u8], mut i: usize) -> Option<usize> {
        i += 1;
        while i < b.len() {
            match b[i] {
                b'"' => return Some(i + 1),
                b'\\' => match b.get(i + 1) {
                    Some(&n) if n < 0x80 && n != b'\r' && n != b'\n' => i += 2,
                    _ => return None,
                },
                _ => i += 1,
            }
        }
        None
    }

    proptest! {
        #[test]
        fn quoted_end_is_the_byte_loop(
            v in proptest::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), Just(b'a'), Just(b'\r'), Just(0xc3u8)],
                1..40,
            ),
        ) {
            let mut q = v.clone();
            q[0] = b'"';
            prop_assert_eq!(super::quoted_end(&q, 0), quoted_end_ref(&q, 0));
        }
    }
}
