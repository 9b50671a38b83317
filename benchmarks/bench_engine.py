"""Throughput of the whole engine on the baseline scenario (a script, not a test).

Prints, for the baseline with horizons giving about 10^4, 10^5 and 10^6 orders: simulated orders
per second on one core, microseconds per order (should be flat), and peak memory per million
orders (each size runs in a fresh process, so peak RSS is its own); then the speed-up of
replications across the machine's cores. Compared in the same run with the target of
50,000 orders per second per core.

Usage: python benchmarks/bench_engine.py [--reps-per-size 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
TARGET_ORDERS_PER_S = 50_000
HORIZONS = (10, 100, 1000)  # about 1e4, 1e5, 1e6 orders


def _scenario(days: int):
    from sim.loader import deep_merge, resolve_raw, scenario_from_dict

    return scenario_from_dict(deep_merge(resolve_raw(BASELINE), {"horizon_days": days}))


def one(days: int, rep: int) -> None:
    """Child process: one replication, report JSON on stdout."""
    import sim.engine

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scenario = _scenario(days)
    t0 = time.perf_counter()
    c0 = time.process_time()
    res = sim.engine.simulate(scenario, 20261122, rep)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "orders": res.kpis["orders"], "contacts": res.kpis["contacts"], "wall": wall, "cpu": cpu,
        "rss_kb": rss, "rss_before_kb": rss_before, **res.timings,
    }))


def _child(days: int, rep: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--one", str(days), str(rep)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps-per-size", type=int, default=3)
    ap.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one(*args.one)
        return
    print(f"machine: {platform.platform()} | cpus: {os.cpu_count()} | load average: {os.getloadavg()[0]:.1f}")
    print(f"python: {platform.python_version()}")
    print(f"scenario: {BASELINE.relative_to(ROOT)} with horizon_days varied; target >= {TARGET_ORDERS_PER_S:,} orders/s per core\n")
    print(f"{'horizon':>8} {'orders':>10} {'contacts':>9} {'orders/s wall':>14} {'orders/CPU-s':>13} {'us/order (CPU)':>15} {'peak MB':>8} {'MB per 1M orders':>17}")
    for days in HORIZONS:
        runs = [_child(days, r) for r in range(args.reps_per_size)]
        orders = statistics.median(r["orders"] for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        peak_mb = max(r["rss_kb"] for r in runs) / 1024
        extra_mb = statistics.median((r["rss_kb"] - r["rss_before_kb"]) / 1024 for r in runs)
        print(
            f"{days:>8} {orders:>10,.0f} {statistics.median(r['contacts'] for r in runs):>9,.0f} {orders / wall:>14,.0f} "
            f"{orders / cpu:>13,.0f} {cpu / orders * 1e6:>15.1f} {peak_mb:>8.0f} {extra_mb / orders * 1e6:>17.0f}"
        )

    from sim.experiment import estimated_work, map_local, pool_size, run_experiment

    w = os.cpu_count() or 1
    print()
    for days, reps in ((30, 4), (120, 4), (487, 4)):
        scenario = _scenario(days)
        timing = {}
        for workers in (1, w, None):
            t0 = time.perf_counter()
            run_experiment([scenario], reps=reps, seed=1, workers=workers)
            timing[workers] = time.perf_counter() - t0
        auto = pool_size([estimated_work(scenario)] * reps, w)
        print(f"replication scaling, {reps} replications of a {days}-day baseline: 1 worker {timing[1]:.1f} s, "
              f"{w} workers {timing[w]:.1f} s ({timing[1] / timing[w]:.2f}x), default ({auto} worker(s)) "
              f"{timing[None]:.1f} s ({timing[1] / timing[None]:.2f}x)")
    # yardstick: the same plain-Python loop in 1 and in w processes (what the machine's cores give)
    t0 = time.perf_counter()
    map_local(_spin, [(SPIN,)] * w, 1)
    serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    map_local(_spin, [(SPIN,)] * w, w)
    many = time.perf_counter() - t0
    print(f"yardstick: {w} plain-Python loops in 1 process {serial:.1f} s, in {w} processes {many:.1f} s "
          f"-> the machine's own speed-up {serial / many:.2f}x (incl. pool start-up)")


SPIN = 30_000_000


def _spin(n: int) -> int:
    """A plain-Python CPU loop (the yardstick of what several cores give this interpreter)."""
    x = 0
    for i in range(n):
        x += i & 7
    return x


if __name__ == "__main__":
    main()
