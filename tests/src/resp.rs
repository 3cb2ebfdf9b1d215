//! A minimal raw RESP2/RESP3 client for tests: sends commands as arrays (or raw bytes) and
//! reads replies into a tree that can be compared, sorted and printed.

use std::fmt;
use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    NullBulk,
    NullArray,
    Null,
    Array(Vec<Resp>),
    Map(Vec<(Resp, Resp)>),
    Set(Vec<Resp>),
    /// A RESP3 push frame (`>`).
    Push(Vec<Resp>),
    Double(String),
    Bool(bool),
    Verbatim(String, Vec<u8>),
}

impl Resp {
    /// Sorts array, set and map elements recursively (for replies whose order is unspecified).
    pub fn sorted(mut self) -> Resp {
        match &mut self {
            Resp::Array(items) | Resp::Set(items) | Resp::Push(items) => {
                *items = std::mem::take(items)
                    .into_iter()
                    .map(Resp::sorted)
                    .collect();
                items.sort();
            }
            Resp::Map(pairs) => {
                *pairs = std::mem::take(pairs)
                    .into_iter()
                    .map(|(k, v)| (k.sorted(), v.sorted()))
                    .collect();
                pairs.sort();
            }
            _ => {}
        }
        self
    }

    /// Sorts the pairs of a flat [k, v, k, v] array (HGETALL in RESP2) by key.
    pub fn sorted_pairs(self) -> Resp {
        match self {
            // A SCAN-family reply: [cursor, [field, value, ...]].
            Resp::Array(items) if items.len() == 2 && matches!(items[1], Resp::Array(_)) => {
                let mut items = items.into_iter();
                let cursor = items.next().unwrap_or(Resp::Null);
                let inner = items.next().unwrap_or(Resp::Null).sorted_pairs();
                Resp::Array(vec![cursor, inner])
            }
            Resp::Array(items) if items.len() % 2 == 0 => {
                let mut pairs: Vec<(Resp, Resp)> = items
                    .chunks(2)
                    .map(|c| (c[0].clone(), c[1].clone()))
                    .collect();
                pairs.sort();
                Resp::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())
            }
            other => other.sorted(),
        }
    }

    /// The kind of reply, for comparing replies whose content is random.
    pub fn kind(&self) -> &'static str {
        match self {
            Resp::Simple(_) => "simple",
            Resp::Error(_) => "error",
            Resp::Int(_) => "integer",
            Resp::Bulk(_) => "bulk",
            Resp::NullBulk => "null-bulk",
            Resp::NullArray => "null-array",
            Resp::Null => "null",
            Resp::Array(_) => "array",
            Resp::Map(_) => "map",
            Resp::Set(_) => "set",
            Resp::Push(_) => "push",
            Resp::Double(_) => "double",
            Resp::Bool(_) => "bool",
            Resp::Verbatim(..) => "verbatim",
        }
    }
}

impl fmt::Display for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resp::Simple(s) => write!(f, "+{s}"),
            Resp::Error(e) => write!(f, "-{e}"),
            Resp::Int(i) => write!(f, ":{i}"),
            Resp::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Resp::NullBulk => write!(f, "(nil)"),
            Resp::NullArray => write!(f, "(nil array)"),
            Resp::Null => write!(f, "(null)"),
            Resp::Double(d) => write!(f, ",{d}"),
            Resp::Bool(b) => write!(f, "#{b}"),
            Resp::Verbatim(t, b) => write!(f, "={t}:{:?}", String::from_utf8_lossy(b)),
            Resp::Array(items) | Resp::Set(items) | Resp::Push(items) => {
                write!(f, "[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "]")
            }
            Resp::Map(pairs) => {
                write!(f, "{{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

/// A connection that speaks raw RESP.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

impl RawClient {
    pub async fn connect(addr: std::net::SocketAddr) -> io::Result<RawClient> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            buf: Vec::new(),
            pos: 0,
        })
    }

    /// Encodes a command as a RESP array.
    pub fn encode(args: &[impl AsRef<[u8]>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    pub async fn command(&mut self, args: &[impl AsRef<[u8]>]) -> io::Result<Resp> {
        self.send_raw(&Self::encode(args)).await?;
        self.read_reply().await
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut chunk = vec![0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf[self.pos..].windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.pos..self.pos + i]).into_owned();
                self.pos += i + 2;
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    async fn exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() - self.pos < n + 2 {
            self.fill().await?;
        }
        let data = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n + 2;
        Ok(data)
    }

    /// Reads one reply.
    pub fn read_reply(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<Resp>> + Send + '_>> {
        Box::pin(async move {
            let line = self.line().await?;
            let (kind, rest) = line.split_at(1.min(line.len()));
            let bad = || {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad reply line {line:?}"),
                )
            };
            let len = || rest.parse::<i64>().map_err(|_| bad());
            Ok(match kind {
                "+" => Resp::Simple(rest.into()),
                "-" => Resp::Error(rest.into()),
                ":" => Resp::Int(len()?),
                "," => Resp::Double(rest.into()),
                "#" => Resp::Bool(rest == "t"),
                "_" => Resp::Null,
                "$" => match len()? {
                    -1 => Resp::NullBulk,
                    n => Resp::Bulk(self.exact(n as usize).await?),
                },
                "=" => {
                    let data = self.exact(len()? as usize).await?;
                    let (fmt, text) = data.split_at(4.min(data.len()));
                    Resp::Verbatim(
                        String::from_utf8_lossy(&fmt[..3.min(fmt.len())]).into(),
                        text.to_vec(),
                    )
                }
                "*" | "~" | ">" => match len()? {
                    -1 => Resp::NullArray,
                    n => {
                        let mut items = Vec::with_capacity(n as usize);
                        for _ in 0..n {
                            items.push(self.read_reply().await?);
                        }
                        match kind {
                            "*" => Resp::Array(items),
                            "~" => Resp::Set(items),
                            _ => Resp::Push(items),
                        }
                    }
                },
                "%" => {
                    let n = len()?;
                    let mut pairs = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        let k = self.read_reply().await?;
                        let v = self.read_reply().await?;
                        pairs.push((k, v));
                    }
                    Resp::Map(pairs)
                }
                _ => return Err(bad()),
            })
        })
    }

    /// Reads until the server closes the connection; returns what arrived.
    pub async fn read_to_close(&mut self) -> Vec<u8> {
        let mut rest = self.buf[self.pos..].to_vec();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            self.stream.read_to_end(&mut rest),
        )
        .await;
        rest
    }
}
