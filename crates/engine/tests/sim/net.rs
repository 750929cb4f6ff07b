//! The simulated network and the seeded generator every random choice of a
//! run draws from. The network is a queue of datagrams keyed by arrival
//! time; each send may be lost, duplicated, delayed or overtaken, at rates
//! drawn per run, so one seed gives one exact schedule.

use engine::Time;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// SplitMix64: small, fast, and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x005E_ED0F_5A4E_D11E)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.next_u64() % 1000 < per_mille
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// One datagram on its way.
#[derive(Debug, Clone)]
pub struct Packet {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// How bad the network is; rates in per-mille.
#[derive(Debug, Clone, Copy)]
pub struct Weather {
    pub loss: u64,
    pub dup: u64,
    /// Chance that a datagram is held back long enough to be overtaken.
    pub reorder: u64,
}

impl Weather {
    pub const CALM: Weather = Weather {
        loss: 0,
        dup: 0,
        reorder: 0,
    };
}

/// Datagrams in flight, ordered by arrival time then by send order.
pub struct Net {
    queue: BTreeMap<(Time, u64), Packet>,
    seq: u64,
    pub weather: Weather,
    pub sent: u64,
    pub lost: u64,
}

impl Net {
    pub fn new(weather: Weather) -> Net {
        Net {
            queue: BTreeMap::new(),
            seq: 0,
            weather,
            sent: 0,
            lost: 0,
        }
    }

    pub fn send(&mut self, rng: &mut Rng, now: Time, p: Packet) {
        self.sent += 1;
        if rng.chance(self.weather.loss) {
            self.lost += 1;
            return;
        }
        let copies = if rng.chance(self.weather.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let mut delay = rng.range(1, 30);
            if rng.chance(self.weather.reorder) {
                delay += rng.range(50, 600);
            }
            self.seq += 1;
            self.queue.insert((now + delay, self.seq), p.clone());
        }
    }

    pub fn next_at(&self) -> Option<Time> {
        self.queue.keys().next().map(|(t, _)| *t)
    }

    /// The next datagram due at or before `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<Packet> {
        let (&key, _) = self.queue.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.queue.remove(&key)
    }

    /// Whether any datagram in flight satisfies `f`.
    pub fn any(&self, f: impl Fn(&Packet) -> bool) -> bool {
        self.queue.values().any(f)
    }
}
