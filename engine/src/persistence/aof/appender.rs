//! The appender: the open incr file of a running AOF. Batches hand it what they fed (see
//! feed.rs) and it writes the bytes before their replies leave; fsync follows appendfsync
//! (`always`: before the replies; `everysec`: on a blocking thread about once a second;
//! `no`: left to the OS). A failed write keeps the bytes that did not reach the file and is
//! retried until it succeeds; a failed fsync (or one that cannot start, e.g. out of file
//! descriptors) is retried about once a second until one succeeds. Meanwhile the instance
//! refuses writes (-MISCONF), as Redis does, and INFO says aof_last_write_status:err.
//!
//! New incr files are created exclusively (see temp.rs), and their seq is checked against the
//! manifest's range.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use super::manifest::{AofFile, FileKind, Manifest, ManifestError};
use super::AppendFsync;
use crate::persistence::temp;

/// What a background fsync reported: its number (see `Appender::fsync_started`) and outcome.
type FsyncReport = (u64, Result<(), String>);

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
    /// Why the last write failed (its bytes wait in `pending`), until a write succeeds.
    write_error: Option<String>,
    /// Why the last fsync failed or could not start, until a later one succeeds.
    fsync_error: Option<String>,
    pub fsync: AppendFsync,
    /// When the last fsync started.
    pub last_fsync: Instant,
    /// Bytes of the current file that an fsync covered (or, running, is covering).
    synced_len: u64,
    /// fsyncs are numbered as they start; `fsync_error` holds the outcome of number
    /// `fsync_reported`, so an older fsync finishing late never overrides a newer one.
    fsync_started: u64,
    fsync_reported: u64,
    fsync_running: Arc<AtomicBool>,
    /// What the last background fsync gave, until the cron reads it.
    fsync_result: Arc<Mutex<Option<FsyncReport>>>,
    pub delayed_fsyncs: u64,
    /// The error last announced (an event and the refusal flag; see aof::note_status).
    pub(super) announced: Option<String>,
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

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn file_size(dir: &Path, file: Option<&AofFile>) -> u64 {
    file.and_then(|f| std::fs::metadata(dir.join(&f.name)).ok())
        .map_or(0, |m| m.len())
}

/// Total size of the incr files before the last one.
fn earlier_incrs_size(dir: &Path, manifest: &Manifest) -> u64 {
    manifest.incrs.split_last().map_or(0, |(_, earlier)| {
        earlier
            .iter()
            .map(|f| file_size(dir, Some(f)))
            .fold(0, u64::saturating_add)
    })
}

/// Creates incr file `seq` in `dir` and lists it in `manifest`. A file of that name that
/// the manifest does not list was left by a crash before the manifest listed it: it is
/// replaced (see temp::create_exclusive); one the manifest lists is never touched.
fn create_incr(
    dir: &Path,
    prefix: &str,
    manifest: &mut Manifest,
    seq: u64,
) -> std::io::Result<File> {
    let name = incr_name(prefix, seq);
    if manifest.lists(&name) {
        return Err(ManifestError::NameTaken(name).into());
    }
    let file = temp::create_exclusive(&dir.join(&name))?;
    fsync_dir(dir)?;
    manifest.incrs.push(AofFile {
        name,
        seq,
        kind: FileKind::Incr,
    });
    Ok(file)
}

impl Appender {
    fn new(
        dir: PathBuf,
        prefix: String,
        manifest: Manifest,
        manifest_saved: bool,
        file: File,
        fsync: AppendFsync,
    ) -> std::io::Result<Appender> {
        let file_len = file.metadata()?.len();
        Ok(Appender {
            earlier_incrs: earlier_incrs_size(&dir, &manifest),
            base_size: file_size(&dir, manifest.base.as_ref()),
            dir,
            prefix,
            manifest,
            manifest_saved,
            file,
            file_len,
            pending: Vec::new(),
            write_error: None,
            fsync_error: None,
            fsync,
            last_fsync: Instant::now(),
            synced_len: file_len,
            fsync_started: 0,
            fsync_reported: 0,
            fsync_running: Arc::new(AtomicBool::new(false)),
            fsync_result: Arc::default(),
            delayed_fsyncs: 0,
            announced: None,
        })
    }

