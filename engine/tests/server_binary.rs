//! The cachedesk-server binary: redis-server-style options, clear errors for bad ones, clean
//! shutdown on SIGTERM and on SHUTDOWN. (Its presence also makes `cargo test` build the
//! binary that the end-to-end tests in tests/ start.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cachedesk-server");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("server did not come up: {e}"),
        }
    }
}

fn roundtrip(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cachedesk-bin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn options_apply_and_sigterm_saves_and_shuts_down_cleanly() {
    let port = free_port();
    let dir = temp_dir("sigterm");
    let mut child = Command::new(BIN)
        .args([
            "--port",
            &port.to_string(),
            "--dir",
            dir.to_str().unwrap(),
            "--maxmemory",
            "10mb",
            "--maxmemory-policy",
            "allkeys-lru",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut s = connect(port);
    let reply = roundtrip(
        &mut s,
        b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$16\r\nmaxmemory-policy\r\n",
    );
    assert_eq!(reply, "*2\r\n");
    assert_eq!(roundtrip(&mut s, b"SET kept 1\r\n"), "+OK\r\n");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("ready to accept connections"), "{log}");
    // With save points set (redis-server's defaults), stopping saved the data; a restart on
    // the same directory loads it.
    assert!(dir.join("dump.rdb").is_file());
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["--port", &port.to_string(), "--dir", dir.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut s = connect(port);
    let mut reply = roundtrip(&mut s, b"GET kept\r\n");
    while reply.starts_with("-LOADING") {
        std::thread::sleep(Duration::from_millis(10));
        reply = roundtrip(&mut s, b"GET kept\r\n");
    }
    assert_eq!(reply, "$1\r\n");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dump_that_fails_to_load_stops_the_server_with_the_reason() {
    let dir = temp_dir("corrupt");
    let dump = dir.join("dump.rdb");
    std::fs::write(&dump, b"REDIS0010\xfe\x00\x00\x03key\x80\xff\xff\xff\xf0").unwrap();
    let out = Command::new(BIN)
        .args([
            "--port",
            &free_port().to_string(),
            "--dir",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("cannot load the data") && log.contains("offset"),
        "{log}"
    );
    assert_eq!(
        std::fs::read(&dump).unwrap(),
        b"REDIS0010\xfe\x00\x00\x03key\x80\xff\xff\xff\xf0",
        "file untouched"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shutdown_command_stops_the_process() {
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["--port", &port.to_string(), "--save", ""])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut s = connect(port);
    roundtrip(&mut s, b"SHUTDOWN NOSAVE\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(Instant::now() < deadline, "still running after SHUTDOWN");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_options_are_refused_with_a_reason() {
    let out = Command::new(BIN)
        .args(["--no-such-option", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option --no-such-option"));
    let out = Command::new(BIN)
        .args(["--maxmemory-policy", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("maxmemory-policy"));
}
