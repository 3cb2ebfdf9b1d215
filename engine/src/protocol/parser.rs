//! Incremental request parser: RESP multibulk arrays and inline commands (telnet, redis-cli's
//! inline mode), fed from a connection's read buffer.
//!
//! It keeps its place between reads, so a large argument arriving in many small reads is scanned
//! once, and it never uses memory for what a client merely claims: counts and lengths are
//! checked against Redis's limits before anything is reserved. A big argument still arriving
//! moves, once its first megabyte is in, to a buffer of its own sized from its header (as
//! Redis sizes its query buffer for a PROTO_MBULK_BIG_ARG), where the rest is read straight;
//! a command may keep that buffer as its value, so the bytes are held once. Errors carry Redis's exact texts;
//! after one the connection is closed, as Redis does.

use bytes::buf::Limit;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Largest bulk argument accepted by default (Redis's proto-max-bulk-len, 512 MB); the
/// setting of that name changes it per connection (`set_max_bulk_len`).
pub const PROTO_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Largest multibulk argument count accepted.
pub const MAX_MULTIBULK_LEN: usize = 1024 * 1024;
/// Longest inline request or unterminated header line (Redis's PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX_SIZE: usize = 64 * 1024;
/// Before authentication Redis accepts at most this many arguments ...
const UNAUTHENTICATED_MAX_ARGS: usize = 10;
/// ... and arguments of at most this many bytes.
const UNAUTHENTICATED_MAX_BULK: usize = 16 * 1024;
/// An argument longer than this gets a buffer of its own once this much of it has arrived: a
/// claim is backed by data before its room is reserved.
pub const BIG_ARG: usize = 1024 * 1024;
/// A pre-reservation in the connection's buffer for an argument in progress is capped at
/// this size; the buffer grows as data comes.
const MAX_PRE_RESERVE: usize = BIG_ARG;

/// A malformed request. The text after `ERR ` is exactly what Redis replies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedDollar(char),
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooBig,
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooBig,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// Room for a big argument could not be reserved (Redis would abort; the client is
    /// closed instead).
    #[error("Protocol error: no memory for a bulk of {0} bytes")]
    BulkOutOfMemory(usize),
}

/// A complete request found by `RequestParser::parse`.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A multibulk request, its arguments still in the buffer (`RequestParser::args`).
    Multibulk,
    /// An inline request, unquoted into words.
    Inline(Vec<Vec<u8>>),
}

/// Where an argument of the request in progress is.
#[derive(Debug, Clone, Copy)]
enum ArgAt {
    /// A range of the connection's buffer.
    Buffer(usize, usize),
    /// The n-th of the request's big arguments (`RequestParser::take_big_args`).
    Big(usize),
}

/// Parser state kept between reads of one connection.
///
/// It works on the connection's buffer without taking bytes out of it: arguments are ranges
/// of the buffer, which the connection hands to commands as slices (no copy, no allocation per
/// argument). Once a batch is done the connection drops the bytes of complete requests
/// (`take_consumed`); a request still arriving keeps its place and its ranges. A big argument
/// still arriving is the exception: the connection reads it into its own buffer
/// (`big_arg_room`), sized once from its header.
#[derive(Debug)]
pub struct RequestParser {
    /// Where the next request starts (everything before it is complete requests).
    consumed: usize,
    /// Where scanning resumes.
    pos: usize,
    /// Arguments still expected by the multibulk request in progress (0: none in progress).
    remaining: usize,
    /// Length of the bulk argument whose header has been read, awaiting its payload.
    bulk_len: Option<usize>,
    /// The arguments of the request in progress or just completed.
    ranges: Vec<ArgAt>,
    /// The big arguments of the request in progress or just completed; while `filling`, the
    /// last one is the bulk being read.
    big_args: Vec<Vec<u8>>,
    filling: bool,
    /// Longest bulk argument accepted (proto-max-bulk-len).
    max_bulk_len: usize,
}

impl Default for RequestParser {
    fn default() -> Self {
        RequestParser {
            consumed: 0,
            pos: 0,
            remaining: 0,
            bulk_len: None,
            ranges: Vec::new(),
            big_args: Vec::new(),
            filling: false,
            max_bulk_len: PROTO_MAX_BULK_LEN,
        }
    }
}

