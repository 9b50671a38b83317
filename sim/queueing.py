"""Contact-centre queueing core: FCFS agent pools with time-varying staffing and abandonment.

A lean SimPy model. Time is in **minutes** (float) since the scenario start, the same clock as
the ``simpy.Environment`` passed in. Contacts are identified by an integer id chosen by the caller.

Design (why it is fast)
-----------------------
* No SimPy process and no ``Resource`` request per contact. Each pool keeps its not-yet-started
  contacts in an arrival-ordered buffer (a sorted batch list fed by :meth:`ContactCentre.submit_batch`
  plus a small heap fed by :meth:`ContactCentre.submit`). Because service is FCFS, the queue is
  simply the prefix of that buffer whose arrival time has passed.
* An arrival needs a SimPy event only when the pool has an idle server (one "wake-up" ``Timeout``
  at the next arrival time, at most one live per pool). When every server is busy, arrivals simply
  accumulate in the buffer and the next service completion pulls the head of the queue.
* Each started service schedules exactly one ``Timeout`` whose callback frees the server and pulls
  the next contact.
* Abandonment is lazy: when a server pulls from the queue it discards contacts whose deadline
  (arrival + patience) has passed and records them as abandoned at their deadline. Under FCFS this
  is exact: such a contact could only have started if a server had freed while it was at the head of
  the queue, and then it would have been taken.
* Staffing changes at interval boundaries are one event per boundary where the number of
  servers changes (chained, so the event heap stays small), scheduled with SimPy's ``URGENT``
  priority so that they apply before arrivals and completions at the same instant.

Tie convention: a contact is served if its service can start at a time ``<= arrival + patience``;
it abandons only when the start would be strictly later. Consequently a contact whose deadline is
exactly ``t`` at :meth:`ContactCentre.run_until` ``(t)`` is still pending after that call and is
resolved by the next run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from heapq import heapify, heappop, heappush

import numpy as np
import simpy
from simpy.events import URGENT, Timeout

__all__ = ["ContactCentre", "ContactRecords", "OnDone", "PoolSpec"]

#: ``on_done(contact_id, answered, t_min)``; ``t_min`` is the service end (answered) or the
#: abandonment time ``arrival + patience`` (not answered).
OnDone = Callable[[int, bool, float], None]

_INF = math.inf


@dataclass(frozen=True, eq=False)
class PoolSpec:
    """Static description of one agent pool.

    Attributes:
        name: pool name, e.g. ``"chat"``, ``"email"``, ``"phone"``, ``"social"``, ``"tier2"``.
        interval_min: staffing interval length in minutes (e.g. 30).
        servers: effective servers (agents x concurrency slots, after shrinkage) for each interval
            ``k`` covering ``[k*interval_min, (k+1)*interval_min)``; the last value holds beyond
            the end. Converted to a read-only 1-D ``int64`` array.
        abandons: ``True`` for real-time channels (chat/phone/social); ``False`` for backlog work
            (email, tier 2) whose contacts have infinite patience.
    """

    name: str
    interval_min: float
    servers: np.ndarray
    abandons: bool

    def __post_init__(self) -> None:
        interval = float(self.interval_min)
        if not (interval > 0.0 and math.isfinite(interval)):
            raise ValueError(f"pool {self.name!r}: interval_min must be positive, got {interval}")
        raw = np.asarray(self.servers)
        if raw.ndim != 1 or raw.size == 0:
            raise ValueError(f"pool {self.name!r}: servers must be a non-empty 1-D array")
        servers = raw.astype(np.int64)
        if not np.array_equal(servers, raw):
            raise ValueError(f"pool {self.name!r}: servers must be whole numbers")
        if (servers < 0).any():
            raise ValueError(f"pool {self.name!r}: servers must be >= 0")
        servers.setflags(write=False)
        object.__setattr__(self, "interval_min", interval)
        object.__setattr__(self, "servers", servers)
        object.__setattr__(self, "abandons", bool(self.abandons))

    def interval_index(self, t_min: float) -> int:
        """Index of the staffing interval containing time ``t_min`` (minutes), clipped to the
        schedule (times before 0 map to interval 0, times past the end to the last interval)."""
        k = math.floor(t_min / self.interval_min)
        return min(max(k, 0), len(self.servers) - 1)

    def servers_at(self, t_min: float) -> int:
        """Effective servers staffed at time ``t_min`` (minutes)."""
        return int(self.servers[self.interval_index(t_min)])


@dataclass(frozen=True, eq=False)
class ContactRecords:
    """Finished contacts (served or abandoned), one row per contact, as aligned NumPy arrays.

    Attributes:
        contact_id: caller's contact id (``int64``).
        pool: pool index (``int16``).
        arrival_min: arrival time in minutes (after clamping to the submission time).
        start_min: service start in minutes; ``nan`` if abandoned.
        end_min: service end in minutes, or the abandonment time ``arrival + patience``.
        answered: ``True`` if served, ``False`` if abandoned.
    """

    contact_id: np.ndarray
    pool: np.ndarray
    arrival_min: np.ndarray
    start_min: np.ndarray
    end_min: np.ndarray
    answered: np.ndarray

    def __len__(self) -> int:
        return int(self.contact_id.shape[0])

    @property
    def queue_exit_min(self) -> np.ndarray:
        """Time each contact left the queue (minutes): service start if answered, else the
        abandonment time."""
        return np.where(self.answered, self.start_min, self.end_min)

    @property
    def wait_min(self) -> np.ndarray:
        """Time spent waiting in queue (minutes), for answered and abandoned contacts alike."""
        return self.queue_exit_min - self.arrival_min

    def select(self, mask: np.ndarray) -> ContactRecords:
        """Rows where ``mask`` is true (or the given integer indices)."""
        return ContactRecords(
            self.contact_id[mask],
            self.pool[mask],
            self.arrival_min[mask],
            self.start_min[mask],
            self.end_min[mask],
            self.answered[mask],
        )

    @classmethod
    def empty(cls) -> ContactRecords:
        """A record set with no rows."""
        f = np.empty(0, dtype=np.float64)
        return cls(
            np.empty(0, np.int64), np.empty(0, np.int16), f, f.copy(), f.copy(),
            np.empty(0, np.bool_),
        )

    @classmethod
    def concat(cls, parts: Sequence[ContactRecords]) -> ContactRecords:
        """Concatenate record sets (e.g. successive daily drains)."""
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.contact_id for p in parts]),
            np.concatenate([p.pool for p in parts]),
            np.concatenate([p.arrival_min for p in parts]),
            np.concatenate([p.start_min for p in parts]),
            np.concatenate([p.end_min for p in parts]),
            np.concatenate([p.answered for p in parts]),
        )


class _Pool:
    """Mutable state of one pool; methods are SimPy callbacks (internal)."""

    __slots__ = (
        "_complete_cb",
        "_wake_cb",
        "abandons",
        "ab_arr",
        "ab_dl",
        "ab_id",
        "arr",
        "busy",
        "cap",
        "centre",
        "change_k",
        "change_pos",
        "dls",
        "env",
        "heap",
        "ids",
        "index",
        "pos",
        "rec_arr",
        "rec_end",
        "rec_id",
        "rec_start",
        "spec",
        "svcs",
        "wake_at",
    )

    def __init__(self, centre: ContactCentre, index: int, spec: PoolSpec) -> None:
        self.centre = centre
        self.env = centre.env
        self.index = index
        self.spec = spec
        self.abandons = spec.abandons
        # Sorted batch buffer (parallel lists) and read position.
        self.arr: list[float] = []
        self.ids: list[int] = []
        self.svcs: list[float] = []
        self.dls: list[float] = []
        self.pos = 0
        # Heap for single submissions: (arrival, seq, id, service, deadline).
        self.heap: list[tuple[float, int, int, float, float]] = []
        self.busy = 0
        self.wake_at = _INF
        # Started services (answered contacts); rows with end <= now are finished.
        self.rec_id: list[int] = []
        self.rec_arr: list[float] = []
        self.rec_start: list[float] = []
        self.rec_end: list[float] = []
        # Abandoned contacts.
        self.ab_id: list[int] = []
        self.ab_arr: list[float] = []
        self.ab_dl: list[float] = []
        self._complete_cb = self._complete
        self._wake_cb = self._wake
        # Staffing schedule: chained Timeouts at boundaries where the server count changes.
        now = self.env.now
        k0 = spec.interval_index(now)
        self.cap = int(spec.servers[k0])
        changes = np.flatnonzero(np.diff(spec.servers)) + 1
        self.change_k = changes[changes > k0].tolist()
        self.change_pos = 0
        self._schedule_next_change()

    # -- staffing ---------------------------------------------------------------------------
    def _schedule_next_change(self) -> None:
        if self.change_pos < len(self.change_k):
            k = self.change_k[self.change_pos]
            t = k * self.spec.interval_min
            # URGENT priority: a staffing change at time t applies before any arrival or
            # completion at t, so contacts starting exactly at a boundary see the new staffing.
            ev = simpy.Event(self.env)
            ev._ok = True
            ev._value = k
            ev.callbacks.append(self._on_change)
            self.env.schedule(ev, URGENT, max(t - self.env.now, 0.0))

    def _on_change(self, ev: simpy.Event) -> None:
        self.change_pos += 1
        self.cap = int(self.spec.servers[ev._value])
        self._schedule_next_change()
        if self.busy < self.cap:
            self._pull(self.env._now)

    # -- arrivals / service -----------------------------------------------------------------
    def _schedule_wake(self, at: float) -> None:
        self.wake_at = at
        ev = Timeout(self.env, at - self.env._now, at)
        ev.callbacks.append(self._wake_cb)

    def _wake(self, ev: Timeout) -> None:
        if ev._value == self.wake_at:
            self.wake_at = _INF
        if self.busy < self.cap:
            self._pull(self.env._now)

    def _complete(self, ev: Timeout) -> None:
        self.busy -= 1
        env = self.env
        if self.busy < self.cap:
            self._pull(env._now)
        on_done = self.centre.on_done
        if on_done is not None:
            on_done(ev._value, True, env._now)

    def _pull(self, now: float) -> None:
        """Start queued contacts on free servers (FCFS), discarding expired ones."""
        busy = self.busy
        cap = self.cap
        arr = self.arr
        n = len(arr)
        pos = self.pos
        heap = self.heap
        env = self.env
        complete = self._complete_cb
        rec_id = self.rec_id.append
        rec_arr = self.rec_arr.append
        rec_start = self.rec_start.append
        rec_end = self.rec_end.append
        abandoned: list[tuple[int, float]] | None = None
        while busy < cap:
            if heap and (pos >= n or heap[0][0] < arr[pos]):
                a = heap[0][0]
                if a > now:
                    if a < self.wake_at:
                        self._schedule_wake(a)
                    break
                a, _, cid, svc, dl = heappop(heap)
            elif pos < n:
                a = arr[pos]
                if a > now:
                    if a < self.wake_at:
                        self._schedule_wake(a)
                    break
                cid = self.ids[pos]
                svc = self.svcs[pos]
                dl = self.dls[pos]
                pos += 1
            else:
                break
            if dl < now:
                self.ab_id.append(cid)
                self.ab_arr.append(a)
                self.ab_dl.append(dl)
                if abandoned is None:
                    abandoned = []
                abandoned.append((cid, dl))
                continue
            busy += 1
            rec_id(cid)
            rec_arr(a)
            rec_start(now)
            rec_end(now + svc)
            Timeout(env, svc, cid).callbacks.append(complete)
        self.pos = pos
        self.busy = busy
        if abandoned is not None:
            on_done = self.centre.on_done
            if on_done is not None:
                for cid, dl in abandoned:
                    on_done(cid, False, dl)

    # -- buffer management ------------------------------------------------------------------
    def add_batch(
        self, arrival: np.ndarray, cid: np.ndarray, svc: np.ndarray, dl: np.ndarray
    ) -> None:
        pos = self.pos
        if pos < len(self.arr):
            arrival = np.concatenate([np.asarray(self.arr[pos:], dtype=np.float64), arrival])
            cid = np.concatenate([np.asarray(self.ids[pos:], dtype=np.int64), cid])
            svc = np.concatenate([np.asarray(self.svcs[pos:], dtype=np.float64), svc])
            dl = np.concatenate([np.asarray(self.dls[pos:], dtype=np.float64), dl])
        order = np.argsort(arrival, kind="stable")
        self.arr = arrival[order].tolist()
        self.ids = cid[order].tolist()
        self.svcs = svc[order].tolist()
        self.dls = dl[order].tolist()
        self.pos = 0
        self._maybe_wake()

    def _maybe_wake(self) -> None:
        if self.busy >= self.cap:
            return
        head = self.head_arrival()
        if head < self.wake_at:
            self._schedule_wake(head)

    def head_arrival(self) -> float:
        a = self.arr[self.pos] if self.pos < len(self.arr) else _INF
        if self.heap and self.heap[0][0] < a:
            a = self.heap[0][0]
        return a

    def sweep(self, now: float) -> list[tuple[int, float]]:
        """Record queued contacts whose deadline is strictly before ``now`` as abandoned."""
        out: list[tuple[int, float]] = []
        if not self.abandons:
            return out
        arr, dls, pos = self.arr, self.dls, self.pos
        j = pos
        n = len(arr)
        drop: list[int] = []
        while j < n and arr[j] <= now:
            if dls[j] < now:
                drop.append(j)
            j += 1
        if drop:
            keep = np.ones(n - pos, dtype=np.bool_)
            keep[np.asarray(drop) - pos] = False
            for k in drop:
                cid = self.ids[k]
                self.ab_id.append(cid)
                self.ab_arr.append(arr[k])
                self.ab_dl.append(dls[k])
                out.append((cid, dls[k]))
            idx = np.flatnonzero(keep) + pos
            self.arr = np.asarray(arr)[idx].tolist()
            self.ids = np.asarray(self.ids, dtype=np.int64)[idx].tolist()
            self.svcs = np.asarray(self.svcs)[idx].tolist()
            self.dls = np.asarray(dls)[idx].tolist()
            self.pos = 0
        if self.heap:
            kept = []
            for item in self.heap:
                if item[0] <= now and item[4] < now:
                    self.ab_id.append(item[2])
                    self.ab_arr.append(item[0])
                    self.ab_dl.append(item[4])
                    out.append((item[2], item[4]))
                else:
                    kept.append(item)
            if len(kept) != len(self.heap):
                heapify(kept)
                self.heap = kept
        return out

    def queue_length(self, now: float) -> int:
        q = sum(1 for item in self.heap if item[0] <= now)
        j = self.pos
        arr = self.arr
        n = len(arr)
        while j < n and arr[j] <= now:
            j += 1
        return q + j - self.pos

    def not_started(self) -> int:
        return len(self.arr) - self.pos + len(self.heap)


class ContactCentre:
    """A set of FCFS agent pools driven by a ``simpy.Environment`` (time in minutes).

    Args:
        env: the SimPy environment (its clock is minutes since the scenario start).
        pools: one :class:`PoolSpec` per pool; pools are addressed by their index.
        on_done: optional ``on_done(contact_id, answered, t_min)`` called when a contact finishes
            service (``answered=True``, ``t_min`` = service end, called at that simulated time) or
            abandons (``answered=False``, ``t_min = arrival + patience``). Abandonment is detected
            lazily, so this call may come later in simulated time than ``t_min``; follow-up
            contacts submitted from the callback are clamped to ``max(arrival, env.now)`` by
            :meth:`submit`, which is the caller's responsibility to accept (the lag is at most the
            time until the next server frees or the next :meth:`run_until` boundary).
    """

    def __init__(
        self,
        env: simpy.Environment,
        pools: Sequence[PoolSpec],
        on_done: OnDone | None = None,
    ) -> None:
        if not pools:
            raise ValueError("at least one pool is required")
        self.env = env
        self.specs: tuple[PoolSpec, ...] = tuple(pools)
        self.on_done = on_done
        self._seq = 0
        self._pools = [_Pool(self, i, spec) for i, spec in enumerate(self.specs)]
        self._abandons = np.array([s.abandons for s in self.specs], dtype=np.bool_)

    # -- submission -------------------------------------------------------------------------
    def submit(
        self,
        pool: int,
        contact_id: int,
        arrival_min: float,
        service_min: float,
        patience_min: float,
    ) -> None:
        """Schedule one contact.

        Args:
            pool: pool index.
            contact_id: caller's id, reported back in records and ``on_done``.
            arrival_min: arrival time (minutes); clamped to ``env.now`` if earlier.
            service_min: handle time (minutes, >= 0).
            patience_min: patience (minutes, >= 0, may be ``inf``); ignored for pools that do not
                abandon.
        """
        p = self._pools[pool]
        if not service_min >= 0.0:
            raise ValueError(f"service_min must be >= 0, got {service_min}")
        arrival = float(arrival_min)
        if not arrival == arrival:  # nan
            raise ValueError("arrival_min is nan")
        now = self.env.now
        if arrival < now:
            arrival = now
        if p.abandons:
            if not patience_min >= 0.0:
                raise ValueError(f"patience_min must be >= 0, got {patience_min}")
            dl = arrival + patience_min
        else:
            dl = _INF
        self._seq += 1
        heappush(p.heap, (arrival, self._seq, int(contact_id), float(service_min), float(dl)))
        if p.busy < p.cap and arrival < p.wake_at:
            p._schedule_wake(arrival)

    def submit_batch(
        self,
        pool: np.ndarray,
        contact_id: np.ndarray,
        arrival_min: np.ndarray,
        service_min: np.ndarray,
        patience_min: np.ndarray,
    ) -> None:
        """Schedule many contacts at once (arrays of equal length, in any order).

        Same meaning and units as :meth:`submit`; arrivals earlier than ``env.now`` are clamped.
        Ties in arrival time are served in submission order.
        """
        pool_a = np.asarray(pool)
        if pool_a.ndim != 1:
            raise ValueError("pool must be a 1-D array")
        n = pool_a.shape[0]
        cid = np.asarray(contact_id, dtype=np.int64)
        arrival = np.asarray(arrival_min, dtype=np.float64)
        svc = np.asarray(service_min, dtype=np.float64)
        patience = np.asarray(patience_min, dtype=np.float64)
        if not (cid.shape == arrival.shape == svc.shape == patience.shape == (n,)):
            raise ValueError("pool, contact_id, arrival_min, service_min, patience_min differ in shape")
        if n == 0:
            return
        pool_i = pool_a.astype(np.int64)
        if pool_i.min() < 0 or pool_i.max() >= len(self._pools):
            raise ValueError("pool index out of range")
        if np.isnan(arrival).any():
            raise ValueError("arrival_min contains nan")
        if not (svc >= 0.0).all():
            raise ValueError("service_min must be >= 0")
        arrival = np.maximum(arrival, self.env.now)
        abandons = self._abandons[pool_i]
        if not (patience[abandons] >= 0.0).all():
            raise ValueError("patience_min must be >= 0 for abandoning pools")
        dl = np.where(abandons, arrival + np.where(abandons, patience, 0.0), _INF)
        if len(self._pools) == 1:
            self._pools[0].add_batch(arrival, cid, svc, dl)
            return
        order = np.argsort(pool_i, kind="stable")
        sorted_pool = pool_i[order]
        bounds = np.searchsorted(sorted_pool, np.arange(len(self._pools) + 1))
        for k, p in enumerate(self._pools):
            lo, hi = bounds[k], bounds[k + 1]
            if hi > lo:
                sel = order[lo:hi]
                p.add_batch(arrival[sel], cid[sel], svc[sel], dl[sel])

    # -- running ----------------------------------------------------------------------------
    def run_until(self, t_min: float) -> None:
        """Advance the environment to ``t_min`` (minutes) and record as abandoned every queued
        contact whose deadline ``arrival + patience`` is before ``t_min``. Contacts still waiting
        or in service stay pending. Events scheduled exactly at ``t_min`` run in the next call."""
        env = self.env
        if t_min > env.now:
            env.run(until=t_min)
        now = env.now
        for p in self._pools:
            gone = p.sweep(now)
            if gone and self.on_done is not None:
                for cid, dl in gone:
                    self.on_done(cid, False, dl)

    def drain(self) -> ContactRecords:
        """Records of contacts finished (served with ``end_min <= env.now``, or abandoned) since
        the previous drain, sorted by ``end_min`` (ties by pool, then contact id)."""
        now = self.env.now
        parts: list[ContactRecords] = []
        for p in self._pools:
            if p.rec_id:
                ids = np.asarray(p.rec_id, dtype=np.int64)
                arr = np.asarray(p.rec_arr, dtype=np.float64)
                start = np.asarray(p.rec_start, dtype=np.float64)
                end = np.asarray(p.rec_end, dtype=np.float64)
                done = end <= now
                if done.all():
                    p.rec_id, p.rec_arr, p.rec_start, p.rec_end = [], [], [], []
                else:
                    keep = ~done
                    p.rec_id = ids[keep].tolist()
                    p.rec_arr = arr[keep].tolist()
                    p.rec_start = start[keep].tolist()
                    p.rec_end = end[keep].tolist()
                    ids, arr, start, end = ids[done], arr[done], start[done], end[done]
                parts.append(
                    ContactRecords(
                        ids, np.full(ids.shape[0], p.index, np.int16), arr, start, end,
                        np.ones(ids.shape[0], np.bool_),
                    )
                )
            if p.ab_id:
                ids = np.asarray(p.ab_id, dtype=np.int64)
                dl = np.asarray(p.ab_dl, dtype=np.float64)
                parts.append(
                    ContactRecords(
                        ids, np.full(ids.shape[0], p.index, np.int16),
                        np.asarray(p.ab_arr, dtype=np.float64),
                        np.full(ids.shape[0], np.nan), dl, np.zeros(ids.shape[0], np.bool_),
                    )
                )
                p.ab_id, p.ab_arr, p.ab_dl = [], [], []
        rec = ContactRecords.concat(parts)
        if len(rec) > 1:
            rec = rec.select(np.lexsort((rec.contact_id, rec.pool, rec.end_min)))
        return rec

    # -- introspection ----------------------------------------------------------------------
    def servers_now(self, pool: int) -> int:
        """Servers currently staffed in ``pool`` (busy servers above this count are finishing
        their last contact before leaving)."""
        return self._pools[pool].cap

    def busy_servers(self, pool: int) -> int:
        """Servers currently serving a contact in ``pool``."""
        return self._pools[pool].busy

    def queue_length(self, pool: int) -> int:
        """Contacts that have arrived in ``pool`` and not started (may include contacts past their
        deadline that are recorded lazily; exact right after :meth:`run_until`)."""
        return self._pools[pool].queue_length(self.env.now)

    def pending(self) -> int:
        """Submitted contacts not yet recorded as finished: not started, or in service."""
        return sum(p.not_started() + p.busy for p in self._pools)