    /// Opens the AOF described by `manifest` (just loaded from `dir`) for appending to its
    /// last incr file, creating one (and saving the manifest) if it has none.
    pub fn open(
        dir: PathBuf,
        prefix: String,
        mut manifest: Manifest,
        fsync: AppendFsync,
    ) -> std::io::Result<Appender> {
        let file = match manifest.incrs.last() {
            // Listed, so it exists: the load just read it.
            Some(last) => OpenOptions::new().append(true).open(dir.join(&last.name))?,
            None => {
                let seq = Manifest::next_seq(&manifest.history)?;
                let file = create_incr(&dir, &prefix, &mut manifest, seq)?;
                manifest.persist(&dir, &manifest_name(&prefix))?;
                file
            }
        };
        Appender::new(dir, prefix, manifest, true, file, fsync)
    }

    /// Starts a new AOF in `dir` whose base the first rewrite will write: a new incr file
    /// takes the writes meanwhile. Files of an older AOF in `dir` stay listed as history and
    /// are deleted once the base is in. A manifest there that cannot be read is an error:
    /// its files are unknown, so none may be replaced.
    pub fn create(dir: PathBuf, prefix: String, fsync: AppendFsync) -> std::io::Result<Appender> {
        std::fs::create_dir_all(&dir)?;
        let mut manifest = match std::fs::read(dir.join(manifest_name(&prefix))) {
            Ok(text) => Manifest::parse(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => return Err(e),
        };
        manifest.retire_all();
        let seq = Manifest::next_seq(&manifest.history)?;
        let file = create_incr(&dir, &prefix, &mut manifest, seq)?;
        Appender::new(dir, prefix, manifest, false, file, fsync)
    }

    /// aof_current_size: base plus every incr file.
    pub fn current_size(&self) -> u64 {
        self.base_size
            .saturating_add(self.earlier_incrs)
            .saturating_add(self.file_len)
    }

    /// True while the current incr file holds nothing, nor waits for anything.
    pub fn current_file_is_empty(&self) -> bool {
        self.file_len == 0 && self.pending.is_empty()
    }

    /// Bytes waiting for a retry after a failed write (aof_buffer_length).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn fsync_running(&self) -> bool {
        self.fsync_running.load(Ordering::Acquire)
    }

    /// Why the AOF cannot be written, if it cannot (aof_last_write_status:err and the
    /// -MISCONF refusal): a write or an fsync failed and none has succeeded since.
    pub fn error(&self) -> Option<&str> {
        self.write_error.as_deref().or(self.fsync_error.as_deref())
    }

    /// Why what was appended last is not where appendfsync promises it before a reply: not
    /// in the file (a write failed; the bytes wait for a retry) or, under `always`, not on
    /// disk (the fsync failed). None when the promise holds.
    pub fn unmet_promise(&self) -> Option<&str> {
        let unsynced = match self.fsync {
            AppendFsync::Always => self.fsync_error.as_deref(),
            AppendFsync::EverySec | AppendFsync::No => None,
        };
        self.write_error.as_deref().or(unsynced)
    }

    pub fn save_manifest(&mut self) -> std::io::Result<()> {
        self.manifest
            .persist(&self.dir, &manifest_name(&self.prefix))?;
        self.manifest_saved = true;
        Ok(())
    }

    /// Writes `bytes` (after anything a failed write left) to the incr file, and under
    /// `always` fsyncs it. The outcome is in `error` and `unmet_promise`.
    pub fn append(&mut self, bytes: Vec<u8>) {
        let data = if self.pending.is_empty() {
            bytes
        } else {
            let mut all = std::mem::take(&mut self.pending);
            all.extend_from_slice(&bytes);
            all
        };
        self.write_out(data);
    }

    /// Retries a failed write (the cron calls this).
    pub fn retry(&mut self) {
        if !self.pending.is_empty() {
            let data = std::mem::take(&mut self.pending);
            self.write_out(data);
        }
    }

    fn write_out(&mut self, data: Vec<u8>) {
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
        self.write_error = None;
        if self.fsync == AppendFsync::Always {
            // A failure is kept in `fsync_error`.
            let _ = self.sync_now();
        }
    }

