"""Validation of the contact-centre queueing core (sim.queueing) and its statistics.

References used here are never the model itself: Erlang C / Erlang A formulas (sim.analytic,
itself checked against a brute-force birth-death chain in test_analytic.py), an exact FCFS
recursion written below (a heap of server free times), and pathwise invariants checked directly on
the records.

Statistical tests run R independent replications with fixed seeds, estimate a quantity per
replication, and require |mean - theory| < 4 SE + bias allowance, where SE is the standard error of
the mean across replications. The bias allowance covers (a) the initial transient (each replication
starts empty and discards arrivals before a warm-up of >= 8 relaxation times, where the relaxation
time of M/M/c is about 1 / (c mu (1 - sqrt(rho))^2), leaving a relative bias below e^-8 ~ 3e-4), and
(b) the O(1/n) bias of ratio estimators (sum / count) with n ~ 1e4 per replication. We allow 0.5% of
the theoretical value, which bounds both.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.analytic import erlang_a, erlang_c
from sim.queueing import ContactCentre, ContactRecords, PoolSpec
from sim.service_stats import interval_stats, littles_law

DAY_MIN = 1440.0
R = 20  # replications per statistical check
REL_BIAS = 0.005  # see module docstring
WAITED_EPS = (
    1e-9  # minutes; SimPy schedules relative delays, so a start can carry 1 ulp of rounding
)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def run_centre(
    specs: list[PoolSpec],
    pool: np.ndarray,
    arrival: np.ndarray,
    service: np.ndarray,
    patience: np.ndarray,
    *,
    contact_id: np.ndarray | None = None,
    batch_min: float = DAY_MIN,
    tail_min: float | None = None,
    on_done=None,
    centre_out: list | None = None,
) -> ContactRecords:
    """Submit contacts in batches of ``batch_min`` of arrivals (like the engine), run each batch
    window, drain after each, then run a tail long enough for everything to finish."""
    env = simpy.Environment()
    centre = ContactCentre(env, specs, on_done)
    if centre_out is not None:
        centre_out.append(centre)
    ids = np.arange(len(arrival)) if contact_id is None else contact_id
    order = np.argsort(arrival, kind="stable")
    a_sorted = arrival[order]
    horizon = float(a_sorted[-1]) if len(a_sorted) else 0.0
    n_batches = int(horizon // batch_min) + 1
    parts = []
    for d in range(n_batches):
        lo, hi = np.searchsorted(a_sorted, [d * batch_min, (d + 1) * batch_min])
        sel = order[lo:hi]
        centre.submit_batch(pool[sel], ids[sel], arrival[sel], service[sel], patience[sel])
        centre.run_until((d + 1) * batch_min)
        parts.append(centre.drain())
    if tail_min is None:
        tail_min = float(service.sum()) + 1.0 if len(service) else 1.0
    centre.run_until(n_batches * batch_min + tail_min)
    parts.append(centre.drain())
    return ContactRecords.concat(parts)


def fcfs_reference(
    arrival: np.ndarray, service: np.ndarray, patience: np.ndarray, servers: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact FCFS M/M/c+G recursion (Kiefer-Wolfowitz style): a heap of server free times.

    A contact starts at max(arrival, earliest free time) if that is <= arrival + patience, else
    abandons without occupying a server. Returns (start, answered) in input order (ties in
    arrival are served in input order).
    """
    order = np.argsort(arrival, kind="stable")
    free = [0.0] * servers
    heapq.heapify(free)
    start = np.full(len(arrival), np.nan)
    answered = np.zeros(len(arrival), dtype=bool)
    for i in order:
        a = float(arrival[i])
        f = free[0]
        s = a if f <= a else f
        if s <= a + float(patience[i]):
            start[i] = s
            answered[i] = True
            heapq.heapreplace(free, s + float(service[i]))
    return start, answered


def by_id(records: ContactRecords, n: int) -> ContactRecords:
    """Records reordered so that row i is contact id i (asserts each id appears exactly once)."""
    assert len(records) == n
    assert np.array_equal(np.sort(records.contact_id), np.arange(n))
    return records.select(np.argsort(records.contact_id))


def mm_c_replication(
    seed: np.random.SeedSequence,
    lam: float,
    mean_service: float,
    servers: int,
    mean_patience: float,
    n: int,
) -> tuple[ContactRecords, float]:
    """One replication of M/M/c(+M); returns the records and the time of the last arrival."""
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1.0 / lam, n))
    service = rng.exponential(mean_service, n)
    abandons = math.isfinite(mean_patience)
    patience = rng.exponential(mean_patience, n) if abandons else np.full(n, np.inf)
    spec = PoolSpec("chat", 30.0, np.array([servers]), abandons)
    rec = run_centre(
        [spec],
        np.zeros(n, np.int64),
        arrival,
        service,
        patience,
        tail_min=float(service.max()) * 10 + 10_000.0,
    )
    return rec, float(arrival[-1])


