#!/usr/bin/env python3
"""RDB persistence, side by side: redis-server 7.0 and cachedesk-server in one run.

For each server, with the same 1M keys of mixed types:
  - save time: SAVE (foreground) and BGSAVE (until rdb_bgsave_in_progress is 0);
  - load time: restart on the dump, until the first command is answered without -LOADING;
  - p99 latency of redis-benchmark SET/GET while background saves run back to back, beside
    the same benchmark with no save running;
  - extra memory during a background save under that write load: Redis's copy-on-write peak
    (INFO rdb_last_cow_size / current_cow_peak) versus the rise of cachedesk-server's RSS.

    python3 tests/bench/persistence.py           # prints Markdown tables for the README
    KEYS=200000 python3 tests/bench/persistence.py

Figures are measured, never asserted.
"""

import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from common import (Conn, build_server, cli, free_port, info_field, pipe, redis_benchmark,
                    redis_version, resp, rss, start)

KEYS = int(os.environ.get("KEYS", "1000000"))
REPEATS = int(os.environ.get("REPEATS", "3"))
BENCH_REQUESTS = int(os.environ.get("BENCH_REQUESTS", "300000"))


def dataset():
    """1M keys: 70% strings (10-100 bytes), 10% hashes, 10% lists, 5% sets, 5% sorted sets."""
    rng = random.Random(7)
    out = []
    for i in range(KEYS):
        kind = i % 20
        if kind < 14:
            out.append(resp("SET", f"s:{i}", "v" * rng.randint(10, 100)))
        elif kind < 16:
            out.append(resp("HSET", f"h:{i}", "a", i, "b", "text", "c", rng.random()))
        elif kind < 18:
            out.append(resp("RPUSH", f"l:{i}", "x", "y", i, "zzzzzzzz"))
        elif kind == 18:
            out.append(resp("SADD", f"set:{i}", 1, 2, 3, i))
        else:
            out.append(resp("ZADD", f"z:{i}", 1, "a", 2.5, "b", i, "c"))
    return "".join(out).encode()


def timed(fn):
    start_time = time.perf_counter()
    fn()
    return time.perf_counter() - start_time


def bgsave_and_wait(port):
    conn = Conn(port)
    conn.command("BGSAVE")
    while conn.info_field("persistence", "rdb_bgsave_in_progress") == "1":
        time.sleep(0.01)
    conn.close()


def wait_loaded(port):
    conn = Conn(port)
    while str(conn.command("PING")).startswith("LOADING"):
        time.sleep(0.01)
    conn.close()


def load_time(name, workdir, *extra):
    port = free_port()
    t0 = time.perf_counter()
    proc = start(name, port, workdir, *extra)
    while True:
        reply = subprocess.run(["redis-cli", "-p", str(port), "DBSIZE"], capture_output=True,
                               text=True).stdout
        if not reply.startswith("LOADING") and reply.strip().isdigit():
            elapsed = time.perf_counter() - t0
            keys = int(reply)
            break
        time.sleep(0.002)
    proc.terminate()
    proc.wait()
    return elapsed, keys


def latency_p99(port, test):
    return redis_benchmark(port, test, BENCH_REQUESTS, keyspace=KEYS, column=6)


def with_saves(port, body):
    """Runs body() while background saves run back to back; returns (result, saves)."""
    stop = threading.Event()
    saves = [0]

    def saver():
        while not stop.is_set():
            bgsave_and_wait(port)
            saves[0] += 1

    thread = threading.Thread(target=saver)
    thread.start()
    try:
        result = body()
    finally:
        stop.set()
        thread.join()
    return result, saves[0]


