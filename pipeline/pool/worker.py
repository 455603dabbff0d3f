"""Shards, start to finish, inside a worker: read -> augment -> encode -> write.

A ``ShardProcessor`` holds one run's source, augmenter and output layout, each built from
its own config section (a ``messages.Job``; no OmegaConf). ``fill`` writes a shard's
samples, ``commit`` publishes the shard and then its manifest (the worker loop in
``pipeline.pool.serve`` commits in a thread while the next shard fills); ``fill_group``
fills several shards that share their inputs, reading each input once (``augment.copies``
with ``output.order=spread``).
``make bench`` times the same stage functions (``finalize``, ``Augmenter``,
``codecs.encode_sample``, the layout's writer).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing.sharedctypes import Synchronized

from pipeline.augment.parts import augmenter_for
from pipeline.config.mixture import part_outputs
from pipeline.dataset import store
from pipeline.dataset.layouts import layout_for
from pipeline.dataset.records import (
    InvalidPixels,
    SampleRecord,
    ShardManifest,
    ShardResult,
    Skip,
    StageTimes,
)
from pipeline.dataset.shards import ShardTask
from pipeline.dataset.writers import ShardWriter, atomic_write, write_error
from pipeline.encode import codecs
from pipeline.encode.record import Record
from pipeline.errors import SampleError
from pipeline.pool.faults import fault_point
from pipeline.pool.messages import Job
from pipeline.pool.trace import mark
from pipeline.sample import Sample
from pipeline.sources import finalize, open_source


@dataclass
class Filling:
    """A shard being written: its task, open writer, manifest so far and stage times."""

    task: ShardTask
    writer: ShardWriter
    manifest: ShardManifest
    timings: StageTimes


# The shards that want an input, each with the copies of it they want.
Wanting = list[tuple[Filling, Sequence[int]]]


def _uploaded() -> None:
    fault_point("shard-uploaded")


class ShardProcessor:
    """Per-process state: the source, the augmenter and the output layout."""

    def __init__(self, job: Job, progress: Synchronized | None = None) -> None:
        self.config_hash = job.config_hash
        self.source_cfg = job.source_cfg
        self.source = job.source if job.source is not None else open_source(job.source_cfg)
        self.augment = augmenter_for(job.augment, job.source_cfg)
        self.output = job.output
        self.outputs = part_outputs(job.output, job.source_cfg)  # a mixture's, by part
        self.root = store.local_root(job.output)  # a URL's staging directory
        self.remote = store.remote_of(job.output)
        self.layout = layout_for(job.output.format, self.root, job.output.prefix)
        self.placement = job.placement
        self.skip_errors = job.on_error == "skip"
        self.plausible = job.plausible
        self.progress = progress
        self.written = 0  # samples this processor wrote

    def __call__(self, task: ShardTask) -> ShardResult:
        """Write shard ``task`` and its manifest; a failed write leaves no partial file."""
        return self.commit(self.fill(task))

    def open(self, task: ShardTask) -> Filling:
        """A writer and an empty manifest for shard ``task``."""
        with self._writing(f"shard {task.name}"):
            writer = self.layout.writer(task.name, task.count)
        manifest = ShardManifest(task.name, task.index, task.start, task.stop, self.config_hash)
        manifest.source_fingerprint = self.placement.fingerprint(self.source, task)
        return Filling(task, writer, manifest, StageTimes())

    def fill(self, task: ShardTask) -> Filling:
        """Read, augment, encode and add the samples of shard ``task`` (not yet committed)."""
        shard = self.open(task)
        try:
            for first, last, copies in self.placement.input_runs(task):
                for _ in self._inputs(first, last, partial(self._inside, shard, copies)):
                    pass
        except BaseException:
            shard.writer.abort()
            raise
        return shard

    def fill_unit(self, unit: tuple[ShardTask, ...]) -> Iterable[Filling]:
        """The shards of one unit of work (``shards.units``): one alone, or several that
        share their inputs filled together; each yielded once its last sample is in."""
        return [self.fill(unit[0])] if len(unit) == 1 else self.fill_group(unit)

    def fill_group(self, tasks: tuple[ShardTask, ...]) -> Iterator[Filling]:
        """Fill shards that each read one run of inputs (``shards.units``) reading every
        input of their union once; yield each shard as soon as its last sample is in.

        Every shard gets exactly the samples, in the order, that ``fill`` gives it: a
        shard's positions map to increasing inputs of one copy."""
        runs = [self.placement.input_runs(t)[0] for t in tasks]
        lo, hi = min(r[0] for r in runs), max(r[1] for r in runs)
        shards: list[Filling] = []
        done: set[str] = set()
        try:
            shards.extend(self.open(t) for t in tasks)

            def wanting(index: int) -> Wanting:
                return [(s, run[2]) for s, run in zip(shards, runs) if run[0] <= index < run[1]]

            for index in self._inputs(lo, hi, wanting):
                for shard, run in zip(shards, runs):
                    if index == run[1] - 1:
                        done.add(shard.task.name)
                        yield shard
        except BaseException:
            for shard in shards:
                if shard.task.name not in done:  # the caller owns those yielded
                    shard.writer.abort()
            raise

    def _inputs(self, first: int, last: int, wanting: Callable[[int], Wanting]) -> Iterator[int]:
        """Read inputs ``first`` .. ``last`` once each and write the copies of each that
        ``wanting(index)`` names into their shards; yield each index once its copies are in
        (the one read -> finalize -> skip -> write loop of ``fill`` and ``fill_group``)."""
        t0 = time.perf_counter()
        for index, item in zip(range(first, last), self.source.iter(first, last)):
            here = wanting(index)
            read = self._read(item, here, t0)
            if read is not None:
                for shard, copies in here:
                    shard.manifest.stats.add_source(read[0].image)
                    for copy in copies:
                        self._one(*read, index, copy, shard)
            yield index
            t0 = time.perf_counter()

    def _read(
        self, item: Sample | SampleError, here: Wanting, t0: float
    ) -> tuple[Sample, InvalidPixels] | None:
        """The finalized input, or None when it is skipped (recorded for every copy a shard
        wanted; raised unless ``on_error=skip``). Read time goes to the first shard."""
        try:
            if isinstance(item, SampleError):
                raise item
            return finalize(item, self.source_cfg, self.plausible)
        except SampleError as err:
            for shard, copies in here:
                self._skip(err, shard.manifest, len(copies))
            return None
        finally:
            if here:
                here[0][0].timings.read += time.perf_counter() - t0

    def commit(self, shard: Filling) -> ShardResult:
        """Publish a filled shard, then its manifest (which marks it complete)."""
        task, manifest = shard.task, shard.manifest
        mark("commit", task.name)
        t0 = time.perf_counter()
        manifest.seal()
        try:
            with self._writing(f"shard {task.name}"):
                manifest.files = shard.writer.commit()
        except BaseException:
            shard.writer.abort()
            raise
        with self._writing(f"the manifest of shard {task.name}"):
            path = ShardManifest.path(self.root, task.name)
            atomic_write(path, manifest.encode())
            if self.remote is not None:  # upload the shard, then its manifest
                rel = path.relative_to(self.root).as_posix()
                self.remote.publish_shard(self.root, manifest.files, rel, _uploaded)
        shard.timings.write += time.perf_counter() - t0
        fault_point("shard-done")
        mark("committed", task.name)
        return ShardResult(manifest, shard.timings)

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Turn an OSError while writing (full disk, read-only dir) into one clear line."""
        try:
            yield
        except OSError as exc:
            raise write_error(exc, what, self.output.dir) from None

    def _inside(self, shard: Filling, copies: range, index: int) -> Wanting:
        """``shard`` with those ``copies`` of input ``index`` whose positions fall in it."""
        task, place = shard.task, self.placement.position_of
        return [
            (shard, [c for c in copies if task.start <= place(index, c, task.inputs) < task.stop])
        ]

    def _one(
        self, sample: Sample, invalid: InvalidPixels, index: int, copy: int, shard: Filling
    ) -> None:
        """Augment, encode, write and record copy ``copy`` of input ``index`` in ``shard``."""
        manifest, timings = shard.manifest, shard.timings
        manifest.invalid_pixels.merge(invalid)
        t1 = time.perf_counter()
        try:
            out = self.augment(sample, index, copy)
        except Exception as exc:  # a transform failing on this sample's data
            detail = " ".join(str(exc).split())
            err = SampleError(sample.key, f"augmentation failed: {detail}")
            self._skip(err, manifest, 1)
            return
        output = self.outputs.get(out.origin.dataset, self.output)
        record = Record.of(out, codecs.depth_encoding(output).scale)
        if self.layout.needs_focal and not record.camera.known:
            err = SampleError(
                sample.key,
                f"no focal length for output={self.output.format} (the lists' focal "
                f"column); set source.camera.fx=... (pixels)",
            )
            self._skip(err, manifest, 1)
            return
        t2 = time.perf_counter()
        encoded = codecs.encode_sample(out, output, record.to_json())
        t3 = time.perf_counter()
        with self._writing(f"shard {shard.task.name}"):
            shard.writer.add(out.key, encoded.fields)
        manifest.members = sorted(set(manifest.members) | encoded.fields.keys())
        fault_point("sample-written")
        if not self.written:
            mark("first-sample", out.key)
        self.written += 1
        t4 = time.perf_counter()
        manifest.invalid_pixels.png16_too_far += encoded.too_far
        manifest.invalid_pixels.png16_too_near += encoded.too_near
        frac = manifest.stats_for(out.origin.dataset).add_output(out.image, encoded.depth)
        timings.augment += t2 - t1
        timings.encode += t3 - t2
        timings.write += t4 - t3
        manifest.samples.append(SampleRecord.of(record, list(out.depth.shape), frac))
        self._advance(1)

    def _advance(self, n: int) -> None:
        if self.progress is not None and n:
            with self.progress.get_lock():
                self.progress.value += n

    def _skip(self, err: SampleError, manifest: ShardManifest, outputs: int) -> None:
        """Record ``outputs`` output samples of this shard lost to ``err`` (or raise it)."""
        if not self.skip_errors:
            raise err
        manifest.skipped.extend(Skip(err.key, err.reason) for _ in range(outputs))
        self._advance(outputs)
