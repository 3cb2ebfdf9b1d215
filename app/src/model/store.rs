//! Where the app keeps what it remembers: the caches' settings as RON in the user's config
//! dir (only the user may read it: it holds the access keys), each cache's files in a folder
//! of its own under the data dir. `--data-dir` (or CACHEDESK_DATA_DIR) puts both in one
//! folder, for tests and portable use. The file says which format it is in (`version`): one
//! written by an older version loads (a missing field takes a new cache's value), one written
//! by a newer version is left as it is, never saved over.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::validation::{folder_name_problem, name_problem};
use super::CacheSettings;

/// The environment variable that does what `--data-dir` does.
pub const DATA_DIR_ENV: &str = "CACHEDESK_DATA_DIR";

#[derive(Debug, Clone)]
pub struct Paths {
    /// The RON file of every cache's settings.
    pub settings: PathBuf,
    /// The folder that holds one folder per cache.
    pub data_root: PathBuf,
}

impl Paths {
    /// Everything under `dir`.
    pub fn in_dir(dir: &Path) -> Paths {
        Paths {
            settings: dir.join("caches.ron"),
            data_root: dir.join("caches"),
        }
    }

    /// The user's config and data dirs, as the platform names them.
    pub fn for_user() -> anyhow::Result<Paths> {
        let dirs = directories::ProjectDirs::from("dev", "CacheDesk", "CacheDesk")
            .context("this system has no home directory for the app's settings")?;
        Ok(Paths {
            settings: dirs.config_dir().join("caches.ron"),
            data_root: dirs.data_dir().join("caches"),
        })
    }

    /// A cache's own folder, always directly under `data_root`: a name that is not one plain
    /// path component is refused.
    pub fn cache_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        if let Some(problem) = folder_name_problem(name) {
            anyhow::bail!("{name:?} cannot be a cache's folder: {problem}");
        }
        Ok(self.data_root.join(name))
    }
}

/// The settings file's format as this version writes it. Raise it when an older version
/// would get a file in the new format wrong: a changed meaning, or a new field whose loss
/// matters (an older version ignores a field it does not know and drops it when it saves).
const FORMAT_VERSION: u32 = 1;

/// The format of a file without a version: the one before the field existed.
const UNVERSIONED: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
struct SettingsFile {
    version: u32,
    caches: Vec<CacheSettings>,
}

impl Default for SettingsFile {
    fn default() -> Self {
        SettingsFile {
            version: UNVERSIONED,
            caches: Vec::new(),
        }
    }
}

/// Only a settings file's version, read before the rest so that a newer format's other
/// fields are never parsed (or dropped by a save).
#[derive(Deserialize)]
#[serde(default)]
struct FileVersion {
    version: u32,
}

impl Default for FileVersion {
    fn default() -> Self {
        FileVersion {
            version: UNVERSIONED,
        }
    }
}

/// The version of the settings in `text` if a newer CacheDesk wrote them.
fn newer_version(text: &str) -> Option<u32> {
    ron::from_str::<FileVersion>(text)
        .ok()
        .map(|file| file.version)
        .filter(|&version| version > FORMAT_VERSION)
}

