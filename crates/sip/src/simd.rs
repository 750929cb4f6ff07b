//! SIMD byte searches and classification, sixteen bytes per step with
//! SSE2 (part of the x86_64 baseline, so no run-time detection is needed):
//! the line ends and header-name ends of a message, the `>` of a `<uri>`,
//! the ends of parameter names and values, quotes and backslashes in a
//! quoted value, LWS in a Call-ID; whether a long value is a token; the
//! byte classes of a short host name, for a check by bit operations; and the
//! ASCII test that lets a message's text skip the UTF-8 check. On other
//! targets every function here falls back to the word-at-a-time code of
//! `swar` or to a byte loop (or, for host names, declines), with the same
//! results.
//!
//! Also here, with run-time detection: [`class_masks`], stage 1 of the
//! one-pass reader `pass` (AVX-512 VBMI byte permutes, 64 bytes a step),
//! and [`Ascii`], text proven ASCII, which slices without UTF-8 checks.
//!
//! This module owns the crate's only `unsafe` code, small blocks:
//! the 16-byte unaligned load in [`load_chunk`], the register-only intrinsics in
//! [`eq`], [`space`], [`range`], [`letters`], [`high`] and [`or`]
//! (`std::arch` marks every intrinsic `unsafe` to call outside a
//! `#[target_feature]` function, even with the feature enabled for the
//! whole build), the `str` made of bytes [`ascii`] found to be ASCII, the
//! 64-byte loads of [`class_masks_avx512`] and its call after detection,
//! and the slices of [`Ascii`].
//! The searches and masks are built on those in safe code, and each is
//! tested against a plain byte loop (unit tests and proptest below; the
//! class masks in `difftest`).
//!
//! Every search takes the whole slice it may look at and a start index, so
//! that a run near the end of the slice can still be read as one 16-byte
//! chunk: the chunk that ends at the end of the slice, with the bits of the
//! bytes before the start shifted away.

use crate::text;
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
use std::arch::x86_64::{
    __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
    _mm_set1_epi8, _mm_sub_epi8,
};

/// The 16 bytes of `b` from `at`, if there are 16.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn load(b: &[u8], at: usize) -> Option<__m128i> {
    b.get(at..)?.first_chunk::<16>().map(load_chunk)
}

/// The 16 bytes of `chunk`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn load_chunk(chunk: &[u8; 16]) -> __m128i {
    // SAFETY: `chunk` borrows 16 initialised bytes, so the 16-byte read
    // from its address stays inside them; `_mm_loadu_si128` has no
    // alignment requirement; and SSE2 is enabled for this build (the
    // `cfg` above), so the instruction exists.
    unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) }
}

/// Bit k set when byte k of `v` equals `c`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn eq(v: __m128i, c: u8) -> u32 {
    // SAFETY: register-only SSE2 instructions (no memory access), and SSE2
    // is enabled for this build (the `cfg` above).
    unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8))) as u32 }
}

/// Bit k set when byte k of `v` is below 0x21 (controls and space).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn space(v: __m128i) -> u32 {
    // SAFETY: as for `eq`. `min(v, 0x20) == v` (unsigned) exactly for the
    // bytes up to 0x20.
    unsafe {
        let low = _mm_min_epu8(v, _mm_set1_epi8(0x20));
        _mm_movemask_epi8(_mm_cmpeq_epi8(low, v)) as u32
    }
}

/// Bit k set when byte k of `v` is 0x80 or above.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn high(v: __m128i) -> u32 {
    // SAFETY: as for `eq`.
    unsafe { _mm_movemask_epi8(v) as u32 }
}

/// The bitwise or of two chunks.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn or(a: __m128i, b: __m128i) -> __m128i {
    // SAFETY: as for `eq`.
    unsafe { _mm_or_si128(a, b) }
}

