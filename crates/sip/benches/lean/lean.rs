//! A floor estimate for a rewrite, not the crate's parser: one pass over a
//! request that validates what `parse_typed` + `Parsed::check` validate on
//! the common shapes and folds every value `access` reads into the same
//! checksum. Anything outside the shapes it knows gives 0 (a real
//! implementation would hand those to the general parser). Figures and what
//! a real implementation would add: BENCHMARKS.md, message layer, round 9.

const TOK: u8 = 1; // token
const USR: u8 = 2; // SIP URI user
const PRM: u8 = 4; // SIP URI parameter
const HST: u8 = 8; // host name / IPv4 bytes
const PWD: u8 = 16; // SIP URI password
const WRD: u8 = 32; // Call-ID word
const HDR: u8 = 64; // SIP URI header
const QD: u8 = 128; // qdtext other than `"` and `\\`

const CL: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alnum = b.is_ascii_alphanumeric();
        let unres = alnum
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        let mut k = 0;
        if alnum
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            )
        {
            k |= TOK;
        }
        if unres || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
            k |= USR;
        }
        if unres || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
            k |= PRM;
        }
        if alnum || matches!(b, b'-' | b'.') {
            k |= HST;
        }
        if unres || matches!(b, b'&' | b'=' | b'+' | b'$' | b',') {
            k |= PWD;
        }
        if (k & TOK != 0)
            || matches!(
                b,
                b'(' | b')'
                    | b'<'
                    | b'>'
                    | b':'
                    | b'\\'
                    | b'"'
                    | b'/'
                    | b'['
                    | b']'
                    | b'?'
                    | b'{'
                    | b'}'
            )
        {
            k |= WRD;
        }
        if unres
            || matches!(
                b,
                b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$' | b'=' | b'&'
            )
        {
            k |= HDR;
        }
        if (b == b'\t' || (b >= 0x20 && b < 0x7f)) && b != b'"' && b != b'\\' {
            k |= QD;
        }
        t[c] = k;
        c += 1;
    }
    t
};

// Second class table: bits 8.. of the masks.
const ALPHA: u8 = 1;
const DIGIT: u8 = 2;
const DOT: u8 = 4;
const DASH: u8 = 8;
const NCLASS: usize = 9;

/// The classes kept as masks, in mask order: (second table?, class bit).
/// PWD and HDR are rare and walked byte by byte instead.
const MASKED: [(bool, u8); NCLASS] = [
    (false, TOK),
    (false, USR),
    (false, PRM),
    (false, HST),
    (false, WRD),
    (false, QD),
    (true, ALPHA),
    (true, DOT),
    (true, DASH),
];

/// The mask of a first-table class.
#[inline(always)]
fn slot(class: u8) -> usize {
    match class {
        TOK => 0,
        USR => 1,
        PRM => 2,
        HST => 3,
        WRD => 4,
        _ => 5,
    }
}

/// The mask of a second-table class.
#[inline(always)]
fn slot2(class: u8) -> usize {
    match class {
        ALPHA => 6,
        DOT => 7,
        _ => 8,
    }
}

const CL2: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_alphabetic() {
            ALPHA
        } else if b.is_ascii_digit() {
            DIGIT
        } else if b == b'.' {
            DOT
        } else if b == b'-' {
            DASH
        } else {
            0
        };
        c += 1;
    }
    t
};

/// Bits `i..i + n` (n < 64) of the mask of second-table class `class`.
#[inline(always)]
fn bits(b: &Cx<'_>, class: u8, i: usize, n: usize) -> u64 {
    let m = &b.m[slot2(class)];
    let (w, s) = (i >> 6, i & 63);
    let mut x = m[w] >> s;
    if s != 0 {
        x |= m[w + 1] << (64 - s);
    }
    x & ((1u64 << n) - 1)
}

#[inline(always)]
fn at(b: &[u8], i: usize) -> u8 {
    if i < b.len() {
        b[i]
    } else {
        0
    }
}

#[inline(always)]
fn is(c: u8, class: u8) -> bool {
    CL[c as usize] & class != 0
}

