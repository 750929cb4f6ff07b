//! One pass over a whole request: the fast path of [`crate::parse_typed`].
//!
//! Stage 1 (`simd::class_masks`) gives every byte of the message its byte
//! classes (token, URI user, URI parameter, host, Call-ID word, quoted
//! text, letter, dot, dash, LF) as bit masks, 64 bytes per step. Stage 2,
//! here, walks the request line and the header lines once, front to back,
//! and writes into the `Parsed` it returns the header list, the index and
//! the values `Parsed` keeps (Via, From, To, Call-ID, CSeq, Max-Forwards,
//! Contact, Route, Record-Route, Expires, Event, Content-Type,
//! Content-Length, and the verdict on the Request-URI) as it meets them:
//! every run of a class ends at one bit scan instead of a byte loop.
//! Stage 2 is plain x86-64 code: compiled for AVX-512 and BMI with stage 1
//! it measured slower (BENCHMARKS.md, message layer, round 10).
//!
//! It knows the usual shapes only. Anything else (a response, a header
//! section that is not ASCII or longer than a kilobyte, bare LF line
//! ends, a token display name, an IPv6 host, a value its readers do not
//! take, a repeated single header...) gives `None`, and `parse_typed`
//! takes `parse` and `Parsed::new`, which decide with the general rules
//! and give the errors. So this pass never has to reproduce an error: it
//! only has to build, for what it takes, exactly the `Parsed` that path
//! builds. The differential tests in `difftest` hold it to that on every host,
//! with stage 1 done byte by byte where the CPU lacks AVX-512 VBMI (where
//! `parse_typed` itself never comes here).

use crate::header::{CSeq, ContentType, Event, NameAddr, Params, Via};
use crate::known::{slot, First, Index, Known, Parsed, K};
use crate::message::{Header, HeaderName, Message, Method, StartLine};
use crate::parse::{known_name, name_hash, NAMES, NAME_SLOT};
use crate::scan::{named, Resume};
use crate::simd::Ascii;

const TOK: u8 = 1; // token
const USR: u8 = 2; // SIP URI user
const PRM: u8 = 4; // SIP URI parameter
const HST: u8 = 8; // host name / IPv4 bytes
const PWD: u8 = 16; // SIP URI password
const WRD: u8 = 32; // Call-ID word
const HDR: u8 = 64; // SIP URI header
const QD: u8 = 128; // qdtext other than `"` and `\`

/// The first class table (RFC 3261 §25.1 character sets). The token and
/// SIP URI sets are those of `text` and `uri`, read from their tables.
const CL: [u8; 256] = {
    use crate::uri::{HEADER, PARAM, PASSWORD, URI_CLASS, USER};
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        let u = URI_CLASS[c];
        let mut k = 0;
        if crate::text::CLASS[c] & crate::text::TOKEN != 0 {
            k |= TOK;
        }
        if u & USER != 0 {
            k |= USR;
        }
        if u & PARAM != 0 {
            k |= PRM;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.') {
            k |= HST;
        }
        if u & PASSWORD != 0 {
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
        if u & HEADER != 0 {
            k |= HDR;
        }
        if (b == b'\t' || b >= 0x20 && b < 0x7f) && b != b'"' && b != b'\\' {
            k |= QD;
        }
        t[c] = k;
        c += 1;
    }
    t
};

// The second class table: bits for the host-name label rules, and LF.
const ALPHA: u8 = 1;
const DOT: u8 = 2;
const DASH: u8 = 4;
const LF: u8 = 8;

const CL2: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_alphabetic() {
            ALPHA
        } else if b == b'.' {
            DOT
        } else if b == b'-' {
            DASH
        } else if b == b'\n' {
            LF
        } else {
            0
        };
        c += 1;
    }
    t
};

const NCLASS: usize = 10;

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
    (true, LF),
];

/// The mask of a first-table class.
#[inline(always)]
fn slot1(class: u8) -> usize {
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
        DASH => 8,
        _ => 9,
    }
}

/// Mask words: the longest message taken here is one byte short of
/// `64 * W` (longer ones are rare and go to `parse`), so the last word is
/// always zero and every run stops at the end.
pub(crate) const W: usize = 16;

/// One bit mask per class of [`MASKED`] over the message's bytes.
pub(crate) type Masks = [[u64; W]; NCLASS];

/// The message as bytes and as text, and its class masks.
pub(crate) struct Cx<'a, 'm> {
    b: &'a [u8],
    s: Ascii<'a>,
    m: &'m Masks,
}

