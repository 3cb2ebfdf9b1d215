//! A connection's pending output: encoded replies in a chain of fixed-size blocks, as Redis's
//! reply list keeps them. Output never needs one big contiguous buffer, so a reply of any size
//! grows by one block at a time (no doubling copy, no allocation a client can make huge in one
//! go), and what is queued is counted exactly for the output-buffer limits.

use std::collections::VecDeque;
use std::io::IoSlice;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Size of one block of output.
pub const BLOCK_SIZE: usize = 16 * 1024;
/// How many blocks one vectored write hands to the kernel.
const WRITE_BATCH: usize = 64;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Output {
    blocks: VecDeque<Vec<u8>>,
    /// Bytes of the first block already written to the socket.
    written: usize,
    len: usize,
}

impl Output {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn put_u8(&mut self, byte: u8) {
        self.put_slice(&[byte]);
    }

    #[inline]
    pub fn put_slice(&mut self, data: &[u8]) {
        match self.blocks.back_mut() {
            Some(block) if block.capacity() - block.len() >= data.len() => {
                block.extend_from_slice(data);
                self.len += data.len();
            }
            _ => self.put_slice_across(data),
        }
    }

    /// `put_slice` where the last block has no room for all of `data`: it fills that block
    /// and goes on in new ones.
    fn put_slice_across(&mut self, mut data: &[u8]) {
        self.len += data.len();
        while !data.is_empty() {
            if self.blocks.back().is_none_or(|b| b.len() == b.capacity()) {
                self.blocks.push_back(Vec::with_capacity(BLOCK_SIZE));
            }
            let Some(block) = self.blocks.back_mut() else {
                return;
            };
            let room = block.capacity() - block.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            block.extend_from_slice(now);
            data = rest;
        }
    }

    /// Moves the blocks of `other` to the end of this output, without copying their bytes.
    pub fn append(&mut self, mut other: Output) {
        if let Some(first) = other.blocks.front_mut() {
            first.drain(..other.written);
        }
        self.len += other.len;
        self.blocks.append(&mut other.blocks);
    }

    /// All the bytes, contiguous (for in-process callers that decode a reply).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut all = Vec::with_capacity(self.len);
        for (i, block) in self.blocks.iter().enumerate() {
            let from = if i == 0 { self.written } else { 0 };
            all.extend_from_slice(&block[from..]);
        }
        all
    }

    /// Drops what is queued (the first block stays allocated, for the next reply).
    pub fn clear(&mut self) {
        self.blocks.truncate(1);
        if let Some(first) = self.blocks.front_mut() {
            first.clear();
        }
        self.written = 0;
        self.len = 0;
    }

    /// Keeps only the first `len` bytes queued (drops replies that must not be sent).
    pub fn truncate(&mut self, len: usize) {
        while self.len > len {
            let blocks = self.blocks.len();
            let floor = if blocks == 1 { self.written } else { 0 };
            let Some(last) = self.blocks.back_mut() else {
                break;
            };
            let cut = (self.len - len).min(last.len() - floor);
            last.truncate(last.len() - cut);
            self.len -= cut;
            if last.len() == floor && blocks > 1 {
                self.blocks.pop_back();
            }
        }
    }

    /// The next blocks to write, as one vectored write takes them.
    fn next_slices(&self) -> Vec<IoSlice<'_>> {
        self.blocks
            .iter()
            .take(WRITE_BATCH)
            .enumerate()
            .map(|(i, b)| IoSlice::new(if i == 0 { &b[self.written..] } else { b }))
            .collect()
    }

    /// Writes what the socket takes now, without waiting: true if everything went. On an
    /// error, what was not written stays queued.
    pub fn try_write_to(&mut self, stream: &tokio::net::TcpStream) -> std::io::Result<bool> {
        while !self.is_empty() {
            match stream.try_write_vectored(&self.next_slices()) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => self.consume(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Writes everything to `stream`, a batch of blocks per system call. On an error, what was
    /// not written stays queued.
    pub async fn write_to<W: AsyncWrite + Unpin>(&mut self, stream: &mut W) -> std::io::Result<()> {
        while !self.is_empty() {
            let n = stream.write_vectored(&self.next_slices()).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.consume(n);
        }
        Ok(())
    }

    /// Drops `n` written bytes from the front.
    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(first) = self.blocks.front() else {
                break;
            };
            let left = first.len() - self.written;
            if n < left {
                self.written += n;
                break;
            }
            n -= left;
            self.written = 0;
            if self.blocks.len() == 1 {
                break;
            }
            self.blocks.pop_front();
        }
        if self.len == 0 {
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grows_in_blocks_and_writes_everything_in_order() {
        let mut out = Output::new();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        out.put_slice(&data[..10]);
        out.put_slice(&data[10..]);
        assert_eq!(out.len(), data.len());
        assert_eq!(out.blocks.len(), data.len().div_ceil(BLOCK_SIZE));
        assert!(out.blocks.iter().all(|b| b.capacity() == BLOCK_SIZE));
        let mut other = Output::new();
        other.put_slice(b"tail");
        out.append(other);
        let mut sink = Vec::new();
        out.write_to(&mut sink).await.unwrap();
        assert_eq!(&sink[..data.len()], &data[..]);
        assert_eq!(&sink[data.len()..], b"tail");
        assert!(out.is_empty());
        assert_eq!(out.blocks.len(), 1, "one block is kept for the next reply");
    }

    #[test]
    fn truncate_drops_the_tail_across_blocks() {
        let mut out = Output::new();
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 13) as u8).collect();
        out.put_slice(&data);
        out.truncate(20_000);
        assert_eq!(out.to_vec(), &data[..20_000]);
        out.put_slice(b"next");
        assert_eq!(&out.to_vec()[20_000..], b"next");
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut out = Output::new();
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 7) as u8).collect();
        out.put_slice(&data);
        out.consume(5);
        out.consume(BLOCK_SIZE);
        assert_eq!(out.to_vec(), &data[5 + BLOCK_SIZE..]);
        assert_eq!(out.len(), data.len() - 5 - BLOCK_SIZE);
    }
}
