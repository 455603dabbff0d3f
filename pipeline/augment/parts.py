"""The augmenter of a run: one ``Augmenter`` for a single source; for a mixture one per
part (``pipeline.config.mixture.part_augment``), chosen by the sample's part. Seeding is
the same rule either way (``SeedSequence([seed, index, copy])``), so the output does not
depend on which worker augments which sample."""

from __future__ import annotations

from pipeline.augment.augmenter import Augmenter
from pipeline.config.mixture import part_augments
from pipeline.config.schema import AugmentConfig
from pipeline.config.sources import MixConfig, SourceConfig
from pipeline.errors import PipelineError
from pipeline.sample import Augmented, Sample


class PartAugmenter:
    """An ``Augmenter`` per part of a mixture; a sample goes to its part's."""

    def __init__(self, augments: dict[str, AugmentConfig]) -> None:
        self.parts: dict[str, Augmenter] = {}
        for name, cfg in augments.items():
            try:
                self.parts[name] = Augmenter(cfg)
            except PipelineError as exc:
                raise PipelineError(f"source.parts.{name}: {exc}") from None

    def __call__(self, sample: Sample, index: int, copy: int) -> Augmented:
        return self.parts[sample.origin.dataset](sample, index, copy)


def augmenter_for(augment: AugmentConfig, source: SourceConfig) -> Augmenter | PartAugmenter:
    """The augmenter the run's samples go through."""
    if isinstance(source, MixConfig):
        return PartAugmenter(part_augments(augment, source))
    return Augmenter(augment)
