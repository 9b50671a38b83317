"""The run store: the only place where results touch the disk.

One folder per run, ``<runs_dir>/<run_id>/`` with ``run_id = YYYYmmdd-HHMMSS-<6 hex>`` (UTC)::

    manifest.json        run id, time, package version, format version, seeds, resolved scenarios,
                         timings, Python and platform
    kpis.parquet         scenario, replication, seed, metric, value
    daily.parquet        scenario, replication, date, <daily series>
    intervals.parquet    scenario, interval_start, pool, <interval series>: MEAN over replications,
                         float32
    cohorts.parquet      scenario, replication, cohort, months_since, <cohort columns>
    subscription_cohorts.parquet  scenario, replication, cohort, months_since, subscribers, observed,
                         active, survival: only when a scenario has subscriptions
    summary.parquet      summarize(kpis): scenario, metric, mean, ci_low, ci_high, sd, n
    scenarios/<name>.yaml  each resolved scenario (valid input for ``cxsim validate`` / ``cxsim run``)
    events/<table>.parquet event-level tables, only when the run recorded them

A run is written into ``<runs_dir>/.tmp-<run_id>/`` (with an ``owner.json`` naming the writing
process) and renamed into place once complete, so a crash never leaves a folder that looks like a
finished run; an existing run is never overwritten. A temporary folder whose writer is gone is
stale (:func:`temp_folders`, :func:`prune_temp_folders`).
Folders whose names start with ``.`` are ignored when listing. Analysts can open the Parquet files
directly with pandas or DuckDB.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

import sim
from sim.loader import dump_scenario_yaml
from sim.results import ReplicationResult
from sim.scenario import Scenario
from sim.summary import summarize

FORMAT_VERSION = 1
"""Version of the on-disk layout written by this code."""
KNOWN_FORMAT_VERSIONS: frozenset[int] = frozenset({1})
"""Layouts this code can read."""

RUN_ID_PATTERN = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")
TABLES: tuple[str, ...] = ("kpis", "daily", "intervals", "cohorts", "summary")
"""Parquet tables every run has (``<name>.parquet``)."""
MANIFEST = "manifest.json"
TMP_PREFIX = ".tmp-"
REQUIRED_MANIFEST_KEYS: tuple[str, ...] = (
    "run_id",
    "created",
    "format_version",
    "seed",
    "reps",
    "scenarios",
)


class StoreError(Exception):
    """A run cannot be written, found or read. ``str()`` is a message meant for the user."""


@dataclass(frozen=True)
class RunInfo:
    """What the listing knows about a run folder without reading its tables.

    ``status`` is ``"ok"``, ``"corrupt"`` (missing or unreadable files) or ``"incompatible"``
    (written in a format this version cannot read); ``message`` says why when not ok.
    """

    run_id: str
    path: Path
    status: str
    message: str = ""
    created: dt.datetime | None = None
    scenarios: tuple[str, ...] = ()
    reps: int | None = None
    seed: int | None = None
    format_version: int | None = None
    cxsim_version: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class RunData:
    """A loaded run: its listing info, the manifest and the tables."""

    info: RunInfo
    manifest: dict[str, Any]
    kpis: pd.DataFrame
    daily: pd.DataFrame
    intervals: pd.DataFrame
    cohorts: pd.DataFrame
    summary: pd.DataFrame
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Scenario name -> resolved scenario mapping (JSON form, as validated)."""


# ----------------------------------------------------------------------------- tables from results


def kpi_table(results: list[ReplicationResult]) -> pd.DataFrame:
    """Tidy KPI table: one row per (scenario, replication, metric)."""
    rows = [
        (r.scenario, r.replication, r.seed, metric, float(value) if value is not None else math.nan)
        for r in results
        for metric, value in r.kpis.items()
    ]
    df = pd.DataFrame(rows, columns=["scenario", "replication", "seed", "metric", "value"])
    return df.astype({"replication": "int64", "seed": "int64", "value": "float64"})


def _stack(results: list[ReplicationResult], attr: str) -> pd.DataFrame:
    frames = []
    for r in results:
        df = getattr(r, attr)
        if df is None:
            continue
        df = df.copy()
        df.insert(0, "replication", r.replication)
        df.insert(0, "scenario", r.scenario)
        frames.append(df)
    if not frames:
        return pd.DataFrame(
            {"scenario": pd.Series(dtype=str), "replication": pd.Series(dtype="int64")}
        )
    return pd.concat(frames, ignore_index=True)


def daily_table(results: list[ReplicationResult]) -> pd.DataFrame:
    """Daily series of every replication, with ``scenario`` and ``replication`` columns first."""
    return _stack(results, "daily")


