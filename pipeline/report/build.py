"""The per-dataset report under ``output.dir/report``: ``index.html``, ``stats.json``,
``params.json`` and the pictures of ``pipeline/report/pictures.py``.

Numbers come from the accumulators the workers wrote into each shard manifest, so the
report costs one pass over the data (the writing itself); only the few samples shown
are decoded again. ``rebuild(dir)`` redoes it for an existing dataset from its
manifests and ``dataset_info.json`` without touching the shards.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.claim import REPORT_DIR  # noqa: E402
from pipeline.config import Config, to_config
from pipeline.errors import PipelineError
from pipeline.records import DatasetInfo, ShardManifest
from pipeline.stats import Stats
from pipeline.writers import atomic_write


def dataset_stats(manifests: list[ShardManifest]) -> tuple[Stats, dict[str, Any]]:
    """Merge the workers' accumulators; the summary is what ``stats.json`` holds."""
    stats = Stats()
    for m in manifests:
        stats.merge(m.stats)
    samples = [s for m in manifests for s in m.samples]
    frac = np.array([s.invalid_fraction for s in samples], dtype=np.float64)
    summary = {"samples": len(samples), **stats.summary()}
    summary["invalid_per_sample"] = (
        {"mean": round(float(frac.mean()), 6), "max": round(float(frac.max()), 6)}
        if frac.size
        else None
    )
    worst = sorted(samples, key=lambda s: -s.invalid_fraction)[:5]
    summary["worst_samples"] = [
        {"key": s.key, "invalid_fraction": s.invalid_fraction} for s in worst
    ]
    levels = np.arange(256, dtype=np.float64)
    before = stats.rgb_hist_before.sum(1)
    if before.all():
        summary["source_rgb_mean_uint8"] = (
            (stats.rgb_hist_before @ levels / before).round(4).tolist()
        )
    return stats, summary


def _params_doc(ctx_table: Any, corr: np.ndarray, indep: dict[str, Any]) -> dict[str, Any]:
    return {
        "columns": ctx_table.names,
        "dropped": ctx_table.dropped,
        "correlation": [[None if np.isnan(v) else round(float(v), 4) for v in r] for r in corr],
        "independence": indep,
    }


def build_report(
    root: Path, cfg: Config, manifests: list[ShardManifest], info: DatasetInfo
) -> list[Path]:
    """Write stats.json, params.json, the pictures and index.html; return the files."""
    from pipeline.report import page
    from pipeline.report.params import correlation_matrix, independence, param_table
    from pipeline.report.pictures import Context, selected

    started = time.perf_counter()
    out_dir = root / REPORT_DIR
    stats, summary = dataset_stats(manifests)
    atomic_write(out_dir / "stats.json", json.dumps(summary, indent=2).encode())
    samples = [s for m in manifests for s in m.samples]
    table = param_table(samples, list(cfg.augment.transforms))
    corr = correlation_matrix(table)
    params_doc = _params_doc(table, corr, independence(table, corr))
    atomic_write(out_dir / "params.json", json.dumps(params_doc, indent=2).encode())
    written = [out_dir / "stats.json", out_dir / "params.json"]

    ctx = Context(root, cfg, manifests, info, summary, stats, table, corr)
    figures: dict[str, list[tuple[str, str]]] = {"Samples": [], "Distributions": []}
    for picture in selected(cfg.report.plots):
        if picture.applies(ctx) and picture.draw(ctx, out_dir / picture.file):
            figures.setdefault(picture.section, []).append((picture.file, picture.caption(ctx)))
            written.append(out_dir / picture.file)

    shown = info.to_json()
    shown["timings"] = dict(shown["timings"], report_s=round(time.perf_counter() - started, 3))
    html = page.render(
        f"depth-pipeline report: {root.name}",
        shown,
        summary,
        figures,
        params_doc,
        ctx.notes,
        [
            ("stats.json", "stats.json"),
            ("params.json", "params.json"),
            ("dataset_info.json", "../dataset_info.json"),
            ("dataset card", "../README.md"),
        ],
    )
    atomic_write(out_dir / "index.html", html.encode())
    return [*written, out_dir / "index.html"]


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
    from pipeline.report.pictures import check_names

    info = DatasetInfo.read(root)
    cfg = config_of(info, overrides)
    check_names(cfg.report.plots)
    return build_report(root, cfg, info.manifests(root), info)
