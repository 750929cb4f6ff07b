//! Parse once, remember: [`Parsed`] is a [`Message`] together with the
//! typed values of the headers a server reads on every request, scanned
//! once when it is built and handed out from there.
//!
//! `Message` itself stays a plain index of header lines (other crates build
//! it field by field), so the remembered values live beside it. The
//! accessors of `Parsed` have the names, types and answers of those on
//! `Message` (which `Parsed` also reaches through `Deref`), and
//! [`Parsed::check`] gives the answer of [`crate::check_request`] without
//! reading any of those headers again.

use crate::check::{check_known, Invalid};
use crate::header::{
    from_value, lists, to_value, value, CSeq, CallInfo, ContentType, Event, HeaderError, NameAddr,
    SubscriptionState, Via,
};
use crate::message::{Header, HeaderName, Message};
use crate::parse::{parse, ParseError};
use crate::scan::{Elements, Kind, Resume};
use crate::text::trim;
use crate::uri::Uri;
use std::ops::Deref;

/// The header names with a slot in the index.
#[derive(Clone, Copy)]
pub(crate) enum K {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    Contact,
    RecordRoute,
    Route,
    Expires,
    MinExpires,
    Event,
    AllowEvents,
    Accept,
    ContentType,
    ContentLength,
    Require,
    Supported,
    CallInfo,
    SipETag,
    SipIfMatch,
    SubscriptionState,
}

const SLOTS: usize = 22;
const ABSENT: u32 = u32::MAX;

#[inline]
pub(crate) const fn slot(name: &HeaderName<'_>) -> Option<K> {
    use HeaderName as H;
    Some(match name {
        H::Via => K::Via,
        H::From => K::From,
        H::To => K::To,
        H::CallId => K::CallId,
        H::CSeq => K::CSeq,
        H::MaxForwards => K::MaxForwards,
        H::Contact => K::Contact,
        H::RecordRoute => K::RecordRoute,
        H::Route => K::Route,
        H::Expires => K::Expires,
        H::MinExpires => K::MinExpires,
        H::Event => K::Event,
        H::AllowEvents => K::AllowEvents,
        H::Accept => K::Accept,
        H::ContentType => K::ContentType,
        H::ContentLength => K::ContentLength,
        H::Require => K::Require,
        H::Supported => K::Supported,
        H::CallInfo => K::CallInfo,
        H::SipETag => K::SipETag,
        H::SipIfMatch => K::SipIfMatch,
        H::SubscriptionState => K::SubscriptionState,
        _ => return None,
    })
}

/// Where the first line of each known header is, and which repeat: single
/// headers are then found without a walk over the index, and list headers
/// walk only from their first line (or read just that line).
#[derive(Debug, Clone)]
pub(crate) struct Index {
    first: [u32; SLOTS],
    repeated: u32,
}

impl Index {
    /// An index of no headers, for the one-pass reader (`pass`) to fill.
    pub(crate) fn empty() -> Index {
        Index {
            first: [ABSENT; SLOTS],
            repeated: 0,
        }
    }

    /// Header line `line` has slot `k`.
    #[inline(always)]
    pub(crate) fn note(&mut self, k: K, line: usize) {
        let f = &mut self.first[k as usize];
        if *f == ABSENT {
            // A header index longer than u32 cannot come from a message we
            // would accept; saturating keeps it absent.
            *f = u32::try_from(line).unwrap_or(ABSENT);
        } else {
            self.repeated |= 1 << k as u32;
        }
    }

    pub(crate) fn build(headers: &[Header<'_>]) -> Index {
        let mut ix = Index::empty();
        for (i, h) in headers.iter().enumerate() {
            if let Some(k) = slot(&h.name) {
                ix.note(k, i);
            }
        }
        ix
    }

    pub(crate) fn has(&self, k: K) -> bool {
        self.first[k as usize] != ABSENT
    }

    /// The header lines to walk for `k`: none, its only line, or the tail
    /// of the index from its first line.
    pub(crate) fn lines<'m, 'a>(&self, h: &'m [Header<'a>], k: K) -> &'m [Header<'a>] {
        let f = self.first[k as usize] as usize;
        let end = if self.repeated & (1 << k as u32) != 0 {
            h.len()
        } else {
            f.saturating_add(1)
        };
        h.get(f..end).unwrap_or(&[])
    }

    /// The one value of a single-valued header, trimmed; an error if it
    /// repeats (the same as `Message`'s accessors give).
    #[inline(always)]
    pub(crate) fn single<'a>(
        &self,
        h: &[Header<'a>],
        k: K,
        name: &'static str,
    ) -> Result<Option<&'a str>, HeaderError> {
        if self.repeated & (1 << k as u32) != 0 {
            return Err(HeaderError {
                header: name,
                what: "header repeated",
            });
        }
        Ok(h.get(self.first[k as usize] as usize)
            .map(|h| trim(h.value)))
    }
}

