"""Report plots (matplotlib Figure API, Agg): depth and RGB histograms, invalid fraction
per sample, augmentation parameter distributions and their correlations.

Everything here is drawn from the accumulators and manifests the workers wrote; nothing
re-reads the dataset.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from pipeline.records import SampleRecord  # noqa: E402
from pipeline.report.collages import save_png  # noqa: E402
from pipeline.report.params import ParamTable  # noqa: E402
from pipeline.stats import DEPTH_BIN, Stats  # noqa: E402

CHANNELS = (("R", "tab:red"), ("G", "tab:green"), ("B", "tab:blue"))


def depth_histogram(stats: Stats, summary: dict[str, Any], path: Path, dpi: int) -> None:
    """Histogram of valid depth (fraction of valid pixels), with percentile markers."""
    fig = Figure(figsize=(7.0, 3.2))
    ax = fig.subplots()
    hist = stats.depth_hist.astype(np.float64)
    total = hist.sum()
    if total:
        last = int(np.nonzero(hist)[0].max()) + 1
        group = max(1, math.ceil(last / 120))  # at most ~120 bars
        n = math.ceil(last / group) * group
        coarse = np.pad(hist[:last], (0, n - last)).reshape(-1, group).sum(1) / total
        edges = np.arange(coarse.size + 1) * group * DEPTH_BIN
        ax.stairs(coarse, edges, fill=True, color="tab:blue", alpha=0.8)
        for name, style in (("p1", ":"), ("p50", "--"), ("p99", ":")):
            value = summary["depth_percentiles"].get(name)
            if value is not None:
                ax.axvline(value, color="k", ls=style, lw=1, label=f"{name} = {value:.2f} m")
        ax.legend(fontsize=8)
    ax.set_xlabel("depth (m)")
    ax.set_ylabel("fraction of valid pixels")
    ax.set_title(
        f"depth over valid pixels ({summary['invalid_fraction']:.1%} of pixels invalid)",
        fontsize=10,
    )
    save_png(fig, path, dpi)


def invalid_fraction(samples: list[SampleRecord], path: Path, dpi: int) -> None:
    """Invalid-depth fraction of each written sample (in write order) and its histogram."""
    frac = np.array([s.invalid_fraction for s in samples], dtype=np.float64)
    fig = Figure(figsize=(9.0, 3.0))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    x = np.arange(frac.size)
    if frac.size <= 200:
        left.bar(x, frac, width=1.0, color="tab:purple")
    else:
        left.plot(x, frac, ".", ms=2, color="tab:purple")
    left.set_xlabel("sample (write order)")
    left.set_ylabel("invalid fraction")
    left.set_xlim(-0.5, max(frac.size - 0.5, 0.5))
    if frac.size:
        worst = int(frac.argmax())
        left.set_title(
            f"mean {frac.mean():.3f}, max {frac.max():.3f} ({samples[worst].key})",
            fontsize=9,
        )
    right.hist(frac, bins=20, range=(0, max(float(frac.max(initial=0)), 1e-3)), color="tab:purple")
    right.set_xlabel("invalid fraction")
    right.set_ylabel("samples")
    save_png(fig, path, dpi)


def rgb_histograms(stats: Stats, path: Path, dpi: int) -> None:
    """Per-channel histograms of the source (before) and written (after) images."""
    fig = Figure(figsize=(10.0, 2.8))
    axes = fig.subplots(1, 3, sharey=True)
    levels = np.arange(256)
    for ax, (c, (name, color)) in zip(axes, enumerate(CHANNELS)):
        for hist, style, label in (
            (stats.rgb_hist_before[c], "--", "before (source)"),
            (stats.rgb_hist_after[c], "-", "after (written)"),
        ):
            total = hist.sum()
            if total:
                mean = float(hist @ levels / total)
                ax.plot(
                    levels,
                    hist / total,
                    style,
                    color=color,
                    lw=1,
                    label=f"{label}, mean {mean:.1f}",
                )
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("value")
        if ax.lines:
            ax.legend(fontsize=7)
    axes[0].set_ylabel("fraction of pixels")
    save_png(fig, path, dpi)


def param_distributions(table: ParamTable, path: Path, dpi: int) -> bool:
    """How often each transform applied, and a histogram of each numeric parameter."""
    flags = [i for i, n in enumerate(table.names) if n.endswith(".applied")]
    others = [i for i, n in enumerate(table.names) if not n.endswith(".applied")]
    panels = (1 if flags else 0) + len(others)
    if not panels:
        return False
    cols = min(4, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(cols * 2.8, rows * 2.2))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    k = 0
    if flags:
        rates = [float(np.nanmean(table.values[:, i])) for i in flags]
        labels = [table.names[i].removesuffix(".applied") for i in flags]
        axes[0].barh(labels, rates, color="tab:gray")
        axes[0].set_xlim(0, 1)
        axes[0].set_title("applied fraction", fontsize=9)
        axes[0].tick_params(labelsize=7)
        k = 1
    for i in others:
        col = table.values[:, i]
        col = col[~np.isnan(col)]
        ax = axes[k]
        ax.hist(col, bins=min(20, max(5, col.size // 3)), color="tab:orange")
        ax.set_title(f"{table.names[i]} (n={col.size})", fontsize=8)
        ax.tick_params(labelsize=7)
        k += 1
    for ax in axes[k:]:
        ax.axis("off")
    fig.suptitle(f"recorded augmentation parameters over {len(table.keys)} samples", fontsize=10)
    fig.subplots_adjust(hspace=0.55, wspace=0.35, left=0.1)
    save_png(fig, path, dpi)
    return True


def param_correlation(table: ParamTable, corr: np.ndarray, path: Path, dpi: int) -> bool:
    """Heatmap of pairwise Pearson r; off-diagonal blocks should be ~0 if draws are independent."""
    k = len(table.names)
    if k < 2:
        return False
    size = max(4.0, 0.45 * k + 2.0)
    fig = Figure(figsize=(size + 1.0, size))
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(corr), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(k), table.names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), table.names, fontsize=7)
    if k <= 16:
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
    fig.colorbar(im, ax=ax, fraction=0.04, label="Pearson r (pairwise complete)")
    ax.set_title("parameter correlations (boxes = same transform)", fontsize=10)
    save_png(fig, path, dpi)
    return True