/// Where the run of `class` bytes from `i` ends, from the class masks.
#[inline(always)]
fn run(b: &Cx<'_>, mut i: usize, class: u8) -> usize {
    if class == PWD || class == HDR {
        while is(at(b, i), class) {
            i += 1;
        }
        return i;
    }
    let m = &b.m[slot(class)];
    let mut w = i >> 6;
    let bits = !m[w] >> (i & 63);
    if bits != 0 {
        return i + bits.trailing_zeros() as usize;
    }
    loop {
        w += 1;
        let x = !m[w];
        if x != 0 {
            return w * 64 + x.trailing_zeros() as usize;
        }
    }
}

/// A run of `class` bytes and `%HH` escapes.
#[inline(always)]
fn uri_run(b: &Cx<'_>, mut i: usize, class: u8) -> Option<usize> {
    loop {
        i = run(b, i, class);
        if at(b, i) != b'%' {
            return Some(i);
        }
        if !at(b, i + 1).is_ascii_hexdigit() || !at(b, i + 2).is_ascii_hexdigit() {
            return None;
        }
        i += 3;
    }
}

/// White space, folds included.
#[inline(always)]
fn lws(b: &[u8], mut i: usize) -> usize {
    loop {
        match at(b, i) {
            b' ' | b'\t' => i += 1,
            b'\r' if at(b, i + 1) == b'\n' && matches!(at(b, i + 2), b' ' | b'\t') => i += 3,
            _ => return i,
        }
    }
}

/// A non-empty token at `i`: where it ends.
#[inline(always)]
fn token(b: &Cx<'_>, i: usize) -> Option<usize> {
    let e = run(b, i, TOK);
    (e > i).then_some(e)
}

#[inline(always)]
fn quoted(b: &Cx<'_>, i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j = run(b, j, QD);
        match at(b, j) {
            b'"' => return Some(j + 1),
            b'\\' => {
                let d = at(b, j + 1);
                if d > 0x7f || d == b'\r' || d == b'\n' || d == 0 {
                    return None;
                }
                j += 2;
            }
            c if c < 0x20 && c != b'\t' => return None,
            0x7f => return None,
            _ => j += 1,
        }
    }
}

/// Digits as a number, `None` past `max` (or when there are none).
#[inline(always)]
fn number(b: &[u8], mut i: usize, max: u64) -> Option<(usize, u64)> {
    let s = i;
    let mut n = 0u64;
    while at(b, i).is_ascii_digit() {
        n = n * 10 + u64::from(at(b, i) - b'0');
        if n > max {
            return None;
        }
        i += 1;
    }
    (i > s).then_some((i, n))
}

/// delta-seconds: clamped to u32::MAX.
#[inline(always)]
fn delta(b: &[u8], mut i: usize) -> Option<(usize, u64)> {
    let s = i;
    let cap = u64::from(u32::MAX);
    let mut n = 0u64;
    while at(b, i).is_ascii_digit() {
        n = (n * 10 + u64::from(at(b, i) - b'0')).min(cap);
        i += 1;
    }
    (i > s).then_some((i, n))
}

/// A host name (with a letter) or a dotted quad: where it ends. The label
/// rules are read from the dot, dash and letter masks of the run.
#[inline(always)]
fn host(b: &Cx<'_>, i: usize) -> Option<usize> {
    let e = run(b, i, HST);
    let n = e - i;
    if n == 0 || n >= 64 {
        return None;
    }
    let (dots, dashes) = (bits(b, DOT, i, n), bits(b, DASH, i, n));
    let starts = ((dots << 1) | 1) & ((1u64 << n) - 1);
    let last = 1u64 << (n - 1);
    if dots & (starts | dashes << 1 | last) != 0 || dashes & (starts | last) != 0 {
        return None;
    }
    if bits(b, ALPHA, i, n) != 0 {
        return Some(e);
    }
    if dots.count_ones() != 3 || dashes != 0 {
        return None;
    }
    let (mut s, mut d) = (i, dots);
    for k in 0..4 {
        let end = if k < 3 {
            i + d.trailing_zeros() as usize
        } else {
            e
        };
        d &= d.wrapping_sub(1);
        let o = &b[s..end];
        let v = match *o {
            [x] => u32::from(x - b'0'),
            [b'0', ..] => return None,
            [x, y] => u32::from(x - b'0') * 10 + u32::from(y - b'0'),
            [x, y, z] => u32::from(x - b'0') * 100 + u32::from(y - b'0') * 10 + u32::from(z - b'0'),
            _ => return None,
        };
        if v > 255 {
            return None;
        }
        s = end + 1;
    }
    Some(e)
}

