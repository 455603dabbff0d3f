"""Report plots (matplotlib Figure API, Agg): depth and RGB histograms, invalid fraction
per sample, augmentation parameter distributions and their correlations.

Each function takes plain arrays (picklable: it can run in another process) and returns
PNG bytes. Cheap by construction: fixed margins instead of ``bbox_inches="tight"`` (which
draws every figure twice), a low dpi, few ticks and no per-bar artists.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pipeline.config.schema import ImageCodec  # noqa: E402
from pipeline.dataset.stats import depth_edges  # noqa: E402
from pipeline.encode.codecs import encode_png  # noqa: E402
from pipeline.report.params import ParamTable  # noqa: E402

CHANNELS = (("R", "tab:red"), ("G", "tab:green"), ("B", "tab:blue"))
PNG = ImageCodec(level=6)  # plots are flat colour: small files at any level


def figure(
    width: float, height: float, left: float, right: float, bottom: float, top: float
) -> Figure:
    """A figure with fixed margins in inches (room for tick labels and titles)."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height
    )
    return fig


def png(fig: Figure, dpi: int) -> bytes:
    """Render once with Agg and encode the RGB pixels with the dataset's own PNG encoder
    (libdeflate: faster than ``savefig``'s Pillow path, and no metadata)."""
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    return encode_png(np.ascontiguousarray(rgb), PNG)


def depth_histogram(
    depth_hist: np.ndarray,
    percentiles: dict[str, Any],
    invalid_fraction: float,
    dpi: int,
    unit: str = "m",
) -> bytes:
    """Histogram of valid depth (fraction of valid pixels), with percentile markers."""
    fig = figure(7.0, 3.0, 0.75, 0.2, 0.55, 0.35)
    ax = fig.add_subplot()
    hist = np.asarray(depth_hist, dtype=np.float64)
    total = hist.sum()
    if total:
        nonzero = np.flatnonzero(hist)
        lo, hi = int(nonzero[0]), int(nonzero[-1]) + 1
        fine = depth_edges(lo, hi + 1)  # log-spaced bins, redrawn as <= 120 linear bars
        centres = (fine[:-1] + fine[1:]) / 2
        edges = np.linspace(0.0, fine[-1], 121)
        coarse = np.histogram(centres, bins=edges, weights=hist[lo:hi])[0] / total
        ax.stairs(coarse, edges, fill=True, color="tab:blue", alpha=0.8)
        for name, style in (("p1", ":"), ("p50", "--"), ("p99", ":")):
            value = percentiles.get(name)
            if value is not None:
                ax.axvline(value, color="k", ls=style, lw=1, label=f"{name} = {value:.2f} {unit}")
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel(f"depth ({unit})", fontsize=9)
    ax.set_ylabel("fraction of valid pixels", fontsize=9)
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(labelsize=8)
    ax.set_title(f"depth over valid pixels ({invalid_fraction:.1%} of pixels invalid)", fontsize=10)
    return png(fig, dpi)


def invalid_fraction(fractions: np.ndarray, worst_key: str, dpi: int) -> bytes:
    """Invalid-depth fraction of each written sample (in write order) and its histogram."""
    frac = np.asarray(fractions, dtype=np.float64)
    fig = figure(9.0, 2.8, 0.7, 0.2, 0.55, 0.35)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1], "wspace": 0.3})
    x = np.arange(frac.size)
    if frac.size <= 200:
        left.stairs(frac, np.arange(frac.size + 1) - 0.5, fill=True, color="tab:purple")
    else:
        left.plot(x, frac, ".", ms=2, color="tab:purple")
    left.set_xlabel("sample (write order)", fontsize=9)
    left.set_ylabel("invalid fraction", fontsize=9)
    left.set_xlim(-0.5, max(frac.size - 0.5, 0.5))
    if frac.size:
        left.set_title(
            f"mean {frac.mean():.3f}, max {frac.max():.3f} ({worst_key})", fontsize=9, loc="left"
        )
    counts, edges = np.histogram(frac, bins=20, range=(0, max(float(frac.max(initial=0)), 1e-3)))
    right.stairs(counts, edges, fill=True, color="tab:purple")
    right.set_xlabel("invalid fraction", fontsize=9)
    right.set_ylabel("samples", fontsize=9)
    for ax in (left, right):
        ax.tick_params(labelsize=8)
    return png(fig, dpi)


