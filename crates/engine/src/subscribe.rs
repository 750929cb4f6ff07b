//! SUBSCRIBE and NOTIFY (RFC 6665): creating, refreshing and ending
//! subscription dialogs, and sending their NOTIFYs one at a time, each with
//! the latest state (changes made while one is in flight are coalesced into
//! the next).

use crate::engine::{canonical_resource, Engine, NotifyCtx, Req};
use crate::net::{Source, Transmit, Transport};
use crate::package::{Reject, Rendered};
use crate::store::StoreOp;
use crate::subscription::{sub_id, DialogText, SubKey, Subscription, CSEQ_BLOCK};
use crate::time::Time;
use crate::transaction::Branch;
use sip::write::{push_host_port, push_u64};
use sip::{HeaderName, Method, RequestWriter};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tracing::debug;

/// NOTIFY responses after which the subscription is gone (RFC 6665 §4.2.2
/// and RFC 5057 §5.1: these end the usage; Timer F counts as 408).
fn ends_subscription(code: u16) -> bool {
    matches!(
        code,
        404 | 405 | 408 | 410 | 416 | 480..=485 | 489 | 501 | 604
    )
}

impl Engine {
    pub(crate) fn on_subscribe(&mut self, cx: &Req<'_, '_>) {
        if let Err(rej) = self.subscribe(cx) {
            self.reject(cx, rej);
        }
    }