/// Why the settings were not saved.
#[derive(Debug)]
pub enum SaveError {
    /// The file there was written by a newer CacheDesk: replacing it would lose what only
    /// that version knows.
    Newer {
        path: PathBuf,
        version: u32,
    },
    Encode(ron::Error),
    Io {
        /// What was being done to `path` ("creating", "writing" ...).
        doing: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl std::fmt::Display for SaveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaveError::Newer { path, version } => write!(
                f,
                "{} was written by a newer CacheDesk (settings format {version}, this one knows up to {FORMAT_VERSION}) and is left as it is",
                path.display()
            ),
            SaveError::Encode(e) => write!(f, "encoding the settings: {e}"),
            SaveError::Io {
                doing,
                path,
                source,
            } => write!(f, "{doing} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for SaveError {}

/// Maps an I/O error of `doing` something to `path` into a `SaveError`.
fn io_error(doing: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SaveError {
    let path = path.to_path_buf();
    move |source| SaveError::Io {
        doing,
        path,
        source,
    }
}

/// What loading found: the caches, and messages for the user about what could not be used
/// (an unreadable file, caches left out).
#[derive(Debug, Default)]
pub struct Loaded {
    pub caches: Vec<CacheSettings>,
    pub problems: Vec<String>,
}

/// Reads the settings. An unreadable file is moved aside (never lost) and the app starts
/// with no caches, saying so; so does a file a newer CacheDesk wrote, which stays where it is
/// (`save` refuses to replace it). A cache whose name breaks the name rules (it could point
/// outside the data folder) is left out, saying why.
pub fn load(paths: &Paths) -> Loaded {
    let text = match std::fs::read_to_string(&paths.settings) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Loaded::default(),
        Err(e) => {
            return Loaded {
                caches: Vec::new(),
                problems: vec![format!(
                    "Cannot read {}: {e}. CacheDesk starts without caches.",
                    paths.settings.display()
                )],
            }
        }
    };
    if let Some(version) = newer_version(&text) {
        return Loaded {
            caches: Vec::new(),
            problems: vec![format!(
                "The settings file {} was written by a newer CacheDesk (settings format {version}, this one knows up to {FORMAT_VERSION}). It is left as it is and never saved over: CacheDesk starts without its caches, and caches created now are not remembered. Use the newer CacheDesk to see them.",
                paths.settings.display()
            )],
        };
    }
    match ron::from_str::<SettingsFile>(&text) {
        Ok(file) => {
            let mut loaded = Loaded::default();
            for cache in file.caches {
                let name = &cache.name;
                match folder_name_problem(name).or_else(|| name_problem(name)) {
                    None => loaded.caches.push(cache),
                    Some(problem) => loaded.problems.push(format!(
                        "Cache {name:?} in {} was skipped (and is left out when the settings are next saved): {problem}",
                        paths.settings.display()
                    )),
                }
            }
            loaded
        }
        Err(e) => {
            let aside = paths.settings.with_extension(format!(
                "ron.unreadable-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            ));
            let kept = match std::fs::rename(&paths.settings, &aside) {
                Ok(()) => format!("it was kept as {}", aside.display()),
                Err(re) => format!("it could not be moved aside ({re})"),
            };
            Loaded {
                caches: Vec::new(),
                problems: vec![format!(
                    "The settings file {} is unreadable ({e}); {kept}. CacheDesk starts without caches.",
                    paths.settings.display()
                )],
            }
        }
    }
}

/// Writes the settings in this version's format: a new temp file only the user may read
/// (mode 0600), synced, then renamed over the settings and the folder synced, so a crash
/// never leaves half a file and the file that replaces the old one is never wider than 0600.
/// A file a newer CacheDesk wrote is not replaced.
pub fn save(paths: &Paths, caches: &[CacheSettings]) -> Result<(), SaveError> {
    // A file that cannot be read here is replaced as before: only a version seen is kept.
    if let Some(version) = std::fs::read_to_string(&paths.settings)
        .ok()
        .and_then(|text| newer_version(&text))
    {
        return Err(SaveError::Newer {
            path: paths.settings.clone(),
            version,
        });
    }
    let file = SettingsFile {
        version: FORMAT_VERSION,
        caches: caches.to_vec(),
    };
    let text = ron::ser::to_string_pretty(&file, ron::ser::PrettyConfig::default())
        .map_err(SaveError::Encode)?;
    let dir = match paths.settings.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
    let temp = paths.settings.with_extension("ron.tmp");
    let mut out = create_temp(&temp).map_err(io_error("creating", &temp))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(io_error("writing", &temp))?;
    drop(out);
    std::fs::rename(&temp, &paths.settings).map_err(io_error("replacing", &paths.settings))?;
    sync_dir(dir).map_err(io_error("syncing", dir))
}

/// Creates `path` anew, never through what is there already: a temp file left by a crash (or
/// a symlink planted in its place) is removed, not followed, and the create tried once more.
fn create_temp(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            options.open(path)
        }
        opened => opened,
    }
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows cannot open a folder as a file; its renames need no folder sync.
#[cfg(not(unix))]
fn sync_dir(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Eviction, Persistence, Tag};

    fn sample() -> CacheSettings {
        CacheSettings {
            name: "orders".into(),
            sku: "Balanced_B1".into(),
            bind: "127.0.0.1".into(),
            port: 6390,
            access_keys: true,
            primary_key: "p".into(),
            secondary_key: "s".into(),
            eviction: Eviction::AllKeysLru,
            persistence: Persistence::Rdb(crate::model::BackupFrequency::SixHours),
            tags: vec![Tag {
                name: "team".into(),
                value: "web".into(),
            }],
            created: 1,
            running: true,
        }
    }

    #[test]
    fn settings_round_trip_and_bad_files_are_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::in_dir(dir.path());
        assert!(load(&paths).caches.is_empty());
        save(&paths, &[sample()]).unwrap();
        let loaded = load(&paths);
        assert_eq!(loaded.caches, vec![sample()]);
        assert!(loaded.problems.is_empty());

        std::fs::write(&paths.settings, "(caches: [ broken").unwrap();
        let loaded = load(&paths);
        assert!(loaded.caches.is_empty());
        let [problem] = loaded.problems.as_slice() else {
            panic!("one problem: {:?}", loaded.problems);
        };
        assert!(problem.contains("unreadable"), "{problem}");
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("unreadable"))
            .collect();
        assert_eq!(aside.len(), 1, "the bad file is kept");
        assert!(!paths.settings.exists());
    }

    /// The names of the files in `dir`.
    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// `sample()` as the release before the version field wrote it (its `save`, unchanged).
    const UNVERSIONED_FILE: &str = r#"(
    caches: [
        (
            name: "orders",
            sku: "Balanced_B1",
            bind: "127.0.0.1",
            port: 6390,
            access_keys: true,
            primary_key: "p",
            secondary_key: "s",
            eviction: AllKeysLru,
            persistence: Rdb(SixHours),
            tags: [
                (
                    name: "team",
                    value: "web",
                ),
            ],
            created: 1,
            running: true,
        ),
    ],
)"#;

