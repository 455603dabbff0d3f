"""Orchestration: plan shards, skip finished ones, run the rest in a process pool,
then write the dataset card, the report and ``dataset_info.json`` (last)."""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from pipeline import metadata, resume
from pipeline.augment import Augmenter, known_output_size
from pipeline.codecs import TIFF_COMPRESSIONS
from pipeline.config import Config, to_config
from pipeline.errors import Interrupted, PipelineError, SampleError
from pipeline.faults import fault_point
from pipeline.merge import check_slice_options, write_slice
from pipeline.sample import Sample
from pipeline.sources import Source, open_source
from pipeline.stats import Stats
from pipeline.worker import ShardProcessor, ShardTask, init_worker, run_task
from pipeline.writers import WRITERS, atomic_write, write_error


@dataclass
class RunResult:
    """What a run produced; ``info`` is the content of ``dataset_info.json``."""

    out_dir: Path
    written: int
    skipped: int
    shards: int
    seconds: float
    info: dict[str, Any]


def validate(cfg: Config) -> None:
    """Cheap checks of values a schema cannot express, naming the key."""
    checks = [
        (cfg.runtime.on_error in ("raise", "skip"), "runtime.on_error must be raise or skip"),
        (cfg.output.format in WRITERS, f"output.format must be one of {sorted(WRITERS)}"),
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
        where = f" at source.path={cfg.source.path}" if cfg.source.path else ""
        raise PipelineError(
            f"source ({cfg.source.kind}){where} has no samples; check source.path, "
            f"source.split and source.num_samples"
        )
    size = getattr(source, "size", None) or (
        (cfg.source.height, cfg.source.width) if cfg.source.kind == "synthetic" else None
    )
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


def claim_output(root: Path, cfg: Config, tasks: list[ShardTask]) -> str:
    """Make ``root`` ours for this config: writable, same config (or overwrite), no dead
    run's temporaries; record the config lock. Returns the config hash."""
    metadata.check_writable(root)
    metadata.check_ours(root)
    chash = metadata.config_hash(cfg)
    own = [t.name for t in tasks]
    if cfg.output.overwrite:
        try:
            old = metadata.read_lock(root)
        except PipelineError:  # unreadable: replaced anyway
            old = None
        prefixes = {cfg.output.prefix}
        if old is not None:
            prefixes.add(str(old.get("config", {}).get("output", {}).get("prefix", "")))
        resume.remove_dataset(root, chash, own, prefixes - {""})
    else:
        metadata.check_lock(root, cfg)
    resume.clean_temporaries(root, own)
    metadata.write_lock(root, cfg)
    return chash


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="sample",
        disable=not enabled,
        dynamic_ncols=True,
        file=sys.stderr,
        desc="depth-pipeline",
    )


def _execute(
    cfg: Config,
    chash: str,
    tasks: list[ShardTask],
    workers: int,
    bar: Any,
    results: list,
    source: Source | None = None,
) -> None:
    """Run shard tasks inline (1 worker) or in a process pool, appending manifests to
    ``results``. On any failure, no worker outlives the call and no temporary is left."""
    if not tasks:
        return
    try:
        if workers <= 1 or len(tasks) <= 1:
            _run_inline(cfg, chash, tasks, bar, results, source)
        else:
            shared = getattr(source, "for_workers", lambda: None)()
            _run_pool(cfg, chash, tasks, workers, bar, results, shared)
    except BaseException as exc:
        root = Path(cfg.output.dir)
        resume.clean_temporaries(root, [t.name for t in tasks])
        recorded = {m["shard"] for m in results}
        resume.drop_unrecorded(root, [t.name for t in tasks if t.name not in recorded])
        if isinstance(exc, SampleError):
            raise SampleError(
                exc.key,
                f"{exc.reason}; fix or remove this sample, or set runtime.on_error=skip to "
                f"skip and record bad samples",
            ) from None
        if isinstance(exc, BrokenProcessPool):
            raise PipelineError(
                f"a worker process died (killed by the OS: out of memory, or a crash) after "
                f"{len(results)} of {len(tasks)} shard(s); the finished shards are kept: "
                f"re-run the same command to resume (with fewer runtime.workers if memory "
                f"is short)"
            ) from None
        raise


def _run_inline(
    cfg: Config, chash: str, tasks: list[ShardTask], bar: Any, results: list, source: Any
) -> None:
    counter = mp.Value("q", 0, lock=True)
    proc = ShardProcessor(cfg, chash, source=source, progress=counter)
    start = bar.n
    for task in tasks:
        results.append(proc(task))
        bar.update(start + counter.value - bar.n)


def _run_pool(
    cfg: Config,
    chash: str,
    tasks: list[ShardTask],
    workers: int,
    bar: Any,
    results: list,
    shared: Source | None = None,
) -> None:
    """A spawn/forkserver pool; workers ignore Ctrl-C, the parent kills them on failure.
    ``shared``: a source the parent opened that is cheap to pickle (else workers reopen)."""
    ctx = _pool_context()
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
        pending: set[Future[dict[str, Any]]] = {pool.submit(run_task, t) for t in tasks}
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
                    results.append(fut.result())
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


