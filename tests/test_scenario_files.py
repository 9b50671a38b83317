"""The shipped scenario files, and how the loader reports bad ones.

* every YAML under ``scenarios/`` loads and validates;
* each variant differs from the baseline only in the lever it names (resolved mappings and validated
  models compared leaf by leaf);
* the baseline's staffing plans and the validation files say what their comments say;
* bad input gives a :class:`ScenarioError` naming the file and the key path.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.loader import ScenarioError, deep_merge, load_scenario, resolve_raw
from sim.scenario import CHANNELS, Scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
BASELINE = SCENARIOS / "baseline.yaml"
SHIPPED = sorted(SCENARIOS.rglob("*.yaml"))

_STAFFING = {f"contacts.channels.{c}.staffing" for c in CHANNELS}
_HIRES = {f"contacts.channels.{c}.seasonal_hires" for c in CHANNELS}

# variant file -> the exact leaf paths (dotted; lists are leaves) that may and must differ from baseline
VARIANT_LEVERS: dict[str, set[str]] = {
    "holiday_understaffed.yaml": _STAFFING,
    "seasonal_hires.yaml": _STAFFING | _HIRES,
    "ai_assistant.yaml": {
        "automation.enabled",
        "automation.contained_come_back",
        "automation.cost_per_automated_contact_usd",
        "automation.platform_cost_per_month_usd",
        "automation.agent_assist_handle_time_reduction",
    },
    "proactive_alerts.yaml": {"notifications.delay_alerts"},
    "exchange_first.yaml": {"returns.exchange_first", "returns.exchange_bonus_usd"},
    "loyalty_tiers.yaml": {"loyalty.program", "loyalty.program_cost_per_month_usd"},
    "paid_membership.yaml": {"loyalty.program"},
    "winback.yaml": {"loyalty.winback"},
    "carrier_meltdown.yaml": {"incidents"},
    "subscription.yaml": {
        f"subscription.{k}"
        for k in (
            "enabled", "uptake_first_order", "uptake_repeat_order", "price_usd", "discount_share",
            "skip_probability", "pause_probability", "cancel_alpha", "cancel_beta",
        )
    },
}
IDENTITY = {"name", "description"}
_MISSING = object()


def leaf_diffs(a: Any, b: Any, prefix: str = "") -> set[str]:
    """Dotted paths where two nested mappings differ (lists and scalars compared whole)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for key in a.keys() | b.keys():
            path = f"{prefix}.{key}" if prefix else str(key)
            out |= leaf_diffs(a.get(key, _MISSING), b.get(key, _MISSING), path)
        return out
    return set() if a == b else {prefix}


def top_level(paths: set[str]) -> set[str]:
    return {p.split(".")[0] for p in paths}


# ----------------------------------------------------------------------------- shipped files


def test_the_expected_files_are_shipped() -> None:
    names = {p.relative_to(SCENARIOS).as_posix() for p in SHIPPED}
    expected = {
        "baseline.yaml",
        "validation/mmc.yaml",
        "validation/mmc_no_abandon.yaml",
        *VARIANT_LEVERS,
    }
    assert expected <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(SCENARIOS).as_posix())
def test_every_shipped_file_loads_and_validates(path: Path) -> None:
    scenario = load_scenario(path)
    assert isinstance(scenario, Scenario)
    assert scenario.name
    # the validated model round-trips: what it dumps validates to the same model
    assert Scenario.model_validate(scenario.model_dump()) == scenario


@pytest.mark.parametrize("variant", sorted(VARIANT_LEVERS))
def test_variant_changes_only_its_lever(variant: str) -> None:
    expected = VARIANT_LEVERS[variant]
    base_raw, var_raw = resolve_raw(BASELINE), resolve_raw(SCENARIOS / variant)

    raw_diffs = leaf_diffs(base_raw, var_raw) - IDENTITY
    assert raw_diffs == expected
    assert top_level(raw_diffs) == top_level(expected)

    # the same holds after validation, with every default filled in
    base_model = load_scenario(BASELINE).model_dump()
    var_model = load_scenario(SCENARIOS / variant).model_dump()
    assert leaf_diffs(base_model, var_model) - IDENTITY == expected


