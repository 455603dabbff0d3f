"""Report plots (matplotlib Figure API, Agg): depth and RGB histograms, invalid fraction
per sample, augmentation parameter distributions and their correlations.

Each function takes plain arrays (picklable: it can run in another process) and returns
PNG bytes. Cheap by construction: fixed margins instead of ``bbox_inches="tight"`` (which
draws every figure twice), a low dpi, few ticks and no per-bar artists.
"""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pipeline.report.params import ParamTable  # noqa: E402
from pipeline.stats import DEPTH_BIN  # noqa: E402

CHANNELS = (("R", "tab:red"), ("G", "tab:green"), ("B", "tab:blue"))


def _figure(
    width: float, height: float, left: float, right: float, bottom: float, top: float
) -> Figure:
    """A figure with fixed margins in inches (room for tick labels and titles)."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height
    )
    return fig


def _png(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 3})
    return buf.getvalue()


def depth_histogram(
    depth_hist: np.ndarray, percentiles: dict[str, Any], invalid_fraction: float, dpi: int
) -> bytes:
    """Histogram of valid depth (fraction of valid pixels), with percentile markers."""
    fig = _figure(7.0, 3.0, 0.75, 0.2, 0.55, 0.35)
    ax = fig.add_subplot()
    hist = np.asarray(depth_hist, dtype=np.float64)
    total = hist.sum()
    if total:
        last = int(np.nonzero(hist)[0].max()) + 1
        group = max(1, math.ceil(last / 120))  # at most ~120 bars
        n = math.ceil(last / group) * group
        coarse = np.pad(hist[:last], (0, n - last)).reshape(-1, group).sum(1) / total
        edges = np.arange(coarse.size + 1) * group * DEPTH_BIN
        ax.stairs(coarse, edges, fill=True, color="tab:blue", alpha=0.8)
        for name, style in (("p1", ":"), ("p50", "--"), ("p99", ":")):
            value = percentiles.get(name)
            if value is not None:
                ax.axvline(value, color="k", ls=style, lw=1, label=f"{name} = {value:.2f} m")
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel("depth (m)", fontsize=9)
    ax.set_ylabel("fraction of valid pixels", fontsize=9)
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(labelsize=8)
    ax.set_title(f"depth over valid pixels ({invalid_fraction:.1%} of pixels invalid)", fontsize=10)
    return _png(fig, dpi)


def invalid_fraction(fractions: np.ndarray, worst_key: str, dpi: int) -> bytes:
    """Invalid-depth fraction of each written sample (in write order) and its histogram."""
    frac = np.asarray(fractions, dtype=np.float64)
    fig = _figure(9.0, 2.8, 0.7, 0.2, 0.55, 0.35)
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
    return _png(fig, dpi)


def rgb_histograms(before: np.ndarray, after: np.ndarray, dpi: int) -> bytes:
    """Per-channel histograms of the source (dashed) and written (solid) images, in one
    axes with one short legend (the means are in stats.json and on the page)."""
    fig = _figure(8.0, 3.0, 0.75, 0.2, 0.55, 0.3)
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
    return _png(fig, dpi)


def param_distributions(table: ParamTable, dpi: int) -> bytes | None:
    """How often each transform applied, and a histogram of each numeric parameter."""
    flags = [i for i, n in enumerate(table.names) if n.endswith(".applied")]
    others = [i for i, n in enumerate(table.names) if not n.endswith(".applied")]
    panels = (1 if flags else 0) + len(others)
    if not panels:
        return None
    cols = min(4, panels)
    rows = math.ceil(panels / cols)
    fig = _figure(cols * 2.6, rows * 1.9 + 0.45, 0.45, 0.15, 0.35, 0.75)
    fig.subplots_adjust(hspace=0.75, wspace=0.45)
    fig.suptitle(f"recorded augmentation parameters over {len(table.keys)} samples", fontsize=10)
    k = 0
    if flags:
        ax = fig.add_subplot(rows, cols, 1)
        rates = [float(np.nanmean(table.values[:, i])) for i in flags]
        labels = [table.names[i].removesuffix(".applied") for i in flags]
        ax.barh(np.arange(len(flags)), rates, color="silver")
        for y, label in enumerate(labels):  # names on the bars: no margin to reserve
            ax.text(0.02, y, label, va="center", fontsize=7)
        ax.yaxis.set_visible(False)
        ax.set_xlim(0, 1)
        ax.set_title("applied fraction", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        k = 1
    for i in others:  # counts on the y axis are left unlabelled: the shape is the point
        col = table.values[:, i]
        col = col[~np.isnan(col)]
        ax = fig.add_subplot(rows, cols, k + 1)
        counts, edges = np.histogram(col, bins=min(20, max(5, col.size // 3)))
        ax.stairs(counts, edges, fill=True, color="tab:orange")
        ax.set_title(f"{table.names[i]} (n={col.size})", fontsize=8)
        ax.yaxis.set_visible(False)  # no y axis to draw: ~1/3 of a panel's cost
        ax.spines[["left", "right", "top"]].set_visible(False)
        ax.xaxis.set_major_locator(MaxNLocator(2))
        ax.tick_params(labelsize=7)
        k += 1
    return _png(fig, dpi)


def param_correlation(table: ParamTable, corr: np.ndarray, dpi: int) -> bytes | None:
    """Heatmap of pairwise Pearson r; off-diagonal blocks should be ~0 if draws are independent."""
    k = len(table.names)
    if k < 2:
        return None
    longest = max(len(n) for n in table.names)
    label_in = 0.3 + 0.055 * longest  # room for the longest tick label (7 pt)
    cell = 0.42
    size = k * cell
    fig = _figure(size + label_in + 1.2, size + label_in + 0.5, label_in, 1.2, label_in, 0.4)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(corr), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(k), table.names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), table.names, fontsize=7)
    if k <= 8:  # numbers in the cells (the page's table lists the strongest pairs)
        for i in range(k):
            for j in range(k):
                if i != j and not math.isnan(corr[i, j]):
                    ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=6)
    # outline blocks of the same transform: correlation inside them can be legitimate
    start = 0
    for j in range(1, k + 1):
        if j == k or table.transforms[j] != table.transforms[start]:
            ax.add_patch(
                Rectangle((start - 0.5, start - 0.5), j - start, j - start, fill=False, lw=1.2)
            )
            start = j
    cax = fig.add_axes(
        (
            1 - 1.0 / fig.get_figwidth(),
            label_in / fig.get_figheight(),
            0.15 / fig.get_figwidth(),
            size / fig.get_figheight(),
        )
    )
    bar = fig.colorbar(im, cax=cax)
    bar.set_label("Pearson r (pairwise complete)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    ax.set_title("parameter correlations (boxes = same transform)", fontsize=10)
    return _png(fig, dpi)
