"""Memory per order and per customer of one engine replication (a script, not a test).

The figures behind ``sim/limits.py`` (BYTES_PER_ORDER, BYTES_PER_CUSTOMER): each variant of the
baseline runs in a fresh process that reports its peak RSS growth and the orders, customers and
contacts it simulated; a least-squares fit of ``bytes = a + b x orders + c x customers`` over the
variants gives the two slopes. The variants move orders and customers independently (a large
existing base that rarely orders, many new customers, longer horizons).

Usage: python benchmarks/bench_footprint.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
VARIANTS: dict[str, dict[str, object]] = {
    "baseline 60 d": {"horizon_days": 60},
    "baseline 240 d": {"horizon_days": 240},
    "x4 new customers 120 d": {"horizon_days": 120, "demand": {"new_customers_per_day": 2200}},
    "1M existing, slow 60 d": {
        "horizon_days": 60,
        "demand": {"initial_customers": 1_000_000, "new_customers_per_day": 100},
        "repurchase": {"rate_shape_r": 0.15},
    },
    "2M existing, slow 60 d": {
        "horizon_days": 60,
        "demand": {"initial_customers": 2_000_000, "new_customers_per_day": 100},
        "repurchase": {"rate_shape_r": 0.15},
    },
}


def one(name: str) -> None:
    """Child process: run one variant, print JSON."""
    from sim.engine import Replication
    from sim.loader import deep_merge, resolve_raw, scenario_from_dict

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    s = scenario_from_dict(deep_merge(resolve_raw(BASELINE), VARIANTS[name]))
    rep = Replication(s, 20261122, 0)
    rep.run()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "orders": rep.orders.n, "customers": rep.customers.n, "contacts": rep.contacts.n,
        "bytes": (peak - before) * 1024,
    }))  # fmt: skip


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        one(sys.argv[2])
        return
    rows = []
    print(f"{'variant':<26} {'orders':>10} {'customers':>10} {'contacts':>9} {'peak MB':>8}")
    for name in VARIANTS:
        out = subprocess.run(
            [sys.executable, __file__, "--one", name], capture_output=True, text=True, check=True, cwd=ROOT
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{name:<26} {r['orders']:>10,} {r['customers']:>10,} {r['contacts']:>9,} {r['bytes'] / 2**20:>8.0f}")
    x = np.array([[1.0, r["orders"], r["customers"]] for r in rows])
    y = np.array([r["bytes"] for r in rows], dtype=float)
    (a, b, c), *_ = np.linalg.lstsq(x, y, rcond=None)
    print(f"\nfit: {a / 2**20:.0f} MB + {b:.0f} bytes/order + {c:.0f} bytes/customer")


if __name__ == "__main__":
    main()
