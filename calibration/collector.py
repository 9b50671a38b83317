"""The collector every calibration stage writes into (:class:`Collector`: overrides, fitted
parameters, warnings, notes, model diagnostics, reasons for keeping base values), the sample-size
thresholds the stages share, and small helpers to record a fitted distribution or proportion."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from calibration import distfit
from calibration.results import Param

Z95 = 1.959963984540054


MIN_N_DURATION = 30
"""Fewest observations for fitting a distribution (handle time, delay, patience, ...)."""


MIN_N_RATE = 20
"""Fewest triggers for fitting a probability."""


BOOTSTRAP_MAX_N = 3000
"""Samples up to this size get bootstrap intervals (B = 200); larger ones the delta method."""


class Collector:
    """Collects overrides, fitted parameters, warnings and diagnostics while fitting."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.base = base
        self.overrides: dict[str, Any] = {}
        self.params: list[Param] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.models: dict[str, Any] = {}
        self.reasons: dict[str, str] = {}  # path prefix -> why it was not fitted
        self.sections: dict[str, list[str]] = {}

    def base_at(self, path: str) -> Any:
        node: Any = self.base
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def set(self, path: str, value: Any) -> None:
        node = self.overrides
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def fit(self, path: str, value: Any, intervals: dict[str, tuple[float, float, float]], unit: str,
            method: str, n: int, section: str, diag: dict[str, Any] | None = None, **diagnostics: Any) -> None:
        self.set(path, value)
        self.params.append(Param(path, value, intervals, unit, method, int(n), {**(diag or {}), **diagnostics}))
        self.sections.setdefault(section, []).append(path)

    def why(self, prefix: str, reason: str) -> None:
        self.reasons.setdefault(prefix, reason)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def record_distribution(out: Collector, path: str, fit: Any, unit_factor: float, unit: str, method: str, section: str, extra: dict[str, Any] | None = None) -> bool:
    """Record a duration fit (distfit.DurationFit or CensoredFit) as a scenario distribution."""
    if fit is None:
        return False
    if not fit.converged or not math.isfinite(fit.mean):
        out.warn(f"{path}: the fit did not converge ({fit.message}); the base value is kept")
        out.why(path, f"fit did not converge: {fit.message}")
        return False
    value = {k: (sig(v) if isinstance(v, float) else v) for k, v in fit.to_scenario_dist(unit_factor).items()}
    if value["dist"] == "weibull" and value["cv"] <= 0.05:
        value = {"dist": "gamma", "mean": value["mean"], "cv": value["cv"]}
    if value.get("cv", 1.0) > 20:
        out.warn(f"{path}: fitted cv {value['cv']:.1f} exceeds the scenario limit 20; the base value is kept")
        return False
    lo_m, hi_m = fit.mean_ci95
    intervals = {"mean": (fit.mean * unit_factor, lo_m * unit_factor, hi_m * unit_factor)}
    if value["dist"] != "exponential":
        intervals["cv"] = (fit.cv, *fit.cv_ci95)
    diag = fit.to_dict()
    diag.pop("fits", None)
    diag.update(extra or {})
    out.fit(path, value, intervals, unit, method, int(getattr(fit, "n", 0)), section, diag=diag)
    return True


def duration_fit(x: np.ndarray, rng: np.random.Generator, families: tuple[str, ...] = distfit.FAMILIES) -> distfit.DurationFit | None:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x) & (x > 0)]
    if len(x) < MIN_N_DURATION or np.ptp(x) == 0:
        return None
    B = 200 if len(x) <= BOOTSTRAP_MAX_N else 0
    try:
        return distfit.fit_duration(x, families, B=B, rng=rng)
    except ValueError:
        return None


def proportion_ci(k: int, n: int) -> tuple[float, float, float]:
    p, (lo, hi) = distfit.proportion(int(k), int(n))
    return p, lo, hi


def sig(v: float, digits: int = 6) -> float:
    """``v`` rounded to ``digits`` significant digits (readable scenario files)."""
    if v == 0 or not math.isfinite(v):
        return float(v)
    return float(f"{v:.{digits}g}")


def rounded(v: float, digits: int = 6) -> float:
    return float(round(float(v), digits))


def shares_to_one(shares: dict[str, float], digits: int = 6) -> dict[str, float]:
    """Round shares so that they sum to exactly 1 (the largest absorbs the rounding)."""
    out = {k: round(float(v), digits) for k, v in shares.items()}
    top = max(out, key=lambda k: out[k])
    out[top] = round(out[top] + 1.0 - sum(out.values()), digits)
    return out


def scenario_dist(d: dict[str, Any]) -> Any:
    from sim.distributions import Deterministic, Exponential, Gamma, Lognormal, Weibull

    cls = {"deterministic": Deterministic, "exponential": Exponential, "lognormal": Lognormal, "gamma": Gamma, "weibull": Weibull}[d["dist"]]
    return cls(**{k: v for k, v in d.items() if k != "dist"})
