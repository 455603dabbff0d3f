"""Every picture of the report, in one registry: name (= file ``{name}.png``), page
section, caption, when it applies and how it is drawn. ``report.plots`` picks from these
names (null = all); they are checked before the run.

A new picture = one ``Picture`` entry here with its draw function. This module stays
light (no matplotlib at import): drawing modules are imported when a picture is drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.records import DatasetInfo, SampleRecord, ShardManifest
from pipeline.report.params import ParamTable
from pipeline.report.samples import copies_of, pick, read_source, read_written
from pipeline.sample import Sample
from pipeline.stats import Stats


@dataclass
class Context:
    """What pictures are drawn from; sample reads happen once, only if a picture needs them."""

    root: Path
    cfg: Config
    manifests: list[ShardManifest]
    info: DatasetInfo
    summary: dict[str, Any]
    stats: Stats
    table: ParamTable
    corr: np.ndarray
    notes: list[str] = field(default_factory=list)

    @cached_property
    def samples(self) -> list[SampleRecord]:
        return [s for m in self.manifests for s in m.samples]

    @cached_property
    def chosen(self) -> list[SampleRecord]:
        """Inputs shown in the collage, spread over the dataset."""
        return pick(self.manifests, self.cfg.report.rows * self.cfg.report.cols)

    @cached_property
    def firsts(self) -> list[SampleRecord]:
        return self.chosen[: self.cfg.report.before_after_rows]

    @cached_property
    def copy_groups(self) -> list[list[SampleRecord]]:
        if self.cfg.augment.copies <= 1:
            return []
        rows = self.chosen[: self.cfg.report.copies_rows]
        return [copies_of(self.manifests, s.index)[:6] for s in rows]

    @cached_property
    def shown(self) -> dict[str, Sample]:
        """The written samples any picture shows, read back once."""
        keys = [s.key for s in self.chosen] + [c.key for g in self.copy_groups for c in g]
        return read_written(self.root, self.cfg, self.manifests, keys)

    @cached_property
    def sources(self) -> dict[int, Sample]:
        """The before/after inputs as the source gives them ({} with a note if unreadable)."""
        try:
            return read_source(self.cfg, [s.index for s in self.firsts])
        except (PipelineError, OSError, ValueError) as exc:
            self.notes.append(f"before/after grid skipped: the source could not be read ({exc})")
            return {}

    @cached_property
    def norm(self) -> Any:
        from pipeline.report.collages import depth_norm

        return depth_norm(self.cfg.report, self.summary)

    @property
    def span(self) -> str:
        return f"{self.norm.vmin:.2f}-{self.norm.vmax:.2f} m"

    @property
    def dpi(self) -> int:
        return max(self.cfg.report.dpi, 60)


@dataclass(frozen=True)
class Picture:
    """One picture: ``draw(ctx, path)`` writes ``path`` and returns False if it had
    nothing to draw; ``applies(ctx)`` says whether it is relevant to this dataset."""

    name: str
    section: str
    caption: Callable[[Context], str]
    draw: Callable[[Context, Path], bool]
    applies: Callable[[Context], bool] = lambda ctx: True

    @property
    def file(self) -> str:
        return f"{self.name}.png"


# ---- draw functions ---------------------------------------------------------------------


def _collage(ctx: Context, path: Path) -> bool:
    from pipeline.report import collages

    cells = [ctx.shown[s.key] for s in ctx.chosen if s.key in ctx.shown]
    if not cells:
        return False
    collages.collage(cells, path, ctx.cfg.report, ctx.norm, f"{ctx.root.name}: image | depth")
    return True


def _before_after(ctx: Context, path: Path) -> bool:
    from pipeline.report import collages

    pairs = [
        (s.key, [ctx.sources[s.index], ctx.shown[s.key]])
        for s in ctx.firsts
        if s.index in ctx.sources and s.key in ctx.shown
    ]
    if not pairs:
        return False
    collages.labelled_rows(
        pairs,
        ["source", "augmented (written)"],
        path,
        ctx.cfg.report,
        ctx.norm,
        "before / after augmentation",
        label_width=18,
    )
    return True


def _copies(ctx: Context, path: Path) -> bool:
    from pipeline.report import collages

    groups = ctx.copy_groups
    ncopies = max(len(g) for g in groups)
    collages.labelled_rows(
        [(g[0].key.rsplit("_c", 1)[0], [ctx.shown.get(c.key) for c in g]) for g in groups],
        [f"copy {i}" for i in range(ncopies)],
        path,
        ctx.cfg.report,
        ctx.norm,
        "augmented copies of the same input",
        label_width=18,
    )
    return True


def _depth_hist(ctx: Context, path: Path) -> bool:
    from pipeline.report import plots

    plots.depth_histogram(ctx.stats, ctx.summary, path, ctx.dpi)
    return True


def _invalid_fraction(ctx: Context, path: Path) -> bool:
    from pipeline.report import plots

    plots.invalid_fraction(ctx.samples, path, ctx.dpi)
    return True


def _rgb_hist(ctx: Context, path: Path) -> bool:
    from pipeline.report import plots

    plots.rgb_histograms(ctx.stats, path, ctx.dpi)
    return True


def _params(ctx: Context, path: Path) -> bool:
    from pipeline.report import plots

    return plots.param_distributions(ctx.table, path, ctx.dpi)


def _param_corr(ctx: Context, path: Path) -> bool:
    from pipeline.report import plots

    return plots.param_correlation(ctx.table, ctx.corr, path, ctx.dpi)


def _camera(ctx: Context, path: Path) -> bool:
    from pipeline.report import camera_plot

    ctx.notes.extend(camera_plot.warnings(ctx.samples))
    return camera_plot.draw(ctx.samples, path, ctx.dpi)


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
                f"{len(c.chosen)} samples spread over the dataset: image | depth "
                f"({c.cfg.report.colormap}, fixed range {c.span}, "
                f"invalid = {c.cfg.report.invalid_color})"
            ),
            _collage,
            lambda c: bool(c.chosen),
        ),
        Picture(
            "before_after",
            "Samples",
            lambda c: f"the same keys before (source) and after augmentation, range {c.span}",
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
        Picture("depth_hist", "Distributions", lambda c: "depth over valid pixels", _depth_hist),
        Picture(
            "invalid_fraction",
            "Distributions",
            lambda c: "invalid-depth fraction per sample",
            _invalid_fraction,
            lambda c: bool(c.samples),
        ),
        Picture(
            "rgb_hist",
            "Distributions",
            lambda c: "per-channel RGB histograms before (source) and after augmentation (written)",
            _rgb_hist,
        ),
        Picture(
            "params",
            "Distributions",
            lambda c: (
                "how often each transform applied, and each recorded parameter's distribution"
            ),
            _params,
            lambda c: bool(c.table.names),
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
        ),
        Picture(
            "camera",
            "Distributions",
            _camera_caption,
            _camera,
            lambda c: any(s.camera is not None for s in c.samples),
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


def selected(names: list[str] | None) -> list[Picture]:
    """The pictures ``report.plots`` asks for, in registry order."""
    check_names(names)
    return [p for name, p in PICTURES.items() if names is None or name in names]
