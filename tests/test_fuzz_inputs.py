"""Property-based fuzzing of the inputs (hypothesis): scenario files mutated from the baseline, and
history CSVs. Whatever the input: `cxsim validate` / `cxsim run` end with exit 0 or a clean exit 2
(one message, no traceback), in bounded time and memory, and nothing is written on refusal; the
CSV reader returns a History or raises HistoryError, nothing else."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import math
import resource
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from calibration.schemas import HistoryError, read_history
from sim import limits
from sim.cli import app
from sim.loader import ScenarioError, load_scenario, resolve_raw

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
BASE = resolve_raw(BASELINE)
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
runner = CliRunner()
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
FUZZ = settings(
    max_examples=60,  # the CSV readers; each scenario example costs ~0.4 s (YAML parsing), see SCENARIO_FUZZ
    deadline=dt.timedelta(seconds=5),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: a failure is reproducible
)
SCENARIO_FUZZ = settings(FUZZ, max_examples=15)


def _leaf_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaf_paths(v, (*prefix, k))] + ([prefix] if prefix else [])
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaf_paths(v, (*prefix, i))] + [prefix]
    return [prefix]


PATHS = _leaf_paths(BASE)


def _nested(depth: int) -> Any:
    out: Any = 1
    for _ in range(depth):
        out = [out]
    return out


VALUES = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**12, 2_000_000_000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 1e-308, 5e-324, math.inf, -math.inf, math.nan, 0.5, 1e12]),
    st.booleans(),
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["", "x" * 5000, "2026-02-30", "9999-12-31", "1e29", ".inf", "true"]),
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.integers(min_value=1, max_value=300).map(_nested),
    st.lists(st.integers(-5, 5), max_size=30),
    st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=8), st.integers(), max_size=4),
)


def _mutate(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _write(tmp: Path, data: dict[str, Any]) -> Path:
    f = tmp / "fuzz.yaml"
    f.write_text(yaml.dump(data, Dumper=DUMPER, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return f


def _assert_clean(result: Any) -> None:
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.stderr.strip(), "a refusal says why"
        assert len(result.stderr) < 20_000, "one message, not a dump"


@pytest.fixture(scope="module")
def rss_budget() -> Any:
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024
    assert grown_mb < 600, f"the fuzzed inputs grew the peak memory by {grown_mb:.0f} MB"


@SCENARIO_FUZZ
@given(path=st.sampled_from(PATHS), value=VALUES)
def test_validate_any_mutated_scenario(
    tmp_path_factory: pytest.TempPathFactory, rss_budget: None, path: tuple[Any, ...], value: Any
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    f = _write(tmp, _mutate(BASE, path, value))
    result = runner.invoke(app, ["validate", str(f)], env=ENV)
    _assert_clean(result)
    if result.exit_code == 0:  # a valid scenario: its size estimate is a finite, usable number
        fp = limits.estimate(load_scenario(f))
        assert all(math.isfinite(x) and x >= 0 for x in (fp.orders, fp.customers, fp.contacts))


@SCENARIO_FUZZ
@given(
    path=st.sampled_from(PATHS),
    value=VALUES,
    wrap=st.sampled_from(["plain", "deep", "duplicate", "alias"]),
)
def test_validate_structural_damage(
    tmp_path_factory: pytest.TempPathFactory, rss_budget: None, path: tuple[Any, ...], value: Any, wrap: str
) -> None:
    """Raw YAML text damage the dict-level mutations cannot express: deep nesting, duplicate keys,
    aliases."""
    tmp = tmp_path_factory.mktemp("fuzz")
    text = yaml.dump(_mutate(BASE, path, value), Dumper=DUMPER, sort_keys=False)
    if wrap == "deep":
        text += "incidents: " + "[" * 3000 + "]" * 3000 + "\n"
    elif wrap == "duplicate":
        text += text.splitlines()[0] + "\n"
    elif wrap == "alias":
        text = "x0: &x0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" + "".join(
            f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]\n" for i in range(1, 7)
        ) + text
    f = tmp / "fuzz.yaml"
    f.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(f)], env=ENV)
    _assert_clean(result)
    if wrap != "plain":
        assert result.exit_code == 2


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


# Values that survive validation more often: numbers of every size, on numeric leaves only.
NUMERIC_PATHS = [p for p in PATHS if p and isinstance(_get(BASE, p), int | float) and not isinstance(_get(BASE, p), bool)]


@pytest.mark.slow
@settings(FUZZ, max_examples=25, deadline=dt.timedelta(seconds=60))
@given(
    path=st.sampled_from(NUMERIC_PATHS),
    value=st.one_of(
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
        st.integers(min_value=-(10**9), max_value=10**9),
        st.sampled_from([0, 1e-9, 0.999999, 1, 50, 1e6, 1e9]),
    ),
)
def test_run_any_valid_short_scenario(
    tmp_path_factory: pytest.TempPathFactory, path: tuple[Any, ...], value: Any
) -> None:
    """Extreme but valid numbers, simulated (3 days, the memory check on): exit 0 with a run, or a
    clean exit 2 with nothing written."""
    tmp = tmp_path_factory.mktemp("fuzzrun")
    data = _mutate(BASE, path, value)
    if path != ("horizon_days",):
        data["horizon_days"] = 3
    f = _write(tmp, data)
    out = tmp / "runs"
    result = runner.invoke(
        app, ["run", str(f), "--out", str(out), "--workers", "1", "--reps", "1", "--max-memory-gb", "2"], env=ENV
    )
    _assert_clean(result)
    if result.exit_code == 2:
        assert not out.exists() or list(out.iterdir()) == []
    else:
        assert len([p for p in out.iterdir() if not p.name.startswith(".")]) == 1


# ----------------------------------------------------------------------------- CSV readers

TIMESTAMPS = st.one_of(
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(lambda d: d.isoformat()),
    st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2026, 12, 31)).map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(["1900-01-01", "9999-12-31T23:59:59Z", "2026-02-30", "", "NaT", "0", "2026-13-01T00:00:00"]),
    st.text(max_size=20),
)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.sampled_from(["1e400", "-0", "inf", "nan", "", "1,5", "true", "0x10"]),
    st.text(max_size=10),
)
CELL = st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""), max_size=15)


def _csv(header: list[str], rows: list[list[str]]) -> str:
    def quote(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"') else v

    return ",".join(header) + "\n" + "".join(",".join(quote(v) for v in r) + "\n" for r in rows)


@FUZZ
@given(
    rows=st.lists(
        st.tuples(CELL, CELL, TIMESTAMPS, NUMBERS, st.sampled_from(["on_time", "late", "lost", "bogus", ""])),
        min_size=0,
        max_size=40,
    ),
    drop=st.sampled_from([None, "order_ts", "order_value"]),
)
def test_orders_csv_reader(tmp_path_factory: pytest.TempPathFactory, rss_budget: None, rows: list[tuple[str, ...]], drop: str | None) -> None:
    header = ["order_id", "customer_id", "order_ts", "order_value", "delivery_status"]
    data = [list(r) for r in rows]
    if drop is not None:
        i = header.index(drop)
        header = header[:i] + header[i + 1 :]
        data = [r[:i] + r[i + 1 :] for r in data]
    f = tmp_path_factory.mktemp("csv") / "orders.csv"
    f.write_text(_csv(header, data), encoding="utf-8")
    try:
        h = read_history(orders=f)
    except HistoryError as exc:
        assert str(exc).startswith(str(f)) or str(exc).startswith("(history)")
        return
    assert h.orders is not None and len(h.orders) >= 1
    ts = h.orders["order_ts"]
    assert ts.min() >= limits_earliest() and ts.max() <= limits_latest()
    assert (h.orders["order_value"].abs() <= 1e9).all()


@FUZZ
@given(
    rows=st.lists(
        st.tuples(CELL, TIMESTAMPS, st.sampled_from(["chat", "phone", "bot", "fax", ""]), CELL, NUMBERS, NUMBERS),
        min_size=1,
        max_size=40,
    )
)
def test_contacts_csv_reader(tmp_path_factory: pytest.TempPathFactory, rss_budget: None, rows: list[tuple[str, ...]]) -> None:
    header = ["contact_id", "created_ts", "channel", "reason", "handle_time_sec", "wait_sec"]
    f = tmp_path_factory.mktemp("csv") / "contacts.csv"
    f.write_text(_csv(header, [list(r) for r in rows]), encoding="utf-8")
    with contextlib.suppress(HistoryError):  # a refusal is fine; any other exception fails
        read_history(contacts=f)


def limits_earliest() -> Any:
    import pandas as pd

    from sim.input_checks import EARLIEST_DATE

    return pd.Timestamp(EARLIEST_DATE, tz="UTC")


def limits_latest() -> Any:
    import pandas as pd

    from sim.input_checks import LATEST_DATE

    return pd.Timestamp(LATEST_DATE, tz="UTC") + pd.Timedelta(days=1)


def test_the_fuzzed_scenario_base_is_valid() -> None:
    """The mutations start from a valid scenario (else every example would be a refusal)."""
    try:
        load_scenario(BASELINE)
    except ScenarioError as exc:  # pragma: no cover - the baseline is valid
        pytest.fail(str(exc))
    assert len(PATHS) > 100 and len(NUMERIC_PATHS) > 50
