"""A pool of worker processes that lives as long as this process (``pipeline.pool.pool`` keeps
one): each worker answers on its own pipe (``pipeline.pool.serve`` is the other end), a thread
receives their messages (events for the run, results for calls) while the caller works.

A run's config travels as a ``Job`` message, units of shards go to whichever worker is
ready (so workers finish together), and a shard counts only when its worker reports it
committed. ``submit`` runs a picklable function in a worker (the report's plots).
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import pickle
import queue
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from pipeline.dataset.records import ShardResult
from pipeline.dataset.shards import ShardTask
from pipeline.errors import Interrupted
from pipeline.pool.messages import Job, unpack_error
from pipeline.pool.trace import mark

POLL_S = 0.25  # the progress display and signals are looked at this often
STOP_PATIENCE_S = 5.0  # an idle worker asked to stop gets this long before it is killed


@dataclass(frozen=True)
class Then:
    """What follows a run's shards (the report), prepared while the last shards finish:
    ``modules`` each idle worker imports, ``prepare`` runs on a thread of this process."""

    modules: tuple[str, ...] = ()
    prepare: Callable[[], None] | None = None

    def start(self, conns: list[mp_connection.Connection], idle: list[int]) -> None:
        """Send ``modules`` to the idle workers (taken off ``idle``), start ``prepare``."""
        mark("drained")
        while idle and self.modules:
            conns[idle.pop()].send(("warm", self.modules))
        if self.prepare is not None:
            threading.Thread(target=self.prepare, daemon=True, name="depth-then").start()


class WorkerPool:
    """``size`` worker processes, each answering on its own pipe; a thread receives
    their messages (events for the run, results for calls) while the caller works."""

    def __init__(self, size: int, ctx: Any) -> None:
        """``ctx``: the multiprocessing context to start the workers with."""
        self.size = size
        self.progress: Synchronized = ctx.Value("q", 0, lock=True)
        self.events: queue.Queue[tuple[int, tuple]] = queue.Queue()
        self.conns: list[mp_connection.Connection] = []
        self.procs: list[mp.process.BaseProcess] = []
        self.broken: str | None = None
        self.calls: dict[int, Future[Any]] = {}
        self.job: tuple[Job, int] | None = None  # the job the workers hold, and its id
        self._ids = itertools.count()
        self._lock = threading.Lock()
        for _ in range(size):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(theirs, self.progress), name="depth-worker")
            proc.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(proc)
        threading.Thread(target=self._receive, daemon=True, name="depth-pool").start()
        mark("pool-started", str(size))

    # -- the run -------------------------------------------------------------------

    def _open(self, job: Job) -> int:
        """The id of ``job`` in the workers: sent to every worker unless it is the open one
        (checked by ``check`` just before), which replaces any earlier job there."""
        if self.job is not None and self.job[0] == job:
            return self.job[1]
        job_id = next(self._ids)
        blob = pickle.dumps(("job", job_id, job))
        for conn in self.conns:
            conn.send_bytes(blob)
        self.job = (job, job_id)
        return job_id

    def _event(self, job_id: int, received: list[int]) -> tuple[int, tuple]:
        """The next message of this job (or a tick every ``POLL_S``); raises a worker's
        error, a dead worker, or a signal received meanwhile."""
        if received:  # raised here, at a safe point, never inside a lock
            raise KeyboardInterrupt if received[0] == signal.SIGINT else Interrupted(received[0])
        try:
            worker, msg = self.events.get(timeout=POLL_S)
        except queue.Empty:
            return -1, ("tick",)
        if msg[0] == "died":
            raise BrokenProcessPool(msg[1])
        if msg[1] != job_id:  # a late "ready" of an earlier job is no news
            return -1, ("tick",)
        if msg[0] == "error":
            raise unpack_error(msg[2], msg[3])
        return worker, msg

    def check(self, job: Job, received: list[int]) -> None:
        """``checks.augment_first`` for ``job`` in the first worker (which keeps the job's
        processor for the run). A refusal is raised here; the workers stay usable."""
        job_id = self._open(job)
        try:
            self.conns[0].send(("check", job_id))
            while self._event(job_id, received)[1][0] != "checked":
                pass
        except BaseException as exc:
            if not isinstance(exc, Exception) or isinstance(exc, BrokenProcessPool):
                self.kill()
            self.job = None
            raise

    def run(
        self,
        job: Job,
        work: Iterable[tuple[ShardTask, ...]],
        bar: Any,
        on_result: Callable[[ShardResult], None],
        received: list[int],
        then: Then | None = None,
    ) -> None:
        """Hand ``work`` out unit by unit to whichever worker is ready; return when every
        shard is committed. ``then``: what comes next, prepared by whoever is idle once
        the last unit is handed out. Any failure kills the workers (this pool is then
        unusable)."""
        todo = iter(work)  # a lazy plan: units are made as they are handed out
        unit = next(todo, None)
        left = 0  # shards handed out and not yet committed
        base, start = self.progress.value, bar.n
        try:
            job_id = self._open(job)
            idle = list(range(self.size))
            while left or unit is not None:
                while idle and unit is not None:
                    self.conns[idle.pop()].send(("work", job_id, unit))
                    left += len(unit)
                    unit = next(todo, None)
                if idle and unit is None and then is not None:
                    then.start(self.conns, idle)
                    then = None  # once
                worker, msg = self._event(job_id, received)
                if msg[0] == "ready":
                    idle.append(worker)
                elif msg[0] == "done":
                    left -= 1
                    on_result(msg[2])
                # read without the lock: a worker killed while holding it must not hang us
                bar.update(start + self.progress.get_obj().value - base - bar.n)
            for conn in self.conns:
                conn.send(("end", job_id))
            self.job = None
        except BaseException:
            self.kill()
            raise

    # -- calls (the report's plots) ------------------------------------------------

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` in a worker (round robin); its result arrives as a Future."""
        future: Future[Any] = Future()
        call_id = next(self._ids)
        with self._lock:
            if self.broken:
                raise BrokenProcessPool(self.broken)
            self.calls[call_id] = future
        self.conns[call_id % self.size].send(("call", call_id, fn, args, os.getcwd()))
        return future

    def executor(self) -> Executor:
        """This pool as a ``concurrent.futures.Executor`` (``submit`` only)."""
        return _PoolExecutor(self)

    # -- the receiving thread --------------------------------------------------------

    def _receive(self) -> None:
        """The receiving thread: until every worker's pipe is closed (or the pool killed)."""
        live = dict(enumerate(self.conns))
        sentinels = {p.sentinel: i for i, p in enumerate(self.procs)}
        with contextlib.suppress(OSError, ValueError, EOFError):  # the pool was killed
            self._receive_from(live, sentinels)

    def _receive_from(
        self, live: dict[int, mp_connection.Connection], sentinels: dict[int, int]
    ) -> None:
        while live:
            ready = mp_connection.wait([*live.values(), *sentinels])
            for item in ready:
                if item in sentinels:  # the process ended: read what it sent before
                    worker = sentinels.pop(item)
                    self._drain(worker, live)
                    self._died(worker)
                elif (worker := next((i for i, c in live.items() if c is item), -1)) >= 0:
                    try:
                        self._dispatch(worker, item.recv())
                    except (EOFError, OSError):  # its pipe closed: it is ending
                        live.pop(worker, None)
                        sentinels = {s: i for s, i in sentinels.items() if i != worker}
                        self._died(worker)

    def _drain(self, worker: int, live: dict[int, mp_connection.Connection]) -> None:
        """Messages a worker sent just before it exited (read before saying it died)."""
        conn = live.pop(worker, None)
        with contextlib.suppress(EOFError, OSError):
            while conn is not None and conn.poll():
                self._dispatch(worker, conn.recv())

    def _dispatch(self, worker: int, msg: tuple) -> None:
        if msg[0] in ("result", "failed"):
            with self._lock:
                future = self.calls.pop(msg[1], None)
            if future is not None:
                if msg[0] == "result":
                    future.set_result(msg[2])
                else:
                    future.set_exception(unpack_error(msg[2], msg[3]))
            return
        self.events.put((worker, msg))

    def _died(self, worker: int) -> None:
        code = self.procs[worker].exitcode
        reason = f"worker process {self.procs[worker].pid} ended (exit code {code})"
        with self._lock:
            if self.broken is None:
                self.broken = reason
            calls, self.calls = self.calls, {}
        for future in calls.values():
            future.set_exception(BrokenProcessPool(reason))
        self.events.put((worker, ("died", reason)))

    # -- the end -----------------------------------------------------------------------

    def alive(self) -> bool:
        return self.broken is None and all(p.is_alive() for p in self.procs)

    def kill(self) -> None:
        """Kill the workers now (mid-shard ones leave temporaries, removed by the runner)."""
        with self._lock:
            self.broken = self.broken or "the pool was stopped"
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.kill()
        for proc in self.procs:
            proc.join()
        for conn in self.conns:
            conn.close()

    def close(self) -> None:
        """Ask idle workers to stop; kill those that do not within ``STOP_PATIENCE_S``."""
        for conn in self.conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(("stop",))
        for proc in self.procs:
            proc.join(STOP_PATIENCE_S)
        self.kill()


class _PoolExecutor(Executor):
    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if kwargs:
            raise TypeError("the worker pool takes positional arguments only")
        return self.pool.submit(fn, *args)


def _serve(conn: mp_connection.Connection, progress: Synchronized) -> None:
    """A worker's entry point, referenced from here so the parent never imports the
    workers' libraries (``pipeline.pool.serve`` is preloaded in the forkserver)."""
    from pipeline.pool.serve import serve

    serve(conn, progress)