/// The typed values read once: each field is exactly what the accessor of
/// the same name on `Message` returns.
/// The first element of a list header, read once, and where the walk over
/// the rest of the list goes on.
#[derive(Debug, Clone)]
pub(crate) struct First<'a, T> {
    pub(crate) item: Option<Result<T, HeaderError>>,
    /// For a name-addr: whether its URI parses (or is `*`).
    pub(crate) uri_ok: bool,
    pub(crate) rest: Resume<'a>,
}

/// No element: the header is absent.
impl<T> Default for First<'_, T> {
    fn default() -> Self {
        First {
            item: None,
            uri_ok: true,
            rest: Resume::default(),
        }
    }
}

impl<'a, T> First<'a, T> {
    fn read<L: Kind<'a, Item = T>>(
        mut it: Elements<'_, 'a, L>,
        uri: impl Fn(&T) -> bool,
    ) -> First<'a, T> {
        let item = it.next();
        First {
            uri_ok: matches!(&item, Some(Ok(t)) if uri(t)) || !matches!(item, Some(Ok(_))),
            item,
            rest: it.position(),
        }
    }
}

fn addr_uri_ok(a: &NameAddr<'_>) -> bool {
    a.uri == "*" || Uri::is_valid(a.uri)
}

/// The typed values read once: each field is exactly what the accessor of
/// the same name on `Message` returns (lists: their first element).
#[derive(Debug, Clone)]
pub(crate) struct Known<'a> {
    pub(crate) via: First<'a, Via<'a>>,
    pub(crate) contact: First<'a, NameAddr<'a>>,
    pub(crate) route: First<'a, NameAddr<'a>>,
    pub(crate) record_route: First<'a, NameAddr<'a>>,
    /// How many Via elements there are, or the first bad one.
    pub(crate) vias: Result<usize, HeaderError>,
    pub(crate) from: Result<Option<NameAddr<'a>>, HeaderError>,
    /// `Uri::verdict` on From's URI (`None` when there is no From to read).
    pub(crate) from_uri: Option<Verdict>,
    pub(crate) to: Result<Option<NameAddr<'a>>, HeaderError>,
    /// `Uri::verdict` on To's URI, the same way.
    pub(crate) to_uri: Option<Verdict>,
    pub(crate) call_id: Result<Option<&'a str>, HeaderError>,
    pub(crate) cseq: Result<Option<CSeq<'a>>, HeaderError>,
    pub(crate) max_forwards: Result<Option<u32>, HeaderError>,
    pub(crate) expires: Result<Option<u32>, HeaderError>,
    pub(crate) event: Result<Option<Event<'a>>, HeaderError>,
    pub(crate) content_type: Result<Option<ContentType<'a>>, HeaderError>,
    pub(crate) content_length: Result<Option<u32>, HeaderError>,
    /// `Uri::verdict` on the Request-URI, where it was judged with the
    /// message (by `pass`); `None` leaves it to the check.
    pub(crate) request_uri: Option<Verdict>,
}

fn read<'a, T>(
    v: Result<Option<&'a str>, HeaderError>,
    f: impl FnOnce(&'a str) -> Result<T, HeaderError>,
) -> Result<Option<T>, HeaderError> {
    v?.map(f).transpose()
}

/// What [`Uri::verdict`] says of a URI: `Some((is_sip, has_headers))` if
/// it is well formed.
pub(crate) type Verdict = Option<(bool, bool)>;

/// The URI of a From or To that was read.
fn addr_uri<'a>(a: &Result<Option<NameAddr<'a>>, HeaderError>) -> Option<&'a str> {
    match a {
        Ok(Some(a)) => Some(a.uri),
        _ => None,
    }
}

