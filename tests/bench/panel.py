#!/usr/bin/env python3
"""The Data persistence panel under load (issue 6), measured, never asserted: the release
app runs under Xvfb with one RDB cache; redis-benchmark (SET and GET, -c 50, -P 16) runs
against the cache while the window shows the Data persistence panel with its live views, and
while it shows a page without live views (Import/Export), alternating, median of REPEATS.
Then the real window's frame time with the panel open under the same load
(app/examples/window_fps.rs). The pages are opened by clicking them with xdotool.

    python3 tests/bench/panel.py      # needs xvfb and xdotool (Debian packages)
"""

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from common import free_port, redis_benchmark, start_xvfb, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APP = os.path.join(ROOT, "target", "release", "cachedesk")
FPS = os.path.join(ROOT, "target", "release", "examples", "window_fps")
REPEATS = int(os.environ.get("REPEATS", "5"))
REQUESTS = int(os.environ.get("REQUESTS", "1000000"))
# Where the resource menu's pages are in a 1100x720 window (see screenshots/).
PAGES = {"panel": (368, 100), "static": (540, 100)}


def settings(port):
    return (f'(caches: [(name: "bench", sku: "Balanced_B1", bind: "127.0.0.1", port: {port}, '
            'access_keys: false, primary_key: "", secondary_key: "", eviction: NoEviction, '
            'persistence: Rdb(Hourly), tags: [], created: 0, running: true)])')


def bench(port, test):
    return redis_benchmark(port, test, REQUESTS, pipeline=16)


def click(env, page):
    window = subprocess.run(["xdotool", "search", "--sync", "--onlyvisible", "--name",
                             "CacheDesk"], env=env, capture_output=True, text=True,
                            check=True).stdout.split()[0]
    x, y = PAGES[page]
    subprocess.run(["xdotool", "mousemove", "--window", window, str(x), str(y), "click", "1"],
                   env=env, check=True)
    time.sleep(1)


def with_window(program, port, body):
    data = tempfile.mkdtemp(prefix="cachedesk-panel-bench-")
    with open(os.path.join(data, "caches.ron"), "w") as f:
        f.write(settings(port))
    xvfb, env = start_xvfb(":78")
    app = subprocess.Popen([program, "--data-dir", data], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        wait_for(port)
        return body(env, app)
    finally:
        app.terminate()
        app.wait()
        xvfb.terminate()
        xvfb.wait()


def throughput(env, _app, port):
    runs = {}
    for _ in range(REPEATS):
        for page in ("panel", "static"):
            click(env, page)
            for test in ("set", "get"):
                runs.setdefault((test, page), []).append(bench(port, test))
    return {k: statistics.median(v) for k, v in runs.items()}


def frame_time_under_load(env, app, port):
    click(env, "panel")
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                bench(port, "set")
            except subprocess.CalledProcessError:
                return  # the app closed under it

    loader = threading.Thread(target=load)
    loader.start()
    line = app.stdout.readline().strip()
    stop.set()
    loader.join()
    return line


def main():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "cachedesk", "--bin", "cachedesk",
                    "--example", "window_fps"], cwd=ROOT, check=True)
    port = free_port()
    rates = with_window(APP, port, lambda env, app: throughput(env, app, port))
    fps = with_window(FPS, port, lambda env, app: frame_time_under_load(env, app, port))
    print(f"Machine: {os.cpu_count()} cores, Xvfb and Mesa llvmpipe (no GPU), release build; "
          f"redis-benchmark -c 50 -P 16 -r 100000, {REQUESTS:,} requests, median of "
          f"{REPEATS} alternating runs.\n")
    print("| test | page without live views req/s | Data persistence panel open req/s | change |")
    print("|---|---:|---:|---:|")
    for test in ("set", "get"):
        closed, opened = rates[(test, "static")], rates[(test, "panel")]
        print(f"| {test.upper()} | {closed:,.0f} | {opened:,.0f} | "
              f"{(opened / closed - 1) * 100:+.1f}% |")
    print()
    print(f"Panel open under a SET load, window repainting continuously: {fps}")
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