/// A sip/sips URI at `i`: where it ends, and whether it has `?headers`.
#[inline(always)]
fn uri(b: &Cx<'_>, i: usize) -> Option<(usize, bool)> {
    let s = [at(b, i) | 0x20, at(b, i + 1) | 0x20, at(b, i + 2) | 0x20];
    if s != *b"sip" {
        return None;
    }
    let mut j = i + 3;
    if at(b, j) | 0x20 == b's' {
        j += 1;
    }
    if at(b, j) != b':' {
        return None;
    }
    j += 1;
    let us = j;
    // The usual user is a host-class run ending at '@'; anything else may
    // still be userinfo if an '@' follows before the URI ends.
    let mut u = run(b, us, HST);
    let mut hs = us;
    let mut user_end = u;
    if at(b, u) != b'@' {
        u = uri_run(b, u, USR)?;
        user_end = u;
        if at(b, u) == b':' {
            u = uri_run(b, u + 1, PWD)?;
        }
    }
    if at(b, u) == b'@' {
        if user_end == us {
            return None;
        }
        hs = u + 1;
    }
    let mut k = host(b, hs)?;
    if at(b, k) == b':' {
        k = number(b, k + 1, 65535)?.0;
    }
    while at(b, k) == b';' {
        let ne = uri_run(b, k + 1, PRM)?;
        if ne == k + 1 {
            return None;
        }
        k = ne;
        if at(b, k) == b'=' {
            let ve = uri_run(b, k + 1, PRM)?;
            if ve == k + 1 {
                return None;
            }
            k = ve;
        }
    }
    if at(b, k) == b'?' {
        return Some((uri_run(b, k + 1, HDR)?, true));
    }
    Some((k, false))
}

/// `;name[=value]` parameters: where they end and the walk sum; `f` sees
/// each name and value range.
#[inline(always)]
fn params(
    b: &Cx<'_>,
    mut i: usize,
    mut f: impl FnMut(&[u8], usize, usize) -> Option<()>,
) -> Option<(usize, usize)> {
    let mut sum = 0;
    loop {
        let j = lws(b, i);
        if at(b, j) != b';' {
            return Some((i, sum));
        }
        let ns = lws(b, j + 1);
        let ne = token(b, ns)?;
        let k = lws(b, ne);
        let (vs, ve) = if at(b, k) == b'=' {
            let vs = lws(b, k + 1);
            let ve = if at(b, vs) == b'"' {
                quoted(b, vs)?
            } else {
                token(b, vs)?
            };
            (vs, ve)
        } else {
            (ne, ne)
        };
        f(&b[ns..ne], vs, ve)?;
        sum += ne - ns + ve - vs;
        i = if vs == ne { ne } else { ve };
    }
}

#[inline(always)]
fn named(n: &[u8], s: &[u8]) -> bool {
    n.eq_ignore_ascii_case(s)
}

/// `<uri>` or a display name and `<uri>`, then parameters: the end and
/// uri + tag + display + walk.
#[inline(always)]
fn name_addr(b: &Cx<'_>, i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    let mut display = 0;
    match at(b, j) {
        b'<' => {}
        b'"' => {
            let e = quoted(b, j)?;
            display = e - j - 2;
            j = lws(b, e);
        }
        c if is(c, TOK) => {
            let mut e = j;
            loop {
                e = token(b, e)?;
                let k = lws(b, e);
                if at(b, k) == b'<' {
                    display = e - j;
                    j = k;
                    break;
                }
                e = k;
            }
        }
        _ => return None,
    }
    if at(b, j) != b'<' {
        return None;
    }
    let (ue, _) = uri(b, j + 1)?;
    if at(b, ue) != b'>' {
        return None;
    }
    let mut tag = 0;
    let mut seen = false;
    let (e, walk) = params(b, ue + 1, |n, vs, ve| {
        if !seen && named(n, b"tag") {
            seen = true;
            if vs == ve || at(b, vs) == b'"' {
                return None;
            }
            tag = ve - vs;
        }
        Some(())
    })?;
    Some((e, ue - j - 1 + tag + display + walk))
}

/// Elements separated by commas, each read by `one` from `i`.
#[inline(always)]
fn list(
    b: &Cx<'_>,
    mut i: usize,
    mut one: impl FnMut(usize) -> Option<(usize, usize)>,
) -> Option<(usize, usize)> {
    let mut sum = 0;
    loop {
        let (e, n) = one(i)?;
        sum += n;
        let k = lws(b, e);
        if at(b, k) != b',' {
            return Some((e, sum));
        }
        i = lws(b, k + 1);
    }
}

