"""Running shard tasks: inline (one worker) or in a forkserver process pool, driving one
progress display (``pipeline.progress``), Ctrl-C / SIGTERM handled at safe points, and no
worker outliving a failure.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from pipeline.config import Config
from pipeline.errors import Interrupted
from pipeline.records import ShardResult
from pipeline.sources import Source
from pipeline.worker import ShardProcessor, ShardTask, init_worker, run_task


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
    if workers <= 1 or len(tasks) <= 1:
        _run_inline(cfg, chash, tasks, bar, on_result, source)
    else:
        shared = source.for_workers() if source is not None else None
        _run_pool(cfg, chash, tasks, workers, bar, on_result, shared)


def _run_inline(
    cfg: Config,
    chash: str,
    tasks: list[ShardTask],
    bar: Any,
    on_result: Callable[[ShardResult], None],
    source: Source | None,
) -> None:
    counter = mp.Value("q", 0, lock=True)
    proc = ShardProcessor(cfg, chash, source=source, progress=counter)
    start = bar.n
    for task in tasks:
        on_result(proc(task))
        bar.update(start + counter.value - bar.n)


def _run_pool(
    cfg: Config,
    chash: str,
    tasks: list[ShardTask],
    workers: int,
    bar: Any,
    on_result: Callable[[ShardResult], None],
    shared: Source | None,
) -> None:
    """A forkserver pool; workers ignore Ctrl-C, the parent kills them on failure.
    ``shared``: a source the parent opened that is cheap to pickle (else workers reopen)."""
    ctx = pool_context()
    counter = ctx.Value("q", 0, lock=True)
    start = bar.n
    with (
        _deferred_signals() as received,
        ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=init_worker,
            initargs=(cfg, chash, counter, shared),
        ) as pool,
    ):
        pending: set[Future[ShardResult]] = {pool.submit(run_task, t) for t in tasks}
        try:
            while pending:
                if received:  # raised here, at a safe point, never inside the pool's locks
                    raise (
                        KeyboardInterrupt
                        if received[0] == signal.SIGINT
                        else Interrupted(received[0])
                    )
                finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for fut in finished:
                    on_result(fut.result())
                # read without the lock: a worker killed while holding it must not hang us
                bar.update(start + counter.get_obj().value - bar.n)
        except BaseException:
            _stop_pool(pool)
            raise


@contextlib.contextmanager
def _deferred_signals() -> Iterator[list[int]]:
    """While the pool runs, Ctrl-C and SIGTERM only record themselves: an exception raised
    asynchronously inside concurrent.futures (e.g. while ``wait`` holds the futures' locks)
    can leave a lock held and hang the shutdown. The wait loop raises them instead."""
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
    """forkserver where available, preloading the worker module so the heavy libraries are
    imported once; starting it early lets those imports overlap the parent's preparation."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.worker"])
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return ctx


def worker_processes(pool: ProcessPoolExecutor) -> list[mp.process.BaseProcess]:
    """The pool's live worker processes.

    ``concurrent.futures`` has no public way to reach them, and its ``shutdown`` waits for
    running tasks to finish; to stop at once we kill them, which needs the private
    ``_processes`` mapping (pid -> Process). ``tests/test_private_apis.py`` fails if a
    Python release changes it."""
    return list((getattr(pool, "_processes", None) or {}).values())


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Kill the workers now (mid-shard ones leave temporaries, removed by the caller)."""
    for proc in worker_processes(pool):
        with contextlib.suppress(Exception):
            proc.kill()
    pool.shutdown(wait=True, cancel_futures=True)
