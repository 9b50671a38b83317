"""Shift scheduling: per-interval agent requirements -> the cheapest shifts that cover them.

A set-covering MILP solved with ``scipy.optimize.milp`` (HiGHS). A *column* is a shift an agent
can work: a shift type, a start time on the ``start_step_min`` grid inside the type's start window
and, for types with a meal break, a break start on the interval grid inside the break window. Its
integer variable is the number of agents working it. Each interval needs at least the required
number of agents on duty; the objective is the paid cost.

Conventions (all times in minutes since the start of day 0 unless a name says otherwise):

- an agent counts for an interval only when on duty for the *whole* interval (on shift and not on
  break), so a shift starting mid-interval, or a break shorter than an interval, leaves that
  interval uncovered by the agent;
- a break start is a multiple of ``interval_min`` (absolute) inside
  ``[start + break_earliest_h, start + break_latest_h]``; if that window holds no multiple, the
  break starts at ``start + break_earliest_h``;
- paid hours of a shift are ``length_h - break_min / 60`` (the break is unpaid); the cost of one
  agent is ``hourly_cost_usd * (min(paid, overtime_after_h) + overtime_multiplier *
  max(0, paid - overtime_after_h))``;
- part-time share: per day, agents on part-time types <= ``part_time_max_share`` x all agents
  whose shift starts that day; ``max_agents_per_day`` caps the agents of a type starting per day;
  a start time of a type with ``min_agents`` has at least that many agents or none (a
  semi-integer variable when the type has no break, else a binary indicator);
- no start time carries more than ``max(min_agents, peak requirement of its block)`` agents (a
  bound that keeps the MILP tight; more agents on one start would only be padding).

The horizon is solved in blocks of ``block_days`` days. Each block also sees the day after it
(the look-ahead day) so that shifts crossing midnight into the next block are chosen knowing
what they cover there; only the shifts starting inside the block are kept. What those shifts
cover in the next block is carried into it as already scheduled, and the next block covers only
the residual. Shifts may run past the end of the horizon. Within a block, the part-time share
and daily caps are added lazily and independent sub-problems are solved apart (exact
reductions, see ``_solve_block``); ``time_limit_s`` bounds the wall time of each block's solves.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse.csgraph import connected_components

from sim.scenario import Shifts, ShiftType

MIN_PER_DAY = 1440
INTERVAL_CHOICES = (15, 30, 60)
_EPS = 1e-6  # minutes: tolerance when comparing shift times with the interval grid
_SHOWN = 5  # intervals or days named in a message before "... (N in all)"

SHIFT_COLUMNS = [
    "day",
    "shift_type",
    "start_min",
    "end_min",
    "break_start_min",
    "break_end_min",
    "agents",
    "paid_hours",
    "cost_usd",
]


class InfeasibleSchedule(ValueError):
    """The shift rules cannot cover the requirement (the message says which rule, where)."""


@dataclass(frozen=True)
class ShiftPlan:
    """Shifts that cover a requirement, and what they cost.

    ``shifts`` has one row per (day, shift type, start, break) used, columns ``SHIFT_COLUMNS``:
    ``day`` is the day index of the shift start; ``start_min``, ``end_min``, ``break_start_min``,
    ``break_end_min`` are minutes since the start of day 0 (break columns NaN without a break);
    ``agents`` > 0 work that shift; ``paid_hours`` is per agent; ``cost_usd`` is for all of them.
    ``scheduled`` (int, days x intervals per day) counts agents on duty for the whole interval.
    ``cost_usd`` is the total paid cost (USD), ``mip_gap`` the worst over the blocks of
    (cost - proven lower bound) / cost (HiGHS stops at 1e-4; larger when a block hit
    ``time_limit_s`` with a feasible plan), ``blocks`` how many
    blocks were solved, ``solve_s`` the wall time of the whole call in seconds.
    """

    shifts: pd.DataFrame
    scheduled: np.ndarray
    cost_usd: float
    mip_gap: float
    blocks: int
    solve_s: float


@dataclass(frozen=True)
class _Patterns:
    """Every shift an agent can work, relative to the start of its day (one row per column)."""

    type_index: np.ndarray  # int, index into rules.types
    start_min: np.ndarray  # float, minutes after the start of the shift's day
    break_start_min: np.ndarray  # float, same origin, NaN without a break
    unit_cost_usd: np.ndarray  # float, cost of one agent on the shift
    paid_hours: np.ndarray  # float, per agent
    part_time: np.ndarray  # bool
    cover_pattern: np.ndarray  # int, pattern of each (pattern, covered interval) pair
    cover_offset: np.ndarray  # int, covered interval, counted from the start of the shift's day

    @property
    def count(self) -> int:
        return len(self.type_index)


def shift_unit_cost(shift: ShiftType, rules: Shifts, hourly_cost_usd: float) -> float:
    """Cost (USD) of one agent on one shift of ``shift``: unpaid break, overtime premium."""
    paid = shift.length_h - shift.break_min / 60.0
    regular = min(paid, rules.overtime_after_h)
    return hourly_cost_usd * (regular + rules.overtime_multiplier * max(0.0, paid - rules.overtime_after_h))


def _hhmm(minutes: float) -> str:
    m = round(float(minutes)) % MIN_PER_DAY
    return f"{m // 60:02d}:{m % 60:02d}"


def _day_name(day: int, start_date: dt.date | None) -> str:
    if start_date is None:
        return f"day {day}"
    return (start_date + dt.timedelta(days=int(day))).isoformat()


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown if len(names) <= _SHOWN else f"{shown}, ... ({len(names)} in all)"


def _check_inputs(required: np.ndarray, interval_min: int, hourly_cost_usd: float,
                  start_date: dt.date | None) -> np.ndarray:
    """The requirement as int64 (days, intervals per day), or ValueError saying what is wrong."""
    if interval_min not in INTERVAL_CHOICES:
        raise ValueError(f"interval_min must be one of {INTERVAL_CHOICES} minutes, got {interval_min!r}")
    try:
        rate = float(hourly_cost_usd)
    except (TypeError, ValueError):
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"hourly_cost_usd must be a positive number of USD per hour, got {hourly_cost_usd!r}")
    arr = np.asarray(required)
    per_day = MIN_PER_DAY // interval_min
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != per_day:
        raise ValueError(
            f"required must have shape (days >= 1, {per_day}) for {interval_min}-minute intervals, "
            f"got shape {arr.shape}"
        )
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            d, i = np.argwhere(bad)[0]
            raise ValueError(
                f"required must hold whole numbers of agents: {arr[d, i]!r} on "
                f"{_day_name(d, start_date)} {_hhmm(i * interval_min)} ({int(bad.sum())} such values)"
            )
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"required must hold integer agent counts, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if (out < 0).any():
        d, i = np.argwhere(out < 0)[0]
        raise ValueError(
            f"required must not be negative: {out[d, i]} on {_day_name(d, start_date)} "
            f"{_hhmm(i * interval_min)} ({int((out < 0).sum())} negative values)"
        )
    return out


def _build_patterns(rules: Shifts, interval_min: int, hourly_cost_usd: float) -> _Patterns:
    """Enumerate the columns of one day; InfeasibleSchedule if a shift type has no start at all."""
    names = [t.name for t in rules.types]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InfeasibleSchedule(f"shifts.types: shift type names must be unique, repeated: {', '.join(dupes)}")
    step = rules.start_step_min
    rows: list[tuple[int, float, float, float, float, bool]] = []
    cover_pattern: list[int] = []
    cover_offset: list[int] = []
    for ti, st in enumerate(rules.types):
        lo, hi = st.earliest_start_h * 60.0, st.latest_start_h * 60.0
        starts = [k * step for k in range(math.ceil((lo - _EPS) / step), math.floor((hi + _EPS) / step) + 1)]
        if not starts:
            raise InfeasibleSchedule(
                f"shift type {st.name!r} has no start on the {step}-minute grid (shifts.start_step_min) "
                f"between its earliest_start_h {st.earliest_start_h} and latest_start_h {st.latest_start_h}"
            )
        length = st.length_h * 60.0
        paid = st.length_h - st.break_min / 60.0
        unit = shift_unit_cost(st, rules, hourly_cost_usd)
        for s in starts:
            end = s + length
            if st.break_min:
                blo, bhi = s + st.break_earliest_h * 60.0, s + st.break_latest_h * 60.0
                grid = range(math.ceil((blo - _EPS) / interval_min), math.floor((bhi + _EPS) / interval_min) + 1)
                breaks = [float(j * interval_min) for j in grid] or [blo]
            else:
                breaks = [math.nan]
            first = math.ceil((s - _EPS) / interval_min)
            last = math.floor((end + _EPS) / interval_min)  # intervals [first, last) lie inside the shift
            for b in breaks:
                offs = np.arange(first, last)
                if not math.isnan(b):
                    lo_edge, hi_edge = offs * interval_min, (offs + 1) * interval_min
                    on_break = (b < hi_edge - _EPS) & (b + st.break_min > lo_edge + _EPS)
                    offs = offs[~on_break]
                if len(offs) == 0:
                    continue  # covers no whole interval: never worth paying for
                cover_pattern.extend([len(rows)] * len(offs))
                cover_offset.extend(offs.tolist())
                rows.append((ti, float(s), b, unit, paid, st.part_time))
    return _Patterns(
        type_index=np.array([r[0] for r in rows], dtype=np.int64),
        start_min=np.array([r[1] for r in rows], dtype=float),
        break_start_min=np.array([r[2] for r in rows], dtype=float),
        unit_cost_usd=np.array([r[3] for r in rows], dtype=float),
        paid_hours=np.array([r[4] for r in rows], dtype=float),
        part_time=np.array([r[5] for r in rows], dtype=bool),
        cover_pattern=np.array(cover_pattern, dtype=np.int64),
        cover_offset=np.array(cover_offset, dtype=np.int64),
    )


def _check_coverable(req: np.ndarray, pats: _Patterns, rules: Shifts, interval_min: int,
                     start_date: dt.date | None) -> None:
    """InfeasibleSchedule naming intervals with a requirement that no shift can be on duty in."""
    days, per_day = req.shape
    mask = np.zeros(3 * per_day, dtype=bool)
    mask[pats.cover_offset] = True
    same_day, next_day = mask[:per_day], mask[per_day:2 * per_day]
    coverable = np.tile(same_day | next_day, (days, 1))
    coverable[0] = same_day  # nothing starts before day 0
    bad = (req > 0) & ~coverable
    if not bad.any():
        return
    where = np.argwhere(bad)
    names = [f"{_day_name(d, start_date)} {_hhmm(i * interval_min)}" for d, i in where]
    windows = "; ".join(
        f"{t.name}: starts {_hhmm(t.earliest_start_h * 60)}-{_hhmm(t.latest_start_h * 60)} "
        f"every {rules.start_step_min} min, {t.length_h:g} h long"
        + (f", {t.break_min} min break" if t.break_min else "")
        for t in rules.types
    )
    only_day0 = all(d == 0 and next_day[i] for d, i in where)
    why = (
        "only shifts starting the day before could be on duty then, and the plan starts on day 0"
        if only_day0
        else f"no shift type is on duty for the whole {interval_min}-minute interval then ({windows})"
    )
    raise InfeasibleSchedule(
        f"{len(names)} interval(s) with required agents > 0 cannot be covered by any shift: "
        f"{_listing(names)}; {why}"
    )


@dataclass
class _Block:
    """The MILP of one block: columns are (look-ahead-inclusive day, pattern)."""

    days: list[int]
    n_x: int  # agent variables, (day, pattern) in day-major order; binaries follow
    n_cols: int
    c: np.ndarray
    integrality: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    a: sp.csr_matrix
    row_lb: np.ndarray
    row_ub: np.ndarray
    soft_rows: list[tuple[str, int, int]]  # (rule, type index or -1, day) of the rows that may give
    soft_index: np.ndarray  # their row numbers in ``a``


def _build_block(days: list[int], resid: np.ndarray, row_lo: int, per_day: int,
                 pats: _Patterns, rules: Shifts) -> _Block:
    """Coverage of ``resid`` (intervals ``row_lo`` onwards), part-time, cap and min-agents rows."""
    n_p, n_d = pats.count, len(days)
    n_x = n_p * n_d
    row_of = np.full(len(resid), -1, dtype=np.int64)
    need = np.flatnonzero(resid > 0)
    row_of[need] = np.arange(len(need))
    peak = int(resid.max())
    types = rules.types
    min_agents = np.array([t.min_agents for t in types], dtype=np.int64)
    x_ub = np.maximum(min_agents[pats.type_index], peak).astype(float)

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    row_lb: list[np.ndarray] = [resid[need].astype(float)]
    row_ub: list[np.ndarray] = [np.full(len(need), np.inf)]
    n_rows = len(need)
    for di, d in enumerate(days):
        g = (d * per_day - row_lo) + pats.cover_offset
        inside = g < len(resid)
        r = row_of[g[inside]]
        keep = r >= 0
        rows.append(r[keep])
        cols.append(di * n_p + pats.cover_pattern[inside][keep])
    vals.append(np.ones(sum(len(r) for r in rows)))

    def add_rows(entries: list[tuple[np.ndarray, np.ndarray]], lo: float, hi: float) -> np.ndarray:
        nonlocal n_rows
        first = n_rows
        for col, val in entries:
            rows.append(np.full(len(col), n_rows))
            cols.append(col)
            vals.append(val)
            n_rows += 1
        row_lb.append(np.full(len(entries), lo))
        row_ub.append(np.full(len(entries), hi))
        return np.arange(first, n_rows)

    soft_rows: list[tuple[str, int, int]] = []
    soft_index: list[np.ndarray] = []
    share = rules.part_time_max_share
    if share < 1 and pats.part_time.any():
        # part <= share x (part + full), i.e. (1 - share) part - share full <= 0, with whole
        # coefficients when share is a simple fraction (0.5 -> part - full <= 0), so the row is
        # exact in floating point and HiGHS's cuts on it are not scaled by 0.5
        frac = Fraction(share).limit_denominator(100)
        if abs(float(frac) - share) < 1e-12:
            p_, q_ = frac.numerator, frac.denominator
            coef = np.where(pats.part_time, float(q_ - p_), float(-p_))
        else:
            coef = np.where(pats.part_time, 1.0 - share, -share)
        idx = add_rows([(di * n_p + np.arange(n_p), coef) for di in range(n_d)], -np.inf, 0.0)
        soft_rows += [("part_time_max_share", -1, d) for d in days]
        soft_index.append(idx)
    for ti, t in enumerate(types):
        if t.max_agents_per_day is None:
            continue
        of_type = np.flatnonzero(pats.type_index == ti)
        if len(of_type) == 0:
            continue
        idx = add_rows([(di * n_p + of_type, np.ones(len(of_type))) for di in range(n_d)],
                       -np.inf, float(t.max_agents_per_day))
        soft_rows += [("max_agents_per_day", ti, d) for d in days]
        soft_index.append(idx)

    # min_agents: a start with one column (no break variants) is a semi-integer variable, 0 or
    # in [min_agents, ub], which HiGHS handles natively and far faster than a binary; a start with
    # several break variants gets one binary y: sum x <= M y and sum x >= min_agents y
    integrality = np.ones(n_x, dtype=np.int64)
    x_lb = np.zeros(n_x)
    groups: list[np.ndarray] = []
    for ti, t in enumerate(types):
        if t.min_agents < 2:
            continue  # a used start has at least one agent anyway
        of_type = np.flatnonzero(pats.type_index == ti)
        for s in np.unique(pats.start_min[of_type]):
            grp = of_type[pats.start_min[of_type] == s]
            if len(grp) == 1:
                cols_all = np.arange(n_d) * n_p + grp[0]
                integrality[cols_all] = 3
                x_lb[cols_all] = t.min_agents
            else:
                groups.append(grp)
    n_y = len(groups) * n_d
    if n_y:
        big_m, at_least = [], []
        k = n_x
        for di in range(n_d):
            for grp in groups:
                m_big = float(x_ub[grp[0]])
                minimum = float(types[pats.type_index[grp[0]]].min_agents)
                big_m.append((np.append(di * n_p + grp, k), np.append(np.ones(len(grp)), -m_big)))
                at_least.append((np.append(di * n_p + grp, k), np.append(np.ones(len(grp)), -minimum)))
                k += 1
        add_rows(big_m, -np.inf, 0.0)
        add_rows(at_least, 0.0, np.inf)

    n_cols = n_x + n_y
    a = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, n_cols)
    )
    return _Block(
        days=days,
        n_x=n_x,
        n_cols=n_cols,
        c=np.concatenate([np.tile(pats.unit_cost_usd, n_d), np.zeros(n_y)]),
        integrality=np.concatenate([integrality, np.ones(n_y, dtype=np.int64)]),
        lb=np.concatenate([x_lb, np.zeros(n_y)]),
        ub=np.concatenate([np.tile(x_ub, n_d), np.ones(n_y)]),
        a=a,
        row_lb=np.concatenate(row_lb),
        row_ub=np.concatenate(row_ub),
        soft_rows=soft_rows,
        soft_index=np.concatenate(soft_index) if soft_index else np.zeros(0, dtype=np.int64),
    )


#: Tie-break weight, per agent and in units of the cheapest shift's cost, on the part-time
#: share rows' left-hand side: among equally cheap plans the solver then prefers those with
#: fewer part-time agents, which usually meet the share without its rows being added.
_TIE_BREAK = 1e-3


def _components(a: sp.csr_matrix) -> tuple[int, np.ndarray, np.ndarray]:
    """Connected components of the rows and columns of ``a`` (linked by its nonzeros)."""
    n_r, n_c = a.shape
    coo = a.tocoo()
    graph = sp.coo_matrix(
        (np.ones(coo.nnz), (coo.row, n_r + coo.col)), shape=(n_r + n_c, n_r + n_c)
    )
    n, label = connected_components(graph, directed=False)
    return n, label[:n_r], label[n_r:]


def _solve_block(blk: _Block, keep: np.ndarray, rules: Shifts, deadline: float,
                 start_date: dt.date | None) -> tuple[np.ndarray, float]:
    """Agents per (day, pattern) column of a block, and a valid relative MIP gap.

    Only the columns flagged in ``keep`` (shifts starting on the block's own days, not the
    look-ahead day) are wanted. First a plan is built that needs no branching (``_rounded_plan``:
    the LP relaxation rounded up, then trimmed), so the block always ends with one; the LP
    optimum is a lower bound on the cost. Then HiGHS searches for the optimum until
    ``deadline`` (``_exact_plan``), and the cheaper of the two plans is kept. The gap is
    ``(cost - bound) / cost`` with the best proven bound: HiGHS's when it finished, else the LP's.
    """
    relaxed_lb = np.where(blk.integrality == 3, 0.0, blk.lb)  # semi-integer: 0 or >= min_agents
    lp = milp(blk.c, integrality=np.zeros(blk.n_cols), bounds=Bounds(relaxed_lb, blk.ub),
              constraints=LinearConstraint(blk.a, blk.row_lb, blk.row_ub),
              options={"time_limit": max(deadline - time.perf_counter(), 1e-3), "disp": False})
    if lp.status == 2:
        raise InfeasibleSchedule(_diagnose(blk, rules, rules.time_limit_s, start_date))
    fallback = _rounded_plan(blk, lp.x) if lp.x is not None else None
    bound = float(lp.fun) if lp.x is not None else 0.0
    try:
        x, exact_bound = _exact_plan(blk, keep, rules, deadline, start_date)
    except _NoPlanInTime as e:
        if fallback is None:
            span = f"{_day_name(blk.days[0], start_date)} to {_day_name(blk.days[-1], start_date)}"
            raise InfeasibleSchedule(
                f"no schedule found for {span} within shifts.time_limit_s = {rules.time_limit_s:g} s "
                f"(HiGHS: {e}); raise time_limit_s or lower block_days"
            ) from None
        return fallback[: blk.n_x], _gap(float(blk.c @ fallback), bound)
    # HiGHS's plan may leave out parts of the look-ahead day that nothing kept depends on, and
    # its bound leaves them out too: the plans are compared on the kept shifts alone
    cost = float(blk.c @ x)
    gap = _gap(cost, exact_bound)
    wanted = np.flatnonzero(keep)
    if fallback is not None and blk.c[wanted] @ fallback[wanted] < blk.c[wanted] @ x[wanted] - _EPS:
        return fallback[: blk.n_x], _gap(float(blk.c @ fallback), bound)
    return x[: blk.n_x], gap


def _gap(cost: float, bound: float) -> float:
    """Relative MIP gap of a plan costing ``cost`` against a proven lower ``bound``."""
    return max(0.0, (cost - bound) / cost) if cost > 0 else 0.0


class _NoPlanInTime(Exception):
    """HiGHS reached the deadline without a feasible plan (the message is HiGHS's)."""


def _rounded_plan(blk: _Block, x_lp: np.ndarray) -> np.ndarray | None:
    """A feasible plan near the LP optimum ``x_lp``, or None if rounding cannot repair it.

    Rounding every column up keeps every coverage row met (they are ``>=`` rows with
    non-negative coefficients) and may break the part-time share, daily caps and min-agents
    rows. Then, most expensive columns first, agents are taken off one at a time while no row
    moves further from being met (so no coverage row drops below its requirement, and taking
    part-time agents off mends a broken share). The result is checked against every row.
    """
    a = blk.a.tocsc()
    x = np.minimum(np.ceil(x_lp - 1e-6), blk.ub)
    x = np.maximum(x, blk.lb * (x > 0))  # semi-integer columns: 0 or at least min_agents
    v = a @ x

    def violation(val: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.maximum(blk.row_lb[rows] - val, 0) + np.maximum(val - blk.row_ub[rows], 0)

    order = np.argsort(-blk.c, kind="stable")  # the min-agents binaries (cost 0) last
    cols = [(a.indices[a.indptr[j]:a.indptr[j + 1]], a.data[a.indptr[j]:a.indptr[j + 1]]) for j in order]
    changed = True
    while changed:  # a later removal can free an earlier column: pass again until none moves
        changed = False
        for j, (rows, vals) in zip(order, cols, strict=True):
            while x[j] > 0:
                step = x[j] if x[j] - 1 < blk.lb[j] else 1.0  # a semi-integer column drops to 0 at once
                after_v = v[rows] - step * vals
                if (violation(after_v, rows) > violation(v[rows], rows) + _EPS).any():
                    break
                x[j] -= step
                v[rows] = after_v
                changed = True
    ok = (v >= blk.row_lb - _EPS).all() and (v <= blk.row_ub + _EPS).all()
    return x if ok else None


def _exact_plan(blk: _Block, keep: np.ndarray, rules: Shifts, deadline: float,
                 start_date: dt.date | None) -> tuple[np.ndarray, float]:
    """HiGHS's plan for a block (all columns, zero where not needed) and its dual bound (USD).

    Only the columns flagged in ``keep`` (shifts starting on the block's own days, not the
    look-ahead day) are wanted. Two exact reductions make this fast:

    - the part-time share and daily caps (the soft rows) rarely bind but slow HiGHS down
      several times, so they are added lazily: solve without them, add the rows the solution
      breaks, solve again, until none is broken; the objective carries a small tie-break on the
      share rows (``_TIE_BREAK``) so that equally cheap plans with fewer part-time agents come
      first (without it the benchmark breaks the share far more often and runs ~10x slower);
    - the rows in force split into independent problems (connected components of the
      constraint matrix: days that no shift crossing midnight links, once the per-day soft
      rows are out), each solved on its own; a component with none of the wanted columns is
      skipped, as nothing it decides is kept.

    Each solve is a relaxation of the full problem, so the summed dual bounds of the last
    round bound the full optimum from below (the full optimum meets the share rows, so the
    tie-break cannot lift a bound above it). Raises ``_NoPlanInTime`` when a solve reaches
    ``deadline`` without a plan.
    """
    soft = blk.soft_index
    hard = np.setdiff1d(np.arange(blk.a.shape[0]), soft)
    share_rows = soft[[rule == "part_time_max_share" for rule, _, _ in blk.soft_rows]]
    weight = np.asarray(blk.a[share_rows].sum(axis=0)).ravel()
    c = blk.c + _TIE_BREAK * float(blk.c[: blk.n_x].min()) * weight / max(1.0, float(np.abs(weight).max()))
    want = np.zeros(blk.n_cols, dtype=bool)
    want[: blk.n_x] = keep
    active = np.zeros(len(soft), dtype=bool)
    solved: dict[tuple[bytes, bytes], tuple[np.ndarray, float]] = {}
    while True:
        rows = np.concatenate([hard, soft[active]])
        a = blk.a[rows]
        n, row_label, col_label = _components(a)
        x = np.zeros(blk.n_cols)
        bound = 0.0
        for k in range(n):
            cols = np.flatnonzero(col_label == k)
            sub_rows = np.flatnonzero(row_label == k)
            if len(sub_rows) == 0 or not want[cols].any():
                continue
            key = (cols.tobytes(), rows[sub_rows].tobytes())
            if key not in solved:
                solved[key] = _solve_component(blk, c, a, sub_rows, rows, cols, rules, deadline, start_date)
            x[cols], b = solved[key]
            bound += b
        broken = ~active & (blk.a[soft] @ x > blk.row_ub[soft] + _EPS)
        if not broken.any():
            return x, bound
        active |= broken


def _solve_component(blk: _Block, c: np.ndarray, a: sp.csr_matrix, sub_rows: np.ndarray,
                     rows: np.ndarray, cols: np.ndarray, rules: Shifts, deadline: float,
                     start_date: dt.date | None) -> tuple[np.ndarray, float]:
    """HiGHS on one component: its agents per column and its dual bound (true-cost units)."""
    res = milp(
        c[cols],
        integrality=blk.integrality[cols],
        bounds=Bounds(blk.lb[cols], blk.ub[cols]),
        constraints=LinearConstraint(a[sub_rows][:, cols], blk.row_lb[rows[sub_rows]], blk.row_ub[rows[sub_rows]]),
        options={"time_limit": max(deadline - time.perf_counter(), 1e-3), "disp": False,
                 "mip_rel_gap": rules.mip_rel_gap},
    )
    if res.x is None:
        if res.status == 2:
            raise InfeasibleSchedule(_diagnose(blk, rules, rules.time_limit_s, start_date))
        raise _NoPlanInTime(res.message)
    bound = getattr(res, "mip_dual_bound", None)
    x = np.rint(res.x)
    return x, float(bound) if bound is not None and math.isfinite(bound) else float(c[cols] @ x)


def _diagnose(blk: _Block, rules: Shifts, time_limit_s: float, start_date: dt.date | None) -> str:
    """Why a block is infeasible: relax the cap rows with slack, minimise it, name what gave."""
    span = f"{_day_name(blk.days[0], start_date)} to {_day_name(blk.days[-1], start_date)}"
    head = f"no schedule meets the shift rules between {span}"
    n_s = len(blk.soft_index)
    if n_s == 0:
        return f"{head}; check min_agents of the shift types"
    slack = sp.csr_matrix(
        (-np.ones(n_s), (blk.soft_index, np.arange(n_s))), shape=(blk.a.shape[0], n_s)
    )
    res = milp(
        np.concatenate([np.zeros(blk.n_cols), np.ones(n_s)]),
        integrality=np.concatenate([blk.integrality, np.zeros(n_s, dtype=np.int64)]),
        bounds=Bounds(np.concatenate([blk.lb, np.zeros(n_s)]), np.concatenate([blk.ub, np.full(n_s, np.inf)])),
        constraints=LinearConstraint(sp.hstack([blk.a, slack]).tocsr(), blk.row_lb, blk.row_ub),
        options={"time_limit": time_limit_s, "disp": False},
    )
    if res.x is None:
        return f"{head}; check max_agents_per_day, part_time_max_share and min_agents of the shift types"
    s = res.x[blk.n_cols:]
    parts: list[str] = []
    by_rule: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for (rule, ti, day), v in zip(blk.soft_rows, s, strict=True):
        if v > 1e-6:
            by_rule.setdefault((rule, ti), []).append((day, v))
    for (rule, ti), hits in by_rule.items():
        day_names = [_day_name(d, start_date) for d, _ in hits]
        if rule == "max_agents_per_day":
            t = rules.types[ti]
            excess = [f"{n} (+{math.ceil(v - 1e-6)})" for n, (_, v) in zip(day_names, hits, strict=True)]
            note = (f"; its min_agents {t.min_agents} exceeds the cap, so a start can never be used"
                    if t.max_agents_per_day is not None and t.min_agents > t.max_agents_per_day else "")
            parts.append(
                f"max_agents_per_day of shift type {t.name!r} ({t.max_agents_per_day}) is too small on "
                f"{_listing(excess)} (agents beyond the cap in the least-violating plan){note}"
            )
        else:
            parts.append(
                f"shifts.part_time_max_share ({rules.part_time_max_share:g}) cannot be met on "
                f"{_listing(day_names)}: the full-time shift types cannot supply enough of the day's agents"
            )
    if not parts:
        return f"{head}; check max_agents_per_day, part_time_max_share and min_agents of the shift types"
    return f"{head}: " + "; ".join(parts)


def schedule_shifts(
    required: np.ndarray,
    interval_min: int,
    rules: Shifts,
    hourly_cost_usd: float,
    start_date: dt.date | None = None,
) -> ShiftPlan:
    """The cheapest shifts (paid cost, USD) that keep ``required`` agents on duty in every interval.

    ``required`` (int, days x intervals per day) is the number of paid agents needed on duty per
    ``interval_min``-minute interval (15, 30 or 60); ``rules`` the shift rules;
    ``hourly_cost_usd`` the loaded cost of a paid hour; ``start_date`` only names dates in
    messages. Raises ``ValueError`` for a malformed requirement and ``InfeasibleSchedule`` (a
    ``ValueError``) when the rules cannot cover it, saying which intervals, rule and days.
    """
    t0 = time.perf_counter()
    req = _check_inputs(required, interval_min, hourly_cost_usd, start_date)
    days, per_day = req.shape
    pats = _build_patterns(rules, interval_min, hourly_cost_usd)
    _check_coverable(req, pats, rules, interval_min, start_date)
    if rules.part_time_max_share < 1 and pats.part_time.all() and req.any():
        first = _day_name(int(np.flatnonzero(req.any(axis=1))[0]), start_date)
        raise InfeasibleSchedule(
            f"every shift type that can cover an interval is part-time but shifts.part_time_max_share is "
            f"{rules.part_time_max_share:g}: no day with a requirement can be staffed (first: {first})"
        )

    flat = req.reshape(-1)
    spill = 2 * per_day  # a shift starting on the last day ends before the end of the day after next
    scheduled = np.zeros(days * per_day + spill, dtype=np.int64)
    chosen: list[tuple[int, np.ndarray, np.ndarray]] = []  # (day, pattern indices, agents)
    worst_gap = 0.0
    blocks = 0
    for b0 in range(0, days, rules.block_days):
        b1 = min(b0 + rules.block_days, days)
        seen = list(range(b0, min(b1 + 1, days)))  # the block's days and the look-ahead day
        lo, hi = b0 * per_day, (seen[-1] + 1) * per_day
        resid = np.maximum(flat[lo:hi] - scheduled[lo:hi], 0)
        if not resid.any():
            continue
        blk = _build_block(seen, resid, lo, per_day, pats, rules)
        keep = np.repeat(np.array(seen) < b1, pats.count)
        x_flat, gap = _solve_block(blk, keep, rules, time.perf_counter() + rules.time_limit_s, start_date)
        blocks += 1
        worst_gap = max(worst_gap, gap)
        x = x_flat.astype(np.int64).reshape(len(seen), pats.count)
        for di, d in enumerate(seen[: b1 - b0]):
            used = np.flatnonzero(x[di])
            if len(used) == 0:
                continue
            chosen.append((d, used, x[di, used]))
            on = np.isin(pats.cover_pattern, used)
            np.add.at(scheduled, d * per_day + pats.cover_offset[on], x[di, pats.cover_pattern[on]])

    table = _shift_table(chosen, pats, rules)
    return ShiftPlan(
        shifts=table,
        scheduled=scheduled[: days * per_day].reshape(days, per_day),
        cost_usd=math.fsum(table["cost_usd"]),
        mip_gap=worst_gap,
        blocks=blocks,
        solve_s=time.perf_counter() - t0,
    )


def _shift_table(chosen: list[tuple[int, np.ndarray, np.ndarray]], pats: _Patterns, rules: Shifts) -> pd.DataFrame:
    """One row per (day, pattern) used, in ``SHIFT_COLUMNS``, sorted by start."""
    if not chosen:
        return pd.DataFrame(
            {
                "day": pd.Series(dtype=np.int64),
                "shift_type": pd.Series(dtype=object),
                **{c: pd.Series(dtype=float) for c in SHIFT_COLUMNS[2:6]},
                "agents": pd.Series(dtype=np.int64),
                "paid_hours": pd.Series(dtype=float),
                "cost_usd": pd.Series(dtype=float),
            }
        )
    day = np.concatenate([np.full(len(p), d) for d, p, _ in chosen]).astype(np.int64)
    pat = np.concatenate([p for _, p, _ in chosen])
    agents = np.concatenate([a for _, _, a in chosen]).astype(np.int64)
    origin = day * float(MIN_PER_DAY)
    ti = pats.type_index[pat]
    length = np.array([t.length_h * 60.0 for t in rules.types])[ti]
    brk = np.array([float(t.break_min) for t in rules.types])[ti]
    start = origin + pats.start_min[pat]
    break_start = origin + pats.break_start_min[pat]
    table = pd.DataFrame(
        {
            "day": day,
            "shift_type": np.array([t.name for t in rules.types], dtype=object)[ti],
            "start_min": start,
            "end_min": start + length,
            "break_start_min": break_start,
            "break_end_min": break_start + brk,  # NaN stays NaN without a break
            "agents": agents,
            "paid_hours": pats.paid_hours[pat],
            "cost_usd": agents * pats.unit_cost_usd[pat],
        }
    )
    return table.sort_values(["start_min", "shift_type", "break_start_min"], kind="stable").reset_index(drop=True)