/// Stage 1 byte by byte, on any CPU: the masks `simd::class_masks`
/// builds (a test compares them), for running stage 2 in tests where the
/// CPU lacks AVX-512.
#[cfg(test)]
pub(crate) fn portable_masks(b: &[u8]) -> Option<Masks> {
    if b.len() >= 64 * W || !b.is_ascii() {
        return None;
    }
    let mut m = [[0; W]; NCLASS];
    for (i, &c) in b.iter().enumerate() {
        for (mk, &(second, class)) in m.iter_mut().zip(&MASKED) {
            let k = if second {
                CL2[c as usize]
            } else {
                CL[c as usize]
            };
            mk[i >> 6] |= u64::from(k & class != 0) << (i & 63);
        }
    }
    Some(m)
}

/// The masks of the AVX-512 stage 1, where the CPU has it.
#[cfg(test)]
pub(crate) fn avx512_masks(b: &[u8]) -> Option<Masks> {
    let mut m = [[0; W]; NCLASS];
    crate::simd::class_masks(b, &CL, &CL2, &MASKED, &mut m)?;
    Some(m)
}

/// Stage 2 over masks built elsewhere (the tests' portable ones).
#[cfg(test)]
pub(crate) fn request_with<'a>(b: &'a [u8], m: &Masks, stream: bool) -> Option<Parsed<'a>> {
    let s = Ascii::new(b)?;
    request(&Cx { b, s, m }, stream)
}

