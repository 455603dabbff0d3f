"""The augmentation of each part of a mixture (``source=mix``), resolved from the run's
``augment`` section and the part's own: what the part sets wins, the rest is the run's;
with ``source.canonical.focal`` set, ``CanonicalCamera`` ends every part's transforms;
each part's output config (its depth scale, ``config.scales``) and whether depth is
canonical."""

from __future__ import annotations

import dataclasses

from pipeline.config.choices import DepthFormat
from pipeline.config.schema import AugmentConfig, Config, OutputConfig
from pipeline.config.sources import MixConfig, PartConfig, SourceConfig

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


def part_outputs(output: OutputConfig, source: SourceConfig) -> dict[str, OutputConfig]:
    """The output config each part of a mixture is encoded with (its depth scale), by
    part name; {} for a single source or float depth."""
    if not isinstance(source, MixConfig) or not DepthFormat(output.depth.format).integer:
        return {}
    return {
        name: dataclasses.replace(
            output, depth=dataclasses.replace(output.depth, scale=part.depth.scale)
        )
        for name, part in source.parts.items()
        if part.depth.scale is not None
    }


def canonical_focal(cfg: Config) -> tuple[str, float] | None:
    """(transform name, canonical focal) when the written depth is canonical, not metres:
    a ``CanonicalCamera`` in depth mode (a mixture's ``source.canonical``, or a transform
    of the run or of a part) multiplies depth by focal / fx (``params.<name>.ratio``)."""
    specs = list(cfg.augment.transforms.items())
    if isinstance(cfg.source, MixConfig):
        specs += [
            i for a in part_augments(cfg.augment, cfg.source).values() for i in a.transforms.items()
        ]
    for name, spec in specs:
        if not isinstance(spec, dict) or spec.get("focal") is None:
            continue
        mode = spec.get("mode", "depth")
        if (
            str(spec.get("_target_", "")).endswith("CanonicalCamera")
            and str(getattr(mode, "value", mode)) == "depth"
        ):
            return name, float(spec["focal"])
    return None


def canonical_words(name: str, focal: float) -> str:
    """How the card, the report and ``dataset_info.json`` describe canonical depth."""
    return (
        f"canonical depth, not metres: metres x {focal:g} / fx of the source camera "
        f"(CanonicalCamera); metres = depth / params.{name}.ratio of the sample"
    )
