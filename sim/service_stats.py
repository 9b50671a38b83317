"""Interval service statistics from contact records (vectorised NumPy; no loops over contacts).

All times are minutes since the scenario start. Records are :class:`sim.queueing.ContactRecords`
(typically the concatenation of successive daily drains). Only finished contacts appear in
records, so statistics for an interval are complete once every contact that arrived in it, or was
served during it, has finished: pass records drained well after the interval's end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.queueing import ContactRecords, PoolSpec

__all__ = [
    "LittlesLaw",
    "busy_time_before",
    "count_before",
    "interval_stats",
    "littles_law",
    "time_average_queue",
]


def _sum_min(sorted_x: np.ndarray, csum: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Σ_i min(t, x_i) for each t, given x sorted ascending and csum = [0, cumsum(x)]."""
    idx = np.searchsorted(sorted_x, t, side="left")
    return csum[idx] + t * (sorted_x.shape[0] - idx)


def busy_time_before(start_min: np.ndarray, end_min: np.ndarray, t_min: np.ndarray) -> np.ndarray:
    """Server-minutes of service delivered before each time in ``t_min``.

    ``B(t) = Σ_i [min(t, end_i) - min(t, start_i)]``, computed with sorted cumulative sums and
    ``searchsorted`` (O((n + m) log n) for n services and m query times).
    """
    t = np.asarray(t_min, dtype=np.float64)
    s = np.sort(np.asarray(start_min, dtype=np.float64))
    e = np.sort(np.asarray(end_min, dtype=np.float64))
    cs = np.concatenate(([0.0], np.cumsum(s)))
    ce = np.concatenate(([0.0], np.cumsum(e)))
    return _sum_min(e, ce, t) - _sum_min(s, cs, t)


def count_before(times: np.ndarray, t_min: np.ndarray) -> np.ndarray:
    """Number of ``times`` that are ``<= t`` for each ``t`` in ``t_min``."""
    return np.searchsorted(np.sort(np.asarray(times, dtype=np.float64)), t_min, side="right")


def interval_stats(
    records: ContactRecords,
    pool_index: int,
    pool_spec: PoolSpec,
    n_intervals: int,
    sla_threshold_min: float,
    first_interval: int = 0,
) -> pd.DataFrame:
    """Per-interval service statistics for one pool.

    Intervals are ``k = first_interval, ..., first_interval + n_intervals - 1`` covering
    ``[k * interval_min, (k+1) * interval_min)`` (minutes). Columns:

    * ``interval``: k.
    * ``arrivals``: contacts (in ``records``) arriving in the interval.
    * ``answered``, ``abandoned``: of those arrivals.
    * ``answered_within_sla``: answered with wait ``<= sla_threshold_min``.
    * ``service_level``: answered_within_sla / (answered + abandoned); NaN if no arrivals.
    * ``asa_min``: mean wait (minutes) of the answered arrivals; NaN if none.
    * ``busy_min``: server-minutes spent serving inside the interval (any arrival interval).
    * ``staffed_min``: servers x interval_min.
    * ``occupancy``: busy_min / staffed_min; NaN when nobody is staffed. It can exceed 1 in an
      interval where staffing drops, because busy servers finish their contact before leaving.
    * ``queue_end``: contacts waiting at the interval's end time T: arrived by T minus started
      by T minus abandoned by T (all "by T" inclusive).
    """
    if n_intervals < 0:
        raise ValueError("n_intervals must be >= 0")
    width = float(pool_spec.interval_min)
    mask = records.pool == pool_index
    arrival = records.arrival_min[mask]
    start = records.start_min[mask]
    end = records.end_min[mask]
    answered = records.answered[mask]

    k = np.arange(first_interval, first_interval + n_intervals, dtype=np.int64)
    edges = np.arange(first_interval, first_interval + n_intervals + 1, dtype=np.float64) * width

    # Assign each arrival to an interval; drop those outside the window.
    rel = np.floor(arrival / width).astype(np.int64) - first_interval
    inside = (rel >= 0) & (rel < n_intervals)
    rel_in = rel[inside]
    ans_in = answered[inside]
    wait_in = (start - arrival)[inside]

    arrivals = np.bincount(rel_in, minlength=n_intervals)
    n_answered = np.bincount(rel_in, weights=ans_in, minlength=n_intervals).astype(np.int64)
    n_abandoned = arrivals - n_answered
    within = ans_in & (wait_in <= sla_threshold_min)
    n_within = np.bincount(rel_in, weights=within, minlength=n_intervals).astype(np.int64)
    wait_sum = np.bincount(rel_in[ans_in], weights=wait_in[ans_in], minlength=n_intervals)

    with np.errstate(invalid="ignore", divide="ignore"):
        service_level = np.where(arrivals > 0, n_within / np.maximum(arrivals, 1), np.nan)
        asa = np.where(n_answered > 0, wait_sum / np.maximum(n_answered, 1), np.nan)

    busy_cum = busy_time_before(start[answered], end[answered], edges)
    busy = np.diff(busy_cum)
    servers = pool_spec.servers[np.clip(k, 0, len(pool_spec.servers) - 1)]
    staffed = servers.astype(np.float64) * width
    with np.errstate(invalid="ignore", divide="ignore"):
        occupancy = np.where(staffed > 0, busy / np.where(staffed > 0, staffed, 1.0), np.nan)

    t_end = edges[1:]
    queue_end = (
        count_before(arrival, t_end)
        - count_before(start[answered], t_end)
        - count_before(end[~answered], t_end)
    )
    return pd.DataFrame(
        {
            "interval": k,
            "arrivals": arrivals.astype(np.int64),
            "answered": n_answered,
            "abandoned": n_abandoned.astype(np.int64),
            "answered_within_sla": n_within,
            "service_level": service_level,
            "asa_min": asa,
            "busy_min": busy,
            "staffed_min": staffed,
            "occupancy": occupancy,
            "queue_end": queue_end.astype(np.int64),
        }
    )


