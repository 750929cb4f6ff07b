//! Read-only views of the engine's state, for operators (the HTTP API),
//! for tests and for the simulation's invariants. Nothing here changes state.

use crate::engine::Engine;
use crate::sca::{self, ApState, Owner};
use crate::store::{PublicationRecord, SubscriptionRecord};
use crate::time::Time;

/// Who holds an appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A publication, by id (its current ETag beside it).
    Publication {
        /// Publication id.
        id: String,
        /// Its current ETag.
        etag: String,
    },
    /// A line-seize subscription, by id.
    Seize {
        /// Subscription id.
        id: String,
    },
}

/// One non-idle appearance of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppearanceInfo {
    /// The appearance index.
    pub index: u32,
    /// Its state.
    pub state: ApState,
    /// Its appearance-uri, if published.
    pub uri: Option<String>,
    /// Who claims it.
    pub holder: Holder,
    /// Since when.
    pub since: Time,
}

impl Engine {
    /// Every resource (line) with something live on it.
    pub fn resources(&self) -> impl Iterator<Item = &str> {
        self.resources.keys().map(|k| &**k)
    }

    /// A line's non-idle appearances in index order, with the claim that
    /// wins each.
    pub fn line(&self, resource: &str) -> Vec<AppearanceInfo> {
        let view = self.view(resource);
        let pub_ids: Vec<&str> = match self.resources.get(resource) {
            Some(r) => r
                .pubs
                .iter()
                .filter(|id| self.pubs.contains_key(*id))
                .map(String::as_str)
                .collect(),
            None => Vec::new(),
        };
        sca::line(&view)
            .into_iter()
            .map(|(index, ap)| AppearanceInfo {
                index,
                state: ap.state,
                uri: ap.uri.map(str::to_string),
                holder: match ap.owner {
                    Owner::Publication(i) => {
                        let id = pub_ids.get(i).copied().unwrap_or_default();
                        let etag = self
                            .pubs
                            .get(id)
                            .map(|p| p.rec.etag.clone())
                            .unwrap_or_default();
                        Holder::Publication {
                            id: id.to_string(),
                            etag,
                        }
                    }
                    Owner::Seize(key) => Holder::Seize {
                        id: self
                            .subs
                            .get(key)
                            .map(|s| s.id().to_string())
                            .unwrap_or_default(),
                    },
                },
                since: ap.order.0,
            })
            .collect()
    }

    /// Live publications.
    pub fn publications(&self) -> impl Iterator<Item = &PublicationRecord> {
        self.pubs.values().map(|p| &p.rec)
    }

    /// Live subscriptions (not those whose final NOTIFY is still due), as
    /// the store keeps them.
    pub fn subscriptions(&self) -> impl Iterator<Item = SubscriptionRecord> + '_ {
        self.subs
            .iter()
            .filter(|(_, s)| s.ending.is_none())
            .map(|(_, s)| s.to_record(self.subs.source(&s.source)))
    }

    /// Live subscriptions (all packages) on one line.
    pub fn watcher_count(&self, resource: &str) -> usize {
        self.resources.get(resource).map_or(0, |r| r.subs.len())
    }

    /// The live subscriptions on one line, as the store keeps them.
    pub fn line_subscriptions(&self, resource: &str) -> Vec<SubscriptionRecord> {
        let Some(r) = self.resources.get(resource) else {
            return Vec::new();
        };
        r.subs
            .iter()
            .filter_map(|k| self.subs.get(*k))
            .map(|s| s.to_record(self.subs.source(&s.source)))
            .collect()
    }

    /// Live subscriptions per package, without copying any record.
    pub fn subscription_counts(&self) -> Vec<(&'static str, usize)> {
        let mut counts: Vec<(&'static str, usize)> =
            self.packages.iter().map(|p| (p.name(), 0)).collect();
        for (_, s) in self.subs.iter().filter(|(_, s)| s.ending.is_none()) {
            if let Some(c) = counts.iter_mut().find(|(n, _)| *n == s.package) {
                c.1 += 1;
            }
        }
        counts
    }

    /// The final status of a subscription's last completed NOTIFY (408 when
    /// it got no answer); `None` if it has none yet or is unknown.
    pub fn last_notify_status(&self, id: &str) -> Option<u16> {
        let s = self.subs.get(self.subs.find(id)?)?;
        Some(s.last_status).filter(|c| *c != 0)
    }

    /// NOTIFY transactions and server transactions open now.
    pub fn open_transactions(&self) -> (usize, usize) {
        (self.server_tx.len(), self.client_tx.len())
    }
}
