"""Build the albumentations pipeline from ``augment.transforms`` and seed it per sample.

Depth always travels as the ``mask`` target: geometric transforms move it with nearest
interpolation and fill 0 (invalid); photometric transforms never touch it.

Seeding: albumentations' ``Compose.set_random_seed(s)`` hands the same seed to every
child, which correlates their draws. Here each transform gets its own stream spawned
from ``SeedSequence([seed, sample_index, copy])``.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Mapping
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from albumentations.core.composition import BaseCompose  # noqa: E402
from albumentations.core.transforms_interface import BasicTransform  # noqa: E402

from pipeline.config import AugmentConfig  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.sample import Sample  # noqa: E402

TransformSpec = Mapping[str, Any]


ALLOWED_MODULES = ("albumentations", "pipeline.transforms")


def _resolve(name: str, target: str) -> type:
    """Import ``target`` ("albumentations.X", or a bare "X" meaning albumentations.X).

    Only modules of ``ALLOWED_MODULES`` are imported: anything else is refused before its
    import could run its top-level code."""
    module_name, _, attr = target.rpartition(".")
    module_name = module_name or "albumentations"
    if not any(module_name == m or module_name.startswith(f"{m}.") for m in ALLOWED_MODULES):
        raise PipelineError(
            f"augment.transforms.{name}: _target_ {target!r} is outside albumentations and "
            f"pipeline.transforms, the only places transforms are taken from (it was not "
            f"imported); use e.g. albumentations.HorizontalFlip"
        )
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        raise PipelineError(
            f"augment.transforms.{name}: _target_ {target!r} is not an albumentations "
            f"transform; check the spelling (e.g. albumentations.HorizontalFlip)"
        ) from None
    if not (isinstance(obj, type) and issubclass(obj, (BasicTransform, BaseCompose))):
        raise PipelineError(
            f"augment.transforms.{name}: _target_ {target!r} is not an albumentations transform"
        )
    return obj


def _instantiate(name: str, spec: TransformSpec) -> BasicTransform:
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise PipelineError(
            f"augment.transforms.{name}: expected a mapping with _target_ "
            f"(e.g. _target_: albumentations.HorizontalFlip), got {spec!r}"
        )
    cls = _resolve(name, str(spec["_target_"]))
    kwargs = {k: v for k, v in spec.items() if k != "_target_"}
    if kwargs.get("fill_mask", 0) not in (0, 0.0):
        raise PipelineError(
            f"augment.transforms.{name}.fill_mask must be 0: depth outside the image is invalid"
        )
    if kwargs.get("mask_interpolation", cv2.INTER_NEAREST) != cv2.INTER_NEAREST:
        raise PipelineError(
            f"augment.transforms.{name}.mask_interpolation must be 0 (nearest): "
            f"interpolating depth invents values at edges"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return cls(**kwargs, strict=True)
    except Exception as exc:  # albumentations raises ValueError/TypeError/pydantic errors
        detail = " ".join(str(exc).split())
        raise PipelineError(
            f"augment.transforms.{name}: {cls.__name__} rejected its arguments: {detail}"
        ) from None


class Augmenter:
    """The configured transforms, applied to one sample and copy at a time."""

    def __init__(self, cfg: AugmentConfig) -> None:
        self.seed = cfg.seed
        self.names: list[str] = []
        transforms = []
        for name, spec in cfg.transforms.items():
            if spec is None:  # `augment.transforms.hsv=null` disables a transform
                continue
            transforms.append(_instantiate(name, spec))
            self.names.append(name)
        self.transforms = transforms
        self.compose = A.Compose(
            transforms, p=1.0, strict=True, mask_interpolation=cv2.INTER_NEAREST
        )

    def __call__(self, sample: Sample, index: int, copy: int) -> Sample:
        """Return the augmented copy ``copy`` of input sample number ``index``."""
        streams = np.random.SeedSequence([self.seed, index, copy]).spawn(len(self.transforms))
        for transform, stream in zip(self.transforms, streams):
            _seed_tree(transform, stream)
        out = self.compose(image=sample.image, mask=sample.depth)
        params = {
            name: _jsonable(t.params) if t.params else None
            for name, t in zip(self.names, self.transforms)
        }
        image, depth = out["image"], out["mask"]
        if depth.dtype != np.float32:
            depth = depth.astype(np.float32)
        meta = dict(sample.meta)
        meta["augment"] = {"index": index, "copy": copy, "params": params}
        # TODO(camera issue): track the camera through geometric transforms; until then it
        # is known only when nothing moved the pixels.
        camera = sample.camera if not self.transforms else None
        image, depth = np.ascontiguousarray(image), np.ascontiguousarray(depth)
        return Sample(sample.key, image, depth, meta, camera)


def _seed_tree(transform: BasicTransform | BaseCompose, stream: np.random.SeedSequence) -> None:
    """Give a transform (and each child of a nested compose) its own independent stream."""
    transform.set_random_seed(int(stream.generate_state(1)[0]))
    if isinstance(transform, BaseCompose):
        children = stream.spawn(len(transform.transforms))
        for child, child_stream in zip(transform.transforms, children):
            _seed_tree(child, child_stream)


def _jsonable(value: Any) -> Any:
    """Params as JSON: scalars, short lists; large arrays become a shape summary."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        if value.size > 16:
            return {"array_shape": list(value.shape)}
        return value.tolist()
    if isinstance(value, (list, tuple)):
        if len(value) > 16:
            return {"length": len(value)}
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return repr(value)


def known_output_size(cfg: AugmentConfig, height: int, width: int) -> tuple[int, int]:
    """Check fixed-size crops against the input size before the run; return the output size."""
    for name, spec in cfg.transforms.items():
        if not isinstance(spec, Mapping):
            continue
        target = str(spec.get("_target_", "")).rpartition(".")[2]
        if target in {"RandomCrop", "CenterCrop", "Crop"} and "height" in spec:
            h, w = int(spec["height"]), int(spec["width"])
            if (h > height or w > width) and not spec.get("pad_if_needed", False):
                raise PipelineError(
                    f"augment.transforms.{name}: crop {h}x{w} (HxW) is larger than the "
                    f"{height}x{width} input; lower augment.transforms.{name}.height/width "
                    f"or set pad_if_needed=true"
                )
            height, width = h, w
        elif target in {"Resize", "RandomResizedCrop", "RandomSizedCrop"}:
            size = spec.get("size") or (spec.get("height"), spec.get("width"))
            if size and None not in size:
                height, width = int(size[0]), int(size[1])
    return height, width
