"""One shard, start to finish, inside a worker: read -> augment -> encode -> write.

A worker builds its own source and augmenter from the plain ``Config`` (no OmegaConf),
writes the shard and its manifest itself and returns only the small manifest dict.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import cv2

from pipeline import codecs
from pipeline.augment import Augmenter
from pipeline.config import Config
from pipeline.errors import SampleError
from pipeline.faults import fault_point
from pipeline.resume import MANIFEST_DIR
from pipeline.sources import Source, finalize, open_source
from pipeline.stats import Stats
from pipeline.writers import WRITERS, ShardWriter, atomic_write, write_error

__all__ = ["MANIFEST_DIR", "ShardProcessor", "ShardTask", "init_worker", "run_task"]


@dataclass(frozen=True)
class ShardTask:
    """Output samples ``start`` .. ``stop`` (exclusive) go into shard ``name``."""

    index: int
    name: str
    start: int
    stop: int


class ShardProcessor:
    """Per-process state: the source, the augmenter and the output settings."""

    def __init__(
        self,
        cfg: Config,
        config_hash: str,
        source: Source | None = None,
        progress: Synchronized | None = None,
    ) -> None:
        self.cfg = cfg
        self.config_hash = config_hash
        self.source = source if source is not None else open_source(cfg.source)
        self.augment = Augmenter(cfg.augment)
        self.root = Path(cfg.output.dir)
        self.progress = progress

    def __call__(self, task: ShardTask) -> dict[str, Any]:
        """Write shard ``task`` and its manifest; a failed write leaves no partial file."""
        with self._writing(f"shard {task.name}"):
            writer = WRITERS[self.cfg.output.format](self.root, task.name)
        try:
            body, timings = self._fill(task, writer)
            t0 = time.perf_counter()
            with self._writing(f"shard {task.name}"):
                files = writer.commit()
            timings["write"] += time.perf_counter() - t0
        except BaseException:
            writer.abort()
            raise
        manifest = {
            "shard": task.name,
            "index": task.index,
            "start": task.start,
            "stop": task.stop,
            "config_hash": self.config_hash,
            "files": files,
            **body,
        }
        with self._writing(f"the manifest of shard {task.name}"):
            atomic_write(
                self.root / MANIFEST_DIR / f"{task.name}.json",
                json.dumps(manifest, sort_keys=True).encode(),
            )
        fault_point("shard-done")
        return manifest | {"timings": timings}

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Turn an OSError while writing (full disk, read-only dir) into one clear line."""
        try:
            yield
        except OSError as exc:
            raise write_error(exc, what, self.root) from None

    def _fill(self, task: ShardTask, writer: ShardWriter) -> tuple[dict[str, Any], dict]:
        """Read, check, augment, encode and add this shard's samples to ``writer``."""
        cfg = self.cfg
        copies = cfg.augment.copies
        stats = Stats()
        samples: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        invalid = {"zero": 0, "nonfinite": 0, "negative": 0, "out_of_range": 0}
        timings = {"read": 0.0, "augment": 0.0, "encode": 0.0, "write": 0.0}
        first, last = task.start // copies, (task.stop + copies - 1) // copies
        t0 = time.perf_counter()
        for index, item in zip(range(first, last), self.source.iter(first, last)):
            try:
                if isinstance(item, SampleError):
                    raise item
                sample, counts = finalize(item, cfg.source)
            except SampleError as err:
                timings["read"] += time.perf_counter() - t0
                self._skip(err, skipped, task, index, copies)
                t0 = time.perf_counter()
                continue
            timings["read"] += time.perf_counter() - t0
            stats.add_source(sample.image)
            for copy in range(copies):
                out_index = index * copies + copy
                if not task.start <= out_index < task.stop:
                    continue
                for name, value in counts.items():
                    invalid[name] += value
                t1 = time.perf_counter()
                try:
                    out = self.augment(sample, index, copy)
                except Exception as exc:  # a transform failing on this sample's data
                    detail = " ".join(str(exc).split())
                    err = SampleError(sample.key, f"augmentation failed: {detail}")
                    self._skip(err, skipped, task, index, copies, copy)
                    continue
                key = sample.key if copies == 1 else f"{sample.key}_c{copy}"
                meta = {"key": key, **out.meta}
                t2 = time.perf_counter()
                fields = {
                    "png": codecs.encode_png(out.image, cfg.output.image),
                    "depth.tiff": codecs.encode_tiff(out.depth, cfg.output.depth),
                    "json": codecs.encode_json(meta),
                }
                t3 = time.perf_counter()
                with self._writing(f"shard {task.name}"):
                    writer.add(key, fields)
                fault_point("sample-written")
                t4 = time.perf_counter()
                frac = stats.add_output(out.image, out.depth)
                timings["augment"] += t2 - t1
                timings["encode"] += t3 - t2
                timings["write"] += t4 - t3
                samples.append(
                    {
                        "key": key,
                        "index": index,
                        "copy": copy,
                        "shape": list(out.depth.shape),
                        "invalid_fraction": frac,
                        "params": out.meta["augment"]["params"],
                    }
                )
                self._advance(1)
            t0 = time.perf_counter()
        body = {
            "samples": samples,
            "skipped": skipped,
            "invalid_pixels": invalid,
            "stats": stats.to_json(),
        }
        return body, timings

    def _advance(self, n: int) -> None:
        if self.progress is not None and n:
            with self.progress.get_lock():
                self.progress.value += n

    def _skip(
        self,
        err: SampleError,
        skipped: list[dict[str, str]],
        task: ShardTask,
        index: int,
        copies: int,
        copy: int | None = None,
    ) -> None:
        if self.cfg.runtime.on_error != "skip":
            raise err
        outs = range(copies) if copy is None else [copy]
        n = sum(task.start <= index * copies + c < task.stop for c in outs)
        skipped.extend({"key": err.key, "reason": err.reason} for _ in range(n))
        self._advance(n)


_PROCESSOR: ShardProcessor | None = None


def init_worker(
    cfg: Config, config_hash: str, progress: Synchronized, source: Source | None = None
) -> None:
    """Pool initializer: one source and augmenter per process, OpenCV single-threaded.

    Ctrl-C and SIGTERM are the parent's to handle (it kills the workers and removes their
    temporaries); a worker whose parent died (``kill -9``) exits instead of lingering.
    """
    global _PROCESSOR
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    cv2.setNumThreads(0)
    _PROCESSOR = ShardProcessor(cfg, config_hash, source=source, progress=progress)


def _exit_with_parent() -> None:
    """Exit this worker as soon as the parent is gone (the parent's sentinel pipe closes).

    The pool's own machinery would leave an orphan blocked forever after ``kill -9``.
    """
    parent = mp.parent_process()
    if parent is None:
        return
    mp_connection.wait([parent.sentinel])
    os._exit(1)


def run_task(task: ShardTask) -> dict[str, Any]:
    assert _PROCESSOR is not None, "init_worker was not called"
    return _PROCESSOR(task)