impl<'a> Cx<'a, '_> {
    #[inline(always)]
    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    /// The text from `a` to `e`. The cuts sit next to ASCII bytes, so
    /// they never fail; an empty slice would only ever hide a bug.
    #[inline(always)]
    fn sub(&self, a: usize, e: usize) -> &'a str {
        self.s.sub(a, e)
    }

    /// Where the run of `class` bytes from `i` ends.
    #[inline(always)]
    fn run(&self, i: usize, class: u8) -> usize {
        if class == PWD || class == HDR {
            let mut i = i;
            while CL[self.at(i) as usize] & class != 0 {
                i += 1;
            }
            return i;
        }
        let m = &self.m[slot1(class)];
        let mut w = i >> 6;
        if w >= W {
            return i;
        }
        let bits = !m[w] >> (i & 63);
        if bits != 0 {
            return i + bits.trailing_zeros() as usize;
        }
        loop {
            w += 1;
            // The last word is always zero, so this ends there at most.
            let x = !m.get(w).copied().unwrap_or(0);
            if x != 0 {
                return w * 64 + x.trailing_zeros() as usize;
            }
        }
    }

    /// Bits `i..i + n` (n < 64) of second-table class `class`.
    #[inline(always)]
    fn bits(&self, class: u8, i: usize, n: usize) -> u64 {
        let m = &self.m[slot2(class)];
        let (w, s) = (i >> 6, i & 63);
        let word = |k: usize| m.get(k).copied().unwrap_or(0);
        let mut x = word(w) >> s;
        if s != 0 {
            x |= word(w + 1) << (64 - s);
        }
        x & ((1u64 << n) - 1)
    }

    /// The first LF at or after `i`, or the end of the masks.
    #[inline(always)]
    fn next_lf(&self, i: usize) -> usize {
        let m = &self.m[slot2(LF)];
        let mut w = i >> 6;
        let mut x = m.get(w).copied().unwrap_or(0) >> (i & 63);
        if x != 0 {
            return i + x.trailing_zeros() as usize;
        }
        loop {
            w += 1;
            if w >= W {
                return 64 * W;
            }
            x = m[w];
            if x != 0 {
                return w * 64 + x.trailing_zeros() as usize;
            }
        }
    }

    /// A run of `class` bytes and `%HH` escapes.
    #[inline(always)]
    fn uri_run(&self, mut i: usize, class: u8) -> Option<usize> {
        loop {
            i = self.run(i, class);
            if self.at(i) != b'%' {
                return Some(i);
            }
            if !self.at(i + 1).is_ascii_hexdigit() || !self.at(i + 2).is_ascii_hexdigit() {
                return None;
            }
            i += 3;
        }
    }

    /// White space, folds included.
    #[inline(always)]
    fn lws(&self, mut i: usize) -> usize {
        loop {
            match self.at(i) {
                b' ' | b'\t' => i += 1,
                b'\r' if self.at(i + 1) == b'\n' && matches!(self.at(i + 2), b' ' | b'\t') => {
                    i += 3
                }
                _ => return i,
            }
        }
    }

    /// A non-empty token at `i`: where it ends.
    #[inline(always)]
    fn token(&self, i: usize) -> Option<usize> {
        let e = self.run(i, TOK);
        (e > i).then_some(e)
    }

    /// A quoted string at `i` (which holds `"`): the index after it.
    #[inline(always)]
    fn quoted(&self, i: usize) -> Option<usize> {
        let mut j = i + 1;
        loop {
            j = self.run(j, QD);
            match self.at(j) {
                b'"' => return Some(j + 1),
                b'\\' => {
                    let d = self.at(j + 1);
                    if d > 0x7f || d == b'\r' || d == b'\n' || d == 0 {
                        return None;
                    }
                    j += 2;
                }
                _ => return None,
            }
        }
    }

    /// Digits as a number: `None` past `max`, or when there are none.
    #[inline(always)]
    fn number(&self, mut i: usize, max: u64) -> Option<(usize, u64)> {
        let s = i;
        let mut n = 0u64;
        while self.at(i).is_ascii_digit() {
            n = n * 10 + u64::from(self.at(i) - b'0');
            if n > max {
                return None;
            }
            i += 1;
        }
        (i > s).then_some((i, n))
    }

    /// delta-seconds, clamped to u32::MAX as `delta_seconds` does.
    #[inline(always)]
    fn delta(&self, mut i: usize) -> Option<(usize, u32)> {
        let s = i;
        let cap = u64::from(u32::MAX);
        let mut n = 0u64;
        while self.at(i).is_ascii_digit() {
            n = (n * 10 + u64::from(self.at(i) - b'0')).min(cap);
            i += 1;
        }
        (i > s).then_some((i, n as u32))
    }

    /// A host name (with a letter) or a dotted quad at `i`: where it ends.
    /// The label rules are read from the dot, dash and letter masks.
    #[inline(always)]
    fn host(&self, i: usize) -> Option<usize> {
        let e = self.run(i, HST);
        let n = e - i;
        if n == 0 || n >= 64 {
            return None;
        }
        let (dots, dashes) = (self.bits(DOT, i, n), self.bits(DASH, i, n));
        let starts = ((dots << 1) | 1) & ((1u64 << n) - 1);
        let last = 1u64 << (n - 1);
        if dots & (starts | dashes << 1 | last) != 0 || dashes & (starts | last) != 0 {
            return None;
        }
        if self.bits(ALPHA, i, n) != 0 {
            return Some(e);
        }
        (dashes == 0 && self.quad(i, e, dots)).then_some(e)
    }

    /// Whether `i..e`, digits and the dots `dots` (bits from `i`) only, is
    /// a dotted quad.
    #[inline(always)]
    fn quad(&self, i: usize, e: usize, dots: u64) -> bool {
        if dots.count_ones() != 3 {
            return false;
        }
        let (mut s, mut d) = (i, dots);
        for k in 0..4 {
            let end = if k < 3 {
                i + d.trailing_zeros() as usize
            } else {
                e
            };
            d &= d.wrapping_sub(1);
            let o = self.b.get(s..end).unwrap_or(&[]);
            let v = match *o {
                [x] => u32::from(x - b'0'),
                [b'0', ..] => return false,
                [x, y] => u32::from(x - b'0') * 10 + u32::from(y - b'0'),
                [x, y, z] => {
                    u32::from(x - b'0') * 100 + u32::from(y - b'0') * 10 + u32::from(z - b'0')
                }
                _ => return false,
            };
            if v > 255 {
                return false;
            }
            s = end + 1;
        }
        true
    }

    /// Whether `i..e` is a dotted quad and nothing else.
    #[inline(always)]
    fn ipv4(&self, i: usize, e: usize) -> bool {
        let n = e - i;
        if n == 0 || n >= 16 || self.run(i, HST) < e {
            return false;
        }
        let dots = self.bits(DOT, i, n);
        self.bits(ALPHA, i, n) == 0 && self.bits(DASH, i, n) == 0 && self.quad(i, e, dots)
    }

    /// A sip or sips URI at `i`: where it ends, and whether it has
    /// `?headers`.
    // Out of line, as `via` is: one copy for the request line and every
    // name-addr. Inlined at each, the pass alone ran 1-2% faster, but a
    // fully read request (parse, check, every accessor) runs more code
    // than the L1 instruction cache holds, and took 1-4% longer
    // (BENCHMARKS.md, message layer, round 11).
    #[inline(never)]
    fn uri(&self, i: usize) -> Option<(usize, bool)> {
        let s = [
            self.at(i) | 0x20,
            self.at(i + 1) | 0x20,
            self.at(i + 2) | 0x20,
        ];
        if s != *b"sip" {
            return None;
        }
        let mut j = i + 3;
        if self.at(j) | 0x20 == b's' {
            j += 1;
        }
        if self.at(j) != b':' {
            return None;
        }
        j += 1;
        let us = j;
        // The usual user is a host-class run ending at '@'; anything else
        // may still be userinfo if an '@' follows before the URI ends.
        let mut u = self.run(us, HST);
        let mut hs = us;
        let mut user_end = u;
        if self.at(u) != b'@' {
            u = self.uri_run(u, USR)?;
            user_end = u;
            if self.at(u) == b':' {
                u = self.uri_run(u + 1, PWD)?;
            }
        }
        if self.at(u) == b'@' {
            if user_end == us {
                return None;
            }
            hs = u + 1;
        }
        let mut k = self.host(hs)?;
        if self.at(k) == b':' {
            k = self.number(k + 1, 65535)?.0;
        }
        while self.at(k) == b';' {
            let ne = self.uri_run(k + 1, PRM)?;
            if ne == k + 1 {
                return None;
            }
            k = ne;
            if self.at(k) == b'=' {
                let ve = self.uri_run(k + 1, PRM)?;
                if ve == k + 1 {
                    return None;
                }
                k = ve;
            }
        }
        if self.at(k) == b'?' {
            return Some((self.uri_run(k + 1, HDR)?, true));
        }
        Some((k, false))
    }

    /// `;name[=value]` parameters from `i`, as `scan::params` reads them
    /// (values are tokens or quoted strings here): where the last one
    /// ends; `f` sees each name and value range (`vs == ve`: no value).
    #[inline(always)]
    fn params(
        &self,
        mut i: usize,
        mut f: impl FnMut(&'a str, usize, usize) -> Option<()>,
    ) -> Option<usize> {
        loop {
            let j = self.lws(i);
            if self.at(j) != b';' {
                return Some(i);
            }
            let ns = self.lws(j + 1);
            let ne = self.token(ns)?;
            let k = self.lws(ne);
            let (vs, ve) = if self.at(k) == b'=' {
                let vs = self.lws(k + 1);
                let ve = if self.at(vs) == b'"' {
                    self.quoted(vs)?
                } else {
                    self.token(vs)?
                };
                (vs, ve)
            } else {
                (ne, ne)
            };
            f(self.sub(ns, ne), vs, ve)?;
            i = if vs == ne { ne } else { ve };
        }
    }

    /// Parameters from `i`: the value of the first one named `lower`
    /// (`None` if absent or without a value), and where they end.
    #[inline(always)]
    fn first_param(&self, i: usize, lower: &str) -> Option<(Option<&'a str>, usize)> {
        let mut found = None;
        let e = self.params(
            i,
            #[inline(always)]
            |n, vs, ve| {
                if found.is_none() && named(n, lower) {
                    found = Some(self.value(vs, ve));
                }
                Some(())
            },
        )?;
        Some((found.flatten(), e))
    }

    /// The value range `vs..ve` as `scan::params` hands it on.
    #[inline(always)]
    fn value(&self, vs: usize, ve: usize) -> Option<&'a str> {
        (ve > vs).then(|| self.sub(vs, ve))
    }

    /// `"display" <uri>;params` or `<uri>;params` at `i`: the element and
    /// where it ends, as `scan::name_addr` reads it.
    #[inline(always)]
    fn name_addr(&self, i: usize) -> Option<(NameAddr<'a>, usize)> {
        self.name_addr_h(i).map(|(na, e, _)| (na, e))
    }

    /// [`Cx::name_addr`], and whether its URI has `?headers`.
    #[inline(always)]
    fn name_addr_h(&self, i: usize) -> Option<(NameAddr<'a>, usize, bool)> {
        let (display, lt) = match self.at(i) {
            b'<' => (None, i),
            b'"' => {
                let q = self.quoted(i)?;
                let lt = self.lws(q);
                (Some(self.sub(i + 1, q - 1)), lt)
            }
            _ => return None,
        };
        if self.at(lt) != b'<' {
            return None;
        }
        let (ue, uri_headers) = self.uri(lt + 1)?;
        if self.at(ue) != b'>' {
            return None;
        }
        let (tag, e) = self.first_param(ue + 1, "tag")?;
        let na = NameAddr {
            display,
            uri: self.sub(lt + 1, ue),
            params: Params::from_checked(self.sub(ue + 1, e)),
            raw: self.sub(i, e),
            tag_seen: Some(tag),
        };
        Some((na, e, uri_headers))
    }

    /// `SIP/2.0/UDP host[:port];params` at `i`, as `scan::via` reads it.
    #[inline(never)]
    fn via(&self, i: usize) -> Option<(Via<'a>, usize)> {
        let p1 = self.token(i)?;
        if self.at(p1) != b'/' {
            return None;
        }
        let p2 = self.token(p1 + 1)?;
        if self.at(p2) != b'/' {
            return None;
        }
        let te = self.token(p2 + 1)?;
        let mut h = te;
        while matches!(self.at(h), b' ' | b'\t') {
            h += 1;
        }
        if h == te {
            return None;
        }
        let he = self.host(h)?;
        let (port, pe) = if self.at(he) == b':' {
            let (e, n) = self.number(he + 1, 65535)?;
            (Some(n as u16), e)
        } else {
            (None, he)
        };
        // Without a port `scan::via` starts the parameter text after the
        // LWS that follows the host (where the general parser looks).
        let ps = if port.is_some() { pe } else { self.lws(pe) };
        let (mut branch, mut received, mut rport) = (None, None, None);
        let e = self.params(
            ps,
            #[inline(always)]
            |n, vs, ve| {
                if named(n, "branch") {
                    let v = self.value(vs, ve)?;
                    if branch.is_some() || self.at(vs) == b'"' || v == "z9hG4bK" {
                        return None;
                    }
                    branch = Some(v);
                } else if named(n, "received") {
                    if received.is_some() || !self.ipv4(vs, ve) {
                        return None;
                    }
                    received = Some(self.sub(vs, ve));
                } else if named(n, "rport") {
                    if rport.is_some() {
                        return None;
                    }
                    rport = Some(if vs == ve {
                        None
                    } else {
                        let (pe, p) = self.number(vs, 65535)?;
                        if pe != ve {
                            return None;
                        }
                        Some(p as u16)
                    });
                }
                Some(())
            },
        )?;
        // No parameters: the element ends with the sent-by.
        let (params, end) = if e == ps {
            ("", pe)
        } else {
            (self.sub(ps, e), e)
        };
        let via = Via {
            transport: self.sub(p2 + 1, te),
            host: self.sub(h, he),
            port,
            branch,
            received,
            rport,
            params: Params::from_checked(params),
            raw: self.sub(i, end),
        };
        Some((via, end))
    }

    /// `type/subtype` at `i`, no LWS around the slash: where it ends.
    #[inline(always)]
    fn media(&self, i: usize) -> Option<usize> {
        let t = self.token(i)?;
        if self.at(t) != b'/' {
            return None;
        }
        self.token(t + 1)
    }

    /// The header name `i..ne` (a token) and its index slot. Names of two
    /// bytes or more are found by the hash of `parse::known_name` and
    /// compared as three words read straight from the message, masked to
    /// their length: `known_name` compares through slices, a word and a
    /// bounds check at a time. This runs about 15 instructions fewer a
    /// line, and without it a fully read request took 3% longer
    /// (BENCHMARKS.md, message layer, round 12).
    #[inline(always)]
    fn name(&self, i: usize, ne: usize) -> (HeaderName<'a>, Option<K>) {
        let n = ne - i;
        let word = |k: usize| {
            self.b
                .get(i + 8 * k..i + 8 * k + 8)
                .and_then(|w| w.try_into().ok())
                .map_or(0, u64::from_le_bytes)
                // Token bytes are 0x21 and up, so OR-ing 0x20 folds only
                // A-Z onto a-z (see `swar::lower_eq`).
                | 0x2020_2020_2020_2020
        };
        if n >= 2 && i + 24 <= self.b.len() {
            let (f, l) = (self.at(i) | 0x20, self.at(ne - 1) | 0x20);
            let slot = NAME_SLOT[name_hash(n, f, l)];
            if let Some(e) = WORDS.get(usize::from(slot)) {
                if e.len == n
                    && word(0) & e.mask[0] == e.w[0]
                    && word(1) & e.mask[1] == e.w[1]
                    && word(2) & e.mask[2] == e.w[2]
                {
                    return (e.name, e.k);
                }
            }
            return (HeaderName::Other(self.sub(i, ne)), None);
        }
        let name = known_name(self.b.get(i..ne).unwrap_or(&[]))
            .unwrap_or_else(|| HeaderName::Other(self.sub(i, ne)));
        (name, slot(&name))
    }

    /// After an element ending at `e`: the index of the comma that follows
    /// (past LWS), or of the end of the value; `None` if anything else does.
    #[inline(always)]
    fn after(&self, e: usize) -> Option<(usize, bool)> {
        let k = self.lws(e);
        match self.at(k) {
            b',' => Some((k, true)),
            b'\r' => Some((k, false)),
            _ => None,
        }
    }
}

