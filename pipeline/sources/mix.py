"""``source=mix``: several sources as one, in the order and proportions of its plan
(``pipeline.sources.mix_plan``).

Mixture position ``i`` is sample ``k`` of some part, which is input ``j`` of that part's
source read for the ``r``-th time: its key is ``{part}/{source key}`` (``_r{r}`` added
for a repeat), its origin names the part (``dataset``) and its ``data_type``, so that
``finalize`` applies the part's depth scale and range, the worker picks the part's
augmenter and the record carries the tag. A repeat is a different mixture position, so
it is augmented from its own seed (``SeedSequence([seed, position, copy])``).

Reads are grouped: the inputs a range of positions needs are read part by part in
increasing runs (gaps of a few inputs are read through), then yielded in mixture order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from pipeline.config.sources import MixConfig
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Origin, Sample
from pipeline.sources import Source, open_source
from pipeline.sources.mix_plan import PartPlan, Schedule, counts

GAP = 8  # read through up to this many unwanted inputs rather than start a new read


class MixSource(Source):
    """The parts' sources opened, their plans and the mixture's schedule."""

    def __init__(self, cfg: MixConfig) -> None:
        if not cfg.parts:
            raise PipelineError("source=mix needs at least one part: source.parts.<name>")
        self.cfg = cfg
        self.names = list(cfg.parts)
        self.sources: dict[str, Source] = {}
        sizes = []
        for name, part in cfg.parts.items():
            try:
                src = open_source(part.source)
            except PipelineError as exc:
                raise PipelineError(f"source.parts.{name}: {exc}") from None
            self.sources[name] = src
            n = len(src)
            if part.source.limit is not None:
                n = min(n, part.source.limit)
            sizes.append(n)
        self.plans = self._plans(sizes)
        self.schedule = Schedule([p.count for p in self.plans], max(cfg.shard_size, 1))

    def _plans(self, sizes: list[int]) -> list[PartPlan]:
        cfg, parts = self.cfg, list(self.cfg.parts.values())
        for name, part in cfg.parts.items():
            if part.weight is not None and part.count is not None:
                raise PipelineError(
                    f"source.parts.{name}: both weight={part.weight:g} and count={part.count} "
                    f"are set; give one of them (count: exactly that many samples)"
                )
        weighted = [p.weight is not None for p in parts if p.count is None]
        if any(weighted) and not all(weighted):
            raise PipelineError(
                "source.parts: give every part without a count a weight, or none of them "
                "(then each part's share is its number of inputs)"
            )
        weights = [p.weight if p.weight is not None else float(n) for p, n in zip(parts, sizes)]
        fixed = [p.count for p in parts]
        total = cfg.num_samples
        if total is None:
            total = sum(n if c is None else c for n, c in zip(sizes, fixed))
        counted = sum(c for c in fixed if c is not None)
        if counted > total or (None not in fixed and counted != total):
            raise PipelineError(
                f"source.parts: the parts' counts add up to {counted}, not source.num_samples="
                f"{total}; make them agree (or set source.num_samples=null)"
            )
        plans = [
            PartPlan(name, n, c, cfg.seed)
            for name, n, c in zip(self.names, sizes, counts(total, weights, fixed))
        ]
        for plan in plans:
            if plan.count and not plan.inputs:
                raise PipelineError(
                    f"source.parts.{plan.name} has no samples but is to give {plan.count}; "
                    f"check its source.path and split, or drop the part"
                )
        return plans

    def __len__(self) -> int:
        return self.schedule.total

    def plan(self) -> dict[str, dict[str, int | float]]:
        """Per part: inputs, count, repeats (passes over the inputs), inputs used."""
        return {p.name: p.to_json() for p in self.plans}

    def describe(self) -> list[str]:
        """The plan, one line per part, printed before the run."""
        lines = [f"mixture of {len(self)} samples (output.shard_size blocks, interleaved):"]
        for p in self.plans:
            part = self.cfg.parts[p.name]
            share = p.count / len(self) if len(self) else 0.0
            reuse = f"each input up to {p.repeats}x" if p.repeats > 1 else "each input once"
            if p.count < p.inputs:
                reuse = f"a seeded subset of {p.count}"
            lines.append(
                f"  {p.name}: {p.count} samples ({share:.1%}) from {p.inputs} inputs, "
                f"{reuse}; {part.source.kind}, {part.data_type}"
            )
        return lines

    def identity(self) -> dict[str, object]:
        return {
            "kind": "mix",
            "plan": self.plan(),
            "parts": {name: src.identity() for name, src in self.sources.items()},
        }

    def inputs_fingerprint(self, start: int, stop: int) -> str:
        """The plan and, per part, its source's ``inputs_fingerprint`` of the inputs that
        positions ``start`` .. ``stop`` read (sizes and times, as the part would alone): a
        part's input changed since is noticed as it is without a mixture."""
        digest = hashlib.sha256(json.dumps(self.plan(), sort_keys=True).encode())
        wanted = [self._where(pos) for pos in range(start, stop)]
        for p, name in enumerate(self.names):
            for a, b in _runs(sorted({j for q, j, _ in wanted if q == p})):
                digest.update(
                    f"{name}|{a}|{self.sources[name].inputs_fingerprint(a, b)}\n".encode()
                )
        return digest.hexdigest()[:16]

    def paths(self) -> list[Path]:
        return [p for src in self.sources.values() for p in src.paths()]

    def urls(self) -> list[str]:
        return [u for src in self.sources.values() for u in src.urls()]

    def iter(self, start: int, stop: int) -> Iterator[Sample | SampleError]:
        step = max(self.schedule.block, 1)
        for a in range(start, stop, step):
            yield from self._chunk(a, min(a + step, stop))

    def _chunk(self, start: int, stop: int) -> Iterator[Sample | SampleError]:
        wanted = [self._where(pos) for pos in range(start, stop)]
        read: dict[tuple[int, int], Sample | SampleError] = {}
        for p, name in enumerate(self.names):
            inputs = sorted({j for q, j, _ in wanted if q == p})
            for a, b in _runs(inputs):
                need = set(inputs) & set(range(a, b))
                for j, item in zip(range(a, b), self.sources[name].iter(a, b)):
                    if j in need:
                        read[(p, j)] = item
        for p, j, rep in wanted:
            yield self._tag(p, rep, read[(p, j)])

    def _where(self, position: int) -> tuple[int, int, int]:
        part, k = self.schedule.at(position)
        j, rep = self.plans[part].input_of(k)
        return part, j, rep

    def _tag(self, p: int, rep: int, item: Sample | SampleError) -> Sample | SampleError:
        name = self.names[p]
        suffix = f"_r{rep}" if rep else ""
        if isinstance(item, SampleError):
            return SampleError(f"{name}/{item.key}{suffix}", item.reason)
        origin = Origin(
            item.origin.kind,
            item.origin.location,
            name,
            str(getattr(self.cfg.parts[name].data_type, "value", self.cfg.parts[name].data_type)),
        )
        return replace(item, key=f"{name}/{item.key}{suffix}", origin=origin)


def _runs(inputs: list[int]) -> list[tuple[int, int]]:
    """Sorted input indices as read ranges, joining gaps of up to ``GAP``."""
    runs: list[tuple[int, int]] = []
    for j in inputs:
        if runs and j - runs[-1][1] <= GAP:
            runs[-1] = (runs[-1][0], j + 1)
        else:
            runs.append((j, j + 1))
    return runs
