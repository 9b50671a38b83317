"""What a plan looks like to the outside: the planned scenario file's content and the WFM tables.

Pure functions (mappings and frames); the CLI writes them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from sim.planner.plan import PlanResult
from sim.planner.pools import pool_config


def planned_file_doc(result: PlanResult, extends: str, name: str) -> dict[str, Any]:
    """The mapping of a planned scenario file: ``extends`` the input file (a path relative to the
    new file), renames the scenario, sets ``planner.mode: fixed`` (the plan is written in) and lists
    only each planned pool's ``staffing`` (and its emptied ``overtime``) plus the provenance."""
    data = result.scenario.model_dump(mode="json")
    doc: dict[str, Any] = {
        "extends": extends,
        "name": name,
        "description": (result.scenario.description + " " if result.scenario.description else "")
        + "Staffing planned by cxsim plan.",
        "planner": {"mode": "fixed"},
    }
    channels: dict[str, Any] = {}
    contacts: dict[str, Any] = {}
    for pool in result.provenance["pools"]:
        cfg = pool_config(result.scenario, pool)
        staffing = [_compact(p.model_dump(mode="json")) for p in cfg.staffing]
        if pool == "tier2":
            contacts["tier2"] = {"staffing": staffing}
        else:
            channels[pool] = {"staffing": staffing, "overtime": []}
    if channels:
        contacts["channels"] = channels
    doc["contacts"] = contacts
    doc["provenance"] = data["provenance"]
    return doc


def _compact(plan: dict[str, Any]) -> dict[str, Any]:
    """A staffing entry without its default fields, and whole numbers written as integers."""
    out: dict[str, Any] = {"start": plan["start"]}
    for key in ("agents_by_hour", "agents_by_interval"):
        if plan.get(key) is not None:
            out[key] = [int(a) if float(a).is_integer() else a for a in plan[key]]
    if plan.get("weekday_factors") and any(f != 1.0 for f in plan["weekday_factors"]):
        out["weekday_factors"] = plan["weekday_factors"]
    if plan.get("premium_cost_usd_per_day"):
        out["premium_cost_usd_per_day"] = plan["premium_cost_usd_per_day"]
    return out


def shifts_csv_frame(shifts: pd.DataFrame) -> pd.DataFrame:
    """The shifts table in the form a WFM tool imports: one row per channel and shift start, local
    date-times as ISO text, the break as start/end (empty when none), agents, paid hours, cost."""
    def iso(col: str) -> pd.Series:
        return shifts[col].dt.strftime("%Y-%m-%dT%H:%M").fillna("")

    return pd.DataFrame({
        "channel": shifts["channel"],
        "shift_type": shifts["shift_type"],
        "start": iso("start"),
        "end": iso("end"),
        "break_start": iso("break_start"),
        "break_end": iso("break_end"),
        "agents": shifts["agents"],
        "paid_hours": shifts["paid_hours"].round(2),
        "cost_usd": shifts["cost_usd"].round(2),
    })
