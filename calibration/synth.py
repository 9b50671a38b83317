"""Synthetic history: run the model from known parameters and export what a brand's systems would.

:func:`synth_history` simulates one replication of a scenario with event tables and writes
``orders.csv``, ``contacts.csv``, ``returns.csv`` and ``staffing.csv`` in the documented schemas
(:mod:`calibration.schemas`), plus ``truth.json`` (the resolved scenario, the seed and realised
totals) so that calibration can be tested by recovery.

The export is taken at the end of the horizon: what had not happened yet is empty (a parcel still
in transit has no ``delivered_ts`` and no ``delivery_status``; a chat still queued has neither
``answered_ts`` nor ``abandoned``). Tier-2 escalations are internal work, not customer contacts,
and are not exported; bot-contained contacts have channel ``bot``. With ``mess=True`` the files
look like real exports: optional fields missing in a few percent of rows, a few exact duplicate
rows, timestamps in mixed forms (``...Z``, ``...+01:00``, naive local time), some enum values in
other letter cases, and an extra column that calibration ignores.

:func:`events_to_frames` is the same conversion without the CSV round trip and without mess; the
backtest uses it to summarise simulated history exactly like the analyst's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import sim
from sim.calendar import MIN_PER_DAY, Calendar
from sim.contacts import BOT
from sim.delivery import LOST, OUTCOMES
from sim.engine import simulate
from sim.experiment import with_horizon
from sim.results import POOLS, ReplicationResult
from sim.returns import RETURN_OUTCOMES
from sim.scenario import REASONS, Scenario
from sim.staffing import pool_schedule

__all__ = ["MESS", "SynthError", "events_to_frames", "synth_history"]

TIER2 = POOLS.index("tier2")

MESS: dict[str, Any] = {
    "missing": {
        "orders": {"promised_delivery_date": 0.05, "shipped_ts": 0.03, "delivered_ts": 0.03, "delivery_status": 0.02},
        "contacts": {"customer_id": 0.05, "order_id": 0.02, "answered_ts": 0.02, "abandoned": 0.02,
                     "handle_time_sec": 0.03, "resolved": 0.05, "wait_sec": 0.02},
        "returns": {"reason": 0.10, "refunded_ts": 0.03},
        "staffing": {},
    },
    "duplicate_rows": 0.002,
    "timestamp_forms": {"utc_z": 0.4, "plus_one_hour": 0.3, "naive_local": 0.3},
    "enum_case_changes": 0.05,
}
"""What ``mess=True`` does (shares of rows)."""


class SynthError(Exception):
    """The synthetic history cannot be written (output folder in use, bad options)."""


def _utc(local: pd.Series | pd.DatetimeIndex, tz: str) -> pd.Series:
    s = pd.Series(local)
    if tz == "UTC":
        return s.dt.tz_localize("UTC")
    return s.dt.tz_localize(tz, ambiguous=np.ones(len(s), dtype=bool), nonexistent="shift_forward").dt.tz_convert("UTC")


def _stamp(start: pd.Timestamp, minutes: np.ndarray, tz: str) -> pd.Series:
    """UTC timestamps (whole seconds) of scenario minutes; NaT where minutes is NaN."""
    m = np.asarray(minutes, dtype=float)
    sec = np.round(m * 60.0)
    local = pd.Series(start + pd.to_timedelta(np.where(np.isnan(sec), 0, sec), unit="s"))
    out = _utc(local, tz)
    out[np.isnan(m)] = pd.NaT
    return out


def _ids(prefix: str, idx: np.ndarray) -> Any:
    """Text ids ``<prefix><index>``; missing where the index is -1 (a contact with no order)."""
    out = pd.array(np.char.add(prefix, idx.astype(str)), dtype="str")
    out[idx < 0] = pd.NA
    return out


def events_to_frames(result: ReplicationResult, scenario: Scenario, timezone: str = "UTC") -> dict[str, pd.DataFrame]:
    """The replication's events as history frames (the typed form :func:`read_history` returns),
    exported at the end of the horizon (see the module docstring)."""
    if result.events is None:
        raise ValueError("the replication was run without events=True")
    ev = result.events
    start = pd.Timestamp(scenario.start_date)
    end = scenario.horizon_days * MIN_PER_DAY
    o = ev["orders"]
    n = len(o)
    order_ids = np.char.add("O", np.arange(n).astype(str))
    outcome = o["outcome"].to_numpy()
    ship, deliv, prom = o["ship_min"].to_numpy(), o["delivered_min"].to_numpy(), o["promised_min"].to_numpy()
    lost_known = prom + scenario.carrier.lost_detect_days.mean * MIN_PER_DAY
    status_known = np.where(outcome == LOST, lost_known < end, np.nan_to_num(deliv, nan=np.inf) < end)
    status = np.where(status_known, np.asarray(OUTCOMES, dtype=object)[outcome], None)
    promised_local = start + pd.to_timedelta(prom, unit="m")
    orders = pd.DataFrame({
        "order_id": pd.array(order_ids, dtype="str"),
        "customer_id": pd.array(np.char.add("C", o["customer"].to_numpy().astype(str)), dtype="str"),
        "order_ts": _stamp(start, o["order_min"].to_numpy(), timezone),
        "order_value": o["value_usd"].to_numpy(dtype=float),
        "promised_delivery_date": pd.Series(promised_local).dt.normalize(),
        "shipped_ts": _stamp(start, np.where(ship < end, ship, np.nan), timezone),
        "delivered_ts": _stamp(start, np.where(np.nan_to_num(deliv, nan=np.inf) < end, deliv, np.nan), timezone),
        "delivery_status": pd.array(status, dtype="str"),
    })

    c = ev["contacts"]
    keep = (c["pool"].to_numpy() != TIER2) & (c["arrival_min"].to_numpy() < end)
    c = c[keep].reset_index(drop=True)
    pool = c["pool"].to_numpy()
    bot = pool == BOT
    channel = np.where(bot, "bot", np.asarray(POOLS, dtype=object)[np.where(bot, 0, pool)])
    arrival, start_m, end_m = c["arrival_min"].to_numpy(), c["start_min"].to_numpy(), c["end_min"].to_numpy()
    done = c["done"].to_numpy() & ~bot
    answered = done & c["answered"].to_numpy() & (np.nan_to_num(start_m, nan=np.inf) < end)
    finished = answered & (np.nan_to_num(end_m, nan=np.inf) < end)
    abandoned_now = done & ~c["answered"].to_numpy() & (np.nan_to_num(end_m, nan=np.inf) < end)
    realtime = np.array([
        bool(getattr(scenario.contacts.channels.get(p), "realtime", False)) if p in scenario.contacts.channels else False  # type: ignore[call-overload]
        for p in POOLS
    ])
    rt = ~bot & realtime[np.where(bot, 0, pool)]
    ab = pd.array(np.where(abandoned_now, True, False), dtype="boolean")
    ab[bot | (rt & ~answered & ~abandoned_now)] = pd.NA
    wait = np.where(answered, (start_m - arrival) * 60.0, np.where(abandoned_now, (end_m - arrival) * 60.0, np.nan))
    resolved = pd.array(c["resolved"].to_numpy() & ~c["escalate"].to_numpy(), dtype="boolean")
    resolved[~finished] = pd.NA
    contacts = pd.DataFrame({
        "contact_id": pd.array(np.char.add("K", np.arange(len(c)).astype(str)), dtype="str"),
        "created_ts": _stamp(start, arrival, timezone),
        "channel": pd.array(channel, dtype="str"),
        "reason": pd.array(np.asarray(REASONS, dtype=object)[c["reason"].to_numpy()], dtype="str"),
        "customer_id": _ids("C", c["customer"].to_numpy()),
        "order_id": _ids("O", c["order"].to_numpy()),
        "answered_ts": _stamp(start, np.where(answered, start_m, np.nan), timezone),
        "abandoned": ab,
        "handle_time_sec": np.round(np.where(finished, (end_m - start_m) * 60.0, np.nan), 1),
        "resolved": resolved,
        "csat": np.full(len(c), np.nan),
        "wait_sec": np.round(np.maximum(wait, 0.0), 1),
    })

    r = ev["returns"]
    r = r[r["accepted"].to_numpy() & (r["request_min"].to_numpy() < end)].reset_index(drop=True)
    refund = r["refund_min"].to_numpy()
    damaged = outcome[r["order"].to_numpy()] == OUTCOMES.index("damaged")
    returns = pd.DataFrame({
        "order_id": pd.array(np.char.add("O", r["order"].to_numpy().astype(str)), dtype="str"),
        "requested_ts": _stamp(start, r["request_min"].to_numpy(), timezone),
        "outcome": pd.array(np.asarray(RETURN_OUTCOMES, dtype=object)[r["outcome"].to_numpy()], dtype="str"),
        "reason": pd.array(np.where(damaged, "damaged", None).astype(object), dtype="str"),  # type: ignore[call-overload]
        "refunded_ts": _stamp(start, np.where(np.nan_to_num(refund, nan=np.inf) < end, refund, np.nan), timezone),
    })

    cal = Calendar(scenario)
    frames = []
    starts = _utc(cal.interval_starts(), timezone)
    for name in POOLS:
        cfg = scenario.contacts.tier2 if name == "tier2" else scenario.contacts.channels.get(name)  # type: ignore[call-overload]
        if cfg is None:
            continue
        sched = pool_schedule(name, cfg, scenario, cal)
        frames.append(pd.DataFrame({"interval_start": starts.to_numpy(), "channel": name, "agents": np.round(sched.agents_paid, 3)}))
    staffing = pd.concat(frames, ignore_index=True)
    staffing["interval_start"] = staffing["interval_start"].dt.tz_convert("UTC") if staffing["interval_start"].dt.tz is not None else staffing["interval_start"]
    staffing["channel"] = staffing["channel"].astype("str")
    return {"orders": orders, "contacts": contacts, "returns": returns, "staffing": staffing}


# ----------------------------------------------------------------------------- CSV writing


def _format_ts(ts: pd.Series, forms: np.ndarray, tz: str) -> pd.Series:
    """ISO 8601 text of UTC timestamps in per-row forms: 0 ``...Z``, 1 ``...+01:00``, 2 naive local."""
    out = pd.Series(np.full(len(ts), "", dtype=object), index=ts.index)
    ok = ts.notna().to_numpy()
    for form in (0, 1, 2):
        sel = ok & (forms == form)
        if not sel.any():
            continue
        t = ts[sel]
        if form == 0:
            out[sel] = t.dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()
        elif form == 1:
            out[sel] = (t.dt.tz_convert("UTC").dt.tz_localize(None) + pd.Timedelta(hours=1)).dt.strftime("%Y-%m-%dT%H:%M:%S+01:00").to_numpy()
        else:
            out[sel] = t.dt.tz_convert(tz).dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy()
    return out


def _to_text(df: pd.DataFrame, kind: str, rng: np.random.Generator, mess: bool, tz: str) -> pd.DataFrame:
    n = len(df)
    forms = rng.choice(3, size=n, p=list(MESS["timestamp_forms"].values())) if mess else np.zeros(n, dtype=int)
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            out[col] = _format_ts(s, forms, tz)
        elif col == "promised_delivery_date":
            out[col] = s.dt.strftime("%Y-%m-%d").fillna("")
        elif pd.api.types.is_bool_dtype(s.dtype):
            out[col] = s.map({True: "true", False: "false"}).astype(object).where(s.notna(), "")
        elif pd.api.types.is_float_dtype(s.dtype):
            fmt = "{:.2f}" if col == "order_value" else "{:g}"
            text = s.map(fmt.format)
            out[col] = text.where(s.notna(), "")
        else:
            out[col] = s.astype(object).where(s.notna(), "")
    if mess:
        for col, share in MESS["missing"][kind].items():
            if col in out.columns:
                out.loc[rng.random(n) < share, col] = ""
        for col in ("channel", "delivery_status", "outcome"):
            if col in out.columns:
                flip = (rng.random(n) < MESS["enum_case_changes"]) & (out[col] != "")
                out.loc[flip, col] = out.loc[flip, col].str.upper()
        out["source_system"] = np.where(rng.random(n) < 0.5, "erp", "helpdesk")
        dup = np.flatnonzero(rng.random(n) < MESS["duplicate_rows"])
        if len(dup):
            out = pd.concat([out, out.iloc[dup]]).sort_index(kind="stable").reset_index(drop=True)
    return out


def synth_history(
    scenario: Scenario,
    seed: int,
    out_dir: str | Path,
    mess: bool = True,
    days: int | None = None,
    timezone: str = "UTC",
    replication: int = 0,
) -> dict[str, Any]:
    """Simulate ``scenario`` (optionally cut to ``days``) and write its history CSVs to ``out_dir``.

    Refuses a non-empty ``out_dir``; writes into a temporary folder next to it and renames it into
    place when complete. Returns a summary: the files written and their row counts.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SynthError(f"{out} exists and is not an empty folder: choose another --out (nothing was written)")
    if days is not None:
        if days < 1:
            raise SynthError("--days must be at least 1")
        scenario = with_horizon(scenario, days)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        raise SynthError(f"the folder {parent} does not exist (nothing was written)")
    result = simulate(scenario, seed=seed, replication=replication, events=True)
    frames = events_to_frames(result, scenario, timezone)
    rng = np.random.default_rng([seed, replication, 7])
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    try:
        counts: dict[str, int] = {}
        for kind, df in frames.items():
            text = _to_text(df, kind, rng, mess and kind != "staffing", timezone)
            text.to_csv(tmp / f"{kind}.csv", index=False)
            counts[kind] = len(text)
        daily = result.daily
        truth = {
            "generator": "cxsim synth-history",
            "cxsim_version": sim.__version__,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seed": seed,
            "replication": replication,
            "timezone": timezone,
            "mess": MESS if mess else None,
            "rows": counts,
            "realised": {
                "days": scenario.horizon_days,
                "orders": int(daily["orders"].sum()),
                "new_customers": int(daily["new_customers"].sum()),
                "referred_customers": int(daily["referred_customers"].sum()),
                "repeat_orders": int(daily["repeat_orders"].sum()),
                "contacts": int(daily["contacts"].sum()),
                "returns": int(daily["returns"].sum()),
            },
            "scenario": scenario.model_dump(mode="json"),
        }
        (tmp / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out_dir": str(out), "rows": counts, "days": scenario.horizon_days, "seed": seed}
