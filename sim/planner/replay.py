"""Replaying a scenario's contact demand through candidate staffing: the planner's inner loop.

Staffing changes what happens to a contact (its wait, abandonment, retries, escalations) but not
which contacts the journey sends: orders, deliveries and returns come first. So the planner
simulates the whole journey once per replication (:func:`demand_run`), keeps the contacts it sends
to agents (first contacts and come-backs from automation, with their handle times, patience and
fates), and then, for each candidate plan, replays them (:func:`replay`) through the engine's own
agent pools and follow-up process (repeat contacts after an unresolved answer, tier-2 escalations,
retries after abandonment), day by day as the engine runs them. That is the setting of the
iterative staffing algorithm (Feldman, Mandelbaum, Massey & Whitt, 2008): a fixed arrival process,
staffing corrected from simulated service. What a replay leaves out, the feedback of service on
later orders through customer sentiment, is second order within one season, and the planner's final
check simulates the whole journey with the plan.

Only the days around the planning window are replayed: from ``WARMUP_DAYS`` before it, so queues
and backlogs build up under the scenario's own staffing before the window opens, to ``TAIL_DAYS``
after it, so contacts arriving at the window's end meet the load that follows them. Follow-ups of
contacts that arrived before the replayed days are not replayed (only the warm-up days, which are
not judged, miss them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy

from sim.calendar import MIN_PER_DAY, MIN_PER_HOUR, Calendar
from sim.contacts import COME_BACK, CONTACT_COLUMNS, FIRST, ContactModel
from sim.followups import FollowUps
from sim.queueing import ContactCentre, ContactRecords, PoolSpec
from sim.results import POOLS, ReplicationResult
from sim.rng import Streams
from sim.scenario import Scenario
from sim.service_stats import interval_stats
from sim.staffing import centre_pools
from sim.tables import Columns

WARMUP_DAYS = 7
"""Days replayed before the planning window (not judged): the email and tier-2 backlogs of the
shipped scenarios clear within two days, so a week lets any carried backlog form."""
TAIL_DAYS = 3
"""Days replayed after the planning window, so its last intervals are served under later load."""

#: The columns a replay needs of each contact: what it is, when it arrives, how long it takes, and
#: its pre-drawn fate (see :class:`sim.followups.FollowUps`).
STREAM_FIELDS = FollowUps.FIELDS


@dataclass(frozen=True)
class ContactStream:
    """The contacts one replication's journey sent to agents, arriving in days
    ``[first_day, end_day)`` of the horizon: arrays keyed by :data:`STREAM_FIELDS` (times in
    minutes from the scenario start), sorted by arrival."""

    seed: int
    replication: int
    first_day: int
    end_day: int
    rows: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.rows["arrival_min"].shape[0])


@dataclass(frozen=True)
class ReplayResult:
    """Per-interval service of a replay, in the columns of ``ReplicationResult.intervals`` that the
    planner reads (every pool with a service threshold, over the whole horizon: intervals outside
    the replayed days have no arrivals)."""

    intervals: pd.DataFrame


def replay_days(cal: Calendar, window_days: np.ndarray) -> tuple[int, int]:
    """The replayed days ``[first, end)`` for a planning window (a boolean mask over days)."""
    days = np.flatnonzero(window_days)
    return max(0, int(days[0]) - WARMUP_DAYS), min(cal.days, int(days[-1]) + 1 + TAIL_DAYS)


def demand_run(
    scenario: Scenario, seed: int, replication: int, first_day: int, end_day: int
) -> tuple[ReplicationResult, ContactStream]:
    """One whole replication (as ``sim.engine.simulate``) and the contacts its journey sent to
    agents in days ``[first_day, end_day)``. A process-pool entry point."""
    from sim.engine import Replication

    rep = Replication(scenario, seed, replication)
    result = rep.run()
    c = rep.contacts
    arrival = c["arrival_min"]
    kind = c["kind"]
    keep = (
        ((kind == FIRST) | (kind == COME_BACK))
        & (c["pool"] >= 0)
        & (arrival >= first_day * MIN_PER_DAY)
        & (arrival < end_day * MIN_PER_DAY)
    )
    order = np.argsort(arrival[keep], kind="stable")
    rows = {f: c[f][keep][order] for f in STREAM_FIELDS}
    return result, ContactStream(seed, replication, first_day, end_day, rows)


def replay(scenario: Scenario, stream: ContactStream) -> ReplayResult:
    """Serve ``stream``'s contacts with ``scenario``'s staffing in the engine's agent pools, with
    follow-ups drawn afresh (their own random stream per replication), and return the per-interval
    service. ``scenario`` must be the one the stream was recorded from, up to its staffing."""
    cal = Calendar(scenario)
    model = ContactModel.from_scenario(scenario)
    _, specs = centre_pools(scenario, cal)
    records, _ = serve(stream, specs, model, cal)
    return ReplayResult(_intervals(records, specs, model, cal))


def serve(stream: ContactStream, specs: list[PoolSpec], model: ContactModel, cal: Calendar) -> tuple[ContactRecords, Columns]:
    """The replay itself: every contact of ``stream`` and the follow-ups they call for, served in
    pools ``specs`` day by day; returns the finished contacts' records and the contact table (the
    stream's rows, then the follow-ups, in id order)."""
    t0, t_end = stream.first_day * MIN_PER_DAY, stream.end_day * MIN_PER_DAY
    env = simpy.Environment(initial_time=t0)
    rows = stream.rows
    n = len(stream)
    table = Columns(CONTACT_COLUMNS, max(n, 1024))
    ids = table.append(**rows, start_min=np.nan, end_min=np.nan, answered=False, done=False) if n else np.empty(0, np.int64)
    followups = FollowUps(model, table, Streams(stream.seed, stream.replication).get("replay_followups"),
                          min(t_end, cal.end_min))
    centre = ContactCentre(env, specs, on_done=followups.on_done)
    followups.submit = centre.submit
    bounds = np.searchsorted(rows["arrival_min"], np.arange(stream.first_day, stream.end_day + 1) * MIN_PER_DAY)
    parts: list[ContactRecords] = []
    for i, day in enumerate(range(stream.first_day, stream.end_day)):
        lo, hi = bounds[i], bounds[i + 1]
        if hi > lo:
            centre.submit_batch(rows["pool"][lo:hi], ids[lo:hi], rows["arrival_min"][lo:hi], rows["handle_min"][lo:hi],
                                rows["patience_min"][lo:hi])
        # hourly steps as in the engine: they bound how late an abandonment (and its retry) is seen
        for hour in range(1, 25):
            centre.run_until(day * MIN_PER_DAY + hour * MIN_PER_HOUR)
        followups.flush()
        parts.append(centre.drain())
    return ContactRecords.concat(parts), table


def _intervals(rec: ContactRecords, specs: list[PoolSpec], model: ContactModel, cal: Calendar) -> pd.DataFrame:
    frames = []
    for i, spec in enumerate(specs):
        threshold = float(model.sla_threshold_min[i])
        if not np.isfinite(threshold):
            continue
        df = interval_stats(rec, i, spec, cal.n_intervals, threshold)
        df.insert(0, "pool", POOLS[i])
        frames.append(df)
    return pd.concat(frames, ignore_index=True)
