#!/usr/bin/env python3
"""The desktop app, measured (never asserted): launch to a visible window, and the CPU an
idle window uses, under Xvfb with the release build. With 20 running caches the Overview of
the first is on screen (its live charts repaint once a second); with no cache nothing on
screen changes, so the window should not repaint at all. Then frame time: in the real window
made to repaint continuously (app/examples/window_fps.rs), and the UI pass alone in kittest
(app/examples/frame_time.rs).

    python3 tests/bench/app.py      # needs xvfb and xdotool (Debian packages)
"""

import os
import subprocess
import sys
import tempfile
import time

from common import start_xvfb

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APP = os.path.join(ROOT, "target", "release", "cachedesk")
CACHES = 20
IDLE_SECONDS = 20


def settings(count):
    entries = [
        f'(name: "cache-{i}", sku: "Balanced_B0", bind: "127.0.0.1", port: 0, '
        'access_keys: false, primary_key: "", secondary_key: "", eviction: NoEviction, '
        'persistence: Disabled, tags: [], created: 0, running: true)'
        for i in range(count)
    ]
    return "(caches: [" + ",".join(entries) + "])"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(count):
    data = tempfile.mkdtemp(prefix="cachedesk-app-bench-")
    with open(os.path.join(data, "caches.ron"), "w") as f:
        f.write(settings(count))
    xvfb, env = start_xvfb(":77")
    t0 = time.perf_counter()
    app = subprocess.Popen([APP, "--data-dir", data], env=env, stderr=subprocess.DEVNULL)
    subprocess.run(["xdotool", "search", "--sync", "--onlyvisible", "--name", "CacheDesk"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    to_window = time.perf_counter() - t0
    time.sleep(5)  # caches start, the first frames settle
    before = cpu_seconds(app.pid)
    time.sleep(IDLE_SECONDS)
    cpu = (cpu_seconds(app.pid) - before) / IDLE_SECONDS * 100
    app.terminate()
    app.wait()
    xvfb.terminate()
    xvfb.wait()
    return to_window, cpu


def main():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "cachedesk"], cwd=ROOT, check=True)
    rows = []
    for count, what in ((0, "no cache (nothing changes on screen)"),
                        (CACHES, f"{CACHES} running caches, Overview with live charts")):
        to_window, cpu = run(count)
        rows.append((what, to_window, cpu))
        print(f"  {what}: window after {to_window:.2f} s, CPU {cpu:.1f}%", file=sys.stderr)
    print(f"Machine: {os.cpu_count()} cores, Xvfb, Mesa llvmpipe (WGPU_BACKEND=gl), release build.\n")
    print("| window | launch to visible window | CPU while idle |")
    print("|---|---:|---:|")
    for what, to_window, cpu in rows:
        print(f"| {what} | {to_window:.2f} s | {cpu:.1f}% of one core |")
    print()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "cachedesk", "--example",
                    "window_fps"], cwd=ROOT, check=True)
    for count in (0, CACHES):
        data = tempfile.mkdtemp(prefix="cachedesk-fps-")
        with open(os.path.join(data, "caches.ron"), "w") as f:
            f.write(settings(count))
        out = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24",
                              os.path.join(ROOT, "target", "release", "examples", "window_fps"),
                              "--data-dir", data], capture_output=True, text=True, check=True,
                             env=dict(os.environ, WGPU_BACKEND="gl")).stdout
        print(out.strip().splitlines()[0])
    print()
    frames = subprocess.run(["cargo", "run", "--release", "-q", "-p", "cachedesk", "--example",
                             "frame_time"], cwd=ROOT, check=True, capture_output=True, text=True,
                            env=dict(os.environ, WGPU_BACKEND="gl")).stdout
    print(frames)


if __name__ == "__main__":
    main()
