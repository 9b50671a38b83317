"""Support contacts: from triggering events to contacts with a channel, a handle time and a fate.

A triggered contact first meets self-service / the automated assistant (when automation is on),
which contains a share per reason; a share of contained customers come back to a human later.
Human contacts queue in their channel's agent pool. After service a contact is resolved, or
escalated to tier 2, or the customer comes back (a repeat contact); an abandoning customer may
retry. All draws for a contact are made when it is created, so its fate does not depend on the
order in which the queue processes events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.calendar import MIN_PER_DAY, MIN_PER_HOUR, sample_times_in_days
from sim.distributions import Dist
from sim.results import POOLS
from sim.scenario import CHANNELS, REASONS, ContactArrivals, Scenario

BOT = -1
TIER2 = POOLS.index("tier2")
# contact kinds
FIRST, REPEAT, RETRY, ESCALATION, COME_BACK = range(5)
KINDS: tuple[str, ...] = ("first", "repeat", "retry", "escalation", "come_back")

CONTACT_COLUMNS: dict[str, str] = {
    "customer": "int64",
    "order": "int64",
    "reason": "int8",
    "pool": "int8",  # index into POOLS, or BOT for a contact contained by automation
    "kind": "int8",
    "parent": "int64",
    "arrival_min": "float64",
    "handle_min": "float64",
    "patience_min": "float64",
    "resolved": "bool",
    "escalate": "bool",
    "retry": "bool",
    "followup_delay_min": "float64",
    "retry_delay_min": "float64",
    "start_min": "float64",
    "end_min": "float64",
    "answered": "bool",
    "done": "bool",
}


@dataclass(frozen=True)
class ContactModel:
    """Scenario contact parameters laid out as arrays indexed by reason and pool."""

    probability: np.ndarray  # (reasons,)
    probability_if_issue: np.ndarray
    channel_cdf: np.ndarray  # (reasons, channels)
    containment: np.ndarray  # (reasons,), zero when automation is off
    fcr: np.ndarray
    escalation: np.ndarray
    delay_hours: list[Dist | None]
    repeat_delay_hours: list[Dist | None]
    handle: list[list[Dist | None]]  # [reason][pool]
    patience: list[Dist | None]  # [pool]
    retry: np.ndarray  # (pools,)
    retry_delay_hours: list[Dist | None]
    sla_threshold_min: np.ndarray  # (pools,), nan when the pool does not exist
    realtime: np.ndarray  # (pools,) bool
    handle_factor: float  # agent assist
    come_back: float
    come_back_delay_hours: Dist
    tier2_handle: Dist | None
    hour_weights: list[float] | None

    @classmethod
    def from_scenario(cls, s: Scenario) -> ContactModel:
        nr, npool = len(REASONS), len(POOLS)
        prob, prob_issue = np.zeros(nr), np.zeros(nr)
        cdf = np.zeros((nr, len(CHANNELS)))
        cont, fcr, esc = np.zeros(nr), np.ones(nr), np.zeros(nr)
        delay: list[Dist | None] = [None] * nr
        rdelay: list[Dist | None] = [None] * nr
        handle: list[list[Dist | None]] = [[None] * npool for _ in range(nr)]
        auto = s.automation
        for i, name in enumerate(REASONS):
            cfg = s.contacts.reasons.get(name)  # type: ignore[call-overload]
            if cfg is None:
                continue
            prob[i], prob_issue[i] = cfg.probability, cfg.probability_if_issue
            mix = cfg.channel_mix.model_dump()
            cdf[i] = np.cumsum([mix[c] for c in CHANNELS])
            cont[i] = cfg.containment if auto.enabled else 0.0
            fcr[i], esc[i] = cfg.first_contact_resolution, cfg.escalation
            delay[i], rdelay[i] = cfg.delay_hours, cfg.repeat_delay_hours
            for j, ch in enumerate(CHANNELS):
                handle[i][j] = cfg.handle_time_min.get(ch)  # type: ignore[call-overload]
        patience: list[Dist | None] = [None] * npool
        retry = np.zeros(npool)
        retry_delay: list[Dist | None] = [None] * npool
        sla = np.full(npool, np.nan)
        realtime = np.zeros(npool, dtype=bool)
        for j, ch in enumerate(CHANNELS):
            ccfg = s.contacts.channels.get(ch)  # type: ignore[call-overload]
            if ccfg is None:
                continue
            patience[j] = ccfg.patience_min if ccfg.realtime else None
            retry[j], retry_delay[j] = ccfg.retry_after_abandon, ccfg.retry_delay_hours
            sla[j], realtime[j] = ccfg.sla_threshold_min, ccfg.realtime
        t2 = s.contacts.tier2
        if t2 is not None:
            sla[TIER2] = t2.sla_threshold_min
        factor = 1.0 - auto.agent_assist_handle_time_reduction if auto.enabled else 1.0
        return cls(
            prob, prob_issue, cdf, cont, fcr, esc, delay, rdelay, handle, patience, retry, retry_delay,
            sla, realtime, factor, auto.contained_come_back if auto.enabled else 0.0,
            auto.come_back_delay_hours, t2.handle_time_min if t2 is not None else None,
            s.contacts.hour_weights,
        )


def _by_group(keys: np.ndarray, n_groups: int) -> list[tuple[int, np.ndarray]]:
    """(group, row indices) for each non-empty group of integer keys."""
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=n_groups)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    return [(int(g), order[bounds[g] : bounds[g + 1]]) for g in np.flatnonzero(counts)]


def at_contact_hours(
    arrival: np.ndarray, trigger: np.ndarray, hour_weights: list[float], rng: np.random.Generator
) -> np.ndarray:
    """Keep each contact's day, draw its time of day from the contact hour profile; a time before
    the trigger moves to the next day (the displacement from the trigger stays independent of it)."""
    finite = np.isfinite(arrival)
    day = np.floor(np.where(finite, arrival, 0.0) / MIN_PER_DAY)
    t = sample_times_in_days(rng, day, hour_weights)
    t = np.where(t < trigger, t + MIN_PER_DAY, t)
    return np.where(finite, t, arrival)


def human_contact_draws(
    m: ContactModel, reason: np.ndarray, pool: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Handle time, patience and fate draws for human contacts of the given reasons and pools."""
    n = len(reason)
    handle = np.zeros(n)
    patience = np.full(n, math.inf)
    followup = np.zeros(n)
    retry_delay = np.zeros(n)
    for key, rows in _by_group(reason.astype(np.int64) * len(POOLS) + pool, len(REASONS) * len(POOLS)):
        r, p = divmod(int(key), len(POOLS))
        dist = m.tier2_handle if p == TIER2 else m.handle[r][p]
        if dist is None:
            raise ValueError(f"no handle time for reason {REASONS[r]} in pool {POOLS[p]}")
        handle[rows] = dist.sample(rng, len(rows)) * m.handle_factor
        rd = m.repeat_delay_hours[r]
        followup[rows] = rd.sample(rng, len(rows)) * MIN_PER_HOUR if rd is not None else 0.0
    for p, rows in _by_group(pool.astype(np.int64), len(POOLS)):
        dist = m.patience[p]
        if dist is not None:
            patience[rows] = dist.sample(rng, len(rows))
            rdist = m.retry_delay_hours[p]
            if rdist is not None:
                retry_delay[rows] = rdist.sample(rng, len(rows)) * MIN_PER_HOUR
    u = rng.random((3, n))
    tier2 = pool == TIER2
    resolved = (u[0] < m.fcr[reason]) | tier2
    escalate = ~tier2 & (u[1] < m.escalation[reason])
    retry = u[2] < m.retry[pool]
    return {
        "handle_min": handle,
        "patience_min": patience,
        "resolved": resolved,
        "escalate": escalate,
        "retry": retry,
        "followup_delay_min": followup,
        "retry_delay_min": retry_delay,
    }


