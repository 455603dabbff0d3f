"""What the report's pictures are drawn from: the dataset's records and accumulated
numbers, and the few samples shown, each read once and only if a picture needs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config.schema import Config
from pipeline.dataset.reader import ReadSample
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
    def parts(self) -> list[str]:
        """A mixture's part names in the config's order ([] for one source)."""
        seen = self.summary.get("parts") or {}
        order = list(getattr(self.cfg.source, "parts", None) or {})
        return [p for p in order if p in seen] + [p for p in seen if p not in order]

    @cached_property
    def firsts(self) -> list[SampleRecord]:
        """The before / after rows: from every part of a mixture in turn."""
        n = self.cfg.report.before_after_rows
        if not self.parts:
            return self.chosen[:n]
        pools = [[s for s in self.samples if s.dataset == p and s.copy == 0] for p in self.parts]
        picked = [pool[i] for i in range(n) for pool in pools if i < len(pool)]
        return picked[: max(n, len(self.parts))]

    @cached_property
    def typical_invalid(self) -> dict[str, float]:
        """Each part's median invalid fraction ({"": ...} for one source: 0, so the
        ranking is by the fraction itself)."""
        if not self.parts:
            return {"": 0.0}
        return {
            p: float(np.median([s.invalid_fraction for s in self.samples if s.dataset == p]))
            for p in self.parts
        }

    @cached_property
    def worst(self) -> list[SampleRecord]:
        """The most invalid samples (any invalid pixel at all), most invalid first; in a
        mixture, by how far each is above its own part's typical fraction (LiDAR is ~95%
        empty by nature), so a part's outliers show, not a whole part."""
        typical = self.typical_invalid

        def excess(s: SampleRecord) -> float:
            return s.invalid_fraction - typical.get(s.dataset, 0.0)

        ranked = sorted(self.samples, key=lambda s: -excess(s))[:WORST]
        return [s for s in ranked if s.invalid_fraction > 0 and excess(s) > 0]

    @cached_property
    def part_stats(self) -> dict[str, Stats]:
        """A mixture's accumulated numbers per part."""
        out: dict[str, Stats] = {}
        for m in self.manifests:
            for name, stats in m.part_stats.items():
                out.setdefault(name, Stats()).merge(stats)
        return out

    @cached_property
    def copy_groups(self) -> list[list[SampleRecord]]:
        if self.cfg.augment.copies <= 1:
            return []
        rows = self.chosen[: self.cfg.report.copies_rows]
        return [copies_of(self.manifests, s.index)[:6] for s in rows]

    @cached_property
    def shown(self) -> dict[str, ReadSample]:
        """The written samples any picture shows, read back once (with their masks)."""
        keys = [s.key for s in self.chosen] + [c.key for g in self.copy_groups for c in g]
        keys += [s.key for chosen in self.part_chosen.values() for s in chosen]
        keys += [s.key for s in self.worst] if self.wants("most_invalid") else []
        keys += [s.key for s in self.firsts] if self.wants("before_after") else []
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
    def canonical(self) -> str | None:
        """What the depth is when a canonical camera scaled it (None: metres)."""
        return self.info.encodings.get("depth", {}).get("canonical", {}).get("meaning")

    @property
    def unit(self) -> str:
        """The depth unit of every axis, range and caption."""
        return "canonical m" if self.canonical else "m"

    @cached_property
    def range(self) -> DepthRange:
        pct = self.summary.get("depth_percentiles", {})
        return DepthRange.of(self.cfg.report, [pct.get("p1")], [pct.get("p99")], self.unit)

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
        return DepthRange.of(self.cfg.report, [pct.get("p1")], [pct.get("p99")], self.unit)

    def part_summary(self, name: str) -> dict[str, Any]:
        """``stats.json``'s numbers of part ``name``."""
        return dict((self.summary.get("parts") or {}).get(name, {}))

    def part_specs(self, name: str) -> dict[str, Any]:
        """The transforms part ``name`` was augmented with."""
        from pipeline.config.mixture import part_augments
        from pipeline.config.sources import MixConfig

        if not isinstance(self.cfg.source, MixConfig) or name not in self.cfg.source.parts:
            return dict(self.cfg.augment.transforms)
        return dict(part_augments(self.cfg.augment, self.cfg.source)[name].transforms)

    def wants(self, name: str) -> bool:
        return self.cfg.report.plots is None or name in self.cfg.report.plots

    @property
    def dpi(self) -> int:
        return self.cfg.report.dpi
