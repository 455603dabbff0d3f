"""Build the albumentations pipeline from ``augment.transforms`` and seed it per sample.

Depth always travels as the ``mask`` target: geometric transforms move it with nearest
interpolation and fill 0 (invalid); photometric transforms never touch it. The camera
follows every geometric step (``pipeline.augment.geometry``); ``augment.camera=strict`` refuses
what a pinhole camera cannot carry exactly.

Seeding: albumentations' ``Compose.set_random_seed(s)`` hands the same seed to every
child, which correlates their draws. Here each transform gets its own stream spawned
from ``SeedSequence([seed, sample_index, copy])`` (``[..., epoch]`` for epochs > 0 online).

Order: ``pipeline.augment.plan.ordered`` (the mapping's order, with ``before`` /
``after`` placement keys).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from typing import Any

from pipeline.config import albumentations_import

albumentations_import.prepare()  # no update check, no torch

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from albumentations.core.composition import BaseCompose  # noqa: E402
from albumentations.core.transforms_interface import BasicTransform, DualTransform  # noqa: E402

from pipeline.augment.geometry import RESIZING, Track, strict_refusal  # noqa: E402
from pipeline.augment.homography import axis_scales, non_uniform  # noqa: E402
from pipeline.augment.plan import known_output_size, ordered  # noqa: E402
from pipeline.augment.readout import with_readout  # noqa: E402
from pipeline.augment.regions import assign_mask_bits  # noqa: E402
from pipeline.augment.resample import scatter_sparse_depth  # noqa: E402
from pipeline.augment.traits import traits_of  # noqa: E402
from pipeline.config import transform_args  # noqa: E402
from pipeline.config.schema import AugmentConfig  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.sample import IDENTITY, Augmented, Camera, Sample  # noqa: E402

__all__ = ["Augmenter", "known_output_size", "ordered"]

TransformSpec = Mapping[str, Any]
CAMERA_MODES = ("track", "strict")


ALLOWED_MODULES = ("albumentations", "pipeline.augment.transforms")


def _resolve(name: str, target: str) -> type:
    """Import ``target`` ("albumentations.X", or a bare "X" meaning albumentations.X).

    Only modules of ``ALLOWED_MODULES`` are imported: anything else is refused before its
    import could run its top-level code."""
    module_name, _, attr = target.rpartition(".")
    module_name = module_name or "albumentations"
    if not any(module_name == m or module_name.startswith(f"{m}.") for m in ALLOWED_MODULES):
        moved = target.startswith("pipeline.transforms.")  # the package's old place
        use = f"pipeline.augment.{target[9:]}" if moved else "e.g. albumentations.HorizontalFlip"
        raise PipelineError(
            f"augment.transforms.{name}: _target_ {target!r} is outside albumentations and "
            f"pipeline.augment.transforms, the only places transforms are taken from (it was not "
            f"imported); use {use}"
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
    if issubclass(cls, BaseCompose):
        raise PipelineError(
            f"augment.transforms.{name}: {cls.__name__} is a compose of transforms (OneOf, "
            f"SomeOf, Sequential ...), which augment.transforms does not support; list the "
            f"transforms themselves, each with its own p"
        )
    if (unknown := transform_args.check_spec(name, cls, spec)) is not None:
        raise PipelineError(unknown)
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
        if (line := transform_args.validation_line(name, cls, exc)) is not None:
            raise PipelineError(line) from None
        detail = " ".join(str(exc).split())
        raise PipelineError(
            f"augment.transforms.{name}: {cls.__name__} rejected its arguments: {detail}"
        ) from None


class Augmenter:
    """The configured transforms, applied to one sample and copy at a time.

    Every geometric step is recorded as it happens (each leaf transform's
    ``apply_with_params`` is wrapped) into a ``Track``, in the order albumentations really
    applies them (nested composes, random order included); the camera, the homography and
    the transforms of ``pipeline.augment.transforms`` that need the current camera read it."""

    def __init__(self, cfg: AugmentConfig) -> None:
        if cfg.camera not in CAMERA_MODES:
            raise PipelineError(
                f"augment.camera must be one of {', '.join(CAMERA_MODES)} (got {cfg.camera!r})"
            )
        self.seed = cfg.seed
        self.copies = cfg.copies
        self.strict = cfg.camera == "strict"
        self.names: list[str] = []
        transforms = []
        for name, spec in ordered(cfg.transforms):
            why = strict_refusal(name, spec) if self.strict and isinstance(spec, Mapping) else None
            if why:
                raise PipelineError(f"augment.camera=strict: {why}")
            transforms.append(_instantiate(name, spec))
            self.names.append(name)
        self.transforms = transforms
        self.track = Track()
        leaves = [(name, leaf) for name, t in zip(self.names, transforms) for leaf in _leaves(t)]
        self.wants_camera = any("camera" in leaf.targets_as_params for _, leaf in leaves)
        self.writes_mask = any(
            traits_of(leaf).writes_region and leaf.writes_mask for _, leaf in leaves
        )
        self.mask_full = assign_mask_bits([leaf for _, leaf in leaves])
        self.compose = A.Compose(
            transforms,
            p=1.0,
            strict=True,
            mask_interpolation=cv2.INTER_NEAREST,
            additional_targets={"valid": "mask"} if self.writes_mask else None,
        )
        for name, leaf in leaves:
            if isinstance(leaf, DualTransform):
                _record_steps(leaf, name, self.track)
            if isinstance(leaf, RESIZING):  # cv2.resize: centre-aligned nearest for depth
                leaf.mask_interpolation = cv2.INTER_NEAREST_EXACT
                if traits_of(leaf).resamples:  # sparse depth: every point kept
                    scatter_sparse_depth(leaf)

    def __call__(self, sample: Sample, index: int, copy: int, epoch: int = 0) -> Augmented:
        """Return the augmented copy ``copy`` of input sample number ``index``. ``epoch``
        (online augmentation, ``pipeline.torch``) draws other parameters from epoch 1 on;
        epoch 0 is the offline run's draw."""
        entropy = [self.seed, index, copy] + ([epoch] if epoch else [])
        streams = np.random.SeedSequence(entropy).spawn(len(self.transforms))
        for transform, stream in zip(self.transforms, streams):
            _seed_tree(transform, stream)
        height, width = sample.image.shape[:2]
        self.track.reset(sample.camera, (height, width))
        data: dict[str, Any] = {"image": sample.image, "mask": sample.depth}
        if self.wants_camera:
            data["camera"] = self.track
        if self.writes_mask:
            data["valid"] = np.full((height, width), self.mask_full, dtype=np.uint8)
        out = self.compose(**data)
        params = dict(sample.params or {})  # an earlier run's, for its own output re-read
        params |= {
            name: _jsonable(with_readout(t.params)) if t.params else None
            for name, t in zip(self.names, self.transforms)
        }
        image, depth = out["image"], out["mask"]
        if depth.dtype != np.float32:
            depth = depth.astype(np.float32)
        camera = self.track.current()
        if self.strict:
            self._check_strict(camera)
        return Augmented(
            key=sample.key if self.copies == 1 else f"{sample.key}_c{copy}",
            source_key=sample.key,
            origin=sample.origin,
            index=index,
            copy=copy,
            image=np.ascontiguousarray(image),
            depth=np.ascontiguousarray(depth),
            camera=camera,
            homography=self.track.homography if self.transforms else IDENTITY,
            params=params,
            mask=np.ascontiguousarray(out["valid"]) if self.writes_mask else None,
        )

    def _check_strict(self, camera: Camera | None) -> None:
        """augment.camera=strict: a sample whose geometry a pinhole camera cannot carry
        exactly is an error (a ValueError: the worker reports it for this sample)."""
        track = self.track
        if track.lost:
            raise ValueError(
                f"augment.camera=strict: the geometry of {', '.join(track.lost)} cannot be "
                f"tracked (no keypoint support); remove it or use augment.camera=track"
            )
        if not track.exact or (camera is not None and camera.approximate):
            raise ValueError(
                "augment.camera=strict: the pixels went through a rotation or warp that no "
                "pinhole camera expresses exactly; use augment.camera=track to record it"
            )
        if non_uniform(track.matrix):
            sx, sy = axis_scales(track.matrix)
            raise ValueError(
                f"augment.camera=strict: the image was rescaled non-uniformly (x {sx:.3f}, "
                f"y {sy:.3f}), so metric depth no longer fits one focal length; keep the "
                f"aspect, or use augment.camera=track (fx and fy are then tracked apart)"
            )


def _leaves(transform: BasicTransform | BaseCompose) -> list[BasicTransform]:
    if isinstance(transform, BaseCompose):
        return [leaf for child in transform.transforms for leaf in _leaves(child)]
    return [transform]


def _record_steps(leaf: DualTransform, name: str, track: Track) -> None:
    """Wrap this instance's ``apply_with_params`` so every application is composed into
    ``track`` with the parameters it used and the size it produced."""
    original = leaf.apply_with_params

    def apply_with_params(params: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        out = original(params, *args, **kwargs)
        track.step(name, leaf, params, out["image"].shape[:2])
        return out

    leaf.apply_with_params = apply_with_params  # type: ignore[method-assign]


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
