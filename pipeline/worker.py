"""One shard, start to finish, inside a worker: read -> augment -> encode -> write.

A worker builds its own source and augmenter from the plain ``Config`` (no OmegaConf),
writes the shard through its layout, then the shard's manifest, and returns only the
small ``ShardResult``. ``make bench`` times the same stage
functions (``finalize``, ``Augmenter``, ``codecs.encode_sample``, the layout's writer).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import cv2

from pipeline import codecs, metadata
from pipeline.augment import Augmenter
from pipeline.config import Config
from pipeline.errors import SampleError
from pipeline.faults import fault_point
from pipeline.layouts import layout_for
from pipeline.records import (
    InvalidPixels,
    SampleRecord,
    ShardManifest,
    ShardResult,
    Skip,
    StageTimes,
)
from pipeline.sample import Sample, camera_json
from pipeline.shards import ShardTask, fingerprint, input_runs, position_of
from pipeline.sources import Source, finalize, open_source
from pipeline.writers import ShardWriter, atomic_write, write_error


def output_key(sample: Sample, copy: int, copies: int) -> str:
    """The written key: the source key, with ``_c{copy}`` when there are several copies."""
    return sample.key if copies == 1 else f"{sample.key}_c{copy}"


class ShardProcessor:
    """Per-process state: the source, the augmenter and the output layout."""

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
        self.depth_scale = codecs.depth_scale(cfg.output)
        self.root = Path(cfg.output.dir)
        self.layout = layout_for(cfg.output.format, self.root, cfg.output.prefix)
        self.progress = progress

    def __call__(self, task: ShardTask) -> ShardResult:
        """Write shard ``task`` and its manifest; a failed write leaves no partial file."""
        with self._writing(f"shard {task.name}"):
            writer = self.layout.writer(task.name)
        manifest = ShardManifest(task.name, task.index, task.start, task.stop, self.config_hash)
        cfg = self.cfg
        manifest.source_fingerprint = fingerprint(
            self.source, task, cfg.augment.copies, cfg.output.order
        )
        timings = StageTimes()
        try:
            self._fill(task, writer, manifest, timings)
            t0 = time.perf_counter()
            with self._writing(f"shard {task.name}"):
                manifest.files = writer.commit()
            timings.write += time.perf_counter() - t0
        except BaseException:
            writer.abort()
            raise
        with self._writing(f"the manifest of shard {task.name}"):
            atomic_write(ShardManifest.path(self.root, task.name), manifest.encode())
        fault_point("shard-done")
        return ShardResult(manifest, timings)

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Turn an OSError while writing (full disk, read-only dir) into one clear line."""
        try:
            yield
        except OSError as exc:
            raise write_error(exc, what, self.root) from None

    def _fill(
        self, task: ShardTask, writer: ShardWriter, manifest: ShardManifest, timings: StageTimes
    ) -> None:
        """Read, check, augment, encode and add this shard's samples to ``writer``."""
        order = self.cfg.output.order
        for first, last, copies in input_runs(task, self.cfg.augment.copies, order):
            t0 = time.perf_counter()
            for index, item in zip(range(first, last), self.source.iter(first, last)):
                wanted = [c for c in copies if self._inside(task, index, c)]
                try:
                    if isinstance(item, SampleError):
                        raise item
                    sample, invalid = finalize(item, self.cfg.source)
                except SampleError as err:
                    timings.read += time.perf_counter() - t0
                    self._skip(err, manifest, len(wanted))
                    t0 = time.perf_counter()
                    continue
                timings.read += time.perf_counter() - t0
                manifest.stats.add_source(sample.image)
                for copy in wanted:
                    self._one(sample, invalid, index, copy, task, writer, manifest, timings)
                t0 = time.perf_counter()

    def _inside(self, task: ShardTask, index: int, copy: int) -> bool:
        cfg = self.cfg
        pos = position_of(index, copy, task.inputs, cfg.augment.copies, cfg.output.order)
        return task.start <= pos < task.stop

    def _one(
        self,
        sample: Sample,
        invalid: InvalidPixels,
        index: int,
        copy: int,
        task: ShardTask,
        writer: ShardWriter,
        manifest: ShardManifest,
        timings: StageTimes,
    ) -> None:
        """Augment, encode, write and record copy ``copy`` of input ``index``."""
        manifest.invalid_pixels.merge(invalid)
        t1 = time.perf_counter()
        try:
            out = self.augment(sample, index, copy)
        except Exception as exc:  # a transform failing on this sample's data
            detail = " ".join(str(exc).split())
            err = SampleError(sample.key, f"augmentation failed: {detail}")
            self._skip(err, manifest, 1)
            return
        key = output_key(sample, copy, self.cfg.augment.copies)
        camera = camera_json(out.camera, out.homography)
        if self.layout.needs_focal and camera["fx"] is None:
            err = SampleError(
                sample.key,
                f"no focal length for output={self.cfg.output.format} (the lists' focal "
                f"column); set source.camera.fx=... (pixels)",
            )
            self._skip(err, manifest, 1)
            return
        record = metadata.record(out, key, index, copy, camera, self.depth_scale)
        t2 = time.perf_counter()
        encoded = codecs.encode_sample(out, self.cfg.output, record)
        t3 = time.perf_counter()
        with self._writing(f"shard {task.name}"):
            writer.add(key, encoded.fields)
        manifest.members = sorted(set(manifest.members) | encoded.fields.keys())
        fault_point("sample-written")
        t4 = time.perf_counter()
        manifest.invalid_pixels.png16_too_far += encoded.too_far
        manifest.invalid_pixels.png16_too_near += encoded.too_near
        frac = manifest.stats.add_output(out.image, encoded.depth)
        timings.augment += t2 - t1
        timings.encode += t3 - t2
        timings.write += t4 - t3
        params = out.meta["augment"]["params"]
        manifest.samples.append(
            SampleRecord(key, index, copy, list(out.depth.shape), frac, params, camera)
        )
        self._advance(1)

    def _advance(self, n: int) -> None:
        if self.progress is not None and n:
            with self.progress.get_lock():
                self.progress.value += n

    def _skip(self, err: SampleError, manifest: ShardManifest, outputs: int) -> None:
        """Record ``outputs`` output samples of this shard lost to ``err`` (or raise it)."""
        if self.cfg.runtime.on_error != "skip":
            raise err
        manifest.skipped.extend(Skip(err.key, err.reason) for _ in range(outputs))
        self._advance(outputs)


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


def run_task(task: ShardTask) -> ShardResult:
    assert _PROCESSOR is not None, "init_worker was not called"
    return _PROCESSOR(task)
