//! Starting servers for tests: cachedesk-server (the headless binary) and Debian's
//! redis-server 7.0, each on a free loopback port in a temporary directory, killed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True if redis-server is on PATH.
pub fn redis_server_available() -> bool {
    which("redis-server").is_some()
}

/// Finds a program on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// Whether a test needing redis-server (and its tools) should run: prints "skipped" and
/// returns false where it is missing, but panics when CI=true, where it must be present.
pub fn require_redis_server(test: &str) -> bool {
    if redis_server_available() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: redis-server not on PATH, and CI=true requires it (.ci/run installs it)");
    }
    eprintln!("{test}: skipped: redis-server not on PATH");
    false
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The cachedesk-server binary built next to the test executables.
pub fn cachedesk_server_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> → target/<profile>/cachedesk-server
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = profile_dir.join("cachedesk-server");
    assert!(
        path.is_file(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        path.display()
    );
    path
}

/// A server process on a loopback port, killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    program: PathBuf,
    args: Vec<String>,
}

impl ServerProcess {
    /// Starts `program` with `--port <free>` plus `args`, in a fresh temporary directory, and
    /// waits until it accepts connections.
    pub fn start(program: &std::path::Path, args: &[&str]) -> ServerProcess {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("cachedesk-test-{}-{port}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = spawn(program, &args, addr, &dir);
        ServerProcess {
            child,
            addr,
            dir,
            program: program.to_path_buf(),
            args,
        }
    }

    /// Kills the process at once (SIGKILL: no shutdown save, no final fsync).
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same program again with the same options, port and directory.
    pub fn restart(&mut self) {
        self.kill_hard();
        self.child = spawn(&self.program, &self.args, self.addr, &self.dir);
    }

    /// redis-server 7.0 with persistence off, as the differential tests want it.
    pub fn redis(extra: &[&str]) -> ServerProcess {
        let path = which("redis-server").unwrap_or_else(|| PathBuf::from("redis-server"));
        let mut args = vec!["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"];
        args.extend_from_slice(extra);
        ServerProcess::start(&path, &args)
    }

    /// cachedesk-server with automatic saves off (as `redis` above); `extra` may turn them on.
    pub fn cachedesk(extra: &[&str]) -> ServerProcess {
        let mut args = vec!["--save", ""];
        args.extend_from_slice(extra);
        ServerProcess::start(&cachedesk_server_path(), &args)
    }
}

/// Spawns a server in `dir` on `addr`'s port and waits until it accepts connections.
fn spawn(
    program: &std::path::Path,
    args: &[String],
    addr: SocketAddr,
    dir: &std::path::Path,
) -> Child {
    let mut child = Command::new(program)
        .arg("--port")
        .arg(addr.port().to_string())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{} exited before listening: {status}", program.display());
        }
        assert!(
            Instant::now() < deadline,
            "{} did not start listening on {addr}",
            program.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
