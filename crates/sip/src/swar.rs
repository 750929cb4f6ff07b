//! Word-at-a-time byte search ("SIMD within a register") in safe code:
//! eight bytes are tested per step with a few integer operations, instead
//! of one load, compare and branch per byte. Used where runs are long
//! enough for it to pay: comparing header names, and (on targets without
//! SSE2, through `simd`) the line ends of a message and the `<uri>` of an
//! address.
//!
//! The masks below set the high bit of each byte that matches. They are
//! exact for the lowest matching byte of a word (a borrow can only run
//! upwards from a match), which is the only one the searches use.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Eight bytes from `i`, little-endian, if there are eight.
#[inline(always)]
fn word(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..)
        .and_then(<[u8]>::first_chunk::<8>)
        .map(|w| u64::from_le_bytes(*w))
}

/// High bit set for bytes equal to `c` (exact up to the lowest one).
#[inline(always)]
fn eq(w: u64, c: u8) -> u64 {
    let x = w ^ (LO * u64::from(c));
    x.wrapping_sub(LO) & !x & HI
}

/// High bit set for bytes below `n` (`n` at most 0x80; exact up to the
/// lowest one).
#[inline(always)]
fn below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(LO * u64::from(n)) & !w & HI
}

/// Index of the lowest flagged byte of a non-zero mask.
#[inline(always)]
fn lowest(m: u64) -> usize {
    (m.trailing_zeros() / 8) as usize
}

/// The first `c` at or after `i`.
// On x86_64 `simd` searches with SSE2 instead; this stays its fallback
// and its reference in tests.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline]
pub(crate) fn find(b: &[u8], mut i: usize, c: u8) -> Option<usize> {
    while let Some(w) = word(b, i) {
        let m = eq(w, c);
        if m != 0 {
            return Some(i + lowest(m));
        }
        i += 8;
    }
    b.get(i..)?.iter().position(|&x| x == c).map(|p| i + p)
}

/// The first byte at or after `i` that is `c` or a control or space byte
/// (below 0x21), or `b.len()`.
// On x86_64 `simd` searches with SSE2 instead; this stays its fallback
// and its reference in tests.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline]
pub(crate) fn find_or_space(b: &[u8], mut i: usize, c: u8) -> usize {
    while let Some(w) = word(b, i) {
        let m = eq(w, c) | below(w, 0x21);
        if m != 0 {
            return i + lowest(m);
        }
        i += 8;
    }
    while i < b.len() && b[i] != c && b[i] >= 0x21 {
        i += 1;
    }
    i
}

/// The first byte at or after `i` that is `c` or `d`, or `b.len()`.
// On x86_64 `simd` searches with SSE2 instead; this stays its fallback
// and its reference in tests.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline]
pub(crate) fn find2(b: &[u8], mut i: usize, c: u8, d: u8) -> usize {
    while let Some(w) = word(b, i) {
        let m = eq(w, c) | eq(w, d);
        if m != 0 {
            return i + lowest(m);
        }
        i += 8;
    }
    while i < b.len() && b[i] != c && b[i] != d {
        i += 1;
    }
    i
}

/// Whether `x` equals the lowercase ASCII `canon` once every byte of `x`
/// is OR-ed with 0x20, compared a word at a time. For `x` free of bytes
/// below 0x21 this is a case-insensitive comparison with a name made of
/// letters and `-`: OR-ing 0x20 maps only `A`-`Z` onto `a`-`z`, and only
/// CR onto `-`.
#[inline(always)]
pub(crate) fn lower_eq(x: &[u8], canon: &[u8]) -> bool {
    let n = canon.len();
    if x.len() != n {
        return false;
    }
    let w8 = |s: &[u8], at: usize| {
        s.get(at..)
            .and_then(<[u8]>::first_chunk::<8>)
            .map_or(0, |w| u64::from_le_bytes(*w))
    };
    let w4 = |s: &[u8], at: usize| {
        s.get(at..)
            .and_then(<[u8]>::first_chunk::<4>)
            .map_or(0, |w| u32::from_le_bytes(*w))
    };
    if n >= 8 {
        // Whole words from the front, then one that ends at the end
        // (overlapping the last when `n` is not a multiple of 8).
        let mut at = 0;
        while at + 8 < n {
            if w8(x, at) | (LO * 0x20) != w8(canon, at) {
                return false;
            }
            at += 8;
        }
        w8(x, n - 8) | (LO * 0x20) == w8(canon, n - 8)
    } else if n >= 4 {
        let m = 0x2020_2020;
        w4(x, 0) | m == w4(canon, 0) && w4(x, n - 4) | m == w4(canon, n - 4)
    } else {
        x.iter().zip(canon).all(|(&a, &c)| a | 0x20 == c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_agree_with_byte_loops() {
        // Every position of a match, with every kind of byte around it,
        // including bytes whose subtraction borrows (0x00, 0x80, 0xff).
        let fill = [b'a', 0x00, 0x0a, 0x20, 0x21, 0x3e, 0x7f, 0x80, 0x8a, 0xff];
        for len in 0..24 {
            for at in 0..=len {
                for &f in &fill {
                    for &g in &fill {
                        let mut v = vec![f; len];
                        if at < len {
                            v[at] = g;
                        }
                        for i in 0..=len {
                            let want = v[i..].iter().position(|&x| x == b'\n').map(|p| i + p);
                            assert_eq!(find(&v, i, b'\n'), want, "{v:?} {i}");
                            let want = v[i..]
                                .iter()
                                .position(|&x| x == b'>' || x < 0x21)
                                .map_or(len, |p| i + p);
                            assert_eq!(find_or_space(&v, i, b'>'), want, "{v:?} {i}");
                        }
                    }
                }
            }
        }
        assert_eq!(find(b"abc", 9, b'a'), None);
        assert_eq!(find2(b"ab\tc d", 0, b' ', b'\t'), 2);
        assert_eq!(find2(b"abcdefghijk l", 1, b' ', b'\t'), 11);
        assert_eq!(find2(b"abc", 0, b' ', b'\t'), 3);
    }

    #[test]
    fn lower_eq_is_a_case_insensitive_compare() {
        for canon in [
            "to",
            "via",
            "cseq",
            "event",
            "contact",
            "max-forwards",
            "subscription-state",
        ] {
            let c = canon.as_bytes();
            assert!(lower_eq(c, c));
            assert!(lower_eq(canon.to_ascii_uppercase().as_bytes(), c));
            assert!(!lower_eq(&c[1..], c));
            for k in 0..c.len() {
                for x in 0x21..=0xffu8 {
                    let mut v = c.to_vec();
                    v[k] = x;
                    assert_eq!(
                        lower_eq(&v, c),
                        x.to_ascii_lowercase() == c[k],
                        "{canon} {k} {x}"
                    );
                }
            }
        }
    }
}
