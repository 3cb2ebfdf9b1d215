#!/usr/bin/env python3
"""Side-by-side Pub/Sub benchmark of redis-server 7.0 and cachedesk-server, in one run with
the same settings: publish throughput and delivery latency to 1, 10 and 100 subscribers.

Throughput: redis-benchmark runs PUBLISH (50 clients, pipelined 16) while the subscribers
read everything in a separate process; requests per second is the publish rate.
Latency: one publisher sends timestamped messages one at a time (a round trip each); a
subscriber notes when each arrives; p50 and p99 of arrival minus send, in microseconds.
Every subscriber must receive every latency message, in order, or the run fails.

    python3 tests/bench/pubsub.py
    REPEATS=5 MESSAGES=200000 python3 tests/bench/pubsub.py

Needs redis-server, redis-benchmark and redis-cli; builds cachedesk-server in release mode.
Figures are measured, never asserted.
"""

import multiprocessing
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from common import build_server, free_port, redis_version, resp, start

REPEATS = int(os.environ.get("REPEATS", "3"))
MESSAGES = int(os.environ.get("MESSAGES", "100000"))
LATENCY_MESSAGES = int(os.environ.get("LATENCY_MESSAGES", "2000"))
SUBSCRIBERS = (1, 10, 100)


def subscribe(port, n, channel):
    """`n` subscriber sockets, each confirmed subscribed to `channel`."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(resp("SUBSCRIBE", channel).encode())
        got = b""
        while got.count(b"\r\n") < 6:
            got += s.recv(4096)
        socks.append(s)
    return socks


def drain(port, n, channel, ready, stop):
    """A process that keeps `n` subscribers reading (so none falls behind) until `stop`."""
    socks = subscribe(port, n, channel)
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    ready.set()
    while not stop.is_set():
        for key, _ in sel.select(timeout=0.1):
            try:
                key.fileobj.recv(1 << 20)
            except BlockingIOError:
                pass


def throughput(port, subscribers):
    ready, stop = multiprocessing.Event(), multiprocessing.Event()
    reader = multiprocessing.Process(target=drain, args=(port, subscribers, "bench", ready, stop))
    reader.start()
    ready.wait()
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-n", str(MESSAGES), "-c", "50", "-P", "16",
         "--csv", "-q", "PUBLISH", "bench", "message-of-32-bytes-payload-1234"],
        capture_output=True, text=True, check=True).stdout
    stop.set()
    reader.join()
    line = out.strip().splitlines()[-1]
    return float(line.rsplit(",", 7)[1].strip('"'))


def latency(port, subscribers):
    """p50 and p99 delivery latency (µs) to the first of `subscribers` subscribers; every
    subscriber's messages are checked complete and in order."""
    socks = subscribe(port, subscribers, "lat")
    pub = socket.create_connection(("127.0.0.1", port))
    pub.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffers = [b""] * subscribers
    seen = [0] * subscribers
    delays = []
    for i in range(LATENCY_MESSAGES):
        sent = time.perf_counter_ns()
        pub.sendall(resp("PUBLISH", "lat", f"{i}:{sent}").encode())
        pub.recv(64)
        for j, s in enumerate(socks):
            # One frame: *3 $7 message $3 lat $N payload, seven CRLF-ended lines.
            while buffers[j].count(b"\r\n") < 7:
                buffers[j] += s.recv(65536)
            if j == 0:
                delays.append((time.perf_counter_ns() - sent) / 1000)
            parts = buffers[j].split(b"\r\n", 7)
            payload, buffers[j] = parts[6], parts[7]
            n = int(payload.split(b":")[0])
            if n != seen[j]:
                raise RuntimeError(f"subscriber {j} got message {n}, expected {seen[j]}")
            seen[j] += 1
    for s in socks + [pub]:
        s.close()
    delays.sort()
    return delays[len(delays) // 2], delays[int(len(delays) * 0.99)]


def main():
    build_server()
    version = redis_version()
    workdir = tempfile.mkdtemp(prefix="cachedesk-bench-pubsub-")
    ports = {"redis": free_port(), "cachedesk": free_port()}
    procs = {name: start(name, port, workdir) for name, port in ports.items()}
    rows = []
    try:
        for n in SUBSCRIBERS:
            tput = {"redis": [], "cachedesk": []}
            lat = {"redis": [], "cachedesk": []}
            for _ in range(REPEATS):
                for name in ("redis", "cachedesk"):
                    tput[name].append(throughput(ports[name], n))
                    lat[name].append(latency(ports[name], n))
            r, c = statistics.median(tput["redis"]), statistics.median(tput["cachedesk"])
            p50 = {k: statistics.median(x[0] for x in v) for k, v in lat.items()}
            p99 = {k: statistics.median(x[1] for x in v) for k, v in lat.items()}
            rows.append((n, r, c, p50, p99))
            print(f"  {n:>3} subscribers: publish redis {r:,.0f} cachedesk {c:,.0f} ({c / r:.2f}x);"
                  f" p50 {p50['redis']:.0f}/{p50['cachedesk']:.0f} us,"
                  f" p99 {p99['redis']:.0f}/{p99['cachedesk']:.0f} us", file=sys.stderr)
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait()
    print(f"Machine: {os.cpu_count()} cores, redis-server {version}; PUBLISH by redis-benchmark "
          f"-c 50 -P 16, {MESSAGES:,} messages of 32 bytes, subscribers drained by another "
          f"process; latency over {LATENCY_MESSAGES:,} one-at-a-time messages; median of "
          f"{REPEATS} alternating runs.\n")
    print("| subscribers | redis-server publish/s | cachedesk publish/s | ratio | p50 µs redis / cachedesk | p99 µs redis / cachedesk |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n, r, c, p50, p99 in rows:
        print(f"| {n} | {r:,.0f} | {c:,.0f} | {c / r:.2f}x | {p50['redis']:.0f} / "
              f"{p50['cachedesk']:.0f} | {p99['redis']:.0f} / {p99['cachedesk']:.0f} |")


if __name__ == "__main__":
    main()
