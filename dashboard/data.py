"""The one small API the dashboard pages use to read results.

Everything goes through :class:`DataSource`, built once by ``create_app`` (:func:`configure`) and
fetched by callbacks with :func:`source`:

- :meth:`DataSource.choices` lists what can be compared: one entry per (run, scenario) of every
  readable run, plus one disabled entry per corrupt or incompatible run folder with its problem.
  The browser only ever sends back the ``key`` of an entry; :meth:`DataSource.choice` looks it up
  in this server-built list and rejects anything else, so no browser value reaches the file system.
- :meth:`DataSource.comparison` combines selected (run, scenario) pairs into one
  :class:`Comparison`: the tidy tables of every selected scenario relabelled with a display name,
  the stored summary, and the paired differences from the chosen baseline.
- :meth:`DataSource.scenario_files` lists the shipped scenario files (``scenarios_dir/*.yaml``,
  not sub-folders) with their validation result.

Loaded runs are cached in memory by run id (and the manifest's modification time), comparisons by
their selection, so switching pages or scenarios does not re-read Parquet files.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from sim.loader import ScenarioError, load_scenario
from sim.store import RunData, RunInfo, StoreError, list_runs, load_run
from sim.summary import DIFF_COLUMNS, paired_differences

KEY_SEP = "::"
"""Separates run id and scenario name in a selection key (neither can contain it)."""
BASELINE_NAME = "baseline"
"""A scenario with this name is preferred as the default baseline."""
DEFAULT_SELECTION_MAX = 6
"""At most this many scenarios of the newest run are selected when the app opens."""

T = TypeVar("T")


class SelectionError(Exception):
    """The selection cannot be shown. ``str()`` is a message for the user; ``kind`` is one of
    ``"no-runs"`` (the runs folder holds no run), ``"nothing-selected"`` or ``"invalid"``."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Choice:
    """One entry of the scenario picker."""

    key: str
    run_id: str
    scenario: str
    label: str
    disabled: bool = False
    problem: str = ""

    def option(self) -> dict[str, Any]:
        """The ``dcc.Dropdown`` option for this entry."""
        opt: dict[str, Any] = {"label": self.label, "value": self.key}
        if self.disabled:
            opt["disabled"] = True
            opt["title"] = self.problem
        return opt


@dataclass(frozen=True)
class ScenarioFile:
    """A shipped scenario file and whether it validates."""

    name: str
    """File stem: the value the browser sends back."""
    path: Path
    ok: bool
    scenario_name: str = ""
    description: str = ""
    horizon_days: int | None = None
    message: str = ""
    """The :class:`~sim.loader.ScenarioError` text when the file does not validate."""


