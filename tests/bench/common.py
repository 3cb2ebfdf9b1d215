"""Helpers shared by the benchmark scripts: starting redis-server 7.0 and cachedesk-server
with the same settings, talking to them with redis-cli, reading memory figures."""

import os
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVER = os.path.join(ROOT, "target", "release", "cachedesk-server")


def build_server():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "cachedesk-engine", "--bin",
                    "cachedesk-server"], cwd=ROOT, check=True)


def redis_version():
    return subprocess.run(["redis-server", "--version"], capture_output=True,
                          text=True).stdout.split()[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port):
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    sys.exit(f"server on port {port} did not start")


def start(name, port, workdir, *extra):
    """Starts one server with automatic saves off, its files in `workdir`."""
    common = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir]
    if name == "redis":
        cmd = ["redis-server", *common, "--appendonly", "no", *extra]
    else:
        cmd = [SERVER, *common, *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port)
    return proc


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                          check=True).stdout


def info_field(port, section, field):
    for line in cli(port, "INFO", section).splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(field)


def pipe(port, payload):
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=payload, capture_output=True,
                   check=True)


def resp(*args):
    out = [f"*{len(args)}\r\n"]
    for a in args:
        a = str(a)
        out.append(f"${len(a.encode())}\r\n{a}\r\n")
    return "".join(out)


def rss(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Conn:
    """One persistent connection (polling through redis-cli would spawn a process each time,
    and those spawns alone disturb latency figures on a small machine)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")

    def command(self, *args):
        self.sock.sendall(resp(*args).encode())
        return self._reply()

    def _reply(self):
        line = self.file.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-"):
            return rest.decode()
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.file.read(n + 2)[:-2]
            return data.decode(errors="replace")
        if kind == b"*":
            return [self._reply() for _ in range(int(rest))]
        raise RuntimeError(f"unexpected reply {line!r}")

    def info_field(self, section, field):
        for line in self.command("INFO", section).splitlines():
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
        raise KeyError(field)

    def close(self):
        self.sock.close()


def redis_benchmark(port, test, requests, *, pipeline=1, clients=50, keyspace=100000,
                    column=1):
    """Runs one redis-benchmark test and returns a column of its CSV line (1: requests per
    second, 6: p99 latency in ms)."""
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", str(clients),
         "-P", str(pipeline), "-r", str(keyspace), "-t", test, "--csv", "-q"],
        capture_output=True, text=True, check=True).stdout
    # Some tests print a preparation step first ("LPUSH (needed to benchmark LRANGE)"): take
    # the line of the test asked for.
    for line in out.splitlines():
        fields = [f.strip('"') for f in line.split(",")]
        if len(fields) > column and fields[0].upper().startswith(test.upper()):
            return float(fields[column])
    raise RuntimeError(f"no result for {test}: {out}")


def cpu_seconds(pid):
    """User plus system CPU time a process has used so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        # Fields after the command name (which may hold spaces, so split after its ")").
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def benchmark_command(port, pid, command, requests, *, pipeline=1, clients=50,
                      keyspace=1_000_000):
    """Runs redis-benchmark on one arbitrary command; returns requests per second and the
    server's CPU microseconds per request (what tells two servers apart when the benchmark
    client, not the server, is the limit)."""
    cpu_before = cpu_seconds(pid)
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", str(clients),
         "-P", str(pipeline), "-r", str(keyspace), "--csv", "-q", *command],
        capture_output=True, text=True, check=True).stdout
    cpu_us = (cpu_seconds(pid) - cpu_before) * 1e6 / requests
    # The rps field, counted from the end: the command text itself may hold commas.
    line = out.strip().splitlines()[-1]
    return float(line.rsplit(",", 7)[1].strip('"')), cpu_us


def rate_row(label, pipeline, results):
    """One table row from each server's (requests/s, CPU µs/request) runs: the medians,
    also printed as they come."""
    r, c = (statistics.median(x[0] for x in results[n]) for n in ("redis", "cachedesk"))
    r_cpu, c_cpu = (statistics.median(x[1] for x in results[n]) for n in ("redis", "cachedesk"))
    print(f"  {label:<27} P={pipeline:<2} redis {r:>11,.0f}  cachedesk {c:>11,.0f}"
          f"  {c / r:.2f}x; CPU/request {r_cpu:.2f} / {c_cpu:.2f} us ({r_cpu / c_cpu:.2f}x)",
          file=sys.stderr)
    return (label, pipeline, r, c, r_cpu, c_cpu)


def print_rate_table(rows):
    """The README table of `rate_row` rows."""
    print("| command | pipeline | redis-server req/s | cachedesk req/s | ratio | server CPU µs/request redis / cachedesk | CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, pipeline, r, c, r_cpu, c_cpu in rows:
        print(f"| {label} | {pipeline} | {r:,.0f} | {c:,.0f} | {c / r:.2f}x | "
              f"{r_cpu:.2f} / {c_cpu:.2f} | {r_cpu / c_cpu:.2f}x |")


def start_xvfb(display):
    """Starts Xvfb on `display`; returns the process and an environment for programs that
    draw on it (through wgpu's GL backend)."""
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24"],
                            stderr=subprocess.DEVNULL)
    time.sleep(1)
    return xvfb, dict(os.environ, DISPLAY=display, WGPU_BACKEND="gl")