    fn subscribe(&mut self, cx: &Req<'_, '_>) -> Result<(), Reject> {
        let msg = cx.msg;
        let now = cx.now;
        let bad = |e: sip::HeaderError| Reject::new(400, e.to_string());
        let event = msg
            .event()
            .map_err(bad)?
            .ok_or_else(|| Reject::new(400, "Missing Event header"))?;
        let Some((pkg, limits)) = self.packages.get(event.package) else {
            return Err(Reject::new(489, "Bad Event")
                .with(HeaderName::AllowEvents, self.packages.allow_events()));
        };
        let package = pkg.name();
        let requested = msg.expires().map_err(bad)?.unwrap_or(limits.default);
        let from = msg
            .from()
            .map_err(bad)?
            .ok_or_else(|| Reject::new(400, "Missing From header"))?;
        let to = msg
            .to()
            .map_err(bad)?
            .ok_or_else(|| Reject::new(400, "Missing To header"))?;
        let call_id = msg
            .call_id()
            .map_err(bad)?
            .ok_or_else(|| Reject::new(400, "Missing Call-ID header"))?;
        let cseq = msg
            .cseq()
            .map_err(bad)?
            .ok_or_else(|| Reject::new(400, "Missing CSeq header"))?;
        let remote_tag = from
            .tag()
            .ok_or_else(|| Reject::new(400, "Missing From tag"))?;
        let contact = msg.contacts().map_err(bad)?.into_iter().next();

        if let Some(local_tag) = to.tag() {
            let id = sub_id(call_id, local_tag, remote_tag, package, event.id);
            let key = self
                .subs
                .find(&id)
                .filter(|k| self.subs.get(*k).is_some_and(|s| s.ending.is_none()))
                .ok_or_else(|| Reject::new(481, "Subscription Does Not Exist"))?;
            if let Some(s) = self.subs.get(key) {
                if cseq.seq <= s.remote_cseq {
                    return Err(Reject::new(500, "CSeq out of order"));
                }
            }
            if requested != 0 && requested < limits.min {
                return Err(Reject::new(423, "Interval Too Brief")
                    .with(HeaderName::MinExpires, limits.min.to_string()));
            }
            let our_contact = contact_of(cx.from.local, cx.from.transport);
            if requested == 0 {
                self.respond(
                    cx,
                    200,
                    "OK",
                    &[
                        (HeaderName::Expires, "0".into()),
                        (HeaderName::Contact, our_contact),
                    ],
                    Some(local_tag),
                );
                self.end_subscription(now, key, "timeout");
                return Ok(());
            }
            let granted = requested.min(limits.max);
            let source = self.subs.compact(cx.from);
            let Some(s) = self.subs.get_mut(key) else {
                return Err(Reject::new(481, "Subscription Does Not Exist"));
            };
            let old = s.expires_at;
            s.expires_at = now.plus_secs(granted.into());
            s.remote_cseq = cseq.seq;
            s.source = source;
            if let Some(c) = &contact {
                s.set_remote_target(c.uri);
            }
            let new = s.expires_at;
            let rec = s.to_record(cx.from);
            self.write(StoreOp::PutSubscription(rec));
            if new != old {
                self.expiries.add_subscription(new, key);
            }
            let headers = [
                (HeaderName::Expires, granted.to_string()),
                (HeaderName::Contact, our_contact),
            ];
            self.respond(cx, 200, "OK", &headers, Some(local_tag));
            self.notify(now, key);
            return Ok(());
        }

        if requested != 0 && requested < limits.min {
            return Err(Reject::new(423, "Interval Too Brief")
                .with(HeaderName::MinExpires, limits.min.to_string()));
        }
        let contact = contact.ok_or_else(|| Reject::new(400, "Missing Contact header"))?;
        let resource = canonical_resource(msg.request_uri().unwrap_or_default())?;
        if requested != 0 {
            let q = self.cfg.quotas;
            let on_line = self
                .resources
                .get(resource.as_str())
                .map_or(0, |r| r.subs.len());
            let from_source = self
                .per_source
                .get(&cx.from.remote.ip())
                .copied()
                .unwrap_or(0);
            if self.live_subs >= q.max_subscriptions {
                return Err(self.overloaded(now, "Too many subscriptions"));
            }
            if on_line >= q.max_subscriptions_per_line {
                return Err(self.overloaded(now, "Too many subscriptions to this line"));
            }
            if from_source >= q.max_subscriptions_per_source {
                return Err(self.overloaded(now, "Too many subscriptions from this address"));
            }
        }
        let data = {
            let view = self.view(&resource);
            pkg.on_subscribe(&view, msg, &self.package_cx())?
        };
        let route_set = msg
            .record_routes()
            .map_err(bad)?
            .into_iter()
            .map(|r| r.raw.into())
            .collect();
        let local_tag = self.rng.token();
        let granted = requested.min(limits.max);
        let our_contact = contact_of(cx.from.local, cx.from.transport);
        let order = self.next_order();
        let dialog = DialogText {
            call_id,
            local_tag: &local_tag,
            remote_tag,
            package,
            event_id: event.id,
            local_uri: to.uri,
            remote_uri: from.uri,
            remote_target: contact.uri,
        };
        let resource_name = self.intern(&resource);
        let expires_at = now.plus_secs(granted.into());
        let source = self.subs.compact(cx.from);
        let mut sub = Subscription::new(
            dialog,
            package,
            resource_name,
            route_set,
            cseq.seq,
            now,
            expires_at,
            source,
            data,
            order,
        );
        if requested == 0 {
            // A fetch: one NOTIFY with the state, nothing kept (RFC 6665 §4.4.3).
            self.respond(
                cx,
                200,
                "OK",
                &[
                    (HeaderName::Expires, "0".into()),
                    (HeaderName::Contact, our_contact),
                ],
                Some(&local_tag),
            );
            sub.ending = Some("timeout");
            let key = self.subs.insert(sub);
            self.send_notify(now, key);
            self.gc_resource(&resource);
            return Ok(());
        }
        self.refresh_shared_cache(&resource);
        self.write(StoreOp::PutSubscription(sub.to_record(cx.from)));
        let key = self.insert_subscription(sub);
        let headers = [
            (HeaderName::Expires, granted.to_string()),
            (HeaderName::Contact, our_contact),
        ];
        self.respond(cx, 200, "OK", &headers, Some(&local_tag));
        self.notify(now, key);
        // A seize changes the line for its call-info watchers.
        self.resource_changed(now, &resource);
        Ok(())
    }

