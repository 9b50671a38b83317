"""Analytic staffing requirement per interval: servers for realtime and backlog pools, paid agents.

Realtime pools (chat, phone) are sized interval by interval with the stationary Erlang A queue
(M/M/c+M; Erlang C when there is no patience): :func:`realtime_servers`. Backlog pools (email,
social, tier 2) carry a FCFS backlog between intervals and are sized with a fluid model of that
backlog: :func:`backlog_servers`, evaluated by :func:`backlog_fluid`. Servers and paid agents
convert exactly as :func:`sim.staffing.pool_schedule` does: :func:`agents_for_servers`,
:func:`servers_for_agents`. :func:`effective_arrivals` inverts the Erlang service level so the
planner can correct the analytic requirement where simulation shows it misses.

Units: arrivals are expected contacts per interval; times (interval length, handle time,
patience, threshold) in minutes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim.calendar import MIN_PER_DAY
from sim.planner.erlang_vec import erlang_measures

__all__ = [
    "BacklogPlan",
    "FluidResult",
    "agents_for_servers",
    "backlog_fluid",
    "backlog_plan",
    "backlog_servers",
    "effective_arrivals",
    "realtime_servers",
    "servers_for_agents",
]

ArrayLike = npt.ArrayLike
_MAX_DOUBLINGS = 40


def _as_1d(name: str, value: ArrayLike, size: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(size, float(arr))
    if arr.shape != (size,):
        raise ValueError(f"{name} must be a scalar or an array of {size} intervals, got shape {arr.shape}")
    return arr


def _check_arrivals(arrivals: ArrayLike) -> np.ndarray:
    arr = np.asarray(arrivals, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"arrivals must be a 1-d array per interval, got shape {arr.shape}")
    if not np.all(np.isfinite(arr) & (arr >= 0)):
        raise ValueError("arrivals must be finite and >= 0 in every interval")
    return arr


def _check_positive(name: str, arr: np.ndarray) -> None:
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"{name} must be finite and > 0")


# ----------------------------------------------------------------------------- realtime


def realtime_servers(
    arrivals: ArrayLike,
    interval_min: float,
    mean_handle_min: ArrayLike,
    patience_mean_min: ArrayLike | None,
    threshold_min: float,
    target: ArrayLike,
    max_abandonment: float | None = None,
    max_occupancy: float | None = None,
    min_servers: ArrayLike = 0,
) -> np.ndarray:
    """Fewest servers per interval meeting the service level, abandonment and occupancy caps.

    For each interval: the smallest integer c such that the stationary M/M/c+M queue (Erlang A,
    exponential patience of mean ``patience_mean_min``; Erlang C when it is ``None`` or ``inf``)
    with arrival rate arrivals / interval_min has

    * service level >= ``target``, where service level is P(answered with wait <= threshold_min)
      over ALL arrivals (abandoners count as misses) -- exactly the simulator's per-interval
      ``service_level`` (answered within threshold / arrivals), and what
      :meth:`sim.analytic.ErlangAResult.service_level` measures, so no conversion is needed;
    * share abandoning <= ``max_abandonment`` (if given);
    * occupancy = offered load x (1 - P(abandon)) / c <= ``max_occupancy`` (if given).

    Intervals without arrivals need 0 servers; the result is then floored at ``min_servers``
    everywhere. All three measures are monotone in c, so the search is a vectorised gallop from the
    lower bound c >= target x offered load (throughput c/handle bounds the answered share by
    c / load) followed by bisection: about 15 array evaluations whatever the number of intervals.

    Args:
        arrivals: expected arrivals per interval (float array, >= 0).
        interval_min: interval length, minutes.
        mean_handle_min: mean handle time, minutes (scalar or per interval).
        patience_mean_min: mean patience, minutes (scalar or per interval); ``None`` for Erlang C.
        threshold_min: answer-time threshold, minutes.
        target: required service level in [0, 1) (scalar or per interval).
        max_abandonment: cap on the abandoning share, in (0, 1].
        max_occupancy: cap on occupancy, in (0, 1].
        min_servers: floor on the result (scalar or per interval).

    Returns:
        int64 array of servers per interval.
    """
    arr = _check_arrivals(arrivals)
    size = arr.shape[0]
    if not interval_min > 0:
        raise ValueError(f"interval_min must be > 0, got {interval_min}")
    handle = _as_1d("mean_handle_min", mean_handle_min, size)
    _check_positive("mean_handle_min", handle)
    patience = np.full(size, math.inf) if patience_mean_min is None else _as_1d("patience_mean_min", patience_mean_min, size)
    if not np.all(patience > 0):
        raise ValueError("patience_mean_min must be > 0 (None for no abandonment)")
    if not threshold_min >= 0:
        raise ValueError(f"threshold_min must be >= 0, got {threshold_min}")
    tgt = _as_1d("target", target, size)
    if not np.all((tgt >= 0) & (tgt < 1)):
        raise ValueError("target must be in [0, 1): a service level of 1 needs infinitely many servers")
    if max_abandonment is not None and not 0 < max_abandonment <= 1:
        raise ValueError(f"max_abandonment must be in (0, 1], got {max_abandonment}")
    if max_occupancy is not None and not 0 < max_occupancy <= 1:
        raise ValueError(f"max_occupancy must be in (0, 1], got {max_occupancy}")
    floor = np.rint(_as_1d("min_servers", min_servers, size)).astype(np.int64)

    out = np.zeros(size, dtype=np.int64)
    idx = np.flatnonzero(arr > 0)
    if idx.size:
        lam = arr[idx] / interval_min
        h, p, t = handle[idx], patience[idx], tgt[idx]
        thr = np.full(idx.size, float(threshold_min))

        def feasible(sel: np.ndarray, c: np.ndarray) -> np.ndarray:
            m = erlang_measures(lam[sel], h[sel], c, p[sel], thr[sel])
            ok = m.service_level >= t[sel]
            if max_abandonment is not None:
                ok &= m.p_abandon <= max_abandonment
            if max_occupancy is not None:
                ok &= m.occupancy <= max_occupancy
            return np.asarray(ok)

        load = lam * h
        # Infeasible for sure: c < target x load (answered share <= c / load).
        lo = np.ceil(t * load).astype(np.int64) - 1
        hi = np.maximum(lo + 1, np.ceil(load + 3.0 * np.sqrt(load) + 1.0).astype(np.int64))
        step = np.maximum(hi - lo, 1)
        pending = np.arange(idx.size)
        for _ in range(_MAX_DOUBLINGS):
            bad = ~feasible(pending, hi[pending])
            if not bad.any():
                break
            grow = pending[bad]
            lo[grow] = hi[grow]
            step[grow] *= 2
            hi[grow] = lo[grow] + step[grow]
            pending = grow
        else:  # pragma: no cover - every cap is reachable, so this needs absurd inputs
            raise ValueError("no finite number of servers meets the targets")
        # Invariant: lo infeasible (or -1), hi feasible.
        open_ = np.flatnonzero(hi - lo > 1)
        while open_.size:
            mid = (lo[open_] + hi[open_]) // 2
            ok = feasible(open_, mid)
            hi[open_[ok]] = mid[ok]
            lo[open_[~ok]] = mid[~ok]
            open_ = open_[hi[open_] - lo[open_] > 1]
        out[idx] = hi
    return np.maximum(out, floor)


# ----------------------------------------------------------------------------- agents <-> servers


def servers_for_agents(agents: ArrayLike, shrinkage: float, concurrency: int) -> np.ndarray:
    """Servers from paid agents as :func:`sim.staffing.pool_schedule` computes them.

    servers = rint(agents x (1 - shrinkage) x concurrency), numpy ``rint`` (half to even), with the
    same order of floating-point operations as the simulator.
    """
    effective = np.asarray(agents, dtype=np.float64) * (1.0 - shrinkage)
    return np.rint(effective * concurrency).astype(np.int64)


def agents_for_servers(servers: ArrayLike, shrinkage: float, concurrency: int) -> np.ndarray:
    """Smallest integer paid agents p with servers_for_agents(p) >= servers, elementwise.

    Steps up from just below (servers - 1/2) / ((1 - shrinkage) x concurrency) with the
    simulator's own rounding, so half-to-even ties and float error are honoured.
    """
    if not 0.0 <= shrinkage < 1.0:
        raise ValueError(f"shrinkage must be in [0, 1), got {shrinkage}")
    if int(concurrency) != concurrency or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, got {concurrency}")
    s = np.asarray(servers, dtype=np.int64)
    if np.any(s < 0):
        raise ValueError("servers must be >= 0")
    per_agent = (1.0 - shrinkage) * concurrency
    # rint(x) >= s needs x >= s - 1/2, so this start is at or (by float error) just below the answer;
    # the simulator's rounding is monotone in p, so stepping up to the first p that suffices is exact.
    p = np.maximum(np.ceil((s - 0.5) / per_agent).astype(np.int64) - 1, 0)
    while True:
        short = servers_for_agents(p, shrinkage, concurrency) < s
        if not short.any():
            return p
        p = p + short


# ----------------------------------------------------------------------------- effective arrivals


def effective_arrivals(
    servers: ArrayLike,
    observed_service_level: ArrayLike,
    interval_min: float,
    mean_handle_min: ArrayLike,
    patience_mean_min: ArrayLike | None,
    threshold_min: float,
    iterations: int = 60,
) -> np.ndarray:
    """Arrivals per interval for which the Erlang A/C service level at ``servers`` equals the observed one.

    The service level falls strictly from 1 (no arrivals) towards 0 as arrivals grow, so the
    inverse is found by bisection in arrivals per interval. NaN where it is undefined: no servers,
    an observed level that is NaN or outside (0, 1), or a level that no finite load produces.
    """
    sl = np.asarray(observed_service_level, dtype=np.float64)
    if sl.ndim != 1:
        raise ValueError("observed_service_level must be a 1-d array per interval")
    size = sl.shape[0]
    c = np.rint(_as_1d("servers", servers, size)).astype(np.int64)
    handle = _as_1d("mean_handle_min", mean_handle_min, size)
    _check_positive("mean_handle_min", handle)
    patience = np.full(size, math.inf) if patience_mean_min is None else _as_1d("patience_mean_min", patience_mean_min, size)
    out = np.full(size, np.nan)
    idx = np.flatnonzero((c > 0) & np.isfinite(sl) & (sl > 0) & (sl < 1))
    if not idx.size:
        return out
    thr = np.full(idx.size, float(threshold_min))

    def level(arr: np.ndarray) -> np.ndarray:
        return erlang_measures(arr / interval_min, handle[idx], c[idx], patience[idx], thr).service_level

    lo = np.zeros(idx.size)
    hi = c[idx] * interval_min / handle[idx]  # one full interval of work per server
    for _ in range(_MAX_DOUBLINGS):
        above = level(hi) > sl[idx]
        if not above.any():
            break
        lo = np.where(above, hi, lo)
        hi = np.where(above, hi * 2.0, hi)
    reachable = level(hi) <= sl[idx]
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        above = level(mid) > sl[idx]
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    out[idx] = np.where(reachable, 0.5 * (lo + hi), np.nan)
    return out


# ----------------------------------------------------------------------------- backlog (fluid FCFS)


@dataclass(frozen=True)
class FluidResult:
    """A fluid FCFS backlog run, per interval (arrays of the plan's length) and per day.

    Attributes:
        started: service starts (first responses) in the interval, contacts.
        backlog_end: contacts waiting at the end of the interval.
        on_time: the interval's arrivals whose service starts within the threshold.
        share: on_time / arrivals of the interval (NaN without arrivals).
        day_arrivals, day_on_time: per day (intervals_per_day consecutive intervals from index 0).
        day_share: day_on_time / day_arrivals (NaN without arrivals).
    """

    started: np.ndarray
    backlog_end: np.ndarray
    on_time: np.ndarray
    share: np.ndarray
    day_arrivals: np.ndarray
    day_on_time: np.ndarray
    day_share: np.ndarray


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _inverse(times: np.ndarray, values: np.ndarray, x: np.ndarray, left: bool) -> np.ndarray:
    """Inverse of a non-decreasing piecewise-linear curve through (times, values) at levels x.

    ``left``: the left limit inf{t: curve(t) >= x}; otherwise the right limit inf{t: curve(t) > x}.
    They differ only at the level of a flat run (first vs last time of the run). Between two
    consecutive levels the curve rises from the last time of the lower run to the first time of
    the upper one. Levels above the curve's maximum map to +inf.
    """
    levels, first = np.unique(values, return_index=True)
    last = values.size - 1 - np.unique(values[::-1], return_index=True)[1]
    first_t, last_t = times[first], times[last]
    i = np.searchsorted(levels, x, side="left")
    inside = i < levels.size
    ic = np.minimum(i, levels.size - 1)
    exact = inside & (levels[ic] == x)
    prev = np.maximum(ic - 1, 0)
    lo_v, hi_v = levels[prev], levels[ic]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(hi_v > lo_v, (x - lo_v) / (hi_v - lo_v), 0.0)
    between = last_t[prev] + w * (first_t[ic] - last_t[prev])
    at_level = first_t[ic] if left else last_t[ic]
    out = np.where(exact, at_level, between)
    return np.where(inside, out, np.inf)


def backlog_fluid(
    arrivals: ArrayLike,
    servers: ArrayLike,
    interval_min: float,
    mean_handle_min: ArrayLike,
    threshold_min: float,
) -> FluidResult:
    """Exact fluid FCFS backlog with uniform arrivals within each interval.

    Interval k receives ``arrivals[k]`` contacts spread evenly over it and starts service at
    rate servers[k] / mean_handle_min while anyone waits (capacity servers x interval / handle
    contacts per interval; ``servers`` may be fractional). Cumulative arrivals A(t) and starts
    S(t) are piecewise linear (S bends once inside an interval where the backlog empties), so the
    wait of the x-th contact, S^-1(x) - A^-1(x), is linear between consecutive breakpoints of
    either curve in count space and the on-time mass (wait <= threshold) is computed exactly.
    Contacts not started by the end of the arrays count as late, as the simulator counts
    contacts still waiting at the horizon. The backlog starts empty; arrays start at midnight.
    """
    arr = _check_arrivals(arrivals)
    n = arr.shape[0]
    c = _as_1d("servers", servers, n)
    if not np.all(np.isfinite(c) & (c >= 0)):
        raise ValueError("servers must be finite and >= 0")
    handle = _as_1d("mean_handle_min", mean_handle_min, n)
    _check_positive("mean_handle_min", handle)
    ipd = round(MIN_PER_DAY / interval_min)
    cap = c * interval_min / handle
    # Lindley recursion b_k = max(0, b_{k-1} + a_k - cap_k), in closed form.
    x_run = np.cumsum(arr - cap)
    backlog = np.maximum(x_run - np.minimum(np.minimum.accumulate(x_run), 0.0), 0.0)
    before = np.r_[0.0, backlog[:-1]]
    started = np.minimum(cap, before + arr)
    t = np.arange(n + 1) * float(interval_min)
    a_cum = np.r_[0.0, np.cumsum(arr)]
    s_cum = np.r_[0.0, np.cumsum(started)]
    # S bends where a backlog empties inside an interval: rate cap before, arrival rate after.
    empties = (before > 0) & (before + arr < cap)
    k = np.flatnonzero(empties)
    tau = before[k] / ((cap[k] - arr[k]) / interval_min)
    s_times = np.r_[t, t[k] + tau]
    s_vals = np.r_[s_cum, s_cum[k] + cap[k] / interval_min * tau]
    order = np.argsort(s_times, kind="stable")
    s_times, s_vals = s_times[order], np.maximum.accumulate(s_vals[order])

    s_end = s_cum[-1]
    xs = np.unique(np.r_[a_cum, s_vals])
    xs = xs[xs <= s_end]
    on_time: np.ndarray = np.zeros(n)
    if xs.size >= 2:
        lo_x, hi_x = xs[:-1], xs[1:]
        w0 = _inverse(s_times, s_vals, lo_x, left=False) - _inverse(t, a_cum, lo_x, left=False)
        w1 = _inverse(s_times, s_vals, hi_x, left=True) - _inverse(t, a_cum, hi_x, left=True)
        thr = float(threshold_min) + 1e-9 * max(1.0, float(threshold_min))
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(
                (w0 <= thr) & (w1 <= thr),
                1.0,
                np.where(
                    (w0 > thr) & (w1 > thr),
                    0.0,
                    np.where(w0 <= thr, (thr - w0) / (w1 - w0), (thr - w1) / (w0 - w1)),
                ),
            )
        # each count-space segment lies inside one arrival interval (A's breakpoints are in xs)
        seg_interval = np.searchsorted(a_cum, 0.5 * (lo_x + hi_x), side="right") - 1
        seg_interval = np.clip(seg_interval, 0, n - 1)
        on_time = np.bincount(seg_interval, weights=np.clip(frac, 0.0, 1.0) * (hi_x - lo_x), minlength=n)
        on_time = np.minimum(on_time, arr)
    day = np.arange(n) // ipd
    n_days = int(day[-1]) + 1 if n else 0
    day_arr = np.bincount(day, weights=arr, minlength=n_days)
    day_on = np.bincount(day, weights=on_time, minlength=n_days)
    return FluidResult(
        started=started,
        backlog_end=backlog,
        on_time=on_time,
        share=_ratio(on_time, arr),
        day_arrivals=day_arr,
        day_on_time=day_on,
        day_share=_ratio(day_on, day_arr),
    )


def _taut_string(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Taut string from (0, 0) through gates [lower_j, upper_j] at knots j = 1..m (unit spacing).

    Returns the string's values at the knots: the piecewise-linear path with lower <= path <=
    upper that is shortest, which is also the one minimising the sum of any convex function of
    its slopes (Barlow et al. 1972, "Statistical inference under order restrictions"; the "taut
    string" of Davies & Kovac 2001): the most level capacity profile that meets every gate, hence
    also the smallest peak. Funnel method: from the current anchor extend while some slope fits
    every gate; at the first gate that no slope fits, bend at the gate that bounded the funnel on
    the violated side. Scans are vectorised over growing windows. Past the last bend the string
    keeps the previous slope if the remaining gates allow it (no spurious final ramp).
    """
    m = lower.size - 1
    path = np.empty(m + 1)
    path[0] = 0.0
    i, y = 0, 0.0
    slope_prev: float | None = None
    scale = max(1.0, float(np.max(np.abs(upper))))
    eps = 1e-12 * scale
    while i < m:
        width = 64
        while True:
            end = min(m, i + width)
            d = np.arange(1, end - i + 1, dtype=np.float64)
            lo = (lower[i + 1 : end + 1] - y) / d
            hi = (upper[i + 1 : end + 1] - y) / d
            cmax = np.maximum.accumulate(lo)
            cmin = np.minimum.accumulate(hi)
            bad = np.flatnonzero(cmax > cmin + eps / d)
            if bad.size or end == m:
                break
            width *= 4
        if bad.size:
            v = int(bad[0])  # v >= 1: a single gate always admits a slope
            if lo[v] > cmin[v - 1] + eps / d[v]:  # the lower gate rose above the funnel's top
                slope = float(cmin[v - 1])
                k = int(np.flatnonzero(hi[:v] <= slope + eps / d[:v])[-1])
            else:  # the upper gate fell below the funnel's floor
                slope = float(cmax[v - 1])
                k = int(np.flatnonzero(lo[:v] >= slope - eps / d[:v])[-1])
            path[i + 1 : i + k + 2] = y + slope * d[: k + 1]
            i, y = i + k + 1, float(path[i + k + 1])
        else:
            lo_s, hi_s = float(cmax[-1]), float(cmin[-1])
            slope = lo_s if slope_prev is None else min(max(slope_prev, lo_s), hi_s)
            path[i + 1 :] = y + slope * d
            i = m
        slope_prev = slope
    return np.clip(path, lower, upper)


@dataclass(frozen=True)
class BacklogPlan:
    """Servers planned for a backlog pool and the fluid model's verdict on them.

    Attributes:
        servers: int64 servers per interval (0 where closed).
        fluid: :func:`backlog_fluid` of ``servers``.
        reference: :func:`backlog_fluid` of the continuous (unrounded) deadline plan.
        day_feasible: per day, whether the continuous deadline plan reaches the target (NaN-free;
            days without arrivals are feasible).
    """

    servers: np.ndarray
    fluid: FluidResult
    reference: FluidResult
    day_feasible: np.ndarray


def backlog_plan(
    arrivals: ArrayLike,
    interval_min: float,
    mean_handle_min: ArrayLike,
    threshold_min: float,
    target: float,
    open_mask: ArrayLike,
    min_servers: int = 0,
) -> BacklogPlan:
    """Fewest, most level servers per interval for a FCFS backlog pool (email, social, tier 2).

    Method (a deadline plan, then rounding and repair, all checked with the exact fluid model):

    1. Deadlines. A contact arriving at u while open must start by u + threshold; one arriving
       while closed by (next opening) + threshold, i.e. it is planned as if it arrived at the
       opening, which is as early as it can be served at a finite rate. A deadline falling in a
       closed period must be met by the close before it.
    2. Taut string. In open time only (closed periods collapsed), cumulative starts S must stay
       between the deadline curve (below) and cumulative arrivals (above: nobody starts before
       arriving), checked at interval boundaries. The taut string between them (see
       :func:`_taut_string`) never idles, so its total server-hours equal the work offered -- the
       minimum any plan can have -- and among all plans meeting every deadline it is the most
       level (it minimises every convex function of the per-interval capacity, peak included).
       It is an exact O(n) construction, where an LP/QP over ~20,000 intervals would be slower
       and no more level.
    3. Integers. Cumulative capacity is rounded up at every boundary (so rounding error never
       accumulates), floored at ``min_servers`` while open.
    4. Repair. Each day whose arrivals the continuous plan answers within the threshold at a
       share >= ``target`` is *feasible* and must reach the target; any other day must reach the
       share the continuous plan reaches. Where the integer plan falls short (rounding moved
       capacity across a deadline), that day's window [day start, day end + threshold] first
       gets at least the per-interval ceiling of the continuous plan (which, being larger
       everywhere, starts every contact no later than the continuous plan), then one more
       server per open interval until it passes. More capacity never lowers any fluid start
       curve, so repairs do not break other days.

    Infeasible days -- their contacts arriving while closed cannot be answered within the
    threshold often enough (e.g. a 60-minute threshold and a closed night) -- are planned the same
    way: every contact answered within the threshold of the opening, the overnight queue first.
    They are reported by ``day_feasible`` and held to the continuous plan's share instead of the
    target (forcing the target would need an unbounded burst of servers at opening). Aiming at every deadline (share 1) rather than the
    target costs no extra server-hours in the fluid model, only levelness; the target decides
    feasibility and repairs. Contacts whose deadline lies past the end of the arrays may remain in
    the final backlog, which is therefore bounded by a threshold's worth of arrivals.

    Args:
        arrivals: expected arrivals per interval; arrays start at midnight.
        interval_min: interval length, minutes.
        mean_handle_min: mean handle time, minutes (scalar or per interval).
        threshold_min: first-response threshold, minutes.
        target: required share of each day's arrivals answered within the threshold, in [0, 1].
        open_mask: True where the pool may be staffed.
        min_servers: servers at least while open.
    """
    arr = _check_arrivals(arrivals)
    n = arr.shape[0]
    is_open = np.asarray(open_mask, dtype=bool)
    if is_open.shape != (n,):
        raise ValueError(f"open_mask must have one entry per interval ({n}), got shape {is_open.shape}")
    handle = _as_1d("mean_handle_min", mean_handle_min, n)
    _check_positive("mean_handle_min", handle)
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target must be in [0, 1], got {target}")
    if not threshold_min >= 0:
        raise ValueError(f"threshold_min must be >= 0, got {threshold_min}")
    interval = float(interval_min)
    ipd = round(MIN_PER_DAY / interval)
    opened = np.flatnonzero(is_open)
    cont = np.zeros(n)
    if opened.size:
        t = np.arange(n + 1) * interval
        a_cum = np.r_[0.0, np.cumsum(arr)]

        def cum_arrivals(time: np.ndarray) -> np.ndarray:
            return np.interp(time, t, a_cum)

        # g(s): s if open at s, else the end of the last open interval before s (0 if none).
        k_all = np.arange(n)
        last_open = np.maximum.accumulate(np.where(is_open, k_all, -1))

        def clamp_open(s: np.ndarray) -> np.ndarray:
            k = np.clip(np.floor(s / interval).astype(np.int64), 0, n - 1)
            inside = (s >= 0) & (s < n * interval)
            closed_end = (last_open[k] + 1) * interval
            g = np.where(is_open[k] | ~inside, s, np.where(last_open[k] >= 0, closed_end, 0.0))
            return np.clip(g, 0.0, n * interval)

        def deadline_curve(time: np.ndarray) -> np.ndarray:
            return cum_arrivals(clamp_open(time - float(threshold_min)))

        starts = opened * interval
        ends = starts + interval
        lower = np.r_[0.0, deadline_curve(np.r_[starts[1:], ends[-1]])]
        upper = np.r_[0.0, cum_arrivals(ends)]
        lower = np.minimum(lower, upper)
        path = _taut_string(lower, upper)
        capacity = np.maximum(np.diff(path), 0.0)  # contacts per open interval
        cont[opened] = capacity * handle[opened] / interval
    reference = backlog_fluid(arr, cont, interval, handle, threshold_min)
    feasible = ~(reference.day_share < target - 1e-9)  # NaN (no arrivals) counts as feasible

    servers = np.zeros(n, dtype=np.int64)
    cum = np.cumsum(cont[opened])
    rounded = np.ceil(cum - 1e-9 * np.maximum(cum, 1.0))
    servers[opened] = np.diff(np.r_[0.0, rounded]).astype(np.int64)
    servers[opened] = np.maximum(servers[opened], min_servers)
    fluid = backlog_fluid(arr, servers, interval, handle, threshold_min)
    day = np.arange(n) // ipd
    window_days = math.ceil(float(threshold_min) / MIN_PER_DAY)
    # Feasible days must reach the target; the others at least what the continuous plan reaches.
    goal = np.where(feasible, target, np.nan_to_num(reference.day_share, nan=0.0)) - 1e-6
    for attempt in range(200):
        failing = np.flatnonzero(fluid.day_share < goal)
        if not failing.size:
            break
        boost = np.zeros(n, dtype=bool)
        for d in failing:
            boost |= (day >= d) & (day <= d + window_days + 1)
        boost &= is_open
        if attempt == 0:
            servers[boost] = np.maximum(servers[boost], np.ceil(cont[boost] - 1e-9).astype(np.int64))
        else:
            servers[boost] += 1
        fluid = backlog_fluid(arr, servers, interval, handle, threshold_min)
    else:  # pragma: no cover - each repair adds capacity to every open interval of the window
        raise ValueError("backlog plan: repairs did not reach the target on feasible days")
    return BacklogPlan(servers=servers, fluid=fluid, reference=reference, day_feasible=feasible)


def backlog_servers(
    arrivals: ArrayLike,
    interval_min: float,
    mean_handle_min: ArrayLike,
    threshold_min: float,
    target: float,
    open_mask: ArrayLike,
    min_servers: int = 0,
) -> np.ndarray:
    """Servers per interval of :func:`backlog_plan` (see there for the method); int64, 0 when closed."""
    return backlog_plan(
        arrivals, interval_min, mean_handle_min, threshold_min, target, open_mask, min_servers
    ).servers
