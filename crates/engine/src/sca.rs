//! Shared call appearances: the appearance table of one line, computed from
//! the call-info publications and line-seize subscriptions on it.
//!
//! A line's state is the union of its claims: for each appearance index the
//! most recent claim wins, and an index nobody claims is idle. OpenSIPS keeps
//! only the last PUBLISH of a line; merging per appearance lets several
//! publishers (or one per call) share a line.

use crate::package::{PubState, ResourceView, SubData};
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The state of an appearance (the SCA call-info package's
/// `appearance-state` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApState {
    /// Nobody uses it.
    Idle,
    /// A phone took it to dial.
    Seized,
    /// An outgoing call is being set up.
    Progressing,
    /// An incoming call rings.
    Alerting,
    /// A call is up.
    Active,
    /// On hold, any phone of the line may pick it up.
    Held,
    /// On hold, only the holding phone may pick it up.
    HeldPrivate,
}

impl ApState {
    /// Parse an `appearance-state` token (case-insensitive).
    pub fn parse(s: &str) -> Option<ApState> {
        const ALL: [ApState; 7] = [
            ApState::Idle,
            ApState::Seized,
            ApState::Progressing,
            ApState::Alerting,
            ApState::Active,
            ApState::Held,
            ApState::HeldPrivate,
        ];
        ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// The token.
    pub fn as_str(self) -> &'static str {
        match self {
            ApState::Idle => "idle",
            ApState::Seized => "seized",
            ApState::Progressing => "progressing",
            ApState::Alerting => "alerting",
            ApState::Active => "active",
            ApState::Held => "held",
            ApState::HeldPrivate => "held-private",
        }
    }

    /// Whether this is a call state (a published call has taken the
    /// appearance, which ends a seize of it).
    pub fn is_call(self) -> bool {
        !matches!(self, ApState::Idle | ApState::Seized)
    }
}

/// One appearance a publisher claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The appearance index (1 and up).
    pub index: u32,
    /// Its state (never idle: idle claims nothing).
    pub state: ApState,
    /// `appearance-uri` as it was published (a quoted string keeps its quotes).
    pub uri: Option<String>,
}

/// Who holds an appearance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A publication (its index in the view's `pubs`).
    Publication(usize),
    /// A line-seize subscription.
    Seize(crate::subscription::SubKey),
}

/// The winning claim on one appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appearance<'a> {
    /// Its state.
    pub state: ApState,
    /// Its appearance-uri, if the winning claim had one.
    pub uri: Option<&'a str>,
    /// Who claims it.
    pub owner: Owner,
    /// When that claim was made (and its tie-breaker).
    pub order: (Time, u64),
}

/// A line's appearance table: every claimed index and its winning claim.
pub fn line<'a>(view: &ResourceView<'a>) -> BTreeMap<u32, Appearance<'a>> {
    let mut table: BTreeMap<u32, Appearance<'a>> = BTreeMap::new();
    let mut offer = |index: u32, ap: Appearance<'a>| match table.get(&index) {
        Some(old) if old.order >= ap.order => {}
        _ => {
            table.insert(index, ap);
        }
    };
    for (i, p) in view.pubs.iter().enumerate() {
        if let PubState::Appearances(claims) = p.state {
            for c in claims {
                offer(
                    c.index,
                    Appearance {
                        state: c.state,
                        uri: c.uri.as_deref(),
                        owner: Owner::Publication(i),
                        order: p.order,
                    },
                );
            }
        }
    }
    for s in &view.subs {
        if let SubData::Seize(index) = s.data {
            offer(
                index,
                Appearance {
                    state: ApState::Seized,
                    uri: None,
                    owner: Owner::Seize(s.key),
                    order: s.order,
                },
            );
        }
    }
    table
}

/// The Call-Info value of a call-info NOTIFY: every claimed appearance in
/// index order, then the idle element for all the others.
pub fn render_call_info(host: &str, table: &BTreeMap<u32, Appearance<'_>>) -> String {
    let mut out = String::with_capacity(64 + table.len() * 96);
    for (index, ap) in table {
        // write! into a String cannot fail.
        let _ = write!(
            out,
            "<sip:{host}>;appearance-index={index};appearance-state={}",
            ap.state.as_str()
        );
        if let Some(uri) = ap.uri {
            out.push_str(";appearance-uri=");
            out.push_str(uri);
        }
        out.push_str(", ");
    }
    let _ = write!(out, "<sip:{host}>;appearance-index=*;appearance-state=idle");
    out
}
