//! Replaying an AOF directory: the manifest's base (an RDB preamble, or commands) then its
//! incr files in order, into a keyspace of its own that no client sees (the caller swaps the
//! result in). The files are untrusted bytes: every length is checked against the file before
//! anything is allocated, and only commands an AOF holds (writes, SELECT, MULTI/EXEC) run.
//!
//! As Redis with aof-load-truncated yes: a last command cut short in the LAST file (or a
//! transaction left open at its end) is cut off the file and loading goes on; a short read in
//! an earlier file, or malformed bytes anywhere, stop the load and leave every file untouched.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::manifest::{Manifest, ManifestError};
use crate::commands::{self, Ctx, Flags};
use crate::instance::client::{ClientInfo, ClientState};
use crate::instance::Shared;
use crate::keyspace::{Db, Keyspace};
use crate::persistence::rdb::RdbError;

/// Most arguments a logged command may have (Redis's multibulk limit).
const MAX_ARGS: u64 = 1024 * 1024;
/// Longest argument (proto-max-bulk-len).
const MAX_ARG_LEN: u64 = crate::protocol::parser::PROTO_MAX_BULK_LEN as u64;

#[derive(Debug, thiserror::Error)]
pub enum AofLoadError {
    #[error("{dir}: {source}")]
    Manifest { dir: String, source: ManifestError },
    #[error("{file} is listed in the manifest but cannot be read: {source}")]
    Missing {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {source}")]
    Rdb { file: String, source: RdbError },
    #[error("{file} at offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
    #[error(
        "{file} ends in the middle of a command at offset {offset}, and it is not the last file"
    )]
    Truncated { file: String, offset: u64 },
}

/// What a replay produced.
#[derive(Debug)]
pub struct Replayed {
    pub dbs: Vec<Db>,
    pub files: Vec<String>,
    pub bytes: u64,
    pub commands: u64,
    /// Keys of the RDB base skipped as expired, plus keys that expired during the replay.
    pub keys_expired: u64,
    /// The truncated tail that was cut off, described.
    pub truncated: Option<String>,
}

/// Reads the manifest of `dir` (None if there is none).
pub fn read_manifest(dir: &Path, prefix: &str) -> Result<Option<Manifest>, AofLoadError> {
    let path = dir.join(super::appender::manifest_name(prefix));
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AofLoadError::Missing {
                file: path.display().to_string(),
                source,
            })
        }
    };
    Manifest::parse(&text)
        .map(Some)
        .map_err(|source| AofLoadError::Manifest {
            dir: path.display().to_string(),
            source,
        })
}

/// The total size of the files a load reads (for progress), checking that each exists.
pub fn total_bytes(dir: &Path, manifest: &Manifest) -> Result<u64, AofLoadError> {
    manifest.files_to_load().try_fold(0u64, |sum, f| {
        let path = dir.join(&f.name);
        std::fs::metadata(&path)
            .map(|m| sum + m.len())
            .map_err(|source| AofLoadError::Missing {
                file: path.display().to_string(),
                source,
            })
    })
}

