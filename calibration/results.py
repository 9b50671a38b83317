"""What a calibration hands back: each fitted value (:class:`Param`) and the whole outcome
(:class:`Calibration`), with :func:`jsonable` turning their contents into JSON-ready values."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from calibration.summaries import Prepared, Window
from sim.scenario import Scenario

__all__ = ["Calibration", "Param", "jsonable"]


@dataclass
class Param:
    """One fitted scenario value.

    ``path`` is the dotted key in the scenario file; ``value`` what is written there (a number,
    a list, or a distribution mapping). ``intervals`` maps each reported quantity (``value`` for a
    plain number, ``mean`` / ``cv`` for a distribution, an index for a list) to
    ``(estimate, low, high)``: a 95% interval.
    """

    path: str
    value: Any
    intervals: dict[str, tuple[float, float, float]]
    unit: str
    method: str
    n: int
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def jf(v: Any) -> Any:
            return float(v) if isinstance(v, float | int | np.floating | np.integer) and math.isfinite(float(v)) else None

        return {
            "path": self.path,
            "value": jsonable(self.value),
            "intervals": {k: {"estimate": jf(e), "low": jf(lo), "high": jf(hi)} for k, (e, lo, hi) in self.intervals.items()},
            "unit": self.unit,
            "method": self.method,
            "n": int(self.n),
            "diagnostics": jsonable(self.diagnostics),
        }


def jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return [jsonable(x) for x in v.tolist()]
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(float(v)) else None
    if isinstance(v, dt.date | pd.Timestamp):
        return v.isoformat()
    return v


@dataclass
class Calibration:
    """The outcome of :func:`calibrate`."""

    overrides: dict[str, Any]
    params: list[Param]
    kept: list[dict[str, str]]
    warnings: list[str]
    notes: list[str]
    models: dict[str, Any]
    window: Window
    scenario: Scenario
    prepared: Prepared
    inputs: dict[str, Any]
    fitted_sections: dict[str, list[str]]

    def param(self, path: str) -> Param | None:
        return next((p for p in self.params if p.path == path), None)
