//! Lexical rules of RFC 3261 §25 used by every header parser: linear white
//! space (with line folding), tokens, quoted strings, comma lists and
//! `;name=value` parameter lists.
//!
//! Every slice handed out here starts and ends either at the ends of the input
//! or next to an ASCII delimiter, so it always falls on a UTF-8 boundary; the
//! slicing still goes through `str::get` so that a mistake would be an error,
//! never a panic.

use crate::header::{Param, Params};

/// Byte classes, one bit each, in one table so that a scanning loop costs
/// one load and one test per byte. The runs up to a `NAME_END` or
/// `VALUE_END` byte are found sixteen bytes at a time by `simd`
/// (`name_end`, `value_end`), which falls back on this table near the end
/// of a short text and is tested against it.
pub(crate) const TOKEN: u8 = 1;
/// SP, HT, CR, LF: linear white space, counting the CR and LF of a fold.
pub(crate) const LWS: u8 = 2;
/// Ends a parameter name when walking checked parameters: `=`, `;`, LWS.
pub(crate) const NAME_END: u8 = 4;
/// Ends an unquoted parameter value when walking checked parameters:
/// `;`, `,`, `"`, LWS.
pub(crate) const VALUE_END: u8 = 8;
/// Ends an unquoted parameter value when scanning unchecked text: the
/// bytes of [`VALUE_END`] and `<`.
pub(crate) const SCAN_VALUE_END: u8 = 16;

/// The class bits of every byte.
pub(crate) const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let mut k = 0;
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            )
        {
            k |= TOKEN;
        }
        let lws = matches!(b, b' ' | b'\t' | b'\r' | b'\n');
        if lws {
            k |= LWS;
        }
        if lws || matches!(b, b'=' | b';') {
            k |= NAME_END;
        }
        if lws || matches!(b, b';' | b',' | b'"') {
            k |= VALUE_END | SCAN_VALUE_END;
        }
        if b == b'<' {
            k |= SCAN_VALUE_END;
        }
        t[c] = k;
        c += 1;
    }
    t
};

/// Whether `b` is in class `k` (one of the bits above).
#[inline(always)]
pub(crate) fn is(b: u8, k: u8) -> bool {
    CLASS[b as usize] & k != 0
}

/// Whether `b` may appear in a token.
#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    is(b, TOKEN)
}

/// The end of the run of bytes from `i` that are in class `k`.
#[inline(always)]
pub(crate) fn run_while(b: &[u8], mut i: usize, k: u8) -> usize {
    while i < b.len() && is(b[i], k) {
        i += 1;
    }
    i
}

/// Whether `s` is a non-empty token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && crate::simd::all_token(s.as_bytes())
}

/// Linear white space, counting the CR and LF of a folded line.
#[inline]
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trim LWS (folds included) from both ends.
#[inline]
pub(crate) fn trim_lws(s: &str) -> &str {
    let b = s.as_bytes();
    let mut start = 0;
    let mut end = b.len();
    while start < end && is_lws(b[start]) {
        start += 1;
    }
    while end > start && is_lws(b[end - 1]) {
        end -= 1;
    }
    // Both cuts sit next to ASCII bytes, so they are char boundaries.
    s.get(start..end).unwrap_or("")
}

/// [`trim_lws`] out of line, for the typed views: a dozen header reads
/// each trim their value, and one shared copy costs less instruction
/// cache than a dozen inlined loops save in calls (`parse` keeps its own
/// inlined copy). Most values reach it already trimmed (by `parse`, or by
/// an accessor before the parser it calls), so both ends are looked at
/// first.
#[inline(never)]
pub(crate) fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [first, .., last] if !is_lws(*first) && !is_lws(*last) => s,
        _ => trim_lws(s),
    }
}

/// Whether `s` holds any LWS byte.
pub(crate) fn has_lws(s: &str) -> bool {
    crate::simd::has_lws(s.as_bytes())
}

/// Parse a run of decimal digits as a u64, `None` if empty, not all digits or
/// too large for u64.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Whether `s` is one or more decimal digits.
pub(crate) fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Split a header value at top-level commas (not inside quotes or `<>`),
/// trimming each element and skipping empty ones.
pub(crate) fn split_commas(s: &str) -> Commas<'_> {
    Commas { s, pos: 0 }
}

pub(crate) struct Commas<'a> {
    s: &'a str,
    pos: usize,
}

