"""Sample pictures: image | coloured depth pairs in grids and labelled rows.

One fixed depth range per picture (so colours compare across cells), invalid pixels in
their own colour, one colorbar in metres. Drawn with matplotlib's Figure API (Agg).
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.colors import Colormap, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pipeline.config import ReportConfig  # noqa: E402
from pipeline.sample import Sample  # noqa: E402
from pipeline.writers import atomic_write  # noqa: E402

CELL_IN = 2.0  # width of one image (inches); its height follows the aspect ratio


def depth_norm(rcfg: ReportConfig, stats: dict[str, Any]) -> Normalize:
    """report.depth_min/max if set, else the 1st/99th percentile of the written depth."""
    pct = stats.get("depth_percentiles", {})
    lo = rcfg.depth_min if rcfg.depth_min is not None else (pct.get("p1") or 0.0)
    hi = rcfg.depth_max if rcfg.depth_max is not None else (pct.get("p99") or 10.0)
    return Normalize(vmin=lo, vmax=max(hi, lo + 1e-3))


def depth_cmap(rcfg: ReportConfig) -> Colormap:
    """The colormap with invalid (masked) pixels in ``report.invalid_color``."""
    return colormaps[rcfg.colormap].with_extremes(bad=rcfg.invalid_color)


def save_png(fig: Figure, path: Path, dpi: int) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write(path, buf.getvalue())


def _aspect(samples: list[Sample | None]) -> float:
    for s in samples:
        if s is not None:
            return s.depth.shape[0] / s.depth.shape[1]
    return 0.75


def _draw_pair(ax_img: Any, ax_depth: Any, sample: Sample, cmap: Colormap, norm: Normalize) -> Any:
    ax_img.imshow(sample.image, interpolation="nearest")
    return ax_depth.imshow(
        np.ma.masked_less_equal(sample.depth, 0), cmap=cmap, norm=norm, interpolation="nearest"
    )


def _blank(*axes: Any) -> None:
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)


def _colorbar(fig: Figure, im: Any, axes: Any, rcfg: ReportConfig) -> None:
    if im is not None:
        fig.colorbar(
            im,
            ax=axes,
            fraction=0.02,
            pad=0.01,
            label=f"depth (m); invalid = {rcfg.invalid_color}",
        )


def collage(
    samples: list[Sample], path: Path, rcfg: ReportConfig, norm: Normalize, title: str
) -> None:
    """A report.rows x report.cols grid; each cell is image | coloured depth."""
    rows, cols = rcfg.rows, rcfg.cols
    aspect = _aspect(list(samples))
    fig = Figure(figsize=(cols * 2 * CELL_IN + 1.0, rows * (CELL_IN * aspect + 0.35) + 0.6))
    axes = fig.subplots(rows, cols * 2, squeeze=False, gridspec_kw={"wspace": 0.03, "hspace": 0.2})
    cmap, im = depth_cmap(rcfg), None
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        a_img, a_dep = axes[r][2 * c], axes[r][2 * c + 1]
        _blank(a_img, a_dep)
        if i < len(samples):
            im = _draw_pair(a_img, a_dep, samples[i], cmap, norm)
            a_img.set_title(samples[i].key, fontsize=8, loc="left")
        else:
            a_img.axis("off")
            a_dep.axis("off")
    _colorbar(fig, im, axes, rcfg)
    fig.suptitle(title, fontsize=10)
    save_png(fig, path, rcfg.dpi)


def labelled_rows(
    rows: list[tuple[str, list[Sample | None]]],
    columns: list[str],
    path: Path,
    rcfg: ReportConfig,
    norm: Normalize,
    title: str,
    label_width: int = 30,
) -> None:
    """One row per label, one image | depth pair per column (``None`` = missing cell)."""
    ncols = len(columns)
    aspect = _aspect([s for _, cells in rows for s in cells])
    fig = Figure(figsize=(ncols * 2 * CELL_IN + 2.6, len(rows) * (CELL_IN * aspect + 0.3) + 0.8))
    axes = fig.subplots(
        len(rows), ncols * 2, squeeze=False, gridspec_kw={"wspace": 0.03, "hspace": 0.12}
    )
    cmap, im = depth_cmap(rcfg), None
    for r, (label, cells) in enumerate(rows):
        for c in range(ncols):
            a_img, a_dep = axes[r][2 * c], axes[r][2 * c + 1]
            _blank(a_img, a_dep)
            sample = cells[c] if c < len(cells) else None
            if sample is not None:
                im = _draw_pair(a_img, a_dep, sample, cmap, norm)
            else:
                a_img.text(0.5, 0.5, "missing", ha="center", va="center", fontsize=8)
            if r == 0:
                a_img.set_title(columns[c], fontsize=8, loc="left")
        axes[r][0].set_ylabel(
            "\n".join(textwrap.fill(line, label_width) for line in label.splitlines()),
            rotation=0,
            ha="right",
            va="center",
            fontsize=8,
            labelpad=6,
        )
    _colorbar(fig, im, axes, rcfg)
    fig.suptitle(title, fontsize=10)
    save_png(fig, path, rcfg.dpi)