impl RequestParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the longest bulk argument accepted from now on (proto-max-bulk-len).
    pub fn set_max_bulk_len(&mut self, max: u64) {
        self.max_bulk_len = usize::try_from(max).unwrap_or(usize::MAX);
    }

    /// Finds the next complete request in `buf` (the connection's whole buffer, which only
    /// grows between calls until `take_consumed`). `Ok(None)` means more bytes are needed.
    /// Empty requests (blank inline lines, `*0`) are skipped.
    pub fn parse(
        &mut self,
        buf: &[u8],
        authenticated: bool,
    ) -> Result<Option<Request>, ProtocolError> {
        loop {
            if self.remaining == 0 {
                self.ranges.clear();
                self.big_args.clear();
                let Some(&first) = buf.get(self.pos) else {
                    return Ok(None);
                };
                if first != b'*' {
                    match parse_inline(&buf[self.pos..])? {
                        None => return Ok(None),
                        Some((words, used)) => {
                            self.pos += used;
                            self.consumed = self.pos;
                            if words.is_empty() {
                                continue;
                            }
                            return Ok(Some(Request::Inline(words)));
                        }
                    }
                }
                let rest = &buf[self.pos..];
                let Some(end) = find_crlf(rest, ProtocolError::MultibulkCountTooBig)? else {
                    return Ok(None);
                };
                let count =
                    parse_len(&rest[1..end]).ok_or(ProtocolError::InvalidMultibulkLength)?;
                self.pos += end + 2;
                if count > MAX_MULTIBULK_LEN as i64 {
                    return Err(ProtocolError::InvalidMultibulkLength);
                }
                if count <= 0 {
                    self.consumed = self.pos;
                    continue;
                }
                let count = count as usize;
                if !authenticated && count > UNAUTHENTICATED_MAX_ARGS {
                    return Err(ProtocolError::UnauthenticatedMultibulkLength);
                }
                self.remaining = count;
                self.ranges.reserve(count.min(1024));
            }
            while self.remaining > 0 {
                let len = match self.bulk_len {
                    Some(len) => len,
                    None => {
                        let rest = &buf[self.pos..];
                        let Some(&first) = rest.first() else {
                            return Ok(None);
                        };
                        if first != b'$' {
                            return Err(ProtocolError::ExpectedDollar(first as char));
                        }
                        let Some(end) = find_crlf(rest, ProtocolError::BulkCountTooBig)? else {
                            return Ok(None);
                        };
                        let len = parse_len(&rest[1..end])
                            .filter(|&l| l >= 0 && l as usize <= self.max_bulk_len)
                            .ok_or(ProtocolError::InvalidBulkLength)?
                            as usize;
                        self.pos += end + 2;
                        if !authenticated && len > UNAUTHENTICATED_MAX_BULK {
                            return Err(ProtocolError::UnauthenticatedBulkLength);
                        }
                        self.bulk_len = Some(len);
                        len
                    }
                };
                let available = buf.len() - self.pos;
                if self.filling {
                    // The payload went to its own buffer; the CRLF after it comes here.
                    if self.big_args.last().is_some_and(|big| big.len() < len) || available < 2 {
                        return Ok(None);
                    }
                    self.filling = false;
                    self.ranges.push(ArgAt::Big(self.big_args.len() - 1));
                    self.pos += 2;
                } else if available < len + 2 {
                    if len > BIG_ARG && (BIG_ARG..len).contains(&available) {
                        self.start_big_arg(&buf[self.pos..], len)?;
                        self.pos = buf.len();
                    }
                    return Ok(None);
                } else {
                    self.ranges.push(ArgAt::Buffer(self.pos, self.pos + len));
                    self.pos += len + 2;
                }
                self.bulk_len = None;
                self.remaining -= 1;
            }
            self.consumed = self.pos;
            return Ok(Some(Request::Multibulk));
        }
    }

    /// Gives a big argument its own buffer, sized once from its header (reserved, not
    /// touched: memory is used as the bytes arrive), with what of it has arrived.
    fn start_big_arg(&mut self, arrived: &[u8], len: usize) -> Result<(), ProtocolError> {
        let mut big = Vec::new();
        big.try_reserve_exact(len)
            .map_err(|_| ProtocolError::BulkOutOfMemory(len))?;
        big.extend_from_slice(arrived);
        self.big_args.push(big);
        self.filling = true;
        Ok(())
    }

    /// Where the connection reads next while a big argument is arriving: the rest of that
    /// argument's own buffer, and no more. None when reads go to the connection's buffer.
    pub fn big_arg_room(&mut self) -> Option<Limit<&mut Vec<u8>>> {
        let len = self.bulk_len?;
        let big = self.big_args.last_mut().filter(|_| self.filling)?;
        let missing = len - big.len();
        (missing > 0).then(|| big.limit(missing))
    }

    /// Bytes that arrived in big arguments' buffers (they count toward the query buffer
    /// limit, as the query buffer's length does in Redis).
    pub fn big_arg_bytes(&self) -> usize {
        self.big_args.iter().map(Vec::len).sum()
    }

    /// Takes the big arguments of the multibulk request `parse` just returned, for `args`.
    /// Empty (no allocation) for most requests.
    pub fn take_big_args(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.big_args)
    }

    /// The arguments of the multibulk request `parse` just returned, as slices of `buf` and of
    /// the request's big arguments (`take_big_args`).
    pub fn args<'b>(&self, buf: &'b [u8], big_args: &'b [Vec<u8>], out: &mut Vec<&'b [u8]>) {
        out.extend(self.ranges.iter().map(|&arg| match arg {
            ArgAt::Buffer(start, end) => &buf[start..end],
            ArgAt::Big(n) => big_args[n].as_slice(),
        }));
    }

    /// The second argument (the key, for most commands) of each of the next `max` complete
    /// multibulk requests in `buf`, without parsing them: a hint for warming the cache, which
    /// stops at anything it does not expect. Empty while a request is half read.
    pub fn peek_keys<'b>(&self, buf: &'b [u8], max: usize, out: &mut Vec<&'b [u8]>) {
        if self.remaining > 0 {
            return;
        }
        let mut at = self.pos;
        for _ in 0..max {
            let Some(count) = peek_header(buf, &mut at, b'*') else {
                return;
            };
            for i in 0..count {
                let Some(len) = peek_header(buf, &mut at, b'$') else {
                    return;
                };
                let Some(arg) = buf.get(at..at + len) else {
                    return;
                };
                if i == 1 {
                    out.push(arg);
                }
                at += len + 2;
            }
        }
    }

    /// How many bytes at the buffer's front the complete requests took: the caller drops them
    /// from the buffer, and the parser's places move with it.
    pub fn take_consumed(&mut self) -> usize {
        let done = std::mem::take(&mut self.consumed);
        self.pos -= done;
        if self.remaining == 0 {
            // The arguments are those of a request already run.
            self.ranges.clear();
            self.big_args.clear();
        } else {
            for arg in &mut self.ranges {
                if let ArgAt::Buffer(start, end) = arg {
                    *start -= done;
                    *end -= done;
                }
            }
        }
        done
    }

    /// Bytes the request in progress still needs in the connection's buffer, capped at
    /// MAX_PRE_RESERVE: a connection reserves them up front (an argument is not read in small
    /// steps), but never what a client merely claims.
    pub fn wanted(&self, buffered: usize) -> usize {
        match self.bulk_len {
            Some(_) if self.filling => 2,
            Some(len) => (self.pos + len + 2)
                .saturating_sub(buffered)
                .min(MAX_PRE_RESERVE),
            None => 0,
        }
    }

    /// Takes the next complete request out of `buf` as owned arguments (for callers that keep
    /// requests, such as the fuzz targets and tests).
    pub fn next_request(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let request = loop {
            let request = self.parse(buf, authenticated)?;
            // Bytes of a big argument that arrived in `buf` move to its own buffer, as a
            // connection would have read them there.
            let pos = self.pos;
            let Some(mut room) = self.big_arg_room().filter(|_| buf.len() > pos) else {
                break request;
            };
            let tail = buf.split_off(pos);
            let n = room.remaining_mut().min(tail.len());
            room.put_slice(&tail[..n]);
            buf.extend_from_slice(&tail[n..]);
        };
        let args = match request {
            None => None,
            Some(Request::Inline(words)) => Some(words.into_iter().map(Bytes::from).collect()),
            Some(Request::Multibulk) => {
                let big_args = self.take_big_args();
                let mut args = Vec::new();
                self.args(buf, &big_args, &mut args);
                Some(args.into_iter().map(Bytes::copy_from_slice).collect())
            }
        };
        buf.advance(self.take_consumed());
        Ok(args)
    }
}

