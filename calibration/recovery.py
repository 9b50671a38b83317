"""Recovery checks: compare a calibration's fitted intervals with the scenario that generated the
history (``truth.json`` of ``cxsim synth-history``). Used by tests/test_calibration_recovery.py and
by coverage studies over many seeds.

Truth for each interval: the value at the same key path of the scenario; a distribution's ``mean``
and ``cv``; a list's entry (hour and weekday profiles normalised to mean 1, as fitted); a fitted
dated period's multiplier is compared with the true period it overlaps most (1 if it overlaps none
for at least half its length). ``new_customers_per_day`` is compared at the weekday-average level.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from calibration.results import Calibration


@dataclass(frozen=True)
class Check:
    """One fitted interval against the truth."""

    path: str
    key: str
    truth: float
    estimate: float
    low: float
    high: float

    @property
    def covered(self) -> bool:
        return self.low - 1e-9 <= self.truth <= self.high + 1e-9


def _at(tree: dict[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _period_truth(periods: list[dict[str, Any]], label: str) -> float | None:
    """Multiplier of the true period that the fitted period ``fitted_YYYYMMDD_YYYYMMDD`` overlaps most."""
    _, a, b = label.split("_")
    lo, hi = dt.date(int(a[:4]), int(a[4:6]), int(a[6:])), dt.date(int(b[:4]), int(b[4:6]), int(b[6:]))
    best, best_days = None, 0
    for p in periods:
        s, e = dt.date.fromisoformat(str(p["start"])), dt.date.fromisoformat(str(p["end"]))
        days = (min(e, hi) - max(s, lo)).days + 1
        if days > best_days:
            best, best_days = float(p["multiplier"]), days
    length = (hi - lo).days + 1
    return best if best_days >= 0.5 * length else 1.0


def checks(cal: Calibration, truth: dict[str, Any]) -> list[Check]:
    """Every fitted interval that has a known true value in ``truth`` (a scenario dump)."""
    out: list[Check] = []
    for p in cal.params:
        t = _at(truth, p.path)
        for key, (est, lo, hi) in p.intervals.items():
            tv: Any = None
            if p.path in ("demand.peaks", "carrier.degradation"):
                if not key.startswith("fitted_"):
                    continue  # a fitted uplift repeated on its named event in another year: not a new estimate
                tv = _period_truth(t or [], key)
            elif key == "value":
                tv = t
                if p.path == "demand.new_customers_per_day":
                    tv = float(t) * float(np.mean(truth["demand"]["weekday_factors"]))
            elif key in ("mean", "cv") and isinstance(t, dict):
                tv = t.get(key, 1.0 if t.get("dist") == "exponential" and key == "cv" else None)
                if t.get("dist") == "deterministic" and key == "cv":
                    tv = None
            elif isinstance(t, list) and key.isdigit():
                arr = np.asarray(t, dtype=float)
                if p.path.endswith("hour_weights") or p.path.endswith("weekday_factors"):
                    arr = arr / arr.mean()
                tv = arr[int(key)]
            elif isinstance(t, dict):
                tv = t.get(key)
            if isinstance(tv, int | float) and not isinstance(tv, bool) and math.isfinite(float(tv)) and all(map(math.isfinite, (lo, hi))):
                out.append(Check(p.path, key, float(tv), float(est), float(lo), float(hi)))
    return out