def assert_matches(estimates: np.ndarray, theory: float, label: str) -> None:
    """|mean - theory| < 4 SE + REL_BIAS * |theory| over replications."""
    est = np.asarray(estimates, dtype=np.float64)
    mean = float(est.mean())
    se = float(est.std(ddof=1) / math.sqrt(len(est)))
    tol = 4.0 * se + REL_BIAS * abs(theory)
    assert abs(mean - theory) < tol, (
        f"{label}: mean {mean:.6g} vs theory {theory:.6g}, |diff| {abs(mean - theory):.3g} "
        f">= tol {tol:.3g} (SE {se:.3g}, R={len(est)})"
    )


def warmup_min(servers: int, rho: float, mean_service: float) -> float:
    """>= 8 relaxation times 1/(c mu (1 - sqrt(rho))^2), at least 100 minutes."""
    relax = mean_service / (servers * (1.0 - math.sqrt(min(rho, 0.99))) ** 2)
    return max(100.0, 8.0 * relax)


# --------------------------------------------------------------------------------------------
# Erlang C and Erlang A
# --------------------------------------------------------------------------------------------
ERLANG_C_CASES = [
    # servers, rho, contacts per replication
    pytest.param(1, 0.5, 20_000, id="c1-rho0.5"),
    pytest.param(5, 0.8, 30_000, id="c5-rho0.8"),
    pytest.param(30, 0.9, 40_000, id="c30-rho0.9"),
    pytest.param(1, 0.9, 200_000, id="c1-rho0.9"),
    pytest.param(5, 0.9, 100_000, id="c5-rho0.9"),
]


@pytest.mark.parametrize(("servers", "rho", "n"), ERLANG_C_CASES)
def test_mmc_matches_erlang_c(servers: int, rho: float, n: int) -> None:
    mean_service = 3.0
    threshold = 1.0
    lam = rho * servers / mean_service
    theory = erlang_c(lam, mean_service, servers)
    warm = warmup_min(servers, rho, mean_service)
    seeds = np.random.SeedSequence([2024, servers, int(rho * 100)]).spawn(R)
    p_wait, mean_wait, sl, occ = [], [], [], []
    for seed in seeds:
        rec, t_last = mm_c_replication(seed, lam, mean_service, servers, math.inf, n)
        assert rec.answered.all()
        keep = (rec.arrival_min >= warm) & (rec.arrival_min <= t_last)
        w = rec.wait_min[keep]
        p_wait.append(np.mean(w > WAITED_EPS))
        mean_wait.append(w.mean())
        sl.append(np.mean(w <= threshold))
        # Occupancy over the window: busy time inside [warm, t_last] / (c * length).
        s, e = rec.start_min, rec.end_min
        busy = np.clip(np.minimum(e, t_last) - np.maximum(s, warm), 0.0, None).sum()
        occ.append(busy / (servers * (t_last - warm)))
    assert_matches(np.array(p_wait), theory.p_wait, "P(wait)")
    assert_matches(np.array(mean_wait), theory.mean_wait, "mean wait")
    assert_matches(np.array(sl), theory.service_level(threshold), "service level")
    assert_matches(np.array(occ), theory.occupancy, "occupancy")


ERLANG_A_CASES = [
    # servers, rho, mean_patience, contacts per replication
    pytest.param(1, 0.9, 3.0, 20_000, id="c1-rho0.9-pat3"),
    pytest.param(5, 1.0, 2.0, 30_000, id="c5-rho1.0-pat2"),
    pytest.param(30, 1.1, 5.0, 40_000, id="c30-rho1.1-pat5"),
]


