"""Repurchase against the BG/NBD formulas it implements, and the peak time change of the purchase
clock against the rate ratio it must produce. Tolerances are 4 binomial/Poisson standard errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.engine import simulate
from sim.loader import deep_merge, resolve_raw, scenario_from_dict
from sim.scenario import Effects, Scenario

ROOT = Path(__file__).resolve().parents[1]
Z = 4.0
NO_EFFECTS = {k: 0.0 for k in Effects.model_fields}


def _scenario(**overrides: object) -> Scenario:
    raw = resolve_raw(ROOT / "scenarios" / "baseline.yaml")
    raw = deep_merge(raw, {"experience": {"effects": NO_EFFECTS}, "demand": {"peaks": [], "referral_probability_per_promoter": 0.0}})
    return scenario_from_dict(deep_merge(raw, overrides))


def test_second_order_probability_matches_bgnbd() -> None:
    """P(2nd order by age tau) = E[1-p] * E[1 - exp(-lambda tau)] = b/(a+b) * (1 - (alpha/(alpha+tau))^r)
    when experience moves nothing (sentiment stays 0)."""
    s = _scenario(horizon_days=240, demand={"initial_customers": 0, "new_customers_per_day": 400})
    res = simulate(s, 11, 0, events=True)
    cu = res.events["customers"]
    cu = cu[cu["source"] != 0]
    tau_days = (s.horizon_days * 1440.0 - cu["acquired_min"]) / 1440.0
    rp = s.repurchase
    p_each = rp.dropout_b / (rp.dropout_a + rp.dropout_b) * (1 - (rp.rate_scale_alpha_days / (rp.rate_scale_alpha_days + tau_days)) ** rp.rate_shape_r)
    expected = p_each.sum()
    observed = np.isfinite(cu["second_order_min"]).sum()
    se = np.sqrt((p_each * (1 - p_each)).sum())
    assert abs(observed - expected) < Z * se, (observed, expected, se)


def test_peak_sensitivity_lifts_the_repurchase_rate_by_the_peak_multiplier() -> None:
    """Existing customers who (almost) never drop out buy as a Poisson process whose rate is
    multiplied by 1 + s (m - 1) on peak dates; count their orders in and out of the peak."""
    m, sens = 3.0, 1.0
    s = _scenario(
        horizon_days=90,
        demand={"initial_customers": 20000, "new_customers_per_day": 0.0,
                "peaks": [{"name": "p", "start": "2026-10-01", "end": "2026-10-30", "multiplier": m}]},
        repurchase={"dropout_a": 0.01, "dropout_b": 1000.0, "peak_sensitivity": sens},
    )
    res = simulate(s, 5, 0)
    d = res.daily.set_index("date")["orders"]
    peak = d["2026-10-01":"2026-10-30"].sum()
    off = d["2026-09-01":"2026-09-30"].sum() + d["2026-10-31":"2026-11-29"].sum()
    ratio = (peak / 30) / (off / 60)
    # delta method on a ratio of Poisson counts
    se = ratio * np.sqrt(1 / peak + 1 / off)
    assert abs(ratio - (1 + sens * (m - 1))) < Z * se, (ratio, se)
