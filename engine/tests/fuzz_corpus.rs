//! Replays the fuzz targets' seed corpora (fuzz/corpus/<target>/*) as an ordinary test, so
//! every input that ever mattered keeps being checked without cargo-fuzz.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // Each input also runs through the other target, and byte by byte prefixes of it.
        run(&data);
        for cut in [1, data.len() / 2, data.len().saturating_sub(1)] {
            run(&data[..cut.min(data.len())]);
        }
        count += 1;
    }
    assert!(count >= 3, "expected seed inputs in {}", dir.display());
}

#[test]
fn resp_parser_corpus() {
    replay("resp_parser", cachedesk_engine::fuzz::resp_parser);
    replay("commands", cachedesk_engine::fuzz::resp_parser);
}

#[test]
fn commands_corpus() {
    replay("commands", cachedesk_engine::fuzz::commands);
    replay("resp_parser", cachedesk_engine::fuzz::commands);
}

#[test]
fn rdb_reader_corpus() {
    replay("rdb_reader", cachedesk_engine::fuzz::rdb_reader);
}

#[test]
fn aof_loader_corpus() {
    replay("aof_loader", cachedesk_engine::fuzz::aof_loader);
    replay("commands", cachedesk_engine::fuzz::aof_loader);
}

#[test]
fn aof_manifest_corpus() {
    replay("aof_manifest", cachedesk_engine::fuzz::aof_manifest);
}