    /// End a subscription with a final NOTIFY, and tell the resource's other
    /// watchers if that changed what they see.
    pub(crate) fn end_subscription(&mut self, now: Time, key: SubKey, reason: &'static str) {
        if let Some(resource) = self.end_subscription_quiet(now, key, reason) {
            self.resource_changed(now, &resource);
        }
    }

    /// End a subscription with a final NOTIFY; returns its resource. The
    /// caller tells the resource's other watchers.
    pub(crate) fn end_subscription_quiet(
        &mut self,
        now: Time,
        key: SubKey,
        reason: &'static str,
    ) -> Option<String> {
        let resource = self.forget_subscription(key)?;
        if let Some(s) = self.subs.get_mut(key) {
            s.ending = Some(reason);
        }
        self.notify(now, key);
        Some(resource)
    }

    /// Take a live subscription off its resource, the clock and the store.
    /// It stays in `subs` only while its final NOTIFY is due.
    fn forget_subscription(&mut self, key: SubKey) -> Option<String> {
        let s = self.subs.get(key)?;
        if s.ending.is_some() {
            return None;
        }
        let resource = s.resource.to_string();
        let source = s.source.remote.ip();
        let id = s.id().to_string();
        self.uncount_subscription(source);
        if let Some(res) = self.resources.get_mut(resource.as_str()) {
            res.subs.remove(&key);
        }
        self.write(StoreOp::DeleteSubscription(id));
        Some(resource)
    }

    /// The subscription's state changed: NOTIFY now, or after the NOTIFY in flight.
    pub(crate) fn notify(&mut self, now: Time, key: SubKey) {
        let full = self.notifies_in_flight >= self.cfg.quotas.max_notifies_in_flight;
        let Some(s) = self.subs.get_mut(key) else {
            return;
        };
        if s.in_flight {
            s.dirty = true;
            return;
        }
        if full {
            // Its turn comes when a NOTIFY completes; by then it carries
            // whatever the state is.
            if !s.queued {
                s.queued = true;
                self.waiting.push_back(key);
            }
            return;
        }
        self.send_notify(now, key);
    }

    /// A NOTIFY slot freed: give it to those waiting, oldest first.
    fn next_waiting(&mut self, now: Time) {
        while self.notifies_in_flight < self.cfg.quotas.max_notifies_in_flight {
            let Some(key) = self.waiting.pop_front() else {
                break;
            };
            let Some(s) = self.subs.get_mut(key) else {
                continue;
            };
            s.queued = false;
            if !s.in_flight {
                self.send_notify(now, key);
            }
        }
    }

    /// A NOTIFY transaction ended with `code` (`None`: Timer F).
    pub(crate) fn notify_done(&mut self, now: Time, ctx: NotifyCtx, code: Option<u16>) {
        match code {
            None => self.stats.notifies_timed_out += 1,
            Some(c) if c >= 300 => self.stats.notifies_failed += 1,
            Some(_) => {}
        }
        self.notifies_in_flight = self.notifies_in_flight.saturating_sub(1);
        self.after_notify(now, ctx, code);
        self.next_waiting(now);
    }

    fn after_notify(&mut self, now: Time, ctx: NotifyCtx, code: Option<u16>) {
        if ctx.terminal {
            return;
        }
        let Some(s) = self.subs.get_mut(ctx.sub) else {
            return;
        };
        s.in_flight = false;
        s.last_status = code.unwrap_or(408);
        let failed = code.is_none_or(ends_subscription);
        if failed {
            // The watcher is gone: no final NOTIFY (it would fail the same way).
            debug!(sub = %s.id(), ?code, "NOTIFY failed; subscription removed");
            let resource = self.forget_subscription(ctx.sub);
            self.subs.remove(ctx.sub);
            if let Some(r) = resource {
                self.resource_changed(now, &r);
            }
            return;
        }
        let (ending, dirty) = (s.ending.is_some(), s.dirty);
        if ending || dirty {
            self.send_notify(now, ctx.sub);
        }
    }

