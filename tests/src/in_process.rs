//! Helpers for tests that run an engine Instance in the test process: a fresh folder for its
//! files, and commands given as words.

use std::path::PathBuf;

use bytes::Bytes;
use cachedesk_engine::{Instance, Reply};

/// An empty folder under the system's temp dir, unique to this test process and `name`.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cachedesk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

/// Runs one command, given as words, on database 0.
pub fn run(instance: &Instance, args: &[&str]) -> Reply {
    let args: Vec<Bytes> = args
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect();
    instance.execute(0, &args)
}