impl<'a> Known<'a> {
    /// Nothing read: every header absent (the one-pass reader fills in
    /// what it reads).
    pub(crate) fn empty() -> Known<'a> {
        Known {
            via: First::default(),
            contact: First::default(),
            route: First::default(),
            record_route: First::default(),
            vias: Ok(0),
            from: Ok(None),
            from_uri: None,
            to: Ok(None),
            to_uri: None,
            call_id: Ok(None),
            cseq: Ok(None),
            max_forwards: Ok(None),
            expires: Ok(None),
            event: Ok(None),
            content_type: Ok(None),
            content_length: Ok(None),
            request_uri: None,
        }
    }

    /// The verdict on `uri` if it is the text of From's or To's URI, which
    /// were judged when these were read: the Request-URI, From and To of
    /// a request outside a dialog are often one address (an SCA
    /// subscription names its own line in all three), and comparing
    /// bytes costs less than judging the URI again.
    pub(crate) fn known_verdict(&self, uri: &str) -> Option<Verdict> {
        [
            (addr_uri(&self.from), self.from_uri),
            (addr_uri(&self.to), self.to_uri),
        ]
        .into_iter()
        .find_map(|(text, v)| (text? == uri).then_some(v?))
    }

    /// Whether From's (or To's) URI is well formed, or there is none.
    pub(crate) fn uri_ok(v: Option<Verdict>) -> bool {
        !matches!(v, Some(None))
    }
}

impl<'a> Known<'a> {
    // Always inlined, so that `Parsed::new` builds the 900-byte `Known`
    // in place rather than copying it out of a returned value.
    #[inline(always)]
    pub(crate) fn build(h: &[Header<'a>], ix: &Index) -> Known<'a> {
        let via = First::read(lists::vias(ix.lines(h, K::Via)), |_| true);
        let vias = lists::vias(ix.lines(h, K::Via)).resume(via.rest);
        let count = match &via.item {
            None => Ok(0),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(_)) => {
                let mut n = 1;
                let mut bad = None;
                for v in vias {
                    match v {
                        Ok(_) => n += 1,
                        Err(e) => {
                            bad = Some(e);
                            break;
                        }
                    }
                }
                bad.map_or(Ok(n), Err)
            }
        };
        let from = read(ix.single(h, K::From, "From"), from_value);
        let to = read(ix.single(h, K::To, "To"), to_value);
        let from_uri = addr_uri(&from).map(Uri::verdict);
        // To often names the same address as From: judged once then.
        let to_uri = addr_uri(&to).map(|t| match (addr_uri(&from), from_uri) {
            (Some(f), Some(v)) if f == t => v,
            _ => Uri::verdict(t),
        });
        Known {
            via,
            vias: count,
            contact: First::read(lists::contacts(ix.lines(h, K::Contact)), addr_uri_ok),
            route: First::read(lists::routes(ix.lines(h, K::Route)), addr_uri_ok),
            record_route: First::read(
                lists::record_routes(ix.lines(h, K::RecordRoute)),
                addr_uri_ok,
            ),
            from_uri,
            from,
            to_uri,
            to,
            call_id: read(ix.single(h, K::CallId, "Call-ID"), value::call_id),
            cseq: read(ix.single(h, K::CSeq, "CSeq"), value::cseq),
            max_forwards: read(
                ix.single(h, K::MaxForwards, "Max-Forwards"),
                value::max_forwards,
            ),
            expires: read(ix.single(h, K::Expires, "Expires"), |v| {
                value::delta(v, "Expires")
            }),
            event: read(ix.single(h, K::Event, "Event"), Event::parse),
            content_type: read(
                ix.single(h, K::ContentType, "Content-Type"),
                ContentType::parse,
            ),
            content_length: read(
                ix.single(h, K::ContentLength, "Content-Length"),
                value::content_length,
            ),
            request_uri: None,
        }
    }
}

/// A parsed message with the headers every request needs already read:
/// top Via (and whether every Via is well formed), From, To (and whether
/// their URIs are), Call-ID, CSeq, Max-Forwards, Expires, Event,
/// Content-Type and Content-Length. Nothing is allocated beyond the
/// message's header index.
///
/// Its accessors answer exactly as `Message`'s do; the ones above return
/// the remembered value, the others find their lines through an index of
/// first occurrences instead of walking every header. Everything else of
/// `Message` is reachable through `Deref`.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    pub(crate) msg: Message<'a>,
    pub(crate) index: Index,
    pub(crate) known: Known<'a>,
}

/// [`parse`] and [`Parsed::new`] in one call: the message layer's fast path
/// for a server that checks and reads each request.
///
/// Requests of the usual shapes take one pass over byte-class masks
/// (`pass`, on CPUs with AVX-512 VBMI); everything else, and every
/// message on other CPUs, takes [`parse`] and [`Parsed::new`]. Both give
/// the same `Parsed`.
#[inline]
pub fn parse_typed(bytes: &[u8], stream: bool) -> Result<Parsed<'_>, ParseError> {
    match crate::pass::parse_typed(bytes, stream) {
        Some(p) => Ok(p),
        None => parse(bytes, stream).map(Parsed::new),
    }
}

impl<'a> Deref for Parsed<'a> {
    type Target = Message<'a>;
    fn deref(&self) -> &Message<'a> {
        &self.msg
    }
}