@dataclass
class Comparison:
    """Selected scenarios combined: every table's ``scenario`` column holds the display label.

    ``daily`` and ``cohorts`` also carry the ``seed`` of each replication (from the KPI table), so
    differences can be paired on ``(seed, replication)`` exactly like :mod:`sim.summary` does.
    The tables may be the cached run's own frames: treat them as read-only. Differences from the
    baseline come from :meth:`differences`.
    """

    keys: tuple[str, ...]
    labels: tuple[str, ...]
    baseline: str
    run_of: dict[str, str]
    reps: dict[str, int]
    scenarios: dict[str, dict[str, Any]]
    kpis: pd.DataFrame
    summary: pd.DataFrame
    daily: pd.DataFrame
    cohorts: pd.DataFrame
    intervals: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def memo(self, name: str, build: Callable[[], T]) -> T:
        """``build()`` once per comparison (derived tables shared by several callbacks)."""
        with self._lock:
            if name not in self._memo:
                self._memo[name] = build()
            return self._memo[name]  # type: ignore[no-any-return]

    def differences(self, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """:func:`sim.summary.paired_differences` from the baseline, for ``metrics`` (default all),
        computed on first use: it is the slow part of a comparison, and a page shows a few metrics.
        Each metric's difference does not depend on which other metrics are included."""
        if len(self.labels) < 2:
            return pd.DataFrame(columns=list(DIFF_COLUMNS))
        wanted = None if metrics is None else sorted(set(metrics))
        kpis = self.kpis if wanted is None else self.kpis[self.kpis["metric"].isin(wanted)]
        return self.memo(f"diffs:{wanted}", lambda: paired_differences(kpis, self.baseline))

    @property
    def variants(self) -> list[str]:
        return [lab for lab in self.labels if lab != self.baseline]


def make_key(run_id: str, scenario: str) -> str:
    return f"{run_id}{KEY_SEP}{scenario}"


def display_labels(choices: Sequence[Choice]) -> list[str]:
    """Scenario names; where the same name comes from several runs, ``name · <suffix>`` with the
    random hex end of the run id (the whole run id if even that repeats)."""
    names = [c.scenario for c in choices]
    tags = [(c.scenario, c.run_id.rsplit("-", 1)[-1]) for c in choices]
    out = []
    for c, tag in zip(choices, tags, strict=True):
        if names.count(c.scenario) == 1:
            out.append(c.scenario)
        elif tags.count(tag) == 1:
            out.append(f"{c.scenario} · {tag[1]}")
        else:
            out.append(f"{c.scenario} · {c.run_id}")
    return out


def _created(info: RunInfo) -> str:
    return f"{info.created:%Y-%m-%d %H:%M}" if info.created else "?"


class DataSource:
    """Reads runs from ``runs_dir`` and scenario files from ``scenarios_dir`` (see module doc)."""

    def __init__(
        self,
        runs_dir: Path,
        scenarios_dir: Path,
        *,
        max_runs: int = 16,
        max_comparisons: int = 8,
        listing_ttl_s: float = 2.0,
    ) -> None:
        self.runs_dir = Path(runs_dir)
        self.scenarios_dir = Path(scenarios_dir)
        self._max_runs = max_runs
        self._max_comparisons = max_comparisons
        self._ttl = listing_ttl_s
        self._lock = threading.RLock()
        self._listing: tuple[float, Any, list[RunInfo]] | None = None
        self._runs: OrderedDict[str, tuple[int, RunData]] = OrderedDict()
        self._comparisons: OrderedDict[tuple[Any, ...], Comparison] = OrderedDict()
        self._files: tuple[Any, list[ScenarioFile]] | None = None

    # ------------------------------------------------------------------------- runs

    def _dir_signature(self) -> Any:
        try:
            return self.runs_dir.stat().st_mtime_ns
        except OSError:
            return None

    def runs(self, refresh: bool = False) -> list[RunInfo]:
        """Every run folder, newest first, with its status (cached for a couple of seconds)."""
        with self._lock:
            sig = self._dir_signature()
            now = time.monotonic()
            if (
                not refresh
                and self._listing is not None
                and self._listing[1] == sig
                and now - self._listing[0] < self._ttl
            ):
                return self._listing[2]
            try:
                infos = list_runs(self.runs_dir)
            except StoreError as exc:
                raise SelectionError(str(exc)) from None
            self._listing = (now, sig, infos)
            return infos

    def choices(self, refresh: bool = False) -> list[Choice]:
        """Picker entries: every scenario of every readable run; bad runs as disabled entries."""
        out = []
        for info in self.runs(refresh):
            if info.ok:
                reps = f"{info.reps} rep{'s' if info.reps != 1 else ''}"
                for scen in info.scenarios:
                    out.append(
                        Choice(
                            make_key(info.run_id, scen),
                            info.run_id,
                            scen,
                            f"{scen} — run {info.run_id} ({reps}, {_created(info)})",
                        )
                    )
            else:
                out.append(
                    Choice(
                        make_key(info.run_id, "!"),
                        info.run_id,
                        "",
                        f"⚠ run {info.run_id} is {info.status}: {info.message}",
                        disabled=True,
                        problem=info.message,
                    )
                )
        return out

    def choice(self, key: Any) -> Choice:
        """The enabled picker entry with this key; :class:`SelectionError` for anything else."""
        if not isinstance(key, str):
            raise SelectionError(
                "The selection holds a value that is not a scenario of a stored run."
            )
        choices = self.choices()
        for c in choices:
            if c.key == key and not c.disabled:
                return c
        run_id = key.split(KEY_SEP, 1)[0]
        for c in choices:
            if c.disabled and c.run_id == run_id:
                raise SelectionError(f"Run {c.run_id} cannot be read: {c.problem}")
        raise SelectionError(
            "The selection holds a scenario that is not (or no longer) in the runs folder; "
            "press “Rescan runs” and pick again."
        )

    def default_selection(self) -> tuple[list[str], str | None]:
        """Keys of the newest readable run's scenarios (a few) and the preferred baseline key."""
        for info in self.runs():
            if info.ok and info.scenarios:
                names = list(info.scenarios)[:DEFAULT_SELECTION_MAX]
                keys = [make_key(info.run_id, s) for s in names]
                base = names.index(BASELINE_NAME) if BASELINE_NAME in names else 0
                return keys, keys[base]
        return [], None

    def load(self, run_id: str) -> RunData:
        """A stored run (cached in memory by run id); :class:`SelectionError` when unreadable."""
        with self._lock:
            info = next((i for i in self.runs() if i.run_id == run_id), None)
            if info is None:
                raise SelectionError(f"There is no run {run_id} in {self.runs_dir}.")
            if not info.ok:
                raise SelectionError(f"Run {run_id} is {info.status}: {info.message}")
            try:
                mtime = (info.path / "manifest.json").stat().st_mtime_ns
            except OSError:
                mtime = -1
            cached = self._runs.get(run_id)
            if cached is not None and cached[0] == mtime:
                self._runs.move_to_end(run_id)
                return cached[1]
            try:
                data = load_run(self.runs_dir, run_id)
            except StoreError as exc:
                raise SelectionError(str(exc)) from None
            self._runs[run_id] = (mtime, data)
            while len(self._runs) > self._max_runs:
                self._runs.popitem(last=False)
            return data

    # ------------------------------------------------------------------------- comparison

    def comparison(self, keys: Sequence[str] | None, baseline_key: str | None) -> Comparison:
        """The selected (run, scenario) pairs combined; the baseline defaults to the first one.

        Raises :class:`SelectionError` (a message for the page) when there are no runs, nothing is
        selected, or a key is not one of :meth:`choices`.
        """
        keys = list(dict.fromkeys(k for k in (keys or []) if k))
        if not keys:
            if not any(c for c in self.choices() if not c.disabled):
                raise SelectionError("No runs yet.", kind="no-runs")
            raise SelectionError(
                "Pick at least one scenario in the selector above.", kind="nothing-selected"
            )
        chosen = [self.choice(k) for k in keys]
        if baseline_key not in keys:
            baseline_key = keys[0]
        # Built under the lock: callbacks of one page fire together and would otherwise all load
        # and combine the same runs at once; the later ones wait and reuse the first one's result.
        with self._lock:
            runs = {c.run_id: self.load(c.run_id) for c in chosen}
            # Run folders are never overwritten, so the keys identify the data; ``created`` guards
            # against a folder that was deleted and written again under the same id.
            stamp = tuple(str(runs[c.run_id].manifest.get("created")) for c in chosen)
            cache_key = (tuple(keys), baseline_key, stamp)
            hit = self._comparisons.get(cache_key)
            if hit is not None:
                self._comparisons.move_to_end(cache_key)
                return hit
            comp = _combine(chosen, keys.index(baseline_key), runs)
            self._comparisons[cache_key] = comp
            while len(self._comparisons) > self._max_comparisons:
                self._comparisons.popitem(last=False)
            return comp

    # ------------------------------------------------------------------------- scenario files

    def scenario_files(self) -> list[ScenarioFile]:
        """Shipped scenario files (``*.yaml`` directly in ``scenarios_dir``), validated, by name."""
        paths = sorted(
            (
                p
                for p in self.scenarios_dir.glob("*.y*ml")
                if p.is_file() and p.suffix in (".yaml", ".yml")
            ),
            key=lambda p: (p.stem != BASELINE_NAME, p.name),
        )
        try:
            sig = tuple((p.name, p.stat().st_mtime_ns) for p in paths)
        except OSError:
            sig = None
        with self._lock:
            if self._files is not None and sig is not None and self._files[0] == sig:
                return self._files[1]
        files = []
        for p in paths:
            try:
                s = load_scenario(p)
            except ScenarioError as exc:
                files.append(ScenarioFile(p.stem, p, False, message=str(exc)))
                continue
            except Exception as exc:  # an unexpected loader failure is still a message, not a crash
                files.append(ScenarioFile(p.stem, p, False, message=f"{p}: cannot be read: {exc}"))
                continue
            files.append(ScenarioFile(p.stem, p, True, s.name, s.description, s.horizon_days))
        with self._lock:
            self._files = (sig, files)
        return files

    def scenario_file(self, name: Any) -> ScenarioFile:
        """The shipped, valid scenario file with this name; :class:`SelectionError` otherwise."""
        for f in self.scenario_files():
            if isinstance(name, str) and f.name == name:
                if not f.ok:
                    raise SelectionError(f.message)
                return f
        raise SelectionError("Choose one of the listed scenario files.")


def _combine(chosen: list[Choice], baseline_index: int, runs: dict[str, RunData]) -> Comparison:
    labels = display_labels(chosen)
    baseline = labels[baseline_index]

    by_run: dict[str, dict[str, str]] = {}  # run id -> {scenario name: label}
    for c, label in zip(chosen, labels, strict=True):
        by_run.setdefault(c.run_id, {})[c.scenario] = label

    def pick(frame_of: Callable[[RunData], pd.DataFrame]) -> pd.DataFrame:
        """The selected scenarios' rows of one table of every run, relabelled. Without copying
        when a run's whole table is selected under its own names (the common case)."""
        parts = []
        for run_id, names in by_run.items():
            df = frame_of(runs[run_id])
            if "scenario" not in df.columns:
                continue
            present = set(df["scenario"].unique())
            if not present <= set(names):
                df = df[df["scenario"].isin(list(names))]
            if any(name != label for name, label in names.items()):
                df = df.assign(scenario=df["scenario"].map(names))
            parts.append(df)
        if not parts:
            return pd.DataFrame(columns=["scenario"])
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

    kpis = pick(lambda r: r.kpis)
    summary = pick(lambda r: r.summary)
    daily = pick(lambda r: r.daily)
    cohorts = pick(lambda r: r.cohorts)
    intervals = pick(lambda r: r.intervals)
    seeds = kpis[["scenario", "replication", "seed"]].drop_duplicates(["scenario", "replication"])
    if len(daily):
        daily = daily.merge(seeds, on=["scenario", "replication"], how="left")
    if len(cohorts):
        cohorts = cohorts.merge(seeds, on=["scenario", "replication"], how="left")
    scenarios = {
        label: runs[c.run_id].scenarios.get(c.scenario, {})
        for c, label in zip(chosen, labels, strict=True)
    }
    reps = {
        label: int(kpis.loc[kpis["scenario"] == label, "replication"].nunique()) for label in labels
    }
    comp = Comparison(
        keys=tuple(c.key for c in chosen),
        labels=tuple(labels),
        baseline=baseline,
        run_of={label: c.run_id for c, label in zip(chosen, labels, strict=True)},
        reps=reps,
        scenarios=scenarios,
        kpis=kpis,
        summary=summary,
        daily=daily,
        cohorts=cohorts,
        intervals=intervals,
    )
    comp.warnings.extend(_warnings(comp))
    return comp


def _warnings(comp: Comparison) -> list[str]:
    out = []
    horizons = {
        lab: (m.get("start_date"), m.get("horizon_days")) for lab, m in comp.scenarios.items()
    }
    if len(set(horizons.values())) > 1:
        parts = ", ".join(f"{lab}: {h[1]} days from {h[0]}" for lab, h in horizons.items())
        out.append(
            "The selected scenarios cover different periods, so totals (orders, revenue, margin) are "
            f"not comparable; rates and per-order figures are more so ({parts})."
        )
    # pairing is decided per scenario (shared seeds), the same for every metric: ask for one
    diffs = comp.differences(comp.kpis["metric"].iloc[:1].tolist())
    if len(diffs) and not diffs["paired"].all():
        unpaired = sorted(set(diffs.loc[~diffs["paired"], "scenario"]))
        out.append(
            f"{', '.join(unpaired)} did not run with the baseline's seeds, so their differences use "
            "unpaired (Welch) intervals, which are wider."
        )
    return out


_SOURCE: DataSource | None = None


def configure(runs_dir: Path, scenarios_dir: Path) -> DataSource:
    """Make the :class:`DataSource` every callback uses (called by ``create_app``)."""
    global _SOURCE
    _SOURCE = DataSource(runs_dir, scenarios_dir)
    return _SOURCE


def source() -> DataSource:
    """The configured :class:`DataSource`."""
    if _SOURCE is None:
        raise RuntimeError("dashboard.data.configure(runs_dir, scenarios_dir) has not been called")
    return _SOURCE
