//! Where the app keeps what it remembers: the caches' settings as RON in the user's config
//! dir (only the user may read it: it holds the access keys), each cache's files in a folder
//! of its own under the data dir. `--data-dir` (or CACHEDESK_DATA_DIR) puts both in one
//! folder, for tests and portable use.

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

#[derive(Debug, Default, Serialize, Deserialize)]
struct SettingsFile {
    caches: Vec<CacheSettings>,
}

/// What loading found: the caches, and messages for the user about what could not be used
/// (an unreadable file, caches left out).
#[derive(Debug, Default)]
pub struct Loaded {
    pub caches: Vec<CacheSettings>,
    pub problems: Vec<String>,
}

/// Reads the settings. An unreadable file is moved aside (never lost) and the app starts
/// with no caches, saying so. A cache whose name breaks the name rules (it could point
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

/// Writes the settings: a new temp file only the user may read (mode 0600), synced, then
/// renamed over the settings and the folder synced, so a crash never leaves half a file and
/// the file that replaces the old one is never wider than 0600.
pub fn save(paths: &Paths, caches: &[CacheSettings]) -> anyhow::Result<()> {
    let file = SettingsFile {
        caches: caches.to_vec(),
    };
    let text = ron::ser::to_string_pretty(&file, ron::ser::PrettyConfig::default())
        .context("encoding the settings")?;
    let dir = match paths.settings.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let temp = paths.settings.with_extension("ron.tmp");
    let mut out = create_temp(&temp).with_context(|| format!("creating {}", temp.display()))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .with_context(|| format!("writing {}", temp.display()))?;
    drop(out);
    std::fs::rename(&temp, &paths.settings)
        .with_context(|| format!("replacing {}", paths.settings.display()))?;
    sync_dir(dir).with_context(|| format!("syncing {}", dir.display()))
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
