"""The loop a worker process runs: messages from the parent over one pipe, in order.

A worker lives as long as its pool (``pipeline.pool.pool``), which may serve several runs of
one process (the jobs of a sweep): each run's config travels as a ``("job", id, Job)``
message and the worker keeps that run's ``ShardProcessor`` until ``("end", id)``.

Messages in: ``job``, ``check`` (``checks.augment_first``), ``work`` (a unit of shards),
``end``, ``call`` (a picklable function, e.g. a report plot, run in the caller's working
directory), ``warm`` (import modules
ahead of their use), ``stop``. Messages out: ``checked``, ``ready`` (the unit's samples
are written: send the next one), ``done`` (a shard and its manifest are committed),
``error`` (with the remote traceback), ``result`` / ``failed`` (of a call).

A shard is committed (fsync, rename, manifest) by a committer thread while the next shard
fills, so the disk wait is off the critical path; the parent counts a shard only at
``done``, so a crash never counts an unfinished shard.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import queue
import signal
import sys
import threading
from multiprocessing.sharedctypes import Synchronized
from typing import Any


def _import_albumentations() -> None:
    """albumentations imports huggingface_hub and its HTTP stack (~0.3 s, a third of its
    import) for its model-hub mixin (``push_to_hub``, ``from_pretrained``), which workers
    never call: import it with huggingface_hub hidden (it then marks the hub unavailable),
    then unhide it, so code that needs huggingface_hub (a hub source) imports it as usual.
    torch stays hidden too (``albumentations_import``: 1-4 s and ~450 MB in every worker
    where torch is installed). Every worker pays this import before its first sample."""
    from pipeline.config import albumentations_import

    if "huggingface_hub" in sys.modules:
        albumentations_import.prepare()
        return
    sys.modules["huggingface_hub"] = None  # type: ignore[assignment]  (import -> ImportError)
    try:
        albumentations_import.prepare()
    finally:
        del sys.modules["huggingface_hub"]


_import_albumentations()

from pipeline.checks.checks import augment_first  # noqa: E402
from pipeline.dataset.shards import ShardTask  # noqa: E402
from pipeline.pool.messages import Job, pack_error  # noqa: E402
from pipeline.pool.trace import mark  # noqa: E402
from pipeline.pool.worker import Filling, ShardProcessor  # noqa: E402


class _Sender:
    """One pipe shared by the main thread and the committer thread."""

    def __init__(self, conn: mp_connection.Connection) -> None:
        self.conn, self.lock = conn, threading.Lock()

    def __call__(self, *msg: Any) -> None:
        with self.lock:
            self.conn.send(msg)


class _Committer:
    """Commits filled shards in order on a thread of its own and reports each ``done``;
    at most two wait, so a slow disk slows the filling down instead of piling up."""

    def __init__(self, send: _Sender) -> None:
        self.send = send
        self.jobs: queue.Queue[tuple[int, ShardProcessor, Filling] | None] = queue.Queue(2)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def put(self, job_id: int, proc: ShardProcessor, shard: Filling) -> None:
        self.jobs.put((job_id, proc, shard))

    def drain(self) -> None:
        """Wait until every shard handed over is committed (or failed)."""
        self.jobs.join()

    def _loop(self) -> None:
        while True:
            item = self.jobs.get()
            try:
                if item is None:
                    return
                job_id, proc, shard = item
                try:
                    self.send("done", job_id, proc.commit(shard))
                except BaseException as exc:
                    self.send("error", job_id, *pack_error(exc))
            finally:
                self.jobs.task_done()


def serve(conn: mp_connection.Connection, progress: Synchronized) -> None:
    """Worker process entry point: answer the parent's messages until ``stop``.

    Ctrl-C and SIGTERM are the parent's to handle (it kills the workers and removes their
    temporaries); a worker whose parent died (``kill -9``) exits instead of lingering.
    """
    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    cv2.setNumThreads(0)
    send = _Sender(conn)
    committer = _Committer(send)
    jobs: dict[int, Job] = {}
    procs: dict[int, ShardProcessor] = {}
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        kind = msg[0]
        if kind == "stop":
            committer.drain()
            return
        job_id = msg[1] if kind in ("job", "end", "work", "check") else None
        try:
            if kind == "job":  # one job at a time: a new one replaces any other
                committer.drain()
                jobs, procs = {job_id: msg[2]}, {}
                os.chdir(msg[2].cwd)
            elif kind == "end":
                committer.drain()
                jobs.pop(job_id, None)
                procs.pop(job_id, None)
            elif kind == "check":
                proc = _processor(job_id, jobs, procs, progress)
                job = jobs[job_id]
                augment_first(job.source_cfg, job.augment, job.output, proc.source)
                send("checked", job_id)
            elif kind == "work":
                _work(job_id, _processor(job_id, jobs, procs, progress), msg[2], committer)
                mark("filled")
                send("ready", job_id)
            elif kind == "warm":
                for name in msg[1]:
                    importlib.import_module(name)
            elif kind == "call":
                call_id, fn, args = msg[1], msg[2], msg[3]
                try:
                    os.chdir(msg[4])
                    send("result", call_id, fn(*args))
                except Exception as exc:
                    send("failed", call_id, *pack_error(exc))
        except Exception as exc:
            send("error", job_id, *pack_error(exc))


def _processor(
    job_id: int, jobs: dict[int, Job], procs: dict[int, ShardProcessor], progress: Synchronized
) -> ShardProcessor:
    """The job's processor, built on first use (it opens the source unless the job brought
    the parent's) and kept until the job ends."""
    if job_id not in procs:
        job = jobs[job_id]
        procs[job_id] = ShardProcessor(job, progress)
    return procs[job_id]


def _work(
    job_id: int, proc: ShardProcessor, unit: tuple[ShardTask, ...], committer: _Committer
) -> None:
    """Fill the unit's shards, handing each to the committer as soon as it is complete."""
    mark("fill", ",".join(t.name for t in unit))
    for shard in proc.fill_unit(unit):
        committer.put(job_id, proc, shard)


def _exit_with_parent() -> None:
    """Exit this worker as soon as the parent is gone (the parent's sentinel pipe closes).

    Without it an orphan would wait forever for its next message after ``kill -9``.
    """
    parent = mp.parent_process()
    if parent is None:
        return
    mp_connection.wait([parent.sentinel])
    os._exit(1)