@pytest.mark.parametrize(("servers", "rho", "mean_patience", "n"), ERLANG_A_CASES)
def test_mmc_with_abandonment_matches_erlang_a(
    servers: int, rho: float, mean_patience: float, n: int
) -> None:
    mean_service = 3.0
    threshold = 0.5
    lam = rho * servers / mean_service
    theory = erlang_a(lam, mean_service, servers, mean_patience)
    # Abandonment only speeds up relaxation; the M/M/c bound at min(rho, 0.9) is conservative.
    warm = max(8.0 * mean_patience, warmup_min(servers, min(rho, 0.9), mean_service))
    seeds = np.random.SeedSequence([7, servers, int(rho * 100), int(mean_patience)]).spawn(R)
    p_ab, mean_wait, p_wait, sl = [], [], [], []
    for seed in seeds:
        rec, t_last = mm_c_replication(seed, lam, mean_service, servers, mean_patience, n)
        keep = (rec.arrival_min >= warm) & (rec.arrival_min <= t_last)
        w = rec.wait_min[keep]
        ans = rec.answered[keep]
        p_ab.append(1.0 - ans.mean())
        mean_wait.append(w.mean())
        p_wait.append(np.mean(w > WAITED_EPS))
        sl.append(np.mean(ans & (w <= threshold)))
    assert_matches(np.array(p_ab), theory.p_abandon, "abandonment share")
    assert_matches(np.array(mean_wait), theory.mean_wait, "mean wait (all arrivals)")
    assert_matches(np.array(p_wait), theory.p_wait, "P(wait)")
    assert_matches(np.array(sl), theory.service_level(threshold), "service level")


def test_littles_law_on_simulated_queue() -> None:
    """Time-average queue length L equals lambda * W (both measured from the records over a window
    in steady state). In stationarity E[L_window] = lambda E[W] exactly, so edge effects have mean
    zero; only warm-up bias remains (covered by REL_BIAS)."""
    servers, rho, mean_service, mean_patience, n = 10, 0.95, 3.0, 4.0, 30_000
    lam = rho * servers / mean_service
    warm = 500.0
    diffs, ls = [], []
    for seed in np.random.SeedSequence(99).spawn(R):
        rec, t_last = mm_c_replication(seed, lam, mean_service, servers, mean_patience, n)
        ll = littles_law(rec, warm, t_last)
        diffs.append(ll.mean_queue - ll.lambda_w)
        ls.append(ll.mean_queue)
    theory_l = erlang_a(lam, mean_service, servers, mean_patience).mean_queue
    d = np.array(diffs)
    se = float(d.std(ddof=1) / math.sqrt(R))
    assert abs(d.mean()) < 4 * se + REL_BIAS * theory_l, (d.mean(), se)
    assert_matches(np.array(ls), theory_l, "L vs Erlang A")


# --------------------------------------------------------------------------------------------
# exact pathwise references
# --------------------------------------------------------------------------------------------
@st.composite
def small_instance(draw, integer_times: bool):
    n = draw(st.integers(1, 40))
    if integer_times:
        t = st.integers(0, 30).map(float)
        s = st.integers(0, 12).map(float)
        p = st.integers(0, 10).map(float)
    else:
        t = st.floats(0.0, 50.0, allow_nan=False)
        s = st.floats(0.0, 15.0, allow_nan=False)
        p = st.floats(0.0, 10.0, allow_nan=False)
    arrival = np.array(draw(st.lists(t, min_size=n, max_size=n)))
    service = np.array(draw(st.lists(s, min_size=n, max_size=n)))
    patience = np.array(draw(st.lists(p, min_size=n, max_size=n)))
    servers = draw(st.integers(1, 6))
    abandons = draw(st.booleans())
    if not abandons:
        patience = np.full(n, np.inf)
    return arrival, service, patience, servers, abandons


@pytest.mark.parametrize("integer_times", [True, False], ids=["ties", "continuous"])
def test_matches_exact_fcfs_recursion(integer_times: bool) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(small_instance(integer_times))
    def check(inst) -> None:
        arrival, service, patience, servers, abandons = inst
        n = len(arrival)
        spec = PoolSpec("p", 30.0, np.array([servers]), abandons)
        rec = by_id(
            run_centre([spec], np.zeros(n, np.int64), arrival, service, patience, batch_min=17.0), n
        )
        ref_start, ref_answered = fcfs_reference(arrival, service, patience, servers)
        assert np.array_equal(rec.answered, ref_answered)
        ok = ref_answered
        np.testing.assert_allclose(rec.start_min[ok], ref_start[ok], rtol=0, atol=1e-9)
        np.testing.assert_allclose(rec.end_min[ok], ref_start[ok] + service[ok], rtol=0, atol=1e-9)
        np.testing.assert_array_equal(rec.end_min[~ok], (arrival + patience)[~ok])
        assert np.isnan(rec.start_min[~ok]).all()

    check()


def _servers_at(spec: PoolSpec, t: np.ndarray) -> np.ndarray:
    k = np.clip(np.floor(t / spec.interval_min).astype(np.int64), 0, len(spec.servers) - 1)
    return spec.servers[k]


