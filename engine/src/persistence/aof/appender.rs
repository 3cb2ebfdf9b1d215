//! The appender: the open incr file of a running AOF. Batches hand it what they fed (see
//! feed.rs) and it writes the bytes before their replies leave; fsync follows appendfsync
//! (`always`: before the replies; `everysec`: on a blocking thread about once a second;
//! `no`: left to the OS). A failed write keeps the bytes that did not reach the file and is
//! retried until it succeeds; meanwhile the instance refuses writes (-MISCONF), as Redis does.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use super::manifest::{AofFile, FileKind, Manifest};
use super::AppendFsync;

/// What one call to `append` changed about the write status.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Ok,
    /// The write (or fsync) failed; the error text.
    Failed(String),
    /// A write succeeded after earlier failures.
    Recovered,
}

#[derive(Debug)]
pub struct Appender {
    pub dir: PathBuf,
    /// appendfilename: the prefix of every file name.
    pub prefix: String,
    pub manifest: Manifest,
    /// False until the first base exists (the manifest is saved only from then on, so a crash
    /// during the first rewrite never leaves an AOF that lacks the data set).
    pub manifest_saved: bool,
    file: File,
    /// Bytes of the current incr file known to be written.
    file_len: u64,
    /// Sizes of the earlier incr files still listed (they load before the current one).
    earlier_incrs: u64,
    pub base_size: u64,
    /// Bytes a failed write left to write, first in line for the next write.
    pending: Vec<u8>,
    pub write_error: Option<String>,
    pub fsync: AppendFsync,
    pub last_fsync: Instant,
    synced_len: u64,
    fsync_running: Arc<AtomicBool>,
    /// What the last background fsync gave (an error text on failure), until the cron reads it.
    fsync_result: Arc<Mutex<Option<Result<(), String>>>>,
    pub delayed_fsyncs: u64,
}

pub fn base_name(prefix: &str, seq: u64) -> String {
    format!("{prefix}.{seq}.base.rdb")
}

pub fn incr_name(prefix: &str, seq: u64) -> String {
    format!("{prefix}.{seq}.incr.aof")
}