    /// Build and send the subscription's next NOTIFY with its current state.
    pub(crate) fn send_notify(&mut self, now: Time, key: SubKey) {
        let Some(s) = self.subs.get(key) else { return };
        let pkg = self.packages.get(s.package).map(|(p, _)| p);
        let source = self.subs.source(&s.source);
        // Shared state is rendered once per change; its NOTIFYs share it.
        let rendered: Arc<Rendered> = match pkg {
            Some(p) if p.shared_state() => self
                .resources
                .get(&*s.resource)
                .and_then(|r| {
                    r.shared
                        .iter()
                        .find(|(n, _)| *n == p.name())
                        .map(|(_, r)| Arc::clone(r))
                })
                .unwrap_or_else(|| Arc::new(p.render(&self.view(&s.resource), s.data))),
            Some(p) => Arc::new(p.render(&self.view(&s.resource), s.data)),
            None => Arc::default(),
        };
        let branch = Branch(self.rng.next_u64());
        let Some(s) = self.subs.get_mut(key) else {
            return;
        };
        s.local_cseq = s.local_cseq.wrapping_add(1);
        s.last_notify_at = now;
        s.in_flight = true;
        s.dirty = false;
        let terminal = s.ending;
        let mut state = Vec::with_capacity(32);
        match terminal {
            Some(reason) => {
                state.extend_from_slice(b"terminated;reason=");
                state.extend_from_slice(reason.as_bytes());
            }
            None => {
                state.extend_from_slice(b"active;expires=");
                push_u64(&mut state, now.secs_until(s.expires_at));
            }
        }
        let t = build_notify(s, source, branch, &state, &rendered);
        // A NOTIFY leaves only once its CSeq is covered by the stored
        // reservation, so a restart goes on above it in the watcher's dialog.
        if terminal.is_none() {
            if s.local_cseq > s.cseq_reserved || s.local_cseq == 0 {
                s.cseq_reserved = s.local_cseq.saturating_add(CSEQ_BLOCK);
                let op = StoreOp::ReserveCSeq {
                    id: s.id().to_string(),
                    upto: s.cseq_reserved,
                };
                self.write(op);
            }
        } else {
            self.subs.remove(key);
        }
        self.stats.notifies_sent += 1;
        self.notifies_in_flight += 1;
        let ctx = NotifyCtx {
            sub: key,
            terminal: terminal.is_some(),
        };
        // Only UDP retransmits (Timer E): over a stream the transaction
        // needs no copy of the bytes.
        let kept = if t.transport.reliable() {
            Transmit {
                bytes: Vec::new(),
                ..t
            }
        } else {
            t.clone()
        };
        self.client_tx.start(now, branch, kept, ctx);
        self.send(t);
    }
}

/// Our Contact for a listener.
fn contact_of(local: SocketAddr, transport: Transport) -> String {
    let mut b = Vec::with_capacity(48);
    push_contact(&mut b, local, transport);
    String::from_utf8(b).unwrap_or_default()
}

/// Our Contact for a listener, appended to `b`.
fn push_contact(b: &mut Vec<u8>, local: SocketAddr, transport: Transport) {
    b.extend_from_slice(b"<sip:");
    push_host_port(b, local);
    if transport == Transport::Tcp {
        b.extend_from_slice(b";transport=tcp");
    }
    b.push(b'>');
}

/// Strip `<>` and parameters from a Route/Record-Route element.
fn route_uri(route: &str) -> &str {
    match (route.find('<'), route.find('>')) {
        (Some(a), Some(b)) if a < b => &route[a + 1..b],
        _ => route.split(';').next().unwrap_or(route).trim(),
    }
}

