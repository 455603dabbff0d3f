"""One shard, start to finish, inside a worker: read -> augment -> encode -> write.

A worker builds its own source and augmenter from the plain ``Config`` (no OmegaConf),
writes the shard and its manifest itself and returns only the small manifest dict.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import cv2

from pipeline import codecs
from pipeline.augment import Augmenter
from pipeline.config import Config
from pipeline.errors import SampleError
from pipeline.sources import Source, finalize, open_source
from pipeline.stats import Stats
from pipeline.writers import WRITERS, atomic_write

MANIFEST_DIR = "manifests"


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
        cfg = self.cfg
        copies = cfg.augment.copies
        writer = WRITERS[cfg.output.format](self.root, task.name)
        stats = Stats()
        samples: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        invalid = {"zero": 0, "nonfinite": 0, "negative": 0, "out_of_range": 0}
        timings = {"read": 0.0, "augment": 0.0, "encode": 0.0, "write": 0.0}
        first, last = task.start // copies, (task.stop + copies - 1) // copies
        try:
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
                        err = SampleError(sample.key, f"augmentation failed: {exc}")
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
                    writer.add(key, fields)
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
                    if self.progress is not None:
                        with self.progress.get_lock():
                            self.progress.value += 1
                t0 = time.perf_counter()
            t4 = time.perf_counter()
            files = writer.commit()
            timings["write"] += time.perf_counter() - t4
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
            "samples": samples,
            "skipped": skipped,
            "invalid_pixels": invalid,
            "stats": stats.to_json(),
        }
        atomic_write(
            self.root / MANIFEST_DIR / f"{task.name}.json",
            json.dumps(manifest, sort_keys=True).encode(),
        )
        return manifest | {"timings": timings}

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
        if self.progress is not None:
            with self.progress.get_lock():
                self.progress.value += n


_PROCESSOR: ShardProcessor | None = None


def init_worker(cfg: Config, config_hash: str, progress: Synchronized) -> None:
    """Pool initializer: one source and augmenter per process, OpenCV single-threaded."""
    global _PROCESSOR
    cv2.setNumThreads(0)
    _PROCESSOR = ShardProcessor(cfg, config_hash, progress=progress)


def run_task(task: ShardTask) -> dict[str, Any]:
    assert _PROCESSOR is not None, "init_worker was not called"
    return _PROCESSOR(task)
