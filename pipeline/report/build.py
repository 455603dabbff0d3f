"""The per-dataset report under ``output.dir/report``: ``index.html``, ``stats.json``,
``params.json`` and the pictures of ``pipeline/report/pictures.py``.

Numbers come from the accumulators the workers wrote into each shard manifest, so the
report costs one pass over the data (the writing itself); only the few samples shown
are decoded again. The matplotlib plots are picklable tasks: with an executor (e.g. the
run's worker pool) they are drawn there while this process reads and composes the sample
pictures; without one, here. ``rebuild(dir)`` redoes the report of an existing dataset
from its manifests and ``dataset_info.json`` without touching the shards.
"""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import Executor, Future
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config.schema import Config, to_config
from pipeline.dataset.owned import REPORT_DIR, record_published
from pipeline.dataset.records import DatasetInfo, ShardManifest, part_summaries
from pipeline.dataset.stats import Stats
from pipeline.dataset.writers import atomic_write
from pipeline.errors import PipelineError
from pipeline.report import call
from pipeline.sources import Source


def dataset_stats(manifests: list[ShardManifest]) -> tuple[Stats, dict[str, Any]]:
    """Merge the workers' accumulators; the summary is what ``stats.json`` holds."""
    from pipeline.report.context import WORST

    stats = Stats()
    for m in manifests:
        stats.merge(m.stats)
    samples = [s for m in manifests for s in m.samples]
    frac = np.array([s.invalid_fraction for s in samples], dtype=np.float64)
    summary = {"samples": len(samples), **stats.summary()}
    summary["invalid_per_sample"] = (
        {
            "mean": round(float(frac.mean()), 6),
            "p50": round(float(np.median(frac)), 6),
            "p95": round(float(np.percentile(frac, 95)), 6),
            "max": round(float(frac.max()), 6),
        }
        if frac.size
        else None
    )
    worst = sorted(samples, key=lambda s: -s.invalid_fraction)[:WORST]
    summary["worst_samples"] = [
        {"key": s.key, "invalid_fraction": s.invalid_fraction} for s in worst
    ]
    levels = np.arange(256, dtype=np.float64)
    before = stats.rgb_hist_before.sum(1)
    if before.all():
        summary["source_rgb_mean_uint8"] = (
            (stats.rgb_hist_before @ levels / before).round(4).tolist()
        )
    return stats, summary | part_summaries(manifests)


def _params_doc(ctx_table: Any, corr: np.ndarray, indep: dict[str, Any]) -> dict[str, Any]:
    return {
        "columns": ctx_table.names,
        "dropped": ctx_table.dropped,
        "correlation": [[None if np.isnan(v) else round(float(v), 4) for v in r] for r in corr],
        "independence": indep,
    }


def _draw(ctx: Any, pictures: list[Any], executor: Executor | None) -> dict[str, bytes]:
    """PNG bytes per picture name. Offloadable plots go to ``executor`` first, so they
    are drawn while the sample pictures are composed here."""
    futures: dict[str, Future[bytes | None]] = {}
    later = []
    for picture in pictures:
        if picture.offload and executor is not None and (task := picture.task(ctx)):
            futures[picture.name] = executor.submit(call, task.fn, *task.args)
    out: dict[str, bytes | None] = {}
    for picture in pictures:
        if picture.name in futures:
            continue
        if picture.offload:
            later.append(picture)
        elif task := picture.task(ctx):
            out[picture.name] = task()
    for picture in later:
        task = picture.task(ctx)
        out[picture.name] = task() if task else None
    for name, future in futures.items():
        out[name] = future.result()
    return {p.name: png for p in pictures if (png := out.get(p.name)) is not None}