def _pool_context() -> Any:
    """forkserver where available, preloading the worker module so the heavy libraries are
    imported once; starting it early lets those imports overlap the parent's preparation."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.worker"])
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return ctx


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Kill the workers now (mid-shard ones leave temporaries, removed by the caller)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            proc.kill()
    pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
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


def finish(
    root: Path,
    cfg: Config,
    manifests: list[dict[str, Any]],
    info: dict[str, Any],
    started: float,
) -> None:
    """The dataset card, the report and, last, ``dataset_info.json``."""
    try:
        metadata.write_card(root, cfg, info)
        fault_point("report")
        if cfg.report.enabled:
            from pipeline.report import build_report

            report_started = time.perf_counter()
            build_report(root, cfg, manifests, info)
            info["timings"]["report_s"] = round(time.perf_counter() - report_started, 3)
        info["timings"]["total_s"] = round(time.perf_counter() - started, 3)
        atomic_write(root / "dataset_info.json", json.dumps(info, indent=2, default=str).encode())
    except OSError as exc:
        if exc.filename and not str(exc.filename).startswith(str(root)):
            raise  # not a write into output.dir (e.g. the report re-reading the source)
        raise write_error(exc, "the dataset card, report or dataset_info.json", root) from None


def run(cfg: DictConfig | Config, overrides: list[str] | None = None) -> RunResult:
    """Load -> augment -> save into ``output.dir``; returns counts and the dataset info."""
    started = time.perf_counter()
    config = to_config(cfg)
    if config.runtime.workers != 1:
        _pool_context()  # warm up the workers' server while the source is opened
    source, n_inputs = prepare(config)
    root = Path(config.output.dir)
    tasks = plan(n_inputs * config.augment.copies, config)
    workers = config.runtime.workers or available_cpus()
    done: dict[str, dict[str, Any]] = {}
    fresh: list[dict[str, Any]] = []
    with _sigterm_interrupts():
        try:
            chash = claim_output(root, config, tasks)
            done = {t.name: m for t in tasks if (m := _finished(root, t, chash)) is not None}
            todo = [t for t in tasks if t.name not in done]
            bar = _progress(sum(t.stop - t.start for t in tasks), config.runtime.progress)
            bar.update(sum(t.stop - t.start for t in tasks if t.name in done))
            try:
                _execute(config, chash, todo, min(workers, max(len(todo), 1)), bar, fresh, source)
            finally:
                bar.close()
            manifests = sorted([*done.values(), *fresh], key=lambda m: m["index"])
            info = _dataset_info(
                config,
                source.identity(),
                manifests,
                overrides or [],
                time.perf_counter() - started,
                chash,
                resumed_shards=len(done),
                workers=workers,
            )
            if config.shard.num_shards > 1:  # dataset_info.json comes from merging slices
                write_slice(root, config, info, [t.name for t in tasks])
            else:
                finish(root, config, manifests, info, started)
        except KeyboardInterrupt as exc:
            raise _interrupted(exc, len(done) + len(fresh), len(tasks)) from None
    written, skipped = info["counts"]["written"], info["counts"]["skipped"]
    return RunResult(root, written, skipped, len(manifests), time.perf_counter() - started, info)


def _finished(root: Path, task: ShardTask, chash: str) -> dict[str, Any] | None:
    return resume.finished(root, task.name, task.start, task.stop, chash)


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


def _dataset_info(
    cfg: Config,
    source_id: dict[str, Any],
    manifests: list[dict[str, Any]],
    overrides: list[str],
    elapsed: float,
    chash: str,
    resumed_shards: int,
    workers: int,
) -> dict[str, Any]:
    stats = Stats()
    stage = {"read": 0.0, "augment": 0.0, "encode": 0.0, "write": 0.0}
    invalid = {"zero": 0, "nonfinite": 0, "negative": 0, "out_of_range": 0}
    skipped: list[dict[str, str]] = []
    written = 0
    shapes: set[tuple[int, ...]] = set()
    for m in manifests:
        stats.merge(Stats.from_json(m["stats"]))
        for k, v in m.get("timings", {}).items():
            stage[k] += v
        for k, v in m["invalid_pixels"].items():
            invalid[k] += v
        skipped += m["skipped"]
        written += len(m["samples"])
        shapes |= {tuple(s["shape"]) for s in m["samples"]}
    reasons: dict[str, int] = {}
    for s in skipped:
        reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
    return {
        "tool": "depth-pipeline",
        "versions": metadata.versions(),
        "config_hash": chash,
        "config": asdict(cfg),
        "overrides": overrides,
        "source": source_id,
        "seed": cfg.augment.seed,
        "counts": {
            "written": written,
            "skipped": len(skipped),
            "skipped_reasons": reasons,
            "skipped_samples": skipped[:1000],
            "shards": len(manifests),
            "resumed_shards": resumed_shards,
        },
        "invalid_pixels": invalid,
        "image_size": [list(s) for s in sorted(shapes)][0] if len(shapes) == 1 else sorted(shapes),
        "encodings": {
            "image": {
                "ext": "png",
                "dtype": "uint8",
                "channels": "RGB",
                "png_level": cfg.output.image.level,
            },
            "depth": {
                "ext": "depth.tiff",
                "dtype": "float32",
                "unit": "metre",
                "invalid": 0,
                **asdict(cfg.output.depth),
            },
        },
        "shards": [
            {"name": m["shard"], "files": m["files"], "samples": len(m["samples"])}
            for m in manifests
        ],
        "stats": stats.summary(),
        "timings": {
            "wall_s": round(elapsed, 3),
            "workers": workers,
            "stage_cpu_s": {k: round(v, 3) for k, v in stage.items()},
        },
    }
