"""Running shard tasks: inline (one worker) or in the pool of worker processes
(``pipeline.pool.process_pool``) that lives as long as this process, so the jobs of a sweep
(``-m``) pay for the workers' start and imports once. Drives one progress display
(``pipeline.run.progress``), handles Ctrl-C and SIGTERM at safe points (a failure kills every
worker; the next run starts a new pool).
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import multiprocessing.util  # noqa: F401  (its exit handler must be registered before ours)
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from pipeline.config.schema import Config
from pipeline.dataset.records import ShardResult
from pipeline.dataset.shards import ShardTask
from pipeline.errors import Interrupted
from pipeline.pool import forkserver
from pipeline.pool.messages import Job
from pipeline.pool.process_pool import Then, WorkerPool
from pipeline.sources import Source


def execute(
    cfg: Config,
    chash: str,
    tasks: Sequence[ShardTask],
    workers: int,
    bar: Any,
    on_result: Callable[[ShardResult], None],
    source: Source | None = None,
    then: Then | None = None,
) -> None:
    """Run ``tasks``, calling ``on_result`` for each finished shard (in completion order).
    ``source``: the parent's opened source; workers get ``source.for_workers()``.
    ``then``: what follows, prepared by idle workers and this process at the end."""
    if not tasks:
        return
    job = Job.of(cfg, chash, source)
    work = job.placement.units(tasks, workers)
    if workers <= 1 or len(work) <= 1:
        _run_inline(job, work, bar, on_result)
        return
    job = Job.of(cfg, chash, source.for_workers() if source is not None else None)
    with _deferred_signals() as received:
        get(min(workers, len(work)), workers).run(job, work, bar, on_result, received, then)


def check_first(
    cfg: Config, chash: str, tasks: Sequence[ShardTask], workers: int, source: Source
) -> None:
    """``checks.augment_first`` before output.dir is touched: in a worker when the run will
    use the pool (which then keeps the worker's processor for the run, and this process
    never imports albumentations), else here."""
    job = Job.of(cfg, chash, source)
    work = job.placement.units(tasks, workers)
    if workers <= 1 or len(work) <= 1:
        from pipeline.checks.checks import augment_first

        augment_first(job.source_cfg, job.augment, job.output, source)
        return
    job = Job.of(cfg, chash, source.for_workers())
    with _deferred_signals() as received:
        get(min(workers, len(work)), workers).check(job, received)


def _run_inline(
    job: Job,
    work: Iterable[tuple[ShardTask, ...]],
    bar: Any,
    on_result: Callable[[ShardResult], None],
) -> None:
    from pipeline.pool.worker import ShardProcessor

    counter = mp.Value("q", 0, lock=True)
    proc = ShardProcessor(job, progress=counter)
    start = bar.n
    for unit in work:
        for shard in proc.fill_unit(unit):
            on_result(proc.commit(shard))
            bar.update(start + counter.value - bar.n)


# ---- the process-wide pool ---------------------------------------------------------------

_POOL: WorkerPool | None = None


def get(needed: int, most: int) -> WorkerPool:
    """A pool of ``needed`` .. ``most`` workers: the running one if it fits and is
    healthy (the next job of a sweep), else a new one of ``needed`` (the old one stops)."""
    global _POOL
    if _POOL is not None and not (needed <= _POOL.size <= most and _POOL.alive()):
        shutdown()
    if _POOL is None:
        _POOL = WorkerPool(needed, pool_context())
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
    """The workers' multiprocessing context (``pipeline.pool.forkserver``); calling it early lets
    the workers' imports overlap this process's preparation."""
    return forkserver.context()
