"""The calibrated scenario's calendar: the base's dated lists that were not fitted (peaks,
degradation, staffing plans) moved by whole years onto the history's dates."""

from __future__ import annotations

import datetime as dt
from typing import Any

from calibration.collector import Collector
from calibration.summaries import Window
from sim.scenario import Scenario

__all__ = ["redate"]


def _shift_years(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def redate(base: Scenario, w: Window, out: Collector) -> None:
    """Move the base's dated lists that were not fitted onto the history's calendar (whole years,
    so seasons line up) and make the first staffing plans cover the history start."""
    start = w.start.date()
    years = start.year - base.start_date.year
    if _shift_years(base.start_date, years) > start:
        years -= 1
    fitted = {q.path for q in out.params}

    def shift_list(items: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
        res = []
        for it in items:
            it = dict(it)
            for k in keys:
                v = it[k]
                if isinstance(v, dt.datetime):
                    it[k] = (v.replace(year=v.year + years) if not (v.month == 2 and v.day == 29) else v.replace(year=v.year + years, day=28)).isoformat()
                else:
                    it[k] = _shift_years(dt.date.fromisoformat(str(v)[:10]), years).isoformat()
            res.append(it)
        return res

    moved = []
    dump = base.model_dump(mode="json")
    if "demand.peaks" not in fitted and dump["demand"]["peaks"]:
        out.set("demand.peaks", shift_list(dump["demand"]["peaks"], ("start", "end")))
        moved.append("demand.peaks")
    if "carrier.degradation" not in fitted and dump["carrier"]["degradation"]:
        out.set("carrier.degradation", shift_list(dump["carrier"]["degradation"], ("start", "end")))
        moved.append("carrier.degradation")
    pools: list[tuple[str, dict[str, Any]]] = [(f"contacts.channels.{ch}", cfg) for ch, cfg in dump["contacts"]["channels"].items()]
    if dump["contacts"].get("tier2"):
        pools.append(("contacts.tier2", dump["contacts"]["tier2"]))
    for prefix, cfg in pools:
        if f"{prefix}.staffing" not in fitted:
            plans = shift_list(cfg["staffing"], ("start",))
            if dt.date.fromisoformat(plans[0]["start"]) > start:
                plans[0]["start"] = start.isoformat()
            out.set(f"{prefix}.staffing", plans)
            moved.append(f"{prefix}.staffing")
            for key in ("seasonal_hires", "overtime"):
                if cfg.get(key):
                    out.set(f"{prefix}.{key}", shift_list(cfg[key], ("start", "end")))
                    moved.append(f"{prefix}.{key}")
    if dump["incidents"]:
        out.set("incidents", [])
        out.notes.append("the base's incidents were dropped: the calibrated scenario reproduces the history (add incidents in a scenario that extends it)")
    if moved:
        out.notes.append(f"kept from the base and moved {years:+d} year(s) onto the history's calendar: {', '.join(moved)}")
    out.models["calendar"] = {"years_shifted": years, "moved": moved}
