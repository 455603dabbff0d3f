"""Running shard tasks: inline (one worker) or in the pool of worker processes
(``pipeline.process_pool``) that lives as long as this process, so the jobs of a sweep
(``-m``) pay for the workers' start and imports once. Drives one progress display
(``pipeline.progress``), handles Ctrl-C and SIGTERM at safe points (a failure kills every
worker; the next run starts a new pool).
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import multiprocessing.util  # noqa: F401  (its exit handler must be registered before ours)
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pipeline.config import Config
from pipeline.errors import Interrupted
from pipeline.messages import Job
from pipeline.process_pool import WorkerPool
from pipeline.records import ShardResult
from pipeline.shards import ShardTask, units
from pipeline.sources import Source


def execute(
    cfg: Config,
    chash: str,
    tasks: list[ShardTask],
    workers: int,
    bar: Any,
    on_result: Callable[[ShardResult], None],
    source: Source | None = None,
) -> None:
    """Run ``tasks``, calling ``on_result`` for each finished shard (in completion order).
    ``source``: the parent's opened source; workers get ``source.for_workers()``."""
    if not tasks:
        return
    work = units(tasks, cfg, workers)
    if workers <= 1 or len(work) <= 1:
        _run_inline(cfg, chash, work, bar, on_result, source)
        return
    job = Job(cfg, chash, source.for_workers() if source is not None else None)
    with _deferred_signals() as received:
        get(workers).run(job, work, bar, on_result, received)


def _run_inline(
    cfg: Config,
    chash: str,
    work: list[tuple[ShardTask, ...]],
    bar: Any,
    on_result: Callable[[ShardResult], None],
    source: Source | None,
) -> None:
    from pipeline.worker import ShardProcessor

    counter = mp.Value("q", 0, lock=True)
    proc = ShardProcessor(cfg, chash, source=source, progress=counter)
    start = bar.n
    for unit in work:
        shards = [proc.fill(unit[0])] if len(unit) == 1 else proc.fill_group(unit)
        for shard in shards:
            on_result(proc.commit(shard))
            bar.update(start + counter.value - bar.n)


# ---- the process-wide pool ---------------------------------------------------------------

_POOL: WorkerPool | None = None


def get(workers: int) -> WorkerPool:
    """The pool of this process with ``workers`` workers: the running one if it has that
    size and is healthy, else a new one (the old one is stopped)."""
    global _POOL
    if _POOL is not None and (_POOL.size != workers or not _POOL.alive()):
        shutdown()
    if _POOL is None:
        _POOL = WorkerPool(workers, pool_context())
    return _POOL


def current() -> WorkerPool | None:
    """The running pool, if any (the report draws its plots there)."""
    return _POOL if _POOL is not None and _POOL.alive() else None


@atexit.register
def shutdown() -> None:
    """Stop the pool (at exit, or when a run needs another size)."""
    global _POOL
    pool, _POOL = _POOL, None
    if pool is not None:
        pool.close()


@contextlib.contextmanager
def _deferred_signals() -> Iterator[list[int]]:
    """While the pool runs, Ctrl-C and SIGTERM only record themselves: an exception raised
    asynchronously inside a lock or a pipe write could leave either half-done. The run's
    loop raises them instead."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in signals}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (preemption, ``kill``) stops the run as Ctrl-C does: cleanly, resumable."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def pool_context() -> Any:
    """forkserver where available, preloading the worker loop so the heavy libraries are
    imported once; starting it early lets those imports overlap the parent's preparation."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.serve"])
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return ctx
