//! LZF, the compression RDB files use for strings longer than 20 bytes.
//!
//! Decompression is the `lzf-rust` crate's. Compression is ours: the crates available zero a
//! 256 KB hash table on every call, which for a million short values costs seconds; this
//! compressor keeps one small table per writer and never clears it (a stale slot is harmless
//! because every candidate match is verified byte by byte, as liblzf does without INIT_HTAB).
//! The output is the liblzf token format: literal runs `000LLLLL` + L+1 bytes, back references
//! `LLLooooo [extra] oooooooo` copying L+2 bytes from `offset+1` bytes back.

const HASH_BITS: u32 = 13;
const MAX_OFFSET: usize = 1 << 13;
const MAX_LITERAL: usize = 32;
const MAX_MATCH: usize = 264;

/// Reusable state for compressing many strings.
#[derive(Debug)]
pub struct Compressor {
    table: Vec<u32>,
}

impl Default for Compressor {
    fn default() -> Self {
        Compressor {
            table: vec![0; 1 << HASH_BITS],
        }
    }
}

impl Compressor {
    /// Appends the compressed form of `input` to `out` if it fits in `max_len` bytes; otherwise
    /// leaves `out` as it was and returns false.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>, max_len: usize) -> bool {
        let start = out.len();
        let limit = start + max_len;
        let n = input.len();
        let mut literals = LiteralRun::open(out);
        let mut ip = 0usize;
        while ip < n {
            let mut matched = 0;
            if ip + 2 < n {
                let h = hash(input[ip], input[ip + 1], input[ip + 2]);
                let candidate = self.table[h] as usize;
                self.table[h] = ip as u32;
                if candidate < ip
                    && ip - candidate <= MAX_OFFSET
                    && input[candidate..candidate + 3] == input[ip..ip + 3]
                {
                    let max = MAX_MATCH.min(n - ip);
                    matched = 3;
                    while matched < max && input[candidate + matched] == input[ip + matched] {
                        matched += 1;
                    }
                    literals.close(out);
                    let off = ip - candidate - 1;
                    let l = matched - 2;
                    if l < 7 {
                        out.push(((l << 5) | (off >> 8)) as u8);
                    } else {
                        out.push(((7 << 5) | (off >> 8)) as u8);
                        out.push((l - 7) as u8);
                    }
                    out.push(off as u8);
                    literals = LiteralRun::open(out);
                }
            }
            if matched > 0 {
                ip += matched;
            } else {
                literals.push(out, input[ip]);
                ip += 1;
            }
            if out.len() > limit {
                out.truncate(start);
                return false;
            }
        }
        literals.close(out);
        if out.len() > limit {
            out.truncate(start);
            return false;
        }
        true
    }
}

/// The literal run being written: its control byte's position and how many bytes follow it.
struct LiteralRun {
    ctrl: usize,
    len: usize,
}

impl LiteralRun {
    fn open(out: &mut Vec<u8>) -> Self {
        out.push(0);
        LiteralRun {
            ctrl: out.len() - 1,
            len: 0,
        }
    }

    fn push(&mut self, out: &mut Vec<u8>, byte: u8) {
        out.push(byte);
        self.len += 1;
        if self.len == MAX_LITERAL {
            out[self.ctrl] = (MAX_LITERAL - 1) as u8;
            *self = LiteralRun::open(out);
        }
    }

    /// Writes the run's length, or drops its control byte if the run is empty.
    fn close(&self, out: &mut Vec<u8>) {
        if self.len > 0 {
            out[self.ctrl] = (self.len - 1) as u8;
        } else {
            out.pop();
        }
    }
}

fn hash(a: u8, b: u8, c: u8) -> usize {
    let v = (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c);
    (v.wrapping_mul(2_654_435_761) >> (32 - HASH_BITS)) as usize
}

/// The longest string `compressed_len` bytes of LZF can stand for: a 3-byte back reference
/// copies at most 264 bytes, and no string is longer than proto-max-bulk-len.
pub fn max_decompressed_len(compressed_len: usize) -> usize {
    compressed_len
        .saturating_mul(MAX_MATCH.div_ceil(3) + 1)
        .min(crate::protocol::parser::PROTO_MAX_BULK_LEN)
}

/// Why LZF data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LzfError {
    #[error(
        "LZF string claims {claimed} bytes; {compressed} compressed bytes stand for {most} at most"
    )]
    TooLong {
        claimed: usize,
        compressed: usize,
        most: usize,
    },
    #[error("LZF data does not decompress to its stated length")]
    Corrupt,
}

/// Decompresses `input` into exactly `len` bytes. A length beyond what the input can stand
/// for is refused before anything is allocated.
pub fn decompress(input: &[u8], len: usize) -> Result<Vec<u8>, LzfError> {
    let most = max_decompressed_len(input.len());
    if len > most {
        return Err(LzfError::TooLong {
            claimed: len,
            compressed: input.len(),
            most,
        });
    }
    let mut out = vec![0u8; len];
    match lzf_rust::decompress(input, &mut out) {
        Ok(n) if n == len => Ok(out),
        _ => Err(LzfError::Corrupt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(input: &[u8]) -> Option<usize> {
        let mut c = Compressor::default();
        let mut out = vec![0xAA];
        if !c.compress(input, &mut out, input.len()) {
            assert_eq!(out, [0xAA]);
            return None;
        }
        assert_eq!(decompress(&out[1..], input.len()).unwrap(), input);
        Some(out.len() - 1)
    }

    #[test]
    fn compresses_repetitive_data_and_round_trips() {
        let text = b"hello hello hello hello hello hello hello hello hello!".repeat(40);
        let size = round_trip(&text).unwrap();
        assert!(size < text.len() / 10, "{size} bytes for {}", text.len());
        round_trip(&[b'a'; 1000]).unwrap();
        let mixed: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        round_trip(&mixed).unwrap();
    }

    #[test]
    fn incompressible_data_is_refused_and_out_untouched() {
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(round_trip(&noise).is_none());
    }

    #[test]
    fn lying_lengths_are_refused_before_allocating() {
        assert_eq!(
            decompress(&[0, b'a'], 1_000_000),
            Err(LzfError::TooLong {
                claimed: 1_000_000,
                compressed: 2,
                most: 178
            })
        );
        assert_eq!(decompress(&[0, b'a'], 2), Err(LzfError::Corrupt));
        // 2^40 bytes from a whole proto-max-bulk-len of input: refused, not allocated.
        let huge = usize::try_from(1u64 << 40).unwrap();
        assert!(max_decompressed_len(usize::MAX) < huge);
        assert!(matches!(
            decompress(&[0, b'a'], huge),
            Err(LzfError::TooLong { .. })
        ));
    }

    #[test]
    fn reuse_across_inputs_stays_correct() {
        let mut c = Compressor::default();
        for i in 0..200u32 {
            let input: Vec<u8> = format!("value-{i}-")
                .repeat(10 + (i as usize % 7))
                .into_bytes();
            let mut out = Vec::new();
            if c.compress(&input, &mut out, input.len()) {
                assert_eq!(decompress(&out, input.len()).unwrap(), input);
            }
        }
    }
}