    /// A write stopped after `done` bytes: cut the partial command off the file if possible
    /// (else keep only the unwritten rest) and keep the bytes for the retry.
    fn failed(&mut self, mut data: Vec<u8>, done: usize, error: String) {
        if done > 0 && self.file.set_len(self.file_len).is_err() {
            self.file_len += done as u64;
            data.drain(..done);
        }
        self.pending = data;
        self.write_error = Some(error);
    }

    /// Numbers a new fsync.
    fn start_fsync(&mut self) -> u64 {
        self.fsync_started += 1;
        self.last_fsync = Instant::now();
        self.fsync_started
    }

    /// Records what fsync number `n` gave, unless a later one already reported.
    fn fsync_done(&mut self, n: u64, result: Result<(), String>) {
        if n > self.fsync_reported {
            self.fsync_reported = n;
            self.fsync_error = result.err().map(|e| format!("fsync: {e}"));
        }
    }

    /// fsyncs the current incr file here and now (under `always`, on stop, before a
    /// rotation). A failure is also kept in `error` until a later fsync succeeds.
    pub fn sync_now(&mut self) -> Result<(), String> {
        let n = self.start_fsync();
        let len = self.file_len;
        let result = self.file.sync_data().map_err(|e| e.to_string());
        if result.is_ok() {
            self.synced_len = len;
        }
        self.fsync_done(n, result.clone());
        result
    }

    /// The cron's fsync work: takes what the last background fsync gave and, about once a
    /// second, starts the next one on a thread of its own when one is due: under `everysec`
    /// when bytes were written since the last, under any policy while an fsync failure
    /// stands (the retry). An fsync that cannot start (no descriptor, no thread) counts as
    /// failed, so it is never skipped unseen.
    pub fn fsync_tick(&mut self) {
        let reported = self.fsync_result.lock().take();
        if let Some((n, result)) = reported {
            self.fsync_done(n, result);
        }
        let due = self.fsync_error.is_some()
            || (self.fsync == AppendFsync::EverySec && self.synced_len != self.file_len);
        if !due || self.last_fsync.elapsed() < Duration::from_secs(1) {
            return;
        }
        if self.fsync_running.swap(true, Ordering::AcqRel) {
            // The previous fsync is still running: Redis counts this as a delayed fsync.
            self.delayed_fsyncs += 1;
            self.last_fsync = Instant::now();
            return;
        }
        let n = self.start_fsync();
        let file = match self.file.try_clone() {
            Ok(file) => file,
            Err(e) => {
                self.fsync_running.store(false, Ordering::Release);
                return self.fsync_done(n, Err(format!("cannot start it: {e}")));
            }
        };
        let running = self.fsync_running.clone();
        let result = self.fsync_result.clone();
        let spawned = std::thread::Builder::new()
            .name("aof-fsync".into())
            .spawn(move || {
                let synced = file.sync_data().map_err(|e| e.to_string());
                *result.lock() = Some((n, synced));
                running.store(false, Ordering::Release);
            });
        match spawned {
            Ok(_) => self.synced_len = self.file_len,
            Err(e) => {
                self.fsync_running.store(false, Ordering::Release);
                self.fsync_done(n, Err(format!("cannot start it: {e}")));
            }
        }
    }

