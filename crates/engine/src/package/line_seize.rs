//! The `line-seize` package: a phone subscribes to seize one appearance of a
//! line before it dials. The subscription *is* the seize: it holds the
//! appearance until it is refreshed away, unsubscribed, expires, or a call
//! published on that appearance takes over.

use super::call_info::parse_index;
use super::{EventPackage, PackageCx, PubState, Reject, Rendered, ResourceView, SubData};
use crate::config::ExpiresLimits;
use crate::sca;
use crate::subscription::SubKey;
use sip::{HeaderName, Message};

/// The line-seize package.
pub struct LineSeize;

/// Seconds a refused seizer should wait before trying again: a seize lasts
/// seconds and a dial a few more, so the appearance is worth asking again soon.
const RETRY_AFTER: &str = "5";

impl EventPackage for LineSeize {
    fn name(&self) -> &'static str {
        "line-seize"
    }

    fn default_limits(&self) -> ExpiresLimits {
        ExpiresLimits {
            min: 1,
            max: 15,
            default: 15,
        }
    }

    fn publishable(&self) -> bool {
        false
    }

    fn carries_state(&self, _req: &Message<'_>) -> bool {
        false
    }

    fn parse_publish(&self, _req: &Message<'_>) -> Result<PubState, Reject> {
        Err(Reject::new(489, "Bad Event: line-seize is not published"))
    }

    // OpenSIPS grants a seize of an index that is in a call, and its 3.6.0 to
    // 3.6.7 releases granted every competing seize; an index claimed by
    // anyone is refused here.
    fn on_subscribe(
        &self,
        view: &ResourceView<'_>,
        req: &Message<'_>,
        cx: &PackageCx,
    ) -> Result<SubData, Reject> {
        let elements = req
            .call_info()
            .map_err(|e| Reject::new(400, e.to_string()))?;
        let el = elements
            .first()
            .ok_or_else(|| Reject::new(400, "Missing Call-Info header with appearance-index"))?;
        let wanted = parse_index(el.appearance_index)
            .map_err(|w| Reject::new(400, format!("Bad Call-Info: {w}")))?;
        let table = sca::line(view);
        let index = match wanted {
            Some(n) => {
                if cx.max_appearances.is_some_and(|max| n > max) {
                    return Err(Reject::new(
                        403,
                        "Appearance index above the line's maximum",
                    ));
                }
                if table.contains_key(&n) {
                    return Err(Reject::new(480, "Appearance in use")
                        .with(HeaderName::RetryAfter, RETRY_AFTER));
                }
                n
            }
            None => {
                let free = (1..=u32::MAX)
                    .find(|n| !table.contains_key(n))
                    .unwrap_or(u32::MAX);
                if cx.max_appearances.is_some_and(|max| free > max) {
                    return Err(Reject::new(480, "No idle appearance")
                        .with(HeaderName::RetryAfter, RETRY_AFTER));
                }
                free
            }
        };
        Ok(SubData::Seize(index))
    }

    fn shared_state(&self) -> bool {
        false
    }

    fn render(&self, view: &ResourceView<'_>, data: SubData) -> Rendered {
        let value = match data {
            SubData::Seize(n) => format!("<sip:{}>;appearance-index={n}", view.host),
            SubData::None => format!("<sip:{}>", view.host),
        };
        Rendered {
            headers: vec![(HeaderName::CallInfo, value.into())],
            body: None,
        }
    }

    // A seize has done its job once a published call takes its appearance.
    fn reconcile(&self, view: &ResourceView<'_>) -> Vec<(SubKey, &'static str)> {
        let mut ended = Vec::new();
        for s in &view.subs {
            let SubData::Seize(index) = s.data else {
                continue;
            };
            let taken = view.pubs.iter().any(|p| match p.state {
                PubState::Appearances(claims) => {
                    claims.iter().any(|c| c.index == index && c.state.is_call())
                }
                PubState::Body { .. } => false,
            });
            if taken && s.package == self.name() {
                ended.push((s.key, "noresource"));
            }
        }
        ended
    }
}
