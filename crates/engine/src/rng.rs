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
        hex16(self.next_u64()).into_iter().map(char::from).collect()
    }
}

/// `n` as 16 lowercase hex digits, without `fmt` (a branch is written for
/// every NOTIFY).
pub(crate) fn hex16(n: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, d) in out.iter_mut().enumerate() {
        *d = DIGITS[(n >> (60 - 4 * i) & 0xf) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex16_matches_fmt() {
        let mut r = Rng::new(7);
        for n in [0, 1, 0xf, 0x10, u64::MAX, 0x0123_4567_89ab_cdef]
            .into_iter()
            .chain((0..1000).map(|_| r.next_u64()))
        {
            assert_eq!(hex16(n), format!("{n:016x}").as_bytes());
        }
    }
}