/// Position of the first `\r\n` in a header line; `too_big` if an unterminated line is
/// already longer than Redis allows.
fn find_crlf(buf: &[u8], too_big: ProtocolError) -> Result<Option<usize>, ProtocolError> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\r', &buf[from..]) {
        let at = from + i;
        match buf.get(at + 1) {
            Some(b'\n') => return Ok(Some(at)),
            Some(_) => from = at + 1,
            None => break,
        }
    }
    if buf.len() > INLINE_MAX_SIZE {
        Err(too_big)
    } else {
        Ok(None)
    }
}

/// Reads a `<kind><number>\r\n` header at `*at` for `peek_keys`, moving past it.
fn peek_header(buf: &[u8], at: &mut usize, kind: u8) -> Option<usize> {
    let rest = buf.get(*at..)?;
    if rest.first() != Some(&kind) {
        return None;
    }
    let end = memchr::memchr(b'\r', rest)?;
    let n = parse_len(&rest[1..end]).filter(|&n| n >= 0)?;
    *at += end + 2;
    usize::try_from(n).ok().filter(|&n| n <= PROTO_MAX_BULK_LEN)
}

/// Parses a decimal length as Redis's string2ll does (no spaces, no plus sign).
fn parse_len(digits: &[u8]) -> Option<i64> {
    crate::util::parse_i64(digits)
}