/// A known header name (two to 24 bytes) as the pass compares it: its
/// lowercase bytes in three little-endian words, the masks that keep
/// `len` bytes of them, and its name and index slot.
#[derive(Clone, Copy)]
struct Word3 {
    w: [u64; 3],
    mask: [u64; 3],
    len: usize,
    name: HeaderName<'static>,
    k: Option<K>,
}

/// [`Word3`] of each name of `parse::NAMES`, in its order (so
/// `parse::NAME_SLOT` finds them).
const WORDS: [Word3; NAMES.len()] = {
    let mut t = [Word3 {
        w: [0; 3],
        mask: [0; 3],
        len: usize::MAX,
        name: HeaderName::Via,
        k: None,
    }; NAMES.len()];
    let mut n = 0;
    while n < NAMES.len() {
        let (canon, name) = NAMES[n];
        assert!(canon.len() <= 24, "a known name longer than three words");
        let mut e = Word3 {
            w: [0; 3],
            mask: [0; 3],
            len: canon.len(),
            name,
            k: slot(&name),
        };
        let mut i = 0;
        while i < canon.len() {
            e.w[i / 8] |= (canon[i] as u64) << (8 * (i % 8));
            e.mask[i / 8] |= 0xff << (8 * (i % 8));
            i += 1;
        }
        t[n] = e;
        n += 1;
    }
    t
};

