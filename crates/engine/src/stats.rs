//! Counters of what the engine did, for metrics. Plain numbers, updated in
//! place on the hot path (no allocation once a key has been seen); gauges
//! such as live subscriptions are computed when asked, not counted here.

use std::collections::HashMap;

/// Monotonic counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests received, by method (`other` for unknown methods).
    pub requests: HashMap<&'static str, u64, ahash::RandomState>,
    /// Responses we sent, by status code.
    pub responses: HashMap<u16, u64, ahash::RandomState>,
    /// Requests refused, by status code and reason phrase.
    pub refusals: HashMap<(u16, String), u64>,
    /// NOTIFY transactions started.
    pub notifies_sent: u64,
    /// NOTIFY retransmissions (Timer E).
    pub notifies_retransmitted: u64,
    /// NOTIFYs answered with a failure (3xx-6xx).
    pub notifies_failed: u64,
    /// NOTIFYs that got no final answer (Timer F).
    pub notifies_timed_out: u64,
    /// Store batches emitted.
    pub store_batches: u64,
}

impl Stats {
    pub(crate) fn request(&mut self, method: &sip::Method<'_>) {
        let name: &'static str = match method {
            sip::Method::Invite => "INVITE",
            sip::Method::Ack => "ACK",
            sip::Method::Bye => "BYE",
            sip::Method::Cancel => "CANCEL",
            sip::Method::Options => "OPTIONS",
            sip::Method::Register => "REGISTER",
            sip::Method::Subscribe => "SUBSCRIBE",
            sip::Method::Notify => "NOTIFY",
            sip::Method::Publish => "PUBLISH",
            sip::Method::Info => "INFO",
            sip::Method::Prack => "PRACK",
            sip::Method::Update => "UPDATE",
            sip::Method::Message => "MESSAGE",
            sip::Method::Refer => "REFER",
            sip::Method::Other(_) => "other",
        };
        *self.requests.entry(name).or_default() += 1;
    }

    pub(crate) fn refusal(&mut self, status: u16, reason: &str) {
        // Reasons are built from fixed texts, so the key set stays small;
        // the lookup avoids allocating once a reason has been seen.
        match self
            .refusals
            .iter_mut()
            .find(|((s, r), _)| *s == status && r == reason)
        {
            Some((_, n)) => *n += 1,
            None => {
                self.refusals.insert((status, reason.to_string()), 1);
            }
        }
    }
}
