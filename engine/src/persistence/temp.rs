//! Temp files the persistence code writes and then renames into place: a dump, an AOF base,
//! the AOF manifest, an export. Each is named `temp-<pid>-<n>.<rdb|manifest>` (Redis names
//! its dump's temp file `temp-<pid>.rdb`) and created exclusively (O_EXCL), so it is never an
//! existing file nor reached through a symlink planted at its name.
//!
//! At start, `remove_stale` removes the temp files of processes that are gone and those an
//! earlier process with our pid left, never those a live process (or this one) is writing.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// What a temp file becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempKind {
    /// A dump, an AOF base or an export.
    Rdb,
    /// The AOF manifest.
    Manifest,
}

impl TempKind {
    const ALL: [TempKind; 2] = [TempKind::Rdb, TempKind::Manifest];

    fn extension(self) -> &'static str {
        match self {
            TempKind::Rdb => "rdb",
            TempKind::Manifest => "manifest",
        }
    }
}

/// Temp files this process is writing: a cleanup never removes them, even though they carry
/// our pid (many instances share the process, and may share a directory).
static IN_FLIGHT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn temp_name(pid: u32, n: u64, kind: TempKind) -> String {
    format!("temp-{pid}-{n}.{}", kind.extension())
}

/// The pid a name of our scheme carries; None for any other name.
fn pid_of(name: &str) -> Option<u32> {
    let (stem, extension) = name.strip_prefix("temp-")?.rsplit_once('.')?;
    if !TempKind::ALL.iter().any(|k| k.extension() == extension) {
        return None;
    }
    let (pid, n) = stem.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(n) {
        return None;
    }
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// True unless `pid` is known not to run: without /proc nothing is known, so nothing is
/// taken for dead.
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// Creates `path` for appending, exclusively. A file already there is one this process does
/// not own (see IN_FLIGHT): left by a crash, or planted. It is removed (a symlink itself,
/// never its target) and the file created once more; a second clash is an error.
pub(crate) fn create_exclusive(path: &Path) -> io::Result<File> {
    let open = || OpenOptions::new().append(true).create_new(true).open(path);
    match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            open()
        }
        opened => opened,
    }
}

/// A temp file being written; removed on drop unless `persist` renamed it into place.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    /// Creates a new temp file in `dir` (the directory of the file it will replace, so the
    /// rename stays on one file system).
    pub fn create(dir: &Path, kind: TempKind) -> io::Result<TempFile> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(temp_name(std::process::id(), n, kind));
        // Listed before it exists, so a cleanup running meanwhile leaves it alone.
        IN_FLIGHT.lock().push(path.clone());
        match create_exclusive(&path) {
            Ok(file) => Ok(TempFile {
                path,
                file,
                persisted: false,
            }),
            Err(e) => {
                unlist(&path);
                Err(e)
            }
        }
    }

    /// fsync, rename over `target`, fsync of the directory: a crash at any moment leaves
    /// the old file or the new one, never half of one.
    pub fn persist(mut self, target: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.path, target)?;
        self.persisted = true;
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
        unlist(&self.path);
    }
}

fn unlist(path: &Path) {
    IN_FLIGHT.lock().retain(|p| p != path);
}

/// Removes from `dir` the temp files of our scheme that no live process is writing: those
/// whose pid no longer runs, and those with our pid that this process is not writing (an
/// earlier process had our pid). Returns what it removed.
pub fn remove_stale(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let own = std::process::id();
    // Held throughout, so no temp file of ours is created between the check and the removal.
    let in_flight = IN_FLIGHT.lock();
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(pid_of)
                .is_some_and(|pid| pid == own || !process_alive(pid))
        })
        .map(|entry| entry.path())
        .filter(|path| !in_flight.contains(path))
        .filter(|path| std::fs::remove_file(path).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that ran and exited (a child reaped at once).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn names_of_our_scheme_only() {
        assert_eq!(pid_of("temp-42-7.rdb"), Some(42));
        assert_eq!(pid_of("temp-42-0.manifest"), Some(42));
        for other in [
            "temp-42.rdb",
            "temp-42-7.aof",
            "temp-x-7.rdb",
            "temp--7.rdb",
            "temp-42-.rdb",
            "temp-appendonly.aof.manifest",
            "dump.rdb",
        ] {
            assert_eq!(pid_of(other), None, "{other}");
        }
    }

    // Liveness is read from /proc.
    #[cfg(target_os = "linux")]
    #[test]
    fn cleanup_spares_live_processes_and_files_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let own = std::process::id();
        let dead = dead_pid();
        let keep = [
            // pid 1 always runs.
            temp_name(1, 0, TempKind::Rdb),
            // Not our scheme (Redis's own temp name, other files).
            format!("temp-{dead}.rdb"),
            "dump.rdb".to_string(),
        ];
        let stale = [
            temp_name(dead, 3, TempKind::Rdb),
            temp_name(dead, 4, TempKind::Manifest),
            temp_name(own, u64::MAX, TempKind::Rdb),
        ];
        for name in keep.iter().chain(&stale) {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let writing = TempFile::create(dir.path(), TempKind::Rdb).unwrap();
        let mut removed = remove_stale(dir.path());
        removed.sort();
        let mut expected: Vec<_> = stale.iter().map(|n| dir.path().join(n)).collect();
        expected.sort();
        assert_eq!(removed, expected);
        for name in &keep {
            assert!(dir.path().join(name).exists(), "{name} was removed");
        }
        assert!(writing.path.exists(), "a file being written was removed");
        let path = writing.path.clone();
        drop(writing);
        assert!(!path.exists(), "an abandoned temp file stays");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_planted_symlink_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // At a name this process could create, and at a stale name the cleanup removes.
        let planted = dir
            .path()
            .join(temp_name(std::process::id(), u64::MAX, TempKind::Rdb));
        let stale = dir.path().join(temp_name(dead_pid(), 0, TempKind::Rdb));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        std::os::unix::fs::symlink(&victim, &stale).unwrap();

        let mut file = create_exclusive(&planted).unwrap();
        file.write_all(b"new").unwrap();
        assert!(!std::fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&planted).unwrap(), b"new");

        assert!(remove_stale(dir.path()).contains(&stale));
        assert!(!stale.exists());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn persist_replaces_the_target_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dump.rdb");
        std::fs::write(&target, b"old").unwrap();
        let mut temp = TempFile::create(dir.path(), TempKind::Rdb).unwrap();
        temp.write_all(b"new").unwrap();
        temp.persist(&target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["dump.rdb"]);
        let listed = IN_FLIGHT.lock().iter().any(|p| p.starts_with(dir.path()));
        assert!(!listed, "a persisted file is still listed as in flight");
    }
}
