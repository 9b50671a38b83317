"""What-if: edit a few levers of a shipped scenario, run it, store the run.

Pure functions except :func:`run_whatif`, which simulates (through
:func:`sim.experiment.run_experiment`) and writes a run (through :func:`sim.store.write_run`). The
dashboard calls it only from a background callback, never on a request thread.

Edits are made on the scenario file's *resolved* mapping (``extends`` merged, as written by the
user, defaults not expanded), so the edited scenario saved as YAML reads like the original with a
few values changed, and validates with ``cxsim validate``.
"""

from __future__ import annotations

import copy
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dashboard.data import DataSource, ScenarioFile, SelectionError, make_key
from dashboard.figures import peak_windows
from sim.experiment import run_experiment, with_horizon
from sim.loader import ScenarioError, dump_scenario_yaml, resolve_raw, scenario_from_dict
from sim.scenario import CHANNELS, Scenario
from sim.store import StoreError, write_run

STAFFED_POOLS: tuple[str, ...] = (*CHANNELS, "tier2")
SWITCHES: dict[str, str] = {
    "automation": "Automated assistant / self-service on",
    "delay_alerts": "Proactive delay alerts",
    "free_returns": "Free returns",
    "exchange_first": "Exchange-first returns flow",
}
LOYALTY_TYPES: dict[str, str] = {
    "none": "No program",
    "points": "Points",
    "tiers": "Tiers (VIP)",
    "membership": "Paid membership",
}
DEFAULT_PROGRAMS: dict[str, dict[str, Any]] = {
    "points": {"type": "points"},
    "tiers": {
        "type": "tiers",
        "min_orders": [2, 4],
        "dropout_logit_shift": [-0.2, -0.45],
        "rate_multiplier": [1.05, 1.15],
        "perk_cost_per_order_usd": [0.5, 1.5],
    },
    "membership": {"type": "membership", "fee_per_year_usd": 49.0, "uptake_probability": 0.1},
}
"""Program settings used when neither the chosen scenario nor another shipped file defines one."""

MULTIPLIER_RANGE = (0.1, 5.0)
CONTAINMENT_RANGE = (0.0, 5.0)
REPS_RANGE = (1, 20)
HORIZON_RANGE = (14, 730)
DEFAULT_REPS = 3
DEFAULT_HORIZON_DAYS = 90
MAX_DEFAULT_HORIZON_DAYS = 100
"""A what-if of 2 scenarios x 3 replications over ~90 days takes about 20 s on two cores."""
DEFAULT_SEED = 1
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

ProgressFn = Callable[[int, int], None]


class WhatifError(Exception):
    """The what-if request is invalid or failed; ``str()`` is a message for the user."""


@dataclass(frozen=True)
class Levers:
    """The editable levers. Multipliers of 1 and unchanged switches leave the scenario as it is."""

    name: str
    staffing: Mapping[str, float] = field(default_factory=dict)
    automation: bool = False
    containment_multiplier: float = 1.0
    delay_alerts: bool = False
    free_returns: bool = True
    exchange_first: bool = False
    loyalty: str = "none"


@dataclass(frozen=True)
class RunRequest:
    file: str
    levers: Levers
    reps: int = DEFAULT_REPS
    horizon_days: int = DEFAULT_HORIZON_DAYS
    seed: int = DEFAULT_SEED
    include_base: bool = True


@dataclass(frozen=True)
class WhatifOutcome:
    run_id: str
    keys: list[str]
    baseline_key: str | None
    scenarios: list[str]
    seconds: float


def current_levers(scenario: Scenario, name: str | None = None) -> Levers:
    """The levers as the scenario has them (multipliers 1)."""
    program = scenario.loyalty.program
    return Levers(
        name=name or f"{scenario.name}_whatif",
        staffing=dict.fromkeys(staffed_pools(scenario), 1.0),
        automation=scenario.automation.enabled,
        containment_multiplier=1.0,
        delay_alerts=scenario.notifications.delay_alerts,
        free_returns=scenario.returns.free_returns,
        exchange_first=scenario.returns.exchange_first,
        loyalty=program.type if program is not None else "none",
    )


def default_horizon_days(scenario: Scenario) -> int:
    """A short horizon for a quick run: to the end of the Black Friday week when that is at most
    :data:`MAX_DEFAULT_HORIZON_DAYS` away, else :data:`DEFAULT_HORIZON_DAYS` (never longer than
    the scenario's own)."""
    bf = peak_windows(scenario.start_date, scenario.horizon_days).get("bf")
    if bf is not None:
        days = (bf[1] - pd.Timestamp(scenario.start_date)).days
        if days <= MAX_DEFAULT_HORIZON_DAYS:
            return min(days, scenario.horizon_days)
    return min(DEFAULT_HORIZON_DAYS, scenario.horizon_days)


def staffed_pools(scenario: Scenario) -> list[str]:
    pools: list[str] = [c for c in CHANNELS if c in scenario.contacts.channels]
    return [*pools, "tier2"] if scenario.contacts.tier2 is not None else pools