def cohort_table(results: list[ReplicationResult]) -> pd.DataFrame:
    """Cohort tables of every replication, with ``scenario`` and ``replication`` columns first."""
    return _stack(results, "cohorts")


def interval_means(results: list[ReplicationResult]) -> pd.DataFrame:
    """Interval series averaged over replications per (scenario, interval_start, pool), float32.

    Ratios (service level, occupancy, ASA) are means of the per-replication ratios; NaN values
    (e.g. no arrivals in an interval) are skipped.
    """
    stacked = _stack(results, "intervals").drop(columns="replication")
    keys = [k for k in ("scenario", "interval_start", "pool") if k in stacked.columns]
    if len(stacked) == 0:
        return stacked
    numeric = [
        c for c in stacked.columns if c not in keys and pd.api.types.is_numeric_dtype(stacked[c])
    ]
    out = stacked.groupby(keys, sort=False, observed=True)[numeric].mean().reset_index()
    return out.astype(dict.fromkeys(numeric, "float32"))


# ----------------------------------------------------------------------------- writing


def new_run_id(now: dt.datetime | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<6 hex>`` in UTC."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now.astimezone(dt.UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def check_writable(runs_dir: Path) -> Path:
    """Create ``runs_dir`` if needed and prove a run can be written there; :class:`StoreError` if not."""
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + "probe-", dir=runs_dir))
        probe.rmdir()
    except OSError as exc:
        raise StoreError(f"cannot write runs to {runs_dir}: {exc.strerror or exc}") from None
    return runs_dir


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    df.to_parquet(path, index=False, engine="pyarrow", compression="zstd")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, dt.date | dt.datetime):
        return obj.isoformat()
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_run(
    runs_dir: Path,
    results: list[ReplicationResult],
    scenarios: dict[str, Scenario],
    seed: int,
    reps: int,
    timings: dict[str, Any],
    extra_tables: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Write a complete run and return its folder ``runs_dir/<run_id>``.

    ``scenarios`` maps each scenario name in ``results`` to the (resolved) scenario that produced
    them; ``timings`` is stored as given in the manifest (seconds). ``extra_tables`` (e.g. the
    staffing planner's ``plan`` and ``shifts``) are written as ``<name>.parquet`` beside the others. Everything is written to a
    temporary folder first and renamed into place; on any error (or Ctrl-C) the temporary folder is
    removed and the exception re-raised. Raises :class:`StoreError` when ``runs_dir`` is not writable.
    """
    runs_dir = check_writable(Path(runs_dir))
    names_in_results = list(dict.fromkeys(r.scenario for r in results))
    unknown = [n for n in names_in_results if n not in scenarios]
    if unknown:
        raise StoreError(f"results for scenario(s) {unknown} but no scenario definition was given")
    run_id = new_run_id()
    while (runs_dir / run_id).exists() or (runs_dir / (TMP_PREFIX + run_id)).exists():
        run_id = new_run_id()
    tmp = runs_dir / (TMP_PREFIX + run_id)
    final = runs_dir / run_id
    try:
        tmp.mkdir()
        _write_owner(tmp)
        _write_contents(tmp, run_id, results, scenarios, seed, reps, timings, extra_tables or {})
        if final.exists():  # never replace an existing run
            raise StoreError(f"run folder {final} already exists")
        (tmp / OWNER_FILE).unlink()
        os.rename(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise StoreError(
                f"cannot write run {run_id} to {runs_dir}: {exc.strerror or exc}"
            ) from exc
        raise
    return final


def _write_contents(
    folder: Path,
    run_id: str,
    results: list[ReplicationResult],
    scenarios: dict[str, Scenario],
    seed: int,
    reps: int,
    timings: dict[str, Any],
    extra_tables: dict[str, pd.DataFrame],
) -> None:
    kpis = kpi_table(results)
    _write_parquet(kpis, folder / "kpis.parquet")
    _write_parquet(daily_table(results), folder / "daily.parquet")
    _write_parquet(interval_means(results), folder / "intervals.parquet")
    _write_parquet(cohort_table(results), folder / "cohorts.parquet")
    if any(r.subscription_cohorts is not None for r in results):
        _write_parquet(_stack(results, "subscription_cohorts"), folder / "subscription_cohorts.parquet")
    _write_parquet(summarize(kpis), folder / "summary.parquet")
    for name, df in extra_tables.items():
        _write_parquet(df, folder / f"{_safe_name(name)}.parquet")

    events: dict[str, list[pd.DataFrame]] = {}
    for r in results:
        for name, df in (r.events or {}).items():
            df = df.copy()
            df.insert(0, "replication", r.replication)
            df.insert(0, "scenario", r.scenario)
            events.setdefault(name, []).append(df)
    if events:
        (folder / "events").mkdir()
        for name, frames in events.items():
            _write_parquet(
                pd.concat(frames, ignore_index=True),
                folder / "events" / f"{_safe_name(name)}.parquet",
            )

    (folder / "scenarios").mkdir()
    resolved = {name: s.model_dump(mode="json") for name, s in scenarios.items()}
    for name, data in resolved.items():
        (folder / "scenarios" / f"{_safe_name(name)}.yaml").write_text(
            dump_scenario_yaml(data), encoding="utf-8"
        )

    manifest = {
        "run_id": run_id,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cxsim_version": sim.__version__,
        "format_version": FORMAT_VERSION,
        "seed": int(seed),
        "reps": int(reps),
        "scenarios": list(scenarios),
        "replication_seeds": [
            {"scenario": r.scenario, "replication": int(r.replication), "seed": int(r.seed)}
            for r in results
        ],
        "seed_note": "replication r uses numpy SeedSequence(seed, spawn_key=(r, <stream>, ...)) (sim.rng.Streams)",
        "resolved_scenarios": resolved,
        "timings": timings,
        "tables": {name: f"{name}.parquet" for name in TABLES},
        "extra_tables": {name: f"{_safe_name(name)}.parquet" for name in extra_tables},
        "events": sorted(events),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    (folder / MANIFEST).write_text(
        json.dumps(manifest, indent=2, default=_json_default), encoding="utf-8"
    )


def _safe_name(name: str) -> str:
    """File-name form of a scenario or table name (scenario names are already restricted)."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name).lstrip(".") or "_"


# ----------------------------------------------------------------------------- listing and loading


def _inspect(path: Path) -> RunInfo:
    run_id = path.name
    mpath = path / MANIFEST
    if not mpath.is_file():
        return RunInfo(run_id, path, "corrupt", "manifest.json is missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return RunInfo(run_id, path, "corrupt", f"manifest.json is unreadable: {exc}")
    if not isinstance(manifest, dict):
        return RunInfo(run_id, path, "corrupt", "manifest.json is not a JSON object")
    fmt = manifest.get("format_version")
    if not isinstance(fmt, int) or isinstance(fmt, bool):
        return RunInfo(run_id, path, "corrupt", "manifest.json has no integer format_version")
    if fmt not in KNOWN_FORMAT_VERSIONS:
        return RunInfo(
            run_id,
            path,
            "incompatible",
            f"written in store format {fmt} (cxsim {manifest.get('cxsim_version', '?')}); "
            f"this cxsim {sim.__version__} reads format(s) {sorted(KNOWN_FORMAT_VERSIONS)}",
            format_version=fmt,
            cxsim_version=manifest.get("cxsim_version"),
        )
    missing_keys = [k for k in REQUIRED_MANIFEST_KEYS if k not in manifest]
    if missing_keys:
        return RunInfo(
            run_id, path, "corrupt", f"manifest.json lacks {missing_keys}", format_version=fmt
        )
    if manifest.get("run_id") != run_id:
        return RunInfo(
            run_id,
            path,
            "corrupt",
            f"manifest.json names run {manifest.get('run_id')!r}, not the folder's id",
        )
    try:
        created = dt.datetime.fromisoformat(str(manifest["created"]))
        scenarios = tuple(str(s) for s in manifest["scenarios"])
        reps, seed = int(manifest["reps"]), int(manifest["seed"])
    except (TypeError, ValueError) as exc:
        return RunInfo(
            run_id,
            path,
            "corrupt",
            f"manifest.json has an invalid field: {exc}",
            format_version=fmt,
        )
    info = RunInfo(
        run_id,
        path,
        "ok",
        "",
        created=created,
        scenarios=scenarios,
        reps=reps,
        seed=seed,
        format_version=fmt,
        cxsim_version=manifest.get("cxsim_version"),
    )
    for table in TABLES:
        tpath = path / f"{table}.parquet"
        if not tpath.is_file():
            return dataclasses.replace(
                info, status="corrupt", message=f"{table}.parquet is missing"
            )
        try:
            pq.read_metadata(tpath)
        except Exception as exc:  # pyarrow raises several types for damaged files
            return dataclasses.replace(
                info, status="corrupt", message=f"{table}.parquet is unreadable: {exc}"
            )
    return info


OWNER_FILE = "owner.json"
"""In a temporary run folder: the writing process (host, pid, start time), so a folder left by a
process that died (``kill -9``, power loss) can be told from one still being written."""
STALE_WITHOUT_OWNER_S = 24 * 3600
"""A temporary folder without an owner record (an older version's, or a probe) is stale after this."""


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot; Linux), to tell a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _write_owner(folder: Path) -> None:
    owner = {"host": platform.node(), "pid": os.getpid(), "start": _process_start(os.getpid())}
    (folder / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")


@dataclass(frozen=True)
class TempFolder:
    """A temporary run folder (``.tmp-<id>``): a run being written, or debris of one that died."""

    path: Path
    stale: bool
    reason: str
    """Who owns it, or why it is stale."""


def _owner_gone(owner: dict[str, Any]) -> tuple[bool, str]:
    host, pid = owner.get("host"), owner.get("pid")
    if not isinstance(pid, int):
        return False, "owner record unreadable"
    if host != platform.node():
        return False, f"written by process {pid} on host {host} (cannot check from here)"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True, f"its process {pid} is gone"
    except PermissionError:
        pass
    start = _process_start(pid)
    if start is not None and owner.get("start") is not None and start != owner["start"]:
        return True, f"its process {pid} is gone (the pid now belongs to another process)"
    return False, f"being written by process {pid}"


def temp_folders(runs_dir: Path) -> list[TempFolder]:
    """The temporary run folders in ``runs_dir``, each marked stale when its writer is gone."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    try:
        entries = sorted(p for p in runs_dir.iterdir() if p.name.startswith(TMP_PREFIX) and p.is_dir())
    except OSError as exc:
        raise StoreError(f"cannot list {runs_dir}: {exc.strerror or exc}") from None
    out = []
    for p in entries:
        try:
            owner = json.loads((p / OWNER_FILE).read_text(encoding="utf-8"))
            stale, reason = _owner_gone(owner if isinstance(owner, dict) else {})
        except (OSError, ValueError):
            try:
                age = dt.datetime.now().timestamp() - p.stat().st_mtime
            except OSError:
                continue  # removed meanwhile
            stale = age > STALE_WITHOUT_OWNER_S
            reason = f"no owner record, last changed {age / 3600:.1f} h ago"
        out.append(TempFolder(p, stale, reason))
    return out


def prune_temp_folders(runs_dir: Path) -> list[TempFolder]:
    """Remove the stale temporary folders of ``runs_dir`` (never one whose writer is alive) and
    return them. :class:`StoreError` if one cannot be removed."""
    removed = []
    for t in temp_folders(runs_dir):
        if not t.stale:
            continue
        try:
            shutil.rmtree(t.path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StoreError(f"cannot remove {t.path}: {exc.strerror or exc}") from None
        removed.append(t)
    return removed


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run folder in ``runs_dir``, newest first, each with a status (never raises for a bad run).

    Only folders named like a run id are considered; temporary (``.``-prefixed) folders are ignored.
    A missing ``runs_dir`` has no runs.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    try:
        entries = [p for p in runs_dir.iterdir() if RUN_ID_PATTERN.match(p.name) and p.is_dir()]
    except OSError as exc:
        raise StoreError(f"cannot list runs in {runs_dir}: {exc.strerror or exc}") from None
    return [_inspect(p) for p in sorted(entries, key=lambda p: p.name, reverse=True)]


def load_run(runs_dir: Path, run_id: str) -> RunData:
    """Read a stored run. ``run_id`` must look like a run id and be listed in ``runs_dir``.

    Raises :class:`StoreError` for anything else (unknown id, corrupt or incompatible run), so an
    id coming from outside (a browser) never reaches the file system unchecked.
    """
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise StoreError(f"{run_id!r} is not a run id (expected YYYYmmdd-HHMMSS-xxxxxx)")
    runs_dir = Path(runs_dir)
    infos = {info.run_id: info for info in list_runs(runs_dir)}
    info = infos.get(run_id)
    if info is None:
        raise StoreError(f"no run {run_id} in {runs_dir}")
    if not info.ok:
        raise StoreError(f"run {run_id} is {info.status}: {info.message}")
    folder = info.path
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        tables = {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES}
    except Exception as exc:
        raise StoreError(f"run {run_id} cannot be read: {exc}") from None
    resolved = manifest.get("resolved_scenarios") or {}
    return RunData(
        info=info,
        manifest=manifest,
        kpis=tables["kpis"],
        daily=tables["daily"],
        intervals=tables["intervals"],
        cohorts=tables["cohorts"],
        summary=tables["summary"],
        scenarios=dict(resolved),
    )


# ----------------------------------------------------------------------------- export


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_table(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` to ``path`` as CSV (``.csv``) or Parquet (``.parquet``), atomically.

    The file is written next to its destination and renamed over it, so readers never see a
    partial file. Parent folders are created. Raises :class:`StoreError` for another suffix or an
    unwritable destination.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise StoreError(f"cannot export to {path}: the file name must end in .csv or .parquet")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _atomic_path(path) as tmp:
            if suffix == ".csv":
                df.to_csv(tmp, index=False)
            else:
                _write_parquet(df, tmp)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
