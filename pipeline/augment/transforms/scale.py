"""Rescaling transforms: FastDepth / DORN ``RandomScale`` and Metric3D ``CanonicalCamera``.
Their depth is resampled by ``sparse.resize_depth``: nearest for dense maps, every valid
point kept for sparse ones."""

from __future__ import annotations

from typing import Any, Literal

from pipeline.config import albumentations_import

albumentations_import.prepare()  # no update check, no torch

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from albumentations.core.transforms_interface import BaseTransformInitSchema  # noqa: E402
from pydantic import Field, model_validator  # noqa: E402

from pipeline.augment.traits import Traits  # noqa: E402
from pipeline.augment.transforms.base import _resized, _Resizing  # noqa: E402
from pipeline.augment.transforms.sparse import resize_depth  # noqa: E402


class RandomScale(_Resizing):
    """Zoom by s ~ U(scale_limit) to int(h*s) x int(w*s) (follow with a crop for a fixed
    size). ``mode`` must be given: ``divide_depth`` (FastDepth/DORN: depth / s, the scene
    moves closer and the written focal stays) or ``scale_camera`` (depth kept, fx and fy
    grow by the image's scale). ``rounding``: the new size int(n * s) (``floor``,
    FastDepth's scipy imresize) or int(n * s + 0.5) (``nearest``, Metric3D's
    RandomResize)."""

    traits = Traits(geometric=True, output_size="unknown", scales_depth=True, resamples=True)

    class InitSchema(BaseTransformInitSchema):
        mode: Literal["divide_depth", "scale_camera"]
        scale_limit: tuple[float, float] = (1.0, 1.5)
        interpolation: int = cv2.INTER_LINEAR
        rounding: Literal["floor", "nearest"] = "floor"

        @model_validator(mode="after")
        def _check(self) -> RandomScale.InitSchema:
            low, high = self.scale_limit
            if not 0 < low <= high:
                raise ValueError(f"scale_limit must be 0 < low <= high, got {self.scale_limit}")
            return self

    def __init__(
        self,
        mode: Literal["divide_depth", "scale_camera"],
        scale_limit: tuple[float, float] = (1.0, 1.5),
        interpolation: int = cv2.INTER_LINEAR,
        p: float = 1.0,
        rounding: Literal["floor", "nearest"] = "floor",
    ) -> None:
        super().__init__(p=p)
        self.mode, self.scale_limit, self.interpolation = mode, scale_limit, interpolation
        self.rounding = rounding

    def get_params(self) -> dict[str, Any]:
        return {"scale": self.py_random.uniform(*self.scale_limit)}

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        s = params["scale"]
        factor = 1.0 / s if self.mode == "divide_depth" else 1.0
        height, width = params["shape"][:2]
        # FastDepth resizes with scipy's imresize(img, s): int(n * s), truncated;
        # Metric3D's RandomResize rounds, int(n * s + 0.5)
        if self.rounding == "nearest":
            size = _resized(params["shape"], s, s)
        else:
            size = (max(int(height * s), 1), max(int(width * s), 1))
        return {"size": size, "depth_factor": factor}

    def apply_to_mask(
        self, mask: np.ndarray, size: tuple[int, int], scale: float, **params: Any
    ) -> np.ndarray:
        depth = resize_depth(mask, size)
        if self.mode == "divide_depth":
            depth = depth / np.asarray(scale, dtype=depth.dtype)
        return depth

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("mode", "scale_limit", "interpolation", "rounding")


class CanonicalCamera(_Resizing):
    """Metric3D's canonical camera: ``mode=depth`` multiplies depth by ratio = focal / fx
    and the focal lengths by the same ratio (fx becomes ``focal``); ``mode=resize`` resizes
    the image by ratio = focal / ((fx + fy) / 2) and keeps depth. ``ratio`` is recorded in
    the sample's parameters: divide predictions by it (depth mode) to get metres back."""

    targets_as_params = ("camera",)
    traits = Traits(geometric=True, output_size="unknown", scales_depth=True, resamples=True)

    class InitSchema(BaseTransformInitSchema):
        mode: Literal["depth", "resize"]
        focal: float = Field(default=1000.0, gt=0)
        interpolation: int = cv2.INTER_LINEAR

    def __init__(
        self,
        mode: Literal["depth", "resize"],
        focal: float = 1000.0,
        interpolation: int = cv2.INTER_LINEAR,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.mode, self.focal, self.interpolation = mode, focal, interpolation

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        camera = self.track(data, "CanonicalCamera").current()
        if camera is None:
            raise ValueError(
                "CanonicalCamera needs the camera and this sample has none; set "
                "source.camera.fx (and fy, cx, cy) or use a source that carries one"
            )
        shape = params["shape"]
        if self.mode == "depth":
            ratio = self.focal / camera.fx
            return {"ratio": ratio, "depth_factor": ratio, "size": tuple(shape[:2])}
        ratio = self.focal / ((camera.fx + camera.fy) / 2.0)
        return {"ratio": ratio, "depth_factor": 1.0, "size": _resized(shape, ratio, ratio)}

    def apply(self, img: np.ndarray, size: tuple[int, int], **params: Any) -> np.ndarray:
        return img if self.mode == "depth" else super().apply(img, size)

    def apply_to_valid(self, valid: np.ndarray, size: tuple[int, int], **params: Any) -> np.ndarray:
        return valid if self.mode == "depth" else super().apply_to_valid(valid, size)

    def apply_to_mask(
        self, mask: np.ndarray, size: tuple[int, int], ratio: float, **params: Any
    ) -> np.ndarray:
        if self.mode == "depth":
            return mask * np.asarray(ratio, dtype=mask.dtype)
        return resize_depth(mask, size)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("mode", "focal", "interpolation")