def triggered_contacts(
    m: ContactModel,
    reason_idx: int,
    trigger_min: np.ndarray,
    probability: np.ndarray | float,
    customer: np.ndarray,
    order: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """First-touch contacts of one reason: which triggers produce one, when, on which channel,
    and whether automation contains it. Returns columns for new contact rows (bot rows included)."""
    n = len(trigger_min)
    hit = rng.random(n) < probability
    idx = np.flatnonzero(hit)
    k = len(idx)
    delay = m.delay_hours[reason_idx]
    arrival = trigger_min[idx] + (delay.sample(rng, k) * MIN_PER_HOUR if delay is not None else 0.0)
    if m.hour_weights is not None and k:
        arrival = at_contact_hours(arrival, trigger_min[idx], m.hour_weights, rng)
    pool = np.searchsorted(m.channel_cdf[reason_idx], rng.random(k) * m.channel_cdf[reason_idx][-1], side="right")
    pool = np.minimum(pool, len(CHANNELS) - 1).astype(np.int8)
    contained = rng.random(k) < m.containment[reason_idx]
    rows = {
        "customer": customer[idx],
        "order": order[idx],
        "reason": np.full(k, reason_idx, np.int8),
        "pool": np.where(contained, BOT, pool).astype(np.int8),
        "kind": np.full(k, FIRST, np.int8),
        "parent": np.full(k, -1, np.int64),
        "arrival_min": arrival,
    }
    come_back = contained & (rng.random(k) < m.come_back)
    if come_back.any():
        cb = np.flatnonzero(come_back)
        rows = {key: np.concatenate([v, v[cb]]) for key, v in rows.items()}
        j = slice(k, k + len(cb))
        rows["pool"][j] = pool[cb]
        rows["kind"][j] = COME_BACK
        back = arrival[cb] + m.come_back_delay_hours.sample(rng, len(cb)) * MIN_PER_HOUR
        if m.hour_weights is not None:
            back = at_contact_hours(back, arrival[cb], m.hour_weights, rng)
        rows["arrival_min"][j] = back
    return rows


def stream_contacts(
    m: ContactModel, arrivals: ContactArrivals, day: int, mean: float, rng: np.random.Generator, follow_ups: bool
) -> dict[str, np.ndarray]:
    """One day of :class:`sim.scenario.ContactArrivals`: Poisson(``mean``) contacts on ``day`` at
    hours from the contact hour profile, reason and channel drawn from the stream's mixes,
    contained per reason as triggered contacts are (come-backs only with ``follow_ups``). Rows have
    no customer or order (-1)."""
    k = int(rng.poisson(mean))
    weights = m.hour_weights if m.hour_weights is not None else [1.0] * 24
    arrival = np.sort(sample_times_in_days(rng, np.full(k, day), weights))
    names = list(arrivals.reason_mix)
    r_cdf = np.cumsum([arrivals.reason_mix[n] for n in names])  # type: ignore[index]
    pick = np.minimum(np.searchsorted(r_cdf, rng.random(k) * r_cdf[-1], side="right"), len(names) - 1)
    reason = np.asarray([REASONS.index(n) for n in names], dtype=np.int8)[pick]
    mix = arrivals.channel_mix.model_dump()
    c_cdf = np.cumsum([mix[c] for c in CHANNELS])
    pool = np.minimum(np.searchsorted(c_cdf, rng.random(k) * c_cdf[-1], side="right"), len(CHANNELS) - 1).astype(np.int8)
    contained = rng.random(k) < m.containment[reason]
    rows = {
        "customer": np.full(k, -1, np.int64),
        "order": np.full(k, -1, np.int64),
        "reason": reason,
        "pool": np.where(contained, BOT, pool).astype(np.int8),
        "kind": np.full(k, FIRST, np.int8),
        "parent": np.full(k, -1, np.int64),
        "arrival_min": arrival,
    }
    back = contained & (rng.random(k) < m.come_back) if follow_ups else np.zeros(k, dtype=bool)
    if back.any():
        cb = np.flatnonzero(back)
        rows = {key: np.concatenate([v, v[cb]]) for key, v in rows.items()}
        j = slice(k, k + len(cb))
        rows["pool"][j] = pool[cb]
        rows["kind"][j] = COME_BACK
        t = arrival[cb] + m.come_back_delay_hours.sample(rng, len(cb)) * MIN_PER_HOUR
        rows["arrival_min"][j] = at_contact_hours(t, arrival[cb], m.hour_weights, rng) if m.hour_weights is not None else t
    return rows
