"""A pool of worker processes that lives as long as this process (``pipeline.pool`` keeps
one): each worker answers on its own pipe (``pipeline.serve`` is the other end), a thread
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
import pickle
import queue
import signal
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from pipeline.errors import Interrupted
from pipeline.messages import Job, unpack_error
from pipeline.records import ShardResult
from pipeline.shards import ShardTask

POLL_S = 0.25  # the progress display and signals are looked at this often
STOP_PATIENCE_S = 5.0  # an idle worker asked to stop gets this long before it is killed


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

    # -- the run -------------------------------------------------------------------

    def run(
        self,
        job: Job,
        work: list[tuple[ShardTask, ...]],
        bar: Any,
        on_result: Callable[[ShardResult], None],
        received: list[int],
    ) -> None:
        """Hand ``work`` out unit by unit to whichever worker is ready; return when every
        shard is committed. Any failure kills the workers (this pool is then unusable)."""
        job_id = next(self._ids)
        todo = deque(work)
        left = sum(len(u) for u in work)
        base, start = self.progress.value, bar.n
        try:
            blob = pickle.dumps(("job", job_id, job))
            for conn in self.conns:
                conn.send_bytes(blob)
            idle = list(range(self.size))
            while left:
                while idle and todo:
                    self.conns[idle.pop()].send(("work", job_id, todo.popleft()))
                if received:  # raised here, at a safe point, never inside a lock
                    raise (
                        KeyboardInterrupt
                        if received[0] == signal.SIGINT
                        else Interrupted(received[0])
                    )
                try:
                    worker, msg = self.events.get(timeout=POLL_S)
                except queue.Empty:
                    msg = ("tick", None)
                if msg[0] == "died":
                    raise BrokenProcessPool(msg[1])
                if msg[1] == job_id:  # (a late "ready" of an earlier run is no news)
                    if msg[0] == "ready":
                        idle.append(worker)
                    elif msg[0] == "done":
                        left -= 1
                        on_result(msg[2])
                    elif msg[0] == "error":
                        raise unpack_error(msg[2], msg[3])
                # read without the lock: a worker killed while holding it must not hang us
                bar.update(start + self.progress.get_obj().value - base - bar.n)
            for conn in self.conns:
                conn.send(("end", job_id))
        except BaseException:
            self.kill()
            raise

    def warm(self, modules: list[str]) -> None:
        """Have every worker import ``modules`` now, ahead of their use (e.g. the report's
        plotting code while the parent finishes the run)."""
        with contextlib.suppress(OSError, ValueError):
            for conn in self.conns:
                conn.send(("warm", modules))

    # -- calls (the report's plots) ------------------------------------------------

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` in a worker (round robin); its result arrives as a Future."""
        future: Future[Any] = Future()
        call_id = next(self._ids)
        with self._lock:
            if self.broken:
                raise BrokenProcessPool(self.broken)
            self.calls[call_id] = future
        self.conns[call_id % self.size].send(("call", call_id, fn, args))
        return future

    def executor(self) -> Executor:
        """This pool as a ``concurrent.futures.Executor`` (``submit`` only)."""
        return _PoolExecutor(self)

    # -- the receiving thread --------------------------------------------------------

    def _receive(self) -> None:
        live = dict(enumerate(self.conns))
        sentinels = {p.sentinel: i for i, p in enumerate(self.procs)}
        while live:
            try:
                ready = mp_connection.wait([*live.values(), *sentinels])
            except OSError:
                return
            for item in ready:
                if item in sentinels:
                    worker = sentinels.pop(item)
                    self._drain(worker, live)
                    self._died(worker)
                    continue
                worker = next(i for i, c in live.items() if c is item)
                try:
                    self._dispatch(worker, item.recv())
                except (EOFError, OSError):
                    live.pop(worker, None)

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
    workers' libraries (``pipeline.serve`` is preloaded in the forkserver)."""
    from pipeline.serve import serve

    serve(conn, progress)
