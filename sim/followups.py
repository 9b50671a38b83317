"""Follow-up contacts created while the queue runs: repeat contacts after an unresolved answer,
tier-2 escalations, and retries after abandonment.

They are created one at a time inside the queue's completion callback, so their random draws come
from pre-drawn blocks (refilled in bulk) rather than per-contact NumPy calls, and their rows wait
in a Python list until the engine flushes them into the contact table once a day.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from sim.calendar import MIN_PER_DAY, MIN_PER_HOUR
from sim.contacts import ESCALATION, REPEAT, RETRY, TIER2, ContactModel
from sim.distributions import Dist
from sim.tables import Columns

BLOCK = 512


class _Blocks:
    """Pre-drawn samples per key, handed out one at a time."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._left: dict[Any, list[float]] = {}

    def take(self, key: Any, draw: Callable[[np.random.Generator, int], np.ndarray]) -> float:
        buf = self._left.get(key)
        if not buf:
            buf = draw(self.rng, BLOCK).tolist()
            buf.reverse()
            self._left[key] = buf
        return buf.pop()


class FollowUps:
    """Creates follow-up contacts from the queue's ``on_done`` callback."""

    FIELDS = (
        "customer", "order", "reason", "pool", "kind", "parent", "arrival_min", "handle_min",
        "patience_min", "resolved", "escalate", "retry", "followup_delay_min", "retry_delay_min",
    )

    def __init__(self, model: ContactModel, table: Columns, rng: np.random.Generator, end_min: float) -> None:
        self.m = model
        self.table = table
        self.blocks = _Blocks(rng)
        self.end_min = end_min
        self.pending: list[tuple[Any, ...]] = []
        self.submit: Callable[[int, int, float, float, float], None] | None = None
        w = model.hour_weights
        self.hour_cdf: list[float] | None = None
        if w is not None:
            cdf = np.cumsum(np.asarray(w, dtype=float) / sum(w))
            cdf[-1] = 1.0
            self.hour_cdf = cdf.tolist()

    def _at_contact_hours(self, arrival: float, trigger: float) -> float:
        """Scalar twin of contacts.at_contact_hours: keep the day, take the hour from the contact
        profile (uniform within it), a day later if that would come before the trigger."""
        assert self.hour_cdf is not None
        u = self.blocks.take("u", _uniform)
        hour = bisect.bisect_right(self.hour_cdf, u)
        lower = self.hour_cdf[hour - 1] if hour else 0.0
        frac = (u - lower) / max(self.hour_cdf[hour] - lower, 1e-300)
        t = math.floor(arrival / MIN_PER_DAY) * MIN_PER_DAY + (hour + min(max(frac, 0.0), 1.0 - 1e-12)) * MIN_PER_HOUR
        return t + MIN_PER_DAY if t < trigger else t

    def _sample(self, dist: Dist | None, scale: float = 1.0) -> float:
        if dist is None:
            return 0.0
        return self.blocks.take(id(dist), dist.sample) * scale

    def _fate(self, cid: int, answered: bool, t: float) -> tuple[int, int, float] | None:
        """(kind, pool, arrival) of the follow-up ``cid`` calls for, or None. Reads only the
        fate columns first: most contacts end here, so this is the hot path."""
        base = self.table.n
        if cid >= base:
            row = self.pending[cid - base]
            pool, resolved, escalate, retry, fdelay, rdelay = row[3], row[9], row[10], row[11], row[12], row[13]
        else:
            buf = self.table.buffer
            if answered:
                escalate, resolved = buf("escalate")[cid], buf("resolved")[cid]
                if resolved and not escalate:
                    return None
            elif not buf("retry")[cid]:
                return None
            pool, resolved, escalate, retry = buf("pool")[cid], buf("resolved")[cid], buf("escalate")[cid], True
            fdelay, rdelay = buf("followup_delay_min")[cid], buf("retry_delay_min")[cid]
        if answered:
            if escalate:
                return ESCALATION, TIER2, t
            if not resolved:
                return REPEAT, int(pool), t + fdelay
            return None
        if retry:
            return RETRY, int(pool), t + rdelay
        return None

    def on_done(self, cid: int, answered: bool, t: float) -> None:
        """Queue callback: create the follow-up contact of ``cid`` if its fate calls for one."""
        fate = self._fate(cid, answered, t)
        if fate is None:
            return
        kind, new_pool, arrival = fate
        if kind != ESCALATION and self.hour_cdf is not None:
            arrival = self._at_contact_hours(arrival, t)
        if arrival >= self.end_min:
            return
        m = self.m
        base = self.table.n
        if cid >= base:
            customer, order, reason = self.pending[cid - base][:3]
        else:
            buf = self.table.buffer
            customer, order, reason = buf("customer")[cid], buf("order")[cid], buf("reason")[cid]
        r = int(reason)
        handle_dist = m.tier2_handle if new_pool == TIER2 else m.handle[r][new_pool]
        handle = self._sample(handle_dist) * m.handle_factor
        patience_dist = m.patience[new_pool] if new_pool != TIER2 else None
        patience = self._sample(patience_dist) if patience_dist is not None else math.inf
        u = self.blocks.take("u", _uniform)
        v = self.blocks.take("u", _uniform)
        w = self.blocks.take("u", _uniform)
        is_t2 = new_pool == TIER2
        row = (
            customer, order, r, new_pool, kind, cid, arrival, handle, patience,
            bool(is_t2 or u < m.fcr[r]), bool(not is_t2 and v < m.escalation[r]), bool(w < m.retry[new_pool]),
            self._sample(m.repeat_delay_hours[r], MIN_PER_HOUR),
            self._sample(m.retry_delay_hours[new_pool], MIN_PER_HOUR) if not is_t2 else 0.0,
        )
        new_id = self.table.n + len(self.pending)
        self.pending.append(row)
        assert self.submit is not None
        self.submit(new_pool, new_id, arrival, handle, patience)

    def flush(self) -> None:
        """Append pending follow-ups to the contact table (ids were reserved in order)."""
        if not self.pending:
            return
        cols = list(zip(*self.pending, strict=True))
        self.table.append(
            **{f: np.asarray(c) for f, c in zip(self.FIELDS, cols, strict=True)},
            start_min=np.nan, end_min=np.nan, answered=False, done=False,
        )
        self.pending.clear()


def _uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n)