impl<'a> From<Message<'a>> for Parsed<'a> {
    fn from(msg: Message<'a>) -> Parsed<'a> {
        Parsed::new(msg)
    }
}

impl<'a> Parsed<'a> {
    /// Read the known headers of `msg` once and keep them beside it.
    #[inline(always)]
    pub fn new(msg: Message<'a>) -> Parsed<'a> {
        let index = Index::build(&msg.headers);
        let known = Known::build(&msg.headers, &index);
        Parsed { msg, index, known }
    }

    /// This message with its Request-URI judged as `pass` judges it (for
    /// the differential tests, which compare the two).
    #[cfg(test)]
    pub(crate) fn with_request_uri_judged(mut self) -> Parsed<'a> {
        self.known.request_uri = self.msg.request_uri().map(Uri::verdict);
        self
    }

    /// The message.
    pub fn message(&self) -> &Message<'a> {
        &self.msg
    }

    /// Give the message back.
    pub fn into_message(self) -> Message<'a> {
        self.msg
    }

    /// [`crate::check_request`] on this message, from the values already
    /// read (only Request-URI, Contact, Route and Record-Route are read here).
    pub fn check(&self) -> Result<(), Invalid> {
        check_known(&self.msg, &self.index, &self.known)
    }

    fn lines(&self, k: K) -> &[Header<'a>] {
        self.index.lines(&self.msg.headers, k)
    }

    fn single(&self, k: K, name: &'static str) -> Result<Option<&'a str>, HeaderError> {
        self.index.single(&self.msg.headers, k, name)
    }

    /// The top Via.
    pub fn via(&self) -> Result<Option<Via<'a>>, HeaderError> {
        self.known.via.item.clone().transpose()
    }
    /// Every Via element, top first, without allocating.
    pub fn vias_iter(&self) -> impl Iterator<Item = Result<Via<'a>, HeaderError>> + '_ {
        let f = &self.known.via;
        f.item
            .clone()
            .into_iter()
            .chain(lists::vias(self.lines(K::Via)).resume(f.rest))
    }
    /// From.
    pub fn from(&self) -> Result<Option<NameAddr<'a>>, HeaderError> {
        self.known.from.clone()
    }
    /// To.
    pub fn to(&self) -> Result<Option<NameAddr<'a>>, HeaderError> {
        self.known.to.clone()
    }
    /// Call-ID.
    pub fn call_id(&self) -> Result<Option<&'a str>, HeaderError> {
        self.known.call_id.clone()
    }
    /// CSeq.
    pub fn cseq(&self) -> Result<Option<CSeq<'a>>, HeaderError> {
        self.known.cseq.clone()
    }
    /// Max-Forwards.
    pub fn max_forwards(&self) -> Result<Option<u32>, HeaderError> {
        self.known.max_forwards.clone()
    }
    /// Expires.
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.known.expires.clone()
    }
    /// Min-Expires.
    pub fn min_expires(&self) -> Result<Option<u32>, HeaderError> {
        read(self.single(K::MinExpires, "Min-Expires"), |v| {
            value::delta(v, "Min-Expires")
        })
    }
    /// Event.
    pub fn event(&self) -> Result<Option<Event<'a>>, HeaderError> {
        self.known.event.clone()
    }
    /// Content-Type.
    pub fn content_type(&self) -> Result<Option<ContentType<'a>>, HeaderError> {
        self.known.content_type.clone()
    }
    /// Content-Length.
    pub fn content_length(&self) -> Result<Option<u32>, HeaderError> {
        self.known.content_length.clone()
    }
    /// Every Contact element, without allocating.
    pub fn contacts_iter(&self) -> impl Iterator<Item = Result<NameAddr<'a>, HeaderError>> + '_ {
        let f = &self.known.contact;
        f.item
            .clone()
            .into_iter()
            .chain(lists::contacts(self.lines(K::Contact)).resume(f.rest))
    }
    /// Every Record-Route element, without allocating.
    pub fn record_routes_iter(
        &self,
    ) -> impl Iterator<Item = Result<NameAddr<'a>, HeaderError>> + '_ {
        let f = &self.known.record_route;
        f.item
            .clone()
            .into_iter()
            .chain(lists::record_routes(self.lines(K::RecordRoute)).resume(f.rest))
    }
    /// Every Route element, without allocating.
    pub fn routes_iter(&self) -> impl Iterator<Item = Result<NameAddr<'a>, HeaderError>> + '_ {
        let f = &self.known.route;
        f.item
            .clone()
            .into_iter()
            .chain(lists::routes(self.lines(K::Route)).resume(f.rest))
    }
    /// Every Allow-Events token, without allocating.
    pub fn allow_events_iter(&self) -> impl Iterator<Item = Result<&'a str, HeaderError>> + '_ {
        lists::allow_events(self.lines(K::AllowEvents))
    }
    /// Every Accept media range, without allocating.
    pub fn accept_iter(&self) -> impl Iterator<Item = Result<&'a str, HeaderError>> + '_ {
        lists::accept(self.lines(K::Accept))
    }
    /// Every Require option tag, without allocating.
    pub fn require_iter(&self) -> impl Iterator<Item = Result<&'a str, HeaderError>> + '_ {
        lists::require(self.lines(K::Require))
    }
    /// Every Supported option tag, without allocating.
    pub fn supported_iter(&self) -> impl Iterator<Item = Result<&'a str, HeaderError>> + '_ {
        lists::supported(self.lines(K::Supported))
    }
    /// Every Call-Info element, without allocating.
    pub fn call_info_iter(&self) -> impl Iterator<Item = Result<CallInfo<'a>, HeaderError>> + '_ {
        lists::call_info(self.lines(K::CallInfo))
    }
    /// SIP-ETag.
    pub fn sip_etag(&self) -> Result<Option<&'a str>, HeaderError> {
        read(self.single(K::SipETag, "SIP-ETag"), |v| {
            crate::header::token_of(v, "SIP-ETag")
        })
    }
    /// Every SIP-If-Match value, without allocating.
    pub fn sip_if_match_iter(&self) -> impl Iterator<Item = Result<&'a str, HeaderError>> + '_ {
        lists::sip_if_match(self.lines(K::SipIfMatch))
    }
    /// Subscription-State.
    pub fn subscription_state(&self) -> Result<Option<SubscriptionState<'a>>, HeaderError> {
        read(
            self.single(K::SubscriptionState, "Subscription-State"),
            SubscriptionState::parse,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(extra: &str) -> Vec<u8> {
        format!(
            "SUBSCRIBE sip:c@d SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 SUBSCRIBE\r\n{extra}l: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn remembered_values_and_checks_match_the_message() {
        for extra in [
            "",
            "From: <sip:e@f>\r\n",
            "Via: SIP/2.0/TCP g:5061;branch=z9hG4bKy, SIP/2.0/UDP\r\n",
            "Contact: <sip:a@b;=x>, <sip:c@d\r\n",
            "Contact: <sip:a@b;=x>\r\n",
            "Contact: *\r\nRoute: <sip:r;lr>, <tel:+1>\r\n",
            "Expires: 1\r\nExpires: 1\r\n",
            "Event: call-info;id=2\r\nContent-Type: application/x-call-info\r\n",
            "Max-Forwards: 300\r\n",
        ] {
            let b = msg(extra);
            let m = parse(&b, true).unwrap();
            let p = Parsed::new(m.clone());
            assert_eq!(p.check(), crate::check_request(&m), "{extra}");
            assert_eq!(p.via(), m.via(), "{extra}");
            assert_eq!(p.from(), m.from(), "{extra}");
            assert_eq!(p.expires(), m.expires(), "{extra}");
            assert_eq!(p.event(), m.event(), "{extra}");
            assert!(p.vias_iter().eq(m.vias_iter()), "{extra}");
            assert!(p.contacts_iter().eq(m.contacts_iter()), "{extra}");
            assert!(p.routes_iter().eq(m.routes_iter()), "{extra}");
        }
    }

    #[test]
    fn typed_parse_reads_the_common_headers_once() {
        let b = msg("Via: SIP/2.0/TCP g:5061;branch=z9hG4bKy\r\nContact: <sip:u@h>, <sip:v@h>\r\n");
        let p = parse_typed(&b, true).unwrap();
        assert_eq!(p.check(), Ok(()));
        assert_eq!(p.from().unwrap().unwrap().tag(), Some("1"));
        assert_eq!(p.cseq().unwrap().unwrap().seq, 1);
        let branches: Vec<_> = p.vias_iter().map(|v| v.unwrap().branch).collect();
        assert_eq!(branches, [Some("z9hG4bKx"), Some("z9hG4bKy")]);
        let uris: Vec<_> = p.contacts_iter().map(|a| a.unwrap().uri).collect();
        assert_eq!(uris, ["sip:u@h", "sip:v@h"]);
        // `Deref` reaches the rest of `Message`.
        assert_eq!(p.method(), Some(crate::Method::Subscribe));
        assert_eq!(p.contacts().unwrap().len(), 2);
        assert_eq!(p.into_message().headers.len(), 8);
    }
}