impl Commas<'_> {
    /// How far into the text the elements returned so far reach (past the
    /// comma after the last one).
    pub(crate) fn consumed(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Commas<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.s.as_bytes();
        while self.pos < b.len() {
            let start = self.pos;
            let mut i = start;
            // Jump between the only bytes that matter: a comma ends the
            // element, a quote or `<` opens a span a comma cannot end.
            let end = loop {
                let Some(rel) = memchr::memchr3(b',', b'"', b'<', &b[i..]) else {
                    break b.len();
                };
                i += rel;
                match b[i] {
                    b',' => break i,
                    b'"' => {
                        i += 1;
                        while i < b.len() && b[i] != b'"' {
                            i += if b[i] == b'\\' { 2 } else { 1 };
                        }
                        i += 1;
                    }
                    _ => {
                        i = memchr::memchr(b'>', &b[i..]).map_or(b.len(), |r| i + r + 1);
                    }
                }
                if i >= b.len() {
                    break b.len();
                }
            };
            self.pos = end + 1;
            let elem = trim_lws(self.s.get(start..end).unwrap_or(""));
            if !elem.is_empty() {
                return Some(elem);
            }
        }
        None
    }
}

/// A read position in a header value.
pub(crate) struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str) -> Cursor<'a> {
        Cursor { s, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    pub(crate) fn slice(&self, a: usize, b: usize) -> &'a str {
        self.s.get(a..b).unwrap_or("")
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The text from `start` up to the current position.
    pub(crate) fn since(&self, start: usize) -> &'a str {
        self.slice(start, self.pos)
    }

    #[cfg(test)]
    pub(crate) fn rest(&self) -> &'a str {
        self.slice(self.pos, self.s.len())
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    pub(crate) fn skip_lws(&mut self) {
        let b = self.bytes();
        while self.pos < b.len() && is_lws(b[self.pos]) {
            self.pos += 1;
        }
    }

    /// Consume `c` if it is next.
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consume bytes while `f` holds. `f` must either accept every byte
    /// >= 0x80 or none of them, so the cut lands on a char boundary.
    pub(crate) fn take_while(&mut self, mut f: impl FnMut(u8) -> bool) -> &'a str {
        let b = self.bytes();
        let start = self.pos;
        while self.pos < b.len() && f(b[self.pos]) {
            self.pos += 1;
        }
        self.slice(start, self.pos)
    }

    pub(crate) fn token(&mut self) -> &'a str {
        self.take_while(is_token_byte)
    }

    /// A quoted-string starting here; returns it with its quotes. Fails on a
    /// missing closing quote or a quoted-pair escaping CR or LF.
    pub(crate) fn quoted(&mut self) -> Result<&'a str, ()> {
        let b = self.bytes();
        let start = self.pos;
        if b.get(start) != Some(&b'"') {
            return Err(());
        }
        let mut i = start + 1;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(self.slice(start, i + 1));
                }
                b'\\' => match b.get(i + 1) {
                    Some(&n) if n < 0x80 && n != b'\r' && n != b'\n' => i += 2,
                    _ => return Err(()),
                },
                _ => i += 1,
            }
        }
        Err(())
    }
}

/// Validate `*( SEMI generic-param )` up to the end of the cursor's text and
/// return it as a lazy [`Params`] view, calling `each` on every parameter in
/// order (so a caller can pick out the ones it wants in the same pass).
/// Names must be tokens; a value is a quoted string (kept with its quotes)
/// or a run of bytes up to the next `;`, `,` or white space.
pub(crate) fn scan_params<'a>(
    cur: &mut Cursor<'a>,
    mut each: impl FnMut(Param<'a>) -> Result<(), &'static str>,
) -> Result<Params<'a>, &'static str> {
    let start = cur.pos;
    loop {
        cur.skip_lws();
        if cur.at_end() {
            return Ok(Params::from_checked(cur.slice(start, cur.pos)));
        }
        if !cur.eat(b';') {
            return Err("unexpected text after value");
        }
        cur.skip_lws();
        let name = cur.token();
        if name.is_empty() {
            return Err("empty parameter");
        }
        cur.skip_lws();
        let value = if cur.eat(b'=') {
            cur.skip_lws();
            let v = if cur.peek() == Some(b'"') {
                cur.quoted().map_err(|_| "unbalanced quotes in parameter")?
            } else {
                cur.take_while(|b| !matches!(b, b';' | b',' | b'"') && !is_lws(b))
            };
            if v.is_empty() {
                return Err("empty parameter value");
            }
            Some(v)
        } else {
            None
        };
        each(Param { name, value })?;
    }
}

/// [`scan_params`] for a caller that only needs the view.
pub(crate) fn parse_params<'a>(cur: &mut Cursor<'a>) -> Result<Params<'a>, &'static str> {
    scan_params(cur, |_| Ok(()))
}