/// The first index at or after `i` whose byte is flagged by `mask` (a
/// function of one 16-byte chunk), or `None`. Whole chunks from `i`, then
/// the chunk that ends at the end of `b` for the rest (or a byte loop with
/// `byte` when `b` is shorter than 16).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn search(
    b: &[u8],
    mut i: usize,
    mask: impl Fn(__m128i) -> u32,
    byte: impl Fn(u8) -> bool,
) -> Option<usize> {
    // `chunks_exact` rather than `load` at each step: its chunks need no
    // bounds check of their own, which halves the loop.
    for chunk in b.get(i..)?.chunks_exact(16) {
        let m = chunk.first_chunk::<16>().map_or(0, |c| mask(load_chunk(c)));
        if m != 0 {
            return Some(i + m.trailing_zeros() as usize);
        }
        i += 16;
    }
    if i >= b.len() {
        return None;
    }
    let last = b.len().wrapping_sub(16);
    match load(b, last) {
        // `i > last` here, since the chunk at `i` was short; shift away
        // the bytes before `i` (already searched or not to be searched).
        Some(v) => {
            let m = mask(v) >> (i - last);
            (m != 0).then(|| i + m.trailing_zeros() as usize)
        }
        None => b[i..].iter().position(|&x| byte(x)).map(|p| i + p),
    }
}

/// The first `c` at or after `i`.
#[inline]
pub(crate) fn find(b: &[u8], i: usize, c: u8) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        search(b, i, |v| eq(v, c), |x| x == c)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        crate::swar::find(b, i, c)
    }
}

/// The first byte at or after `i` that is `c` or below 0x21 (a control or
/// space byte), or the end (`b.len()`, or `i` if that is past it).
#[inline]
pub(crate) fn find_or_space(b: &[u8], i: usize, c: u8) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        search(b, i, |v| eq(v, c) | space(v), |x| x == c || x < 0x21).unwrap_or(b.len().max(i))
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        crate::swar::find_or_space(b, i, c)
    }
}

/// The first byte at or after `i` that is `c` or `d`, or the end (as for
/// [`find_or_space`]).
#[inline]
pub(crate) fn find2(b: &[u8], i: usize, c: u8, d: u8) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        search(b, i, |v| eq(v, c) | eq(v, d), |x| x == c || x == d).unwrap_or(b.len().max(i))
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        crate::swar::find2(b, i, c, d)
    }
}

/// The first byte at or after `i` that ends an unquoted parameter value:
/// LWS (SP, HT, CR, LF), `;`, `,` or `"`, and `<` too when `angle` is set
/// (the `VALUE_END` and `SCAN_VALUE_END` classes of `text`); or the end.
#[inline]
pub(crate) fn value_end(b: &[u8], i: usize, angle: bool) -> usize {
    let class = if angle {
        text::SCAN_VALUE_END
    } else {
        text::VALUE_END
    };
    let byte = |x: u8| text::is(x, class);
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        let mask = |v| {
            let m = eq(v, b' ') | eq(v, b'\t') | eq(v, b'\r') | eq(v, b'\n');
            let m = m | eq(v, b';') | eq(v, b',') | eq(v, b'"');
            if angle {
                m | eq(v, b'<')
            } else {
                m
            }
        };
        search(b, i, mask, byte).unwrap_or(b.len().max(i))
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        b.get(i..)
            .and_then(|r| r.iter().position(|&x| byte(x)))
            .map_or(b.len().max(i), |p| i + p)
    }
}

/// The first byte at or after `i` that ends a parameter name when walking
/// checked parameters: LWS, `=` or `;` (the `NAME_END` class of `text`);
/// or the end.
#[inline]
pub(crate) fn name_end(b: &[u8], i: usize) -> usize {
    let byte = |x: u8| text::is(x, text::NAME_END);
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        let mask = |v| {
            let m = eq(v, b' ') | eq(v, b'\t') | eq(v, b'\r') | eq(v, b'\n');
            m | eq(v, b'=') | eq(v, b';')
        };
        search(b, i, mask, byte).unwrap_or(b.len().max(i))
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        b.get(i..)
            .and_then(|r| r.iter().position(|&x| byte(x)))
            .map_or(b.len().max(i), |p| i + p)
    }
}

/// Whether every byte of `b` may appear in a token (the `TOKEN` class of
/// `text`). Sixteen bytes per step from 16 bytes up (a `branch` is 20 to
/// 40), where the byte loop costs about seven instructions a byte.
#[inline]
pub(crate) fn all_token(b: &[u8]) -> bool {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if b.len() >= 16 {
        let all = |c: &[u8; 16]| token(load_chunk(c)) == 0xffff;
        // Whole chunks from the start, then the one that ends at the end
        // (overlapping the last of them).
        return b.chunks_exact(16).all(|c| c.first_chunk().is_some_and(all))
            && b.last_chunk().is_some_and(all);
    }
    b.iter().all(|&x| text::is(x, text::TOKEN))
}

