"""History → fitted scenario parameters, each with an interval and its diagnostics.

:func:`calibrate` fits, on the history before the holdout (the last ``holdout_weeks`` weeks),
everything the given files identify, and keeps the base scenario's value for everything else
(listed, with the reason, in :attr:`Calibration.kept`). :attr:`Calibration.overrides` is a nested
mapping that, deep-merged over the base scenario, validates as a :class:`sim.scenario.Scenario`
whose calendar is the history's (``start_date`` = its first day, ``horizon_days`` = its length).

Each stage's fit lives in its own module, named like the simulation module it feeds; this
module only runs them in order and assembles the result:

* :mod:`calibration.demand` (arrivals, pre-history customers, order values; the joint
  arrival/repurchase model itself is :mod:`calibration.acquisition`),
  :mod:`calibration.repurchase` (MBG/NBD parameters, BTYD comparison),
  :mod:`calibration.delivery`, :mod:`calibration.contacts` (with
  :mod:`calibration.contact_rates` for probabilities and delays per trigger),
  :mod:`calibration.returns`, :mod:`calibration.staffing`;
* :mod:`calibration.calendar` moves the base's unfitted dated lists onto the history's calendar,
  :mod:`calibration.kept` lists what was kept from the base and why; the stages record into a
  :class:`calibration.collector.Collector`.

What is fitted from what (details in each stage module and in the README):

* orders → new-customer arrivals (rate, weekday and hour profiles, trend, dated uplifts, repeated
  on named events by :mod:`calibration.holidays`, the end of acquisition of a closed cohort), the
  customers who bought before the history (``demand.initial_customers``), repurchase and dropout
  (MBG/NBD, the engine's process: :mod:`calibration.acquisition`; BG/NBD, Pareto/NBD and
  Gamma-Gamma are fitted for comparison and reported), the order-value distribution; with the
  optional columns, processing and transit times, carrier outcome shares, peak degradation periods
  and the delivery promise.
* contacts without orders → a direct contact stream (``contacts.arrivals``: volume per day,
  weekday factors, reason and channel mix; :mod:`calibration.contact_volume`) and no orders.
* contacts (+ orders/returns to know the triggers) → contact probability per trigger and reason,
  delay after the trigger, channel mix per reason, handle time per reason and channel, patience per
  real-time channel (abandoned = event, answered = censored), first-contact resolution, retries,
  repeat delays, the contact hour-of-day profile, containment where a ``bot`` channel is present.
* returns (+ orders) → return rate, request lag (truncated at the return window), outcome mix,
  refund delay, damaged-item return share.
* staffing → agents by hour and weekday per channel, as dated plans.

A fit that does not converge is never used: the base value is kept and a warning says why.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from calibration.calendar import redate
from calibration.checks import Finding, cross_file_checks
from calibration.collector import Collector
from calibration.contact_volume import fit_contact_arrivals
from calibration.contacts import fit_contacts
from calibration.delivery import fit_delivery
from calibration.demand import ACQUISITION_MODES, fit_demand
from calibration.kept import kept_from_base
from calibration.results import Calibration, Param
from calibration.returns import fit_returns
from calibration.schemas import History
from calibration.staffing import fit_staffing
from calibration.summaries import CalibrationInputError, history_window, prepare
from calibration.validity import valid_scenario
from sim.scenario import Scenario

__all__ = ["Calibration", "CalibrationInputError", "Param", "calibrate", "overrides_copy"]


def calibrate(history: History, base: Scenario, holdout_weeks: int = 8, seed: int = 0, name: str | None = None,
              acquisition: str = "auto", findings: list[Finding] | None = None) -> Calibration:
    """Fit the scenario parameters the history identifies (see the module docstring).

    ``acquisition`` is ``auto`` (a closed cohort when new customers stop arriving), ``none`` (a
    closed cohort) or ``fitted`` (new customers throughout): :data:`calibration.demand.ACQUISITION_MODES`.
    ``findings`` are the cross-file checks (:func:`calibration.checks.cross_file_checks`) when the
    caller ran them already; they become warnings. Fitted values outside the scenario's ranges are
    clamped or replaced by the base value with a warning (:mod:`calibration.validity`).

    Raises :class:`CalibrationInputError` when the history cannot support the fit (too short for
    the holdout).
    """
    if acquisition not in ACQUISITION_MODES:
        raise CalibrationInputError(f"acquisition must be one of {', '.join(ACQUISITION_MODES)}, got {acquisition!r}")
    if findings is None:
        findings = cross_file_checks(history)
    window = history_window(history, holdout_weeks, min_fit_days=28 if history.orders is not None else 1)
    prep = prepare(history, window)
    rng = np.random.default_rng(seed)
    base_dump = base.model_dump(mode="json")
    out = Collector(base_dump)
    files = set(history.frames())
    out.notes.extend(history.notes)
    for f in findings:
        out.warn(f"data check: {f.text()}")
    out.models["data_checks"] = [f.to_dict() for f in findings]
    delivery: dict[str, Any] = {}
    if prep.orders is not None:
        fit_demand(prep, base, out, rng, acquisition)
        delivery = fit_delivery(prep, base, out, rng)
    if prep.contacts is not None:
        fit_contacts(prep, base, out, rng, delivery)
        if prep.orders is None:  # contacts-only: the volume is its own arrival process
            fit_contact_arrivals(prep, base, out)
    if prep.returns is not None:
        fit_returns(prep, base, out, rng)
    if prep.staffing is not None:
        fit_staffing(prep, base, out)
        # the history's roster is what reproduces the history: simulate it as written, not re-planned
        out.set("planner.mode", "fixed")
    out.set("name", name or f"{base.name}_calibrated")
    out.set("description", f"Calibrated from history {window.start.date()} to {(window.end - pd.Timedelta(days=1)).date()} "
                           f"(fit window {window.fit_days} days, holdout {window.holdout_days} days) over {base.name}.")
    out.set("start_date", window.start.date().isoformat())
    out.set("horizon_days", int(window.days))
    redate(base, window, out)
    try:
        scenario = valid_scenario(base_dump, out)
    except ValueError as exc:  # not a fitted value: the base itself does not validate
        raise CalibrationInputError(f"the fitted values do not form a valid scenario: {exc}") from None
    kept = kept_from_base(base_dump, out.overrides, out, files)
    return Calibration(
        overrides=out.overrides, params=out.params, kept=kept, warnings=out.warnings, notes=out.notes,
        models=out.models, window=window, scenario=scenario, prepared=prep,
        inputs={k: v.to_dict() for k, v in history.files.items()}, fitted_sections=out.sections,
    )


def overrides_copy(cal: Calibration) -> dict[str, Any]:
    return copy.deepcopy(cal.overrides)
