//! The world: the real engine, a simulated durable store, the network and
//! the phones, all on one simulated clock and one seed. [`World::step`]
//! jumps to the earliest thing due (engine timer, store acknowledgement,
//! datagram arrival, phone timer, crash) and handles everything due then.

use crate::invariants;
use crate::net::{Net, Packet, Rng, Weather};
use crate::phone::{Mode, Phone};
use engine::config::ExpiresLimits;
use engine::{Config, Engine, Output, Source, StoreBatch, StoreModel, StoreOp, Time, Transport};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;

pub const T0: Time = Time(1_700_000_000_000);
pub const LINES: usize = 3;
pub const PHONES: usize = 6;
/// Simulated seconds of lossy activity, then at most this long to settle.
pub const ACTIVE_SECS: u64 = 40;
pub const SETTLE_CAP_SECS: u64 = 60;
/// The line must be unchanged this long before watchers are compared with it.
pub const STABLE_MS: u64 = 6000;
pub const STEP_LIMIT: u64 = 400_000;

pub fn line_uri(i: usize) -> String {
    format!("sip:line{i}@example.com")
}

pub fn config() -> Config {
    let mut cfg = Config::default();
    cfg.package_limits.insert(
        "call-info".into(),
        ExpiresLimits {
            min: 5,
            max: 30,
            default: 20,
        },
    );
    cfg.package_limits.insert(
        "line-seize".into(),
        ExpiresLimits {
            min: 1,
            max: 15,
            default: 15,
        },
    );
    cfg
}

/// The durable store: records, and batches not yet durable.
#[derive(Default)]
pub struct Store {
    pub model: StoreModel,
    pending: VecDeque<(Time, StoreBatch)>,
    /// Subscription ids (and their Call-IDs) the store ever deleted.
    pub deleted_subs: BTreeSet<String>,
    pub call_ids: BTreeMap<String, String>,
}

impl Store {
    fn apply(&mut self, b: StoreBatch) {
        for op in b.ops {
            match &op {
                StoreOp::PutSubscription(s) => {
                    self.call_ids.insert(s.id.clone(), s.call_id.clone());
                }
                StoreOp::DeleteSubscription(id) => {
                    if let Some(c) = self.call_ids.get(id) {
                        self.deleted_subs.insert(c.clone());
                    }
                }
                _ => {}
            }
            self.model.apply(op);
        }
    }

    pub fn next_at(&self) -> Option<Time> {
        self.pending.front().map(|(t, _)| *t)
    }

    pub fn idle(&self) -> bool {
        self.pending.is_empty()
    }
}

/// What a run exercised, to show the checks are not vacuous.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub watchers_checked: u64,
    pub survivors_checked: u64,
    pub notifies: u64,
    pub seizes_granted: u64,
    pub publications: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.watchers_checked += o.watchers_checked;
        self.survivors_checked += o.survivors_checked;
        self.notifies += o.notifies;
        self.seizes_granted += o.seizes_granted;
        self.publications += o.publications;
    }
}

pub struct World {
    pub stats: Stats,
    /// The engine took an input this step (its views may have changed).
    pub touched: bool,
    pub rng: Rng,
    pub now: Time,
    pub engine: Engine,
    pub store: Store,
    pub net: Net,
    pub phones: Vec<Phone>,
    pub server: SocketAddr,
    crashes: VecDeque<Time>,
    pub crash_count: u32,
    pub steps: u64,
    /// Per line: its last rendering and when it last changed.
    pub lines: Vec<(Vec<crate::phone::Ap>, Time)>,
}

impl World {
    pub fn new(seed: u64) -> World {
        World::with_crashes(seed, true)
    }

    /// A world whose server never crashes (`crashes_on` false), or crashes
    /// zero to two times as the seed says.
    pub fn with_crashes(seed: u64, crashes_on: bool) -> World {
        let mut rng = Rng::new(seed);
        let weather = Weather {
            loss: rng.range(0, 150),
            dup: rng.range(0, 50),
            reorder: rng.range(0, 100),
        };
        let server: SocketAddr = "127.0.0.1:5060".parse().expect("literal address");
        let phones = (0..PHONES)
            .map(|i| Phone::new(i, line_uri(i % LINES), T0))
            .collect();
        let mut crashes: Vec<Time> = (0..rng.range(0, 3))
            .map(|_| T0.plus_ms(rng.range(1000, ACTIVE_SECS * 1000)))
            .collect();
        crashes.sort();
        if !crashes_on {
            crashes.clear();
        }
        let engine = Engine::new(config(), rng.next_u64());
        World {
            stats: Stats::default(),
            touched: true,
            rng,
            now: T0,
            engine,
            store: Store::default(),
            net: Net::new(weather),
            phones,
            server,
            crashes: crashes.into(),
            crash_count: 0,
            steps: 0,
            lines: vec![(Vec::new(), T0); LINES],
        }
    }

