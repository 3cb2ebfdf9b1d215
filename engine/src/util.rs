//! Small helpers shared by the protocol and the commands: Redis's number parsing rules,
//! glob-style matching, clocks.

use std::time::{SystemTime, UNIX_EPOCH};

/// Parses an i64 as Redis's string2ll: optional '-', no '+', no spaces, no leading zeros.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        if value > i64::MAX as u64 + 1 {
            None
        } else {
            Some((value as i64).wrapping_neg())
        }
    } else {
        i64::try_from(value).ok()
    }
}

/// Parses a double as Redis's strtod-based parsers do: no surrounding spaces, no NaN;
/// "inf", "+inf", "-inf" (any case) accepted.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if let Some(value) = parse_small_integer_f64(s) {
        return Some(value);
    }
    let text = std::str::from_utf8(s).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let is = |word: &str| text.eq_ignore_ascii_case(word);
    let value = if is("inf") || is("+inf") || is("infinity") || is("+infinity") {
        f64::INFINITY
    } else if is("-inf") || is("-infinity") {
        f64::NEG_INFINITY
    } else {
        let has = |word: &[u8]| s.windows(3).any(|w| w.eq_ignore_ascii_case(word));
        if has(b"inf") || has(b"nan") {
            return None;
        }
        text.parse::<f64>().ok()?
    };
    (!value.is_nan()).then_some(value)
}