/// An inline request's words and the bytes its line took.
type InlineLine = (Vec<Vec<u8>>, usize);

/// Parses one inline request at the start of `buf`: space-separated words with Redis's
/// quoting rules.
fn parse_inline(buf: &[u8]) -> Result<Option<InlineLine>, ProtocolError> {
    let Some(newline) = memchr::memchr(b'\n', buf) else {
        if buf.len() > INLINE_MAX_SIZE {
            return Err(ProtocolError::InlineTooBig);
        }
        return Ok(None);
    };
    let mut line = &buf[..newline];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    split_args(line)
        .map(|words| Some((words, newline + 1)))
        .ok_or(ProtocolError::UnbalancedQuotes)
}

/// Splits a line into arguments like Redis's sdssplitargs: double quotes with escapes
/// (\n \r \t \b \a \\ \" \xHH), single quotes with only \' escaped. `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = line.get(i).copied();
            if in_double {
                match c {
                    None => return None,
                    Some(b'\\')
                        if line.get(i + 1) == Some(&b'x')
                            && line.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
                            && line.get(i + 3).is_some_and(u8::is_ascii_hexdigit) =>
                    {
                        current.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                        i += 3;
                    }
                    Some(b'\\') if i + 1 < line.len() => {
                        i += 1;
                        current.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                            return None;
                        }
                        in_double = false;
                    }
                    Some(other) => current.push(other),
                }
            } else if in_single {
                match c {
                    None => return None,
                    Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        current.push(b'\'');
                    }
                    Some(b'\'') => {
                        if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                            return None;
                        }
                        in_single = false;
                    }
                    Some(other) => current.push(other),
                }
            } else {
                match c {
                    None => {
                        args.push(current);
                        return Some(args);
                    }
                    Some(b) if b.is_ascii_whitespace() => {
                        args.push(current);
                        break;
                    }
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(other) => current.push(other),
                }
            }
            i += 1;
        }
    }
}

fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(req) = parser.next_request(&mut buf, true)? {
            out.push(req);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline_and_pipeline() {
        let reqs = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\r\n\r\n*0\r\n")
            .unwrap();
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(reqs[1], vec![Bytes::from("PING")]);
        assert_eq!(reqs[2][2], Bytes::from("b c"));
    }

    #[test]
    fn trickled_byte_by_byte() {
        let input = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$10\r\n0123456789\r\n";
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            if let Some(req) = parser.next_request(&mut buf, true).unwrap() {
                got = Some(req);
            }
        }
        assert_eq!(got.unwrap()[2], Bytes::from("0123456789"));
    }

    #[test]
    fn limits_and_errors() {
        assert_eq!(
            parse_all(b"*1048577\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n$536870913\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n+x\r\n"),
            Err(ProtocolError::ExpectedDollar('+'))
        );
        assert_eq!(
            parse_all(b"*x\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_all(b"set \"a\r\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(parse_all(&[b'a'; 70000]), Err(ProtocolError::InlineTooBig));
    }

    #[test]
    fn a_huge_claim_reserves_nothing_until_its_data_comes() {
        let mut parser = RequestParser::new();
        let buf = b"*1\r\n$536870912\r\nabc";
        assert_eq!(parser.parse(buf, true), Ok(None));
        assert!(parser.big_arg_room().is_none());
        assert_eq!(parser.wanted(buf.len()), MAX_PRE_RESERVE);
        // Room the process cannot reserve fails the request, not the process.
        let mut parser = RequestParser::new();
        parser.set_max_bulk_len(u64::MAX);
        let mut buf = format!("*1\r\n${}\r\n", i64::MAX).into_bytes();
        buf.resize(buf.len() + BIG_ARG, b'x');
        assert_eq!(
            parser.parse(&buf, true),
            Err(ProtocolError::BulkOutOfMemory(i64::MAX as usize))
        );
    }

    #[test]
    fn a_big_argument_still_arriving_is_read_into_its_own_exact_buffer() {
        let len = BIG_ARG * 3;
        let mut parser = RequestParser::new();
        let head = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${len}\r\n");
        let mut buf = BytesMut::from(head.as_bytes());
        buf.extend_from_slice(&[b'a'; BIG_ARG - 1]);
        assert_eq!(parser.parse(&buf, true), Ok(None));
        assert!(
            parser.big_arg_room().is_none(),
            "not before a megabyte arrived"
        );
        buf.extend_from_slice(b"a");
        assert_eq!(parser.parse(&buf, true), Ok(None));
        let mut reads = 0;
        while let Some(mut room) = parser.big_arg_room() {
            let n = room.remaining_mut().min(BIG_ARG / 2);
            room.put_bytes(b'b', n);
            reads += 1;
            assert_eq!(parser.parse(&buf, true), Ok(None));
        }
        assert_eq!(reads, 4);
        assert_eq!(parser.big_arg_bytes(), len);
        buf.extend_from_slice(b"\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(parser.parse(&buf, true), Ok(Some(Request::Multibulk)));
        let big_args = parser.take_big_args();
        let mut args = Vec::new();
        parser.args(&buf, &big_args, &mut args);
        assert_eq!(args.len(), 3);
        assert_eq!(args[1], b"k");
        assert_eq!(args[2].len(), len);
        assert!(args[2][..BIG_ARG].iter().all(|&b| b == b'a'));
        assert!(args[2][BIG_ARG..].iter().all(|&b| b == b'b'));
        assert_eq!(big_args[0].capacity(), len, "reserved once, exactly");
        buf.advance(parser.take_consumed());
        assert_eq!(
            parser.next_request(&mut buf, true),
            Ok(Some(vec![Bytes::from("PING")]))
        );
    }

    #[test]
    fn a_big_argument_trickled_through_the_buffer_arrives_whole() {
        let value = vec![b'v'; 2 * BIG_ARG + 7];
        let mut input = format!("*2\r\n$4\r\nECHO\r\n${}\r\n", value.len()).into_bytes();
        input.extend_from_slice(&value);
        input.extend_from_slice(b"\r\n");
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in input.chunks(10_000) {
            buf.extend_from_slice(chunk);
            while let Some(req) = parser.next_request(&mut buf, true).unwrap() {
                got.push(req);
            }
        }
        assert_eq!(got, vec![vec![Bytes::from("ECHO"), Bytes::from(value)]]);
        assert!(buf.is_empty());
    }

    #[test]
    fn arguments_are_slices_of_the_buffer_until_consumed() {
        let mut parser = RequestParser::new();
        let mut buf =
            BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$4\r\nECHO\r\n$5\r\nhe"[..]);
        assert_eq!(parser.parse(&buf, true), Ok(Some(Request::Multibulk)));
        let mut args = Vec::new();
        parser.args(&buf, &[], &mut args);
        assert_eq!(args, [&b"GET"[..], b"k"]);
        assert_eq!(parser.parse(&buf, true), Ok(None));
        buf.advance(parser.take_consumed());
        assert_eq!(parser.wanted(buf.len()), 5);
        buf.extend_from_slice(b"llo\r\n");
        assert_eq!(parser.parse(&buf, true), Ok(Some(Request::Multibulk)));
        let mut args = Vec::new();
        parser.args(&buf, &[], &mut args);
        assert_eq!(args, [&b"ECHO"[..], b"hello"]);
        assert_eq!(parser.take_consumed(), buf.len());
    }

    #[test]
    fn peeks_the_keys_of_a_pipelined_batch() {
        let parser = RequestParser::new();
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$2\r\nbb\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$5\r\nhal";
        let mut keys = Vec::new();
        parser.peek_keys(buf, 10, &mut keys);
        assert_eq!(keys, [&b"a"[..], b"bb"]);
        keys.clear();
        parser.peek_keys(buf, 1, &mut keys);
        assert_eq!(keys, [&b"a"[..]]);
        keys.clear();
        parser.peek_keys(b"*2\r\n$-5\r\n$999999999999\r\nx", 10, &mut keys);
        assert!(keys.is_empty());
    }

    #[test]
    fn quoting_rules() {
        let args = split_args(br#"a "x\x41\n" 'it\'s' "" b"#).unwrap();
        assert_eq!(
            args,
            vec![
                b"a".to_vec(),
                b"xA\n".to_vec(),
                b"it's".to_vec(),
                vec![],
                b"b".to_vec()
            ]
        );
        assert!(split_args(br#""a"b"#).is_none());
    }
}
