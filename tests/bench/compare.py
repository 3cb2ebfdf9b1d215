#!/usr/bin/env python3
"""Side-by-side benchmark of redis-server 7.0 and cachedesk-server, in one run.

Both servers start with the same settings (no persistence, loopback); redis-benchmark runs the
same tests against each, alternating servers and repeating, and the medians are compared.
Then both load the same 1M keys with 10-byte values and their used_memory and RSS are read, and
both hold 5,000 idle connections (connected only, then having sent one PING) to measure what an
idle client costs.

    python3 tests/bench/compare.py            # prints a Markdown table for the README
    REPEATS=5 REQUESTS=200000 python3 tests/bench/compare.py

Needs redis-server, redis-benchmark and redis-cli (Debian: redis-server, redis-tools) and
builds cachedesk-server in release mode. Figures are measured, never asserted.
"""

import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from common import (build_server, cli, free_port, pipe, redis_benchmark, redis_version, resp, rss,
                    start)

TESTS = ["set", "get", "incr", "lpush", "rpop", "sadd", "hset", "zadd", "mset", "lrange_100"]
REPEATS = int(os.environ.get("REPEATS", "3"))
REQUESTS = int(os.environ.get("REQUESTS", "100000"))
CLIENTS = 50
MEMORY_KEYS = int(os.environ.get("MEMORY_KEYS", "1000000"))
IDLE_CLIENTS = 5000


def bench(port, test, pipeline):
    requests = REQUESTS * (10 if pipeline > 1 else 1)
    return redis_benchmark(port, test, requests, pipeline=pipeline, clients=CLIENTS)


def load_keys(port):
    chunks = []
    for i in range(MEMORY_KEYS):
        key = f"key:{i:012d}"
        value = f"v{i:09d}"
        chunks.append(resp("SET", key, value))
    pipe(port, "".join(chunks).encode())


def memory_of(port, pid):
    info = cli(port, "INFO", "memory")
    used = next(int(l.split(":")[1]) for l in info.splitlines() if l.startswith("used_memory:"))
    return used, rss(pid)


def idle_client_cost(port, pid, ping):
    """RSS per idle connection: each connects (and with `ping` sends PING and reads PONG),
    then waits; measured after 3 s, so either server may shrink what it can."""
    def connect():
        s = socket.create_connection(("127.0.0.1", port))
        if ping:
            s.sendall(b"PING\r\n")
            assert s.recv(16) == b"+PONG\r\n"
        return s

    warm = [connect() for _ in range(50)]
    time.sleep(1)
    before = rss(pid)
    idle = [connect() for _ in range(IDLE_CLIENTS)]
    time.sleep(3)
    cost = (rss(pid) - before) / IDLE_CLIENTS
    for s in warm + idle:
        s.close()
    return cost


def idle_costs(workdir):
    """RSS per idle client on each server, each measurement on a fresh server (so no server
    reuses memory that earlier clients freed)."""
    costs = {}
    for ping in (False, True):
        for name in ("redis", "cachedesk"):
            port = free_port()
            proc = start(name, port, workdir)
            try:
                costs[(name, ping)] = idle_client_cost(port, proc.pid, ping)
            finally:
                proc.terminate()
                proc.wait()
    return costs


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 3 * IDLE_CLIENTS)), hard))
    build_server()
    version = redis_version()
    workdir = tempfile.mkdtemp(prefix="cachedesk-bench-")
    ports = {"redis": free_port(), "cachedesk": free_port()}
    procs = {name: start(name, port, workdir) for name, port in ports.items()}
    try:
        rows = []
        for pipeline in (1, 16):
            for test in TESTS:
                results = {"redis": [], "cachedesk": []}
                for _ in range(REPEATS):
                    for name in ("redis", "cachedesk"):
                        results[name].append(bench(ports[name], test, pipeline))
                r = statistics.median(results["redis"])
                c = statistics.median(results["cachedesk"])
                rows.append((test.upper(), pipeline, r, c, c / r))
                print(f"  {test:<10} P={pipeline:<2} redis {r:>11,.0f}  cachedesk {c:>11,.0f}  {c / r:.2f}x",
                      file=sys.stderr)
        memory = {}
        for name, port in ports.items():
            cli(port, "FLUSHALL")
            load_keys(port)
            memory[name] = memory_of(port, procs[name].pid)
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait()
    idle = idle_costs(workdir)

    print(f"Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
          f"redis-server {version}; redis-benchmark -c {CLIENTS} -r 100000, "
          f"{REQUESTS:,} requests (x10 with -P 16), median of {REPEATS} alternating runs.\n")
    print("| test | pipeline | redis-server req/s | cachedesk req/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for test, pipeline, r, c, ratio in rows:
        print(f"| {test} | {pipeline} | {r:,.0f} | {c:,.0f} | {ratio:.2f}x |")
    (ru, rr), (cu, cr) = memory["redis"], memory["cachedesk"]
    print(f"\nMemory for {MEMORY_KEYS:,} keys with 10-byte values:\n")
    print("| | redis-server | cachedesk | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| used_memory | {ru / 1e6:.1f} MB | {cu / 1e6:.1f} MB | {cu / ru:.2f}x |")
    print(f"| process RSS | {rr / 1e6:.1f} MB | {cr / 1e6:.1f} MB | {cr / rr:.2f}x |")
    for ping, what in ((False, "connected"), (True, "after one PING")):
        ri, ci = idle[("redis", ping)], idle[("cachedesk", ping)]
        print(f"| RSS per idle client, {what} ({IDLE_CLIENTS:,}) | {ri / 1e3:.2f} KB "
              f"| {ci / 1e3:.2f} KB | {ci / ri:.2f}x |")


if __name__ == "__main__":
    main()