#[inline(always)]
fn via(b: &Cx<'_>, i: usize) -> Option<(usize, usize)> {
    let mut j = token(b, i)?;
    j = lws(b, j);
    if at(b, j) != b'/' {
        return None;
    }
    j = lws(b, j + 1);
    j = token(b, j)?;
    j = lws(b, j);
    if at(b, j) != b'/' {
        return None;
    }
    j = lws(b, j + 1);
    let te = token(b, j)?;
    j = lws(b, te);
    if j == te {
        return None;
    }
    j = host(b, j)?;
    let k = lws(b, j);
    if at(b, k) == b':' {
        j = number(b, lws(b, k + 1), 65535)?.0;
    }
    let mut extra = 0;
    let (mut br, mut rc, mut rp) = (false, false, false);
    let (e, walk) = params(b, j, |n, vs, ve| {
        if named(n, b"branch") {
            let v = &b[vs..ve];
            if vs == ve || v[0] == b'"' || v == b"z9hG4bK" {
                return None;
            }
            if !br {
                extra += ve - vs;
                br = true;
            }
        } else if named(n, b"received") {
            if vs == ve || host(b, vs)? != ve {
                return None;
            }
            if !rc {
                extra += ve - vs;
                rc = true;
            }
        } else if named(n, b"rport") {
            let p = if vs == ve {
                0
            } else {
                let (pe, p) = number(b, vs, 65535)?;
                if pe != ve {
                    return None;
                }
                p as usize
            };
            if !rp {
                extra += 1 + p;
                rp = true;
            }
        }
        Some(())
    })?;
    Some((e, extra + walk))
}

#[inline(always)]
fn media(b: &Cx<'_>, i: usize) -> Option<usize> {
    let mut j = token(b, i)?;
    j = lws(b, j);
    if at(b, j) != b'/' {
        return None;
    }
    token(b, lws(b, j + 1))
}

#[inline(always)]
fn call_info(b: &Cx<'_>, i: usize) -> Option<(usize, usize)> {
    if at(b, i) != b'<' {
        return None;
    }
    let (ue, _) = uri(b, i + 1)?;
    if at(b, ue) != b'>' {
        return None;
    }
    let mut extra = 0;
    let mut seen = 0u8;
    let (e, walk) = params(b, ue + 1, |n, vs, ve| {
        let bit = if named(n, b"appearance-index") {
            1
        } else if named(n, b"appearance-state") {
            2
        } else if named(n, b"appearance-uri") {
            4
        } else {
            return Some(());
        };
        if seen & bit == 0 {
            seen |= bit;
            extra += ve - vs;
        }
        Some(())
    })?;
    Some((e, ue - i - 1 + extra + walk))
}

const OTHER: u8 = 0;
const VIA: u8 = 1;
const FROM: u8 = 2;
const TO: u8 = 3;
const CALLID: u8 = 4;
const CSEQ: u8 = 5;
const MAXF: u8 = 6;
const CONTACT: u8 = 7;
const RR: u8 = 8;
const ROUTE: u8 = 9;
const EXPIRES: u8 = 10;
const MINEXP: u8 = 11;
const EVENT: u8 = 12;
const ALLOWEV: u8 = 13;
const ACCEPT: u8 = 14;
const CTYPE: u8 = 15;
const CLEN: u8 = 16;
const REQUIRE: u8 = 17;
const SUPPORTED: u8 = 18;
const CALLINFO: u8 = 19;
const ETAG: u8 = 20;
const IFMATCH: u8 = 21;
const SUBSTATE: u8 = 22;

/// Headers that may appear once.
const SINGLE: u32 = 1 << FROM
    | 1 << TO
    | 1 << CALLID
    | 1 << CSEQ
    | 1 << MAXF
    | 1 << EXPIRES
    | 1 << MINEXP
    | 1 << EVENT
    | 1 << CTYPE
    | 1 << CLEN
    | 1 << ETAG
    | 1 << SUBSTATE;
const MANDATORY: u32 = 1 << VIA | 1 << FROM | 1 << TO | 1 << CALLID | 1 << CSEQ | 1 << MAXF;