def extra_memory(name, port, pid):
    """Peak extra memory of one background save under a SET load."""
    base = rss(pid)
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss(pid))
            time.sleep(0.002)

    load = subprocess.Popen(["redis-benchmark", "-p", str(port), "-n", "10000000", "-c", "50",
                             "-r", str(KEYS), "-t", "set", "-q"], stdout=subprocess.DEVNULL)
    sampler = threading.Thread(target=sample)
    sampler.start()
    time.sleep(0.3)
    bgsave_and_wait(port)
    stop.set()
    sampler.join()
    load.terminate()
    load.wait()
    if name == "redis":
        return int(info_field(port, "persistence", "rdb_last_cow_size"))
    return peak[0] - base


def main():
    build_server()
    version = redis_version()
    payload = dataset()
    rows = {}
    for name in ("redis", "cachedesk"):
        workdir = tempfile.mkdtemp(prefix=f"cachedesk-bench-{name}-")
        port = free_port()
        proc = start(name, port, workdir)
        pipe(port, payload)
        used = int(info_field(port, "memory", "used_memory"))
        save = statistics.median(timed(lambda: cli(port, "SAVE")) for _ in range(REPEATS))
        bgsave = statistics.median(timed(lambda: bgsave_and_wait(port)) for _ in range(REPEATS))
        size = os.path.getsize(os.path.join(workdir, "dump.rdb"))
        proc.terminate()
        proc.wait()
        # Load the dump just written (the same 1M keys for both servers).
        loads = [load_time(name, workdir) for _ in range(REPEATS)]
        load = statistics.median(t for t, _ in loads)
        port = free_port()
        proc = start(name, port, workdir)
        wait_loaded(port)
        p99 = {}
        for test in ("set", "get"):
            quiet = statistics.median(latency_p99(port, test) for _ in range(REPEATS))
            during, saves = with_saves(port, lambda: statistics.median(
                latency_p99(port, test) for _ in range(REPEATS)))
            p99[test] = (quiet, during, saves)
        extra = extra_memory(name, port, proc.pid)
        proc.terminate()
        proc.wait()
        rows[name] = dict(used=used, save=save, bgsave=bgsave, size=size, load=load,
                          loaded=loads[0][1], p99=p99, extra=extra)
        print(f"  {name}: {rows[name]}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)

    r, c = rows["redis"], rows["cachedesk"]
    print(f"Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
          f"redis-server {version}; {KEYS:,} keys of mixed types (70% strings, 10% hashes, "
          f"10% lists, 5% sets, 5% sorted sets), median of {REPEATS}.\n")
    print("| | redis-server | cachedesk | cachedesk vs Redis |")
    print("|---|---:|---:|---:|")
    print(f"| used_memory | {r['used'] / 1e6:.0f} MB | {c['used'] / 1e6:.0f} MB | {c['used'] / r['used']:.2f}x |")
    print(f"| dump size | {r['size'] / 1e6:.1f} MB | {c['size'] / 1e6:.1f} MB | {c['size'] / r['size']:.2f}x |")
    print(f"| SAVE | {r['save']:.2f} s | {c['save']:.2f} s | {r['save'] / c['save']:.2f}x faster |")
    print(f"| BGSAVE | {r['bgsave']:.2f} s | {c['bgsave']:.2f} s | {r['bgsave'] / c['bgsave']:.2f}x faster |")
    print(f"| load on start | {r['load']:.2f} s | {c['load']:.2f} s | {r['load'] / c['load']:.2f}x faster |")
    for test in ("set", "get"):
        (rq, rd, rs), (cq, cd, cs) = r["p99"][test], c["p99"][test]
        print(f"| {test.upper()} p99, no save | {rq:.3f} ms | {cq:.3f} ms | {cq / rq:.2f}x |")
        print(f"| {test.upper()} p99, saves running ({rs} / {cs} saves) | {rd:.3f} ms | {cd:.3f} ms | {cd / rd:.2f}x |")
    print(f"| extra memory during a save under SET load | {r['extra'] / 1e6:.1f} MB (copy-on-write) "
          f"| {c['extra'] / 1e6:.1f} MB (RSS rise) | {c['extra'] / max(c['used'], 1) * 100:.1f}% of data |")


if __name__ == "__main__":
    main()