def check_pathwise_invariants(rec: ContactRecords, spec: PoolSpec, patience: np.ndarray) -> None:
    """Invariants for one pool with time-varying servers, checked at every event time tau:

    * capacity: just after a start at tau, contacts in service <= servers(tau);
    * work conservation: if any contact is waiting at tau, contacts in service >= servers(tau);
    * FCFS: answered contacts start in arrival order;
    * abandonment happens exactly at arrival + patience.
    """
    a = rec.arrival_min
    s = rec.start_min
    e = rec.end_min
    ans = rec.answered
    exit_ = rec.queue_exit_min
    boundaries = np.arange(len(spec.servers) + 1) * spec.interval_min
    taus = np.unique(np.concatenate([a, s[ans], e, boundaries]))

    def in_service(tau: float) -> int:
        return int(np.sum(ans & (s <= tau) & (e > tau)))

    for tau in taus:
        cap = int(_servers_at(spec, np.array([tau]))[0])
        busy = in_service(tau)
        waiting = np.any((a <= tau) & (exit_ > tau))
        if waiting:
            assert busy >= cap, f"idle server while contacts wait at t={tau}"
        if np.any(ans & (s == tau)):
            assert busy <= cap, f"started beyond capacity at t={tau}: {busy} > {cap}"
    order = np.argsort(a[ans], kind="stable")
    assert np.all(np.diff(s[ans][order]) >= -1e-9), "not FCFS"
    np.testing.assert_array_equal(e[~ans], (a + patience)[~ans])


@settings(max_examples=150, deadline=None)
@given(
    small_instance(integer_times=True),
    st.lists(st.integers(0, 4), min_size=1, max_size=8),
)
def test_time_varying_servers_pathwise(inst, servers_list) -> None:
    arrival, service, patience, _, abandons = inst
    n = len(arrival)
    servers = np.array([*servers_list, max(1, servers_list[-1])])  # capacity returns at the end
    spec = PoolSpec("p", 5.0, servers, abandons)
    rec = by_id(
        run_centre(
            [spec], np.zeros(n, np.int64), arrival, service, patience, batch_min=13.0,
            # run past the last zero-capacity interval, so every contact can be served
            tail_min=len(servers) * 5.0 + float(service.sum()) + 1.0,
        ),
        n,
    )
    check_pathwise_invariants(rec, spec, patience)


@settings(max_examples=100, deadline=None)
@given(small_instance(integer_times=False), st.integers(1, 4))
def test_more_servers_never_lengthen_a_wait_without_abandonment(inst, extra) -> None:
    """Pathwise monotonicity for FCFS without abandonment: each contact's wait is non-increasing
    in the number of servers (same arrivals and services)."""
    arrival, service, _, servers, _ = inst
    n = len(arrival)
    patience = np.full(n, np.inf)
    waits = []
    for c in (servers, servers + extra):
        spec = PoolSpec("email", 30.0, np.array([c]), False)
        rec = by_id(run_centre([spec], np.zeros(n, np.int64), arrival, service, patience), n)
        waits.append(rec.wait_min)
    assert np.all(waits[1] <= waits[0] + 1e-9)


def test_more_servers_can_lengthen_a_wait_with_abandonment() -> None:
    """Documents the limit of the pathwise property: with abandonment, an extra server can serve
    a contact that would have abandoned, and that service can delay a later contact. Both the
    model and the exact recursion agree on this instance (1 vs 2 servers)."""
    # With 1 server, contacts 2 and 3 run out of patience, so contact 4 finds the server free at
    # t=5 and waits 0. With 2 servers, 2 and 3 are served and hold both servers until t=7, so
    # contact 4 waits 2 minutes.
    arrival = np.array([0.0, 1.0, 2.0, 4.0, 5.0])
    service = np.array([2.0, 3.0, 5.0, 6.0, 7.0])
    patience = np.array([0.0, 4.0, 2.0, 0.0, 2.0])
    waits = {}
    for c in (1, 2):
        spec = PoolSpec("chat", 30.0, np.array([c]), True)
        rec = by_id(run_centre([spec], np.zeros(5, np.int64), arrival, service, patience), 5)
        ref_start, ref_ans = fcfs_reference(arrival, service, patience, c)
        assert np.array_equal(rec.answered, ref_ans)
        np.testing.assert_array_equal(rec.start_min[ref_ans], ref_start[ref_ans])
        waits[c] = rec.wait_min
    assert waits[1][4] == 0.0 and waits[2][4] == 2.0


