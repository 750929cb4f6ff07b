//! A small seeded generator (SplitMix64) for tags, branches and ETags, so a
//! run is a function of its seed and inputs. Unpredictability comes from the
//! seed the shell draws at start, not from this generator.

/// SplitMix64.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 16 lowercase hex digits.
    pub(crate) fn token(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }
}