/// A list header's first element, read in the pass, and how many elements
/// its line holds (the others walked by the pass only to validate them).
struct Listed<'a, T> {
    first: T,
    /// Where `Elements` stands after the first element: the value-relative
    /// index of the comma after it (or the end), plus one.
    pos: usize,
    count: usize,
    value: &'a str,
}

/// [`crate::parse_typed`]'s answer, if this pass can give it: `None` on a
/// CPU without AVX-512 VBMI and for anything outside the shapes it knows.
#[inline]
pub(crate) fn parse_typed(b: &[u8], stream: bool) -> Option<Parsed<'_>> {
    let mut m = [[0; W]; NCLASS];
    let s = crate::simd::class_masks(b, &CL, &CL2, &MASKED, &mut m)?;
    request(&Cx { b, s, m: &m }, stream)
}

/// The value readers, one list element each: the element and its end.
#[inline(always)]
fn list<'a, T>(
    cx: &Cx<'a, '_>,
    vs: usize,
    one: impl Fn(usize) -> Option<(T, usize)>,
) -> Option<(Listed<'a, T>, usize)> {
    // One call of `one`, so that it is inlined once.
    let (mut first, mut pos, mut count) = (None, 0, 0);
    let mut at = vs;
    loop {
        let (t, e) = one(at)?;
        let (k, more) = cx.after(e)?;
        count += 1;
        if first.is_none() {
            first = Some(t);
            // `Elements` stops at the comma, or at the end of the
            // (trimmed) value.
            pos = if more { k } else { e } - vs + 1;
        }
        if !more {
            let value = cx.sub(vs, e);
            let first = first?;
            return Some((
                Listed {
                    first,
                    pos,
                    count,
                    value,
                },
                e,
            ));
        }
        at = cx.lws(k + 1);
    }
}