@pytest.mark.parametrize("variant", sorted(VARIANT_LEVERS))
def test_variant_file_is_short_and_named(variant: str) -> None:
    path = SCENARIOS / variant
    own = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert own["extends"] == "baseline.yaml"
    assert own["name"] == path.stem
    assert own.get("description", "").strip()
    assert set(own) - {"extends", "name", "description"} == top_level(VARIANT_LEVERS[variant])


# ----------------------------------------------------------------------------- what the files say


def _plans(scenario: Scenario, channel: str) -> dict[dt.date, list[float]]:
    return {p.start: list(p.agents_by_hour) for p in scenario.contacts.channels[channel].staffing}


def test_baseline_has_a_holiday_plan_each_year_and_returns_to_normal() -> None:
    s = load_scenario(BASELINE)
    for channel in CHANNELS:
        plans = _plans(s, channel)
        assert list(plans) == [
            dt.date(2026, 9, 1),
            dt.date(2026, 11, 16),
            dt.date(2027, 1, 4),
            dt.date(2027, 11, 15),
        ]
        normal, holiday = plans[dt.date(2026, 9, 1)], plans[dt.date(2026, 11, 16)]
        assert plans[dt.date(2027, 1, 4)] == normal
        assert plans[dt.date(2027, 11, 15)] == holiday
        assert all(h >= n for h, n in zip(holiday, normal, strict=True))
        assert sum(holiday) > 1.5 * sum(normal)
    for channel in ("chat", "phone"):  # daytime cover 07:00-23:00
        normal = _plans(s, channel)[dt.date(2026, 9, 1)]
        assert all(normal[h] == 0 for h in (*range(7), 23))
        assert all(normal[h] > 0 for h in range(7, 23))


def test_holiday_understaffed_keeps_the_normal_plan() -> None:
    base, var = load_scenario(BASELINE), load_scenario(SCENARIOS / "holiday_understaffed.yaml")
    for channel in CHANNELS:
        assert (
            var.contacts.channels[channel].staffing == base.contacts.channels[channel].staffing[:1]
        )


def test_seasonal_hires_fill_the_gap_to_the_holiday_plan() -> None:
    base, var = load_scenario(BASELINE), load_scenario(SCENARIOS / "seasonal_hires.yaml")
    for channel in CHANNELS:
        cfg = var.contacts.channels[channel]
        assert cfg.staffing == base.contacts.channels[channel].staffing[:1]
        normal = cfg.staffing[0].agents_by_hour
        holiday = _plans(base, channel)[dt.date(2026, 11, 16)]
        assert len(cfg.seasonal_hires) == 2
        for hire in cfg.seasonal_hires:
            assert hire.ramp_days == 14
            assert hire.hourly_cost_usd is not None and hire.hourly_cost_usd > cfg.hourly_cost_usd
            assert [n + h for n, h in zip(normal, hire.agents_by_hour, strict=True)] == holiday


def _erlang_c(a: float, c: int) -> float:
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def _erlang_a(lam: float, mu: float, c: int, theta: float) -> tuple[float, float]:
    """P(wait > 0) and P(abandon) of M/M/c+M from its birth-death chain."""
    pi = [1.0]
    for n in range(1, 500):
        pi.append(pi[-1] * lam / (min(n, c) * mu + max(n - c, 0) * theta))
    total = sum(pi)
    p_wait = sum(pi[c:]) / total
    lq = sum((n - c) * p for n, p in enumerate(pi) if n > c) / total
    return p_wait, theta * lq / lam