/// Bit k set when byte k of `v` may appear in a token: letters, digits
/// and the marks `-`, `.`, `!`, `%`, `*`, `_`, `+`, `` ` ``, `'`, `~`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn token(v: __m128i) -> u32 {
    letters(v)
        | range(v, b'0', 10)
        | range(v, b'_', 2)
        | range(v, b'*', 2)
        | range(v, b'-', 2)
        | eq(v, b'!')
        | eq(v, b'%')
        | eq(v, b'\'')
        | eq(v, b'~')
}

/// `b` as text if every byte is ASCII, `None` otherwise. Nearly every
/// message is ASCII throughout, and sixty-four bytes per step take about
/// half the instructions of `str::from_utf8` on it (which the caller
/// still runs on the rest).
#[inline]
pub(crate) fn ascii(b: &[u8]) -> Option<&str> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        let mut i = 0;
        while let Some(four) = b.get(i..).and_then(|r| r.first_chunk::<64>()) {
            let (v0, v1, v2, v3) = (
                load(four, 0)?,
                load(four, 16)?,
                load(four, 32)?,
                load(four, 48)?,
            );
            if high(or(or(v0, v1), or(v2, v3))) != 0 {
                return None;
            }
            i += 64;
        }
        while let Some(v) = load(b, i) {
            if high(v) != 0 {
                return None;
            }
            i += 16;
        }
        // The last chunk overlaps bytes already checked, which is harmless
        // for an all-bytes test.
        let tail = match load(b, b.len().wrapping_sub(16)) {
            Some(v) if i < b.len() => high(v) == 0,
            _ => b[i..].is_ascii(),
        };
        if !tail {
            return None;
        }
        // SAFETY: every byte of `b` was found below 0x80 above (whole
        // chunks from 0 to `i`, then either the chunk ending at the end or
        // the bytes from `i`), and ASCII is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(b) })
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        if b.is_ascii() {
            std::str::from_utf8(b).ok()
        } else {
            None
        }
    }
}

/// Whether `b` holds LWS (SP, HT, CR, LF).
#[inline]
pub(crate) fn has_lws(b: &[u8]) -> bool {
    let byte = |x: u8| matches!(x, b' ' | b'\t' | b'\r' | b'\n');
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        let mask = |v| eq(v, b' ') | eq(v, b'\t') | eq(v, b'\r') | eq(v, b'\n');
        search(b, 0, mask, byte).is_some()
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        b.iter().any(|&x| byte(x))
    }
}

/// Masks over sixteen bytes of a text, bit `k` for the `k`th byte from
/// where they start: the bytes a host name may hold (letters, digits, `_`,
/// `.`, `-`) and, of those, the dots, the dashes, and the letters and `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostBytes {
    pub(crate) host: u32,
    pub(crate) dot: u32,
    pub(crate) dash: u32,
    pub(crate) alpha: u32,
}

/// The [`HostBytes`] of `b` from `i`. With fewer than 16 bytes left, they
/// come from the chunk that ends at the end of `b`, shifted, so the bits
/// past the end are clear. `None` when `b` is shorter than 16 bytes or
/// `i` is at its end (or there is no SSE2): the caller walks the host.
#[inline]
pub(crate) fn host_bytes(b: &[u8], i: usize) -> Option<HostBytes> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        let (v, shift) = match load(b, i) {
            Some(v) => (v, 0),
            None if i < b.len() => {
                let last = b.len().checked_sub(16)?;
                (load(b, last)?, i - last)
            }
            None => return None,
        };
        let alpha = letters(v) | eq(v, b'_');
        let dot = eq(v, b'.');
        let dash = eq(v, b'-');
        let host = alpha | range(v, b'0', 10) | dot | dash;
        Some(HostBytes {
            host: host >> shift,
            dot: dot >> shift,
            dash: dash >> shift,
            alpha: alpha >> shift,
        })
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        let _ = (b, i);
        None
    }
}

/// Bit k set when byte k of `v` is in `lo..lo + n` (`n` at most 128).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn range(v: __m128i, lo: u8, n: u8) -> u32 {
    // SAFETY: as for `eq`. `x - lo` (wrapping) is below `n` exactly for
    // `x` in the range; `min(d, n - 1) == d` tests that, unsigned.
    unsafe {
        let d = _mm_sub_epi8(v, _mm_set1_epi8(lo as i8));
        let low = _mm_min_epu8(d, _mm_set1_epi8((n - 1) as i8));
        _mm_movemask_epi8(_mm_cmpeq_epi8(low, d)) as u32
    }
}

