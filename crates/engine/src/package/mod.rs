//! Event packages (RFC 6665 §7): what each package accepts, how it validates
//! a PUBLISH, how it decides a SUBSCRIBE and what its NOTIFYs carry.
//!
//! The engine owns the generic machinery (dialogs, ETags, expiry,
//! durability, coalescing); a package only answers questions about its own
//! state through [`EventPackage`]. Adding a package is one new file here and
//! one line in [`Packages::new`].

pub mod call_info;
pub mod line_seize;

use crate::config::ExpiresLimits;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use sip::{HeaderName, Message};
use std::sync::Arc;

/// A refusal: the status and reason phrase of the response, plus headers
/// the status calls for (Retry-After, Min-Expires ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// SIP status code.
    pub status: u16,
    /// Reason phrase, naming the fault.
    pub reason: String,
    /// Extra headers of the response.
    pub headers: Vec<(HeaderName<'static>, String)>,
}

impl Reject {
    /// A refusal with no extra headers.
    pub fn new(status: u16, reason: impl Into<String>) -> Reject {
        Reject {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }
    /// Add a header to the response.
    pub fn with(mut self, name: HeaderName<'static>, value: impl Into<String>) -> Reject {
        self.headers.push((name, value.into()));
        self
    }
}

/// State kept for one publication, as its package parsed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PubState {
    /// call-info: the appearances the publisher claims.
    Appearances(Vec<crate::sca::Claim>),
    /// A package whose state is a body (presence, dialog...).
    Body {
        /// Its Content-Type.
        content_type: String,
        /// Its bytes.
        body: Vec<u8>,
    },
}

/// State a package keeps for one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubData {
    /// Nothing beyond the dialog.
    None,
    /// line-seize: the appearance index this subscription holds.
    Seize(u32),
}

/// One live publication, as packages see it.
#[derive(Debug, Clone, Copy)]
pub struct PubView<'a> {
    /// Its package.
    pub package: &'a str,
    /// Its state.
    pub state: &'a PubState,
    /// When its state last changed, and a tie-breaker (later wins).
    pub order: (Time, u64),
}

/// One live subscription, as packages see it.
#[derive(Debug, Clone, Copy)]
pub struct SubView<'a> {
    /// The engine's handle of it.
    pub key: crate::subscription::SubKey,
    /// Its package.
    pub package: &'a str,
    /// Its package data.
    pub data: SubData,
    /// When it was granted, and a tie-breaker (later wins).
    pub order: (Time, u64),
}

/// Everything live on one resource (an AOR, one shared line).
#[derive(Debug, Clone)]
pub struct ResourceView<'a> {
    /// The resource, `sip:user@host`.
    pub resource: &'a str,
    /// Its host part (call-info NOTIFYs name `sip:HOST`).
    pub host: &'a str,
    /// Live publications of every package.
    pub pubs: Vec<PubView<'a>>,
    /// Live subscriptions of every package.
    pub subs: Vec<SubView<'a>>,
}

/// What a NOTIFY carries besides the dialog headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    /// State headers (call-info: one Call-Info header).
    pub headers: Vec<(HeaderName<'static>, Arc<str>)>,
    /// A body and its Content-Type, if the package has one.
    pub body: Option<(Arc<str>, Arc<[u8]>)>,
}

/// Settings packages may consult.
#[derive(Debug, Clone, Copy)]
pub struct PackageCx {
    /// Highest index a phone may seize.
    pub max_appearances: Option<u32>,
}

/// An event package.
pub trait EventPackage: Send + Sync {
    /// The Event header token, e.g. `call-info`.
    fn name(&self) -> &'static str;
    /// Default Expires bounds (the config may override them).
    fn default_limits(&self) -> ExpiresLimits;
    /// Content types a PUBLISH body may have (empty: a body gets 415).
    fn accepts(&self) -> &'static [&'static str] {
        &[]
    }
    /// Whether the package takes PUBLISH at all (otherwise 489).
    fn publishable(&self) -> bool;
    /// Whether this PUBLISH carries state (initial or modify). A conditional
    /// PUBLISH without state is a refresh (RFC 3903 §4.3).
    fn carries_state(&self, req: &Message<'_>) -> bool;
    /// Parse and validate the state of an initial or modifying PUBLISH.
    fn parse_publish(&self, req: &Message<'_>) -> Result<PubState, Reject>;
    /// Decide an initial SUBSCRIBE (after the generic checks): grant it with
    /// the data to keep, or refuse it.
    fn on_subscribe(
        &self,
        view: &ResourceView<'_>,
        req: &Message<'_>,
        cx: &PackageCx,
    ) -> Result<SubData, Reject> {
        let _ = (view, req, cx);
        Ok(SubData::None)
    }
    /// Whether every subscriber of a resource gets the same state (then the
    /// engine renders it once per change, shares it among the NOTIFYs, and
    /// notifies subscribers exactly when it changes).
    fn shared_state(&self) -> bool;
    /// The state a NOTIFY carries. For a shared-state package `data` is
    /// that of any one subscriber and must not matter.
    fn render(&self, view: &ResourceView<'_>, data: SubData) -> Rendered;
    /// After the resource changed: which of this package's subscriptions
    /// must end, with the Subscription-State reason.
    fn reconcile(
        &self,
        view: &ResourceView<'_>,
    ) -> Vec<(crate::subscription::SubKey, &'static str)> {
        let _ = view;
        Vec::new()
    }
}

/// The packages this server serves.
pub struct Packages {
    list: Vec<(Box<dyn EventPackage>, ExpiresLimits)>,
}

impl Packages {
    /// Every package, with limits overridden from the config.
    pub fn new(overrides: &std::collections::BTreeMap<String, ExpiresLimits>) -> Packages {
        let all: Vec<Box<dyn EventPackage>> = vec![
            Box::new(call_info::CallInfo),
            Box::new(line_seize::LineSeize),
        ];
        let list = all
            .into_iter()
            .map(|p| {
                let limits = overrides
                    .get(p.name())
                    .copied()
                    .unwrap_or_else(|| p.default_limits());
                (p, limits)
            })
            .collect();
        Packages { list }
    }

    /// The package with this name (case-insensitive) and its limits.
    pub fn get(&self, name: &str) -> Option<(&dyn EventPackage, ExpiresLimits)> {
        // Subscriptions keep the package's own `name()`: the same pointer
        // settles it without comparing text on every NOTIFY.
        self.list
            .iter()
            .find(|(p, _)| std::ptr::eq(p.name(), name))
            .or_else(|| {
                self.list
                    .iter()
                    .find(|(p, _)| p.name().eq_ignore_ascii_case(name))
            })
            .map(|(p, l)| (p.as_ref(), *l))
    }

    /// All packages.
    pub fn iter(&self) -> impl Iterator<Item = &dyn EventPackage> {
        self.list.iter().map(|(p, _)| p.as_ref())
    }

    /// The Allow-Events value: every package name, comma-separated.
    pub fn allow_events(&self) -> String {
        self.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
    }
}
