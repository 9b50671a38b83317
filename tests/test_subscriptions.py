"""Subscriptions: the cancellation process against the shifted-beta-geometric formula, conservation
of subscribers, orders and MRR, the direction of the experience effect under common random
numbers, and validation of the scenario section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.calendar import DAYS_PER_MONTH, MIN_PER_DAY
from sim.engine import simulate
from sim.loader import ScenarioError, deep_merge, load_scenario, resolve_raw, scenario_from_dict
from sim.results import ReplicationResult
from sim.scenario import Scenario
from sim.subscriptions import CANCEL, ORDER, ORDER_KIND, PAUSE, SKIP, sbg_survival

ROOT = Path(__file__).resolve().parents[1]
SEED = 20270110
# a quiet stretch of the baseline calendar: no demand peaks, no carrier degradation
QUIET = {"start_date": "2027-01-10", "horizon_days": 100}


def reduced(subscription: dict[str, Any], **overrides: Any) -> Scenario:
    """The shipped subscription variant, shortened, fewer customers, ``subscription`` merged in."""
    raw = resolve_raw(ROOT / "scenarios" / "subscription.yaml")
    # no referrals: promoters (who depend on experience) would add different customers per scenario
    demand = {
        "new_customers_per_day": 150,
        "initial_customers": 2000,
        "referral_probability_per_promoter": 0.0,
    }
    raw = deep_merge(raw, {**QUIET, "demand": demand})
    raw = deep_merge(raw, {"subscription": subscription, **overrides})
    return scenario_from_dict(raw)


def events(res: ReplicationResult, name: str) -> pd.DataFrame:
    assert res.events is not None
    return res.events[name]


# ----------------------------------------------------------------------------- the sBG formula


def test_sbg_survival_is_the_product_of_beta_binomial_retention_rates() -> None:
    # S(t) = prod_{i=1..t} (beta + i - 1) / (alpha + beta + i - 1): each renewal is survived with
    # the posterior mean retention given i - 1 survived renewals (Fader & Hardie 2007, eq. 5)
    alpha, beta = 0.9, 7.0
    t = np.arange(0, 25)
    product = np.cumprod(np.concatenate(([1.0], (beta + t[1:] - 1) / (alpha + beta + t[1:] - 1))))
    assert np.allclose(sbg_survival(alpha, beta, t), product, rtol=1e-12)


def test_survival_after_t_renewals_matches_the_sbg_formula() -> None:
    alpha, beta, cadence = 0.7, 3.0, 7.0
    s = reduced(
        {
            "uptake_first_order": 1.0,
            "uptake_repeat_order": 0.0,
            "cadence_days": cadence,
            "cancel_alpha": alpha,
            "cancel_beta": beta,
            "sentiment_weight": 0.0,
            "skip_probability": 0.2,
            "pause_probability": 0.0,
        },
        repurchase={"enabled": False},
    )
    res = simulate(s, SEED, 0, events=True)
    subs = events(res, "subscribers")
    end_min = s.horizon_days * MIN_PER_DAY
    assert len(subs) > 10_000
    for t in (1, 2, 4, 8, 12):
        # with no pauses the t-th renewal falls cadence x t days after subscribing, whatever theta
        # is, so the subscribers whose t-th renewal lies inside the horizon are a random sample
        eligible = subs[subs["start_min"] + t * cadence * MIN_PER_DAY < end_min]
        survived = ~eligible["cancelled"] | (eligible["renewals"] > t)
        n = len(eligible)
        expected = float(sbg_survival(alpha, beta, t))
        # each subscriber's survival is an independent Bernoulli(S(t)) (theta drawn per subscriber),
        # so the share has binomial standard error sqrt(S(1 - S) / n); 4 SE two-sided leaves a
        # 6e-5 false-alarm chance per t (fixed seed, so the outcome is reproducible anyway)
        se = np.sqrt(expected * (1 - expected) / n)
        assert n > 1000
        assert abs(survived.mean() - expected) < 4 * se, (t, n, survived.mean(), expected, se)


# ----------------------------------------------------------------------------- conservation


@pytest.fixture(scope="module")
def full() -> tuple[Scenario, ReplicationResult]:
    """Everything on: one-off repurchase, skips, pauses, experience shifting cancellations."""
    s = reduced(
        {"cadence_days": 14.0, "skip_probability": 0.1, "pause_probability": 0.1, "pause_cycles": 3}
    )
    return s, simulate(s, SEED, 0, events=True)


def test_every_subscriber_is_active_or_cancelled(full: tuple[Scenario, ReplicationResult]) -> None:
    s, res = full
    subs, log = events(res, "subscribers"), events(res, "renewals")
    k, d = res.kpis, res.daily
    assert subs["customer"].is_unique  # a customer subscribes at most once
    cancelled = subs["cancelled"]
    assert (cancelled == subs["cancel_min"].notna()).all()
    assert (cancelled == np.isinf(subs["next_min"])).all()
    assert k["subscriptions_started"] == len(subs) == d["subscriptions_started"].sum()
    assert k["subscribers_active_end"] == (~cancelled).sum() == d["subscribers_active"].iloc[-1]
    assert (
        cancelled.sum() == (log["outcome"] == CANCEL).sum() == d["subscription_cancellations"].sum()
    )
    # each subscriber's log is renewals 1..n in time order, the first one cadence after subscribing,
    # a cancellation only as the last entry
    log = log.sort_values(["subscriber", "number"])
    per = log.groupby("subscriber")
    assert (per["number"].max() == per.size()).all()
    assert (per["t_min"].diff().dropna() > 0).all()
    assert (subs.loc[per.size().index, "renewals"].to_numpy() == per.size().to_numpy()).all()
    first = log[log["number"] == 1]
    start = subs.loc[first["subscriber"], "start_min"].to_numpy()
    assert np.allclose(first["t_min"], start + s.subscription.cadence_days * MIN_PER_DAY)
    last = per.tail(1).set_index("subscriber")
    assert ((last["outcome"] == CANCEL) == subs.loc[last.index, "cancelled"]).all()
    assert set(log["outcome"]) == {ORDER, SKIP, PAUSE, CANCEL}


def test_subscription_orders_are_counted_once(full: tuple[Scenario, ReplicationResult]) -> None:
    s, res = full
    orders, subs, log = events(res, "orders"), events(res, "subscribers"), events(res, "renewals")
    sub_orders = orders[orders["kind"] == ORDER_KIND]
    placed = log[log["outcome"] == ORDER]
    # one order per renewal that ordered: same customer and minute, no more, no less
    want = sorted(zip(subs.loc[placed["subscriber"], "customer"], placed["t_min"], strict=True))
    got = sorted(zip(sub_orders["customer"], sub_orders["order_min"], strict=True))
    assert got == want
    assert (
        res.kpis["subscription_orders"] == len(sub_orders) == res.daily["subscription_orders"].sum()
    )
    assert res.daily["orders"].sum() == len(orders) == res.kpis["orders"]
    cfg = s.subscription
    assert (sub_orders["value_usd"] == cfg.price_usd).all()
    assert np.allclose(
        sub_orders["revenue_usd"], round(cfg.price_usd * (1 - cfg.discount_share), 2)
    )
    assert res.kpis["subscription_revenue"] == pytest.approx(sub_orders["revenue_usd"].sum())
    # subscription orders go through the journey: they ship and are delivered like any order
    assert (
        sub_orders["ship_min"].notna().all() and sub_orders["delivered_min"].notna().mean() > 0.95
    )
    # each subscriber subscribed at one of their own one-off orders
    one_off = orders[orders["kind"] != ORDER_KIND]
    at = set(zip(one_off["customer"], one_off["order_min"], strict=True))
    assert all(pair in at for pair in zip(subs["customer"], subs["start_min"], strict=True))


def test_mrr_is_the_sum_of_billing_subscribers_monthly_prices(
    full: tuple[Scenario, ReplicationResult],
) -> None:
    s, res = full
    subs, log = events(res, "subscribers"), events(res, "renewals")
    cfg = s.subscription
    end_min = s.horizon_days * MIN_PER_DAY
    # paused at the end, from the log alone: the last decision paused and outlasts the horizon
    last = log.sort_values(["subscriber", "number"]).groupby("subscriber").tail(1)
    resume = last["t_min"] + cfg.pause_cycles * cfg.cadence_days * MIN_PER_DAY
    paused = set(last.loc[(last["outcome"] == PAUSE) & (resume >= end_min), "subscriber"])
    assert paused == set(subs.index[subs["paused"]])
    billing = [i for i in subs.index[~subs["cancelled"]] if i not in paused]
    monthly = cfg.price_usd * (1 - cfg.discount_share) * DAYS_PER_MONTH / cfg.cadence_days
    assert res.kpis["mrr"] == pytest.approx(len(billing) * monthly, rel=1e-12)
    assert res.daily["mrr_usd"].iloc[-1] == pytest.approx(res.kpis["mrr"], abs=0.01)
    assert res.daily["subscribers_paused"].iloc[-1] == len(paused)


def test_survival_kpi_and_cohort_table_agree_with_the_subscriber_table(
    full: tuple[Scenario, ReplicationResult],
) -> None:
    s, res = full
    subs = events(res, "subscribers")
    end_min = s.horizon_days * MIN_PER_DAY
    age = subs["start_min"] + 3 * DAYS_PER_MONTH * MIN_PER_DAY
    seen = subs[age <= end_min]
    alive = ~seen["cancelled"] | (seen["cancel_min"] > age[age <= end_min])
    assert res.kpis["subscriber_survival_3m"] == pytest.approx(alive.mean())
    table = res.subscription_cohorts
    assert table is not None
    at3 = table[table["months_since"] == 3]
    assert at3["observed"].sum() == len(seen) and at3["active"].sum() == alive.sum()
    assert (table.loc[table["months_since"] == 0, "survival"] == 1).all()
    assert 0 < res.kpis["subscriber_churn_monthly"] < 1


def test_kpis_are_nan_without_subscriptions() -> None:
    raw = deep_merge(
        resolve_raw(ROOT / "scenarios" / "baseline.yaml"), {**QUIET, "horizon_days": 20}
    )
    res = simulate(scenario_from_dict(raw), SEED, 0)
    for name in (
        "subscriptions_started",
        "mrr",
        "subscriber_churn_monthly",
        "subscriber_ltv",
        "subscription_revenue",
    ):
        assert np.isnan(res.kpis[name])
    assert res.subscription_cohorts is None
    assert (res.daily["subscription_orders"] == 0).all()


# ----------------------------------------------------------------------------- experience


def test_worse_delivery_cancels_more_under_common_random_numbers() -> None:
    sub = {"uptake_first_order": 1.0, "cadence_days": 14.0}
    good = reduced(sub, repurchase={"enabled": False})
    bad = reduced(
        sub,
        repurchase={"enabled": False},
        carrier={
            "outcomes": {
                "on_time": 0.45,
                "late": 0.49,
                "failed_attempt": 0.03,
                "lost": 0.01,
                "damaged": 0.02,
            }
        },
    )
    a = events(simulate(good, SEED, 0, events=True), "subscribers")
    b = events(simulate(bad, SEED, 0, events=True), "subscribers")
    # the same customers subscribe at the same minutes with the same theta in both (keyed draws)
    assert (a["customer"].to_numpy() == b["customer"].to_numpy()).all()
    assert np.array_equal(a["theta"].to_numpy(), b["theta"].to_numpy())
    d = b["cancelled"].to_numpy(dtype=float) - a["cancelled"].to_numpy(dtype=float)
    # paired difference of "cancelled by the horizon end" per subscriber: its mean must exceed
    # 3 paired standard errors (one-sided, a 0.13% chance if late deliveries changed nothing)
    se = d.std(ddof=1) / np.sqrt(len(d))
    assert d.mean() > 3 * se, (d.mean(), se)


def test_without_the_experience_link_worse_delivery_changes_no_cancellation() -> None:
    # sentiment_weight 0: the cancellation draw and its probability are the same in both scenarios,
    # so under common random numbers every subscriber cancels at the same renewal
    sub = {"uptake_first_order": 1.0, "cadence_days": 14.0, "sentiment_weight": 0.0}
    worse = {
        "outcomes": {
            "on_time": 0.45,
            "late": 0.49,
            "failed_attempt": 0.03,
            "lost": 0.01,
            "damaged": 0.02,
        }
    }
    a = events(
        simulate(reduced(sub, repurchase={"enabled": False}), SEED, 0, events=True), "subscribers"
    )
    b = events(
        simulate(reduced(sub, repurchase={"enabled": False}, carrier=worse), SEED, 0, events=True),
        "subscribers",
    )
    assert a["cancelled"].sum() > 0
    assert a[["customer", "cancelled", "renewals"]].equals(b[["customer", "cancelled", "renewals"]])


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cadence_days", 0),
        ("skip_probability", 1.5),
        ("pause_probability", -0.1),
        ("uptake_first_order", 2),
        ("cancel_alpha", 0),
        ("cancel_beta", -1),
        ("discount_share", 1.2),
        ("pause_cycles", 0),
    ],
)
def test_bad_subscription_fields_are_rejected_with_their_path(field: str, value: float) -> None:
    raw = deep_merge(
        resolve_raw(ROOT / "scenarios" / "subscription.yaml"), {"subscription": {field: value}}
    )
    with pytest.raises(ScenarioError, match=f"subscription.{field}"):
        scenario_from_dict(raw)


def test_the_shipped_variant_enables_subscriptions() -> None:
    s = load_scenario(ROOT / "scenarios" / "subscription.yaml")
    assert s.subscription.enabled and s.subscription.cancel_alpha > 0
    assert not load_scenario(ROOT / "scenarios" / "baseline.yaml").subscription.enabled