/// Bit k set when byte k of `v` is an ASCII letter.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn letters(v: __m128i) -> u32 {
    // SAFETY: as for `eq`. OR-ing 0x20 maps `A`-`Z` onto `a`-`z` and no
    // other byte into that range.
    let lower = unsafe { _mm_or_si128(v, _mm_set1_epi8(0x20)) };
    range(lower, b'a', 26)
}

/// Text made of ASCII bytes only, so that every index is a character
/// boundary and a slice of it needs no UTF-8 check.
#[derive(Clone, Copy)]
pub(crate) struct Ascii<'a>(&'a [u8]);

impl<'a> Ascii<'a> {
    /// `b` as text, if it is ASCII.
    #[cfg(test)]
    pub(crate) fn new(b: &'a [u8]) -> Option<Ascii<'a>> {
        b.is_ascii().then_some(Ascii(b))
    }

    /// # Safety
    /// Every byte of `b` must be below 0x80.
    #[inline(always)]
    unsafe fn new_unchecked(b: &'a [u8]) -> Ascii<'a> {
        Ascii(b)
    }

    /// The text from `a` to `e`; empty if that is not a range of it.
    #[inline(always)]
    pub(crate) fn sub(self, a: usize, e: usize) -> &'a str {
        match self.0.get(a..e) {
            // SAFETY: the bytes are ASCII (the type's invariant), and
            // ASCII is valid UTF-8.
            Some(b) => unsafe { std::str::from_utf8_unchecked(b) },
            None => "",
        }
    }
}

/// Stage 1 of `pass`: for every byte `i` of `b` and each class
/// `k` of `sel`, bit `i % 64` of word `i / 64` of `m[k]` is set when the
/// byte's entry in table `t2` (if `sel[k].0`) or `t1` has bit `sel[k].1`
/// set. Words past the end of `b` are left as they are (zero in a fresh
/// `m`). Returns `b` as text.
///
/// `None` on a CPU without AVX-512 BW and VBMI, whose two-table byte
/// permute classifies 64 bytes in one instruction (there is no cheap way
/// to build these masks 16 bytes at a time, so other CPUs keep the parsers
/// `pass` stands in front of), when `b` does not fit in the masks (it must
/// be shorter than `64 * W`, so the last word stays zero), or when `b` is
/// not all ASCII.
#[inline]
pub(crate) fn class_masks<'b, const N: usize, const W: usize>(
    b: &'b [u8],
    t1: &[u8; 256],
    t2: &[u8; 256],
    sel: &[(bool, u8); N],
    m: &mut [[u64; W]; N],
) -> Option<Ascii<'b>> {
    #[cfg(target_arch = "x86_64")]
    if b.len() < 64 * W
        && std::arch::is_x86_feature_detected!("avx512vbmi")
        && std::arch::is_x86_feature_detected!("avx512bw")
    {
        // SAFETY: the CPU has the features the function is compiled for
        // (detected just above).
        let ascii = unsafe { class_masks_avx512(b, t1, t2, sel, m) };
        // SAFETY: the loads in `class_masks_avx512` saw every byte of `b`
        // and `ascii` says none had its top bit set.
        return ascii.then(|| unsafe { Ascii::new_unchecked(b) });
    }
    let _ = (b, t1, t2, sel, m);
    None
}