    #[test]
    fn a_file_an_older_version_wrote_loads_with_defaults_for_what_it_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::in_dir(dir.path());
        std::fs::write(&paths.settings, UNVERSIONED_FILE).unwrap();
        let loaded = load(&paths);
        assert_eq!(loaded.caches, vec![sample()], "the release's file as it is");
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);

        // A version that did not know tags yet wrote no `tags`: the cache has none.
        let tags = r#"
            tags: [
                (
                    name: "team",
                    value: "web",
                ),
            ],"#;
        let older = UNVERSIONED_FILE.replace(tags, "");
        assert_ne!(older, UNVERSIONED_FILE, "the field was removed");
        std::fs::write(&paths.settings, &older).unwrap();
        let loaded = load(&paths);
        let untagged = CacheSettings {
            tags: Vec::new(),
            ..sample()
        };
        assert_eq!(loaded.caches, vec![untagged.clone()]);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(files_in(dir.path()), ["caches.ron"], "nothing moved aside");
        assert_eq!(std::fs::read_to_string(&paths.settings).unwrap(), older);

        // The next save writes this version's format, which loads the same.
        save(&paths, std::slice::from_ref(&untagged)).unwrap();
        let text = std::fs::read_to_string(&paths.settings).unwrap();
        assert_eq!(
            ron::from_str::<FileVersion>(&text).unwrap().version,
            FORMAT_VERSION,
            "{text}"
        );
        assert_eq!(load(&paths).caches, vec![untagged]);
    }

    #[test]
    fn missing_fields_take_a_new_caches_values() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::in_dir(dir.path());
        std::fs::write(
            &paths.settings,
            r#"(caches: [(name: "bare", tags: [(name: "team")])])"#,
        )
        .unwrap();
        let loaded = load(&paths);
        let [cache] = loaded.caches.as_slice() else {
            panic!("one cache: {:?}", loaded);
        };
        let new = CacheSettings::default();
        assert_eq!(cache.name, "bare");
        assert_eq!(cache.sku, new.sku);
        assert_eq!(cache.bind, new.bind);
        assert_eq!(cache.eviction, new.eviction);
        assert_eq!(cache.persistence, new.persistence);
        assert!(!cache.running, "a cache nobody said runs stays stopped");
        assert!(cache.access_keys);
        assert_eq!(
            cache.primary_key.len(),
            44,
            "a fresh key, never an empty one"
        );
        assert_ne!(cache.primary_key, cache.secondary_key);
        assert_eq!(
            cache.tags,
            [Tag {
                name: "team".into(),
                value: String::new()
            }]
        );
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    }

    #[test]
    fn a_file_a_newer_version_wrote_is_never_saved_over() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::in_dir(dir.path());
        let newer = FORMAT_VERSION + 1;
        // A format this version cannot read: a field it does not know, caches in a new shape.
        let text =
            format!(r#"(version: {newer}, caches: {{"orders": (shards: 3)}}, profiles: ["work"])"#);
        std::fs::write(&paths.settings, &text).unwrap();

        let loaded = load(&paths);
        assert!(loaded.caches.is_empty());
        let [problem] = loaded.problems.as_slice() else {
            panic!("one problem: {:?}", loaded.problems);
        };
        assert!(
            problem.contains("written by a newer CacheDesk"),
            "{problem}"
        );
        assert!(problem.contains(&format!("format {newer}")), "{problem}");

        let refused = save(&paths, &[sample()]);
        assert!(
            matches!(&refused, Err(SaveError::Newer { version, .. }) if *version == newer),
            "{refused:?}"
        );
        assert_eq!(std::fs::read_to_string(&paths.settings).unwrap(), text);
        assert_eq!(
            files_in(dir.path()),
            ["caches.ron"],
            "kept in place, no temp file"
        );

        // This version's own files, versioned or not, are saved over as before.
        for own in [format!("(version: {FORMAT_VERSION})"), "()".to_string()] {
            std::fs::write(&paths.settings, own).unwrap();
            save(&paths, &[sample()]).unwrap();
            assert_eq!(load(&paths).caches, vec![sample()]);
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_settings_file_is_0600_and_a_symlink_at_the_temp_path_is_not_followed() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::in_dir(dir.path());

        // An older file anyone could read becomes 0600 with the next save.
        std::fs::write(&paths.settings, "(caches: [])").unwrap();
        std::fs::set_permissions(&paths.settings, std::fs::Permissions::from_mode(0o644)).unwrap();
        save(&paths, &[sample()]).unwrap();
        assert_eq!(mode(&paths.settings), 0o600);

        // A symlink where the temp file goes: its target keeps its content, the settings are
        // a file of their own, and no temp file is left.
        let bait = dir.path().join("bait");
        std::fs::write(&bait, "bait").unwrap();
        std::fs::set_permissions(&bait, std::fs::Permissions::from_mode(0o644)).unwrap();
        let temp = paths.settings.with_extension("ron.tmp");
        std::os::unix::fs::symlink(&bait, &temp).unwrap();
        let mut renamed = sample();
        renamed.name = "orders-2".into();
        save(&paths, std::slice::from_ref(&renamed)).unwrap();
        assert_eq!(std::fs::read_to_string(&bait).unwrap(), "bait");
        assert_eq!(mode(&bait), 0o644);
        assert!(!std::fs::symlink_metadata(&paths.settings)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(mode(&paths.settings), 0o600);
        assert!(
            std::fs::symlink_metadata(&temp).is_err(),
            "no temp file left"
        );
        assert_eq!(load(&paths).caches, vec![renamed]);
    }

    #[test]
    fn caches_with_bad_names_are_skipped_saying_why() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::in_dir(dir.path());
        let named = |name: &str| CacheSettings {
            name: name.into(),
            ..sample()
        };
        let bad = ["../outside", "/etc", "..", "", "a\\b", "has space", "a--b"];
        let mut all = vec![named("good-1")];
        all.extend(bad.iter().map(|n| named(n)));
        all.push(named("good-2"));
        save(&paths, &all).unwrap();

        let loaded = load(&paths);
        assert_eq!(loaded.caches, vec![named("good-1"), named("good-2")]);
        assert_eq!(loaded.problems.len(), bad.len(), "{:?}", loaded.problems);
        for (name, problem) in bad.iter().zip(&loaded.problems) {
            assert!(
                problem.starts_with(&format!("Cache {name:?} in ")),
                "{name}: {problem}"
            );
            assert!(problem.contains("was skipped"), "{problem}");
        }
        assert!(
            loaded.problems[0].contains("path separator"),
            "{}",
            loaded.problems[0]
        );
        assert!(loaded.problems[5].contains("' '"), "{}", loaded.problems[5]);
    }

    #[test]
    fn a_cache_folder_is_always_directly_in_the_data_folder() {
        let paths = Paths::in_dir(Path::new("/data"));
        assert_eq!(
            paths.cache_dir("orders").unwrap(),
            Path::new("/data/caches/orders")
        );
        for bad in ["..", "../outside", "/etc", "a/b", ""] {
            let e = paths.cache_dir(bad).unwrap_err().to_string();
            assert!(e.contains("cannot be a cache's folder"), "{bad}: {e}");
        }
    }
}
