#!/usr/bin/env python3
"""Runs examples/offload briefly and checks what it shows: the blocking
detector fires when the heavy work runs inline on the workers, and stays
quiet when it goes through spawn_blocking. Latency figures are printed,
not asserted (shared machines are noisy)."""
import re
import subprocess
import sys

out = subprocess.run([sys.argv[1], "--secs", "0.6", "--work", "20", "--heavy", "3", "--cheap", "2"],
                     capture_output=True, text=True, timeout=60)
print(out.stdout, end="")
print(out.stderr, end="", file=sys.stderr)
if out.returncode != 0:
    sys.exit(f"offload exited with {out.returncode}")
rows = {}
for line in out.stdout.splitlines():
    m = re.match(r"(inline \(crunch inside poll\)|spawn_blocking)\s+([\d.]+) ms\s+([\d.]+) ms\s+([\d.]+) ms"
                 r"\s+(\d+)\s+(\d+)\s+(\d+)$", line)
    if m:
        rows[m.group(1)] = [float(x) for x in m.groups()[1:]]
if len(rows) != 2:
    sys.exit("offload printed no result table")
inline, offload = rows["inline (crunch inside poll)"], rows["spawn_blocking"]
if inline[5] < 1:
    sys.exit("the detector did not report the inline computation")
if offload[5] != 0:
    sys.exit("the detector reported a poll although the work was offloaded")
if offload[3] < 1 or inline[4] < 1 or offload[4] < 1:
    sys.exit("a mode served no requests")
print("ok: detector fired %d times inline, 0 times offloaded" % inline[5])
