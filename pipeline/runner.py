"""Orchestration only: plan -> claim output.dir -> execute the shards -> publish.

Each step is a call into its own module: ``claim`` (config record, resume, overwrite),
``pool`` (workers, signals, progress), ``publish`` (card, report, dataset_info.json) or,
for one slice of a sliced run, ``merge.write_slice``.
"""

from __future__ import annotations

import math
import os
import signal
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path

from omegaconf import DictConfig

from pipeline import claim, pool
from pipeline.augment import Augmenter, known_output_size
from pipeline.codecs import TIFF_COMPRESSIONS, encodings
from pipeline.config import Config, to_config
from pipeline.errors import Interrupted, PipelineError, SampleError
from pipeline.layouts import LAYOUTS, Layout, layout_for
from pipeline.merge import check_slice_options, write_slice
from pipeline.records import DatasetInfo, ShardManifest, ShardResult, StageTimes, Timings
from pipeline.sample import Sample
from pipeline.sources import Source, open_source
from pipeline.worker import ShardTask


@dataclass
class RunResult:
    """What a run produced; ``info`` is the content of ``dataset_info.json``."""

    out_dir: Path
    written: int
    skipped: int
    shards: int
    seconds: float
    info: DatasetInfo


def validate(cfg: Config) -> None:
    """Cheap checks of values a schema cannot express, naming the key."""
    checks = [
        (cfg.runtime.on_error in ("raise", "skip"), "runtime.on_error must be raise or skip"),
        (cfg.output.format in LAYOUTS, f"output.format must be one of {sorted(LAYOUTS)}"),
        (cfg.output.shard_size > 0, "output.shard_size must be > 0"),
        (cfg.augment.copies >= 1, "augment.copies must be >= 1"),
        (cfg.runtime.workers >= 0, "runtime.workers must be >= 0 (0 = all cores)"),
        (
            cfg.shard.num_shards >= 1 and 0 <= cfg.shard.index < cfg.shard.num_shards,
            "shard.index must be in [0, shard.num_shards)",
        ),
        (0 <= cfg.output.image.level <= 9, "output.image.level must be 0..9"),
        (
            cfg.output.depth.compression in TIFF_COMPRESSIONS,
            "output.depth.compression must be none, zlib, zstd or lzw",
        ),
        (cfg.output.depth.predictor in (1, 2, 3), "output.depth.predictor must be 1, 2 or 3"),
        (cfg.source.limit is None or cfg.source.limit >= 0, "source.limit must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise PipelineError(message)
    if cfg.report.enabled:
        from pipeline.report.pictures import check

        check(cfg.report)


def plan(total_outputs: int, cfg: Config) -> list[ShardTask]:
    """Shards of ``shard_size`` output samples; this job's contiguous slice of them."""
    size = cfg.output.shard_size
    count = math.ceil(total_outputs / size)
    k, m = cfg.shard.index, cfg.shard.num_shards
    lo, hi = k * count // m, (k + 1) * count // m
    return [
        ShardTask(i, f"{cfg.output.prefix}-{i:06d}", i * size, min((i + 1) * size, total_outputs))
        for i in range(lo, hi)
    ]


def prepare(cfg: Config) -> tuple[Source, int]:
    """Everything that can fail before touching ``output.dir``: values, transforms, source,
    crop sizes. Returns the source and the number of input samples to use."""
    validate(cfg)
    check_slice_options(cfg)
    Augmenter(cfg.augment)  # fail on a bad transform before touching the output
    source = open_source(cfg.source)
    n_inputs = len(source)
    if cfg.source.limit is not None:
        n_inputs = min(n_inputs, cfg.source.limit)
    if n_inputs == 0:
        if cfg.source.limit == 0:
            raise PipelineError("source.limit=0 selects no samples; raise or drop source.limit")
        path = source.identity().get("path")
        where = f" at source.path={path}" if path else ""
        raise PipelineError(
            f"source ({cfg.source.kind}){where} has no samples; check source.path, "
            f"source.split and source.num_samples"
        )
    size = source.size
    if size is None and cfg.augment.transforms:
        size = _first_size(source)
    if size is not None:
        known_output_size(cfg.augment, *size)
    return source, n_inputs


def _first_size(source: Source) -> tuple[int, int] | None:
    """The first sample's image size, for sources that do not know it up front: a crop
    larger than the images is then refused before the run (a bad first sample is left to
    the run's own per-sample error handling)."""
    for item in source.iter(0, 1):
        if isinstance(item, Sample):
            height, width = item.image.shape[:2]
            return int(height), int(width)
    return None


def available_cpus() -> int:
    """Cores this process may use: a SLURM/cgroup CPU set, not the whole node."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run(cfg: DictConfig | Config, overrides: list[str] | None = None) -> RunResult:
    """Load -> augment -> save into ``output.dir``; returns counts and the dataset info."""
    started = time.perf_counter()
    config = to_config(cfg)
    if config.runtime.workers != 1:
        pool.pool_context()  # warm up the workers' server while the source is opened
    source, n_inputs = prepare(config)
    root = Path(config.output.dir)
    layout = layout_for(config.output.format, root, config.output.prefix)
    tasks = plan(n_inputs * config.augment.copies, config)
    workers = config.runtime.workers or available_cpus()
    done: dict[str, ShardManifest] = {}
    fresh: list[ShardResult] = []
    with pool.sigterm_interrupts():
        try:
            chash = claim.claim(root, config, layout, [t.name for t in tasks])
            for t in tasks:
                if (m := claim.finished(root, t.name, t.start, t.stop, chash)) is not None:
                    done[t.name] = m
            todo = [t for t in tasks if t.name not in done]
            _execute(config, chash, layout, todo, workers, source, tasks, done, fresh)
            manifests = sorted([*done.values(), *(r.manifest for r in fresh)], key=_index)
            stage = StageTimes()
            for r in fresh:
                stage.merge(r.timings)
            timings = Timings(time.perf_counter() - started, workers, stage)
            info = DatasetInfo.build(
                chash,
                asdict(config),
                source.identity(),
                manifests,
                overrides or [],
                encodings(config.output),
                timings,
                resumed_shards=len(done),
            )
            if config.shard.num_shards > 1:  # dataset_info.json comes from merging slices
                write_slice(root, config, info, [t.name for t in tasks])
            else:
                from pipeline.publish import publish

                publish(root, config, manifests, info, started, source)
        except KeyboardInterrupt as exc:
            raise _interrupted(exc, len(done) + len(fresh), len(tasks)) from None
    counts = info.counts
    elapsed = time.perf_counter() - started
    return RunResult(root, counts.written, counts.skipped, len(manifests), elapsed, info)


def _index(m: ShardManifest) -> int:
    return m.index


def _execute(
    cfg: Config,
    chash: str,
    layout: Layout,
    todo: list[ShardTask],
    workers: int,
    source: Source,
    tasks: list[ShardTask],
    done: dict[str, ShardManifest],
    fresh: list[ShardResult],
) -> None:
    """Run the shards still to do with one progress bar. On any failure, no worker
    outlives the call, no temporary is left and the error is one line."""
    total = sum(t.stop - t.start for t in tasks)
    bar = pool.progress_bar(total, cfg.runtime.progress)
    bar.update(sum(t.stop - t.start for t in tasks if t.name in done))
    try:
        pool.execute(cfg, chash, todo, min(workers, max(len(todo), 1)), bar, fresh.append, source)
    except BaseException as exc:
        root = Path(cfg.output.dir)
        claim.clean_temporaries(root, layout, [t.name for t in todo])
        recorded = {r.manifest.shard for r in fresh}
        claim.drop_unrecorded(root, layout, [t.name for t in todo if t.name not in recorded])
        if isinstance(exc, SampleError):
            raise SampleError(
                exc.key,
                f"{exc.reason}; fix or remove this sample, or set runtime.on_error=skip to "
                f"skip and record bad samples",
            ) from None
        if isinstance(exc, BrokenProcessPool):
            raise PipelineError(
                f"a worker process died (killed by the OS: out of memory, or a crash) after "
                f"{len(fresh)} of {len(todo)} shard(s); the finished shards are kept: "
                f"re-run the same command to resume (with fewer runtime.workers if memory "
                f"is short)"
            ) from None
        raise
    finally:
        bar.close()


def _interrupted(exc: KeyboardInterrupt, finished: int, total: int) -> Interrupted:
    signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    if finished == total:
        detail = "all shards are finished; re-run the same command to write the report"
    else:
        detail = (
            f"{finished} of {total} shard(s) are finished and kept; re-run the same command "
            f"to resume"
        )
    return Interrupted(signum, detail)