/// `lit` (lower case letters and `-`) padded to three words.
const fn pad(lit: &[u8]) -> [u8; 24] {
    let mut p = [0u8; 24];
    let mut i = 0;
    while i < lit.len() {
        p[i] = lit[i];
        i += 1;
    }
    p
}

/// Whether the token at `b[i..i + lit.len()]` is `lit`, case-insensitively:
/// three word compares (OR 0x20 is an exact case fold on token bytes
/// against letters and `-`).
#[inline(always)]
fn name_is(b: &[u8], i: usize, lit: &[u8]) -> bool {
    let Some(src) = b.get(i..i + 24) else {
        return b[i..i + lit.len()].eq_ignore_ascii_case(lit);
    };
    let p = pad(lit);
    let mut diff = 0u64;
    for k in 0..3 {
        let w = |s: &[u8]| u64::from_le_bytes(s[8 * k..8 * k + 8].try_into().unwrap_or([0; 8]));
        let left = lit.len().saturating_sub(8 * k).min(8);
        let mask = if left == 8 {
            !0
        } else {
            (1u64 << (8 * left)) - 1
        };
        diff |= ((w(src) | 0x2020_2020_2020_2020) ^ w(&p)) & mask;
    }
    diff == 0
}

#[inline(always)]
fn name_id(b: &[u8], i: usize, n: &[u8]) -> u8 {
    let eq = |s: &[u8]| name_is(b, i, s);
    match (n.len(), n[0] | 0x20) {
        (1, c) => match c {
            b'v' => VIA,
            b'f' => FROM,
            b't' => TO,
            b'i' => CALLID,
            b'm' => CONTACT,
            b'l' => CLEN,
            b'c' => CTYPE,
            b'k' => SUPPORTED,
            b'o' => EVENT,
            b'u' => ALLOWEV,
            _ => OTHER,
        },
        (2, b't') if eq(b"to") => TO,
        (3, b'v') if eq(b"via") => VIA,
        (4, b'f') if eq(b"from") => FROM,
        (4, b'c') if eq(b"cseq") => CSEQ,
        (5, b'r') if eq(b"route") => ROUTE,
        (5, b'e') if eq(b"event") => EVENT,
        (6, b'a') if eq(b"accept") => ACCEPT,
        (7, b'c') if eq(b"call-id") => CALLID,
        (7, b'c') if eq(b"contact") => CONTACT,
        (7, b'e') if eq(b"expires") => EXPIRES,
        (7, b'r') if eq(b"require") => REQUIRE,
        (8, b's') if eq(b"sip-etag") => ETAG,
        (9, b's') if eq(b"supported") => SUPPORTED,
        (9, b'c') if eq(b"call-info") => CALLINFO,
        (11, b'm') if eq(b"min-expires") => MINEXP,
        (12, b'm') if eq(b"max-forwards") => MAXF,
        (12, b'r') if eq(b"record-route") => RR,
        (12, b'a') if eq(b"allow-events") => ALLOWEV,
        (12, b'c') if eq(b"content-type") => CTYPE,
        (12, b's') if eq(b"sip-if-match") => IFMATCH,
        (14, b'c') if eq(b"content-length") => CLEN,
        (18, b's') if eq(b"subscription-state") => SUBSTATE,
        _ => OTHER,
    }
}

/// Longest message read here (a real parser would go on in chunks).
const MAXB: usize = 1024;
const W: usize = MAXB / 64;

/// The message and, per class bit, a mask of the bytes in that class.
/// Words past the end are zero, so every run stops there.
pub struct Cx<'a> {
    b: &'a [u8],
    m: [[u64; W + 1]; NCLASS],
}

impl std::ops::Deref for Cx<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.b
    }
}

/// The class masks with a byte-by-byte walk (any target).
fn masks_scalar(b: &[u8], m: &mut [[u64; W + 1]; NCLASS]) -> bool {
    for (i, &c) in b.iter().enumerate() {
        for (mk, (second, class)) in m.iter_mut().zip(MASKED) {
            let k = if second {
                CL2[c as usize]
            } else {
                CL[c as usize]
            };
            mk[i >> 6] |= u64::from(k & class != 0) << (i & 63);
        }
    }
    b.is_ascii()
}