/// Where a request to this URI goes: an IP literal host with its port; a
/// host name (which we do not resolve) or anything unreadable gives `None`.
fn uri_addr(uri: &str) -> Option<(SocketAddr, Option<Transport>)> {
    plain_ipv4(uri)
        .map(|a| (a, None))
        .or_else(|| parsed_uri_addr(uri))
}

/// The common shape of a phone's Contact, `sip:user@192.0.2.1:5060` with
/// no parameters, read without the general URI parser (it runs for every
/// NOTIFY); `None` for anything else, which [`parsed_uri_addr`] reads. The
/// text was checked as a URI when the SUBSCRIBE arrived.
fn plain_ipv4(uri: &str) -> Option<SocketAddr> {
    let rest = uri
        .get(..4)
        .filter(|scheme| scheme.eq_ignore_ascii_case("sip:"))
        .and(uri.get(4..))?;
    // An `@` in the user part is escaped, so the last one ends it; a
    // parameter or header after the host is not the plain shape.
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    sip::uri::ipv4_hostport(hostport).map(SocketAddr::V4)
}

fn parsed_uri_addr(uri: &str) -> Option<(SocketAddr, Option<Transport>)> {
    let u = sip::Uri::parse(uri).ok()?;
    let ip: IpAddr = match u.host().ok()? {
        sip::Host::Ip(ip) => ip,
        sip::Host::Name(_) => return None,
    };
    let sips = u.scheme.eq_ignore_ascii_case("sips");
    let port = u.port.unwrap_or(if sips { 5061 } else { 5060 });
    let transport = match u.transport() {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Some(Transport::Tcp),
        Some(t) if t.eq_ignore_ascii_case("udp") => Some(Transport::Udp),
        _ => None,
    };
    Some((SocketAddr::new(ip, port), transport))
}

