#!/usr/bin/env python3
"""AOF persistence, side by side: redis-server 7.0 and cachedesk-server in one run, both with
appendonly yes and appendfsync everysec (the portal's AOF), automatic rewrites off.

  - throughput: redis-benchmark SET, INCR, LPUSH (-c 50, -r 100000) without pipelining and
    with -P 16, alternating servers, median of REPEATS;
  - rewrite: the same 1M keys of mixed types loaded into each, then BGREWRITEAOF timed until
    aof_rewrite_in_progress is 0 again;
  - load: each server restarted on the directory its rewrite left, timed until the first
    command is answered without -LOADING.

    python3 tests/bench/aof.py            # prints Markdown tables for the README
    KEYS=200000 REPEATS=1 python3 tests/bench/aof.py

Figures are measured, never asserted.
"""

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import Conn, build_server, free_port, pipe, redis_version, start
from compare import bench
from persistence import KEYS, dataset, load_time, timed

REPEATS = int(os.environ.get("REPEATS", "3"))
TESTS = ["set", "incr", "lpush"]
AOF = ["--appendonly", "yes", "--appendfsync", "everysec", "--auto-aof-rewrite-percentage", "0"]


def start_aof(name, workdir):
    port = free_port()
    return port, start(name, port, workdir, *AOF)


def rewrite_and_wait(port):
    conn = Conn(port)
    done = int(conn.info_field("persistence", "aof_rewrites"))
    conn.command("BGREWRITEAOF")
    while (conn.info_field("persistence", "aof_rewrite_in_progress") == "1"
           or int(conn.info_field("persistence", "aof_rewrites")) == done):
        time.sleep(0.005)
    conn.close()


def stop(proc):
    proc.terminate()
    proc.wait()


def throughput():
    """{(test, pipeline): {name: req/s}}, servers alternating within each repeat."""
    servers = {}
    for name in ("redis", "cachedesk"):
        workdir = tempfile.mkdtemp(prefix=f"cachedesk-aof-bench-{name}-")
        servers[name] = (workdir, *start_aof(name, workdir))
    runs = {}
    try:
        for pipeline in (1, 16):
            for test in TESTS:
                for _ in range(REPEATS):
                    for name, (_, port, _) in servers.items():
                        runs.setdefault((test, pipeline), {}).setdefault(name, []).append(
                            bench(port, test, pipeline))
                print(f"  {test} -P {pipeline}: {runs[(test, pipeline)]}", file=sys.stderr)
    finally:
        for workdir, _, proc in servers.values():
            stop(proc)
            shutil.rmtree(workdir, ignore_errors=True)
    return {k: {n: statistics.median(v) for n, v in r.items()} for k, r in runs.items()}


def rewrite_and_load(payload):
    """{name: (rewrite seconds, load seconds, keys loaded, AOF bytes)}."""
    out = {}
    for name in ("redis", "cachedesk"):
        rewrites, loads = [], []
        for _ in range(REPEATS):
            workdir = tempfile.mkdtemp(prefix=f"cachedesk-aof-bench-{name}-")
            port, proc = start_aof(name, workdir)
            pipe(port, payload)
            rewrites.append(timed(lambda: rewrite_and_wait(port)))
            stop(proc)
            size = sum(os.path.getsize(os.path.join(workdir, "appendonlydir", f))
                       for f in os.listdir(os.path.join(workdir, "appendonlydir")))
            loads.append(load_time(name, workdir, *AOF))
            shutil.rmtree(workdir, ignore_errors=True)
        out[name] = (statistics.median(rewrites), statistics.median(t for t, _ in loads),
                     loads[0][1], size)
        print(f"  {name}: {out[name]}", file=sys.stderr)
    return out


def main():
    build_server()
    version = redis_version()
    rates = throughput()
    files = rewrite_and_load(dataset())
    print(f"Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
          f"redis-server {version}; appendonly yes, appendfsync everysec on both; "
          f"redis-benchmark -c 50 -r 100000, median of {REPEATS} alternating runs; "
          f"rewrite and load of {KEYS:,} keys of mixed types.\n")
    print("| test | pipeline | redis-server req/s | cachedesk req/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for (test, pipeline), r in rates.items():
        print(f"| {test.upper()} | {pipeline} | {r['redis']:,.0f} | {r['cachedesk']:,.0f} "
              f"| {r['cachedesk'] / r['redis']:.2f}x |")
    (rr, rl, rk, rs), (cr, cl, ck, cs) = files["redis"], files["cachedesk"]
    print()
    print("| | redis-server | cachedesk | cachedesk vs Redis |")
    print("|---|---:|---:|---:|")
    print(f"| AOF size after the rewrite | {rs / 1e6:.1f} MB | {cs / 1e6:.1f} MB | {cs / rs:.2f}x |")
    print(f"| BGREWRITEAOF of {KEYS:,} keys | {rr:.2f} s | {cr:.2f} s | {rr / cr:.2f}x faster |")
    print(f"| load on start ({rk:,} / {ck:,} keys) | {rl:.2f} s | {cl:.2f} s "
          f"| {rl / cl:.2f}x faster |")


if __name__ == "__main__":
    main()