/// [`class_masks`] on a CPU known to have the features: whether `b` is
/// all ASCII.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn class_masks_avx512<const N: usize, const W: usize>(
    b: &[u8],
    t1: &[u8; 256],
    t2: &[u8; 256],
    sel: &[(bool, u8); N],
    m: &mut [[u64; W]; N],
) -> bool {
    use std::arch::x86_64::{
        __m512i, _mm512_loadu_epi8, _mm512_maskz_loadu_epi8, _mm512_movepi8_mask,
        _mm512_permutex2var_epi8, _mm512_set1_epi8, _mm512_test_epi8_mask,
    };
    // Only bytes below 0x80 need a class (a byte with its top bit set makes
    // the whole message go to `parse`), so the low half of each table
    // serves as the two 64-byte halves of a 128-entry permute.
    // SAFETY: each table holds 256 bytes; these loads read bytes 0..128.
    let (lo, hi, lo2, hi2) = unsafe {
        (
            _mm512_loadu_epi8(t1.as_ptr().cast()),
            _mm512_loadu_epi8(t1.as_ptr().add(64).cast()),
            _mm512_loadu_epi8(t2.as_ptr().cast()),
            _mm512_loadu_epi8(t2.as_ptr().add(64).cast()),
        )
    };
    let mut high = 0u64;
    let mut classify = |w: usize, v: __m512i| {
        high |= _mm512_movepi8_mask(v);
        let c1 = _mm512_permutex2var_epi8(lo, v, hi);
        let c2 = _mm512_permutex2var_epi8(lo2, v, hi2);
        for (mk, &(second, bit)) in m.iter_mut().zip(sel) {
            let c = if second { c2 } else { c1 };
            mk[w] = _mm512_test_epi8_mask(c, _mm512_set1_epi8(bit as i8));
        }
    };
    let full = b.len() / 64;
    for (w, chunk) in b.chunks_exact(64).enumerate().take(W) {
        // SAFETY: `chunk` is 64 initialised bytes; the load has no
        // alignment requirement.
        classify(w, unsafe { _mm512_loadu_epi8(chunk.as_ptr().cast()) });
    }
    let left = b.len() - full * 64;
    if left > 0 && full < W {
        // A masked load for the tail only: on Zen 4 masked loads of every
        // block took twice as long as plain ones.
        let k = (1u64 << left) - 1;
        // SAFETY: mask `k` selects the `left` bytes from `64 * full`, all
        // inside `b`; masked-off bytes are neither read nor faulted on.
        classify(full, unsafe {
            _mm512_maskz_loadu_epi8(k, b.as_ptr().add(full * 64).cast())
        });
    }
    high == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swar;
    use crate::text::{NAME_END, SCAN_VALUE_END, VALUE_END};
    use proptest::prelude::*;

    fn find_ref(b: &[u8], i: usize, c: u8) -> Option<usize> {
        b.get(i..)?.iter().position(|&x| x == c).map(|p| i + p)
    }

    fn space_ref(b: &[u8], i: usize, c: u8) -> usize {
        b.get(i..)
            .and_then(|r| r.iter().position(|&x| x == c || x < 0x21))
            .map_or(b.len().max(i), |p| i + p)
    }

    fn value_end_ref(b: &[u8], i: usize, angle: bool) -> usize {
        class_ref(b, i, if angle { SCAN_VALUE_END } else { VALUE_END })
    }

    fn class_ref(b: &[u8], i: usize, k: u8) -> usize {
        b.get(i..)
            .and_then(|r| r.iter().position(|&x| text::is(x, k)))
            .map_or(b.len().max(i), |p| i + p)
    }

    fn find2_ref(b: &[u8], i: usize, c: u8, d: u8) -> usize {
        b.get(i..)
            .and_then(|r| r.iter().position(|&x| x == c || x == d))
            .map_or(b.len().max(i), |p| i + p)
    }

    #[test]
    fn every_length_and_position() {
        // Every start, every match position, in slices around the 16-byte
        // chunk size, with bytes that are signed-negative, below and at
        // the 0x21 bound.
        let fill = [
            b'a', 0x00, 0x20, 0x21, b':', 0x7f, 0x80, 0xff, b'\t', b'\n', b';', b'<',
        ];
        for len in 0..40 {
            for at in 0..=len {
                for &f in &fill {
                    for &g in &fill {
                        let mut v = vec![f; len];
                        if at < len {
                            v[at] = g;
                        }
                        assert_eq!(has_lws(&v), v.iter().any(|&x| text::is_lws(x)));
                        assert_eq!(ascii(&v).is_some(), v.is_ascii(), "{v:?}");
                        for i in 0..=len + 1 {
                            assert_eq!(find(&v, i, b':'), find_ref(&v, i, b':'), "{v:?} {i}");
                            assert_eq!(
                                find_or_space(&v, i, b':'),
                                space_ref(&v, i, b':'),
                                "{v:?} {i}"
                            );
                            assert_eq!(find2(&v, i, b':', 0x80), find2_ref(&v, i, b':', 0x80));
                            assert_eq!(
                                find_or_space(&v, i, b':'),
                                swar::find_or_space(&v, i, b':')
                            );
                            assert_eq!(find(&v, i, b':'), swar::find(&v, i, b':'));
                            assert_eq!(name_end(&v, i), class_ref(&v, i, NAME_END));
                            for angle in [false, true] {
                                assert_eq!(value_end(&v, i, angle), value_end_ref(&v, i, angle));
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn ascii_finds_a_high_byte_anywhere() {
        // Lengths across several 64-byte blocks and their 16-byte chunks,
        // a byte of 0x80 or 0xff at every position.
        for len in 0..200 {
            let v = vec![b'a'; len];
            assert_eq!(ascii(&v), Some("a".repeat(len).as_str()));
            for at in 0..len {
                for high in [0x80, 0xff] {
                    let mut w = v.clone();
                    w[at] = high;
                    assert_eq!(ascii(&w), None, "{len} {at}");
                }
            }
        }
    }

    fn host_bytes_ref(b: &[u8], i: usize) -> Option<HostBytes> {
        if b.len() < 16 || i >= b.len() {
            return None;
        }
        let mut m = HostBytes {
            host: 0,
            dot: 0,
            dash: 0,
            alpha: 0,
        };
        for (k, &x) in b[i..].iter().take(16).enumerate() {
            let bit = 1u32 << k;
            let alpha = x.is_ascii_alphabetic() || x == b'_';
            if alpha || x.is_ascii_digit() || x == b'.' || x == b'-' {
                m.host |= bit;
            }
            if x == b'.' {
                m.dot |= bit;
            }
            if x == b'-' {
                m.dash |= bit;
            }
            if alpha {
                m.alpha |= bit;
            }
        }
        Some(m)
    }

    #[test]
    fn host_bytes_every_byte_and_position() {
        let all: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
        for start in 0..256 {
            for len in [0, 5, 15, 16, 17, 31, 40] {
                let b = &all[start..start + len];
                for i in 0..=len {
                    assert_eq!(host_bytes(b, i), host_bytes_ref(b, i), "{start} {len} {i}");
                }
            }
        }
    }

    #[test]
    fn all_token_judges_every_byte_at_every_place() {
        for len in [1, 15, 16, 17, 31, 32, 33, 48, 50] {
            for at in 0..len {
                for x in 0..=255u8 {
                    let mut v = vec![b'a'; len];
                    v[at] = x;
                    assert_eq!(all_token(&v), text::is_token_byte(x), "{len} {at} {x}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn host_bytes_match_byte_tests(
            v in proptest::collection::vec(any::<u8>(), 0..40),
            i in 0usize..42,
        ) {
            prop_assert_eq!(host_bytes(&v, i), host_bytes_ref(&v, i));
        }

        #[test]
        fn searches_match_byte_loops(
            v in proptest::collection::vec(any::<u8>(), 0..80),
            i in 0usize..90,
            c in any::<u8>(),
        ) {
            prop_assert_eq!(find(&v, i, c), find_ref(&v, i, c));
            prop_assert_eq!(find_or_space(&v, i, c), space_ref(&v, i, c));
            prop_assert_eq!(find2(&v, i, c, b'\n'), find2_ref(&v, i, c, b'\n'));
            prop_assert_eq!(value_end(&v, i, false), value_end_ref(&v, i, false));
            prop_assert_eq!(value_end(&v, i, true), value_end_ref(&v, i, true));
            prop_assert_eq!(name_end(&v, i), class_ref(&v, i, NAME_END));
            prop_assert_eq!(has_lws(&v), v.iter().any(|&x| text::is_lws(x)));
            let tail = v.get(i..).unwrap_or(&[]);
            prop_assert_eq!(all_token(tail), tail.iter().all(|&x| text::is_token_byte(x)));
        }

        #[test]
        fn ascii_is_the_ascii_test(
            v in proptest::collection::vec(0u8..0x80, 0..300),
            at in any::<prop::sample::Index>(),
            high in 0x80u8..,
        ) {
            prop_assert_eq!(ascii(&v), std::str::from_utf8(&v).ok());
            // One byte of 0x80 or above anywhere, at every length past the
            // 64-byte blocks too.
            let mut w = v.clone();
            if !w.is_empty() {
                let k = at.index(w.len());
                w[k] = high;
                prop_assert_eq!(ascii(&w), None);
            }
        }
    }
}