/// The common case of a number to parse, read without the float parser: an optional sign
/// and 1 to 15 decimal digits, which a double holds exactly ("-0" is -0.0, as strtod has it).
pub fn parse_small_integer_f64(s: &[u8]) -> Option<f64> {
    let (negative, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let value = n as f64;
    Some(if negative { -value } else { value })
}

/// Appends `bytes` in double quotes with Redis's escapes (sdscatrepr): `\\`, `\"`, `\n`,
/// `\r`, `\t`, `\a`, `\b`, and `\xHH` for other unprintable bytes.
pub fn quote_repr(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// Glob-style matching as Redis's stringmatchlen: `*`, `?`, `[abc]`, `[^a-z]`, `\\x`.
///
/// Linear in the pattern times the string, never exponential (CVE-2022-36021): every token
/// but `*` matches exactly one byte, so a mismatch only needs to retry the most recent `*`
/// one byte further on; earlier stars can never do better. Results equal Redis 7.0.15's,
/// including its quirks (an empty string matches only an empty pattern, except that a lone
/// `*`, which every caller treats as "everything", matches it too).
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    if pattern == b"*" {
        return true;
    }
    if string.is_empty() {
        return pattern.is_empty();
    }
    let (p, s) = (pattern, string);
    let (mut pi, mut si) = (0, 0);
    // Where the rest of the pattern after the latest `*` is being tried, and from which byte.
    let mut retry: Option<(usize, usize)> = None;
    loop {
        if p.get(pi) == Some(&b'*') {
            while p.get(pi + 1) == Some(&b'*') {
                pi += 1;
            }
            if pi + 1 == p.len() {
                return true;
            }
            pi += 1;
            retry = Some((pi, si));
            continue;
        }
        if pi < p.len() && glob_token(p, &mut pi, s[si], nocase) {
            si += 1;
            if si < s.len() {
                continue;
            }
            while p.get(pi) == Some(&b'*') {
                pi += 1;
            }
            if pi == p.len() {
                return true;
            }
        }
        match retry {
            Some((rest, from)) if from + 1 < s.len() => {
                retry = Some((rest, from + 1));
                (pi, si) = (rest, from + 1);
            }
            _ => return false,
        }
    }
}

/// Matches one non-`*` token of a glob pattern at `p[*pi]` against the byte `c`, moving `pi`
/// past the token.
fn glob_token(p: &[u8], pi: &mut usize, c: u8, nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let matched = match p[*pi] {
        b'?' => true,
        b'[' => {
            *pi += 1;
            let negate = p.get(*pi) == Some(&b'^');
            if negate {
                *pi += 1;
            }
            let mut matched = false;
            loop {
                match p.get(*pi) {
                    Some(b'\\') if p.len() - *pi >= 2 => {
                        *pi += 1;
                        matched |= p[*pi] == c;
                    }
                    Some(b']') => break,
                    // An unterminated class ends with the pattern.
                    None => {
                        *pi -= 1;
                        break;
                    }
                    Some(&lo) if p.len() - *pi >= 3 && p[*pi + 1] == b'-' => {
                        let hi = p[*pi + 2];
                        let (mut lo, mut hi, mut c) = (lo.min(hi), lo.max(hi), c);
                        if nocase {
                            (lo, hi, c) = (
                                lo.to_ascii_lowercase(),
                                hi.to_ascii_lowercase(),
                                c.to_ascii_lowercase(),
                            );
                        }
                        *pi += 2;
                        matched |= lo <= c && c <= hi;
                    }
                    Some(&b) => matched |= eq(b, c),
                }
                *pi += 1;
            }
            matched != negate
        }
        b'\\' if p.len() - *pi >= 2 => {
            *pi += 1;
            eq(p[*pi], c)
        }
        b => eq(b, c),
    };
    *pi += 1;
    matched
}

/// Compares two secrets in time that depends only on their lengths, never on where they
/// first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Resident memory of a process (this one for None), from /proc; 0 where unavailable.
pub fn rss_bytes(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/statm"),
        None => "/proc/self/statm".to_string(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Splits "100mb" into (100, "mb"): leading decimal digits and the rest. None without digits
/// or on overflow.
pub fn split_number_unit(text: &str) -> Option<(u64, &str)> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    Some((digits.parse().ok()?, unit))
}

/// Runs `f`, which may wait a long time (a script, or the keyspace lock a script holds), off
/// the tokio worker's duties when on a multi-threaded runtime: the worker's other tasks move
/// to another thread meanwhile, so connections go on being served (with -BUSY past the
/// script's threshold). Elsewhere `f` just runs. Handing the worker over costs a thread
/// switch, so callers use it only while a script runs (`Shared::wait_for_keyspace`).
pub fn off_worker<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_like_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        for bad in [&b"+1"[..], b"01", b"-0", b" 1", b"1 ", b"", b"-", b"1a"] {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn doubles_like_strtod_and_integers_without_the_float_parser() {
        for text in [
            "0",
            "-0",
            "+0",
            "7",
            "007",
            "-42",
            "+42",
            "999999999999999",
            "1000000000000000",
            "-123456789012345",
            "12345678901234567890",
            "1.5",
            "-2.5e3",
            ".5",
            "1e308",
        ] {
            let parsed = parse_f64(text.as_bytes()).unwrap();
            let expected: f64 = text.parse().unwrap();
            assert_eq!(parsed.to_bits(), expected.to_bits(), "{text}");
        }
        assert_eq!(parse_f64(b"-INF"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"Infinity"), Some(f64::INFINITY));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"-NaN",
            b"infx",
            b"1e5inf",
            b"-",
            b"+",
        ] {
            assert_eq!(parse_f64(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h*llo", b"heeeello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"h\\*", b"h*", false));
        assert!(!glob_match(b"a*b", b"acd", false));
        assert!(glob_match(b"*", b"", false));
        assert!(!glob_match(b"**", b"", false));
        assert!(glob_match(b"[", b"x", false) == reference_glob(b"[", b"x", false));
        assert!(glob_match(b"H[A-z]LLO", b"hello", true));
    }

    /// Redis 7.0's stringmatchlen before its CVE-2022-36021 fix, ported as it is: exponential,
    /// but the plain statement of the semantics, for checking the linear matcher on small cases.
    fn reference_glob(p: &[u8], s: &[u8], nocase: bool) -> bool {
        fn rec(p: &[u8], s: &[u8], nocase: bool) -> bool {
            let (mut p, mut s) = (p, s);
            while !p.is_empty() && !s.is_empty() {
                if p[0] == b'*' {
                    while p.len() > 1 && p[1] == b'*' {
                        p = &p[1..];
                    }
                    if p.len() == 1 {
                        return true;
                    }
                    return (0..s.len()).any(|i| rec(&p[1..], &s[i..], nocase));
                }
                let mut pi = 0;
                if !glob_token(p, &mut pi, s[0], nocase) {
                    return false;
                }
                p = &p[pi..];
                s = &s[1..];
                if s.is_empty() {
                    while p.first() == Some(&b'*') {
                        p = &p[1..];
                    }
                }
            }
            p.is_empty() && s.is_empty()
        }
        if p == b"*" {
            return true;
        }
        rec(p, s, nocase)
    }

    #[test]
    fn linear_glob_agrees_with_the_backtracking_one() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let pattern_bytes = b"ab*?[]^-\\";
        for _ in 0..200_000 {
            let p: Vec<u8> = (0..rng.random_range(0..9))
                .map(|_| pattern_bytes[rng.random_range(0..pattern_bytes.len())])
                .collect();
            let s: Vec<u8> = (0..rng.random_range(0..7))
                .map(|_| b"abAB-]"[rng.random_range(0..6)])
                .collect();
            for nocase in [false, true] {
                assert_eq!(
                    glob_match(&p, &s, nocase),
                    reference_glob(&p, &s, nocase),
                    "pattern {:?} string {:?}",
                    String::from_utf8_lossy(&p),
                    String::from_utf8_lossy(&s)
                );
            }
        }
    }

    #[test]
    fn pathological_globs_are_linear() {
        let key = vec![b'a'; 60];
        let pattern = b"*a*a*a*a*a*a*a*a*a*a*a*a*b";
        assert!(!glob_match(pattern, &key, false));
        let long = vec![b'a'; 20_000];
        let stars: Vec<u8> = b"*a".repeat(1_000).into_iter().chain(*b"b").collect();
        assert!(!glob_match(&stars, &long, false));
    }
}