pub fn manifest_name(prefix: &str) -> String {
    format!("{prefix}.manifest")
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn file_size(dir: &Path, file: Option<&AofFile>) -> u64 {
    file.and_then(|f| std::fs::metadata(dir.join(&f.name)).ok())
        .map_or(0, |m| m.len())
}

impl Appender {
    /// Opens the AOF described by `manifest` (just loaded from `dir`) for appending to its
    /// last incr file, creating one (and saving the manifest) if it has none.
    pub fn open(
        dir: PathBuf,
        prefix: String,
        mut manifest: Manifest,
        fsync: AppendFsync,
    ) -> std::io::Result<Appender> {
        let (path, new_file) = match manifest.incrs.last() {
            Some(last) => (dir.join(&last.name), false),
            None => {
                let seq = 1 + manifest.history.iter().map(|f| f.seq).max().unwrap_or(0);
                let name = incr_name(&prefix, seq);
                manifest.incrs.push(AofFile {
                    name: name.clone(),
                    seq,
                    kind: FileKind::Incr,
                });
                (dir.join(name), true)
            }
        };
        let file = open_append(&path)?;
        if new_file {
            fsync_dir(&dir)?;
            manifest.persist(&dir, &manifest_name(&prefix))?;
        }
        let file_len = file.metadata()?.len();
        let incr_count = manifest.incrs.len();
        let earlier_incrs = manifest.incrs[..incr_count - 1]
            .iter()
            .map(|f| file_size(&dir, Some(f)))
            .sum();
        let base_size = file_size(&dir, manifest.base.as_ref());
        Ok(Appender {
            dir,
            prefix,
            manifest,
            manifest_saved: true,
            file,
            file_len,
            earlier_incrs,
            base_size,
            pending: Vec::new(),
            write_error: None,
            fsync,
            last_fsync: Instant::now(),
            synced_len: file_len,
            fsync_running: Arc::new(AtomicBool::new(false)),
            fsync_result: Arc::default(),
            delayed_fsyncs: 0,
        })
    }

    /// Starts a new AOF in `dir` whose base the first rewrite will write: a new incr file
    /// takes the writes meanwhile. Files of an older AOF in `dir` stay listed as history and
    /// are deleted once the base is in.
    pub fn create(dir: PathBuf, prefix: String, fsync: AppendFsync) -> std::io::Result<Appender> {
        std::fs::create_dir_all(&dir)?;
        let mut manifest = std::fs::read(dir.join(manifest_name(&prefix)))
            .ok()
            .and_then(|text| Manifest::parse(&text).ok())
            .unwrap_or_default();
        manifest.retire_all();
        let seq = 1 + manifest.history.iter().map(|f| f.seq).max().unwrap_or(0);
        let name = incr_name(&prefix, seq);
        let file = open_append(&dir.join(&name))?;
        fsync_dir(&dir)?;
        let file_len = file.metadata()?.len();
        manifest.incrs.push(AofFile {
            name,
            seq,
            kind: FileKind::Incr,
        });
        Ok(Appender {
            dir,
            prefix,
            manifest,
            manifest_saved: false,
            file,
            file_len,
            earlier_incrs: 0,
            base_size: 0,
            pending: Vec::new(),
            write_error: None,
            fsync,
            last_fsync: Instant::now(),
            synced_len: file_len,
            fsync_running: Arc::new(AtomicBool::new(false)),
            fsync_result: Arc::default(),
            delayed_fsyncs: 0,
        })
    }

    /// aof_current_size: base plus every incr file.
    pub fn current_size(&self) -> u64 {
        self.base_size + self.earlier_incrs + self.file_len
    }

    /// Bytes waiting for a retry after a failed write (aof_buffer_length).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn fsync_running(&self) -> bool {
        self.fsync_running.load(Ordering::Acquire)
    }

    pub fn save_manifest(&mut self) -> std::io::Result<()> {
        self.manifest
            .persist(&self.dir, &manifest_name(&self.prefix))?;
        self.manifest_saved = true;
        Ok(())
    }

    /// Writes `bytes` (after anything a failed write left) to the incr file.
    pub fn append(&mut self, bytes: Vec<u8>) -> WriteOutcome {
        let data = if self.pending.is_empty() {
            bytes
        } else {
            let mut all = std::mem::take(&mut self.pending);
            all.extend_from_slice(&bytes);
            all
        };
        self.write_out(data)
    }

    /// Retries a failed write (the cron calls this).
    pub fn retry(&mut self) -> WriteOutcome {
        if self.pending.is_empty() {
            return WriteOutcome::Ok;
        }
        let data = std::mem::take(&mut self.pending);
        self.write_out(data)
    }

    fn write_out(&mut self, data: Vec<u8>) -> WriteOutcome {
        let mut done = 0;
        while done < data.len() {
            match self.file.write(&data[done..]) {
                Ok(0) => return self.failed(data, done, "write returned 0 bytes".into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return self.failed(data, done, e.to_string()),
            }
        }
        self.file_len += data.len() as u64;
        if self.fsync == AppendFsync::Always {
            if let Err(e) = self.file.sync_data() {
                return self.set_error(e.to_string());
            }
            self.synced_len = self.file_len;
            self.last_fsync = Instant::now();
        }
        if self.write_error.take().is_some() {
            WriteOutcome::Recovered
        } else {
            WriteOutcome::Ok
        }
    }

    /// A write stopped after `done` bytes: cut the partial command off the file if possible
    /// (else keep only the unwritten rest) and keep the bytes for the retry.
    fn failed(&mut self, mut data: Vec<u8>, done: usize, error: String) -> WriteOutcome {
        if done > 0 && self.file.set_len(self.file_len).is_err() {
            self.file_len += done as u64;
            data.drain(..done);
        }
        self.pending = data;
        self.set_error(error)
    }

    fn set_error(&mut self, error: String) -> WriteOutcome {
        self.write_error = Some(error.clone());
        WriteOutcome::Failed(error)
    }

    /// The cron's fsync work under `everysec`: reports what the last background fsync gave
    /// (a failure refuses writes until a later fsync succeeds) and starts the next one when
    /// it is due, about once a second.
    pub fn fsync_tick(&mut self) -> WriteOutcome {
        let last_result = self.fsync_result.lock().take();
        let outcome = match last_result {
            Some(Err(error)) => {
                // Unsynced again: the next tick retries.
                self.synced_len = 0;
                self.set_error(format!("fsync: {error}"))
            }
            Some(Ok(())) if self.pending.is_empty() && self.write_error.take().is_some() => {
                WriteOutcome::Recovered
            }
            _ => WriteOutcome::Ok,
        };
        if self.fsync != AppendFsync::EverySec
            || self.synced_len == self.file_len
            || self.last_fsync.elapsed() < Duration::from_secs(1)
        {
            return outcome;
        }
        if self.fsync_running.swap(true, Ordering::AcqRel) {
            // The previous fsync is still running: Redis counts this as a delayed fsync.
            self.delayed_fsyncs += 1;
            self.last_fsync = Instant::now();
            return outcome;
        }
        let Ok(file) = self.file.try_clone() else {
            self.fsync_running.store(false, Ordering::Release);
            return outcome;
        };
        let running = self.fsync_running.clone();
        let result = self.fsync_result.clone();
        self.synced_len = self.file_len;
        self.last_fsync = Instant::now();
        let spawned = std::thread::Builder::new()
            .name("aof-fsync".into())
            .spawn(move || {
                let synced = file.sync_data().map_err(|e| e.to_string());
                *result.lock() = Some(synced);
                running.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.fsync_running.store(false, Ordering::Release);
            self.synced_len = 0;
        }
        outcome
    }

    /// Flushes the current incr file to disk now (on stop, before a rotation).
    pub fn sync_now(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        self.synced_len = self.file_len;
        self.last_fsync = Instant::now();
        Ok(())
    }

    /// Opens the next incr file and lists it (saving the manifest once it is saved at all);
    /// returns its seq. Later writes go to it.
    pub fn rotate(&mut self) -> std::io::Result<u64> {
        let seq = 1 + self.manifest.incrs.last().map_or(0, |f| f.seq);
        let name = incr_name(&self.prefix, seq);
        let path = self.dir.join(&name);
        let file = open_append(&path)?;
        fsync_dir(&self.dir)?;
        self.manifest.incrs.push(AofFile {
            name,
            seq,
            kind: FileKind::Incr,
        });
        if self.manifest_saved {
            if let Err(e) = self.save_manifest() {
                self.manifest.incrs.pop();
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        }
        let old = std::mem::replace(&mut self.file, file);
        let _ = old.sync_data();
        self.earlier_incrs += self.file_len;
        self.file_len = 0;
        self.synced_len = 0;
        Ok(seq)
    }

    /// A rewrite wrote `base` (a file name in the directory) from the data as of the start
    /// of incr `incr_seq`: list it, retire what it replaces, delete the retired files.
    pub fn install_base(&mut self, base: AofFile, incr_seq: u64) -> std::io::Result<()> {
        let before = self.manifest.clone();
        self.manifest.retire_before(incr_seq);
        self.manifest.base = Some(base);
        if let Err(e) = self.save_manifest() {
            self.manifest = before;
            return Err(e);
        }
        self.delete_history();
        self.base_size = file_size(&self.dir, self.manifest.base.as_ref());
        self.earlier_incrs = self.manifest.incrs[..self.manifest.incrs.len() - 1]
            .iter()
            .map(|f| file_size(&self.dir, Some(f)))
            .sum();
        Ok(())
    }

    /// Deletes the history files and saves the manifest without them.
    pub fn delete_history(&mut self) {
        if self.manifest.history.is_empty() {
            return;
        }
        for f in &self.manifest.history {
            let _ = std::fs::remove_file(self.dir.join(&f.name));
        }
        self.manifest.history.clear();
        let _ = self.save_manifest();
    }

    #[cfg(test)]
    pub fn replace_file_for_test(&mut self, file: File) {
        self.file = file;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everysec_appender(dir: &tempfile::TempDir) -> Appender {
        Appender::create(
            dir.path().join("aof"),
            "appendonly.aof".into(),
            AppendFsync::EverySec,
        )
        .unwrap()
    }

    #[test]
    fn failed_writes_are_kept_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = everysec_appender(&dir);
        assert_eq!(
            app.append(b"*1\r\n$4\r\nPING\r\n".to_vec()),
            WriteOutcome::Ok
        );
        let real = app.file.try_clone().unwrap();
        app.replace_file_for_test(OpenOptions::new().write(true).open("/dev/full").unwrap());
        assert!(matches!(
            app.append(b"*1\r\n$4\r\nECHO\r\n".to_vec()),
            WriteOutcome::Failed(_)
        ));
        assert!(app.write_error.is_some());
        assert_eq!(app.pending_len(), 14);
        app.replace_file_for_test(real);
        assert_eq!(app.retry(), WriteOutcome::Recovered);
        assert_eq!(app.append(b"X".to_vec()), WriteOutcome::Ok);
        let text = std::fs::read(dir.path().join("aof/appendonly.aof.1.incr.aof")).unwrap();
        assert_eq!(text, b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nECHO\r\nX");
        assert_eq!(app.current_size(), text.len() as u64);
    }

    #[test]
    fn a_failed_fsync_refuses_writes_until_one_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = everysec_appender(&dir);
        let real = app.file.try_clone().unwrap();
        let tick_after_fsync = |app: &mut Appender| {
            app.last_fsync = Instant::now() - Duration::from_secs(2);
            assert_eq!(app.fsync_tick(), WriteOutcome::Ok, "starts the fsync");
            while app.fsync_running() {
                std::thread::sleep(Duration::from_millis(1));
            }
            app.fsync_tick()
        };
        // /dev/null takes writes, but fsync on it fails (EINVAL).
        app.replace_file_for_test(OpenOptions::new().write(true).open("/dev/null").unwrap());
        assert_eq!(
            app.append(b"*1\r\n$4\r\nPING\r\n".to_vec()),
            WriteOutcome::Ok
        );
        assert!(
            matches!(tick_after_fsync(&mut app), WriteOutcome::Failed(e) if e.starts_with("fsync"))
        );
        assert!(app.write_error.is_some());
        app.replace_file_for_test(real);
        assert_eq!(tick_after_fsync(&mut app), WriteOutcome::Recovered);
        assert!(app.write_error.is_none());
    }

    #[test]
    fn rotation_and_base_install_follow_redis_names() {
        let dir = tempfile::tempdir().unwrap();
        let aof = dir.path().join("aof");
        let mut app =
            Appender::create(aof.clone(), "appendonly.aof".into(), AppendFsync::No).unwrap();
        assert!(!aof.join("appendonly.aof.manifest").exists());
        std::fs::write(aof.join(base_name("appendonly.aof", 1)), b"REDIS0010").unwrap();
        app.install_base(
            AofFile {
                name: base_name("appendonly.aof", 1),
                seq: 1,
                kind: FileKind::Base,
            },
            1,
        )
        .unwrap();
        let text = std::fs::read_to_string(aof.join("appendonly.aof.manifest")).unwrap();
        assert_eq!(
            text,
            "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
        );
        app.append(b"abc".to_vec());
        assert_eq!(app.rotate().unwrap(), 2);
        app.append(b"de".to_vec());
        assert_eq!(app.current_size(), 9 + 3 + 2);
        std::fs::write(aof.join(base_name("appendonly.aof", 2)), b"REDIS0010xx").unwrap();
        app.install_base(
            AofFile {
                name: base_name("appendonly.aof", 2),
                seq: 2,
                kind: FileKind::Base,
            },
            2,
        )
        .unwrap();
        let text = std::fs::read_to_string(aof.join("appendonly.aof.manifest")).unwrap();
        assert_eq!(
            text,
            "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
        );
        assert!(!aof.join("appendonly.aof.1.base.rdb").exists());
        assert!(!aof.join("appendonly.aof.1.incr.aof").exists());
        assert_eq!(app.current_size(), 11 + 2);
    }
}