def test_validation_file_is_the_documented_mmc_queue() -> None:
    s = load_scenario(SCENARIOS / "validation" / "mmc.yaml")
    phone = s.contacts.channels["phone"]
    (reason,) = s.contacts.reasons.values()
    assert set(s.contacts.reasons) == {"billing"} and set(s.contacts.channels) == {"phone"}
    assert s.demand.weekday_factors == [1.0] * 7 and s.demand.hour_weights == [1.0] * 24
    assert not s.demand.peaks and s.demand.annual_growth == 0 and s.demand.initial_customers == 0
    assert not s.repurchase.enabled and not s.automation.enabled
    assert (
        reason.probability == 1
        and reason.delay_hours.dist == "deterministic"
        and reason.delay_hours.mean == 0
    )
    assert (
        reason.channel_mix.phone == 1
        and reason.first_contact_resolution == 1
        and reason.escalation == 0
    )
    assert reason.handle_time_min["phone"].dist == "exponential"
    assert phone.patience_min is not None and phone.patience_min.dist == "exponential"
    assert phone.shrinkage == 0 and phone.concurrency == 1 and phone.retry_after_abandon == 0
    assert len(phone.staffing) == 1 and len(set(phone.staffing[0].agents_by_hour)) == 1
    assert s.carrier.outcomes.on_time == 1
    assert all(c.return_probability == 0 for c in s.returns.categories.values())

    lam = s.demand.new_customers_per_day / 1440.0  # per minute
    mean_handle = reason.handle_time_min["phone"].mean
    servers = int(phone.staffing[0].agents_by_hour[0])
    assert (lam, mean_handle, servers) == (2.0, 4.0, 10)
    assert lam * mean_handle / servers == pytest.approx(0.8)
    # the figures quoted in the file's comment
    p_wait_c = _erlang_c(lam * mean_handle, servers)
    assert p_wait_c == pytest.approx(0.4092, abs=5e-5)
    assert p_wait_c / (servers / mean_handle - lam) == pytest.approx(0.8184, abs=5e-5)
    p_wait_a, p_abandon = _erlang_a(lam, 1 / mean_handle, servers, 1 / phone.patience_min.mean)
    assert (p_wait_a, p_abandon) == (
        pytest.approx(0.2947, abs=5e-5),
        pytest.approx(0.0484, abs=5e-5),
    )


def test_no_abandon_validation_differs_only_in_patience() -> None:
    base = resolve_raw(SCENARIOS / "validation" / "mmc.yaml")
    var = resolve_raw(SCENARIOS / "validation" / "mmc_no_abandon.yaml")
    diffs = leaf_diffs(base, var) - IDENTITY
    assert diffs and all(d.startswith("contacts.channels.phone.patience_min.") for d in diffs)
    patience = (
        load_scenario(SCENARIOS / "validation" / "mmc_no_abandon.yaml")
        .contacts.channels["phone"]
        .patience_min
    )
    assert patience is not None and patience.mean >= 1e9


# ----------------------------------------------------------------------------- bad input


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _child(tmp_path: Path, override: dict[str, Any], name: str = "child.yaml") -> Path:
    """A scenario file extending the shipped baseline with ``override``."""
    return _write(
        tmp_path / name, yaml.safe_dump({"extends": str(BASELINE), "name": "child", **override})
    )


def _full_copy(tmp_path: Path, mutate: Any, name: str = "copy.yaml") -> Path:
    """A stand-alone copy of the resolved baseline, changed by ``mutate(data)``."""
    data = copy.deepcopy(resolve_raw(BASELINE))
    mutate(data)
    return _write(tmp_path / name, yaml.safe_dump(data, sort_keys=False))