@settings(max_examples=100, deadline=None)
@given(small_instance(integer_times=False))
def test_infinite_servers_means_zero_wait(inst) -> None:
    arrival, service, patience, _, abandons = inst
    n = len(arrival)
    spec = PoolSpec("chat", 30.0, np.array([n]), abandons)
    rec = by_id(
        run_centre([spec], np.zeros(n, np.int64), arrival, service, patience, batch_min=7.0), n
    )
    assert rec.answered.all()
    assert np.all(np.abs(rec.wait_min) <= WAITED_EPS)


# --------------------------------------------------------------------------------------------
# time-varying staffing, conservation, determinism
# --------------------------------------------------------------------------------------------
def test_zero_servers_serve_nobody_and_backlog_clears() -> None:
    """An outage: servers [3, 0, 0, 4] per 60-minute interval. Nothing starts during
    [60, 180); the backlog pool (no abandonment) serves everything after capacity returns, and the
    real-time pool loses exactly the contacts whose patience ran out before 180."""
    rng = np.random.default_rng(5)
    n = 400
    arrival = rng.uniform(0.0, 240.0, n)
    service = rng.exponential(2.0, n)
    patience = rng.exponential(30.0, n)
    pool = rng.integers(0, 2, n)
    servers = np.array([3, 0, 0, 4])
    specs = [PoolSpec("email", 60.0, servers, False), PoolSpec("chat", 60.0, servers, True)]
    rec = by_id(run_centre(specs, pool, arrival, service, patience, batch_min=DAY_MIN), n)
    started = rec.start_min[rec.answered]
    assert not np.any((started >= 60.0) & (started < 180.0))
    email = pool == 0
    assert rec.answered[email].all()
    # Contacts that were served before the outage finish their service (busy servers leave after
    # finishing); nothing else is in service during the outage.
    stats = interval_stats(rec, 0, specs[0], 4, sla_threshold_min=5.0)
    assert stats.loc[1, "staffed_min"] == 0 and np.isnan(stats.loc[1, "occupancy"])
    assert stats.loc[1, "queue_end"] == int(
        np.sum(email & (arrival < 120.0) & (rec.start_min >= 120.0))
    )
    # By the end the email backlog has cleared.
    tail = interval_stats(rec, 0, specs[0], 40, sla_threshold_min=5.0)
    assert tail["queue_end"].iloc[-1] == 0
    assert tail["answered"].sum() == email.sum()
    # Chat contacts arriving during the outage with deadline before 180 abandon at their deadline.
    chat_out = (~email) & (arrival >= 60.0) & (arrival < 180.0)
    doomed = chat_out & (arrival + patience < 180.0)
    assert not rec.answered[doomed].any()
    np.testing.assert_array_equal(rec.end_min[doomed], (arrival + patience)[doomed])


def test_staffing_decrease_lets_busy_servers_finish_then_leave() -> None:
    spec = PoolSpec("chat", 10.0, np.array([2, 1]), False)
    arrival = np.array([0.0, 0.0, 1.0])
    service = np.array([12.0, 15.0, 1.0])
    rec = by_id(run_centre([spec], np.zeros(3, np.int64), arrival, service, np.full(3, np.inf)), 3)
    # Both busy servers finish (end 12 and 15); the server freed at 12 leaves (1 staffed from 10),
    # so contact 2 starts at 15, not 12.
    np.testing.assert_array_equal(rec.end_min[:2], [12.0, 15.0])
    assert rec.start_min[2] == 15.0


def test_staffing_increase_starts_queue_at_boundary() -> None:
    spec = PoolSpec("chat", 10.0, np.array([1, 3]), False)
    arrival = np.array([0.0, 1.0, 2.0, 3.0])
    service = np.full(4, 50.0)
    rec = by_id(run_centre([spec], np.zeros(4, np.int64), arrival, service, np.full(4, np.inf)), 4)
    np.testing.assert_array_equal(rec.start_min, [0.0, 10.0, 10.0, 50.0])


