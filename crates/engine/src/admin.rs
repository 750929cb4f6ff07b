//! Operator actions (the HTTP API's write calls): release an appearance,
//! end a subscription. Each is an input like any other: its writes go to
//! the store and the watchers are told, unlike OpenSIPS's `release_line`,
//! which frees the line and tells nobody.

use crate::engine::Engine;
use crate::inspect::Holder;
use crate::package::PubState;
use crate::store::StoreOp;
use crate::time::Time;

/// Why an operator action did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    /// No such line, appearance or subscription (what was looked for).
    NotFound(String),
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::NotFound(what) => write!(f, "{what} not found"),
        }
    }
}

impl Engine {
    /// Free appearance `index` of `resource`: end the seize holding it
    /// (`terminated;reason=deactivated`) or drop that index from the
    /// publication claiming it. Watchers are notified as for any change.
    pub fn release(&mut self, now: Time, resource: &str, index: u32) -> Result<Holder, AdminError> {
        let holder = self
            .line(resource)
            .into_iter()
            .find(|a| a.index == index)
            .map(|a| a.holder)
            .ok_or_else(|| AdminError::NotFound(format!("appearance {index} of {resource}")))?;
        self.begin_input();
        match &holder {
            Holder::Seize { id } => {
                if let Some(key) = self.subs.find(id) {
                    self.end_subscription(now, key, "deactivated");
                }
            }
            Holder::Publication { id, .. } => {
                if let Some(p) = self.pubs.get_mut(id) {
                    if let PubState::Appearances(claims) = &mut p.state {
                        claims.retain(|c| c.index != index);
                    }
                    p.rec.state = serde_json::to_string(&p.state).unwrap_or_default();
                    let rec = p.rec.clone();
                    self.write(StoreOp::PutPublication(rec));
                }
                self.resource_changed(now, resource);
            }
        }
        self.end_input();
        Ok(holder)
    }

    /// End a live subscription: final NOTIFY `terminated;reason=deactivated`.
    pub fn terminate(&mut self, now: Time, id: &str) -> Result<(), AdminError> {
        let key = self
            .subs
            .find(id)
            .filter(|k| self.subs.get(*k).is_some_and(|s| s.ending.is_none()))
            .ok_or_else(|| AdminError::NotFound(format!("subscription {id}")))?;
        self.begin_input();
        self.end_subscription(now, key, "deactivated");
        self.end_input();
        Ok(())
    }
}