def _error(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert err.file == str(path)
    assert str(path) in str(err)
    assert err.problems
    return err


def _problem(err: ScenarioError, path: str) -> str:
    """The reason given for ``path`` (fails listing every problem if there is none)."""
    for p in err.problems:
        if p.path == path:
            return p.reason
    raise AssertionError(f"no problem at {path!r}; got {err.problems}")


def test_the_baseline_copy_used_below_is_valid(tmp_path: Path) -> None:
    assert load_scenario(_full_copy(tmp_path, lambda d: None)) == load_scenario(BASELINE)
    assert load_scenario(_child(tmp_path, {"name": "baseline"})) == load_scenario(BASELINE)


def test_malformed_yaml(tmp_path: Path) -> None:
    err = _error(_write(tmp_path / "bad.yaml", "name: [unclosed\nhorizon_days: 3\n"))
    assert err.problems[0].path.startswith("line ")
    assert "malformed YAML" in err.problems[0].reason


def test_bad_indentation_is_malformed_yaml(tmp_path: Path) -> None:
    err = _error(
        _write(tmp_path / "bad.yaml", "demand:\n  cac_usd: 45\n new_customers_per_day: 3\n")
    )
    assert "malformed YAML" in err.problems[0].reason


def test_unknown_nested_key(tmp_path: Path) -> None:
    path = _child(tmp_path, {"contacts": {"channels": {"chat": {"colour": "blue"}}}})
    err = _error(path)
    assert _problem(err, "contacts.channels.chat.colour") == "unknown key"
    assert str(BASELINE) not in str(err)  # the user's file is named, not the one it extends


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert _problem(_error(_child(tmp_path, {"horizon": 30})), "horizon") == "unknown key"


def test_wrong_type(tmp_path: Path) -> None:
    err = _error(
        _child(
            tmp_path,
            {"horizon_days": "lots", "contacts": {"channels": {"phone": {"realtime": "often"}}}},
        )
    )
    assert "lots" in _problem(err, "horizon_days")
    assert "often" in _problem(err, "contacts.channels.phone.realtime")


def test_negative_rate(tmp_path: Path) -> None:
    err = _error(_child(tmp_path, {"demand": {"new_customers_per_day": -5}}))
    assert "greater than or equal to 0" in _problem(err, "demand.new_customers_per_day")


def test_negative_distribution_mean(tmp_path: Path) -> None:
    err = _error(
        _child(
            tmp_path, {"carrier": {"transit_days": {"dist": "lognormal", "mean": -3, "cv": 0.4}}}
        )
    )
    assert any(p.path.startswith("carrier.transit_days") for p in err.problems)


def test_probability_out_of_range(tmp_path: Path) -> None:
    err = _error(
        _child(tmp_path, {"contacts": {"reasons": {"wismo": {"first_contact_resolution": 1.2}}}})
    )
    assert "less than or equal to 1" in _problem(
        err, "contacts.reasons.wismo.first_contact_resolution"
    )


def test_channel_mix_not_summing_to_one(tmp_path: Path) -> None:
    err = _error(
        _child(tmp_path, {"contacts": {"reasons": {"billing": {"channel_mix": {"chat": 0.9}}}}})
    )
    assert "sum to 1" in _problem(err, "contacts.reasons.billing.channel_mix")


def test_empty_staffing_list(tmp_path: Path) -> None:
    err = _error(_child(tmp_path, {"contacts": {"channels": {"phone": {"staffing": []}}}}))
    assert "at least 1" in _problem(err, "contacts.channels.phone.staffing")


def test_staffing_starting_after_the_scenario_start(tmp_path: Path) -> None:
    late = [{"start": dt.date(2026, 10, 1), "agents_by_hour": [3] * 24}]
    err = _error(_child(tmp_path, {"contacts": {"channels": {"chat": {"staffing": late}}}}))
    reason = _problem(err, "")
    assert "contacts.channels.chat.staffing" in reason
    assert "does not cover the horizon" in reason


def test_staffing_plans_out_of_order(tmp_path: Path) -> None:
    plans = [
        {"start": dt.date(2026, 9, 1), "agents_by_hour": [3] * 24},
        {"start": dt.date(2027, 1, 4), "agents_by_hour": [3] * 24},
        {"start": dt.date(2026, 11, 16), "agents_by_hour": [6] * 24},
    ]
    err = _error(_child(tmp_path, {"contacts": {"channels": {"chat": {"staffing": plans}}}}))
    assert "date order" in _problem(err, "contacts.channels.chat")


def test_missing_required_key(tmp_path: Path) -> None:
    def drop(data: dict[str, Any]) -> None:
        del data["demand"]["cac_usd"]
        del data["returns"]

    err = _error(_full_copy(tmp_path, drop))
    assert _problem(err, "demand.cac_usd") == "required key is missing"
    assert _problem(err, "returns") == "required key is missing"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    err = _error(
        _child(tmp_path, {"horizon_days": -1, "demand": {"cac_usd": -45}, "carrier": {"speed": 1}})
    )
    assert {"horizon_days", "demand.cac_usd", "carrier.speed"} <= {p.path for p in err.problems}
    assert f"{len(err.problems)} problem(s)" in str(err)


def test_extends_cycle(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.yaml", "extends: b.yaml\nname: a\n")
    _write(tmp_path / "b.yaml", "extends: a.yaml\nname: b\n")
    err = _error(a)
    assert err.problems[0].path == "extends"
    assert "cycle" in err.problems[0].reason


def test_extends_itself(tmp_path: Path) -> None:
    err = _error(_write(tmp_path / "self.yaml", "extends: self.yaml\nname: self\n"))
    assert "cycle" in _problem(err, "extends")


def test_extends_a_missing_file(tmp_path: Path) -> None:
    err = _error(_write(tmp_path / "orphan.yaml", "extends: nowhere.yaml\nname: orphan\n"))
    reason = _problem(err, "extends")
    assert "not found" in reason and "nowhere.yaml" in reason


def test_extends_must_be_a_path(tmp_path: Path) -> None:
    err = _error(_write(tmp_path / "odd.yaml", "extends: [baseline.yaml]\nname: odd\n"))
    assert "file path" in _problem(err, "extends")


def test_a_broken_parent_is_reported_against_the_parent(tmp_path: Path) -> None:
    _write(tmp_path / "parent.yaml", "name: [broken\n")
    child = _write(tmp_path / "kid.yaml", "extends: parent.yaml\nname: kid\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(child)
    assert "parent.yaml" in info.value.file
    assert "malformed YAML" in info.value.problems[0].reason


def test_missing_file(tmp_path: Path) -> None:
    err = _error(tmp_path / "absent.yaml")
    assert err.problems[0].reason == "file not found"


def test_a_directory_is_not_a_scenario(tmp_path: Path) -> None:
    assert _error(tmp_path).problems[0].reason == "not a file"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    err = _error(_write(tmp_path / "empty.yaml", text))
    assert "empty" in err.problems[0].reason


@pytest.mark.parametrize(
    ("text", "kind"), [("- a\n- b\n", "list"), ("just words\n", "str"), ("42\n", "int")]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    err = _error(_write(tmp_path / "flat.yaml", text))
    assert err.problems[0].path == ""
    assert "expected a mapping" in err.problems[0].reason and kind in err.problems[0].reason


def test_python_tags_are_rejected_without_running_anything(tmp_path: Path) -> None:
    marker = tmp_path / "pwned.txt"
    text = f"name: x\nhorizon_days: !!python/object/apply:builtins.open [{str(marker)!r}, 'w']\n"
    err = _error(_write(tmp_path / "evil.yaml", text))
    assert "malformed YAML" in err.problems[0].reason
    assert not marker.exists()


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object:sim.loader.Problem {path: a, reason: b}",
        "!!python/name:os.system",
        "!!python/object/new:dict {}",
    ],
)
def test_other_python_tags_are_rejected(tmp_path: Path, tag: str) -> None:
    err = _error(_write(tmp_path / "tagged.yaml", f"name: x\nprovenance: {tag}\n"))
    assert "malformed YAML" in err.problems[0].reason


# ----------------------------------------------------------------------------- deep_merge


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"k": {"deep": 1}}}
    override = {"a": {"y": [3], "z": 2}, "b": {"now": "a mapping"}, "c": 5}
    assert deep_merge(base, override) == {
        "a": {"x": 1, "y": [3], "z": 2},
        "b": {"now": "a mapping"},
        "c": 5,
    }


def test_deep_merge_does_not_mutate_its_inputs() -> None:
    base = {"a": {"x": 1, "list": [{"v": 1}]}, "keep": {"n": [1, 2]}}
    override = {"a": {"x": 2, "new": {"m": [1]}}, "extra": [{"w": 1}]}
    base_before, override_before = copy.deepcopy(base), copy.deepcopy(override)

    merged = deep_merge(base, override)
    assert base == base_before and override == override_before

    # nothing in the result is shared with the inputs
    merged["a"]["list"][0]["v"] = 99
    merged["keep"]["n"].append(3)
    merged["a"]["new"]["m"].append(2)
    merged["extra"][0]["w"] = 99
    assert base == base_before and override == override_before


def test_a_variant_can_change_a_distribution_family(tmp_path: Path) -> None:
    path = _child(tmp_path, {"carrier": {"transit_days": {"dist": "deterministic", "mean": 3.0}}})
    assert load_scenario(path).carrier.transit_days.dist == "deterministic"


def test_resolving_a_variant_leaves_the_baseline_untouched() -> None:
    before = resolve_raw(BASELINE)
    resolve_raw(SCENARIOS / "holiday_understaffed.yaml")
    assert resolve_raw(BASELINE) == before
