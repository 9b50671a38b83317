"""How long the dashboard takes to show a comparison of 6 scenarios x 20 replications.

Creates the run once (or reuses a matching one in ``--runs``), then times, on a fresh data source
(nothing cached: Parquet read from disk) and again warm (cached):

- the comparison: loading the runs and combining them (``DataSource.comparison``);
- every page's callback as the browser triggers it, including Dash's JSON encoding of the figures:
  Compare (cards + KPI table), Retention, Cost-to-serve, LTV, program ROI, Peak service;
- the Compare page through the real HTTP callback endpoint (Flask test client).

The target (issue 3) is under 2 seconds for the comparison after the runs exist.

    python benchmarks/bench_dashboard.py [--runs DIR] [--reps 20] [--horizon-days N] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import plotly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboard import data  # noqa: E402
from dashboard import figures as fg  # noqa: E402
from dashboard.app import create_app  # noqa: E402
from dashboard.pages import compare, cost, ltv, peak, retention  # noqa: E402
from sim.experiment import run_experiment, with_horizon  # noqa: E402
from sim.loader import load_scenario  # noqa: E402
from sim.store import list_runs, load_run, write_run  # noqa: E402

SCENARIOS = (
    "baseline",
    "ai_assistant",
    "proactive_alerts",
    "exchange_first",
    "loyalty_tiers",
    "paid_membership",
)
TARGET_S = 2.0


def find_or_create_run(
    runs_dir: Path, reps: int, horizon: int | None, workers: int | None, seed: int
) -> str:
    for info in list_runs(runs_dir):
        if info.ok and info.reps == reps and set(SCENARIOS) <= set(info.scenarios):
            print(f"reusing run {info.run_id} ({len(info.scenarios)} scenarios x {info.reps} reps)")
            return info.run_id
    scenarios = [load_scenario(ROOT / "scenarios" / f"{name}.yaml") for name in SCENARIOS]
    if horizon is not None:
        scenarios = [with_horizon(s, horizon) for s in scenarios]
    print(
        f"creating a run of {len(scenarios)} scenarios x {reps} reps in {runs_dir} (this takes a while) ..."
    )
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        print(f"  {done}/{total} replications, {time.perf_counter() - t0:.0f} s", flush=True)

    results = run_experiment(scenarios, reps, seed, workers=workers, progress=progress)
    wall = time.perf_counter() - t0
    path = write_run(
        runs_dir, results, {s.name: s for s in scenarios}, seed, reps, {"wall_s": round(wall, 1)}
    )
    print(f"created {path.name} in {wall:.0f} s")
    return path.name


def encode(obj: object) -> int:
    """Bytes of the JSON Dash sends for a callback output."""
    return len(json.dumps(obj, cls=plotly.utils.PlotlyJSONEncoder))


def time_pages(keys: list[str], baseline: str) -> dict[str, float]:
    out: dict[str, float] = {}
    t = time.perf_counter()
    comp = data.source().comparison(keys, baseline)
    out["comparison (load + combine)"] = time.perf_counter() - t
    steps = {
        "compare page (cards + table)": lambda: compare.update_compare(keys, baseline, "headline"),
        "compare page, all metrics": lambda: compare.update_compare(keys, baseline, "all"),
        "retention": lambda: retention.update_retention(keys, baseline),
        "cost-to-serve": lambda: cost.update_cost(keys, baseline),
        "ltv": lambda: ltv.update_ltv(keys, baseline, None),
        "program roi": lambda: ltv.update_roi(
            keys, baseline, comp.variants[0], list(fg.PROGRAM_CATEGORIES)
        ),
        "peak service (BF week)": lambda: peak.update_peak(keys, baseline, comp.baseline, "bf"),
        "peak service (whole horizon)": lambda: peak.update_peak(
            keys, baseline, comp.baseline, "all"
        ),
    }
    for name, fn in steps.items():
        t = time.perf_counter()
        encode(fn())
        out[name] = time.perf_counter() - t
    return out


def http_compare(app: object, keys: list[str], baseline: str) -> float:
    client = app.server.test_client()  # type: ignore[attr-defined]
    client.get("/")  # first request: Dash sets up its routes and callbacks
    payload = {
        "output": "compare-body.children",
        "outputs": {"id": "compare-body", "property": "children"},
        "inputs": [
            {"id": "shell-selection", "property": "value", "value": keys},
            {"id": "shell-baseline", "property": "value", "value": baseline},
            {"id": "compare-group", "property": "value", "value": "headline"},
        ],
        "changedPropIds": ["shell-selection.value"],
        "state": [],
    }
    t = time.perf_counter()
    resp = client.post("/_dash-update-component", json=payload)
    took = time.perf_counter() - t
    if resp.status_code != 200:
        raise SystemExit(f"callback endpoint answered {resp.status_code}: {resp.data[:300]!r}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("/tmp/cxsim-bench-dashboard-runs"))
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument(
        "--horizon-days", type=int, default=None, help="default: each scenario's own horizon"
    )
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=20261101)
    args = ap.parse_args()

    run_id = find_or_create_run(args.runs, args.reps, args.horizon_days, args.workers, args.seed)
    keys = [data.make_key(run_id, s) for s in SCENARIOS]
    baseline = keys[0]

    d = load_run(args.runs, run_id)
    print(
        f"run {run_id}: kpis {len(d.kpis):,} rows, daily {len(d.daily):,}, intervals {len(d.intervals):,}, "
        f"cohorts {len(d.cohorts):,}"
    )
    create_app(args.runs, ROOT / "scenarios")  # a fresh data source: nothing cached in memory
    cold = time_pages(keys, baseline)
    warm = time_pages(keys, baseline)
    print(f"\n{'step':34s} {'cold s':>8s} {'warm s':>8s}")
    for name in cold:
        print(f"{name:34s} {cold[name]:8.3f} {warm[name]:8.3f}")
    first = cold["comparison (load + combine)"] + cold["compare page (cards + table)"]
    all_pages = sum(cold.values())
    print(
        f"\nCompare page from a cold start (load 6x{args.reps} + table + cards): {first:.2f} s (target < {TARGET_S} s)"
    )
    print(f"Every page once, cold: {all_pages:.2f} s; warm: {sum(warm.values()):.2f} s")

    app = create_app(args.runs, ROOT / "scenarios")
    took = http_compare(app, keys, baseline)
    print(f"Compare page through the HTTP callback endpoint, cold: {took:.2f} s")
    took = http_compare(app, keys, baseline)
    print(f"Compare page through the HTTP callback endpoint, warm: {took:.2f} s")
    if first >= TARGET_S:
        raise SystemExit(f"too slow: {first:.2f} s >= {TARGET_S} s")


if __name__ == "__main__":
    main()
