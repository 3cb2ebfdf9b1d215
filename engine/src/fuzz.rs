//! Entry points for fuzzing untrusted bytes (used by the cargo-fuzz targets in fuzz/ and by
//! the test that replays their corpora). Each must never panic, whatever the input.

use bytes::BytesMut;

use crate::commands::{self, Ctx};
use crate::config::InstanceConfig;
use crate::instance::client::{ClientInfo, ClientState};
use crate::instance::Shared;
use crate::protocol::{Request, RequestParser};

/// Feeds `data` to the request parser in pieces (sizes taken from the data itself), as a
/// connection's reads would arrive, until it errors or runs dry.
pub fn resp_parser(data: &[u8]) {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    for chunk in data.chunks(step) {
        buf.extend_from_slice(chunk);
        parser.peek_keys(&buf, 8, &mut Vec::new());
        loop {
            match parser.next_request(&mut buf, true) {
                Ok(Some(args)) => assert!(!args.is_empty()),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// Parses `data` as requests and runs them all against a fresh in-memory instance (no
/// network), so that command handlers see arbitrary arguments.
pub fn commands(data: &[u8]) {
    let config = InstanceConfig {
        busy_reply_threshold_ms: 100,
        ..InstanceConfig::default()
    };
    let shared = Shared::new(config);
    // A script that loops is stopped as a client's SCRIPT KILL would stop it.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let (status, done) = (shared.script_status.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(20));
                if status.timed_out() {
                    status.kill(true);
                }
            }
        })
    };
    let info = std::sync::Arc::new(ClientInfo::new(1, local(), local(), Default::default()));
    let mut client = ClientState::new(info, true);
    let mut parser = RequestParser::new();
    let mut out = crate::protocol::Output::new();
    while let Ok(Some(request)) = parser.parse(data, client.authenticated) {
        let mut args = Vec::new();
        let words;
        match request {
            Request::Multibulk => parser.args(data, &[], &mut args),
            Request::Inline(inline) => {
                words = inline;
                args = commands::arg_slices(&words);
            }
        }
        let name = String::from_utf8_lossy(args[0]).to_ascii_lowercase();
        // Commands that wait on purpose or stop the instance are not interesting here.
        if matches!(name.as_str(), "debug" | "shutdown") {
            continue;
        }
        let mut ks = shared.keyspace.lock();
        let mut ctx = Ctx::new(&mut ks, &mut client, &shared);
        commands::execute(&mut ctx, &args).encode(&mut out, client.resp3);
        out.clear();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watchdog.join();
}

fn local() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Reads `data` as an RDB file to the end, and as a RESTORE payload.
pub fn rdb_reader(data: &[u8]) {
    use crate::persistence::rdb::{restore_payload, RdbReader};
    if let Ok(mut reader) = RdbReader::new(data, data.len() as u64) {
        while let Ok(Some(_)) = reader.next_key() {}
    }
    let _ = restore_payload(data);
}

/// Replays `data` as an AOF file (commands in RESP, as an incr file or a `.base.aof` holds
/// them) into a fresh keyspace.
pub fn aof_loader(data: &[u8]) {
    let shared = Shared::new(InstanceConfig::default());
    let _ = crate::persistence::aof::load::replay_bytes(&shared, data);
}

/// Parses `data` as a multi-part AOF manifest; what parses must print and parse back alike.
pub fn aof_manifest(data: &[u8]) {
    use crate::persistence::aof::manifest::Manifest;
    if let Ok(manifest) = Manifest::parse(data) {
        let again = Manifest::parse(manifest.to_text().as_bytes());
        assert_eq!(
            again.as_ref(),
            Ok(&manifest),
            "a manifest reads back as written"
        );
    }
}
