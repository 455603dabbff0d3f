"""What the report's pictures are drawn from: the dataset's records and accumulated
numbers, and the few samples shown, each read once and only if a picture needs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config.schema import Config
from pipeline.dataset.records import DatasetInfo, SampleRecord, ShardManifest
from pipeline.dataset.stats import Stats
from pipeline.errors import PipelineError
from pipeline.report.colors import DepthRange
from pipeline.report.params import ParamTable
from pipeline.report.samples import copies_of, pick, read_source, read_written
from pipeline.sample import Sample
from pipeline.sources import Source

WORST = 5  # most-invalid samples listed and shown


@dataclass
class Context:
    """What pictures are drawn from; sample reads happen once, only if a picture needs them.
    ``source``: the run's opened source (None: opened from the config when needed)."""

    root: Path
    cfg: Config
    manifests: list[ShardManifest]
    info: DatasetInfo
    summary: dict[str, Any]
    stats: Stats
    table: ParamTable
    corr: np.ndarray
    source: Source | None = None
    notes: list[str] = field(default_factory=list)
    part_tables: dict[str, ParamTable] = field(default_factory=dict)  # a mixture's, by part

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
    def worst(self) -> list[SampleRecord]:
        """The most invalid samples (any invalid pixel at all), most invalid first."""
        ranked = sorted(self.samples, key=lambda s: -s.invalid_fraction)[:WORST]
        return [s for s in ranked if s.invalid_fraction > 0]

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
        keys += [s.key for chosen in self.part_chosen.values() for s in chosen]
        keys += [s.key for s in self.worst] if self.wants("most_invalid") else []
        return read_written(self.root, self.cfg, self.manifests, keys)

    @cached_property
    def sources(self) -> dict[int, Sample]:
        """Inputs as the source gives them ({} with a note if unreadable)."""
        indices = [s.index for s in self.firsts] if self.wants("before_after") else []
        indices += [s.index for s in self.worst] if self.wants("most_invalid") else []
        try:
            return read_source(self.cfg, indices, self.source)
        except (PipelineError, OSError, ValueError) as exc:
            self.notes.append(f"source pictures skipped: the source could not be read ({exc})")
            return {}

    @cached_property
    def range(self) -> DepthRange:
        pct = self.summary.get("depth_percentiles", {})
        return DepthRange.of(self.cfg.report, [pct.get("p1")], [pct.get("p99")])

    @cached_property
    def part_chosen(self) -> dict[str, list[SampleRecord]]:
        """A mixture's samples shown per part (one row each), spread over the dataset."""
        parts = (self.summary.get("parts") or {}) if self.wants("parts") else {}
        out = {}
        for name in parts:
            mine = [s for s in self.samples if s.dataset == name and s.copy == 0]
            idx = np.linspace(0, len(mine) - 1, min(self.cfg.report.cols, len(mine)))
            out[name] = [mine[i] for i in sorted(set(idx.round().astype(int).tolist()))]
        return out

    def part_range(self, name: str) -> DepthRange:
        """The colour range of part ``name``: its own 1st / 99th percentile."""
        pct = (self.summary.get("parts") or {}).get(name, {}).get("depth_percentiles", {})
        return DepthRange.of(self.cfg.report, [pct.get("p1")], [pct.get("p99")])

    def wants(self, name: str) -> bool:
        return self.cfg.report.plots is None or name in self.cfg.report.plots

    @property
    def dpi(self) -> int:
        return self.cfg.report.dpi
