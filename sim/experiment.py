"""Experiments: scenarios x replications, run on a local process pool or a Dask cluster.

A pure library: no printing, no files. Each task is one ``(scenario, replication)`` and calls
:func:`sim.engine.simulate` with the experiment's seed, so replication ``r`` of every scenario uses
the same random streams (common random numbers) and the results do not depend on where or in which
order tasks ran.

Scenarios travel to workers as plain JSON-able dicts (``model_dump(mode="json")``) and are
re-validated there, so nothing depends on pickling pydantic models across Python processes.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sim.loader import scenario_from_dict
from sim.results import ReplicationResult
from sim.scenario import Scenario

ProgressFn = Callable[[int, int], None]


class ExperimentError(ValueError):
    """The experiment is ill-posed (bad replication count, duplicate scenario names, ...)."""


def with_horizon(scenario: Scenario, horizon_days: int) -> Scenario:
    """The scenario with a different ``horizon_days`` (re-validated).

    Incidents that would start on or after the new end date are dropped (they cannot happen within
    the shorter horizon); everything else is unchanged.
    """
    data = scenario.model_dump()
    data["horizon_days"] = horizon_days
    end = scenario.start_date.toordinal() + horizon_days
    kept = []
    for inc in data.get("incidents", []):
        start = inc["start"]
        start_day = start.date() if hasattr(start, "date") and callable(start.date) else start
        if start_day.toordinal() < end:
            kept.append(inc)
    data["incidents"] = kept
    return scenario_from_dict(data, f"scenario {scenario.name} with horizon_days={horizon_days}")


def estimated_work(scenario: Scenario) -> float:
    """A rough size of one replication (expected orders), used to start the largest tasks first.

    New customers arrive at ``new_customers_per_day``; every customer (initial or acquired) orders
    again at the mean repurchase rate ``r / alpha`` per day, ignoring dropout.
    """
    days = scenario.horizon_days
    new = scenario.demand.new_customers_per_day
    rate = 0.0
    if scenario.repurchase.enabled:
        rate = scenario.repurchase.rate_shape_r / scenario.repurchase.rate_scale_alpha_days
    initial = scenario.demand.initial_customers
    return days * new + rate * (initial * days + new * days * days / 2.0) + days


ORDERS_PER_CPU_S = 80_000.0
"""Rough engine speed (orders simulated per CPU-second on one core, `benchmarks/bench_engine.py`),
used only to weigh a process pool's start-up against the work it would share."""
POOL_START_S = 1.5
"""Seconds a process pool takes before its first result: starting the workers and importing the
engine in them (measured 1.0-1.6 s on the 2-core project machine)."""


def pool_size(task_work: Sequence[float], workers: int) -> int:
    """How many local worker processes to use for tasks of the given :func:`estimated_work`
    (expected orders each): the count, up to ``workers``, with the least estimated wall time, where
    a pool of ``n > 1`` costs :data:`POOL_START_S` first and finishes when its fullest worker does
    (tasks dealt largest first). Short experiments therefore run in this process, where a pool
    would be slower than one worker."""
    secs = sorted((w / ORDERS_PER_CPU_S for w in task_work), reverse=True)
    if not secs:
        return 1
    best_n, best_t = 1, sum(secs)
    for n in range(2, min(workers, len(secs)) + 1):
        load = [0.0] * n
        for t in secs:
            load[load.index(min(load))] += t
        t_n = POOL_START_S + max(load)
        if t_n < best_t:
            best_n, best_t = n, t_n
    return best_n


def _run_task(
    scenario_data: dict[str, Any], seed: int, replication: int, events: bool
) -> ReplicationResult:
    """Worker entry point: validate the scenario dict and simulate one replication."""
    from sim.engine import simulate

    scenario = Scenario.model_validate(scenario_data)
    return simulate(scenario, seed=seed, replication=replication, events=events)


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_S = 0.5
"""How often a pool worker checks that the process running the experiment is still there."""


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, killed but not yet reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True  # no /proc (not Linux): the signal test above is all there is


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if not _process_alive(parent_pid):
            os._exit(1)  # nobody is left to receive the result