/// The class masks, 64 bytes at a time: one two-table byte permute gives
/// each byte its class byte, one test per class bit gives the masks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn masks_avx512(b: &[u8], m: &mut [[u64; W + 1]; NCLASS]) -> bool {
    use std::arch::x86_64::*;
    // SAFETY: CL has 256 bytes, both loads read 64 of them.
    let (lo, hi, lo2, hi2) = unsafe {
        (
            _mm512_loadu_epi8(CL.as_ptr().cast()),
            _mm512_loadu_epi8(CL.as_ptr().add(64).cast()),
            _mm512_loadu_epi8(CL2.as_ptr().cast()),
            _mm512_loadu_epi8(CL2.as_ptr().add(64).cast()),
        )
    };
    let mut high = 0u64;
    let mut i = 0;
    while i < b.len() {
        let left = b.len() - i;
        let k: u64 = if left >= 64 { !0 } else { (1u64 << left) - 1 };
        // SAFETY: the mask `k` covers only bytes inside `b` (masked-off
        // bytes are neither read nor faulted on).
        let v = unsafe { _mm512_maskz_loadu_epi8(k, b.as_ptr().add(i).cast()) };
        high |= _mm512_movepi8_mask(v);
        let cls = _mm512_permutex2var_epi8(lo, v, hi);
        let cls2 = _mm512_permutex2var_epi8(lo2, v, hi2);
        let w = i >> 6;
        for (mk, (second, class)) in m.iter_mut().zip(MASKED) {
            let c = if second { cls2 } else { cls };
            mk[w] = _mm512_test_epi8_mask(c, _mm512_set1_epi8(class as i8));
        }
        i += 64;
    }
    high == 0
}

pub fn lean(b: &[u8]) -> usize {
    lean_in::<false>(b)
}

/// [`lean`] that also keeps a header list as a real parser must.
pub fn lean_vec(b: &[u8]) -> usize {
    lean_in::<true>(b)
}

#[inline(always)]
fn lean_in<const KEEP: bool>(b: &[u8]) -> usize {
    if b.len() > MAXB {
        return 0;
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512vbmi")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("bmi1")
        && is_x86_feature_detected!("popcnt")
    {
        // SAFETY: the features were detected at run time.
        return unsafe { lean_avx512::<KEEP>(b) };
    }
    lean_portable(b)
}

/// The whole walk compiled for AVX-512 hosts (tzcnt, popcnt, masks).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,bmi1,bmi2,popcnt,lzcnt")]
fn lean_avx512<const KEEP: bool>(b: &[u8]) -> usize {
    let mut cx = Cx {
        b,
        m: [[0; W + 1]; NCLASS],
    };
    if !masks_avx512(b, &mut cx.m) {
        return 0;
    }
    message::<KEEP>(&cx).unwrap_or(0)
}

/// The masks only (the first stage alone, for the cost of the parts).
pub fn masks_only(b: &[u8]) -> usize {
    let mut m = [[0; W + 1]; NCLASS];
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512vbmi") && is_x86_feature_detected!("avx512bw") {
        // SAFETY: the features were detected at run time.
        let ok = unsafe { masks_avx512(b, &mut m) };
        return usize::from(ok) + m[0][0] as usize + m[8][3] as usize;
    }
    usize::from(masks_scalar(b, &mut m)) + m[0][0] as usize + m[8][3] as usize
}

/// The walk with the byte-by-byte masks, for hosts without AVX-512.
#[inline(never)]
pub fn lean_portable(b: &[u8]) -> usize {
    let mut cx = Cx {
        b,
        m: [[0; W + 1]; NCLASS],
    };
    if !masks_scalar(b, &mut cx.m) {
        return 0;
    }
    message::<false>(&cx).unwrap_or(0)
}

