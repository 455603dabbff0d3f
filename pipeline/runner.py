"""Orchestration: plan shards, skip finished ones, run the rest in a process pool,
then write the dataset card, the report and ``dataset_info.json`` (last)."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from pipeline import metadata
from pipeline.augment import Augmenter, known_output_size
from pipeline.config import Config, to_config
from pipeline.errors import PipelineError
from pipeline.merge import check_slice_options, write_slice
from pipeline.sources import open_source
from pipeline.stats import Stats
from pipeline.worker import MANIFEST_DIR, ShardProcessor, ShardTask, init_worker, run_task
from pipeline.writers import TMP_MARK, WRITERS, sha256_file


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
            cfg.output.depth.compression in ("none", "zlib", "deflate", "zstd", "lzw"),
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


def available_cpus() -> int:
    """Cores this process may use: a SLURM/cgroup CPU set, not the whole node."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _finished(root: Path, task: ShardTask, chash: str) -> dict[str, Any] | None:
    """The manifest of a complete shard whose files still match their checksums."""
    path = root / MANIFEST_DIR / f"{task.name}.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("config_hash") != chash or manifest.get("stop") != task.stop:
        return None
    for rel, digest in manifest["files"].items():
        f = root / rel
        if not f.is_file() or sha256_file(f) != digest:
            return None
    return manifest


def _clean(root: Path, overwrite: bool, prefix: str, only: list[str] | None = None) -> None:
    """Drop temporaries of a dead run (with ``only``: of those shards, as other slices'
    jobs may be writing theirs); with overwrite, everything this tool writes."""
    for tmp in root.rglob(f"*{TMP_MARK}*"):
        if only is None or tmp.name.split(".")[0] in only:
            tmp.unlink(missing_ok=True)
    if overwrite:
        for f in root.glob(f"{prefix}-*.tar"):
            f.unlink()
        for name in ("manifests", "report", "image", "depth", "meta"):
            shutil.rmtree(root / name, ignore_errors=True)
        for name in ("dataset_info.json", "README.md"):
            (root / name).unlink(missing_ok=True)


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
    cfg: Config, chash: str, tasks: list[ShardTask], workers: int, total: int, done_already: int
) -> list[dict[str, Any]]:
    """Run shard tasks inline (1 worker) or in a spawn/forkserver process pool."""
    bar = _progress(total, cfg.runtime.progress)
    bar.update(done_already)
    results: list[dict[str, Any]] = []
    try:
        if workers <= 1 or len(tasks) <= 1:
            counter = mp.Value("q", 0, lock=True)
            proc = ShardProcessor(cfg, chash, progress=counter)
            for task in tasks:
                results.append(proc(task))
                bar.update(counter.value - bar.n + done_already)
            return results
        ctx = mp.get_context(
            "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        )
        if ctx.get_start_method() == "forkserver":  # import the heavy libraries once
            ctx.set_forkserver_preload(["pipeline.worker"])
        counter = ctx.Value("q", 0, lock=True)
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=init_worker,
            initargs=(cfg, chash, counter),
        ) as pool:
            pending: set[Future[dict[str, Any]]] = {pool.submit(run_task, t) for t in tasks}
            try:
                while pending:
                    finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        results.append(fut.result())
                    bar.update(counter.value - bar.n + done_already)
            except BaseException:
                for fut in pending:
                    fut.cancel()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return results
    except BrokenProcessPool:
        raise PipelineError(
            "a worker process died (killed by the OS, out of memory?); finished shards are "
            "kept: re-run the same command to resume, or lower runtime.workers"
        ) from None
    finally:
        bar.close()


def run(cfg: DictConfig | Config, overrides: list[str] | None = None) -> RunResult:
    """Load -> augment -> save into ``output.dir``; returns counts and the dataset info."""
    started = time.perf_counter()
    config = to_config(cfg)
    validate(config)
    check_slice_options(config)
    Augmenter(config.augment)  # fail on a bad transform before touching the output
    source = open_source(config.source)
    n_inputs = len(source)
    if config.source.limit is not None:
        n_inputs = min(n_inputs, config.source.limit)
    if n_inputs == 0:
        raise PipelineError(
            f"source ({config.source.kind}) has no samples; check source.path and source.split"
        )
    size = getattr(source, "size", None) or (
        (config.source.height, config.source.width) if config.source.kind == "synthetic" else None
    )
    if size is not None:
        known_output_size(config.augment, *size)

    root = Path(config.output.dir)
    metadata.check_writable(root)
    if not config.output.overwrite:
        metadata.check_lock(root, config)
    total_outputs = n_inputs * config.augment.copies
    tasks = plan(total_outputs, config)
    sliced = config.shard.num_shards > 1
    own = [t.name for t in tasks] if sliced else None
    _clean(root, config.output.overwrite, config.output.prefix, only=own)
    metadata.write_lock(root, config)
    chash = metadata.config_hash(config)

    done = {t.name: m for t in tasks if (m := _finished(root, t, chash)) is not None}
    todo = [t for t in tasks if t.name not in done]
    workers = config.runtime.workers or available_cpus()
    job_total = sum(t.stop - t.start for t in tasks)
    resumed = sum(t.stop - t.start for t in tasks if t.name in done)
    fresh = _execute(config, chash, todo, min(workers, max(len(todo), 1)), job_total, resumed)
    manifests = sorted([*done.values(), *fresh], key=lambda m: m["index"])

    elapsed = time.perf_counter() - started
    info = _dataset_info(
        config,
        source.identity(),
        manifests,
        overrides or [],
        elapsed,
        chash,
        resumed_shards=len(done),
        workers=workers,
    )
    if sliced:  # a slice summary; dataset_info.json comes from the merge of all slices
        write_slice(root, config, info, [t.name for t in tasks])
        written, skipped = info["counts"]["written"], info["counts"]["skipped"]
        return RunResult(
            root, written, skipped, len(manifests), time.perf_counter() - started, info
        )
    metadata.write_card(root, config, info)
    if config.report.enabled:
        from pipeline.report import build_report

        build_report(root, config, manifests, info)
    info["timings"]["total_s"] = round(time.perf_counter() - started, 3)
    from pipeline.writers import atomic_write

    atomic_write(root / "dataset_info.json", json.dumps(info, indent=2, default=str).encode())
    written, skipped = info["counts"]["written"], info["counts"]["skipped"]
    return RunResult(root, written, skipped, len(manifests), time.perf_counter() - started, info)


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
