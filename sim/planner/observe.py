"""Per-pool interval statistics pooled over replications: what the planner reads from a simulation.

Demand is what the scenario's own journey generates (orders x delivery outcomes x contact reasons,
retries, repeat contacts, come-backs from automation), so it is read from simulated replications,
not typed in as a forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class PoolObservation:
    """One pool's interval statistics over ``reps`` replications (arrays of length n_intervals).

    Counts are totals over the replications; ``arrivals_mean`` is the mean per replication.
    ``handle_min`` is the mean handle (service) time, minutes, estimated per day from busy time
    over answered contacts (the pool's overall mean where a day answered fewer than 20).
    """

    reps: int
    arrivals: np.ndarray
    answered: np.ndarray
    abandoned: np.ndarray
    within: np.ndarray
    busy_min: np.ndarray
    staffed_min: np.ndarray
    queue_end: np.ndarray
    handle_min: np.ndarray

    @property
    def arrivals_mean(self) -> np.ndarray:
        """Expected arrivals per interval (mean over replications)."""
        return self.arrivals / self.reps

    @property
    def arrivals_smoothed(self) -> np.ndarray:
        """Expected arrivals per interval with a 1-2-1 kernel over neighbouring intervals: the
        replications' Poisson noise is cut to 61% of its standard deviation while a ramp over an hour
        or more keeps its shape (the refinement by simulation corrects what remains)."""
        a = self.arrivals_mean
        padded = np.concatenate(([a[0]], a, [a[-1]]))
        return 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]

    @property
    def service_level(self) -> np.ndarray:
        """Answered within the threshold / arrivals, pooled over replications (NaN: no arrivals)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.arrivals > 0, self.within / np.maximum(self.arrivals, 1), np.nan)

    @property
    def abandonment(self) -> np.ndarray:
        """Abandoned / arrivals, pooled (NaN: no arrivals)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.arrivals > 0, self.abandoned / np.maximum(self.arrivals, 1), np.nan)

    @property
    def occupancy(self) -> np.ndarray:
        """Busy / staffed server time, pooled (NaN: nobody staffed)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.staffed_min > 0, self.busy_min / np.maximum(self.staffed_min, 1e-12), np.nan)

    def daily_service_level(self, intervals_per_day: int) -> np.ndarray:
        """Answered within the threshold / arrivals per day, pooled (NaN: no arrivals that day)."""
        a = self.arrivals.reshape(-1, intervals_per_day).sum(axis=1)
        w = self.within.reshape(-1, intervals_per_day).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(a > 0, w / np.maximum(a, 1), np.nan)


class HasIntervals(Protocol):
    """A simulated replication's per-interval service table (``ReplicationResult``, or a replay of
    its contacts: ``sim.planner.replay.ReplayResult``)."""

    @property
    def intervals(self) -> pd.DataFrame: ...


def observe(results: Sequence[HasIntervals], pool: str, intervals_per_day: int) -> PoolObservation:
    """Pool ``pool``'s interval statistics summed over the replications in ``results``."""
    if not results:
        raise ValueError("observe needs at least one replication")
    cols = ("arrivals", "answered", "abandoned", "answered_within_sla", "busy_min", "staffed_min", "queue_end")
    total = {c: 0.0 for c in cols}
    for res in results:
        iv = res.intervals
        rows = iv[iv["pool"] == pool]
        for c in cols:
            total[c] = total[c] + rows[c].to_numpy(dtype=float)
    reps = len(results)
    busy, answered = np.asarray(total["busy_min"]), np.asarray(total["answered"])
    day_busy = busy.reshape(-1, intervals_per_day).sum(axis=1)
    day_answered = answered.reshape(-1, intervals_per_day).sum(axis=1)
    overall = busy.sum() / answered.sum() if answered.sum() > 0 else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        per_day = np.where(day_answered >= 20, day_busy / np.maximum(day_answered, 1), overall)
    return PoolObservation(
        reps=reps,
        arrivals=np.asarray(total["arrivals"]),
        answered=answered,
        abandoned=np.asarray(total["abandoned"]),
        within=np.asarray(total["answered_within_sla"]),
        busy_min=busy,
        staffed_min=np.asarray(total["staffed_min"]),
        queue_end=np.asarray(total["queue_end"]) / reps,
        handle_min=np.repeat(per_day, intervals_per_day),
    )