/// A NOTIFY in the subscription's dialog (RFC 3261 §12.2.1.1 for the
/// Request-URI and Route set).
fn build_notify(
    rec: &Subscription,
    source: Source,
    branch: Branch,
    state: &[u8],
    rendered: &Rendered,
) -> Transmit {
    // A first route without `lr` is a strict router: it goes in the
    // Request-URI and the remote target goes last in Route.
    let strict = rec
        .route_set
        .first()
        .is_some_and(|r| !route_uri(r).contains(";lr"));
    let (request_uri, routes): (&str, Vec<&str>) = if strict {
        let mut rest: Vec<&str> = rec.route_set[1..].iter().map(|r| &**r).collect();
        rest.push(rec.remote_target());
        (route_uri(&rec.route_set[0]), rest)
    } else {
        (
            rec.remote_target(),
            rec.route_set.iter().map(|r| &**r).collect(),
        )
    };
    let next_hop = rec
        .route_set
        .first()
        .map(|r| route_uri(r))
        .unwrap_or(rec.remote_target());
    // Over TCP the NOTIFY reuses the subscriber's connection; a next hop we
    // cannot read as an address falls back to where the SUBSCRIBE came from.
    let (remote, transport) = match uri_addr(next_hop) {
        Some((addr, t)) => (addr, t.unwrap_or(source.transport)),
        None => (source.remote, source.transport),
    };
    let conn = if transport == source.transport {
        source.conn
    } else {
        None
    };
    let local = source.local;

    let mut buf = Vec::with_capacity(640);
    let mut w = RequestWriter::new(&mut buf, Method::Notify, request_uri)
        .header_with(HeaderName::Via, |b| {
            b.extend_from_slice(b"SIP/2.0/");
            b.extend_from_slice(transport.via_token().as_bytes());
            b.push(b' ');
            push_host_port(b, local);
            b.extend_from_slice(b";branch=");
            branch.push(b);
            b.extend_from_slice(b";rport");
        })
        .header(HeaderName::MaxForwards, "70");
    for r in routes {
        w = w.header(HeaderName::Route, r);
    }
    let w = w
        .header_with(HeaderName::From, |b| {
            b.push(b'<');
            b.extend_from_slice(rec.local_uri().as_bytes());
            b.extend_from_slice(b">;tag=");
            b.extend_from_slice(rec.local_tag().as_bytes());
        })
        .header_with(HeaderName::To, |b| {
            b.push(b'<');
            b.extend_from_slice(rec.remote_uri().as_bytes());
            b.extend_from_slice(b">;tag=");
            b.extend_from_slice(rec.remote_tag().as_bytes());
        })
        .header(HeaderName::CallId, rec.call_id())
        .header_with(HeaderName::CSeq, |b| {
            push_u64(b, u64::from(rec.local_cseq));
            b.extend_from_slice(b" NOTIFY");
        })
        .header_with(HeaderName::Contact, |b| push_contact(b, local, transport))
        .header_with(HeaderName::Event, |b| {
            b.extend_from_slice(rec.package.as_bytes());
            if let Some(id) = rec.event_id() {
                b.extend_from_slice(b";id=");
                b.extend_from_slice(id.as_bytes());
            }
        })
        .header_with(HeaderName::SubscriptionState, |b| {
            b.extend_from_slice(state)
        });
    let mut w = w;
    for (name, value) in &rendered.headers {
        w = w.header(*name, value);
    }
    match &rendered.body {
        Some((ctype, body)) => w.finish_with_body(ctype, body),
        None => w.finish(),
    }
    Transmit {
        transport,
        local,
        remote,
        conn,
        bytes: buf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_shape_reads_as_the_parser_reads_it() {
        let plain = [
            "sip:alice@192.0.2.1:5070",
            "sip:192.0.2.1",
            "SIP:bob@10.0.0.255",
            "sip:+1555;phone-context=x@192.0.2.9:1",
            "sip:user:secret@127.0.0.1:65535",
            "sip:w%40x@198.51.100.7:5060",
            "sip:0.0.0.0:0",
            "sip:u@255.255.255.255:65535",
            "sip:u@10.20.30.40:9",
            "sip:alice@1.2.3.4:05060",
        ];
        for uri in plain {
            let fast = plain_ipv4(uri);
            assert!(fast.is_some(), "{uri}");
            assert_eq!(fast.map(|a| (a, None)), parsed_uri_addr(uri), "{uri}");
        }
        // Not the plain shape: left to the parser, whatever it says.
        for uri in [
            "sips:alice@192.0.2.1:5061",
            "sip:alice@192.0.2.1:5060;transport=tcp",
            "sip:alice@192.0.2.1?subject=x",
            "sip:alice@[2001:db8::1]:5060",
            "sip:alice@pbx.example.com",
            "sip:alice@192.0.2.1:",
            "sip:alice@192.0.2.1:70000",
            "sip:alice@1.2.3",
            "sip:alice@01.2.3.4",
            "sip:alice@1.2.3.256",
            "sip:alice@1.2.3.4.5",
            "sip:alice@1..3.4",
            "sip:alice@1.2.3.4::5",
            "sip:alice@1.2.3.4:123456",
            "sip:alice@.1.2.3",
            "sip:alice@1.2.3.4.",
            "sip:a@b@1.2.3.4x",
            "sip:@",
            "sip:",
            "tel:+15551234",
            "sip",
            "",
        ] {
            assert_eq!(plain_ipv4(uri), None, "{uri}");
        }
        assert_eq!(
            uri_addr("sip:alice@192.0.2.1:5060;transport=tcp"),
            Some(("192.0.2.1:5060".parse().unwrap(), Some(Transport::Tcp)))
        );
        assert_eq!(
            uri_addr("sips:alice@192.0.2.1"),
            Some(("192.0.2.1:5061".parse().unwrap(), None))
        );
    }
}
