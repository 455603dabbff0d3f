"""Every picture of the report, in one registry: name (= file ``{name}.png``), page
section, caption, when it applies and the drawing task. ``report.plots`` picks from these
names (null = all); they are checked before the run.

A picture's ``task(ctx)`` gathers what it shows (reading the few samples it needs) and
returns a ``Task``: a module-level function and plain arguments that return PNG bytes,
so it can run in this process or another one (``offload=True`` for the matplotlib plots).

A new picture = one ``Picture`` entry here with its task function. This module stays
light (no matplotlib at import): drawing modules are imported when a picture is drawn.
Longer than 320 lines on purpose: the one registry, each entry beside its task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.config.schema import ReportConfig
from pipeline.errors import PipelineError
from pipeline.report import call
from pipeline.report.context import Context
from pipeline.report.params import crop_window, describe
from pipeline.sample import Sample


@dataclass(frozen=True)
class Task:
    """A picklable drawing: the function ``fn`` ("module:function", imported where it
    runs) applied to ``args`` returns PNG bytes (None: nothing to draw)."""

    fn: str
    args: tuple[Any, ...]

    def __call__(self) -> bytes | None:
        return call(self.fn, *self.args)


@dataclass(frozen=True)
class Picture:
    """One picture: ``task(ctx)`` returns its drawing (None if there is nothing to draw);
    ``applies(ctx)`` says whether it is relevant to this dataset. ``offload``: a plot
    drawn from the accumulated numbers alone (matplotlib, ~0.1-0.3 s), worth running in
    another process while this one reads and composes the samples."""

    name: str
    section: str
    caption: Callable[[Context], str]
    task: Callable[[Context], Task | None]
    applies: Callable[[Context], bool] = lambda ctx: True
    offload: bool = False

    @property
    def file(self) -> str:
        return f"{self.name}.png"


# ---- tasks ----------------------------------------------------------------------------

COLLAGES, PLOTS = "pipeline.report.collages", "pipeline.report.plots"


def _style(ctx: Context) -> Any:
    from pipeline.report.collages import Style

    return Style.of(ctx.cfg.report, ctx.range)


def _cell(sample: Sample | None, window: Any = None) -> Any:
    from pipeline.report.collages import Cell

    return None if sample is None else Cell(sample.image, sample.depth, window)


def _per_part(ctx: Context, name: str) -> Task | None:
    """A mixture's version of picture ``name`` (``part_pictures``), each part in its own
    range; None for a single source (and where a part has nothing to draw)."""
    from pipeline.report import part_pictures

    drawing = getattr(part_pictures, name)(ctx)
    return None if drawing is None else Task(*drawing)


def _collage(ctx: Context) -> Task | None:
    if ctx.parts:
        return _per_part(ctx, "collage")
    shown = [s for s in ctx.chosen if s.key in ctx.shown]
    if not shown:
        return None
    cells = [_cell(ctx.shown[s.key]) for s in shown]
    title = f"{ctx.root.name}: image | depth"
    return Task(
        f"{COLLAGES}:collage",
        (cells, [s.key for s in shown], ctx.cfg.report.cols, _style(ctx), title),
    )


def _parts(ctx: Context) -> Task | None:
    from pipeline.report.collages import Style

    grids = []
    for name, chosen in ctx.part_chosen.items():
        shown = [s for s in chosen if s.key in ctx.shown]
        if shown:
            rng = ctx.part_range(name)
            style = Style.of(ctx.cfg.report, rng)
            title = f"{name} ({shown[0].data_type}): image | depth, {rng.span}"
            grids.append(([_cell(ctx.shown[s.key]) for s in shown], [s.key for s in shown],
                          ctx.cfg.report.cols, style, title))  # fmt: skip
    return Task(f"{COLLAGES}:stacked", (grids,)) if grids else None


def _before_after(ctx: Context) -> Task | None:
    if ctx.parts:
        return _per_part(ctx, "before_after")
    order = list(ctx.cfg.augment.transforms)
    rows, reasons = [], set()
    for s in ctx.firsts:
        source, written = ctx.sources.get(s.index), ctx.shown.get(s.key)
        if source is None or written is None:
            continue
        h, w = source.depth.shape
        window, reason = crop_window(ctx.cfg.augment.transforms, s.params or {}, h, w)
        reasons.update([reason] if reason else [])
        label = f"{s.key}: {describe(s.params or {}, order) or 'no transforms'}"
        rows.append((label, [_cell(source, window), _cell(written)]))
    if not rows:
        return None
    ctx.notes += sorted(reasons)
    drawn = any(cells[0] is not None and cells[0].window is not None for _, cells in rows)
    columns = ["source (outline: the crop window)" if drawn else "source", "augmented (written)"]
    return Task(
        f"{COLLAGES}:labelled_rows", (rows, columns, _style(ctx), "before / after augmentation")
    )


def _copies(ctx: Context) -> Task:
    groups = ctx.copy_groups
    rows = [(g[0].source_key, [_cell(ctx.shown.get(c.key)) for c in g]) for g in groups]
    columns = [f"copy {i}" for i in range(max(len(g) for g in groups))]
    return Task(
        f"{COLLAGES}:labelled_rows",
        (rows, columns, _style(ctx), "augmented copies of the same input"),
    )


def _most_invalid(ctx: Context) -> Task | None:
    if ctx.parts:
        return _per_part(ctx, "most_invalid")
    rows = [
        (
            f"{s.key}: {s.invalid_fraction:.1%} of depth pixels invalid",
            [_cell(ctx.shown.get(s.key)), _cell(ctx.sources.get(s.index))],
        )
        for s in ctx.worst
    ]
    columns = ["written", "source"]
    return (
        Task(f"{COLLAGES}:labelled_rows", (rows, columns, _style(ctx), "most invalid samples"))
        if rows
        else None
    )


def _region_names(ctx: Context) -> dict[str, int]:
    """{region transform: its bit of mask.png} (one region: 255, named by its transform)."""
    from pipeline.augment.regions import region_bits
    from pipeline.augment.traits import spec_traits

    params = ctx.samples[0].params or {} if ctx.samples else {}
    if bits := region_bits(params):
        return bits
    specs = ctx.cfg.augment.transforms
    writers = [name for name in specs if spec_traits(specs[name]).writes_region]
    return {writers[0] if len(writers) == 1 else "evaluation region": 255}


def _regions(ctx: Context) -> Task | None:
    keys = [s.key for s in ctx.chosen if s.key in ctx.shown][: ctx.cfg.report.before_after_rows]
    shown = [ctx.shown[k] for k in keys]
    rows = [(s.key, s.image, s.depth, s.mask) for s in shown if s.mask is not None]
    if not rows:
        return None
    args = (rows, _region_names(ctx), _style(ctx), "evaluation regions (mask.png)")
    return Task(f"{COLLAGES}:regions", args)


def _regions_caption(ctx: Context) -> str:
    from pipeline.report.collages import REGION_COLORS

    names = _region_names(ctx)
    each = ", ".join(f"{n} ({c}, bit {b})" for (n, b), c in zip(names.items(), REGION_COLORS))
    return f"the evaluation regions of mask.png on written samples, tinted and outlined: {each}"


def _has_regions(ctx: Context) -> bool:
    return "mask.png" in ctx.info.encodings.get("members", [])


def _depth_hist(ctx: Context) -> Task | None:
    if ctx.parts:
        return _per_part(ctx, "depth_hist")
    args = (ctx.stats.depth_hist, ctx.summary["depth_percentiles"], ctx.summary["invalid_fraction"])
    return Task(f"{PLOTS}:depth_histogram", (*args, ctx.dpi, ctx.unit))


def _invalid_fraction(ctx: Context) -> Task:
    frac = np.array([s.invalid_fraction for s in ctx.samples], dtype=np.float64)
    worst = ctx.samples[int(frac.argmax())].key
    return Task(f"{PLOTS}:invalid_fraction", (frac, worst, ctx.dpi))


def _rgb_hist(ctx: Context) -> Task:
    args = (ctx.stats.rgb_hist_before, ctx.stats.rgb_hist_after, ctx.dpi)
    return Task(f"{PLOTS}:rgb_histograms", args)


def _params(ctx: Context) -> Task | None:
    if ctx.part_tables:
        return _per_part(ctx, "params")
    return Task(f"{PLOTS}:param_distributions", (ctx.table, ctx.dpi))


def _param_corr(ctx: Context) -> Task:
    return Task(f"{PLOTS}:param_correlation", (ctx.table, ctx.corr, ctx.dpi))


def _colors(c: Context, scope: str = "") -> str:
    rcfg = c.cfg.report
    whole = f"one range {c.range.span}"
    span = "each part's own 1st-99th percentile" if scope == "part" or c.parts else whole
    text = f"{rcfg.colormap}, {span}, invalid = {rcfg.invalid_color}"
    below = rcfg.sparse_below
    if any(1.0 - s.invalid_fraction < below for s in c.samples):
        text += (
            f"; sparse depth (under {below:.0%} of pixels valid) is drawn with each point "
            f"enlarged to a few pixels, nearest wins"
        )
    return text


def _camera(ctx: Context) -> Task | None:
    from pipeline.report import camera_plot

    ctx.notes.extend(camera_plot.warnings(ctx.samples))
    if ctx.parts:
        return _per_part(ctx, "camera")
    return Task("pipeline.report.camera_plot:draw", (camera_plot.arrays(ctx.samples), ctx.dpi))


def _camera_caption(ctx: Context) -> str:
    from pipeline.report import camera_plot

    return camera_plot.caption(ctx.samples)


PICTURES: dict[str, Picture] = {
    p.name: p
    for p in (
        Picture(
            "collage",
            "Samples",
            lambda c: (
                f"{len(c.chosen)} samples spread over the dataset: image | depth, each labelled "
                f"with its own depth range ({_colors(c)})"
            ),
            _collage,
            lambda c: bool(c.chosen),
        ),
        Picture(
            "parts",
            "Samples",
            lambda c: f"each part of the mixture in its own colour range ({_colors(c, 'part')})",
            _parts,
            lambda c: bool(c.part_chosen),
        ),
        Picture(
            "before_after",
            "Samples",
            lambda c: (
                f"the same keys as read from the source (crop window outlined) and as written, "
                f"with the parameters applied ({_colors(c)})"
            ),
            _before_after,
            lambda c: bool(c.firsts),
        ),
        Picture(
            "copies",
            "Samples",
            lambda c: (
                f"augment.copies = {c.cfg.augment.copies}: the copies of one input side by side"
            ),
            _copies,
            lambda c: bool(c.copy_groups),
        ),
        Picture(
            "most_invalid",
            "Samples",
            lambda c: (
                f"the {len(c.worst)} samples with the most invalid depth, as written and in "
                f"the source"
                + (", measured against each part's own typical invalid fraction" if c.parts else "")
            ),
            _most_invalid,
            lambda c: bool(c.worst),
        ),
        Picture("regions", "Samples", _regions_caption, _regions, _has_regions),
        Picture(
            "depth_hist",
            "Distributions",
            lambda c: (
                (
                    "depth over valid pixels, per part on a log axis with the part's colour range "
                    "shaded"
                    if c.parts
                    else "depth over valid pixels"
                )
                + (f" ({c.canonical})" if c.canonical else "")
            ),
            _depth_hist,
            offload=True,
        ),
        Picture(
            "invalid_fraction",
            "Distributions",
            lambda c: "invalid-depth fraction per sample",
            _invalid_fraction,
            lambda c: bool(c.samples),
            offload=True,
        ),
        Picture(
            "rgb_hist",
            "Distributions",
            lambda c: "per-channel RGB histograms before (source) and after augmentation (written)",
            _rgb_hist,
            offload=True,
        ),
        Picture(
            "params",
            "Distributions",
            lambda c: (
                "how often each transform applied, and each recorded parameter's distribution"
                + (", per part" if c.parts else "")
            ),
            _params,
            lambda c: bool(c.table.names),
            offload=True,
        ),
        Picture(
            "param_corr",
            "Distributions",
            lambda c: (
                "correlation of the recorded parameters: outside the boxes (different "
                "transforms) it should be ~0"
            ),
            _param_corr,
            lambda c: len(c.table.names) > 1,
            offload=True,
        ),
        Picture(
            "camera",
            "Distributions",
            _camera_caption,
            _camera,
            lambda c: any(s.camera is not None for s in c.samples),
            offload=True,
        ),
    )
}


def check_names(names: list[str] | None) -> None:
    """Refuse ``report.plots`` names that are not pictures, before any work."""
    unknown = sorted(set(names or []) - set(PICTURES))
    if unknown:
        raise PipelineError(
            f"report.plots: unknown picture(s) {unknown}; choose from {list(PICTURES)} "
            f"(or null for all)"
        )


def check(rcfg: ReportConfig) -> None:
    """Every report setting, before the run: picture names, sizes, colours."""
    from pipeline.report import colors

    check_names(rcfg.plots)
    colors.check(rcfg)


def selected(names: list[str] | None) -> list[Picture]:
    """The pictures ``report.plots`` asks for, in registry order."""
    check_names(names)
    return [p for name, p in PICTURES.items() if names is None or name in names]
