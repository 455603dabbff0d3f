"""The per-dataset report under ``output.dir/report``: ``index.html``, ``stats.json``,
collages and plots.

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

from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.report import collages, page, plots
from pipeline.report.params import correlation_matrix, independence, param_table
from pipeline.report.samples import copies_of, pick, read_source, read_written
from pipeline.stats import Stats
from pipeline.writers import atomic_write

REPORT_DIR = "report"
PLOTS = ("depth_hist", "invalid_fraction", "rgb_hist", "params", "param_corr")


def dataset_stats(manifests: list[dict[str, Any]]) -> tuple[Stats, dict[str, Any]]:
    """Merge the workers' accumulators; the summary is what ``stats.json`` holds."""
    stats = Stats()
    for m in manifests:
        stats.merge(Stats.from_json(m["stats"]))
    samples = [s for m in manifests for s in m["samples"]]
    frac = np.array([s["invalid_fraction"] for s in samples], dtype=np.float64)
    summary = {"samples": len(samples), **stats.summary()}
    summary["invalid_per_sample"] = (
        {"mean": round(float(frac.mean()), 6), "max": round(float(frac.max()), 6)}
        if frac.size
        else None
    )
    worst = sorted(samples, key=lambda s: -s["invalid_fraction"])[:5]
    summary["worst_samples"] = [
        {"key": s["key"], "invalid_fraction": s["invalid_fraction"]} for s in worst
    ]
    levels = np.arange(256, dtype=np.float64)
    before = stats.rgb_hist_before.sum(1)
    if before.all():
        summary["source_rgb_mean_uint8"] = (
            (stats.rgb_hist_before @ levels / before).round(4).tolist()
        )
    return stats, summary


