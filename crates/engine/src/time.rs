//! The engine's clock value: milliseconds since the Unix epoch. Wall-clock
//! time, because expiry instants are stored and must mean the same after a
//! restart; the shell reads the system clock, tests set it.

use serde::{Deserialize, Serialize};
use std::ops::{Add, Sub};

/// A point in time, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Time(pub u64);

impl Time {
    /// `secs` seconds later.
    pub fn plus_secs(self, secs: u64) -> Time {
        Time(self.0.saturating_add(secs.saturating_mul(1000)))
    }
    /// `ms` milliseconds later.
    pub fn plus_ms(self, ms: u64) -> Time {
        Time(self.0.saturating_add(ms))
    }
    /// Whole seconds from `self` until `later` (0 if `later` is past), rounded up.
    pub fn secs_until(self, later: Time) -> u64 {
        later.0.saturating_sub(self.0).div_ceil(1000)
    }
}

impl Add<u64> for Time {
    type Output = Time;
    fn add(self, ms: u64) -> Time {
        self.plus_ms(ms)
    }
}

impl Sub for Time {
    type Output = u64;
    /// Milliseconds between two times (0 if negative).
    fn sub(self, earlier: Time) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}