def _conservation_run(seed: int) -> tuple[ContactRecords, list[tuple[int, bool, float]], int, int]:
    """Three pools (chat abandons, email backlog, tier-2 backlog) with random staffing including
    zero intervals; on_done submits repeat contacts and tier-2 escalations (new ids) with delays,
    including delays that put the follow-up before env.now (clamped by submit)."""
    rng = np.random.default_rng(seed)
    n = 3_000
    specs = [
        PoolSpec("chat", 30.0, rng.integers(0, 6, 96), True),
        PoolSpec("email", 30.0, rng.integers(0, 4, 96), False),
        PoolSpec("tier2", 30.0, np.append(rng.integers(0, 3, 96), 2), False),
    ]
    specs[0] = PoolSpec("chat", 30.0, np.append(specs[0].servers, 3), True)
    specs[1] = PoolSpec("email", 30.0, np.append(specs[1].servers, 3), False)
    pool = rng.integers(0, 2, n)
    arrival = rng.uniform(0.0, 2 * DAY_MIN, n)
    service = rng.exponential(8.0, n)
    patience = rng.exponential(5.0, n)
    env = simpy.Environment()
    calls: list[tuple[int, bool, float]] = []
    next_id = [n]
    follow_rng = np.random.default_rng(seed + 1)

    def on_done(cid: int, answered: bool, t: float) -> None:
        calls.append((cid, answered, t))
        u = follow_rng.random()
        if u < 0.15:  # repeat contact or retry after abandonment; may be "in the past"
            centre.submit(
                int(follow_rng.integers(0, 2)),
                next_id[0],
                t + follow_rng.normal(1, 3),
                follow_rng.exponential(6.0),
                follow_rng.exponential(5.0),
            )
            next_id[0] += 1
        elif u < 0.25 and answered:  # escalation to tier 2
            centre.submit(2, next_id[0], t, follow_rng.exponential(15.0), math.inf)
            next_id[0] += 1

    centre = ContactCentre(env, specs, on_done)
    parts = []
    for d in range(2):
        sel = (arrival >= d * DAY_MIN) & (arrival < (d + 1) * DAY_MIN)
        centre.submit_batch(
            pool[sel], np.flatnonzero(sel), arrival[sel], service[sel], patience[sel]
        )
        centre.run_until((d + 1) * DAY_MIN)
        parts.append(centre.drain())
    for extra in range(1, 30):
        centre.run_until(2 * DAY_MIN + extra * DAY_MIN)
        parts.append(centre.drain())
        if centre.pending() == 0:
            break
    return ContactRecords.concat(parts), calls, next_id[0], centre.pending()


def test_conservation_every_contact_ends_exactly_once() -> None:
    rec, calls, n_total, pending = _conservation_run(11)
    assert pending == 0
    assert n_total > 3_000  # follow-ups happened
    counts = Counter(rec.contact_id.tolist())
    assert set(counts) == set(range(n_total))
    assert max(counts.values()) == 1
    # on_done was called exactly once per contact, with the recorded outcome and time.
    assert len(calls) == n_total
    call_by_id = {cid: (answered, t) for cid, answered, t in calls}
    assert len(call_by_id) == n_total
    order = np.argsort(rec.contact_id)
    for cid, answered, end in zip(
        rec.contact_id[order], rec.answered[order], rec.end_min[order], strict=True
    ):
        assert call_by_id[int(cid)] == (bool(answered), float(end))
    # Tier 2 never abandons; waits are non-negative everywhere.
    assert rec.answered[rec.pool == 2].all()
    assert np.all(rec.wait_min >= 0.0)
    # Records are drained in end-time order within each drain and never before they end.
    assert np.all(rec.end_min >= rec.arrival_min)


def test_determinism_bit_for_bit() -> None:
    a_rec, a_calls, a_n, _ = _conservation_run(3)
    b_rec, b_calls, b_n, _ = _conservation_run(3)
    assert a_n == b_n and a_calls == b_calls
    for field in ("contact_id", "pool", "arrival_min", "start_min", "end_min", "answered"):
        np.testing.assert_array_equal(getattr(a_rec, field), getattr(b_rec, field))


def test_run_until_records_expired_queue_and_keeps_pending() -> None:
    """At run_until(t), queued contacts whose deadline passed are recorded as abandoned (at their
    deadline) even though no server freed; waiting and in-service contacts stay pending."""
    env = simpy.Environment()
    spec = PoolSpec("chat", 30.0, np.array([1]), True)
    done: list[tuple[int, bool, float]] = []
    centre = ContactCentre(env, [spec], lambda c, a, t: done.append((c, a, t)))
    centre.submit_batch(
        np.zeros(4, np.int64),
        np.arange(4),
        np.array([0.0, 1.0, 2.0, 3.0]),
        np.full(4, 100.0),
        np.array([1.0, 2.0, 500.0, 1.0]),
    )
    centre.run_until(10.0)
    rec = centre.drain()
    assert sorted(rec.contact_id.tolist()) == [1, 3]
    assert not rec.answered.any()
    np.testing.assert_array_equal(rec.end_min, [3.0, 4.0])
    assert sorted(done) == [(1, False, 3.0), (3, False, 4.0)]
    assert centre.pending() == 2 and centre.busy_servers(0) == 1 and centre.queue_length(0) == 1
    centre.run_until(250.0)
    rec = centre.drain()
    assert rec.contact_id.tolist() == [0, 2]
    np.testing.assert_array_equal(rec.start_min, [0.0, 100.0])
    assert centre.pending() == 0