def _scale_agents(cfg: dict[str, Any], factor: float) -> None:
    for key in ("staffing", "seasonal_hires"):
        for plan in cfg.get(key) or []:
            plan["agents_by_hour"] = [round(float(a) * factor, 4) for a in plan["agents_by_hour"]]


def _section(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    sec = mapping.get(key)
    if not isinstance(sec, dict):
        sec = {}
        mapping[key] = sec
    return sec


def apply_levers(
    raw: Mapping[str, Any],
    levers: Levers,
    programs: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A new scenario mapping: ``raw`` (a resolved file mapping) with the levers applied, renamed to
    ``levers.name`` and its description saying what changed. ``raw`` is not modified.

    ``programs`` maps a loyalty type to a ``loyalty`` section to borrow when switching to a program
    the scenario does not have (default :data:`DEFAULT_PROGRAMS`).
    """
    base = scenario_from_dict(dict(raw), "the chosen scenario")
    now = current_levers(base)
    out = copy.deepcopy(dict(raw))
    changes = []
    contacts = out["contacts"]
    for pool, factor in levers.staffing.items():
        if pool not in now.staffing or math.isclose(factor, 1.0):
            continue
        cfg = contacts.get("tier2") if pool == "tier2" else contacts["channels"].get(pool)
        if isinstance(cfg, dict):
            _scale_agents(cfg, factor)
            changes.append(f"{pool} staffing x{factor:g}")
    if levers.automation != now.automation:
        _section(out, "automation")["enabled"] = levers.automation
        changes.append(f"automation {'on' if levers.automation else 'off'}")
    if not math.isclose(levers.containment_multiplier, 1.0):
        for cfg in contacts["reasons"].values():
            if "containment" in cfg:
                cfg["containment"] = min(
                    1.0, round(float(cfg["containment"]) * levers.containment_multiplier, 6)
                )
        changes.append(f"containment x{levers.containment_multiplier:g}")
    if levers.delay_alerts != now.delay_alerts:
        _section(out, "notifications")["delay_alerts"] = levers.delay_alerts
        changes.append(f"delay alerts {'on' if levers.delay_alerts else 'off'}")
    if levers.free_returns != now.free_returns:
        out["returns"]["free_returns"] = levers.free_returns
        changes.append("free returns" if levers.free_returns else "paid returns")
    if levers.exchange_first != now.exchange_first:
        out["returns"]["exchange_first"] = levers.exchange_first
        changes.append(f"exchange-first {'on' if levers.exchange_first else 'off'}")
    if levers.loyalty != now.loyalty:
        loyalty = _section(out, "loyalty")
        if levers.loyalty == "none":
            loyalty["program"] = None
            loyalty["program_cost_per_month_usd"] = 0.0
        else:
            source = (programs or {}).get(levers.loyalty) or {
                "program": DEFAULT_PROGRAMS[levers.loyalty]
            }
            loyalty["program"] = copy.deepcopy(dict(source["program"]))
            if "program_cost_per_month_usd" in source:
                loyalty["program_cost_per_month_usd"] = source["program_cost_per_month_usd"]
        changes.append(f"loyalty: {LOYALTY_TYPES[levers.loyalty].lower()}")
    out["name"] = levers.name
    what = "; ".join(changes) if changes else "no lever changed"
    out["description"] = f"What-if of {base.name}: {what}."
    return out


def program_templates(files: list[ScenarioFile]) -> dict[str, dict[str, Any]]:
    """Loyalty sections of the shipped scenario files, by program type (first file wins)."""
    out: dict[str, dict[str, Any]] = {}
    for f in files:
        if not f.ok:
            continue
        try:
            loyalty = resolve_raw(f.path).get("loyalty") or {}
        except ScenarioError:
            continue
        program = loyalty.get("program") if isinstance(loyalty, dict) else None
        if (
            isinstance(program, dict)
            and program.get("type") in DEFAULT_PROGRAMS
            and program["type"] not in out
        ):
            out[program["type"]] = {
                k: v for k, v in loyalty.items() if k in ("program", "program_cost_per_month_usd")
            }
    return out


def edited_mapping(src: DataSource, req: RunRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(base mapping, edited mapping)`` of a request, the edited one validated.

    Raises :class:`WhatifError` with the loader's message when the result does not validate.
    """
    try:
        file = src.scenario_file(req.file)
    except SelectionError as exc:
        raise WhatifError(str(exc)) from None
    try:
        raw = resolve_raw(file.path)
        base = scenario_from_dict(raw, file.path)
    except ScenarioError as exc:
        raise WhatifError(str(exc)) from None
    if req.include_base and req.levers.name == base.name:
        raise WhatifError(
            f"Give the edited scenario a new name (not {base.name!r}): the unedited one runs next to it."
        )
    try:
        edited = apply_levers(raw, req.levers, program_templates(src.scenario_files()))
        scenario_from_dict(edited, f"{req.levers.name} (edited {file.path.name})")
    except ScenarioError as exc:
        raise WhatifError(f"The edited scenario does not validate:\n{exc}") from None
    return raw, edited


def scenario_yaml(edited: Mapping[str, Any]) -> str:
    """YAML text of an edited mapping, checked to load back as a valid scenario."""
    import yaml

    text = dump_scenario_yaml(dict(edited))
    try:
        scenario_from_dict(yaml.safe_load(text), "the downloaded YAML")
    except ScenarioError as exc:  # pragma: no cover - dump_scenario_yaml round-trips
        raise WhatifError(str(exc)) from None
    return text


def _number(value: Any, what: str, lo: float, hi: float, integer: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise WhatifError(f"{what}: enter a number between {lo:g} and {hi:g}.") from None
    if not (math.isfinite(v) and lo <= v <= hi) or (integer and v != int(v)):
        kind = "a whole number" if integer else "a number"
        raise WhatifError(f"{what}: enter {kind} between {lo:g} and {hi:g} (got {value}).")
    return v


def parse_request(form: Mapping[str, Any]) -> RunRequest:
    """A :class:`RunRequest` from the page's form values, checked; :class:`WhatifError` says what
    is wrong. Nothing here touches files: ``file`` is only looked up later in the server's list."""
    file = form.get("scenario")
    if not isinstance(file, str) or not file:
        raise WhatifError("Choose a scenario to start from.")
    name = form.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name.strip()):
        raise WhatifError("Name: use 1-64 letters, digits, '_', '-' or '.'.")
    staffing = {
        p: _number(form.get(f"staff_{p}", 1.0), f"{p} staffing multiplier", *MULTIPLIER_RANGE)
        for p in STAFFED_POOLS
        if form.get(f"staff_{p}") is not None
    }
    switches = form.get("switches") or []
    if not isinstance(switches, list) or any(s not in SWITCHES for s in switches):
        raise WhatifError("Unknown switch.")
    loyalty = form.get("loyalty")
    if loyalty not in LOYALTY_TYPES:
        raise WhatifError("Choose a loyalty program.")
    levers = Levers(
        name=name.strip(),
        staffing=staffing,
        automation="automation" in switches,
        containment_multiplier=_number(
            form.get("containment", 1.0), "Containment multiplier", *CONTAINMENT_RANGE
        ),
        delay_alerts="delay_alerts" in switches,
        free_returns="free_returns" in switches,
        exchange_first="exchange_first" in switches,
        loyalty=str(loyalty),
    )
    return RunRequest(
        file=file,
        levers=levers,
        reps=int(_number(form.get("reps"), "Replications", *REPS_RANGE, integer=True)),
        horizon_days=int(
            _number(form.get("horizon"), "Horizon (days)", *HORIZON_RANGE, integer=True)
        ),
        seed=int(_number(form.get("seed"), "Seed", 0, 2**32 - 1, integer=True)),
        include_base=bool(form.get("include_base")),
    )


def run_whatif(
    src: DataSource, req: RunRequest, progress: ProgressFn | None = None
) -> WhatifOutcome:
    """Simulate the edited scenario (and, with ``include_base``, the unedited one with the same
    seeds, so the comparison is paired) and store the run. Raises :class:`WhatifError`."""
    raw, edited = edited_mapping(src, req)
    scenarios = [scenario_from_dict(edited, req.levers.name)]
    if req.include_base:
        scenarios.insert(0, scenario_from_dict(raw, req.file))
    try:
        scenarios = [
            s if s.horizon_days == req.horizon_days else with_horizon(s, req.horizon_days)
            for s in scenarios
        ]
    except ScenarioError as exc:
        raise WhatifError(str(exc)) from None
    workers = max(1, min(2, os.cpu_count() or 1, req.reps * len(scenarios)))
    t0 = time.perf_counter()
    try:
        results = run_experiment(scenarios, req.reps, req.seed, workers=workers, progress=progress)
        elapsed = time.perf_counter() - t0
        path = write_run(
            src.runs_dir,
            results,
            {s.name: s for s in scenarios},
            req.seed,
            req.reps,
            {  # the keys `cxsim run` writes, plus where the run came from
                "wall_s": round(elapsed, 3),
                "workers": workers,
                "scheduler": None,
                "replications": len(results),
                "source": "dashboard what-if",
            },
        )
    except StoreError as exc:
        raise WhatifError(f"The run could not be saved: {exc}") from None
    except Exception as exc:
        raise WhatifError(f"The simulation failed: {type(exc).__name__}: {exc}") from None
    run_id = path.name
    keys = [make_key(run_id, s.name) for s in scenarios]
    return WhatifOutcome(
        run_id=run_id,
        keys=keys,
        baseline_key=keys[0] if req.include_base else None,
        scenarios=[s.name for s in scenarios],
        seconds=time.perf_counter() - t0,
    )
