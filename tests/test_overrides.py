"""Key-path overrides (``--set``): applied where they say, validated like a file, clear refusals."""

from __future__ import annotations

import pytest

from sim.loader import ScenarioError, resolve_raw
from sim.overrides import (
    Override,
    OverrideError,
    apply,
    get_path,
    parse_value,
    set_path,
    split_path,
)


@pytest.fixture(scope="module")
def raw():
    return resolve_raw("scenarios/baseline.yaml")


def test_split_path_reads_keys_and_indices():
    assert split_path("demand.peaks[0].multiplier") == ["demand", "peaks", 0, "multiplier"]
    with pytest.raises(OverrideError, match="not a key"):
        split_path("demand..peaks")


def test_override_changes_only_its_path(raw):
    s = apply(raw, [Override("contacts.channels.chat.sla_target", 0.9)], "b.yaml")
    base = apply(raw, [], "b.yaml")
    assert s.contacts.channels["chat"].sla_target == 0.9
    assert s.contacts.channels["phone"] == base.contacts.channels["phone"]
    assert get_path(raw, "contacts.channels.chat.sla_target") == base.contacts.channels["chat"].sla_target
    assert set_path(raw, "name", "x") is not raw and raw["name"] == "baseline"


def test_bad_key_and_bad_value_name_the_override(raw):
    with pytest.raises(ScenarioError, match=r"automation\.enabledx: unknown key \[from --set"):
        apply(raw, [Override("automation.enabledx", True)], "b.yaml")
    with pytest.raises(ScenarioError, match=r"less than or equal to 1 \(got 2\) \[from --set"):
        apply(raw, [Override("contacts.channels.chat.sla_target", 2)], "b.yaml")
    with pytest.raises(OverrideError, match=r"demand\.peaks has no element 99"):
        set_path(raw, "demand.peaks[99].multiplier", 2)


def test_values_are_read_as_strict_yaml():
    assert parse_value("0.4", "x") == 0.4 and parse_value("[1, 2]", "x") == [1, 2]
    with pytest.raises(OverrideError, match="not a valid value"):
        parse_value("{a: 1, a: 2}", "x")