/// Replays the files `manifest` lists in `dir`. `progress(bytes, keys)` is called now and then.
pub fn replay(
    shared: &Shared,
    dir: &Path,
    manifest: &Manifest,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Replayed, AofLoadError> {
    let mut ks = Keyspace::default();
    {
        let live = shared.keyspace.lock();
        ks.mark = live.mark;
        // Everything loads; eviction to fit happens once the data is swapped in.
        ks.config = live.config.clone();
        ks.config.maxmemory = 0;
    }
    let lfu = ks.config.policy.is_lfu();
    let files: Vec<_> = manifest.files_to_load().cloned().collect();
    let mut out = Replayed {
        dbs: Vec::new(),
        files: files.iter().map(|f| f.name.clone()).collect(),
        bytes: 0,
        commands: 0,
        keys_expired: 0,
        truncated: None,
    };
    let mut replayer = Replayer::new(shared);
    for (i, f) in files.iter().enumerate() {
        let path = dir.join(&f.name);
        let last = i + 1 == files.len();
        let missing = |source| AofLoadError::Missing {
            file: path.display().to_string(),
            source,
        };
        let mut head = [0u8; 5];
        let n = File::open(&path)
            .and_then(|mut file| file.read(&mut head))
            .map_err(missing)?;
        let is_base = i == 0 && manifest.base.is_some();
        if is_base && &head[..n] == b"REDIS" {
            let (dbs, _, expired, bytes) = crate::persistence::restore::read_dump(
                &mut *progress,
                &path,
                ks.mark,
                lfu,
                &ks.config.encodings,
                shared.config().key_load_delay,
            )
            .map_err(|source| AofLoadError::Rdb {
                file: path.display().to_string(),
                source,
            })?;
            ks.dbs = dbs;
            out.keys_expired += expired;
            out.bytes += bytes;
            progress(out.bytes, ks.key_count() as u64);
            continue;
        }
        let before = out.bytes;
        let end = replayer.run_file(&mut ks, &path, &mut |offset, commands| {
            progress(before + offset, commands)
        })?;
        out.commands = replayer.commands;
        match end {
            FileEnd::Complete(size) => out.bytes += size,
            FileEnd::Cut { valid, size } if last => {
                let file = File::options().write(true).open(&path).map_err(missing)?;
                file.set_len(valid)
                    .and_then(|()| file.sync_all())
                    .map_err(missing)?;
                out.truncated = Some(format!(
                    "{} ended in the middle of a command: cut at offset {valid}, {} bytes dropped",
                    f.name,
                    size - valid
                ));
                out.bytes += size;
            }
            FileEnd::Cut { valid, .. } => {
                return Err(AofLoadError::Truncated {
                    file: path.display().to_string(),
                    offset: valid,
                })
            }
        }
        // Each file starts in database 0 and outside a transaction (files are independent).
        replayer.reset();
    }
    out.keys_expired += ks.stats.expired_keys;
    out.dbs = std::mem::take(&mut ks.dbs);
    Ok(out)
}

/// How a file ended.
enum FileEnd {
    Complete(u64),
    /// Cut short (or inside a transaction): the bytes up to `valid` are whole commands.
    Cut {
        valid: u64,
        size: u64,
    },
}

/// Runs commands against the loading keyspace as a client would, without a connection.
struct Replayer<'a> {
    shared: &'a Shared,
    client: ClientState,
    /// Commands queued since MULTI, and the offset where the MULTI began.
    multi: Option<(Vec<Vec<Vec<u8>>>, u64)>,
    commands: u64,
}

