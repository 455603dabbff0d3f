"""What a transform does to a sample, read from the transform class: whether it moves
pixels (the camera follows), mirrors or crops the frame, what output size it gives,
whether it rotates or warps (no pinhole camera expresses that exactly), scales depth
values or writes an evaluation region.

The transforms of ``pipeline.augment.transforms`` declare theirs as ``traits = Traits(...)`` in
the class body. albumentations' classes cannot carry our attributes, so theirs are listed
once here (``LIBRARY``), by class name: the planner (``augment.plan``), the strict camera
check (``augment.geometry``), the augmenter and the report (``report.params``) all ask
``traits_of``. This module imports neither albumentations nor our transforms until a
``pipeline.augment.transforms`` class is asked about (the run's parent process stays light).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from typing import Any

OWN = "pipeline.augment.transforms"


@dataclass(frozen=True)
class Traits:
    """``output_size``: ``same`` (input size), ``crop`` (the spec's height x width),
    ``window`` (the spec's x_min..x_max, y_min..y_max), ``resize`` (the spec's ``size`` or
    height x width), ``planned`` (the class's
    ``planned_size(spec, h, w)``) or ``unknown`` before the run. ``angle_args``: arguments
    (with their default) that rotate or shear the image when non-zero. ``aspect_arg``:
    the argument (with its default) giving the aspect(s) of crops resized to a fixed size
    (a non-uniform rescale unless every one equals the output's). ``resamples``: resizes
    its depth (all of it, or a crop of it); sparse depth is then scattered point by point
    (``transforms.sparse``), by our classes themselves, for albumentations' by the
    augmenter (``augment.resample``)."""

    geometric: bool = False
    flip_axis: int | None = None
    crops: bool = False
    output_size: str = "same"
    warps: bool = False
    angle_args: tuple[tuple[str, float], ...] = ()
    aspect_arg: tuple[str, Any] | None = None
    scales_depth: bool = False
    writes_region: bool = False
    resamples: bool = False

    @property
    def moves_pixels_unboxed(self) -> bool:
        """Moves pixels in a way a source rectangle cannot show (not a flip or a crop)."""
        return self.geometric and self.flip_axis is None and not self.crops


_MOVE = Traits(geometric=True, output_size="unknown")
_WARP = Traits(geometric=True, warps=True)
_CROP = Traits(geometric=True, crops=True, output_size="crop")
_SIZED_CROP = Traits(geometric=True, crops=True, output_size="resize", resamples=True)

LIBRARY: dict[str, Traits] = {
    "HorizontalFlip": Traits(geometric=True, flip_axis=0),
    "VerticalFlip": Traits(geometric=True, flip_axis=1),
    "RandomCrop": _CROP,
    "CenterCrop": _CROP,
    "Crop": replace(_CROP, output_size="window"),
    "RandomResizedCrop": replace(_SIZED_CROP, aspect_arg=("ratio", (0.75, 4 / 3))),
    "RandomSizedCrop": replace(_SIZED_CROP, aspect_arg=("w2h_ratio", 1.0)),
    "Resize": Traits(geometric=True, output_size="resize", resamples=True),
    **dict.fromkeys(
        ("RandomScale", "LongestMaxSize", "SmallestMaxSize"), replace(_MOVE, resamples=True)
    ),
    **dict.fromkeys(("PadIfNeeded", "Pad", "CropAndPad"), _MOVE),
    **dict.fromkeys(("RandomRotate90", "Transpose", "D4", "SquareSymmetry"), _MOVE),
    **dict.fromkeys(
        (
            "Rotate",
            "SafeRotate",
            "Perspective",
            "ElasticTransform",
            "GridDistortion",
            "OpticalDistortion",
            "PiecewiseAffine",
            "ThinPlateSpline",
            "GridElasticDeform",
        ),
        _WARP,
    ),
    "Affine": Traits(geometric=True, angle_args=(("rotate", 0.0), ("shear", 0.0))),
    "ShiftScaleRotate": Traits(geometric=True, angle_args=(("rotate_limit", 45.0),)),
}


def traits_of(target: str | type | Any) -> Traits:
    """The traits of a transform class, instance or ``_target_`` path ("albumentations.X",
    a bare "X", "pipeline.augment.transforms.X"); a class nobody described is photometric."""
    if isinstance(target, str):
        module, _, name = target.rpartition(".")
        if module == OWN or module.startswith(f"{OWN}."):
            target = getattr(importlib.import_module(module), name, None)
        else:
            return LIBRARY.get(name, Traits())
    cls = target if isinstance(target, type) else type(target)
    own = getattr(cls, "traits", None)
    return own if isinstance(own, Traits) else LIBRARY.get(cls.__name__, Traits())


def spec_traits(spec: Any) -> Traits:
    """The traits of a transform spec (a mapping with ``_target_``)."""
    if not isinstance(spec, dict) and not hasattr(spec, "get"):
        return Traits()
    return traits_of(str(spec.get("_target_", "")))
