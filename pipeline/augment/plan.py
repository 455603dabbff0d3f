"""The transform list as it will be applied, worked out before the run: the order
(mapping order, with ``before``/``after`` placement: a transform added from the command
line with ``+augment.transforms.X`` otherwise lands last) and the output size, checked
against fixed-size crops."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from pipeline.augment.traits import spec_traits
from pipeline.config.schema import AugmentConfig
from pipeline.config.transform_args import PLACEMENT
from pipeline.errors import PipelineError


def ordered(transforms: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The enabled transforms in application order, placement keys removed: mapping order,
    then each spec with ``before``/``after`` (in mapping order) moved next to its anchor."""
    specs = {name: spec for name, spec in transforms.items() if spec is not None}
    order = list(specs)
    for name, spec in specs.items():
        if not isinstance(spec, Mapping):
            continue
        placed = [(k, spec[k]) for k in PLACEMENT if spec.get(k) is not None]
        if not placed:
            continue
        if len(placed) > 1:
            raise PipelineError(f"augment.transforms.{name}: give before or after, not both")
        key, anchor = placed[0]
        if anchor == name or anchor not in specs:
            what = "is disabled" if anchor in transforms else "is not a transform"
            raise PipelineError(
                f"augment.transforms.{name}.{key}={anchor}: {anchor} {what}; place it "
                f"{key} one of: {', '.join(n for n in specs if n != name)}"
            )
        order.remove(name)
        order.insert(order.index(anchor) + (key == "after"), name)
    return [
        (n, {k: v for k, v in specs[n].items() if k not in PLACEMENT})
        if isinstance(specs[n], Mapping)
        else (n, specs[n])
        for n in order
    ]


def known_output_size(cfg: AugmentConfig, height: int, width: int) -> tuple[int, int] | None:
    """Check fixed-size crops against the input size before the run; return the output size
    (None once a transform makes it unknown, e.g. a random scale: later crops are then
    checked per sample). Each transform's ``Traits.output_size`` says what it gives."""
    for name, spec in ordered(cfg.transforms):
        if not isinstance(spec, Mapping):
            continue
        size = spec_traits(spec).output_size
        if spec.get("fit_output") or spec.get("crop_border") or size == "unknown":
            return None
        if size == "planned":
            try:
                height, width = traits_class(spec).planned_size(spec, height, width)
            except ValueError as exc:
                raise PipelineError(f"augment.transforms.{name}: {exc}") from None
        elif size == "crop" and "height" in spec:
            h, w = int(spec["height"]), int(spec["width"])
            if (h > height or w > width) and not spec.get("pad_if_needed", False):
                raise PipelineError(
                    f"augment.transforms.{name}: crop {h}x{w} (HxW) is larger than the "
                    f"{height}x{width} input; lower augment.transforms.{name}.height/width "
                    f"or set pad_if_needed=true"
                )
            height, width = h, w
        elif size == "window" and not spec.get("pad_if_needed", False):
            y0, y1 = int(spec.get("y_min", 0)), int(spec.get("y_max", 1024))
            x0, x1 = int(spec.get("x_min", 0)), int(spec.get("x_max", 1024))
            if y1 > height or x1 > width:
                raise PipelineError(
                    f"augment.transforms.{name}: crop window x {x0}-{x1}, y {y0}-{y1} goes "
                    f"past the {height}x{width} (HxW) input; lower augment.transforms.{name}"
                    f".x_max/y_max or set pad_if_needed=true"
                )
            height, width = y1 - y0, x1 - x0
        elif size == "resize":
            wanted = spec.get("size") or (spec.get("height"), spec.get("width"))
            if wanted and None not in wanted:
                height, width = int(wanted[0]), int(wanted[1])
    return height, width


def traits_class(spec: Mapping[str, Any]) -> Any:
    """The ``pipeline.augment.transforms`` class a spec names (for its ``planned_size``)."""
    module, _, name = str(spec["_target_"]).rpartition(".")
    return getattr(importlib.import_module(module), name)
