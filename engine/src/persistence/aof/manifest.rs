//! The multi-part AOF manifest (`appendonly.aof.manifest`), as Redis 7.0 reads and writes it:
//! one line per file, `file <name> seq <n> type <b|h|i>`, base first, then history, then the
//! incr files in increasing seq. `#` starts a comment; unknown key/value pairs are ignored.
//! File names are plain names inside the AOF directory, never paths.

use std::io::Write;
use std::path::Path;

use crate::persistence::temp::{TempFile, TempKind};

/// Longest line Redis accepts in a manifest.
const MAX_LINE: usize = 1024;

/// Largest seq Redis reads or writes (its file_seq is a long long).
pub const MAX_SEQ: u64 = i64::MAX as u64;

/// What a file listed in the manifest holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The base: an RDB preamble (`.base.rdb`) or commands (`.base.aof`).
    Base,
    /// A file replaced by a rewrite, waiting to be deleted; never loaded.
    History,
    /// Commands logged after the base.
    Incr,
}

impl FileKind {
    fn code(self) -> char {
        match self {
            FileKind::Base => 'b',
            FileKind::History => 'h',
            FileKind::Incr => 'i',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofFile {
    pub name: String,
    pub seq: u64,
    pub kind: FileKind,
}

/// The files of an AOF, in load order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofFile>,
    pub history: Vec<AofFile>,
    pub incrs: Vec<AofFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("manifest lists no base and no incr file")]
    Empty,
    #[error("manifest lists '{0}' twice")]
    Duplicate(String),
    #[error("manifest sequence number out of range: no file can follow seq {0}")]
    SeqOutOfRange(u64),
    #[error("manifest already lists '{0}'; a new file cannot take its name")]
    NameTaken(String),
}

/// Manifest errors met while opening or naming AOF files travel as I/O errors (invalid data),
/// with the manifest error as their source.
impl From<ManifestError> for std::io::Error {
    fn from(e: ManifestError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

fn line_error(line: usize, reason: impl Into<String>) -> ManifestError {
    ManifestError::Line {
        line,
        reason: reason.into(),
    }
}

/// A file name the manifest may hold: no directory parts, no spaces, quotes or control
/// characters (so it is written back without quoting and reads back the same).
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '"', '\''])
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Splits a line into words, honouring double quotes (Redis writes names with spaces quoted).
fn words(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(out);
        };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => word.push(chars.next()?),
                    c => word.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
}

