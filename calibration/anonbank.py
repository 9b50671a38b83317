"""Map the "Anonymous Bank" call-centre log (Technion SEE lab, one day) to the contacts schema.

Source file: ``/work/shared/data/anonbank_calls_one_day.csv`` (see its README). Each row is a call:
IVR (``vru_*``), queue (``q_*``) and service (``ser_*``) clock times of the day (``H:MM:SS``) with
durations in seconds, and an ``outcome``: AGENT (served), HANG (hung up: in the IVR when
``q_start`` is 0:00:00, otherwise abandoned from the queue) or PHANTOM (not a real call).

Mapping (one contact per real call that reached an agent or the queue):

* ``contact_id``: ``"<VRU>-<call_id>"`` where VRU is the first four characters of ``vru+line``
  (AA01 / AA02). ``call_id`` alone is *not* unique: the two VRUs number calls independently and 86
  ids occur once on each.
* ``created_ts``: queue entry (``q_start``); for calls routed straight from the IVR to an agent
  (``q_start`` 0:00:00 with outcome AGENT) the IVR exit (``vru_exit``), with wait 0. Clock times
  are taken as **Asia/Jerusalem local time** on the file's ``date`` and written as ISO 8601 with
  the UTC offset (2010-08-01 is summer time, +03:00). The date was rewritten to 2010-08-01 by the
  public mirror (the original day is in 1999), so the offset is that of the rewritten date.
* ``answered_ts``: ``created_ts + q_time`` for served calls (so the wait is exactly ``q_time``; the
  log's ``ser_start`` is usually 1-2 s *before* ``q_exit``, a clock-rounding artefact); null for
  abandoned calls.
* ``channel`` "phone"; ``reason`` ``"bank_<type>"`` (PS, NW, NE, IN, TT, PE are the bank's service
  types); ``customer_id`` null where the log has 0 (unidentified caller); ``abandoned`` = HANG from
  the queue; ``handle_time_sec`` = ``ser_time`` for served calls with a service record, null
  otherwise; ``resolved`` null (the log does not say).
* Extra column ``wait_sec`` (= ``q_time``; not part of the contacts schema, which has no abandonment
  time) so that patience can be fitted; drop it with ``include_wait=False``.

Dropped rows (PHANTOM, IVR hang-ups, unknown outcomes) are counted in ``result.attrs["counts"]``;
oddities found in the log are counted in ``result.attrs["anomalies"]``.
Times derived from durations (answered = created + q_time) are immune to midnight; a queue-entry
clock time earlier than the IVR entry by more than 12 hours is taken to have crossed midnight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CONTACTS_COLUMNS", "TIMEZONE", "anonbank_to_contacts", "read_anonbank_csv"]

CONTACTS_COLUMNS = (
    "contact_id",
    "created_ts",
    "channel",
    "reason",
    "customer_id",
    "answered_ts",
    "abandoned",
    "handle_time_sec",
    "resolved",
)
TIMEZONE = "Asia/Jerusalem"

_REQUIRED = (
    "vru+line",
    "call_id",
    "customer_id",
    "type",
    "date",
    "vru_entry",
    "vru_exit",
    "vru_time",
    "q_start",
    "q_exit",
    "q_time",
    "outcome",
    "ser_start",
    "ser_exit",
    "ser_time",
    "server",
)
_HALF_DAY = 12 * 3600
_DAY = 24 * 3600


def read_anonbank_csv(path: str | Path) -> pd.DataFrame:
    """Read the raw log with ids as strings (no other transformation)."""
    return pd.read_csv(
        path, dtype={"call_id": str, "customer_id": str, "vru+line": str, "type": str}
    )


def _clock_seconds(col: pd.Series, name: str) -> np.ndarray:
    td = pd.to_timedelta(col.astype(str).str.strip(), errors="coerce")
    if td.isna().any():
        bad = col[td.isna()].iloc[0]
        raise ValueError(f"column {name!r} has an unparseable clock time, e.g. {bad!r}")
    sec = td.dt.total_seconds().to_numpy()
    if np.any(sec < 0) or np.any(sec >= _DAY):
        raise ValueError(f"column {name!r} has clock times outside 0:00:00-23:59:59")
    return sec


def anonbank_to_contacts(
    df: pd.DataFrame, *, tz: str = TIMEZONE, include_wait: bool = True
) -> pd.DataFrame:
    """Contacts (cxsim schema) from the Anonymous Bank call log.

    Args:
        df: the raw log as read by :func:`read_anonbank_csv` (ids may also be integers).
        tz: time zone of the clock times (default Asia/Jerusalem).
        include_wait: append the ``wait_sec`` column (seconds in queue).

    Returns:
        DataFrame with ``CONTACTS_COLUMNS`` (+ ``wait_sec``), sorted by ``created_ts``; timestamps
        are ISO 8601 strings with offset, ``handle_time_sec`` / ``wait_sec`` are seconds.
        ``.attrs["counts"]`` holds row counts by disposition and ``.attrs["anomalies"]`` the
        oddities found (see module docstring).
    """
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"log is missing column(s): {missing}")
    raw = df.reset_index(drop=True)
    n_in = len(raw)
    sec = {
        c: _clock_seconds(raw[c], c)
        for c in ("vru_entry", "vru_exit", "q_start", "q_exit", "ser_start", "ser_exit")
    }
    q_time = pd.to_numeric(raw["q_time"], errors="raise").to_numpy(dtype=float)
    ser_time = pd.to_numeric(raw["ser_time"], errors="raise").to_numpy(dtype=float)
    vru_time = pd.to_numeric(raw["vru_time"], errors="raise").to_numpy(dtype=float)
    outcome = raw["outcome"].astype(str).str.strip().str.upper().to_numpy()
    reached_queue = sec["q_start"] > 0

    is_phantom = outcome == "PHANTOM"
    is_agent = outcome == "AGENT"
    is_hang = outcome == "HANG"
    unknown = ~(is_phantom | is_agent | is_hang)
    ivr_hang = is_hang & ~reached_queue
    queued_abandon = is_hang & reached_queue
    served_queue = is_agent & reached_queue
    served_direct = is_agent & ~reached_queue
    keep = queued_abandon | served_queue | served_direct

    # Creation time: queue entry, or IVR exit for calls sent straight to an agent.
    created_s = np.where(reached_queue, sec["q_start"], sec["vru_exit"])
    crossed = created_s < sec["vru_entry"] - _HALF_DAY
    created_s = created_s + np.where(crossed, _DAY, 0)
    wait = np.where(reached_queue, q_time, 0.0)
    has_service = is_agent & (sec["ser_start"] > 0)
    handle = np.where(has_service, ser_time, np.nan)

    vru = raw["vru+line"].astype(str).str.strip().str[:4]
    call = raw["call_id"].astype(str).str.strip()
    contact_id = (vru + "-" + call).to_numpy()

    day = pd.to_datetime(raw["date"], errors="raise").dt.normalize()
    local = day + pd.to_timedelta(created_s, unit="s")
    try:
        created = local.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
    except Exception as exc:  # ambiguous / non-existent local times at DST changes
        raise ValueError(f"clock times cannot be placed in {tz}: {exc}") from exc
    answered = created + pd.to_timedelta(wait, unit="s")

    cust = raw["customer_id"].astype(str).str.strip()
    cust = cust.where(~cust.isin(["0", "", "nan", "None"]), None)

    out = pd.DataFrame(
        {
            "contact_id": pd.array(contact_id, dtype="string"),
            "created_ts": pd.array([t.isoformat() for t in created], dtype="string"),
            "channel": pd.array(["phone"] * n_in, dtype="string"),
            "reason": pd.array(
                ("bank_" + raw["type"].astype(str).str.strip()).to_numpy(), dtype="string"
            ),
            "customer_id": pd.array(cust.to_numpy(), dtype="string"),
            "answered_ts": pd.array(
                [a.isoformat() if ag else None for a, ag in zip(answered, is_agent, strict=True)],
                dtype="string",
            ),
            "abandoned": is_hang,
            "handle_time_sec": pd.array(handle, dtype="Float64"),
            "resolved": pd.array([pd.NA] * n_in, dtype="boolean"),
            "wait_sec": pd.array(wait, dtype="Float64"),
            "_sort": created.to_numpy(),
        }
    )
    out = (
        out[keep]
        .sort_values(["_sort", "contact_id"], kind="stable")
        .drop(columns="_sort")
        .reset_index(drop=True)
    )
    if not include_wait:
        out = out.drop(columns="wait_sec")

    dup_ids = int(out["contact_id"].duplicated().sum())
    if dup_ids:
        raise ValueError(
            f"{dup_ids} duplicate (VRU, call_id) pairs: contact ids would not be unique"
        )

    kept_cust = cust[keep].dropna()
    counts: dict[str, int] = {
        "rows_in": n_in,
        "phantom": int(is_phantom.sum()),
        "ivr_hangup": int(ivr_hang.sum()),
        "unknown_outcome": int(unknown.sum()),
        "dropped": int((~keep).sum()),
        "contacts": int(keep.sum()),
        "served": int(is_agent.sum()),
        "served_via_queue": int(served_queue.sum()),
        "served_direct_from_ivr": int(served_direct.sum()),
        "abandoned_from_queue": int(queued_abandon.sum()),
        "reached_queue_incl_phantom": int(reached_queue.sum()),
        "reached_queue": int((reached_queue & ~is_phantom & ~unknown).sum()),
        "hung_up_total": int(is_hang.sum()),
    }
    call_dups = raw.assign(_c=call).duplicated("_c", keep=False)
    time_order = pd.Series(sec["vru_entry"])
    anomalies: dict[str, Any] = {
        "call_ids_reused_across_vrus": int(call.duplicated().sum()),
        "rows_sharing_a_call_id": int(call_dups.sum()),
        "negative_vru_time": int((vru_time < 0).sum()),
        "vru_time_mismatch": int((np.abs(sec["vru_exit"] - sec["vru_entry"] - vru_time) > 1).sum()),
        "q_time_mismatch": int(
            (reached_queue & (np.abs(sec["q_exit"] - sec["q_start"] - q_time) > 1)).sum()
        ),
        "ser_time_mismatch": int(
            (has_service & (np.abs(sec["ser_exit"] - sec["ser_start"] - ser_time) > 1)).sum()
        ),
        "served_zero_service_time": int((has_service & (ser_time == 0)).sum()),
        "served_service_time_le_5s": int((has_service & (ser_time <= 5)).sum()),
        "served_without_service_record": int((is_agent & ~has_service).sum()),
        "served_with_server_NO_SERVER": int(
            (is_agent & (raw["server"].astype(str) == "NO_SERVER")).sum()
        ),
        "abandoned_with_zero_wait": int((queued_abandon & (q_time == 0)).sum()),
        "service_start_before_queue_exit_gt_2s": int(
            (served_queue & has_service & (sec["ser_start"] < sec["q_exit"] - 2)).sum()
        ),
        "created_crossed_midnight": int((crossed & keep).sum()),
        "exit_clock_before_entry": int(
            (
                (sec["vru_exit"] < sec["vru_entry"])
                | (reached_queue & (sec["q_exit"] < sec["q_start"]))
            ).sum()
        ),
        "rows_not_in_time_order": int((time_order.diff() < 0).sum()),
        "unidentified_customers": int((cust[keep].isna()).sum()),
        "customers_with_several_contacts": int((kept_cust.value_counts() > 1).sum()),
        "dates": sorted(str(d.date()) for d in day.unique()),
    }
    out.attrs["counts"] = counts
    out.attrs["anomalies"] = anomalies
    out.attrs["timezone"] = tz
    return out