def time_average_queue(records: ContactRecords, t0: float, t1: float) -> float:
    """Time-average number of contacts waiting in queue over ``[t0, t1]`` (minutes).

    Each record contributes the overlap of its queue stay ``[arrival, queue exit)`` (exit = service
    start, or abandonment time) with the window. Only finished contacts are in ``records``; run
    the model past ``t1`` so contacts waiting at ``t1`` are included.
    """
    if not t1 > t0:
        raise ValueError("t1 must be greater than t0")
    lo = np.maximum(records.arrival_min, t0)
    hi = np.minimum(records.queue_exit_min, t1)
    return float(np.clip(hi - lo, 0.0, None).sum() / (t1 - t0))


@dataclass(frozen=True)
class LittlesLaw:
    """Terms of Little's law L = λ W for the queue over a window.

    Attributes:
        mean_queue: L, time-average number waiting over the window.
        arrival_rate: λ, arrivals in the window per minute.
        mean_wait_min: W, mean time in queue (minutes) of contacts arriving in the window,
            answered and abandoned alike.
        n_arrivals: number of arrivals in the window.
    """

    mean_queue: float
    arrival_rate: float
    mean_wait_min: float
    n_arrivals: int

    @property
    def lambda_w(self) -> float:
        """λ W."""
        return self.arrival_rate * self.mean_wait_min


def littles_law(records: ContactRecords, t0: float, t1: float) -> LittlesLaw:
    """L, λ and W for contacts in ``records`` over the window ``[t0, t1)`` (minutes).

    L and λW differ only by edge effects (contacts waiting across t0 or t1), whose expected size
    is O(E[queue] x E[wait] / (t1 - t0)).
    """
    if not t1 > t0:
        raise ValueError("t1 must be greater than t0")
    arriving = (records.arrival_min >= t0) & (records.arrival_min < t1)
    n = int(arriving.sum())
    wait = records.wait_min[arriving]
    return LittlesLaw(
        mean_queue=time_average_queue(records, t0, t1),
        arrival_rate=n / (t1 - t0),
        mean_wait_min=float(wait.mean()) if n else float("nan"),
        n_arrivals=n,
    )