/// Stage 2: the request line, the header lines and the body.
#[inline(always)]
pub(crate) fn request<'a>(cx: &Cx<'a, '_>, stream: bool) -> Option<Parsed<'a>> {
    // Request line: `METHOD SP sip-uri SP SIP/2.0 CRLF`, nothing looser.
    let me = cx.token(0)?;
    if cx.at(me) != b' ' {
        return None;
    }
    let (ue, headers) = cx.uri(me + 1)?;
    if headers || cx.at(ue) != b' ' {
        return None;
    }
    let v = cx.b.get(ue + 1..ue + 10)?;
    if !v[..7].eq_ignore_ascii_case(b"SIP/2.0") || v[7..] != *b"\r\n" {
        return None;
    }
    let method = cx.sub(0, me);
    let start = StartLine::Request {
        method: Method::from_token(method),
        uri: cx.sub(me + 1, ue),
        version: cx.sub(ue + 1, ue + 8),
    };

    // The values go straight into their places in the `Parsed` returned
    // (a `Known` is 1 KB: moving each value through locals into it cost
    // more than reading it).
    let mut p = Parsed {
        msg: Message {
            start,
            headers: Vec::with_capacity(16),
            body: &[],
        },
        index: Index::empty(),
        known: Known::empty(),
    };
    // The request line took a sip or sips URI without headers only.
    p.known.request_uri = Some(Some((true, false)));
    let mut vias = 0usize;
    // Single-valued headers met so far: a repeat goes to `parse`.
    let mut seen = 0u32;
    let mut content_length: Option<u32> = None;

    let mut i = ue + 10;
    let body_start = loop {
        if cx.at(i) == b'\r' {
            if cx.at(i + 1) != b'\n' {
                return None;
            }
            break i + 2;
        }
        // Where this header ends (its last LF, folds included) is found
        // from where it starts, in the LF mask, so the next line's start
        // does not wait on this line's value being read: the CPU reads
        // several lines at once. Through the value's end, the loop was one
        // chain of loads from the first line to the last
        // (BENCHMARKS.md, message layer, round 12).
        let first_lf = cx.next_lf(i);
        let mut lf = first_lf;
        while matches!(cx.at(lf + 1), b' ' | b'\t') {
            lf = cx.next_lf(lf + 1);
        }
        let ne = cx.token(i)?;
        let mut j = ne;
        if cx.at(j) != b':' {
            while matches!(cx.at(j), b' ' | b'\t') {
                j += 1;
            }
            if cx.at(j) != b':' {
                return None;
            }
        }
        let (name, k) = cx.name(i, ne);
        // Usually one space after the colon.
        j += 1 + usize::from(cx.at(j + 1) == b' ');
        while matches!(cx.at(j), b' ' | b'\t') {
            j += 1;
        }
        let vs = j;
        if let Some(k) = k {
            p.index.note(k, p.msg.headers.len());
            if matches!(
                k,
                K::From
                    | K::To
                    | K::CallId
                    | K::CSeq
                    | K::MaxForwards
                    | K::Expires
                    | K::Event
                    | K::ContentType
                    | K::ContentLength
            ) {
                let bit = 1u32 << k as u32;
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
            }
        }
        let kn = &mut p.known;
        // Each reader gives the end of the value; the line must end there
        // (after white space and folds).
        let read_end = match k {
            Some(K::Via) => {
                let (l, e) = list(
                    cx,
                    vs,
                    #[inline(always)]
                    |p| cx.via(p),
                )?;
                vias += l.count;
                if kn.via.item.is_none() {
                    kn.via = first_of(l);
                }
                Some(e)
            }
            Some(kk @ (K::Contact | K::Route | K::RecordRoute)) => {
                let (l, e) = list(
                    cx,
                    vs,
                    #[inline(always)]
                    |p| cx.name_addr(p),
                )?;
                let slot = match kk {
                    K::Contact => &mut kn.contact,
                    K::Route => &mut kn.route,
                    _ => &mut kn.record_route,
                };
                if slot.item.is_none() {
                    *slot = first_of(l);
                }
                Some(e)
            }
            Some(kk @ (K::From | K::To)) => {
                let (na, e, uri_headers) = cx.name_addr_h(vs)?;
                if cx.after(e)?.1 {
                    return None;
                }
                let verdict = Some(Some((true, uri_headers)));
                if matches!(kk, K::From) {
                    kn.from = Ok(Some(na));
                    kn.from_uri = verdict;
                } else {
                    kn.to = Ok(Some(na));
                    kn.to_uri = verdict;
                }
                Some(e)
            }
            Some(K::CallId) => {
                let mut e = cx.run(vs, WRD);
                if cx.at(e) == b'@' {
                    e = cx.run(e + 1, WRD);
                }
                if e == vs {
                    return None;
                }
                kn.call_id = Ok(Some(cx.sub(vs, e)));
                Some(e)
            }
            Some(K::CSeq) => {
                let (ne, seq) = cx.number(vs, u64::from(u32::MAX))?;
                if cx.at(ne) != b' ' {
                    return None;
                }
                let te = cx.token(ne + 1)?;
                kn.cseq = Ok(Some(CSeq {
                    seq: seq as u32,
                    method: cx.sub(ne + 1, te),
                }));
                Some(te)
            }
            Some(K::MaxForwards) => {
                let (e, n) = cx.number(vs, 255)?;
                kn.max_forwards = Ok(Some(n as u32));
                Some(e)
            }
            Some(K::Expires) => {
                let (e, n) = cx.delta(vs)?;
                kn.expires = Ok(Some(n));
                Some(e)
            }
            Some(K::Event) => {
                let pe = cx.token(vs)?;
                let (id, e) = cx.first_param(pe, "id")?;
                kn.event = Ok(Some(Event {
                    package: cx.sub(vs, pe),
                    id,
                    params: Params::from_checked(cx.sub(pe, e)),
                }));
                Some(e)
            }
            Some(K::ContentType) => {
                let me = cx.media(vs)?;
                let e = cx.params(me, |_, _, _| Some(()))?;
                kn.content_type = Ok(Some(ContentType {
                    media: cx.sub(vs, me),
                    params: Params::from_checked(cx.sub(me, e)),
                }));
                Some(e)
            }
            Some(K::ContentLength) => {
                let (e, n) = cx.number(vs, u64::from(u32::MAX))?;
                kn.content_length = Ok(Some(n as u32));
                content_length = Some(n as u32);
                Some(e)
            }
            _ => None,
        };
        // The value must end at that LF. These are checks only: the next
        // line's start is `lf + 1` either way.
        let ve = match read_end {
            Some(e) => {
                // White space, then CRLF not followed by a fold.
                let k = cx.lws(e);
                if cx.at(k) != b'\r' || k + 1 != lf {
                    return None;
                }
                e
            }
            None => {
                let (ve, next) = other_value(cx, vs, first_lf)?;
                if next != lf + 1 {
                    return None;
                }
                ve
            }
        };
        p.msg.headers.push(Header {
            name,
            value: cx.sub(vs, ve),
        });
        i = lf + 1;
    };

    p.msg.body = match content_length {
        Some(len) => {
            cx.b.get(body_start..body_start.checked_add(len as usize)?)?
        }
        None if stream => return None,
        None => cx.b.get(body_start..)?,
    };
    p.known.vias = Ok(vias);
    Some(p)
}

