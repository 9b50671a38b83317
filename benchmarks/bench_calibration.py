"""Time `cxsim calibrate` on a 1,000,000-row orders file (target: under 60 s on this machine).

The orders file is generated once with synth-history from the baseline scaled to about 2,750
orders a day for a year (new customers and the existing base x2.8; staffing x3 so the contact centre
keeps up), then cached in the folder given by --work (default: a folder under the system temp dir).
Measured: reading + validating the file, the fit itself, and the whole command (fit, backtest with
--reps replications, report, calibrated.yaml), each wall-clock on this machine.

    .venv/bin/python benchmarks/bench_calibration.py [--rows 1000000] [--reps 1] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
            mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU(s) ({cpu}){mem}, Python {platform.python_version()}"


def make_orders(work: Path, rows: int, seed: int) -> Path:
    from calibration.synth import synth_history
    from sim.loader import deep_merge, resolve_raw, scenario_from_dict

    out = work / f"history_{rows}"
    orders = out / "orders.csv"
    if orders.exists():
        return orders
    raw = resolve_raw(ROOT / "scenarios" / "baseline.yaml")
    scale = 2.8 * rows / 1_000_000
    raw = deep_merge(raw, {
        "name": "bench_calibration",
        "horizon_days": 365,
        "demand": {"new_customers_per_day": raw["demand"]["new_customers_per_day"] * scale,
                   "initial_customers": int(raw["demand"]["initial_customers"] * scale)},
    })
    for ch in raw["contacts"]["channels"].values():
        for plan in ch["staffing"]:
            plan["agents_by_hour"] = [a * 3 for a in plan["agents_by_hour"]]
    scenario = scenario_from_dict(raw, "bench scenario")
    t = time.perf_counter()
    synth_history(scenario, seed, out, mess=True)
    print(f"generated {out} in {time.perf_counter() - t:.0f} s (not part of the measurement)")
    return orders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="target orders (the scale of the generated history)")
    ap.add_argument("--reps", type=int, default=1, help="backtest replications in the end-to-end run")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cxsim-bench-calibration")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    orders = make_orders(args.work, args.rows, args.seed)
    n_rows = sum(1 for _ in orders.open(encoding="utf-8")) - 1
    size = orders.stat().st_size

    from calibration.fit import calibrate
    from calibration.schemas import read_history
    from sim.loader import load_scenario

    base = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    t0 = time.perf_counter()
    history = read_history(orders=orders)
    t1 = time.perf_counter()
    cal = calibrate(history, base)
    t2 = time.perf_counter()
    print(f"machine: {machine()}")
    print(f"orders file: {n_rows:,} rows, {size / 2**20:.0f} MiB, {len(cal.prepared.orders['customer_id'].unique()):,} customers")
    print(f"read + validate: {t1 - t0:6.1f} s")
    print(f"fit (calibrate): {t2 - t1:6.1f} s   ({len(cal.params)} parameters, converged: {not cal.warnings})")

    out_dir = args.work / "run"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir()
    cmd = [sys.executable, "-c", "from calibration.commands import calibrate_command; import typer; app = typer.Typer(); "
           "app.command()(calibrate_command); app()",
           "--orders", str(orders), "--base", str(ROOT / "scenarios" / "baseline.yaml"),
           "--out", str(out_dir / "calibrated.yaml"), "--report", str(out_dir / "report"), "--reps", str(args.reps)]
    t3 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    t4 = time.perf_counter()
    if proc.returncode != 0:
        print(proc.stderr)
    print(f"end to end (new process: read, fit, backtest --reps {args.reps}, report, yaml): {t4 - t3:6.1f} s  (exit {proc.returncode})")
    verdict = "PASS" if (t2 - t0) < 60 else "FAIL"
    print(f"{verdict}: read + fit of {n_rows:,} rows in {t2 - t0:.1f} s (target < 60 s)")


if __name__ == "__main__":
    main()