    /// Run the whole scenario: the lossy phase, then a calm one until the
    /// lines are stable, then the final checks.
    pub fn run(&mut self) -> Result<(), String> {
        let quiet_at = T0.plus_secs(ACTIVE_SECS);
        while self.now < quiet_at {
            self.step(quiet_at)?;
        }
        self.net.weather = Weather::CALM;
        for p in &mut self.phones {
            p.quiet = true;
        }
        let cap = quiet_at.plus_secs(SETTLE_CAP_SECS);
        loop {
            if self.settled(quiet_at) {
                self.tally();
                return invariants::watchers_match(self);
            }
            if self.now >= cap {
                return Err(format!("did not settle within {SETTLE_CAP_SECS} s of calm"));
            }
            // Wake at least every 500 ms to look at the stability condition.
            self.step(self.now.plus_ms(500).min(cap))?;
        }
    }

    fn tally(&mut self) {
        for p in &self.phones {
            for d in p.dialogs.values() {
                self.stats.notifies += d.seen.len() as u64;
                if d.kind == crate::phone::Kind::Seize && d.confirmed {
                    self.stats.seizes_granted += 1;
                }
            }
            self.stats.publications += p.publications_made;
        }
    }

    fn settled(&self, quiet_at: Time) -> bool {
        let stable = self.lines.iter().all(|(_, t)| self.now - *t >= STABLE_MS);
        let normal: Vec<SocketAddr> = self
            .phones
            .iter()
            .filter(|p| p.mode == Mode::Normal)
            .map(|p| p.addr)
            .collect();
        let in_flight = self
            .net
            .any(|p| normal.contains(&p.to) || normal.contains(&p.from));
        self.now >= quiet_at.plus_secs(2) && stable && self.store.idle() && !in_flight
    }

    /// Advance to the earliest event (no later than `limit`) and handle
    /// everything due then.
    pub fn step(&mut self, limit: Time) -> Result<(), String> {
        self.steps += 1;
        if self.steps > STEP_LIMIT {
            return Err(format!(
                "step limit {STEP_LIMIT} reached (livelock?) at t={}",
                self.now - T0
            ));
        }
        let next = [
            self.engine.next_timeout(),
            self.store.next_at(),
            self.net.next_at(),
            self.crashes.front().copied(),
        ]
        .into_iter()
        .chain(self.phones.iter().map(Phone::next_wake))
        .flatten()
        .min()
        .unwrap_or(limit)
        .min(limit);
        self.now = self.now.max(next);
        let now = self.now;

        if self.crashes.front().is_some_and(|t| *t <= now) {
            self.crashes.pop_front();
            self.crash()?;
        }
        while self.store.next_at().is_some_and(|t| t <= now) {
            let Some((_, b)) = self.store.pending.pop_front() else {
                break;
            };
            let seq = b.seq;
            self.store.apply(b);
            self.engine.handle_durable(now, seq);
            self.drain();
        }
        if self.engine.next_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
            self.drain();
            invariants::nothing_outlives_expiry(self)?;
        }
        while let Some(p) = self.net.pop_due(now) {
            if p.to == self.server {
                let src = Source {
                    transport: Transport::Udp,
                    local: self.server,
                    remote: p.from,
                    conn: None,
                };
                self.engine.handle_bytes(now, src, &p.bytes);
                self.drain();
            } else if let Some(i) = self.phones.iter().position(|ph| ph.addr == p.to) {
                self.phones[i].on_packet(now, &p.bytes);
                self.flush_phone(i);
            }
        }
        for i in 0..self.phones.len() {
            if self.phones[i].next_wake().is_some_and(|t| t <= now) {
                self.phones[i].on_timer(now, &mut self.rng);
                self.flush_phone(i);
            }
        }
        invariants::after_step(self)
    }

    fn flush_phone(&mut self, i: usize) {
        let from = self.phones[i].addr;
        for bytes in std::mem::take(&mut self.phones[i].out) {
            self.net.send(
                &mut self.rng,
                self.now,
                Packet {
                    from,
                    to: self.server,
                    bytes,
                },
            );
        }
    }

    /// Hand every output of the engine to the store or the network.
    pub fn drain(&mut self) {
        self.touched = true;
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Store(b) => {
                    // Batches become durable in order, each a little later.
                    let last = self.store.pending.back().map_or(self.now, |(t, _)| *t);
                    let at = last.max(self.now + self.rng.range(0, 20));
                    self.store.pending.push_back((at, b));
                }
                Output::Transmit(t) => {
                    let p = Packet {
                        from: self.server,
                        to: t.remote,
                        bytes: t.bytes,
                    };
                    self.net.send(&mut self.rng, self.now, p);
                }
            }
        }
    }

    /// The server loses its memory. Of the batches not yet acknowledged, a
    /// prefix may have reached the disk (the acknowledgement was what got
    /// lost); the rest never happened. A new engine starts from the store.
    pub fn crash(&mut self) -> Result<(), String> {
        self.crash_count += 1;
        let pending: Vec<StoreBatch> = std::mem::take(&mut self.store.pending)
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        let keep = self.rng.range(0, pending.len() as u64) as usize;
        for b in pending.into_iter().take(keep) {
            self.store.apply(b);
        }
        let snapshot = self.store.model.snapshot();
        self.engine = Engine::new(config(), self.rng.next_u64());
        self.engine.restore(self.now, snapshot);
        self.drain();
        invariants::nothing_lost(self)
    }
}