    /// Opens the next incr file and lists it (saving the manifest once it is saved at all);
    /// returns its seq. Later writes go to it. The current file must be whole and on disk
    /// first: bytes a failed write left, or an fsync that fails now, stop the rotation (the
    /// new base would hold their commands and the new incr file repeat them).
    pub fn rotate(&mut self) -> std::io::Result<u64> {
        if let Some(error) = &self.write_error {
            return Err(std::io::Error::other(format!(
                "the current AOF file lacks bytes a failed write left: {error}"
            )));
        }
        self.sync_now().map_err(std::io::Error::other)?;
        let seq = Manifest::next_seq(&self.manifest.incrs)?;
        let file = create_incr(&self.dir, &self.prefix, &mut self.manifest, seq)?;
        if self.manifest_saved {
            if let Err(e) = self.save_manifest() {
                if let Some(new) = self.manifest.incrs.pop() {
                    let _ = std::fs::remove_file(self.dir.join(new.name));
                }
                return Err(e);
            }
        }
        self.file = file;
        self.earlier_incrs = self.earlier_incrs.saturating_add(self.file_len);
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
        self.earlier_incrs = earlier_incrs_size(&self.dir, &self.manifest);
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

    const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

    fn appender(dir: &tempfile::TempDir, fsync: AppendFsync) -> Appender {
        Appender::create(dir.path().join("aof"), "appendonly.aof".into(), fsync).unwrap()
    }

    /// /dev/full refuses writes (ENOSPC); /dev/null takes them but refuses fsync (EINVAL).
    fn device(path: &str) -> File {
        OpenOptions::new().write(true).open(path).unwrap()
    }

    /// Starts a background fsync and reports what it gave.
    fn tick_after_fsync(app: &mut Appender) {
        app.last_fsync = Instant::now() - Duration::from_secs(2);
        app.fsync_tick();
        while app.fsync_running() {
            std::thread::sleep(Duration::from_millis(1));
        }
        app.fsync_tick();
    }

    #[test]
    fn failed_writes_are_kept_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = appender(&dir, AppendFsync::EverySec);
        app.append(PING.to_vec());
        assert_eq!(app.error(), None);
        let real = app.file.try_clone().unwrap();
        app.replace_file_for_test(device("/dev/full"));
        app.append(b"*1\r\n$4\r\nECHO\r\n".to_vec());
        assert!(app.error().is_some());
        assert!(
            app.unmet_promise().is_some(),
            "the bytes are not in the file"
        );
        assert_eq!(app.pending_len(), 14);
        app.replace_file_for_test(real);
        app.retry();
        assert_eq!(app.error(), None);
        app.append(b"X".to_vec());
        let text = std::fs::read(dir.path().join("aof/appendonly.aof.1.incr.aof")).unwrap();
        assert_eq!(text, b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nECHO\r\nX");
        assert_eq!(app.current_size(), text.len() as u64);
    }

    #[test]
    fn a_failed_fsync_refuses_writes_until_one_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = appender(&dir, AppendFsync::EverySec);
        let real = app.file.try_clone().unwrap();
        app.replace_file_for_test(device("/dev/null"));
        app.append(PING.to_vec());
        assert_eq!(
            app.unmet_promise(),
            None,
            "everysec promises the file, not the disk"
        );
        tick_after_fsync(&mut app);
        assert!(app.error().is_some_and(|e| e.starts_with("fsync")));
        // A write that succeeds does not make the failed fsync good.
        app.append(PING.to_vec());
        assert!(app.error().is_some_and(|e| e.starts_with("fsync")));
        app.replace_file_for_test(real);
        // The failure makes the next fsync due even with nothing new written.
        tick_after_fsync(&mut app);
        assert_eq!(app.error(), None);
    }

    #[test]
    fn always_fsyncs_before_replying_and_says_when_it_could_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = appender(&dir, AppendFsync::Always);
        let real = app.file.try_clone().unwrap();
        app.append(PING.to_vec());
        assert_eq!(app.unmet_promise(), None);
        assert_eq!(app.synced_len, app.file_len);

        app.replace_file_for_test(device("/dev/null"));
        app.append(PING.to_vec());
        let unmet = app.unmet_promise().map(str::to_owned);
        assert!(
            unmet.as_deref().is_some_and(|e| e.starts_with("fsync")),
            "{unmet:?}"
        );
        assert_eq!(app.error(), unmet.as_deref());

        app.replace_file_for_test(device("/dev/full"));
        app.append(PING.to_vec());
        assert!(app.unmet_promise().is_some_and(|e| !e.starts_with("fsync")));

