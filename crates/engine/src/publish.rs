//! PUBLISH (RFC 3903): entity-tags, conditional refresh, modify and removal.
//! Each successful PUBLISH gets a fresh ETag that is never handed out again;
//! the publication keeps a stable id so the store can follow it across them.

use crate::engine::{canonical_resource, Engine, Publication, Req};
use crate::package::Reject;
use crate::store::{PublicationRecord, StoreOp};
use sip::HeaderName;

impl Engine {
    pub(crate) fn on_publish(&mut self, cx: &Req<'_, '_>) {
        match self.publish(cx) {
            Ok(()) => {}
            Err(rej) => self.reject(cx, rej),
        }
    }

    fn publish(&mut self, cx: &Req<'_, '_>) -> Result<(), Reject> {
        let msg = cx.msg;
        if !self
            .cfg
            .trusted_publishers
            .iter()
            .any(|c| c.contains(cx.from.remote.ip()))
        {
            return Err(Reject::new(403, "Publisher not trusted"));
        }
        let bad = |e: sip::HeaderError| Reject::new(400, e.to_string());
        let unknown_event = || {
            Reject::new(489, "Bad Event").with(HeaderName::AllowEvents, self.publishable_events())
        };
        let event = msg.event().map_err(bad)?.ok_or_else(unknown_event)?;
        let (pkg, limits) = match self.packages.get(event.package) {
            Some((p, l)) if p.publishable() => (p, l),
            _ => return Err(unknown_event()),
        };
        let tags = msg.sip_if_match().map_err(bad)?;
        if tags.len() > 1 {
            return Err(Reject::new(400, "More than one SIP-If-Match"));
        }
        let requested = msg.expires().map_err(bad)?.unwrap_or(limits.default);
        if requested != 0 && requested < limits.min {
            return Err(Reject::new(423, "Interval Too Brief")
                .with(HeaderName::MinExpires, limits.min.to_string()));
        }
        let granted = requested.min(limits.max);
        if !msg.body.is_empty() {
            let ctype = msg.content_type().map_err(bad)?;
            let ok = ctype.is_some_and(|c| {
                pkg.accepts()
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(c.media))
            });
            if !ok {
                return Err(Reject::new(415, "Unsupported Media Type")
                    .with(HeaderName::Accept, pkg.accepts().join(", ")));
            }
        }
        let resource = canonical_resource(msg.request_uri().unwrap_or_default())?;
        let now = cx.now;
        let package = pkg.name();

        let Some(tag) = tags.first() else {
            // Initial publication.
            if requested == 0 {
                return Err(Reject::new(400, "Expires 0 needs SIP-If-Match"));
            }
            let state = pkg.parse_publish(msg)?;
            let on_line = self
                .resources
                .get(resource.as_str())
                .map_or(0, |r| r.pubs.len());
            if on_line >= self.cfg.quotas.max_publications_per_line {
                return Err(self.overloaded(now, "Too many publications on this line"));
            }
            let id = self.rng.token();
            let etag = self.fresh_etag();
            let rec = PublicationRecord {
                id,
                package: package.to_string(),
                resource: resource.clone(),
                etag: etag.clone(),
                expires_at: now.plus_secs(granted.into()),
                changed_at: now,
                state: serde_json::to_string(&state).unwrap_or_default(),
                source: cx.from,
            };
            self.write(StoreOp::PutPublication(rec.clone()));
            let order = self.next_order();
            self.insert_publication(Publication { rec, state, order });
            self.ok(cx, &etag, granted);
            self.resource_changed(now, &resource);
            return Ok(());
        };

        // Conditional: refresh, modify or remove (RFC 3903 §6, step 4).
        let precondition = || Reject::new(412, "Conditional Request Failed");
        let id = self.etags.get(*tag).cloned().ok_or_else(precondition)?;
        let p = self.pubs.get(&id).ok_or_else(precondition)?;
        if p.rec.expires_at <= now || p.rec.resource != resource || p.rec.package != package {
            return Err(precondition());
        }
        if requested == 0 {
            self.remove_publication(&id);
            let etag = self.fresh_etag();
            self.ok(cx, &etag, 0);
            self.resource_changed(now, &resource);
            return Ok(());
        }
        let new_state = if pkg.carries_state(msg) {
            Some(pkg.parse_publish(msg)?)
        } else {
            None
        };
        let etag = self.fresh_etag();
        let order = if new_state.is_some() {
            Some(self.next_order())
        } else {
            None
        };
        let Some(p) = self.pubs.get_mut(&id) else {
            return Err(precondition());
        };
        let old_expiry = p.rec.expires_at;
        let old_etag = std::mem::replace(&mut p.rec.etag, etag.clone());
        p.rec.expires_at = now.plus_secs(granted.into());
        if let (Some(state), Some(order)) = (new_state, order) {
            p.rec.state = serde_json::to_string(&state).unwrap_or_default();
            p.rec.changed_at = now;
            p.state = state;
            p.order = order;
        }
        let rec = p.rec.clone();
        self.etags.remove(&old_etag);
        self.etags.insert(etag.clone(), id.clone());
        self.expiries.remove_publication(old_expiry, id.clone());
        self.expiries.add_publication(rec.expires_at, id);
        self.write(StoreOp::PutPublication(rec));
        self.ok(cx, &etag, granted);
        // A refresh changes no state, so this notifies nobody; a modify
        // notifies exactly the watchers whose view changed.
        self.resource_changed(now, &resource);
        Ok(())
    }

    fn ok(&mut self, cx: &Req<'_, '_>, etag: &str, expires: u32) {
        let headers = [
            (HeaderName::SipETag, etag.to_string()),
            (HeaderName::Expires, expires.to_string()),
        ];
        self.respond(cx, 200, "OK", &headers, None);
    }

    /// An entity-tag never used before in this engine's life (64 random
    /// bits, checked against the live ones).
    fn fresh_etag(&mut self) -> String {
        loop {
            let t = self.rng.token();
            if !self.etags.contains_key(&t) {
                return t;
            }
        }
    }

    fn publishable_events(&self) -> String {
        self.packages
            .iter()
            .filter(|p| p.publishable())
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
