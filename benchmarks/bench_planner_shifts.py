"""Speed and quality of the shift scheduler (``sim.planner.shifts.schedule_shifts``).

Builds a daytime-heavy requirement of paid agents on duty, ``--days`` days (487 by default, the
length of the default scenario's horizon) x ``1440 / --interval`` intervals per day, with a fixed
seed:

- intraday shape: closed 00:00-07:00, a ramp from 07:00, a morning peak around 11:00 and an
  afternoon peak around 15:00, tapering to a few agents by 22:00 and closed again from 23:00;
- weekly shape: Saturday at 70 % and Sunday at 55 % of a weekday;
- a seasonal swell (+/-15 % over the year) and a November-December peak (up to +35 %);
- multiplicative noise (lognormal, sigma 0.08), then rounded and clipped to 0..40 agents.

Solves it with the default shift rules (``sim.scenario.Shifts()``: full_8h with a 30-minute
break, part_6h, part_4h; 7-day blocks) and prints the solve time, blocks, cost, worst MIP gap,
shifts and agent-shifts, and the coverage surplus (scheduled minus required agent-hours). The
CPU time is printed beside the wall time because the wall time of a shared machine is noisy.
Usage::

    .venv/bin/python benchmarks/bench_planner_shifts.py [--days 487] [--interval 30] [--block-days 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.planner.shifts import schedule_shifts
from sim.scenario import Shifts

START = dt.date(2024, 1, 1)  # a Monday
RATE_USD = 28.0


def requirement(days: int, interval_min: int, seed: int = 20240101) -> np.ndarray:
    """Agents needed on duty, int (days, 1440 / interval_min), values 0..40 (see module docstring)."""
    rng = np.random.default_rng(seed)
    per_day = 1440 // interval_min
    hour = (np.arange(per_day) + 0.5) * interval_min / 60.0
    shape = (
        0.55 * np.exp(-0.5 * ((hour - 11.0) / 2.0) ** 2)
        + 0.50 * np.exp(-0.5 * ((hour - 15.0) / 2.3) ** 2)
        + 0.12 * np.exp(-0.5 * ((hour - 19.5) / 1.5) ** 2)
    )
    shape[(hour < 7.0) | (hour >= 23.0)] = 0.0
    shape /= shape.max()
    day = np.arange(days)
    date = [START + dt.timedelta(days=int(d)) for d in day]
    weekday = np.array([1, 1, 1, 1, 1, 0.70, 0.55])[[d.weekday() for d in date]]
    doy = np.array([d.timetuple().tm_yday for d in date])
    season = 1.0 + 0.15 * np.sin(2 * np.pi * (doy - 80) / 365.25)
    holiday = 1.0 + 0.35 * np.exp(-0.5 * ((doy - 345) / 15.0) ** 2)
    level = 36.0 * weekday * season * holiday
    noise = rng.lognormal(0.0, 0.08, (days, per_day))
    return np.clip(np.rint(level[:, None] * shape[None, :] * noise), 0, 40).astype(np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=487)
    ap.add_argument("--interval", type=int, default=30, choices=[15, 30, 60])
    ap.add_argument("--block-days", type=int, default=7)
    args = ap.parse_args()

    req = requirement(args.days, args.interval)
    rules = Shifts(block_days=args.block_days)
    cpu0 = time.process_time()
    plan = schedule_shifts(req, args.interval, rules, RATE_USD, start_date=START)
    cpu_s = time.process_time() - cpu0

    hours = args.interval / 60.0
    need_h = req.sum() * hours
    sched_h = plan.scheduled.sum() * hours
    paid_h = float((plan.shifts["agents"] * plan.shifts["paid_hours"]).sum())
    by_type = plan.shifts.groupby("shift_type")["agents"].sum()
    print(f"machine            {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print(f"requirement        {args.days} days x {req.shape[1]} intervals of {args.interval} min, "
          f"0..{req.max()} agents, {need_h:,.0f} agent-hours")
    print(f"solve time         {plan.solve_s:.2f} s wall, {cpu_s:.2f} s CPU of this process "
          f"({plan.blocks} blocks of {args.block_days} days)")
    print(f"cost               {plan.cost_usd:,.2f} USD ({paid_h:,.0f} paid hours at {RATE_USD} USD)")
    print(f"worst MIP gap      {plan.mip_gap:.2e}")
    print(f"shifts             {len(plan.shifts):,} rows, {int(plan.shifts['agents'].sum()):,} agent-shifts "
          f"({', '.join(f'{k} {v:,}' for k, v in by_type.items())})")
    print(f"coverage surplus   {sched_h - need_h:,.0f} agent-hours on duty beyond the requirement "
          f"({(sched_h - need_h) / need_h:.1%}); paid/required {paid_h / need_h:.3f}")
    print(f"coverage met       {bool((plan.scheduled >= req).all())}")


if __name__ == "__main__":
    main()
