//! Replies and their encoding in RESP2 or RESP3, chosen per connection (HELLO 2/3).
//!
//! Doubles follow Redis 7.0: `%.17g` text, a bulk string in RESP2 and a `,` double in RESP3.
//! Replies whose size a client picks (SRANDMEMBER with a negative count) are encoded as they
//! are built (`Reply::Encoded`, through `ArrayWriter`), never held as a tree of one `Reply`
//! per element.

use super::output::Output;
use crate::keyspace::Blob;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`-style status line.
    Status(&'static str),
    /// A status line built at run time.
    StatusOwned(String),
    /// An error line; the text includes its code (`ERR ...`, `WRONGTYPE ...`).
    Error(String),
    Int(i64),
    /// A bulk string; short ones (most values) are held inline, without an allocation.
    Bulk(Blob),
    /// The null bulk string (`$-1` in RESP2, `_` in RESP3).
    Null,
    /// The null array (`*-1` in RESP2, `_` in RESP3).
    NullArray,
    Array(Vec<Reply>),
    /// A map in RESP3, a flat array of pairs in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// A set in RESP3, an array in RESP2.
    Set(Vec<Reply>),
    Double(f64),
    /// A boolean: `#t`/`#f` in RESP3, 1 or 0 in RESP2 (a script's true and false after
    /// redis.setresp(3)).
    Bool(bool),
    /// A big number: `(digits` in RESP3, a bulk string in RESP2.
    BigNumber(String),
    /// A double already written out in the text Redis gives it (GEOPOS's fixed notation): a
    /// double in RESP3, a bulk string in RESP2.
    DoubleText(String),
    /// Text with a format tag in RESP3 (INFO), a bulk string in RESP2.
    Verbatim(String),
    /// Out-of-band data (Pub/Sub confirmations and messages): a push frame in RESP3, an
    /// array in RESP2.
    Push(Vec<Reply>),
    /// A reply already encoded for the client's protocol (see `ArrayWriter`).
    Encoded(Output),
    /// Push frames already encoded (Pub/Sub confirmations): sent even under CLIENT REPLY OFF.
    Pushes(Output),
}

impl Reply {
    pub const OK: Reply = Reply::Status("OK");

    pub fn error(text: impl Into<String>) -> Reply {
        Reply::Error(text.into())
    }