impl<'a> Replayer<'a> {
    fn new(shared: &'a Shared) -> Self {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let mut client = ClientState::new(
            std::sync::Arc::new(ClientInfo::new(0, addr, addr, Default::default())),
            true,
        );
        client.in_exec = true;
        client.replaying = true;
        Replayer {
            shared,
            client,
            multi: None,
            commands: 0,
        }
    }

    fn reset(&mut self) {
        self.client.db = 0;
        self.multi = None;
    }

    fn run_file(
        &mut self,
        ks: &mut Keyspace,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<FileEnd, AofLoadError> {
        let missing = |source| AofLoadError::Missing {
            file: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(missing)?;
        let size = file.metadata().map_err(missing)?.len();
        let reader = CommandReader {
            input: BufReader::with_capacity(1 << 20, file),
            offset: 0,
            size,
            name: path.display().to_string(),
        };
        self.run_commands(ks, reader, progress)
    }

    /// Runs every command `reader` yields; says how the input ended.
    fn run_commands<R: BufRead>(
        &mut self,
        ks: &mut Keyspace,
        mut reader: CommandReader<R>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<FileEnd, AofLoadError> {
        let size = reader.size;
        loop {
            let start = reader.offset;
            let args = match reader.next()? {
                Next::Command(args) => args,
                Next::End => break,
                Next::Cut => {
                    let valid = self.multi.take().map_or(start, |(_, at)| at);
                    return Ok(FileEnd::Cut { valid, size });
                }
            };
            self.command(ks, args, start, &reader.name)?;
            if self.commands.is_multiple_of(4096) {
                progress(reader.offset, self.commands);
            }
        }
        if let Some((_, at)) = self.multi.take() {
            return Ok(FileEnd::Cut { valid: at, size });
        }
        Ok(FileEnd::Complete(size))
    }

    fn command(
        &mut self,
        ks: &mut Keyspace,
        args: Vec<Vec<u8>>,
        offset: u64,
        file: &str,
    ) -> Result<(), AofLoadError> {
        let corrupt = |reason: String| AofLoadError::Corrupt {
            file: file.to_string(),
            offset,
            reason,
        };
        self.commands += 1;
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        match name.as_str() {
            "multi" if self.multi.is_none() => {
                self.multi = Some((Vec::new(), offset));
                return Ok(());
            }
            "exec" => {
                let (queued, _) = self
                    .multi
                    .take()
                    .ok_or_else(|| corrupt("EXEC without MULTI".into()))?;
                for args in queued {
                    self.run(ks, &commands::arg_slices(&args), offset, file)?;
                }
                return Ok(());
            }
            _ => {}
        }
        let slices = commands::arg_slices(&args);
        if self.multi.is_none() {
            return self.run(ks, &slices, offset, file);
        }
        // Checked now so a bad command is reported where it is.
        self.check(&slices, offset, file)?;
        if let Some((queued, _)) = self.multi.as_mut() {
            queued.push(args);
        }
        Ok(())
    }

    fn check(
        &self,
        args: &[&[u8]],
        offset: u64,
        file: &str,
    ) -> Result<&'static commands::CommandSpec, AofLoadError> {
        let corrupt = |reason: String| AofLoadError::Corrupt {
            file: file.to_string(),
            offset,
            reason,
        };
        let spec = commands::resolve(args).map_err(|e| corrupt(e.to_string()))?;
        if !spec.flags.contains(Flags::WRITE) && spec.name != "select" {
            return Err(corrupt(format!(
                "'{}' is not a command an AOF holds",
                spec.name
            )));
        }
        Ok(spec)
    }

    fn run(
        &mut self,
        ks: &mut Keyspace,
        args: &[&[u8]],
        offset: u64,
        file: &str,
    ) -> Result<(), AofLoadError> {
        let spec = self.check(args, offset, file)?;
        let mut ctx = Ctx::new(ks, &mut self.client, self.shared);
        // A command's error reply is what it was when it ran: the data is as it was then.
        commands::run(&mut ctx, spec, args);
        Ok(())
    }
}

enum Next {
    Command(Vec<Vec<u8>>),
    End,
    /// The file ended before the command did.
    Cut,
}

/// Reads RESP arrays of bulk strings from an AOF file (`size` bytes, called `name`).
struct CommandReader<R> {
    input: R,
    offset: u64,
    size: u64,
    name: String,
}

impl<R: BufRead> CommandReader<R> {
    fn corrupt(&self, reason: impl Into<String>) -> AofLoadError {
        AofLoadError::Corrupt {
            file: self.name.clone(),
            offset: self.offset,
            reason: reason.into(),
        }
    }

    fn io(&self, source: std::io::Error) -> AofLoadError {
        AofLoadError::Missing {
            file: self.name.clone(),
            source,
        }
    }

    /// Reads "<prefix><number>\r\n"; None at the end of the file.
    fn header(&mut self, prefix: u8, max: u64) -> Result<Option<u64>, AofLoadError> {
        let mut line = Vec::with_capacity(16);
        let n = (&mut self.input)
            .take(32)
            .read_until(b'\n', &mut line)
            .map_err(|e| self.io(e))?;
        if n == 0 || !line.ends_with(b"\n") {
            if n == 32 {
                return Err(self.corrupt("a header line is too long"));
            }
            return Ok(None);
        }
        if line.len() < 3 || line[0] != prefix || line[line.len() - 2] != b'\r' {
            return Err(self.corrupt(format!(
                "expected '{}' followed by a number",
                char::from(prefix)
            )));
        }
        let number = std::str::from_utf8(&line[1..line.len() - 2])
            .ok()
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|&n| n <= max)
            .ok_or_else(|| self.corrupt("invalid length"))?;
        self.offset += n as u64;
        Ok(Some(number))
    }

    fn next(&mut self) -> Result<Next, AofLoadError> {
        let start = self.offset;
        let count = match self.header(b'*', MAX_ARGS) {
            Ok(Some(0)) => return Err(self.corrupt("a command with no arguments")),
            Ok(Some(n)) => n,
            Ok(None) if self.offset == self.size => return Ok(Next::End),
            Ok(None) => return Ok(Next::Cut),
            Err(e) => return Err(e),
        };
        let mut args = Vec::with_capacity(count.min(1024) as usize);
        for _ in 0..count {
            let Some(len) = self.header(b'$', MAX_ARG_LEN)? else {
                return Ok(Next::Cut);
            };
            if self.offset + len + 2 > self.size {
                return Ok(Next::Cut);
            }
            let mut arg = Vec::with_capacity(len as usize);
            (&mut self.input)
                .take(len + 2)
                .read_to_end(&mut arg)
                .map_err(|e| self.io(e))?;
            if arg.len() as u64 != len + 2 {
                return Ok(Next::Cut);
            }
            if !arg.ends_with(b"\r\n") {
                return Err(self.corrupt("an argument is not followed by CRLF"));
            }
            arg.truncate(len as usize);
            self.offset += len + 2;
            args.push(arg);
        }
        debug_assert!(self.offset > start);
        Ok(Next::Command(args))
    }
}

/// Replays `data` as one AOF file into a keyspace of its own (the fuzz target's entry point):
/// returns the commands run, or the error that stopped the replay.
pub fn replay_bytes(shared: &Shared, data: &[u8]) -> Result<u64, AofLoadError> {
    let mut ks = Keyspace::default();
    let mut replayer = Replayer::new(shared);
    let reader = CommandReader {
        input: data,
        offset: 0,
        size: data.len() as u64,
        name: "input".into(),
    };
    replayer.run_commands(&mut ks, reader, &mut |_, _| {})?;
    Ok(replayer.commands)
}