def rgb_histograms(before: np.ndarray, after: np.ndarray, dpi: int) -> bytes:
    """Per-channel histograms of the source (dashed) and written (solid) images, in one
    axes with one short legend (the means are in stats.json and on the page)."""
    fig = figure(8.0, 3.0, 0.75, 0.2, 0.55, 0.3)
    ax = fig.add_subplot()
    levels = np.arange(256)
    for c, (name, color) in enumerate(CHANNELS):
        for hist, style in ((before[c], "--"), (after[c], "-")):
            total = hist.sum()
            if total:
                ax.plot(
                    levels,
                    hist / total,
                    style,
                    color=color,
                    lw=1,
                    label=name if style == "-" else None,
                )
    ax.set_title(
        "RGB histograms: before augmentation (source, dashed), after (written, solid)", fontsize=9
    )
    ax.set_xlabel("value", fontsize=9)
    ax.set_ylabel("fraction of pixels", fontsize=9)
    ax.set_xlim(0, 255)
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(labelsize=8)
    if ax.lines:
        ax.legend(fontsize=8, frameon=False)
    return png(fig, dpi)


def _value(v: float) -> str:
    return f"{v:.3g}"


def part_depth_histograms(
    parts: list[tuple[str, np.ndarray, dict[str, Any], float]], unit: str, dpi: int
) -> bytes:
    """One histogram per part of a mixture (name, depth histogram, percentiles, invalid
    fraction) on a log depth axis shared by all, so indoor metres and 100 m of LiDAR are
    both visible; the part's colour range (its p1-p99) shaded, p50 marked."""
    fig = figure(7.0, 1.0 + 1.7 * len(parts), 0.75, 0.2, 0.55, 0.35)
    axes = fig.subplots(len(parts), 1, sharex=True, squeeze=False)[:, 0]
    spans = [np.flatnonzero(h) for _, h, _, _ in parts]
    lo = min((int(s[0]) for s in spans if s.size), default=0)
    hi = max((int(s[-1]) + 1 for s in spans if s.size), default=1)
    fine = depth_edges(lo, hi + 1)
    edges = np.geomspace(fine[0], fine[-1], 81)  # log-spaced bars over every part's span
    centres = np.sqrt(fine[:-1] * fine[1:])
    for ax, (name, hist, pct, invalid) in zip(axes, parts):
        counts = np.asarray(hist, dtype=np.float64)[lo:hi]
        total = counts.sum()
        if total:
            ax.stairs(np.histogram(centres, bins=edges, weights=counts)[0] / total, edges,
                      fill=True, color="tab:blue", alpha=0.8)  # fmt: skip
        p1, p50, p99 = (pct.get(k) for k in ("p1", "p50", "p99"))
        if p1 is not None and p99 is not None:
            ax.axvspan(p1, p99, color="tab:orange", alpha=0.15,
                       label=f"colour range p1-p99 {p1:.3g}-{p99:.3g} {unit}")  # fmt: skip
        if p50 is not None:
            ax.axvline(p50, color="k", ls="--", lw=1, label=f"p50 = {p50:.3g} {unit}")
        ax.set_xscale("log")
        ax.legend(fontsize=7, frameon=False, loc="upper left")
        ax.set_title(f"{name} ({invalid:.1%} of pixels invalid)", fontsize=9)
        ax.yaxis.set_major_locator(MaxNLocator(3))
        ax.tick_params(labelsize=8)
    axes[-1].set_xlabel(f"depth ({unit}, log scale)", fontsize=9)
    fig.supylabel("fraction of the part's valid pixels", fontsize=8)
    return png(fig, dpi)