    pub fn bulk(bytes: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Blob::from_slice(bytes.as_ref()))
    }

    /// Appends the encoding of this reply to `out`.
    pub fn encode(self, out: &mut Output, resp3: bool) {
        match self {
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::StatusOwned(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(e) => line(out, b'-', e.as_bytes()),
            Reply::Int(i) => header(out, b':', i),
            Reply::Bulk(b) => bulk(out, &b),
            Reply::Null if resp3 => out.put_slice(b"_\r\n"),
            Reply::Null => out.put_slice(b"$-1\r\n"),
            Reply::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Reply::NullArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                header(out, b'*', items.len() as i64);
                items.into_iter().for_each(|r| r.encode(out, resp3));
            }
            Reply::Push(items) => {
                header(out, if resp3 { b'>' } else { b'*' }, items.len() as i64);
                items.into_iter().for_each(|r| r.encode(out, resp3));
            }
            Reply::Set(items) => {
                header(out, if resp3 { b'~' } else { b'*' }, items.len() as i64);
                items.into_iter().for_each(|r| r.encode(out, resp3));
            }
            Reply::Map(pairs) => {
                if resp3 {
                    header(out, b'%', pairs.len() as i64);
                } else {
                    header(out, b'*', 2 * pairs.len() as i64);
                }
                for (k, v) in pairs {
                    k.encode(out, resp3);
                    v.encode(out, resp3);
                }
            }
            Reply::Double(d) => {
                let text = format_double(d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::Bool(b) => {
                if resp3 {
                    out.put_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
                } else {
                    out.put_slice(if b { b":1\r\n" } else { b":0\r\n" });
                }
            }
            Reply::BigNumber(n) => {
                if resp3 {
                    line(out, b'(', n.as_bytes());
                } else {
                    bulk(out, n.as_bytes());
                }
            }
            Reply::DoubleText(text) => {
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::Verbatim(text) => {
                if resp3 {
                    header(out, b'=', text.len() as i64 + 4);
                    out.put_slice(b"txt:");
                    out.put_slice(text.as_bytes());
                    out.put_slice(b"\r\n");
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::Encoded(encoded) | Reply::Pushes(encoded) => out.append(encoded),
        }
    }

    /// Decodes every frame in `bytes` (Pub/Sub messages as they wait for a client).
    pub fn decode_all(bytes: &[u8]) -> Vec<Reply> {
        let mut at = 0;
        let mut frames = Vec::new();
        while at < bytes.len() {
            match decode(bytes, &mut at) {
                Some(frame) => frames.push(frame),
                None => break,
            }
        }
        frames
    }

    /// This reply as a tree: an `Encoded` reply is decoded (for in-process callers, which
    /// look at replies rather than send them); several push frames (a SUBSCRIBE's
    /// confirmations) become an array of them.
    pub fn into_tree(self) -> Reply {
        match self {
            Reply::Pushes(encoded) => {
                let mut frames = Reply::decode_all(&encoded.to_vec());
                match frames.len() {
                    1 => frames.remove(0),
                    _ => Reply::Array(frames),
                }
            }
            Reply::Encoded(encoded) => {
                let bytes = encoded.to_vec();
                let mut at = 0;
                decode(&bytes, &mut at)
                    .unwrap_or_else(|| Reply::error("ERR reply could not be decoded"))
            }
            Reply::Array(items) => Reply::Array(items.into_iter().map(Reply::into_tree).collect()),
            other => other,
        }
    }
}

/// Encodes an array reply element by element as it is built, for replies whose length a
/// client picks: memory is the encoded bytes, a few per element, in output blocks.
#[derive(Debug)]
pub struct ArrayWriter {
    out: Output,
    resp3: bool,
}

impl ArrayWriter {
    /// Starts an array of `len` elements for a client speaking RESP3 (`resp3`) or RESP2.
    pub fn new(len: usize, resp3: bool) -> Self {
        let mut out = Output::new();
        header(&mut out, b'*', len as i64);
        ArrayWriter { out, resp3 }
    }

    /// Elements with no header yet, for an array whose length is known once they are all
    /// written (`into_array`).
    pub fn headless(resp3: bool) -> Self {
        ArrayWriter {
            out: Output::new(),
            resp3,
        }
    }

    pub fn bulk(&mut self, data: &[u8]) {
        bulk(&mut self.out, data);
    }

    /// Adds any reply as the next element.
    pub fn reply(&mut self, reply: Reply) {
        reply.encode(&mut self.out, self.resp3);
    }

    /// Adds a nested array header (its `len` elements follow).
    pub fn array_header(&mut self, len: usize) {
        header(&mut self.out, b'*', len as i64);
    }

    pub fn finish(self) -> Reply {
        Reply::Encoded(self.out)
    }

    /// A `headless` writer's elements as an array of `len` of them.
    pub fn into_array(self, len: usize) -> Reply {
        let mut out = Output::new();
        header(&mut out, b'*', len as i64);
        out.append(self.out);
        Reply::Encoded(out)
    }
}

/// Decodes one RESP2/RESP3 reply at `bytes[*at..]`, moving `at` past it. None if malformed.
fn decode(bytes: &[u8], at: &mut usize) -> Option<Reply> {
    let rest = bytes.get(*at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    let kind = *rest.first()?;
    let text = std::str::from_utf8(&rest[1..end]).ok()?;
    *at += end + 2;
    let count = |text: &str| text.parse::<i64>().ok();
    let items = |n: i64, at: &mut usize| -> Option<Vec<Reply>> {
        (0..n).map(|_| decode(bytes, at)).collect()
    };
    Some(match kind {
        b'+' => Reply::StatusOwned(text.to_string()),
        b'-' => Reply::Error(text.to_string()),
        b':' => Reply::Int(count(text)?),
        b'_' => Reply::Null,
        b',' => Reply::Double(crate::util::parse_f64(text.as_bytes())?),
        b'$' => match count(text)? {
            -1 => Reply::Null,
            n => {
                let data = bytes.get(*at..*at + usize::try_from(n).ok()?)?;
                *at += data.len() + 2;
                Reply::bulk(data)
            }
        },
        b'*' => match count(text)? {
            -1 => Reply::NullArray,
            n => Reply::Array(items(n, at)?),
        },
        b'~' => Reply::Set(items(count(text)?, at)?),
        b'>' => Reply::Push(items(count(text)?, at)?),
        b'%' => {
            let flat = items(2 * count(text)?, at)?;
            let mut flat = flat.into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                pairs.push((k, v));
            }
            Reply::Map(pairs)
        }
        _ => return None,
    })
}

/// A status or error line. Its text may echo client bytes: CR and LF become spaces, as Redis
/// does, so a client's `\r\n` can never end the line early and inject a reply.
fn line(out: &mut Output, kind: u8, text: &[u8]) {
    out.put_u8(kind);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        let clean: Vec<u8> = text
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        out.put_slice(&clean);
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

/// The longest header: a kind byte, 20 digits and a sign, CR LF.
const HEADER_MAX: usize = 24;

/// Bulks up to this length go out with their header in one piece.
const SHORT_BULK: usize = 64;

/// Writes `kind`, the number and CR LF into `buf`; returns the length used.
fn header_into(buf: &mut [u8], kind: u8, n: i64) -> usize {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n).as_bytes();
    buf[0] = kind;
    buf[1..1 + digits.len()].copy_from_slice(digits);
    buf[1 + digits.len()..3 + digits.len()].copy_from_slice(b"\r\n");
    3 + digits.len()
}

fn header(out: &mut Output, kind: u8, n: i64) {
    let mut buf = [0u8; HEADER_MAX];
    let len = header_into(&mut buf, kind, n);
    out.put_slice(&buf[..len]);
}

/// A bulk string: a short one (most members and values) in one piece with its header.
fn bulk(out: &mut Output, data: &[u8]) {
    if data.len() <= SHORT_BULK {
        let mut buf = [0u8; HEADER_MAX + SHORT_BULK + 2];
        let head = header_into(&mut buf, b'$', data.len() as i64);
        buf[head..head + data.len()].copy_from_slice(data);
        buf[head + data.len()..head + data.len() + 2].copy_from_slice(b"\r\n");
        out.put_slice(&buf[..head + data.len() + 2]);
        return;
    }
    header(out, b'$', data.len() as i64);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Formats a double as C's `%.17g`, which Redis 7.0 uses for scores: `inf`, `-inf`, `nan`
/// spelled out, shortest of fixed or exponent notation, trailing zeros removed.
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    const PRECISION: i32 = 17;
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..PRECISION).contains(&exp) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (PRECISION - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{d:.decimals$}")).to_string()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_as_redis_7_0_prints_them() {
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(1.0e-5), "1.0000000000000001e-05");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(123456789.0), "123456789");
    }

    #[test]
    fn bulks_of_every_length_cross_block_boundaries_intact() {
        // Enough short and long bulks that many straddle a block boundary.
        let mut out = Output::new();
        let mut expected = Vec::new();
        for i in 0..3000usize {
            let data: Vec<u8> = (0..i % 100).map(|j| (i + j) as u8).collect();
            Reply::bulk(&data).encode(&mut out, false);
            expected.extend_from_slice(format!("${}\r\n", data.len()).as_bytes());
            expected.extend_from_slice(&data);
            expected.extend_from_slice(b"\r\n");
        }
        Reply::Int(i64::MIN).encode(&mut out, false);
        expected.extend_from_slice(b":-9223372036854775808\r\n");
        assert!(out.len() > 3 * super::super::output::BLOCK_SIZE);
        assert_eq!(out.len(), expected.len());
        assert_eq!(out.to_vec(), expected);
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        let reply = Reply::Map(vec![(Reply::bulk("a"), Reply::Double(1.0))]);
        let mut out = Output::new();
        reply.clone().encode(&mut out, false);
        assert_eq!(out.to_vec(), b"*2\r\n$1\r\na\r\n$1\r\n1\r\n");
        out.clear();
        reply.encode(&mut out, true);
        assert_eq!(out.to_vec(), b"%1\r\n$1\r\na\r\n,1\r\n");
    }

    #[test]
    fn errors_and_statuses_never_break_the_line() {
        let mut out = Output::new();
        Reply::error("ERR Unsupported option \r\n+PONG").encode(&mut out, false);
        Reply::StatusOwned("a\nb".into()).encode(&mut out, false);
        assert_eq!(out.to_vec(), b"-ERR Unsupported option   +PONG\r\n+a b\r\n");
    }

    #[test]
    fn encoded_arrays_decode_to_the_same_tree() {
        for resp3 in [false, true] {
            let mut writer = ArrayWriter::new(3, resp3);
            writer.bulk(b"x");
            writer.reply(Reply::Int(7));
            writer.array_header(2);
            writer.bulk(b"");
            writer.reply(Reply::Null);
            let tree = Reply::Array(vec![
                Reply::bulk("x"),
                Reply::Int(7),
                Reply::Array(vec![Reply::bulk(""), Reply::Null]),
            ]);
            assert_eq!(writer.finish().into_tree(), tree);
        }
    }
}