/// Walks parameter text that was validated when its [`Params`] was built
/// (generic-params of a header, or URI parameters): it only has to find the
/// boundaries again, so it is lenient about what a name holds.
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> ParamIter<'a> {
    pub(crate) fn new(s: &'a str) -> ParamIter<'a> {
        ParamIter { s, pos: 0 }
    }
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;

    // Inlined into the caller's loop: a `Param` is four words, cheaper
    // built in registers there than returned through memory.
    #[inline]
    fn next(&mut self) -> Option<Param<'a>> {
        let b = self.s.as_bytes();
        let mut i = run_while(b, self.pos, LWS);
        if b.get(i) != Some(&b';') {
            self.pos = i;
            return None;
        }
        let ns = run_while(b, i + 1, LWS);
        i = crate::simd::name_end(b, ns);
        // Cuts sit next to ASCII bytes or at the end.
        let name = self.s.get(ns..i).unwrap_or("");
        let ne = i;
        i = run_while(b, i, LWS);
        let value = if b.get(i) == Some(&b'=') {
            let vs = run_while(b, i + 1, LWS);
            i = vs;
            if b.get(i) == Some(&b'"') {
                // From one quote or backslash to the next: an escaped
                // appearance-uri holds 40 bytes and a few of those.
                i += 1;
                loop {
                    i = crate::simd::find2(b, i, b'"', b'\\');
                    if b.get(i) != Some(&b'\\') {
                        break;
                    }
                    i += 2;
                }
                i = (i + 1).min(b.len());
            } else {
                i = crate::simd::value_end(b, i, false);
            }
            self.s.get(vs..i)
        } else {
            i = ne;
            None
        };
        self.pos = i;
        Some(Param { name, value })
    }
}

/// Remove the quotes of a quoted-string (escapes stay as written).
pub(crate) fn unquote(s: &str) -> &str {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s.get(1..s.len() - 1).unwrap_or(s)
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_respect_quotes_escapes_and_angles() {
        let v = r#""Bell, A. \"x,y\"" <sip:a@b;x=1,2>;tag=1 , <sip:c@d>,,  "#;
        let parts: Vec<_> = split_commas(v).collect();
        assert_eq!(
            parts,
            vec![r#""Bell, A. \"x,y\"" <sip:a@b;x=1,2>;tag=1"#, "<sip:c@d>"]
        );
    }

    #[test]
    fn commas_across_folded_lines() {
        let v = "application/sdp, application/pkcs7-mime,\r\n        multipart/mixed";
        let parts: Vec<_> = split_commas(v).collect();
        assert_eq!(
            parts,
            vec![
                "application/sdp",
                "application/pkcs7-mime",
                "multipart/mixed"
            ]
        );
    }

    #[test]
    fn params_with_folding_and_quotes() {
        let mut c = Cursor::new(" ;\r\n  tag = 98asjd8 ; q=\"a;b\\\"c\";lr");
        let p = c.clone_params();
        assert_eq!(p.get("tag"), Some(Some("98asjd8")));
        assert_eq!(p.get("Q"), Some(Some("\"a;b\\\"c\"")));
        assert_eq!(p.get("lr"), Some(None));
        assert!(!p.has("x"));
    }

    #[test]
    fn param_walk_skips_escapes_in_long_quoted_values() {
        let walk = |raw| {
            ParamIter::new(raw)
                .map(|p| (p.name, p.value))
                .collect::<Vec<_>>()
        };
        let long = r#";a="0123456789abcdef\"0123456789\\\"x";b=1;c"#;
        assert_eq!(
            walk(long),
            [
                ("a", Some(r#""0123456789abcdef\"0123456789\\\"x""#)),
                ("b", Some("1")),
                ("c", None)
            ]
        );
        // A backslash last, as in unchecked text: the value runs to the end.
        assert_eq!(walk(r#";a="x\"#), [("a", Some(r#""x\"#))]);
    }

    proptest::proptest! {
        #[test]
        fn trim_is_trim_lws(v in "[a \t\r\n\"]{0,6}") {
            // Its shortcut for text that needs no trimming, and the loops
            // for the rest, give what `trim_lws` gives.
            proptest::prop_assert_eq!(trim(&v), trim_lws(&v));
        }
    }

    #[test]
    fn empty_params_are_errors() {
        assert!(parse_params(&mut Cursor::new(";;")).is_err());
        assert!(parse_params(&mut Cursor::new(";a=")).is_err());
        assert!(parse_params(&mut Cursor::new(";a=\"x")).is_err());
        assert!(parse_params(&mut Cursor::new(" x")).is_err());
    }

    #[test]
    fn quoted_strings() {
        let mut c = Cursor::new(r#""a\"b" rest"#);
        assert_eq!(c.quoted(), Ok(r#""a\"b""#));
        assert_eq!(c.rest(), " rest");
        assert!(Cursor::new(r#""open"#).quoted().is_err());
        assert!(Cursor::new("\"a\\\r\"").quoted().is_err());
    }

    impl<'a> Cursor<'a> {
        fn clone_params(&mut self) -> Params<'a> {
            parse_params(self).expect("valid params")
        }
    }
}