def build_report(
    root: Path,
    cfg: Config,
    manifests: list[ShardManifest],
    info: DatasetInfo,
    *,
    source: Source | None = None,
    run_started: float | None = None,
    rebuilt_with: list[str] | None = None,
    executor: Executor | None = None,
) -> list[Path]:
    """Write stats.json, params.json, the pictures and index.html; return the files.

    ``source``: the run's opened source (read for before/after; else opened from the
    config). ``run_started`` (perf_counter): the page's total time of a run.
    ``rebuilt_with``: the report overrides of ``depth-pipeline-report`` (a rebuild).
    ``executor``: where to draw the plots (None: here). A fresh process pays ~0.4 s to
    start and import matplotlib, more than the plots cost here (~0.5 s in all): worth it
    only with processes that are already running and have matplotlib loaded.

    Longer than 60 lines: the report's steps in order (context, pictures drawn in the
    pool, stats, page), each a few lines."""
    from pipeline.report import page
    from pipeline.report.context import Context
    from pipeline.report.independence import independence
    from pipeline.report.params import correlation_matrix, param_table, part_tables
    from pipeline.report.pictures import selected

    started = time.perf_counter()
    out_dir = root / REPORT_DIR
    stats, summary = dataset_stats(manifests)
    atomic_write(out_dir / "stats.json", json.dumps(summary, indent=2).encode())
    samples = [s for m in manifests for s in m.samples]
    table = param_table(samples, list(cfg.augment.transforms))
    tables = part_tables(samples, cfg)
    corr = correlation_matrix(table)
    params_doc = _params_doc(table, corr, independence(table, tables or None))
    atomic_write(out_dir / "params.json", json.dumps(params_doc, indent=2).encode())
    written = [out_dir / "stats.json", out_dir / "params.json"]

    ctx = Context(root, cfg, manifests, info, summary, stats, table, corr, source)
    ctx.part_tables = tables
    if ctx.canonical:  # every depth number and axis of this report is canonical
        ctx.notes.append(f"depth (axes, ranges, statistics) is {ctx.canonical}")
    pictures = [p for p in selected(cfg.report.plots) if p.applies(ctx)]
    drawn = _draw(ctx, pictures, executor)
    figures: dict[str, list[tuple[str, str, str]]] = {"Samples": [], "Distributions": []}
    for picture in pictures:
        if picture.name not in drawn:
            continue
        png = drawn[picture.name]
        atomic_write(out_dir / picture.file, png)
        written.append(out_dir / picture.file)
        src = picture.file
        if cfg.report.embed:
            src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        figures.setdefault(picture.section, []).append((picture.name, src, picture.caption(ctx)))

    timings = info.timings.to_json()
    now = time.perf_counter()
    if rebuilt_with is None:  # a run: its report so far, and its total so far
        timings["report_s"] = round(now - started, 3)
        if run_started is not None:
            timings["total_s"] = round(now - run_started, 3)
    else:  # the run's timings as recorded, and this rebuild's own time beside them
        timings["report_rebuilt_s"] = round(now - started, 3)
    html = page.render(
        page.PageData(
            title=f"depth-pipeline report: {root.name}",
            info=info.to_json() | {"timings": timings},
            config=asdict(cfg),
            stats=summary,
            figures=figures,
            params=params_doc,
            notes=ctx.notes,
            links=[
                ("stats.json", "stats.json"),
                ("params.json", "params.json"),
                ("dataset_info.json", "../dataset_info.json"),
                ("dataset card", "../README.md"),
            ],
            rebuilt_with=rebuilt_with,
            worst_picture=(
                None
                if "most_invalid" not in drawn
                else "#most_invalid"
                if cfg.report.embed
                else "most_invalid.png"
            ),
        )
    )
    atomic_write(out_dir / "index.html", html.encode())
    return [*written, out_dir / "index.html"]


def warm(cfg: Config) -> None:
    """Import and load what ``build_report`` needs in this process (the picture modules,
    the colormap's table, the fonts), e.g. on a thread while a run's last shards finish."""
    from pipeline.report import canvas, context, page, pictures  # noqa: F401
    from pipeline.report.colors import lut

    lut(cfg.report.colormap)
    canvas.font(12)


def config_of(info: DatasetInfo, overrides: list[str] | None = None) -> Config:
    """The typed Config a dataset was made with, optionally with report.* overrides."""
    from omegaconf import OmegaConf

    for item in overrides or []:
        key, sep, _ = item.partition("=")
        if not sep or not key.startswith("report."):
            raise PipelineError(
                f"{item!r}: only report.KEY=VALUE overrides apply to an existing dataset"
            )
    if not overrides:
        return to_config(info.config)
    return to_config(
        OmegaConf.merge(OmegaConf.create(info.config), OmegaConf.from_dotlist(overrides))
    )


def rebuild(root: Path, overrides: list[str] | None = None) -> list[Path]:
    """Rebuild the report of an existing dataset from its manifests (shards untouched)."""
    from pipeline.dataset.lock import holding
    from pipeline.report.pictures import check

    info = DatasetInfo.read(root)  # refuses a directory that is not a finished dataset
    cfg = config_of(info, overrides)
    check(cfg.report)
    with holding(root):  # shared: an overwrite cannot replace the dataset meanwhile
        info = DatasetInfo.read(root)
        manifests = info.manifests(root)
        files = build_report(root, cfg, manifests, info, rebuilt_with=list(overrides or []))
        record_published(root, files, replace_under=REPORT_DIR)
        return files