def test_submit_clamps_past_arrivals_and_validates() -> None:
    env = simpy.Environment()
    centre = ContactCentre(env, [PoolSpec("email", 30.0, np.array([1]), False)])
    centre.run_until(5.0)
    centre.submit(0, 1, 2.0, 1.0, math.inf)
    centre.run_until(20.0)
    rec = centre.drain()
    assert rec.arrival_min.tolist() == [5.0] and rec.start_min.tolist() == [5.0]
    with pytest.raises(ValueError):
        centre.submit(0, 2, 30.0, -1.0, 1.0)
    with pytest.raises(ValueError):
        centre.submit_batch(
            np.zeros(2, np.int64), np.arange(2), np.zeros(2), np.ones(3), np.ones(2)
        )
    with pytest.raises(ValueError):
        PoolSpec("x", 30.0, np.array([1.5]), True)
    with pytest.raises(ValueError):
        PoolSpec("x", 0.0, np.array([1]), True)


# --------------------------------------------------------------------------------------------
# service statistics against direct computation
# --------------------------------------------------------------------------------------------
def test_interval_stats_against_direct_loops() -> None:
    rng = np.random.default_rng(8)
    n = 600
    arrival = rng.uniform(0, 300, n)
    service = rng.exponential(6.0, n)
    patience = rng.exponential(4.0, n)
    spec = PoolSpec("chat", 15.0, rng.integers(0, 8, 20), True)
    rec = run_centre([spec], np.zeros(n, np.int64), arrival, service, patience, batch_min=100.0)
    n_int, thr = 24, 1.0
    df = interval_stats(rec, 0, spec, n_int, thr)
    w = spec.interval_min
    for k in range(n_int):
        lo, hi = k * w, (k + 1) * w
        here = (rec.arrival_min >= lo) & (rec.arrival_min < hi)
        ans = here & rec.answered
        row = df.iloc[k]
        assert row["arrivals"] == here.sum()
        assert row["answered"] == ans.sum()
        assert row["abandoned"] == (here & ~rec.answered).sum()
        within = int(np.sum(ans & (rec.start_min - rec.arrival_min <= thr)))
        assert row["answered_within_sla"] == within
        if here.any():
            assert row["service_level"] == pytest.approx(within / here.sum())
        else:
            assert np.isnan(row["service_level"])
        if ans.any():
            assert row["asa_min"] == pytest.approx(np.mean((rec.start_min - rec.arrival_min)[ans]))
        busy = sum(
            max(0.0, min(hi, e) - max(lo, s))
            for s, e, a in zip(rec.start_min, rec.end_min, rec.answered, strict=True)
            if a
        )
        assert row["busy_min"] == pytest.approx(busy, abs=1e-6)
        cap = spec.servers[min(k, len(spec.servers) - 1)]
        assert row["staffed_min"] == cap * w
        waiting = sum(
            1
            for a, x in zip(rec.arrival_min, rec.queue_exit_min, strict=True)
            if a <= hi and x > hi
        )
        assert row["queue_end"] == waiting
        if cap > 0:
            assert row["occupancy"] == pytest.approx(busy / (cap * w))
    # A window starting later gives the same rows.
    part = interval_stats(rec, 0, spec, 4, thr, first_interval=8)
    expected = df.iloc[8:12].reset_index(drop=True)
    assert part.drop(columns=["interval"]).equals(expected.drop(columns=["interval"]))
    assert part["interval"].tolist() == [8, 9, 10, 11]


