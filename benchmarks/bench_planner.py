"""Staffing planner throughput and quality: plan a scenario (default the 487-day baseline, every pool)
and print the time of each phase, the refinement rounds, the share of open intervals (realtime) or
days (backlogs) meeting their target with the plan against the per-interval Erlang plan, and labour
cost against the scenario's own (hand-made) plan. A benchmark prints figures; it asserts nothing.

    python benchmarks/bench_planner.py [SCENARIO] [--workers N] [--from DATE --to DATE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from pathlib import Path

from sim.loader import load_scenario, scenario_from_dict
from sim.planner.plan import plan_staffing

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "baseline.yaml"))
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--from", dest="start", type=dt.date.fromisoformat)
    ap.add_argument("--to", dest="end", type=dt.date.fromisoformat)
    ap.add_argument("--seed", type=int, default=20261122)
    args = ap.parse_args()
    s = load_scenario(args.scenario)
    data = s.model_dump()
    data["planner"]["window_start"], data["planner"]["window_end"] = args.start, args.end
    s = scenario_from_dict(data, args.scenario)
    print(f"machine      {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"scenario     {s.name}: {s.horizon_days} days, interval {s.interval_min} min, "
          f"window {args.start or s.start_date} .. {args.end or s.end_date - dt.timedelta(days=1)}, {args.workers} workers")
    t0 = time.perf_counter()
    phases: list[tuple[str, float]] = []

    def progress(phase: str, done: int, total: int) -> None:
        if done == total:
            phases.append((phase, time.perf_counter() - t0))

    r = plan_staffing(s, args.seed, workers=args.workers, progress=progress)
    total = time.perf_counter() - t0
    print(f"total        {total:.1f} s wall (analytic + refinement {r.timings['demand_s'] + r.timings['refine_s']:.1f} s, "
          f"shifts {r.timings['shifts_s']:.1f} s, final check {total - r.timings['demand_s'] - r.timings['refine_s'] - r.timings['shifts_s']:.1f} s)")
    print("phases       " + ", ".join(f"{p} at {t:.0f} s" for p, t in phases))
    print(f"rounds       {r.iterations} ({'converged' if r.converged else 'not converged'}); misses by round: "
          + "; ".join(", ".join(f"{k} {v}" for k, v in row.items() if k != "round") for row in r.provenance["misses_by_round"]))
    print(f"{'pool':8} {'judged':>14} {'meets: plan':>12} {'Erlang':>8} {'not below: plan':>16} {'Erlang':>8} "
          f"{'labour plan':>13} {'hand-made':>13} {'Erlang':>13}")
    for name, row in r.summary.items():
        unit = "intervals" if row["realtime"] else "days"
        print(f"{name:8} {row['judged']:>8} {unit:>5} {row['meet_share_refined']:>12.1%} {row['meet_share_erlang']:>8.1%} "
              f"{row['not_below_share_refined']:>16.1%} {row['not_below_share_erlang']:>8.1%} "
              f"{row['labor_cost_usd']:>13,.0f} {row['labor_cost_input_usd']:>13,.0f} {row['labor_cost_erlang_usd']:>13,.0f}")


if __name__ == "__main__":
    main()
