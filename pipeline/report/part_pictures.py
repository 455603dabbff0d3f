"""The report's pictures for a mixture: every picture that depends on the data drawn per
part (``parts.png`` is the model), each part in its own colour range, so KITTI's LiDAR
is not drawn in NYU's 2-10 m nor NYU's rooms in KITTI's 80 m.

Each function returns the drawing as ("module:function", args) for
``pictures.Task`` (None: nothing to draw); ``pictures`` calls them when the dataset has
parts, and draws a single source as before.
"""

from __future__ import annotations

from typing import Any

from pipeline.report.collages import Cell, Style
from pipeline.report.context import Context
from pipeline.report.params import crop_window, describe
from pipeline.sample import Sample

COLLAGES, PLOTS = "pipeline.report.collages", "pipeline.report.plots"
Drawing = tuple[str, tuple[Any, ...]]


def _cell(sample: Sample | None, window: Any = None) -> Cell | None:
    return None if sample is None else Cell(sample.image, sample.depth, window)


def _style(ctx: Context, part: str) -> Style:
    return Style.of(ctx.cfg.report, ctx.part_range(part))


def _label(ctx: Context, part: str) -> str:
    return f"{part}: colour range {ctx.part_range(part).span}"


def collage(ctx: Context) -> Drawing | None:
    """The collage's samples in one grid per part, each in its part's range."""
    grids = []
    for part in ctx.parts:
        shown = [s for s in ctx.chosen if s.dataset == part and s.key in ctx.shown]
        if shown:
            cells = [_cell(ctx.shown[s.key]) for s in shown]
            title = f"{part}: image | depth, {ctx.part_range(part).span}"
            keys = [s.key for s in shown]
            grids.append((cells, keys, ctx.cfg.report.cols, _style(ctx, part), title))
    return (f"{COLLAGES}:stacked", (grids,)) if grids else None


def before_after(ctx: Context) -> Drawing | None:
    """Source and written samples of every part (each part's own crop window)."""
    calls = []
    for part in ctx.parts:
        order = list(ctx.part_tables[part].transforms) if part in ctx.part_tables else []
        specs = ctx.part_specs(part)
        rows = []
        for s in (s for s in ctx.firsts if s.dataset == part):
            source, written = ctx.sources.get(s.index), ctx.shown.get(s.key)
            if source is None or written is None:
                continue
            h, w = source.depth.shape
            window, reason = crop_window(specs, s.params or {}, h, w)
            ctx.notes += [reason] if reason and reason not in ctx.notes else []
            label = f"{s.key}: {describe(s.params or {}, order) or 'no transforms'}"
            rows.append((label, [_cell(source, window), _cell(written)]))
        if rows:
            columns = ["source (outline: the crop window)", "augmented (written)"]
            args = (rows, columns, _style(ctx, part), f"before / after augmentation: {part}")
            calls.append((_label(ctx, part), f"{COLLAGES}:labelled_rows", args))
    return (f"{COLLAGES}:stacked_calls", (calls,)) if calls else None


def most_invalid(ctx: Context) -> Drawing | None:
    """The samples most above their part's typical invalid fraction, in their part's range."""
    calls = []
    for part in ctx.parts:
        typical = ctx.typical_invalid.get(part, 0.0)
        rows = [
            (
                f"{s.key}: {s.invalid_fraction:.1%} invalid ({part} typically {typical:.1%})",
                [_cell(ctx.shown.get(s.key)), _cell(ctx.sources.get(s.index))],
            )
            for s in ctx.worst
            if s.dataset == part
        ]
        if rows:
            args = (rows, ["written", "source"], _style(ctx, part), f"most invalid: {part}")
            calls.append((_label(ctx, part), f"{COLLAGES}:labelled_rows", args))
    return (f"{COLLAGES}:stacked_calls", (calls,)) if calls else None


def depth_hist(ctx: Context) -> Drawing:
    """One histogram per part on a log axis, each part's colour range shaded."""
    parts = [
        (p, ctx.part_stats[p].depth_hist, ctx.part_summary(p).get("depth_percentiles", {}),
         float(ctx.part_summary(p).get("invalid_fraction") or 0.0))
        for p in ctx.parts
        if p in ctx.part_stats
    ]  # fmt: skip
    return f"{PLOTS}:part_depth_histograms", (parts, ctx.unit, ctx.dpi)


def params(ctx: Context) -> Drawing:
    """The parameter histograms of each part (their crops and frames differ)."""
    calls = [
        (f"{part}: {len(table.keys)} samples", f"{PLOTS}:param_distributions", (table, ctx.dpi))
        for part, table in ctx.part_tables.items()
        if table.names
    ]
    return f"{COLLAGES}:stacked_calls", (calls,)


def camera(ctx: Context) -> Drawing:
    """Focal lengths and principal points per part."""
    from pipeline.report import camera_plot

    calls = []
    for part in ctx.parts:
        mine = [s for s in ctx.samples if s.dataset == part]
        args = (camera_plot.arrays(mine), ctx.dpi)
        calls.append((part, "pipeline.report.camera_plot:draw", args))
    return f"{COLLAGES}:stacked_calls", (calls,)