# --------------------------------------------------------------------------------------------
# pre-starts revoked by later submissions with an earlier arrival
# --------------------------------------------------------------------------------------------
def test_dynamic_submit_with_earlier_arrival_revokes_prestart() -> None:
    """One server. Contact 1 (arrival 10) is pre-started when contact 0 ends at 1; contact 0's
    on_done then submits contact 2 arriving at 8, which must go first (FCFS): 2 runs [8, 13) and
    1 runs [13, 18). Introspection stays truthful at env.now in between."""
    env = simpy.Environment()
    spec = PoolSpec("email", 30.0, np.array([1]), False)

    def on_done(cid: int, answered: bool, t: float) -> None:
        if cid == 0:
            centre.submit(0, 2, 8.0, 5.0, math.inf)

    centre = ContactCentre(env, [spec], on_done)
    centre.submit_batch(
        np.zeros(2, np.int64),
        np.arange(2),
        np.array([0.0, 10.0]),
        np.array([1.0, 5.0]),
        np.full(2, np.inf),
    )
    centre.run_until(2.0)
    rec = centre.drain()
    assert rec.contact_id.tolist() == [0]
    assert centre.pending() == 2 and centre.busy_servers(0) == 0 and centre.queue_length(0) == 0
    centre.run_until(9.0)
    assert centre.drain().contact_id.tolist() == []
    assert centre.pending() == 2 and centre.busy_servers(0) == 1 and centre.queue_length(0) == 0
    centre.run_until(11.0)
    assert centre.pending() == 2 and centre.busy_servers(0) == 1 and centre.queue_length(0) == 1
    centre.run_until(100.0)
    rec = centre.drain()
    rec = rec.select(np.argsort(rec.contact_id))
    assert rec.contact_id.tolist() == [1, 2]
    np.testing.assert_array_equal(rec.start_min, [13.0, 8.0])
    np.testing.assert_array_equal(rec.end_min, [18.0, 13.0])
    assert centre.pending() == 0 and centre.busy_servers(0) == 0


def test_batch_tie_revokes_single_submitted_prestart() -> None:
    """Ties in arrival put batch contacts ahead of singly submitted ones, also when the single one
    was already pre-started."""
    env = simpy.Environment()
    spec = PoolSpec("email", 30.0, np.array([1]), False)
    centre = ContactCentre(env, [spec])
    centre.submit(0, 0, 10.0, 5.0, math.inf)
    centre.run_until(5.0)
    assert centre.busy_servers(0) == 0 and centre.pending() == 1
    centre.submit_batch(
        np.zeros(1, np.int64),
        np.array([1]),
        np.array([10.0]),
        np.array([2.0]),
        np.array([math.inf]),
    )
    centre.run_until(100.0)
    rec = centre.drain()
    rec = rec.select(np.argsort(rec.contact_id))
    np.testing.assert_array_equal(rec.start_min, [12.0, 10.0])


@st.composite
def followup_instance(draw):
    inst = draw(small_instance(integer_times=draw(st.booleans())))
    n = len(inst[0])
    half = st.integers(0, 40).map(lambda k: k / 2.0)
    spawn = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    delay = draw(st.lists(half, min_size=n, max_size=n))
    f_service = draw(st.lists(half, min_size=n, max_size=n))
    f_patience = draw(st.lists(half, min_size=n, max_size=n))
    return inst, spawn, delay, f_service, f_patience


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(followup_instance(), st.sampled_from([7.0, 17.0, 1000.0]))
def test_dynamic_followups_match_exact_fcfs_recursion(finst, batch_min) -> None:
    """on_done submits follow-up contacts (arrival = end + delay, often before contacts that are
    already pre-started, which must then be revoked). The realised contact set is fed to the exact
    FCFS recursion (ties: batch contacts by id, then follow-ups in submission order = id order),
    and every contact's outcome and start must match."""
    (arrival, service, patience, servers, abandons), spawn, delay, f_service, f_patience = finst
    n = len(arrival)
    svc = dict(enumerate(service.tolist()))
    pat = dict(enumerate(patience.tolist()))
    next_id = [n]

    def on_done(cid: int, answered: bool, t: float) -> None:
        if cid < n and spawn[cid]:
            new = next_id[0]
            next_id[0] += 1
            svc[new] = f_service[cid]
            pat[new] = f_patience[cid] if abandons else math.inf
            out[0].submit(0, new, t + delay[cid], svc[new], pat[new])

    out: list = []
    spec = PoolSpec("p", 30.0, np.array([servers]), abandons)
    rec = run_centre(
        [spec],
        np.zeros(n, np.int64),
        arrival,
        service,
        patience,
        batch_min=batch_min,
        tail_min=10_000.0,
        on_done=on_done,
        centre_out=out,
    )
    total = next_id[0]
    rec = by_id(rec, total)
    assert out[0].pending() == 0
    s = np.array([svc[i] for i in range(total)])
    p = np.array([pat[i] for i in range(total)])
    ref_start, ref_answered = fcfs_reference(rec.arrival_min, s, p, servers)
    assert np.array_equal(rec.answered, ref_answered)
    ok = ref_answered
    np.testing.assert_allclose(rec.start_min[ok], ref_start[ok], rtol=0, atol=1e-9)
    np.testing.assert_allclose(rec.end_min[ok], ref_start[ok] + s[ok], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(rec.end_min[~ok], (rec.arrival_min + p)[~ok])