def param_distributions(table: ParamTable, dpi: int) -> bytes | None:
    """How often each transform applied, and a histogram of each numeric parameter.

    Small multiples drawn in ONE axes (each panel a cell of a grid, its range written
    under it): a dozen matplotlib Axes with their tick machinery cost ~0.3 s to draw."""
    flags = [i for i, n in enumerate(table.names) if n.endswith(".applied")]
    others = [i for i, n in enumerate(table.names) if not n.endswith(".applied")]
    panels = (1 if flags else 0) + len(others)
    if not panels:
        return None
    cols = min(4, panels)
    rows = math.ceil(panels / cols)
    fig = figure(cols * 2.6, rows * 1.6 + 0.4, 0.1, 0.1, 0.05, 0.4)
    fig.suptitle(f"recorded augmentation parameters over {len(table.keys)} samples", fontsize=10)
    ax = fig.add_axes((0, 0, 1, 1 - 0.4 / fig.get_figheight()))
    ax.set_axis_off()
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    w, h, x0, y0 = 0.84, 0.58, 0.08, 0.22  # panel size and offset inside a cell

    def cell(k: int) -> tuple[float, float]:
        return k % cols + x0, k // cols + y0 + h  # left, baseline

    def frame(k: int, title: str, lo: str, hi: str) -> None:
        left, base = cell(k)
        ax.text(left + w / 2, base - h - 0.04, title, ha="center", va="bottom", fontsize=8)
        ax.plot([left, left + w], [base, base], color="0.3", lw=0.8)
        ax.text(left, base + 0.04, lo, ha="left", va="top", fontsize=7, color="0.3")
        ax.text(left + w, base + 0.04, hi, ha="right", va="top", fontsize=7, color="0.3")

    k = 0
    if flags:
        left, base = cell(0)
        bar = h / len(flags)
        for j, i in enumerate(flags):
            rate = float(np.nanmean(table.values[:, i]))
            top = base - h + j * bar
            ax.fill_between(
                [left, left + w * rate], top + 0.1 * bar, top + 0.9 * bar, color="silver"
            )
            name = table.names[i].removesuffix(".applied")
            ax.text(left + 0.02, top + bar / 2, f"{name} {rate:.0%}", va="center", fontsize=7)
        frame(0, "applied fraction", "0", "1")
        k = 1
    for i in others:  # counts are not labelled: the shape and the range are the point
        col = table.values[:, i]
        col = col[~np.isnan(col)]
        counts, edges = np.histogram(col, bins=min(20, max(5, col.size // 3)))
        left, base = cell(k)
        xs = left + (edges - edges[0]) / max(edges[-1] - edges[0], 1e-12) * w
        ax.stairs(
            base - counts / max(counts.max(), 1) * h,
            xs,
            baseline=base,
            fill=True,
            color="tab:orange",
        )
        frame(k, f"{table.names[i]} (n={col.size})", _value(edges[0]), _value(edges[-1]))
        k += 1
    return png(fig, dpi)


def param_correlation(table: ParamTable, corr: np.ndarray, dpi: int) -> bytes | None:
    """Heatmap of pairwise Pearson r; off-diagonal blocks should be ~0 if draws are
    independent. One axes: names and the colour scale are plain text and images (tick
    and colorbar machinery would double the cost)."""
    k = len(table.names)
    if k < 2:
        return None
    label = 0.06 * max(len(n) for n in table.names) + 0.2  # inches for the names (7 pt)
    cell = 0.4
    width, height = label + k * cell + 1.1, label + k * cell + 0.45
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((label / width, label / height, k * cell / width, k * cell / height))
    ax.set_axis_off()
    ax.imshow(np.ma.masked_invalid(corr), cmap="RdBu_r", vmin=-1, vmax=1, extent=(0, k, k, 0))
    for i, name in enumerate(table.names):
        ax.text(-0.15, i + 0.5, name, ha="right", va="center", fontsize=7)
        ax.text(i + 0.5, k + 0.15, name, ha="center", va="top", rotation=90, fontsize=7)
    if k <= 8:  # numbers in the cells (the page's table lists the strongest pairs)
        for i in range(k):
            for j in range(k):
                if i != j and not math.isnan(corr[i, j]):
                    ax.text(
                        j + 0.5, i + 0.5, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=6
                    )
    # outline blocks of the same transform: correlation inside them can be legitimate
    start = 0
    for j in range(1, k + 1):
        if j == k or table.transforms[j] != table.transforms[start]:
            ax.add_patch(Rectangle((start, start), j - start, j - start, fill=False, lw=1.2))
            start = j
    scale = np.linspace(1, -1, 101)[:, None]  # the colour scale, right of the map
    ax.imshow(scale, cmap="RdBu_r", vmin=-1, vmax=1, extent=(k + 0.4, k + 0.8, k, 0), aspect="auto")
    for value in (1, 0.5, 0, -0.5, -1):
        ax.text(k + 0.95, (1 - value) / 2 * k, f"{value:g}", va="center", fontsize=7)
    ax.text(k + 1.9, k / 2, "Pearson r (pairwise complete)", rotation=90, va="center", fontsize=8)
    ax.set_xlim(0, k + 2.2)
    ax.set_ylim(k, 0)
    ax.set_title("parameter correlations (boxes = same transform)", fontsize=10)
    return png(fig, dpi)