/// A list header's first element as `Known` keeps it.
#[inline(always)]
fn first_of<'a, T>(l: Listed<'a, T>) -> First<'a, T> {
    First {
        item: Some(Ok(l.first)),
        uri_ok: true,
        rest: Resume::at(1, l.value, l.pos),
    }
}

/// A value the pass does not read, from `vs` (past the colon and white
/// space) to the end of its line and of any folded lines after it, trimmed
/// as `parse` trims it: its end and where the next line starts. `lf` is
/// the line's first LF (the first after `vs`: the name, colon and white
/// space before `vs` hold none), which the caller has found.
#[inline(always)]
fn other_value(cx: &Cx<'_, '_>, vs: usize, lf: usize) -> Option<(usize, usize)> {
    let b = cx.b;
    // The usual line first: a value that ends right before its CRLF, no
    // fold after it. The loop below gives the same answer for it.
    if lf > vs + 1 && lf < b.len() {
        let (last, cr) = (b[lf - 2], b[lf - 1]);
        if cr == b'\r' && !matches!(last, b' ' | b'\t') && !matches!(cx.at(lf + 1), b' ' | b'\t') {
            return Some((lf - 1, lf + 1));
        }
    }
    let mut pos = vs;
    let mut ve = None;
    loop {
        let lf = cx.next_lf(pos);
        if lf >= b.len() || lf == 0 || b[lf - 1] != b'\r' {
            return None;
        }
        let mut end = lf - 1;
        while end > pos && matches!(b[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        match ve {
            // The first line: an empty value, or one that starts on a fold,
            // is left to `parse`.
            None if end <= vs => return None,
            None => ve = Some(end),
            Some(_) if end > pos => ve = Some(end),
            Some(_) => {}
        }
        pos = lf + 1;
        if !matches!(cx.at(pos), b' ' | b'\t') {
            return Some((ve?, pos));
        }
    }
}