def build_report(
    root: Path, cfg: Config, manifests: list[dict[str, Any]], info: dict[str, Any]
) -> list[Path]:
    """Write stats.json, the pictures, the plots and index.html; return the files written."""
    started = time.perf_counter()
    rcfg = cfg.report
    unknown = sorted(set(rcfg.plots) - set(PLOTS))
    if unknown:
        raise PipelineError(f"report.plots: unknown plot(s) {unknown}; choose from {list(PLOTS)}")
    out_dir = root / REPORT_DIR
    stats, summary = dataset_stats(manifests)
    atomic_write(out_dir / "stats.json", json.dumps(summary, indent=2).encode())
    written_files = [out_dir / "stats.json"]
    samples = [s for m in manifests for s in m["samples"]]
    figures: dict[str, list[tuple[str, str]]] = {"Samples": [], "Distributions": []}
    notes: list[str] = []

    def figure(section: str, name: str, caption: str) -> Path:
        figures[section].append((name, caption))
        written_files.append(out_dir / name)
        return out_dir / name

    chosen = pick(manifests, rcfg.rows * rcfg.cols)
    firsts = chosen[: rcfg.before_after_rows]
    copy_groups = (
        [copies_of(manifests, s["index"])[:6] for s in chosen[: rcfg.copies_rows]]
        if cfg.augment.copies > 1
        else []
    )
    keys = [s["key"] for s in chosen] + [c["key"] for g in copy_groups for c in g]
    shown = read_written(root, cfg, manifests, keys)
    norm = collages.depth_norm(rcfg, summary)
    span = f"{norm.vmin:.2f}-{norm.vmax:.2f} m"
    if chosen:
        collages.collage(
            [shown[s["key"]] for s in chosen if s["key"] in shown],
            figure(
                "Samples",
                "collage.png",
                f"{len(chosen)} samples spread over the dataset: image | depth "
                f"({rcfg.colormap}, fixed range {span}, invalid = {rcfg.invalid_color})",
            ),
            rcfg,
            norm,
            f"{root.name}: image | depth",
        )
    try:
        sources = read_source(cfg, [s["index"] for s in firsts])
    except (PipelineError, OSError, ValueError) as exc:
        sources = {}
        notes.append(f"before/after grid skipped: the source could not be read ({exc})")
    pairs = [
        (s["key"], [sources[s["index"]], shown[s["key"]]])
        for s in firsts
        if s["index"] in sources and s["key"] in shown
    ]
    if pairs:
        collages.labelled_rows(
            pairs,
            ["source", "augmented (written)"],
            figure(
                "Samples",
                "before_after.png",
                f"the same keys before (source) and after augmentation, range {span}",
            ),
            rcfg,
            norm,
            "before / after augmentation",
            label_width=18,
        )
    if copy_groups:
        ncopies = max(len(g) for g in copy_groups)
        collages.labelled_rows(
            [
                (g[0]["key"].rsplit("_c", 1)[0], [shown.get(c["key"]) for c in g])
                for g in copy_groups
            ],
            [f"copy {i}" for i in range(ncopies)],
            figure(
                "Samples",
                "copies.png",
                f"augment.copies = {cfg.augment.copies}: the copies of one input side by side",
            ),
            rcfg,
            norm,
            "augmented copies of the same input",
            label_width=18,
        )

    table = param_table(samples, list(cfg.augment.transforms))
    corr = correlation_matrix(table)
    indep = independence(table, corr)
    params_doc = {
        "columns": table.names,
        "dropped": table.dropped,
        "correlation": [[None if np.isnan(v) else round(float(v), 4) for v in r] for r in corr],
        "independence": indep,
    }
    atomic_write(out_dir / "params.json", json.dumps(params_doc, indent=2).encode())
    written_files.append(out_dir / "params.json")
    dpi = max(rcfg.dpi, 60)
    wanted = set(rcfg.plots)
    if "depth_hist" in wanted:
        plots.depth_histogram(
            stats,
            summary,
            figure("Distributions", "depth_hist.png", "depth over valid pixels"),
            dpi,
        )
    if "invalid_fraction" in wanted and samples:
        plots.invalid_fraction(
            samples,
            figure("Distributions", "invalid_fraction.png", "invalid-depth fraction per sample"),
            dpi,
        )
    if "rgb_hist" in wanted:
        plots.rgb_histograms(
            stats,
            figure(
                "Distributions",
                "rgb_hist.png",
                "per-channel RGB histograms before (source) and after augmentation (written)",
            ),
            dpi,
        )
    if "params" in wanted and table.names:
        plots.param_distributions(
            table,
            figure(
                "Distributions",
                "params.png",
                "how often each transform applied, and each recorded parameter's distribution",
            ),
            dpi,
        )
    if "param_corr" in wanted and len(table.names) > 1:
        plots.param_correlation(
            table,
            corr,
            figure(
                "Distributions",
                "param_corr.png",
                "correlation of the recorded parameters: outside the boxes (different "
                "transforms) it should be ~0",
            ),
            dpi,
        )
    info = dict(info)
    info.setdefault("timings", {})
    info["timings"] = dict(info["timings"], report_s=round(time.perf_counter() - started, 3))
    html = page.render(
        f"depth-pipeline report: {root.name}",
        info,
        summary,
        figures,
        params_doc,
        notes,
        [
            ("stats.json", "stats.json"),
            ("params.json", "params.json"),
            ("dataset_info.json", "../dataset_info.json"),
            ("dataset card", "../README.md"),
        ],
    )
    atomic_write(out_dir / "index.html", html.encode())
    written_files.append(out_dir / "index.html")
    return written_files


def load_manifests(root: Path, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The shard manifests a finished run listed in ``dataset_info.json``."""
    from pipeline.resume import MANIFEST_DIR

    out = []
    for shard in info.get("shards", []):
        path = root / MANIFEST_DIR / f"{shard['name']}.json"
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise PipelineError(
                f"{path}: cannot read this shard manifest ({exc}); re-run the pipeline with "
                f"the same config to repair the dataset"
            ) from None
    return sorted(out, key=lambda m: m["index"])


def load_info(root: Path) -> dict[str, Any]:
    path = root / "dataset_info.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(
            f"{root} has no dataset_info.json: not a finished depth-pipeline output dir "
            f"(a run writes it last; re-run the pipeline to finish it)"
        ) from None
    except ValueError as exc:
        raise PipelineError(f"{path}: not valid JSON ({exc})") from None


def config_of(info: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """The typed Config a dataset was made with, optionally with report.* overrides."""
    from omegaconf import OmegaConf

    from pipeline.config import to_config

    cfg = OmegaConf.merge(OmegaConf.structured(Config), info.get("config", {}))
    for item in overrides or []:
        key, sep, _ = item.partition("=")
        if not sep or not key.startswith("report."):
            raise PipelineError(
                f"{item!r}: only report.KEY=VALUE overrides apply to an existing dataset"
            )
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    return to_config(cfg)


def rebuild(root: Path, overrides: list[str] | None = None) -> list[Path]:
    """Rebuild the report of an existing dataset from its manifests (shards untouched)."""
    info = load_info(root)
    cfg = config_of(info, overrides)
    return build_report(root, cfg, load_manifests(root, info), info)
