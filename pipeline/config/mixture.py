"""The augmentation of each part of a mixture (``source=mix``), resolved from the run's
``augment`` section and the part's own: what the part sets wins, the rest is the run's;
with ``source.canonical.focal`` set, ``CanonicalCamera`` ends every part's transforms."""

from __future__ import annotations

import dataclasses

from pipeline.config.schema import AugmentConfig
from pipeline.config.sources import MixConfig, PartConfig

CANONICAL = "canonical"


def part_augment(run: AugmentConfig, mix: MixConfig, part: PartConfig) -> AugmentConfig:
    """The ``AugmentConfig`` a part's samples are augmented with."""
    own = part.augment
    transforms = dict(run.transforms if own.transforms is None else own.transforms)
    if mix.canonical.focal is not None:
        mode = str(getattr(mix.canonical.mode, "value", mix.canonical.mode))
        transforms.pop(CANONICAL, None)
        transforms[CANONICAL] = {
            "_target_": "pipeline.augment.transforms.CanonicalCamera",
            "mode": mode,
            "focal": float(mix.canonical.focal),
        }
    return dataclasses.replace(
        run,
        seed=run.seed if own.seed is None else own.seed,
        camera=run.camera if own.camera is None else own.camera,  # type: ignore[arg-type]
        transforms=transforms,
    )


def part_augments(run: AugmentConfig, mix: MixConfig) -> dict[str, AugmentConfig]:
    """Every part's ``AugmentConfig`` by part name."""
    return {name: part_augment(run, mix, part) for name, part in mix.parts.items()}
