#!/usr/bin/env python3
"""Runs weft-bench and the Tokio peer side by side, alternating, and prints
the median of each figure over the runs with the weft/Tokio ratio. With
--base, a second weft-bench (an older build) runs in the same rotation, and
the table adds its figures and the new/old ratio: a before/after comparison
of a change, measured against the same Tokio runs.

  python3 bench/compare.py [--runs 3] [--workers 2] [--iters 5] [--only NAME]
      [--weft build/bench/weft-bench] [--tokio bench/peers/tokio/target/release/tokio-bench]
      [--base OLD_BUILD/bench/weft-bench]

Build the peer first: (cd bench/peers/tokio && cargo build --release).
Lower is better for every figure except tcp_echo (round trips/s) and
proxy_throughput (MB/s).
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


def median(samples, name):
    vals = [v for v, _ in samples.get(name, [])]
    return statistics.median(vals) if vals else None


def fmt(v):
    """Small figures (lateness in ms) keep three decimals."""
    return f" {v:12.3f}" if abs(v) < 10 else f" {v:12.1f}"


def ratio(a, b):
    return f"{a / b:10.2f}" if a is not None and b else f"{'n/a':>10}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--only")
    ap.add_argument("--weft", default="build/bench/weft-bench")
    ap.add_argument("--tokio", default="bench/peers/tokio/target/release/tokio-bench")
    ap.add_argument("--base", help="an older weft-bench to compare against (before/after)")
    a = ap.parse_args()
    args = ["--workers", str(a.workers), "--iters", str(a.iters)]
    if a.only:
        args += ["--only", a.only]
    bins = [("weft", a.weft), ("tokio", a.tokio)]
    if a.base:
        bins.insert(0, ("base", a.base))
    samples = {k: {} for k, _ in bins}
    for r in range(a.runs):
        for key, path in bins:
            for name, (v, u) in run([path] + args).items():
                samples[key].setdefault(name, []).append((v, u))
        print(f"# run {r + 1}/{a.runs} done", file=sys.stderr)
    print(f"# medians of {a.runs} alternating runs, {a.workers} workers, {a.iters} iterations each")
    head = f"{'figure':<26}"
    if a.base:
        head += f" {'base':>12}"
    head += f" {'weft':>12} {'tokio':>12}  {'weft/tokio':>10}"
    if a.base:
        head += f"  {'weft/base':>10}"
    print(head + "  unit")
    for name in samples["weft"]:
        wv = median(samples["weft"], name)
        tv = median(samples["tokio"], name)
        unit = samples["weft"][name][0][1]
        line = f"{name:<26}"
        if a.base:
            bv = median(samples["base"], name)
            line += fmt(bv) if bv is not None else f" {'-':>12}"
        line += fmt(wv) + (fmt(tv) if tv is not None else f" {'-':>12}")
        line += f"  {ratio(wv, tv)}"
        if a.base:
            line += f"  {ratio(wv, median(samples['base'], name))}"
        print(line + f"  {unit}")


if __name__ == "__main__":
    main()