impl Manifest {
    /// Parses a manifest's text.
    pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
        let mut manifest = Manifest::default();
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let number = i + 1;
            if raw.len() > MAX_LINE {
                return Err(line_error(number, "line too long"));
            }
            let line = std::str::from_utf8(raw)
                .map_err(|_| line_error(number, "not valid UTF-8"))?
                .trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = words(line).ok_or_else(|| line_error(number, "unbalanced quotes"))?;
            if words.len() % 2 != 0 {
                return Err(line_error(number, "expected key/value pairs"));
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for pair in words.chunks(2) {
                match pair[0].as_str() {
                    "file" => name = Some(pair[1].clone()),
                    "seq" => {
                        seq = Some(
                            pair[1]
                                .parse::<u64>()
                                .ok()
                                .filter(|n| (1..=MAX_SEQ).contains(n))
                                .ok_or_else(|| {
                                    line_error(
                                        number,
                                        format!("seq is not a number from 1 to {MAX_SEQ}"),
                                    )
                                })?,
                        )
                    }
                    "type" => {
                        kind = Some(match pair[1].as_str() {
                            "b" => FileKind::Base,
                            "h" => FileKind::History,
                            "i" => FileKind::Incr,
                            other => {
                                return Err(line_error(number, format!("unknown type '{other}'")))
                            }
                        })
                    }
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(line_error(number, "a line needs file, seq and type"));
            };
            if !plain_name(&name) {
                return Err(line_error(
                    number,
                    format!("'{name}' is not a plain file name"),
                ));
            }
            let file = AofFile { name, seq, kind };
            match kind {
                FileKind::Base if manifest.base.is_some() => {
                    return Err(line_error(number, "more than one base file"))
                }
                FileKind::Base => manifest.base = Some(file),
                FileKind::History => manifest.history.push(file),
                FileKind::Incr => {
                    if manifest.incrs.last().is_some_and(|last| last.seq >= seq) {
                        return Err(line_error(
                            number,
                            format!("incr seq {seq} does not follow the previous one"),
                        ));
                    }
                    manifest.incrs.push(file);
                }
            }
        }
        let mut names: Vec<&str> = manifest.files_to_load().map(|f| f.name.as_str()).collect();
        names.extend(manifest.history.iter().map(|f| f.name.as_str()));
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(ManifestError::Duplicate(pair[0].to_string()));
        }
        if manifest.base.is_none() && manifest.incrs.is_empty() {
            return Err(ManifestError::Empty);
        }
        Ok(manifest)
    }

    /// The manifest's text, as Redis writes it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in self.base.iter().chain(&self.history).chain(&self.incrs) {
            out.push_str(&format!(
                "file {} seq {} type {}\n",
                f.name,
                f.seq,
                f.kind.code()
            ));
        }
        out
    }

    /// Base then incr files: what loading reads.
    pub fn files_to_load(&self) -> impl Iterator<Item = &AofFile> {
        self.base.iter().chain(&self.incrs)
    }

    /// Moves the base and incr files to history (a rewrite replaced them).
    pub fn retire_all(&mut self) {
        let old = self.base.take().into_iter().chain(self.incrs.drain(..));
        self.history.extend(old.map(|mut f| {
            f.kind = FileKind::History;
            f
        }));
    }

    /// Moves the base and the incr files older than `seq` to history.
    pub fn retire_before(&mut self, incr_seq: u64) {
        let base = self.base.take();
        let (old, kept): (Vec<_>, Vec<_>) = self.incrs.drain(..).partition(|f| f.seq < incr_seq);
        self.incrs = kept;
        self.history
            .extend(base.into_iter().chain(old).map(|mut f| {
                f.kind = FileKind::History;
                f
            }));
    }

    /// Writes the manifest into `dir` as temp file, fsync, rename, fsync of the directory.
    pub fn persist(&self, dir: &Path, name: &str) -> std::io::Result<()> {
        let mut temp = TempFile::create(dir, TempKind::Manifest)?;
        temp.write_all(self.to_text().as_bytes())?;
        temp.persist(&dir.join(name))
    }

    /// The seq for a new file after `files`: one past the largest, refused past `MAX_SEQ`.
    pub fn next_seq<'a>(
        files: impl IntoIterator<Item = &'a AofFile>,
    ) -> Result<u64, ManifestError> {
        let last = files.into_iter().map(|f| f.seq).max().unwrap_or(0);
        last.checked_add(1)
            .filter(|&seq| seq <= MAX_SEQ)
            .ok_or(ManifestError::SeqOutOfRange(last))
    }

    /// True if the manifest lists a file of that name (a new file must not take it).
    pub fn lists(&self, name: &str) -> bool {
        self.files_to_load()
            .chain(&self.history)
            .any(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_redis_writes() {
        let text = b"file appendonly.aof.2.base.rdb seq 2 type b\n\
            file appendonly.aof.1.incr.aof seq 1 type h\n\
            file appendonly.aof.2.incr.aof seq 2 type i\n\
            file appendonly.aof.3.incr.aof seq 3 type i extra ignored\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.2.base.rdb");
        assert_eq!(m.history.len(), 1);
        assert_eq!(m.incrs.len(), 2);
        let names: Vec<_> = m.files_to_load().map(|f| f.seq).collect();
        assert_eq!(names, [2, 2, 3]);
        let again = Manifest::parse(m.to_text().as_bytes()).unwrap();
        assert_eq!(again.base, m.base);
        assert_eq!(again.incrs, m.incrs);
    }

    #[test]
    fn comments_quotes_and_blank_lines() {
        let m = Manifest::parse(b"# hello\n\nfile \"a b\" seq 1 type i\r\n");
        assert!(matches!(m, Err(ManifestError::Line { line: 3, .. })));
        let m = Manifest::parse(b"# hello\n\nfile \"ab\" seq 1 type i\r\n").unwrap();
        assert_eq!(m.incrs[0].name, "ab");
    }

    #[test]
    fn refuses_broken_manifests() {
        for (text, needle) in [
            (
                &b"file a seq 1 type b\nfile b seq 2 type b\n"[..],
                "more than one base",
            ),
            (
                b"file a seq 2 type i\nfile b seq 2 type i\n",
                "does not follow",
            ),
            (b"file a seq 1 type i\nfile a seq 2 type i\n", "twice"),
            (b"file ../x seq 1 type i\n", "not a plain file name"),
            (b"file /etc/passwd seq 1 type b\n", "not a plain file name"),
            (b"file a seq x type i\n", "seq"),
            (b"file a seq 1 type z\n", "unknown type"),
            (b"file a seq 1\n", "needs file, seq and type"),
            (b"file a seq\n", "key/value"),
            (b"file \"a seq 1 type i\n", "quotes"),
            (b"# only a comment\n", "no base"),
        ] {
            let err = Manifest::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
    }

    #[test]
    fn retiring_moves_files_to_history() {
        let mut m =
            Manifest::parse(b"file b1 seq 1 type b\nfile i1 seq 1 type i\nfile i2 seq 2 type i\n")
                .unwrap();
        m.retire_before(2);
        assert!(m.base.is_none());
        assert_eq!(m.history.len(), 2);
        assert_eq!(m.incrs.len(), 1);
        m.retire_all();
        assert_eq!(m.history.len(), 3);
        assert!(m.history.iter().all(|f| f.kind == FileKind::History));
    }
}
