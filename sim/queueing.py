# mypy: disable-error-code="misc"
# (a duck-typed _Fire event is pushed onto SimPy's typed event queue on purpose; see _Fire)
"""Contact-centre queueing core: FCFS agent pools with time-varying staffing and abandonment.

A lean SimPy model. Time is in **minutes** (float) since the scenario start, the same clock as
the ``simpy.Environment`` passed in. Contacts are identified by an integer id chosen by the caller.

Design (why it is fast)
-----------------------
* No SimPy process and no ``Resource`` request per contact. Each pool keeps its not-yet-started
  contacts in an arrival-ordered buffer (a sorted batch list fed by :meth:`ContactCentre.submit_batch`
  plus a small heap fed by :meth:`ContactCentre.submit`). Because service is FCFS, the queue is
  simply the prefix of that buffer whose arrival time has passed.
* An arrival that finds an idle server needs no event of its own: it is *pre-started*. When a
  server is idle at ``now`` and the next buffered arrival ``a > now`` lies before the pool's next
  staffing change (so capacity is constant until then), the contact is started right away for
  time ``a`` (start ``a``, completion scheduled at ``a + service``, server counted busy). This is
  exact unless a contact with an earlier arrival is submitted later; then every pre-start of that
  pool starting after it is *revoked* (its completion event is neutralised, the server freed and
  the contact put back into the buffer) and the pool pulls again. Only an arrival at or after the
  next staffing change needs a "wake-up" event (at most one live per pool). When every server is
  busy, arrivals simply accumulate in the buffer and the next service completion pulls the head
  of the queue.
* Each started service schedules exactly one pre-triggered event (a minimal slotted event pushed
  straight onto the SimPy queue) whose callback records the contact, frees the server, pulls the
  next contact and calls ``on_done``. A revoked pre-start's event stays queued with no callback.
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

Floating point: SimPy schedules by relative delay, so the clock reached at a wake-up is
``now + (arrival - now)``, which can differ from ``arrival`` by one ulp; a contact that finds an
idle server may therefore show a wait of ~1e-13 minutes instead of exactly 0 (pre-started
contacts start exactly at their arrival).

Ties with pre-starts: a pre-start at ``s`` is revoked by a later single submission arriving
strictly before ``s``, and by a batch contact arriving at or before ``s`` if the pre-started
contact was singly submitted (batch contacts go first at ties) and its service has not ended.

Validated in ``tests/test_queueing.py`` against Erlang C/A, an exact FCFS recursion (pathwise) and
pathwise invariants under time-varying staffing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL, URGENT

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
            np.empty(0, np.int64),
            np.empty(0, np.int16),
            f,
            f.copy(),
            f.copy(),
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


class _Done(simpy.Event):
    """A pre-triggered event processed after ``delay`` minutes with one callback (a leaner
    ``Timeout``: no delay check, callback attached at construction)."""

    def __init__(
        self,
        env: simpy.Environment,
        delay: float,
        value: object,
        callback: Callable[[simpy.Event], None],
    ) -> None:
        self.env = env
        self.callbacks = [callback]
        self._value = value
        self._ok = True
        env.schedule(self, NORMAL, delay)


class _Fire:
    """A minimal pre-triggered event for service completions, pushed straight onto the SimPy
    event queue (all ``Environment.step`` needs is ``callbacks``, ``_ok`` and ``_value``).
    ``callbacks`` is a shared one-element tuple; setting it to ``()`` neutralises the event
    (revoked pre-start), and SimPy sets it to ``None`` once processed."""

    __slots__ = ("_value", "callbacks")
    _ok = True
    _value: Any  # the record tuple handed to the completion callback
    callbacks: Any  # tuple of callbacks, () when revoked, None once processed


class _Pool:
    """Mutable state of one pool; its methods are SimPy callbacks (internal).

    Buffers hold not-yet-started contacts as tuples: the sorted batch buffer ``buf`` of
    ``(arrival, id, service, deadline)`` read from ``pos``, and the heap ``heap`` of
    ``(arrival, seq, id, service, deadline)`` for single submissions. Pre-started contacts (see
    the module docstring) are kept in ``pre`` as ``(start, item, event)`` in non-decreasing start
    order, where ``item`` is the buffer tuple (4 fields: batch buffer; 5: heap) and ``event`` its
    pending completion; entries whose start is in the past are pruned lazily. ``busy`` counts
    them from the moment they are pre-started. Finished contacts are
    appended to ``rec`` as ``(id, arrival, start, end)`` when their service ends, and to ``ab`` as
    ``(id, arrival, deadline)`` when found abandoned.
    """

    __slots__ = (
        "_complete_cbs",
        "_wake_cb",
        "ab",
        "abandons",
        "buf",
        "busy",
        "cap",
        "change_k",
        "change_pos",
        "change_t",
        "env",
        "heap",
        "index",
        "on_done",
        "pos",
        "pre",
        "rec",
        "spec",
        "wake_at",
    )

    def __init__(
        self, env: simpy.Environment, index: int, spec: PoolSpec, on_done: OnDone | None
    ) -> None:
        self.env = env
        self.index = index
        self.spec = spec
        self.abandons = spec.abandons
        self.on_done = on_done
        self.buf: list[tuple[float, int, float, float]] = []
        self.pos = 0
        self.heap: list[tuple[float, int, int, float, float]] = []
        self.busy = 0
        self.wake_at = _INF
        self.pre: deque[tuple[float, tuple, _Fire]] = deque()
        self.change_t = _INF
        self.rec: list[tuple[int, float, float, float]] = []
        self.ab: list[tuple[int, float, float]] = []
        self._complete_cbs = (self._complete,)
        self._wake_cb = self._wake
        # Staffing schedule: chained events at boundaries where the server count changes.
        k0 = spec.interval_index(env.now)
        self.cap = int(spec.servers[k0])
        changes = np.flatnonzero(np.diff(spec.servers)) + 1
        self.change_k: list[int] = changes[changes > k0].tolist()
        self.change_pos = 0
        self._schedule_next_change()

    # -- staffing ---------------------------------------------------------------------------
    def _schedule_next_change(self) -> None:
        if self.change_pos < len(self.change_k):
            k = self.change_k[self.change_pos]
            t = k * self.spec.interval_min
            self.change_t = t
            # URGENT priority: a staffing change at time t applies before any arrival or
            # completion at t, so contacts starting exactly at a boundary see the new staffing.
            ev = simpy.Event(self.env)
            ev._ok = True
            ev._value = k
            ev.callbacks.append(self._on_change)
            self.env.schedule(ev, URGENT, max(t - self.env.now, 0.0))
        else:
            self.change_t = _INF

    def _on_change(self, ev: simpy.Event) -> None:
        self.change_pos += 1
        self.cap = int(self.spec.servers[ev._value])
        self._schedule_next_change()
        if self.busy < self.cap:
            self._pull(self.env._now)

    # -- arrivals / service -----------------------------------------------------------------
    def _wake(self, ev: simpy.Event) -> None:
        if ev._value == self.wake_at:
            self.wake_at = _INF
        if self.busy < self.cap:
            self._pull(self.env._now)

    def _complete(self, ev: _Fire) -> None:
        rec = ev._value
        self.rec.append(rec)
        busy = self.busy - 1
        self.busy = busy
        if busy < self.cap:
            now = rec[3]
            buf = self.buf
            pos = self.pos
            # Fast path (the common case): no single submissions buffered and exactly one server
            # free; the batch head either waits (start it now) or arrives later before the next
            # staffing change (pre-start it). Anything else goes through _pull.
            if busy + 1 == self.cap and not self.heap and pos < len(buf):
                item = buf[pos]
                a = item[0]
                if a <= now:
                    if item[3] >= now:
                        svc = item[2]
                        env = self.env
                        f = _Fire()
                        f.callbacks = self._complete_cbs
                        f._value = (item[1], a, now, now + svc)
                        heappush(env._queue, (env._now + svc, NORMAL, next(env._eid), f))
                        self.pos = pos + 1
                        self.busy = busy + 1
                    else:
                        self._pull(now)
                elif a < self.change_t:
                    end = a + item[2]
                    env = self.env
                    t_env = env._now
                    f = _Fire()
                    f.callbacks = self._complete_cbs
                    f._value = (item[1], a, a, end)
                    heappush(env._queue, (end if end > t_env else t_env, NORMAL, next(env._eid), f))
                    self.pos = pos + 1
                    self.busy = busy + 1
                    self._add_pre(a, item, f, now)
                else:
                    self._pull(now)
            else:
                self._pull(now)
        if self.on_done is not None:
            self.on_done(rec[0], True, rec[3])

    def _pull(self, now: float) -> None:
        """Start queued contacts on free servers (FCFS) at time ``now`` (= env.now), recording
        contacts whose deadline passed as abandoned; pre-start future arrivals before the next
        staffing change on servers left idle, and schedule a wake-up for the next arrival if
        servers are still idle."""
        busy = self.busy
        cap = self.cap
        buf = self.buf
        n = len(buf)
        pos = self.pos
        heap = self.heap
        env = self.env
        queue = env._queue
        eid = env._eid
        t_env = env._now
        cbs = self._complete_cbs
        abandoned: list[tuple[int, float, float]] | None = None
        while busy < cap:
            if heap and (pos >= n or heap[0][0] < buf[pos][0]):
                a = heap[0][0]
                if a > now:
                    if a < self.change_t:
                        # Pre-start (see the module docstring).
                        item = heappop(heap)
                        end = a + item[3]
                        ev = _Fire()
                        ev.callbacks = cbs
                        ev._value = (item[2], a, a, end)
                        heappush(queue, (end if end > t_env else t_env, NORMAL, next(eid), ev))
                        self._add_pre(a, item, ev, now)
                        busy += 1
                        continue
                    if a < self.wake_at:
                        self.wake_at = a
                        _Done(env, a - now, a, self._wake_cb)
                    break
                a, _, cid, svc, dl = heappop(heap)
            elif pos < n:
                item = buf[pos]  # type: ignore[assignment]  # batch tuples have 4 fields, heap tuples 5
                a, cid, svc, dl = item
                if a > now:
                    if a < self.change_t:
                        pos += 1
                        end = a + svc
                        ev = _Fire()
                        ev.callbacks = cbs
                        ev._value = (cid, a, a, end)
                        heappush(queue, (end if end > t_env else t_env, NORMAL, next(eid), ev))
                        self._add_pre(a, item, ev, now)
                        busy += 1
                        continue
                    if a < self.wake_at:
                        self.wake_at = a
                        _Done(env, a - now, a, self._wake_cb)
                    break
                pos += 1
            else:
                break
            if dl < now:
                if abandoned is None:
                    abandoned = []
                abandoned.append((cid, a, dl))
                continue
            busy += 1
            ev = _Fire()
            ev.callbacks = cbs
            ev._value = (cid, a, now, now + svc)
            heappush(queue, (t_env + svc, NORMAL, next(eid), ev))
        self.pos = pos
        self.busy = busy
        if abandoned is not None:
            self.ab.extend(abandoned)
            on_done = self.on_done
            if on_done is not None:
                for cid, _, dl in abandoned:
                    on_done(cid, False, dl)

    def _add_pre(self, a: float, item: tuple, ev: _Fire, now: float) -> None:
        """Remember a pre-start (pruning entries that started before ``now`` now and then)."""
        pre = self.pre
        if len(pre) >= 64:
            while pre and pre[0][0] < now:
                pre.popleft()
        pre.append((a, item, ev))

    # -- buffer management ------------------------------------------------------------------
    def add_batch(
        self, arrival: np.ndarray, cid: np.ndarray, svc: np.ndarray, dl: np.ndarray
    ) -> None:
        """Merge a batch (arrays, any order) into the sorted buffer."""
        if self.pre and arrival.size:
            self.revoke(float(arrival.min()), True)
        pos = self.pos
        if pos < len(self.buf):
            ra, rc, rs, rd = zip(*self.buf[pos:], strict=True)
            arrival = np.concatenate([np.asarray(ra, dtype=np.float64), arrival])
            cid = np.concatenate([np.asarray(rc, dtype=np.int64), cid])
            svc = np.concatenate([np.asarray(rs, dtype=np.float64), svc])
            dl = np.concatenate([np.asarray(rd, dtype=np.float64), dl])
        order = np.argsort(arrival, kind="stable")
        self.buf = list(
            zip(
                arrival[order].tolist(),
                cid[order].tolist(),
                svc[order].tolist(),
                dl[order].tolist(),
                strict=True,
            )
        )
        self.pos = 0
        self.maybe_wake()

    def revoke(self, a0: float, batch: bool) -> None:
        """Undo the pre-starts that a contact arriving at ``a0`` (from a batch if ``batch``, else a
        single submission) would precede in FCFS order: every pre-start with start ``> a0``, and
        for a batch contact also pending single-submitted pre-starts with start ``== a0`` (ties
        put batch contacts first). Their completions are neutralised, their servers freed and the
        contacts put back into the buffers. The caller pulls again afterwards."""
        pre = self.pre
        back: list[tuple[float, int, float, float]] = []
        while pre:
            s, item, ev = pre[-1]
            tie = batch and s == a0 and len(item) == 5 and ev.callbacks is not None
            if not (s > a0 or tie):
                break
            pre.pop()
            ev.callbacks = ()  # the event still fires, with no effect
            self.busy -= 1
            if len(item) == 5:
                heappush(self.heap, item)
            else:
                back.append(item)
        if back:
            back.reverse()
            m = len(back)
            buf, pos = self.buf, self.pos
            if pos >= m and all(buf[pos - m + i] is back[i] for i in range(m)):
                self.pos = pos - m
            else:
                self.buf = back + buf[pos:]
                self.pos = 0

    def maybe_wake(self) -> None:
        """After a submission, if a server is idle: pre-start future arrivals (pull), or schedule a
        wake-up at the head arrival if it has already arrived."""
        if self.busy >= self.cap:
            return
        head = self.head_arrival()
        now = self.env._now
        if head > now:
            if head < _INF:
                self._pull(now)
        elif head < self.wake_at:
            self.wake_at = head
            _Done(self.env, 0.0, head, self._wake_cb)

    def head_arrival(self) -> float:
        a = self.buf[self.pos][0] if self.pos < len(self.buf) else _INF
        if self.heap and self.heap[0][0] < a:
            a = self.heap[0][0]
        return a

    def sweep(self, now: float) -> list[tuple[int, float, float]]:
        """Record queued contacts whose deadline is strictly before ``now`` as abandoned."""
        if not self.abandons:
            return []
        buf, pos = self.buf, self.pos
        out: list[tuple[int, float, float]] = []
        j = pos
        n = len(buf)
        while j < n and buf[j][0] <= now:
            a, cid, _, dl = buf[j]
            if dl < now:
                out.append((cid, a, dl))
            j += 1
        if out:
            self.buf = [item for item in buf[pos:j] if not item[3] < now] + buf[j:]
            self.pos = 0
        if self.heap:
            kept = []
            for item in self.heap:
                if item[0] <= now and item[4] < now:
                    out.append((item[2], item[0], item[4]))
                else:
                    kept.append(item)
            if len(kept) != len(self.heap):
                heapify(kept)
                self.heap = kept
        self.ab.extend(out)
        return out

    def queue_length(self, now: float) -> int:
        q = sum(1 for item in self.heap if item[0] <= now)
        j = self.pos
        buf = self.buf
        n = len(buf)
        while j < n and buf[j][0] <= now:
            j += 1
        return q + j - self.pos

    def future_prestarts(self, now: float) -> int:
        """Pre-started contacts whose start is still in the future (not yet busy at ``now``)."""
        k = 0
        for item in reversed(self.pre):
            if item[0] <= now:
                break
            k += 1
        return k

    def not_started(self) -> int:
        """Contacts not started at env.now: buffered, or pre-started for a future start."""
        return len(self.buf) - self.pos + len(self.heap) + self.future_prestarts(self.env._now)

    def busy_now(self) -> int:
        """Servers serving a contact at env.now (pre-starts in the future excluded)."""
        return self.busy - self.future_prestarts(self.env._now)

    def take_records(self) -> list[ContactRecords]:
        """Finished records accumulated since the last call, as arrays."""
        parts: list[ContactRecords] = []
        if self.rec:
            ids, arr, start, end = zip(*self.rec, strict=True)
            self.rec = []
            m = len(ids)
            parts.append(
                ContactRecords(
                    np.asarray(ids, dtype=np.int64),
                    np.full(m, self.index, np.int16),
                    np.asarray(arr, dtype=np.float64),
                    np.asarray(start, dtype=np.float64),
                    np.asarray(end, dtype=np.float64),
                    np.ones(m, np.bool_),
                )
            )
        if self.ab:
            ids, arr, dl = zip(*self.ab, strict=True)
            self.ab = []
            m = len(ids)
            parts.append(
                ContactRecords(
                    np.asarray(ids, dtype=np.int64),
                    np.full(m, self.index, np.int16),
                    np.asarray(arr, dtype=np.float64),
                    np.full(m, np.nan),
                    np.asarray(dl, dtype=np.float64),
                    np.zeros(m, np.bool_),
                )
            )
        return parts


class ContactCentre:
    """A set of FCFS agent pools driven by a ``simpy.Environment`` (time in minutes).

    Args:
        env: the SimPy environment (its clock is minutes since the scenario start).
        pools: one :class:`PoolSpec` per pool; pools are addressed by their index.
        on_done: optional ``on_done(contact_id, answered, t_min)`` called exactly once per
            contact: when it finishes service (``answered=True``, ``t_min`` = service end, called
            at that simulated time) or abandons (``answered=False``, ``t_min = arrival +
            patience``). Abandonment is detected lazily, so that call may come later in simulated
            time than ``t_min`` (at most until the next server frees in the pool or the next
            :meth:`run_until`). Follow-up contacts submitted from the callback (repeat contacts,
            escalations, retries) with an arrival before ``env.now`` are clamped to ``env.now`` by
            :meth:`submit`; callers that need exact follow-up timing must accept that clamp.
            The callback may call :meth:`submit` on any pool.
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
        self._on_done = on_done
        self._seq = 0
        self._pools = [_Pool(env, i, spec, on_done) for i, spec in enumerate(self.specs)]
        self._abandons = np.array([s.abandons for s in self.specs], dtype=np.bool_)

    @property
    def on_done(self) -> OnDone | None:
        """The completion/abandonment callback (may be replaced at any time)."""
        return self._on_done

    @on_done.setter
    def on_done(self, fn: OnDone | None) -> None:
        self._on_done = fn
        for p in self._pools:
            p.on_done = fn

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
        if p.pre and p.pre[-1][0] > arrival:
            p.revoke(arrival, False)
            p.maybe_wake()
        elif p.busy < p.cap and arrival < p.wake_at:
            p.maybe_wake()

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
        This is the fast path (the engine submits a day of contacts at a time). Ties in arrival
        time: batch-submitted contacts in submission order, ahead of singly submitted ones.
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
            raise ValueError(
                "pool, contact_id, arrival_min, service_min, patience_min differ in shape"
            )
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
        or in service stay pending. Events scheduled exactly at ``t_min`` run in the next call
        (staffing changes at ``t_min`` excepted: they are urgent and apply now)."""
        env = self.env
        if t_min > env.now:
            env.run(until=t_min)
        now = env.now
        for p in self._pools:
            gone = p.sweep(now)
            if gone and self._on_done is not None:
                for cid, _, dl in gone:
                    self._on_done(cid, False, dl)

    def drain(self) -> ContactRecords:
        """Records of contacts finished since the previous drain: served contacts whose service
        end has been processed (their ``on_done`` has run), and abandoned contacts. Sorted by
        ``end_min``, ties by pool then contact id."""
        parts: list[ContactRecords] = []
        for p in self._pools:
            parts.extend(p.take_records())
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
        return self._pools[pool].busy_now()

    def queue_length(self, pool: int) -> int:
        """Contacts that have arrived in ``pool`` and not started (may include contacts past their
        deadline that are recorded lazily; exact right after :meth:`run_until`)."""
        return self._pools[pool].queue_length(self.env.now)

    def pending(self) -> int:
        """Submitted contacts not yet recorded as finished: not started, or in service."""
        return sum(p.not_started() + p.busy_now() for p in self._pools)