#[inline(always)]
fn message<const KEEP: bool>(b: &Cx<'_>) -> Option<usize> {
    // Request line.
    let me = token(b, 0)?;
    if at(b, me) != b' ' {
        return None;
    }
    let (ue, headers) = uri(b, me + 1)?;
    if headers || at(b, ue) != b' ' {
        return None;
    }
    let v = b.get(ue + 1..ue + 10)?;
    if !v[..7].eq_ignore_ascii_case(b"SIP/2.0") || v[7..] != *b"\r\n" {
        return None;
    }
    let method = &b[..me];
    let mut i = ue + 10;
    let mut seen = 0u32;
    let mut sum = 0usize;
    let mut clen = None;
    // What a real parser also keeps: each header's name and value range.
    let mut kept: Vec<(u8, u32, u32)> = if KEEP {
        Vec::with_capacity(16)
    } else {
        Vec::new()
    };
    loop {
        let c = at(b, i);
        if c == b'\r' {
            if at(b, i + 1) != b'\n' {
                return None;
            }
            i += 2;
            break;
        }
        let ne = token(b, i)?;
        let id = name_id(b, i, &b[i..ne]);
        let mut j = ne;
        while matches!(at(b, j), b' ' | b'\t') {
            j += 1;
        }
        if at(b, j) != b':' {
            return None;
        }
        j = lws(b, j + 1);
        let bit = 1u32 << id;
        if seen & bit & SINGLE != 0 {
            return None;
        }
        seen |= bit;
        let (e, n) = match id {
            VIA => list(b, j, |k| via(b, k))?,
            FROM | TO | CONTACT | RR | ROUTE => list(b, j, |k| name_addr(b, k))?,
            CALLID => {
                let mut e = run(b, j, WRD);
                if at(b, e) == b'@' {
                    e = run(b, e + 1, WRD);
                }
                if e == j {
                    return None;
                }
                (e, e - j)
            }
            CSEQ => {
                let (ne, seq) = number(b, j, u64::from(u32::MAX))?;
                let ms = lws(b, ne);
                let me2 = token(b, ms)?;
                if ms == ne || b[ms..me2] != *method {
                    return None;
                }
                (me2, seq as usize + me2 - ms)
            }
            MAXF => {
                let (e, n) = number(b, j, 255)?;
                (e, n as usize)
            }
            EXPIRES | MINEXP => {
                let (e, n) = delta(b, j)?;
                (e, n as usize)
            }
            EVENT => {
                let pe = token(b, j)?;
                let mut id = 0;
                let mut got = false;
                let (e, walk) = params(b, pe, |n, vs, ve| {
                    if !got && named(n, b"id") {
                        got = true;
                        id = ve - vs;
                    }
                    Some(())
                })?;
                (e, pe - j + id + walk)
            }
            ALLOWEV | REQUIRE | SUPPORTED => list(b, j, |k| {
                let e = token(b, k)?;
                Some((e, e - k))
            })?,
            ACCEPT => list(b, j, |k| {
                let me = media(b, k)?;
                Some((params(b, me, |_, _, _| Some(()))?.0, me - k))
            })?,
            CTYPE => {
                let me = media(b, j)?;
                let (e, walk) = params(b, me, |_, _, _| Some(()))?;
                (e, me - j + walk)
            }
            CLEN => {
                let (e, n) = number(b, j, u64::from(u32::MAX))?;
                clen = Some(n as usize);
                (e, n as usize)
            }
            CALLINFO => list(b, j, |k| call_info(b, k))?,
            ETAG | IFMATCH => {
                let e = token(b, j)?;
                (e, e - j)
            }
            SUBSTATE => {
                let se = token(b, j)?;
                let st = &b[j..se];
                if !named(st, b"active") && !named(st, b"pending") && !named(st, b"terminated") {
                    return None;
                }
                let mut exp = None;
                let (e, _) = params(b, se, |n, vs, ve| {
                    if exp.is_none() && named(n, b"expires") {
                        let (de, d) = delta(b, vs)?;
                        if de != ve {
                            return None;
                        }
                        exp = Some(d as usize);
                    }
                    Some(())
                })?;
                (e, exp.unwrap_or(0))
            }
            _ => {
                // Not read: to the end of the line and its folds.
                let mut e = j;
                loop {
                    e += memchr::memchr(b'\n', b.get(e..)?)?;
                    if !matches!(at(b, e + 1), b' ' | b'\t') {
                        break;
                    }
                    e += 1;
                }
                if at(b, e - 1) != b'\r' {
                    return None;
                }
                if KEEP {
                    kept.push((id, j as u32, (e - 1) as u32));
                }
                i = e + 1;
                continue;
            }
        };
        sum += n;
        let k = lws(b, e);
        if at(b, k) != b'\r' || at(b, k + 1) != b'\n' {
            return None;
        }
        if KEEP {
            kept.push((id, j as u32, e as u32));
        }
        i = k + 2;
    }
    if seen & MANDATORY != MANDATORY {
        return None;
    }
    let end = i.checked_add(clen?)?;
    if end > b.len() {
        return None;
    }
    std::hint::black_box(&kept);
    Some(sum)
}
