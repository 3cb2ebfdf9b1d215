//! The real binary in a real window under Xvfb: it starts with a temporary data dir holding
//! one remembered cache, brings that cache up on its port (a client gets PONG), and on SIGTERM
//! closes the window, stops the cache gracefully (an RDB cache saves its dump) and exits 0.
//! Needs xvfb-run (Debian's xvfb): skipped where it is missing, required when CI=true.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn xvfb_available() -> bool {
    Command::new("xvfb-run")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn ping(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"PING\r\n").ok()?;
    let mut reply = [0u8; 16];
    let n = stream.read(&mut reply).ok()?;
    Some(String::from_utf8_lossy(&reply[..n]).into_owned())
}

#[test]
fn the_window_runs_under_xvfb_and_exits_cleanly_on_sigterm() {
    if !xvfb_available() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "xvfb-run is not installed, and CI=true requires it (.ci/run installs xvfb)"
        );
        eprintln!("skipped: xvfb-run not on PATH");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    std::fs::write(
        dir.path().join("caches.ron"),
        format!(
            r#"(caches: [(name: "smoke", sku: "Balanced_B0", bind: "127.0.0.1", port: {port},
                access_keys: false, primary_key: "", secondary_key: "", eviction: NoEviction,
                persistence: Rdb(Hourly), tags: [], created: 0, running: true)])"#
        ),
    )
    .expect("settings");
    let mut child = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x800x24"])
        .arg(env!("CARGO_BIN_EXE_cachedesk"))
        .arg("--data-dir")
        .arg(dir.path())
        .env("WGPU_BACKEND", "gl")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xvfb-run starts");

    let deadline = Instant::now() + Duration::from_secs(60);
    while ping(port).as_deref() != Some("+PONG\r\n") {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("the app exited early ({status}):\n{err}");
        }
        assert!(
            Instant::now() < deadline,
            "the remembered cache never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A few seconds of the window running.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the app is still running"
    );

    let data_dir = dir.path().display().to_string();
    // The app itself, not xvfb-run, whose command line holds the same words later on.
    let app = format!("^{} --data-dir {data_dir}", env!("CARGO_BIN_EXE_cachedesk"));
    let killed = Command::new("pkill")
        .args(["-TERM", "-f", &app])
        .status()
        .expect("pkill runs");
    assert!(killed.success(), "found the app's process");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the app did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert!(status.success(), "exit status {status}:\n{err}");
    assert!(
        dir.path().join("caches/smoke/dump.rdb").exists(),
        "the graceful stop saved the RDB cache's dump"
    );
    assert!(ping(port).is_none(), "the cache stopped with the app");
}
