"""Whole-engine invariants on a shortened baseline: conservation, money, determinism, monotonicity,
common random numbers. Each compares the model with an accounting identity or a property that
must hold whatever the parameters, not with numbers the model produced before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.contacts import BOT
from sim.engine import Replication, simulate
from sim.ledger import CATEGORY_INDEX
from sim.loader import deep_merge, resolve_raw, scenario_from_dict
from sim.metrics import allocate_labor, ledger_in_horizon
from sim.results import COST_TO_SERVE, LEDGER_CATEGORIES, METRICS
from sim.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261122


def short_baseline(days: int = 40, **overrides: object) -> Scenario:
    raw = resolve_raw(ROOT / "scenarios" / "baseline.yaml")
    raw = deep_merge(raw, {"horizon_days": days, "start_date": "2026-11-10", **overrides})
    return scenario_from_dict(raw)


@pytest.fixture(scope="module")
def finished() -> Replication:
    rep = Replication(short_baseline(), SEED, 0, events=True)
    rep.result = rep.run()  # type: ignore[attr-defined]
    return rep


def test_every_kpi_is_documented(finished: Replication) -> None:
    assert set(finished.result.kpis) == set(METRICS)  # type: ignore[attr-defined]


def test_orders_and_customers_are_conserved(finished: Replication) -> None:
    res = finished.result  # type: ignore[attr-defined]
    orders = res.events["orders"]
    assert res.daily["orders"].sum() == len(orders)
    assert res.kpis["orders"] == len(orders)
    customers = res.events["customers"]
    new = (customers["source"] != 0).sum()
    assert res.daily["new_customers"].sum() == new
    # active at the end = everyone acquired - dropped (reactivations undo a drop)
    assert res.daily["active_customers"].iloc[-1] == len(customers) - customers["dropped"].sum()
    # every order has exactly one delivery outcome; only lost parcels lack a delivery time
    assert orders["outcome"].between(0, 4).all()
    assert (orders["delivered_min"].isna() == (orders["outcome"] == 3)).all()
    # every customer's order count matches the order log (existing customers start with prior orders)
    prior = finished.s.repurchase.initial_repeat_purchases + 1
    counted = orders.groupby("customer").size().reindex(customers.index, fill_value=0)
    expected = customers["n_orders"] - np.where(customers["source"] == 0, prior, 0)
    assert (counted.to_numpy() == expected.to_numpy()).all()


def test_every_contact_reaches_a_terminal_state(finished: Replication) -> None:
    c = finished.result.events["contacts"]  # type: ignore[attr-defined]
    bot = c["pool"] == BOT
    answered = c["done"] & c["answered"]
    abandoned = c["done"] & ~c["answered"] & ~bot
    still_open = ~c["done"]
    assert (bot & c["done"]).sum() == bot.sum()
    assert answered.sum() + abandoned.sum() + bot.sum() + still_open.sum() == len(c)
    # the open ones are exactly those the agent pools still hold at the horizon's end
    assert still_open.sum() == finished.centre.pending()
    # answered contacts started after arriving and ended after starting
    a = c[answered]
    assert (a["start_min"] >= a["arrival_min"] - 1e-9).all() and (a["end_min"] >= a["start_min"]).all()
    # abandoned contacts left exactly when their patience ran out
    ab = c[abandoned]
    assert np.allclose(ab["end_min"], ab["arrival_min"] + ab["patience_min"])
    # follow-ups point at a finished parent that called for them
    fu = c[c["kind"].isin([1, 2, 3])]
    parents = c.loc[fu["parent"].to_numpy()]
    assert parents["done"].all()
    assert (parents.loc[fu["kind"].to_numpy() == 2, "answered"] == False).all()  # noqa: E712 retries follow abandonment
    assert (parents.loc[fu["kind"].to_numpy() == 3, "escalate"]).all()


def test_returns_reach_a_terminal_state(finished: Replication) -> None:
    r = finished.result.events["returns"]  # type: ignore[attr-defined]
    acc = r[r["accepted"]]
    exchange = acc["outcome"] == 1
    assert acc.loc[exchange, "refund_min"].isna().all()
    assert (acc.loc[~exchange, "refund_min"] >= acc.loc[~exchange, "receive_min"]).all()
    assert (acc["receive_min"] >= acc["request_min"]).all()


def test_money_reconciles_to_the_cent(finished: Replication) -> None:
    res = finished.result  # type: ignore[attr-defined]
    led = ledger_in_horizon(finished)
    cents_by_cat = np.bincount(led["category"], weights=led["cents"], minlength=len(LEDGER_CATEGORIES))
    for name, i in CATEGORY_INDEX.items():
        assert round(res.daily[f"ledger_{name}_usd"].sum() * 100) == int(cents_by_cat[i]), name
    margin_cents = sum(int(cents_by_cat[i]) for n, i in CATEGORY_INDEX.items() if LEDGER_CATEGORIES[n] != "acquisition")
    assert round(res.kpis["contribution_margin"] * 100) == margin_cents
    cts_cents = -sum(int(cents_by_cat[CATEGORY_INDEX[n]]) for n in COST_TO_SERVE)
    assert round(res.kpis["cost_to_serve"] * 100) == cts_cents
    parts = sum(res.kpis[f"cost_per_order_{n}"] for n in COST_TO_SERVE)
    assert parts == pytest.approx(res.kpis["cost_to_serve_per_order"], abs=1e-9)
    # labour allocated to contacts never creates or loses a cent
    _, _, alloc = allocate_labor(finished, led)
    labor = sum(int(cents_by_cat[CATEGORY_INDEX[f"support_labor_{p}"]]) for p in ("chat", "email", "phone", "social", "tier2"))
    assert alloc.sum() >= labor  # allocations are negative; only months without handled minutes stay unallocated
    # revenue: orders booked at their net price
    orders = res.events["orders"]
    in_h = orders["order_min"] < finished.end_min
    assert round(orders.loc[in_h, "revenue_usd"].sum() * 100) == int(cents_by_cat[CATEGORY_INDEX["order_revenue"]])


def test_cohort_margin_plus_the_rest_is_the_total(finished: Replication) -> None:
    res = finished.result  # type: ignore[attr-defined]
    led = ledger_in_horizon(finished)
    cust = res.events["customers"]
    in_cohort = np.zeros(len(led["customer"]), dtype=bool)
    att = led["customer"] >= 0
    in_cohort[att] = cust["cohort"].to_numpy()[led["customer"][att]] >= 0
    margin_cat = np.array([LEDGER_CATEGORIES[n] != "acquisition" for n in LEDGER_CATEGORIES])
    cohort_margin = led["cents"][in_cohort & margin_cat[led["category"]]].sum()
    a_cust, _, a_cents = allocate_labor(finished, led)
    cohort_margin += a_cents[cust["cohort"].to_numpy()[a_cust] >= 0].sum()
    assert round(res.cohorts["contribution_margin_usd"].sum() * 100) == pytest.approx(cohort_margin, abs=len(res.cohorts))


def test_same_seed_same_tables_bit_for_bit() -> None:
    s = short_baseline(20)
    a, b = simulate(s, SEED, 3), simulate(s, SEED, 3)
    pd.testing.assert_frame_equal(a.daily, b.daily)
    pd.testing.assert_frame_equal(a.intervals, b.intervals)
    pd.testing.assert_frame_equal(a.cohorts, b.cohorts)
    assert a.kpis.keys() == b.kpis.keys()
    assert all((a.kpis[k] == b.kpis[k]) or (np.isnan(a.kpis[k]) and np.isnan(b.kpis[k])) for k in a.kpis)
    c = simulate(s, SEED, 4)
    assert not a.daily["orders"].equals(c.daily["orders"])


def _scaled_staffing(s: Scenario, factor: float) -> Scenario:
    raw = s.model_dump(mode="json")
    for ch in raw["contacts"]["channels"].values():
        for plan in ch["staffing"]:
            plan["agents_by_hour"] = [a * factor for a in plan["agents_by_hour"]]
    return scenario_from_dict(raw)


def _time_in_queue(res: object) -> pd.Series:
    """Per contact: arrival to answer or abandonment (ASA alone can rise when fewer abandon)."""
    c = res.events["contacts"]  # type: ignore[attr-defined]
    c = c[c["done"] & (c["pool"] >= 0)]
    return pd.Series(np.where(c["answered"], c["start_min"], c["end_min"]) - c["arrival_min"], index=c.index)


def test_more_agents_never_lengthen_waits() -> None:
    """Pathwise: the same contacts (no feedback from waits into later contacts) wait no longer.
    Without abandonment: with it, an extra server can serve someone who would have left and so
    delay a later contact (tests/test_queueing.py shows such a case)."""
    raw = short_baseline(21).model_dump(mode="json")
    raw["repurchase"]["enabled"] = False
    for ch in raw["contacts"]["channels"].values():
        ch["retry_after_abandon"] = 0.0
        if ch["realtime"]:
            ch["patience_min"] = {"dist": "deterministic", "mean": 1e9}
    for reason in raw["contacts"]["reasons"].values():
        reason["first_contact_resolution"] = 1.0
        reason["escalation"] = 0.0
    base = scenario_from_dict(raw)
    for rep in range(2):
        w1 = _time_in_queue(simulate(base, SEED, rep, events=True))
        w2 = _time_in_queue(simulate(_scaled_staffing(base, 1.5), SEED, rep, events=True))
        assert w1.index.equals(w2.index)
        assert (w2 <= w1 + 1e-9).all(), rep
        assert w2.mean() < w1.mean()


def test_more_containment_never_raises_agent_load() -> None:
    base = short_baseline(21, automation={"enabled": True})
    raw = base.model_dump(mode="json")
    for cfg in raw["contacts"]["reasons"].values():
        cfg["containment"] = min(1.0, cfg["containment"] * 1.5 + 0.05)
    more = scenario_from_dict(raw)
    for rep in range(3):
        busy1 = simulate(base, SEED, rep).intervals["busy_min"].sum()
        busy2 = simulate(more, SEED, rep).intervals["busy_min"].sum()
        assert busy2 <= busy1, rep


def test_common_random_numbers_shrink_the_variance_of_differences() -> None:
    base = short_baseline(30)
    variant = short_baseline(30, notifications={"delay_alerts": True})
    reps = 8
    paired = [simulate(variant, SEED, r).kpis["contacts_per_order"] - simulate(base, SEED, r).kpis["contacts_per_order"] for r in range(reps)]
    indep = [simulate(variant, SEED + 1, r).kpis["contacts_per_order"] - simulate(base, SEED, r).kpis["contacts_per_order"] for r in range(reps)]
    assert np.var(paired, ddof=1) < np.var(indep, ddof=1) / 4


def test_no_customer_is_left_without_a_next_decision(finished: Replication) -> None:
    """Every customer still active has a would-be purchase after the horizon: none fell through
    (e.g. a purchase due later on the day it was scheduled)."""
    cu = finished.result.events["customers"]  # type: ignore[attr-defined]
    alive = ~cu["dropped"]
    assert (cu.loc[alive, "next_min"] >= finished.end_min).all()
