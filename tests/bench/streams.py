#!/usr/bin/env python3
"""Side-by-side stream benchmark on redis-server 7.0 and cachedesk-server, in one run with the
same settings: XADD (auto ids, three small fields) without and with pipelining, XRANGE of 100
entries, a consumer group worked by 10 consumers (XREADGROUP of one new entry each, XACK of
delivered ids), and the memory 1M entries of three small fields take.

redis-benchmark runs each command against each server in turn, repeated; medians and ratios
are printed as Markdown tables for the README.

    python3 tests/bench/streams.py
    REPEATS=5 REQUESTS=200000 python3 tests/bench/streams.py

Needs redis-server, redis-benchmark and redis-cli; builds cachedesk-server in release mode.
Figures are measured, never asserted.
"""

import os
import tempfile

from common import (benchmark_command, build_server, cli, free_port, info_field, pipe,
                    print_rate_table, rate_row, redis_version, resp, rss, start)

REPEATS = int(os.environ.get("REPEATS", "3"))
REQUESTS = int(os.environ.get("REQUESTS", "100000"))
CLIENTS = 50
CONSUMERS = 10
MEMORY_ENTRIES = 1_000_000


def bench(port, pid, command, pipeline, clients=CLIENTS, random=1_000_000):
    requests = REQUESTS * (10 if pipeline > 1 else 1)
    return benchmark_command(port, pid, command, requests, pipeline=pipeline, clients=clients,
                             keyspace=random)


def fill(port, key, count, fields):
    """XADDs `count` entries with ids 1-0, 2-0, ... in chunks."""
    for start_at in range(1, count + 1, 100_000):
        chunk = [resp("XADD", key, f"{i}-0", *fields)
                 for i in range(start_at, min(start_at + 100_000, count + 1))]
        pipe(port, "".join(chunk).encode())


def group_round(port, pid, pipeline):
    """A fresh group over the queue, then 10 consumers read one new entry per call, then the
    delivered ids are acknowledged at random (most are pending)."""
    cli(port, "XGROUP", "DESTROY", "queue", "g")
    cli(port, "XGROUP", "CREATE", "queue", "g", "0")
    read = bench(port, pid, ["XREADGROUP", "GROUP", "g", "consumer:__rand_int__", "COUNT", "1",
                        "STREAMS", "queue", ">"], pipeline, clients=CONSUMERS, random=CONSUMERS)
    acked = bench(port, pid, ["XACK", "queue", "g", "__rand_int__-0"], pipeline, clients=CONSUMERS,
                  random=REQUESTS * 10)
    return read, acked


def memory(port, pid):
    """used_memory and RSS growth for MEMORY_ENTRIES entries of three small fields."""
    used = int(info_field(port, "memory", "used_memory"))
    resident = rss(pid)
    fill(port, "mem", MEMORY_ENTRIES, ["user", "u1", "action", "click", "n", "7"])
    return (int(info_field(port, "memory", "used_memory")) - used, rss(pid) - resident)


def main():
    build_server()
    version = redis_version()
    workdir = tempfile.mkdtemp(prefix="cachedesk-bench-streams-")
    ports = {"redis": free_port(), "cachedesk": free_port()}
    procs = {name: start(name, port, workdir) for name, port in ports.items()}
    rows = []
    try:
        mem = {name: memory(ports[name], procs[name].pid) for name in ports}
        for port in ports.values():
            fill(port, "range", 1000, ["user", "u1", "action", "click", "n", "7"])
            fill(port, "queue", REQUESTS * 10 + 1000, ["job", "payload"])
        cases = [
            ("XADD * (3 fields)", ["XADD", "log", "*", "user", "u1", "action", "click", "n", "7"]),
            ("XRANGE 100 entries", ["XRANGE", "range", "-", "+", "COUNT", "100"]),
        ]
        for pipeline in (1, 16):
            for label, command in cases:
                results = {"redis": [], "cachedesk": []}
                for _ in range(REPEATS):
                    for name in ("redis", "cachedesk"):
                        results[name].append(
                            bench(ports[name], procs[name].pid, command, pipeline))
                rows.append(rate_row(label, pipeline, results))
            reads = {"redis": [], "cachedesk": []}
            acks = {"redis": [], "cachedesk": []}
            for _ in range(REPEATS):
                for name in ("redis", "cachedesk"):
                    read, acked = group_round(ports[name], procs[name].pid, pipeline)
                    reads[name].append(read)
                    acks[name].append(acked)
            for label, results in (("XREADGROUP > (10 consumers)", reads),
                                   ("XACK (10 consumers)", acks)):
                rows.append(rate_row(label, pipeline, results))
        # Both must hold the same entries.
        probe = ["XRANGE", "range", "500-0", "+", "COUNT", "3"]
        answers = {name: cli(port, *probe) for name, port in ports.items()}
        if answers["redis"] != answers["cachedesk"]:
            raise RuntimeError(f"{probe} differs: {answers}")
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait()
    print(f"Machine: {os.cpu_count()} cores, redis-server {version}; redis-benchmark -c "
          f"{CLIENTS} ({CONSUMERS} for the group), {REQUESTS:,} requests (x10 with -P 16), "
          f"median of {REPEATS} alternating runs.\n")
    print_rate_table(rows)
    print(f"\n{MEMORY_ENTRIES:,} entries of three small fields:\n")
    print("| | redis-server | cachedesk | ratio |")
    print("|---|---:|---:|---:|")
    for i, what in enumerate(("used_memory growth", "RSS growth")):
        r, c = mem["redis"][i], mem["cachedesk"][i]
        print(f"| {what} | {r / 1e6:.1f} MB | {c / 1e6:.1f} MB | {c / r:.2f}x |")


if __name__ == "__main__":
    main()