def _worker_init(parent_pid: int) -> None:
    """Pool worker initializer: Ctrl-C is handled by the parent, which stops the workers; and the
    worker ends when the experiment's process is gone, however it ended (``kill -9`` included).

    On Linux the kernel kills the worker when its parent (the fork server) exits; and on every
    platform a thread polls the experiment's process (the fork server's parent) and exits when
    it has gone, since a SIGKILLed parent runs no clean-up and the workers would otherwise sit on
    their queues (or finish a long replication) for nobody.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="cxsim-parent-watch", daemon=True
    ).start()
    if not _process_alive(parent_pid):  # it went before the watch started
        os._exit(1)


def _context() -> mp.context.BaseContext:
    # "forkserver" avoids forking a parent that runs threads (a progress bar, a Dask client);
    # the fork server imports the engine once, so each new worker starts fast.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["sim.experiment", "sim.engine"])
        return ctx
    return mp.get_context("spawn")


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) for the duration of the block and raise it at the end.

    Only in the main thread (the only one that may set signal handlers); elsewhere a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        if callable(previous):
            previous(signal.SIGINT, None)  # normally signal.default_int_handler: KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel queued tasks and end the worker processes now (running replications are lost)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if callable(terminate):
        terminate()
        return
    # Before 3.14 there is no public way to stop a running task: terminate the pool's processes
    # (taken before shutdown(), which forgets them).
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=5)


def run_experiment(
    scenarios: Sequence[Scenario],
    reps: int,
    seed: int,
    workers: int | None = None,
    scheduler: str | None = None,
    events: bool = False,
    progress: ProgressFn | None = None,
) -> list[ReplicationResult]:
    """Simulate every scenario ``reps`` times and return the results.

    - ``seed``: the experiment seed; replication ``r`` of each scenario is ``simulate(s, seed, r)``.
    - ``workers``: local worker processes; default: as many as pay for the pool's start-up
      (:func:`pool_size`, at most ``os.cpu_count()``), so a short experiment runs in this process.
      ``1`` runs in this process without a pool, as does any call from a daemonic process (which
      may not have children).
      Ignored when ``scheduler`` is given. The pool starts workers with "forkserver", so a script
      calling this needs the usual ``if __name__ == "__main__":`` guard.
    - ``scheduler``: address of a Dask distributed scheduler (e.g. ``tcp://10.0.0.5:8786``); the
      workers there need this package installed.
    - ``events``: also return event-level tables.
    - ``progress``: called as ``progress(done, total)`` once at the start and after each task.

    Tasks are started largest first (:func:`estimated_work`); results come back ordered by
    scenario (as given) then replication. Ctrl-C cancels pending work, stops the workers and
    re-raises ``KeyboardInterrupt``.
    """
    if reps < 1:
        raise ExperimentError(f"reps must be at least 1, got {reps}")
    if seed < 0:
        raise ExperimentError(f"seed must be a non-negative integer, got {seed}")
    if workers is not None and workers < 1:
        raise ExperimentError(f"workers must be at least 1, got {workers}")
    names = [s.name for s in scenarios]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ExperimentError(
            f"scenario names must be unique within an experiment; repeated: {dupes}"
        )

    data = [s.model_dump(mode="json") for s in scenarios]
    work = [estimated_work(s) for s in scenarios]
    tasks = sorted(
        ((i, r) for i in range(len(scenarios)) for r in range(reps)),
        key=lambda t: (-work[t[0]], t[1], t[0]),
    )
    total = len(tasks)
    results: dict[tuple[int, int], ReplicationResult] = {}

    def _done(task: tuple[int, int], res: ReplicationResult) -> None:
        results[task] = res
        if progress is not None:
            progress(len(results), total)

    if progress is not None:
        progress(0, total)
    if total == 0:
        return []
    if scheduler is not None:
        _run_dask(scheduler, tasks, data, work, seed, events, _done)
    else:
        n = min(workers, total) if workers is not None else pool_size([work[i] for i, _ in tasks], os.cpu_count() or 1)
        if n == 1 or mp.current_process().daemon:
            # (a daemonic process, e.g. a web server's background worker, may not start a pool)
            for i, r in tasks:
                _done((i, r), _run_task(data[i], seed, r, events))
        else:
            _run_pool(n, tasks, data, seed, events, _done)
    return [results[(i, r)] for i in range(len(scenarios)) for r in range(reps)]


def _run_pool(
    workers: int,
    tasks: list[tuple[int, int]],
    data: list[dict[str, Any]],
    seed: int,
    events: bool,
    done: Callable[[tuple[int, int], ReplicationResult], None],
) -> None:
    pool = cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_context(),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )
    try:
        # Submitting starts the worker processes. A Ctrl-C while one is half-started would leave it
        # printing a traceback once this process is gone, so SIGINT is held until all have started
        # (and is then raised here as usual).
        with _sigint_deferred():
            futures = {pool.submit(_run_task, data[i], seed, r, events): (i, r) for i, r in tasks}
        for fut in cf.as_completed(futures):
            done(futures[fut], fut.result())
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def map_local(
    fn: Callable[..., Any],
    calls: Sequence[tuple[Any, ...]],
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> list[Any]:
    """``[fn(*args) for args in calls]`` on the local process pool (the experiment's own kind:
    forkserver, workers that die with this process, Ctrl-C stopping them), in order. ``fn`` must be
    importable by name; with one worker or one call it runs here. For CPU-bound work that is not a
    plain replication, e.g. the staffing planner's shift MILPs (one per pool) and contact replays.
    ``progress(done, total)`` is called at the start and after each call finishes."""
    n = min(workers or os.cpu_count() or 1, len(calls))
    total = len(calls)
    if progress is not None:
        progress(0, total)
    if n <= 1 or mp.current_process().daemon:
        out = []
        for args in calls:
            out.append(fn(*args))
            if progress is not None:
                progress(len(out), total)
        return out
    pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=_context(), initializer=_worker_init,
                                  initargs=(os.getpid(),))
    try:
        with _sigint_deferred():
            futures = [pool.submit(fn, *args) for args in calls]
        for done, _ in enumerate(cf.as_completed(futures), start=1):
            if progress is not None:
                progress(done, total)
        out = [f.result() for f in futures]
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return out


def _check_scheduler(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast, with a readable message, on a malformed or unreachable scheduler address.

    (A ``distributed.Client`` that fails to connect takes a while and complains on the way out.)
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        protocol, location = parse_address(address)
        if protocol in ("tcp", "tls"):
            host, port = parse_host_port(location, 8786)
            with socket.create_connection((host, port), timeout=timeout_s):
                pass
    except (OSError, ValueError, TypeError) as exc:
        raise ExperimentError(
            f"cannot connect to the Dask scheduler at {address!r}: {exc}"
        ) from None


def _run_dask(
    scheduler: str,
    tasks: list[tuple[int, int]],
    data: list[dict[str, Any]],
    work: list[float],
    seed: int,
    events: bool,
    done: Callable[[tuple[int, int], ReplicationResult], None],
) -> None:
    from distributed import Client, as_completed

    _check_scheduler(scheduler)
    try:
        client = Client(scheduler, set_as_default=False)
    except (OSError, ValueError, TypeError) as exc:
        raise ExperimentError(
            f"cannot connect to the Dask scheduler at {scheduler!r}: {exc}"
        ) from None
    with client:
        owner: dict[Any, tuple[int, int]] = {}
        futures = []
        try:
            for i, r in tasks:
                fut = client.submit(
                    _run_task, data[i], seed, r, events, pure=False, priority=int(work[i])
                )
                owner[fut.key] = (i, r)
                futures.append(fut)
            for fut in as_completed(futures, loop=client.loop):
                done(owner[fut.key], fut.result())
        except BaseException:
            if futures:
                client.cancel(futures, force=True)
            raise
