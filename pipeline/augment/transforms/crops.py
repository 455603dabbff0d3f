"""Crops and evaluation regions: BTS / AdaBins ``KBCrop``, ``EigenCrop``, ``GargCrop``."""

from __future__ import annotations

from typing import Any, Literal

from pipeline.config import albumentations_import

albumentations_import.prepare()  # no update check, no torch

import numpy as np  # noqa: E402
from albumentations.core.transforms_interface import BaseTransformInitSchema  # noqa: E402
from pydantic import Field  # noqa: E402

from pipeline.augment.traits import Traits  # noqa: E402
from pipeline.augment.transforms.base import REGIONS, _DepthTransform  # noqa: E402


class KBCrop(_DepthTransform):
    traits = Traits(geometric=True, crops=True, output_size="planned")
    """The KITTI benchmark crop of BTS / AdaBins: ``height`` x ``width`` (352 x 1216) at the
    bottom, centred: top = H - height, left = int((W - width) / 2)."""

    class InitSchema(BaseTransformInitSchema):
        height: int = Field(default=352, ge=1)
        width: int = Field(default=1216, ge=1)

    def __init__(self, height: int = 352, width: int = 1216, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.height, self.width = height, width

    @staticmethod
    def planned_size(spec: dict[str, Any], height: int, width: int) -> tuple[int, int]:
        """Output size for an input of ``height`` x ``width`` (ValueError if too small)."""
        h, w = int(spec.get("height", 352)), int(spec.get("width", 1216))
        if h > height or w > width:
            raise ValueError(f"crop {h}x{w} (HxW) is larger than the {height}x{width} input")
        return h, w

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        height, width = params["shape"][:2]
        self.planned_size({"height": self.height, "width": self.width}, height, width)
        top, left = int(height - self.height), int((width - self.width) / 2)
        return {"crop_coords": (left, top, left + self.width, top + self.height)}

    def apply(self, img: np.ndarray, crop_coords: tuple[int, ...], **params: Any) -> np.ndarray:
        x0, y0, x1, y1 = crop_coords
        return img[y0:y1, x0:x1]

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return self.apply(mask, **params)

    def apply_to_valid(self, valid: np.ndarray, **params: Any) -> np.ndarray:
        return self.apply(valid, **params)

    def apply_to_keypoints(
        self, keypoints: np.ndarray, crop_coords: tuple[int, ...], **params: Any
    ) -> np.ndarray:
        out = np.array(keypoints, dtype=np.float64)
        out[:, 0] -= crop_coords[0]
        out[:, 1] -= crop_coords[1]
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("height", "width")


class _EvalRegion(_DepthTransform):
    """An evaluation region on the source frame, carried to the current pixels."""

    targets_as_params = ("camera",)
    traits = Traits(writes_region=True)
    region = ""

    def __init__(self, mode: Literal["mask", "depth"] = "mask", p: float = 1.0) -> None:
        super().__init__(p=p)
        self.mode = mode
        self._inside = np.ones((0, 0), dtype=bool)

    @property
    def writes_mask(self) -> bool:
        return self.mode == "mask"

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        track = self.track(data, type(self).__name__)
        height, width = track.source_shape
        top, bottom, left, right = REGIONS[self.region]
        box = (int(left * width), int(top * height), int(right * width), int(bottom * height))
        # kept off the recorded params (an image-sized array)
        self._inside = region_mask(box, track.matrix, params["shape"][:2])
        bit = getattr(self, "mask_bit", None)
        return {"region": box} if bit in (None, 255) else {"region": box, "mask_bit": bit}

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return img

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        if self.mode == "depth":
            return np.where(self._inside, mask, np.zeros((), dtype=mask.dtype))
        return mask

    def apply_to_valid(self, valid: np.ndarray, **params: Any) -> np.ndarray:
        """Clear this region's bit outside it (``pipeline.augment.regions``: all bits when
        it is the only region, so outside = 0)."""
        bit = getattr(self, "mask_bit", 255)
        cleared = valid & np.asarray(~bit & 0xFF, dtype=valid.dtype)
        return np.where(self._inside, valid, cleared)

    def apply_to_keypoints(self, keypoints: np.ndarray, **params: Any) -> np.ndarray:
        return keypoints

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("mode",)


class EigenCrop(_EvalRegion):
    """Eigen et al. (NIPS 2014) evaluation region: ``dataset=nyu`` is rows 45-470, columns
    41-600 of a 640x480 frame (scaled for other frame sizes); ``dataset=kitti`` the
    fractions of BTS / AdaBins. ``mode=mask`` writes it as the validity mask (``{key}
    .mask.png``), ``mode=depth`` sets depth outside it to 0."""

    class InitSchema(BaseTransformInitSchema):
        dataset: Literal["nyu", "kitti"]
        mode: Literal["mask", "depth"] = "mask"

    def __init__(
        self,
        dataset: Literal["nyu", "kitti"],
        mode: Literal["mask", "depth"] = "mask",
        p: float = 1.0,
    ) -> None:
        super().__init__(mode=mode, p=p)
        self.dataset = dataset
        self.region = f"eigen_{dataset}"

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("dataset", "mode")


class GargCrop(_EvalRegion):
    """Garg et al. (ECCV 2016) KITTI evaluation region (fractions of BTS / AdaBins);
    ``mode`` as for ``EigenCrop``."""

    region = "garg"

    class InitSchema(BaseTransformInitSchema):
        mode: Literal["mask", "depth"] = "mask"

    def __init__(self, mode: Literal["mask", "depth"] = "mask", p: float = 1.0) -> None:
        super().__init__(mode=mode, p=p)


def region_mask(
    box: tuple[int, int, int, int], matrix: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Output pixels (of ``shape``) whose source position, through the inverse of
    ``matrix``, falls in source pixels ``box`` = (x0, y0, x1, y1) (end exclusive)."""
    x0, y0, x1, y1 = box
    height, width = shape
    inverse = np.linalg.inv(matrix)
    if not inverse[0, 1] and not inverse[1, 0] and not inverse[2, :2].any():
        # axis-aligned (crops, flips, resizes): x depends on the column only
        xs = (inverse[0, 0] * np.arange(width) + inverse[0, 2]) / inverse[2, 2]
        ys = (inverse[1, 1] * np.arange(height) + inverse[1, 2]) / inverse[2, 2]
        cols = (xs >= x0 - 0.5) & (xs < x1 - 0.5)
        rows = (ys >= y0 - 0.5) & (ys < y1 - 0.5)
        return rows[:, None] & cols[None, :]
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    w = inverse[2, 0] * u + inverse[2, 1] * v + inverse[2, 2]
    xs = (inverse[0, 0] * u + inverse[0, 1] * v + inverse[0, 2]) / w
    ys = (inverse[1, 0] * u + inverse[1, 1] * v + inverse[1, 2]) / w
    return (xs >= x0 - 0.5) & (xs < x1 - 0.5) & (ys >= y0 - 0.5) & (ys < y1 - 0.5)
