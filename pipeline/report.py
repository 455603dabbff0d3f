"""Collage report under ``output.dir/report``: image | coloured depth grids, before/after.

Pictures are drawn from what was written (read back from the shards) and, for "before",
from the source itself; one fixed depth range per report, invalid pixels in their own
colour, a colorbar in metres.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.colors import Colormap, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pipeline import codecs  # noqa: E402
from pipeline.config import Config  # noqa: E402
from pipeline.sample import Sample  # noqa: E402
from pipeline.sources import finalize, open_source  # noqa: E402
from pipeline.writers import atomic_write  # noqa: E402

REPORT_DIR = "report"


def read_written(
    root: Path, cfg: Config, manifests: list[dict[str, Any]], keys: list[str]
) -> dict[str, Sample]:
    """Read samples back from the written shards (tar members or folder files)."""
    wanted, out = set(keys), {}
    for m in manifests:
        names = {s["key"] for s in m["samples"]} & wanted
        if not names:
            continue
        if cfg.output.format == "webdataset":
            fields: dict[str, dict[str, bytes]] = {}
            with tarfile.open(root / f"{m['shard']}.tar") as tar:
                for member in tar:
                    key, _, ext = member.name.partition(".")
                    if key in names and ext in ("png", "depth.tiff"):
                        fields.setdefault(key, {})[ext] = tar.extractfile(member).read()
            for key, f in fields.items():
                out[key] = Sample(
                    key, codecs.decode("png", f["png"]), codecs.decode("tiff", f["depth.tiff"])
                )
        else:
            for key in names:
                out[key] = Sample(
                    key,
                    codecs.decode("png", (root / "image" / f"{key}.png").read_bytes()),
                    codecs.decode("tiff", (root / "depth" / f"{key}.tiff").read_bytes()),
                )
    return out


def read_source(cfg: Config, indices: list[int]) -> dict[int, Sample]:
    """The untouched source samples at these input indices."""
    source = open_source(cfg.source)
    out = {}
    for index in sorted(set(indices)):
        for item in source.iter(index, index + 1):
            if isinstance(item, Sample):
                out[index] = finalize(item, cfg.source)[0]
    return out


def _cmap(cfg: Config) -> Colormap:
    return colormaps[cfg.report.colormap].with_extremes(bad=cfg.report.invalid_color)


def _depth_range(cfg: Config, info: dict[str, Any]) -> Normalize:
    stats = info.get("stats", {})
    pct = stats.get("depth_percentiles", {})
    lo = cfg.report.depth_min if cfg.report.depth_min is not None else (pct.get("p1") or 0.0)
    hi = cfg.report.depth_max if cfg.report.depth_max is not None else (pct.get("p99") or 10.0)
    return Normalize(vmin=lo, vmax=max(hi, lo + 1e-3))


def _draw_pair(
    fig: Figure,
    ax_img: Any,
    ax_depth: Any,
    sample: Sample,
    cmap: Colormap,
    norm: Normalize,
    title: str,
) -> Any:
    ax_img.imshow(sample.image)
    im = ax_depth.imshow(
        np.ma.masked_less_equal(sample.depth, 0), cmap=cmap, norm=norm, interpolation="nearest"
    )
    ax_img.set_title(title, fontsize=7)
    for ax in (ax_img, ax_depth):
        ax.set_xticks([])
        ax.set_yticks([])
    return im


def _save(fig: Figure, path: Path, dpi: int) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write(path, buf.getvalue())


def collage(
    samples: list[Sample],
    path: Path,
    cfg: Config,
    norm: Normalize,
    rows: int,
    cols: int,
    title: str,
) -> None:
    """A rows x cols grid; each cell is image | coloured depth; one colorbar."""
    fig = Figure(figsize=(cols * 4.0, rows * 1.6 + 0.6))
    axes = fig.subplots(rows, cols * 2, squeeze=False, gridspec_kw={"wspace": 0.03, "hspace": 0.15})
    cmap, im = _cmap(cfg), None
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        a_img, a_dep = axes[r][2 * c], axes[r][2 * c + 1]
        if i < len(samples):
            im = _draw_pair(fig, a_img, a_dep, samples[i], cmap, norm, samples[i].key)
        else:
            a_img.axis("off")
            a_dep.axis("off")
    if im is not None:
        fig.colorbar(
            im,
            ax=axes,
            fraction=0.015,
            pad=0.01,
            label="depth (m); invalid = " + cfg.report.invalid_color,
        )
    fig.suptitle(title, fontsize=10)
    _save(fig, path, cfg.report.dpi)


def before_after(
    pairs: list[tuple[Sample, Sample]], path: Path, cfg: Config, norm: Normalize
) -> None:
    """One row per key: source image | source depth | augmented image | augmented depth."""
    fig = Figure(figsize=(13.0, 2.4 * len(pairs) + 0.6))
    axes = fig.subplots(len(pairs), 4, squeeze=False, gridspec_kw={"wspace": 0.03, "hspace": 0.2})
    cmap, im = _cmap(cfg), None
    for row, (before, after) in enumerate(pairs):
        _draw_pair(fig, axes[row][0], axes[row][1], before, cmap, norm, f"{before.key} (source)")
        im = _draw_pair(
            fig, axes[row][2], axes[row][3], after, cmap, norm, f"{after.key} (augmented)"
        )
    if im is not None:
        fig.colorbar(im, ax=axes, fraction=0.02, pad=0.01, label="depth (m)")
    fig.suptitle("before / after augmentation (same keys, same depth range)", fontsize=10)
    _save(fig, path, cfg.report.dpi)


def build_report(
    root: Path, cfg: Config, manifests: list[dict[str, Any]], info: dict[str, Any]
) -> list[Path]:
    """Write the report pictures; return their paths."""
    out_dir = root / REPORT_DIR
    chosen = [s for m in manifests for s in m["samples"]][: cfg.report.rows * cfg.report.cols]
    if not chosen:
        return []
    written = read_written(root, cfg, manifests, [s["key"] for s in chosen])
    after = [written[s["key"]] for s in chosen if s["key"] in written]
    norm = _depth_range(cfg, info)
    paths = [out_dir / "collage.png", out_dir / "before_after.png"]
    collage(
        after,
        paths[0],
        cfg,
        norm,
        cfg.report.rows,
        cfg.report.cols,
        f"{len(after)} samples from {root.name}: image | depth",
    )
    firsts = chosen[: min(cfg.report.rows, 4)]
    sources = read_source(cfg, [s["index"] for s in firsts])
    pairs = [
        (sources[s["index"]], written[s["key"]])
        for s in firsts
        if s["index"] in sources and s["key"] in written
    ]
    if pairs:
        before_after(pairs, paths[1], cfg, norm)
    return paths
