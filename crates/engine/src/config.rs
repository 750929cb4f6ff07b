//! Limits and policy the engine enforces. The shell builds this from the
//! command line and the config file; the engine never reads files.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// RFC 3261 timer values, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate (default 500 ms).
    pub t1: u64,
    /// Maximum retransmit interval for non-INVITE requests (default 4 s).
    pub t2: u64,
    /// Maximum time a message stays in the network (default 5 s). RFC 3261
    /// times only Timer K with it, which the client transactions do not
    /// keep (see `transaction`); it is kept so configurations that set it
    /// still load.
    pub t4: u64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: 500,
            t2: 4000,
            t4: 5000,
        }
    }
}

/// Expires bounds of one event package, in seconds; they apply to SUBSCRIBE
/// and PUBLISH of that package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiresLimits {
    /// Below this: 423 with Min-Expires.
    pub min: u32,
    /// Granted expiry never exceeds this.
    pub max: u32,
    /// Used when the request has no Expires.
    pub default: u32,
}

/// An address block, `10.0.0.0/8` or `::1/128`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parse `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("not an IP address: {a}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("bad prefix length: {p}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` lies inside this block. An IPv4-mapped IPv6 address
    /// matches the IPv4 block it maps to.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Bounds on what the engine keeps, so memory stays bounded whatever
/// arrives. A request over a bound gets 503 with Retry-After.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Live subscriptions in all.
    pub max_subscriptions: usize,
    /// Live subscriptions (all packages) on one line.
    pub max_subscriptions_per_line: usize,
    /// Live subscriptions created from one source address. Behind a proxy
    /// every request shares the proxy's address: raise it there.
    pub max_subscriptions_per_source: usize,
    /// Live publications on one line.
    pub max_publications_per_line: usize,
    /// NOTIFY transactions open at once. Past it, NOTIFYs wait their turn
    /// (and coalesce), so a restart or a big line does not send one burst
    /// that overflows every buffer on the way and times itself out.
    pub max_notifies_in_flight: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_subscriptions: 1_000_000,
            max_subscriptions_per_line: 1_000,
            max_subscriptions_per_source: 10_000,
            max_publications_per_line: 100,
            max_notifies_in_flight: 4096,
        }
    }
}

/// Everything the engine is told at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Transaction timers.
    pub timers: Timers,
    /// Expires bounds per package name, overriding each package's defaults.
    pub package_limits: BTreeMap<String, ExpiresLimits>,
    /// Sources allowed to PUBLISH call-info (default: loopback).
    pub trusted_publishers: Vec<Cidr>,
    /// Highest appearance index a phone may seize (`None`: unlimited).
    pub max_appearances: Option<u32>,
    /// Bounds on live state.
    pub quotas: Quotas,
    /// Product token for Server and User-Agent headers.
    pub server_name: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timers: Timers::default(),
            package_limits: BTreeMap::new(),
            trusted_publishers: vec![
                Cidr::parse("127.0.0.0/8").expect("literal"),
                Cidr::parse("::1").expect("literal"),
            ],
            max_appearances: None,
            quotas: Quotas::default(),
            server_name: concat!("sharedline/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}
