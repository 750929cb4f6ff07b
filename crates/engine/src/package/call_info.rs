//! The `call-info` package: a line's appearances, published by a call
//! controller in Call-Info headers and sent to the line's watchers in one
//! Call-Info header per NOTIFY, with no body.

use super::{EventPackage, PubState, Reject, Rendered, ResourceView, SubData};
use crate::config::ExpiresLimits;
use crate::sca::{self, ApState, Claim};
use sip::{HeaderName, Message};

/// The call-info package.
pub struct CallInfo;

/// Read an `appearance-index`: a positive integer, or `*`.
pub(crate) fn parse_index(raw: Option<&str>) -> Result<Option<u32>, &'static str> {
    match raw.map(str::trim) {
        None | Some("") => Err("missing appearance-index"),
        Some("*") => Ok(None),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if n >= 1 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
            _ => Err("appearance-index is not a positive integer"),
        },
    }
}

impl EventPackage for CallInfo {
    fn name(&self) -> &'static str {
        "call-info"
    }

    fn default_limits(&self) -> ExpiresLimits {
        ExpiresLimits {
            min: 60,
            max: 3600,
            default: 3600,
        }
    }

    fn publishable(&self) -> bool {
        true
    }

    fn carries_state(&self, req: &Message<'_>) -> bool {
        req.count(HeaderName::CallInfo) > 0
    }

    // OpenSIPS answers a malformed call-info PUBLISH with 500 and stores
    // whatever it got; we refuse it with 400 naming the fault and keep nothing.
    fn parse_publish(&self, req: &Message<'_>) -> Result<PubState, Reject> {
        let elements = req
            .call_info()
            .map_err(|e| Reject::new(400, e.to_string()))?;
        if elements.is_empty() {
            return Err(Reject::new(400, "Missing Call-Info header"));
        }
        let mut claims: Vec<Claim> = Vec::with_capacity(elements.len());
        for el in &elements {
            let index = parse_index(el.appearance_index)
                .map_err(|w| Reject::new(400, format!("Bad Call-Info: {w}")))?;
            let state = match el.appearance_state.map(str::trim) {
                None | Some("") => {
                    return Err(Reject::new(400, "Bad Call-Info: missing appearance-state"))
                }
                Some(s) => ApState::parse(s)
                    .ok_or_else(|| Reject::new(400, "Bad Call-Info: unknown appearance-state"))?,
            };
            if let Some(uri) = el.appearance_uri {
                if uri.trim().is_empty() || uri.trim() == "\"\"" {
                    return Err(Reject::new(400, "Bad Call-Info: empty appearance-uri"));
                }
            }
            let index = match (index, state) {
                // `*` may only say "all others are idle", which claims nothing.
                (None, ApState::Idle) => continue,
                (None, _) => {
                    return Err(Reject::new(
                        400,
                        "Bad Call-Info: appearance-index=* needs state idle",
                    ))
                }
                (Some(n), _) => n,
            };
            if claims.iter().any(|c| c.index == index) {
                return Err(Reject::new(
                    400,
                    "Bad Call-Info: appearance-index listed twice",
                ));
            }
            // Publishing idle is how a publisher lets go of an index: it is no claim.
            if state == ApState::Idle {
                // Still remember that it was listed, so a duplicate is caught.
                claims.push(Claim {
                    index,
                    state,
                    uri: None,
                });
                continue;
            }
            claims.push(Claim {
                index,
                state,
                uri: el.appearance_uri.map(|u| u.trim().to_string()),
            });
        }
        claims.retain(|c| c.state != ApState::Idle);
        claims.sort_by_key(|c| c.index);
        Ok(PubState::Appearances(claims))
    }

    fn shared_state(&self) -> bool {
        true
    }

    fn render(&self, view: &ResourceView<'_>, _data: SubData) -> Rendered {
        let table = sca::line(view);
        Rendered {
            headers: vec![(
                HeaderName::CallInfo,
                sca::render_call_info(view.host, &table).into(),
            )],
            body: None,
        }
    }
}
