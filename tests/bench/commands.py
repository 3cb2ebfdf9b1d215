#!/usr/bin/env python3
"""Side-by-side benchmark of the newer command families (bitmaps, HyperLogLog, geo, SORT, Lua
scripts) on redis-server 7.0 and cachedesk-server, in one run with the same settings.

redis-benchmark runs each command (arbitrary-command mode, random keys or members from
`__rand_int__`) against each server in turn, repeated; medians and ratios are printed as a
Markdown table for the README.

    python3 tests/bench/commands.py
    REPEATS=5 REQUESTS=200000 python3 tests/bench/commands.py

Needs redis-server, redis-benchmark and redis-cli; builds cachedesk-server in release mode.
Figures are measured, never asserted.
"""

import hashlib
import os
import tempfile

from common import (benchmark_command, build_server, cli, free_port, pipe, print_rate_table,
                    rate_row, redis_version, resp, start)

REPEATS = int(os.environ.get("REPEATS", "3"))
REQUESTS = int(os.environ.get("REQUESTS", "100000"))
CLIENTS = 50

SHORT_SCRIPT = "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])"
LOOP_SCRIPT = "local n = 0 for i = 1, 1000 do n = n + i end return n"

# (label, command): __rand_int__ becomes a random 12-digit number (zero-padded, so not a
# bit offset: SETBIT sets one fixed bit, which flips nothing after the first).
COMMANDS = [
    ("SETBIT", ["SETBIT", "bits", "123457", "1"]),
    ("BITCOUNT", ["BITCOUNT", "bits"]),
    ("PFADD", ["PFADD", "hll", "__rand_int__"]),
    ("PFCOUNT", ["PFCOUNT", "hll"]),
    ("GEOADD", ["GEOADD", "geo", "13.361389", "38.115556", "m:__rand_int__"]),
    ("GEOSEARCH", ["GEOSEARCH", "points", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km",
                   "COUNT", "10", "ASC"]),
    ("SORT", ["SORT", "numbers", "LIMIT", "0", "10"]),
    ("EVALSHA get+set", ["EVALSHA", hashlib.sha1(SHORT_SCRIPT.encode()).hexdigest(), "1",
                         "key:__rand_int__", "value"]),
    ("EVAL 1,000-step loop", ["EVAL", LOOP_SCRIPT, "0"]),
]


def prepare(port):
    """The data the read commands look at, the same on both servers."""
    chunks = [resp("SETBIT", "bits", str(i * 7919 % 1000000), "1") for i in range(10000)]
    chunks += [resp("PFADD", "hll", *[f"e{i}-{j}" for j in range(100)]) for i in range(100)]
    chunks += [resp("GEOADD", "points", str(10 + (i % 100) / 10), str(35 + (i // 100) / 10),
                    f"p{i}") for i in range(10000)]
    chunks.append(resp("RPUSH", "numbers", *[str((i * 7919) % 1000) for i in range(100)]))
    chunks.append(resp("SCRIPT", "LOAD", SHORT_SCRIPT))
    pipe(port, "".join(chunks).encode())


def bench(port, pid, command, pipeline):
    requests = REQUESTS * (10 if pipeline > 1 else 1)
    if command[0] in ("EVAL", "GEOSEARCH", "BITCOUNT"):
        requests //= 10
    return benchmark_command(port, pid, command, requests, pipeline=pipeline, clients=CLIENTS)


def main():
    build_server()
    version = redis_version()
    workdir = tempfile.mkdtemp(prefix="cachedesk-bench-commands-")
    ports = {"redis": free_port(), "cachedesk": free_port()}
    procs = {name: start(name, port, workdir) for name, port in ports.items()}
    rows = []
    try:
        for port in ports.values():
            prepare(port)
        for pipeline in (1, 16):
            for label, command in COMMANDS:
                results = {"redis": [], "cachedesk": []}
                for _ in range(REPEATS):
                    for name in ("redis", "cachedesk"):
                        results[name].append(
                            bench(ports[name], procs[name].pid, command, pipeline))
                rows.append(rate_row(label, pipeline, results))
        # Both must have computed the same things.
        for probe in (["BITCOUNT", "bits"], ["SORT", "numbers", "LIMIT", "0", "5"]):
            answers = {name: cli(port, *probe) for name, port in ports.items()}
            if answers["redis"] != answers["cachedesk"]:
                raise RuntimeError(f"{probe} differs: {answers}")
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait()
    print(f"Machine: {os.cpu_count()} cores, redis-server {version}; redis-benchmark -c "
          f"{CLIENTS} -r 1000000, {REQUESTS:,} requests (x10 with -P 16; EVAL loop, GEOSEARCH and BITCOUNT /10), "
          f"median of {REPEATS} alternating runs.\n")
    print_rate_table(rows)


if __name__ == "__main__":
    main()