        // Back on a working file, the retry writes what was left and fsyncs it.
        app.replace_file_for_test(real);
        app.retry();
        assert_eq!(app.unmet_promise(), None);
        assert_eq!(app.error(), None);
        assert_eq!(app.synced_len, app.file_len);
    }

    #[test]
    fn a_late_fsync_outcome_never_overrides_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = appender(&dir, AppendFsync::EverySec);
        let first = app.start_fsync();
        let second = app.start_fsync();
        app.fsync_done(second, Err("EIO".into()));
        app.fsync_done(first, Ok(()));
        assert_eq!(app.error(), Some("fsync: EIO"));
        let third = app.start_fsync();
        app.fsync_done(third, Ok(()));
        assert_eq!(app.error(), None);
    }

    #[test]
    fn rotation_needs_the_current_file_whole_and_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = appender(&dir, AppendFsync::EverySec);
        let real = app.file.try_clone().unwrap();
        app.replace_file_for_test(device("/dev/full"));
        app.append(PING.to_vec());
        assert!(app.rotate().is_err(), "bytes wait for the old file");
        app.replace_file_for_test(device("/dev/null"));
        app.retry();
        assert!(app
            .rotate()
            .unwrap_err()
            .to_string()
            .contains("Invalid argument"));
        assert!(app.error().is_some_and(|e| e.starts_with("fsync")));
        assert_eq!(app.manifest.incrs.len(), 1);
        app.replace_file_for_test(real);
        assert_eq!(app.rotate().unwrap(), 2);
        assert_eq!(app.error(), None);
    }

    #[cfg(unix)]
    #[test]
    fn new_incr_files_replace_stale_ones_but_never_listed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let aof = dir.path().join("aof");
        std::fs::create_dir_all(&aof).unwrap();
        // Left by a crash before the manifest listed it; a symlink at the next name.
        std::fs::write(aof.join(incr_name("appendonly.aof", 1)), b"stale").unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, aof.join(incr_name("appendonly.aof", 2))).unwrap();
        let mut app = appender(&dir, AppendFsync::No);
        assert_eq!(app.current_size(), 0, "the stale file is not appended to");
        app.rotate().unwrap();
        app.append(PING.to_vec());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(
            std::fs::read(aof.join(incr_name("appendonly.aof", 2))).unwrap(),
            PING
        );
        // A manifest that lists a file under the next incr's name: refused, untouched.
        let mut manifest =
            Manifest::parse(b"file appendonly.aof.2.incr.aof seq 1 type i\n").unwrap();
        let err = create_incr(&aof, "appendonly.aof", &mut manifest, 2).unwrap_err();
        assert!(err.to_string().contains("already lists"), "{err}");
        assert_eq!(
            std::fs::read(aof.join(incr_name("appendonly.aof", 2))).unwrap(),
            PING
        );
    }

    #[test]
    fn seqs_at_the_end_of_their_range_are_refused_not_wrapped() {
        let dir = tempfile::tempdir().unwrap();
        let aof = dir.path().join("aof");
        std::fs::create_dir_all(&aof).unwrap();
        let max = i64::MAX;
        let text = format!("file a.base.rdb seq {max} type b\nfile a.incr.aof seq {max} type i\n");
        std::fs::write(aof.join("a.base.rdb"), b"").unwrap();
        std::fs::write(aof.join("a.incr.aof"), b"").unwrap();
        let manifest = Manifest::parse(text.as_bytes()).unwrap();
        let mut app = Appender::open(
            aof.clone(),
            "appendonly.aof".into(),
            manifest,
            AppendFsync::No,
        )
        .unwrap();
        let err = app.rotate().unwrap_err();
        assert!(
            err.to_string().contains("sequence number out of range"),
            "{err}"
        );
        assert!(matches!(
            err.get_ref()
                .and_then(|e| e.downcast_ref::<ManifestError>()),
            Some(ManifestError::SeqOutOfRange(_))
        ));
        // With no incr file, the one it opens would follow the history's last seq.
        let history = format!("file a.base.rdb seq 1 type b\nfile old seq {max} type h\n");
        let manifest = Manifest::parse(history.as_bytes()).unwrap();
        let err = Appender::open(
            aof.clone(),
            "appendonly.aof".into(),
            manifest,
            AppendFsync::No,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("sequence number out of range"),
            "{err}"
        );
        // Past Redis's range (a long long), the manifest itself is refused.
        let err =
            Manifest::parse(format!("file a seq {} type i\n", u64::MAX).as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("seq is not a number from 1 to"),
            "{err}"
        );
    }

    #[test]
    fn rotation_and_base_install_follow_redis_names() {
        let dir = tempfile::tempdir().unwrap();
        let aof = dir.path().join("aof");
        let mut app = appender(&dir, AppendFsync::No);
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
        let names: Vec<_> = std::fs::read_dir(&aof)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("temp-"))
            .collect();
        assert!(names.is_empty(), "temp files left: {names:?}");
    }
}
