//! Where the app keeps what it remembers: the caches' settings as RON in the user's config
//! dir, each cache's files in a folder of its own under the data dir. `--data-dir` (or
//! CACHEDESK_DATA_DIR) puts both in one folder, for tests and portable use.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

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

    /// A cache's own folder.
    pub fn cache_dir(&self, name: &str) -> PathBuf {
        self.data_root.join(name)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SettingsFile {
    caches: Vec<CacheSettings>,
}

/// What loading found: the caches, and a message for the user if the file was unreadable.
#[derive(Debug, Default)]
pub struct Loaded {
    pub caches: Vec<CacheSettings>,
    pub problem: Option<String>,
}

/// Reads the settings. An unreadable file is moved aside (never lost) and the app starts
/// with no caches, saying so.
pub fn load(paths: &Paths) -> Loaded {
    let text = match std::fs::read_to_string(&paths.settings) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::default(),
        Err(e) => {
            return Loaded {
                caches: Vec::new(),
                problem: Some(format!(
                    "Cannot read {}: {e}. CacheDesk starts without caches.",
                    paths.settings.display()
                )),
            }
        }
    };
    match ron::from_str::<SettingsFile>(&text) {
        Ok(file) => Loaded {
            caches: file.caches,
            problem: None,
        },
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
                problem: Some(format!(
                    "The settings file {} is unreadable ({e}); {kept}. CacheDesk starts without caches.",
                    paths.settings.display()
                )),
            }
        }
    }
}

/// Writes the settings: temp file, then rename, so a crash never leaves half a file.
pub fn save(paths: &Paths, caches: &[CacheSettings]) -> anyhow::Result<()> {
    let file = SettingsFile {
        caches: caches.to_vec(),
    };
    let text = ron::ser::to_string_pretty(&file, ron::ser::PrettyConfig::default())
        .context("encoding the settings")?;
    if let Some(dir) = paths.settings.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let temp = paths.settings.with_extension("ron.tmp");
    std::fs::write(&temp, text).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, &paths.settings)
        .with_context(|| format!("replacing {}", paths.settings.display()))
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
        assert!(loaded.problem.is_none());

        std::fs::write(&paths.settings, "(caches: [ broken").unwrap();
        let loaded = load(&paths);
        assert!(loaded.caches.is_empty());
        let problem = loaded.problem.unwrap();
        assert!(problem.contains("unreadable"), "{problem}");
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("unreadable"))
            .collect();
        assert_eq!(aside.len(), 1, "the bad file is kept");
        assert!(!paths.settings.exists());
    }
}
