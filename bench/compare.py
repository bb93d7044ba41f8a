#!/usr/bin/env python3
"""Runs weft-bench and the Tokio peer side by side, alternating, and prints
the median of each figure over the runs with the weft/Tokio ratio.

  python3 bench/compare.py [--runs 3] [--workers 2] [--iters 5] [--only NAME]
      [--weft build/bench/weft-bench] [--tokio bench/peers/tokio/target/release/tokio-bench]

Build the peer first: (cd bench/peers/tokio && cargo build --release).
Lower is better for every figure except tcp_echo (round trips/s).
"""
import argparse
import statistics
import subprocess
import sys


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    figs = {}
    for line in out.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value, unit = line.split(" ", 2)
        figs[name] = (float(value), unit)
    return figs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--only")
    ap.add_argument("--weft", default="build/bench/weft-bench")
    ap.add_argument("--tokio", default="bench/peers/tokio/target/release/tokio-bench")
    a = ap.parse_args()
    args = ["--workers", str(a.workers), "--iters", str(a.iters)]
    if a.only:
        args += ["--only", a.only]
    weft, tokio = {}, {}
    for r in range(a.runs):
        for name, (v, u) in run([a.weft] + args).items():
            weft.setdefault(name, []).append((v, u))
        for name, (v, u) in run([a.tokio] + args).items():
            tokio.setdefault(name, []).append((v, u))
        print(f"# run {r + 1}/{a.runs} done", file=sys.stderr)
    print(f"# medians of {a.runs} alternating runs, {a.workers} workers, {a.iters} iterations each")
    print(f"{'figure':<20} {'weft':>12} {'tokio':>12}  {'weft/tokio':>10}  unit")
    for name in weft:
        wv = statistics.median(v for v, _ in weft[name])
        unit = weft[name][0][1]
        if name in tokio:
            tv = statistics.median(v for v, _ in tokio[name])
            ratio = f"{wv / tv:10.2f}" if tv else "       n/a"
            print(f"{name:<20} {wv:12.1f} {tv:12.1f}  {ratio}  {unit}")
        else:
            print(f"{name:<20} {wv:12.1f} {'-':>12}  {'':>10}  {unit}")


if __name__ == "__main__":
    main()
