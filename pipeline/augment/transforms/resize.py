"""``ResizeToMultiple``: Depth Anything's ``Resize`` (keep the aspect, at least a lower
bound, each side a multiple of the ViT patch size)."""

from __future__ import annotations

from typing import Any, Literal

from pipeline.config import albumentations_import

albumentations_import.prepare()  # no update check, no torch

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from albumentations.core.transforms_interface import BaseTransformInitSchema  # noqa: E402
from pydantic import Field  # noqa: E402

from pipeline.augment.traits import Traits  # noqa: E402
from pipeline.augment.transforms.base import _Resizing  # noqa: E402
from pipeline.augment.transforms.sparse import resize_depth  # noqa: E402


class ResizeToMultiple(_Resizing):
    """Depth Anything V2 metric_depth ``dataset/transform.py`` ``Resize`` with
    ``keep_aspect_ratio=True``: one scale for both axes so that the image covers
    ``height`` x ``width`` (``method=lower_bound``) or fits inside it (``upper_bound``),
    then each side rounded to a multiple of ``multiple`` (without going below / above the
    bound). Image ``interpolation`` (Depth Anything: cubic), depth nearest (its values
    kept, the scene unchanged: the focal scales with the image; sparse depth scattered,
    ``sparse.resize_depth``)."""

    traits = Traits(geometric=True, output_size="unknown", resamples=True)

    class InitSchema(BaseTransformInitSchema):
        height: int = Field(default=518, ge=1)
        width: int = Field(default=518, ge=1)
        multiple: int = Field(default=14, ge=1)
        method: Literal["lower_bound", "upper_bound"] = "lower_bound"
        interpolation: int = cv2.INTER_CUBIC

    def __init__(
        self,
        height: int = 518,
        width: int = 518,
        multiple: int = 14,
        method: Literal["lower_bound", "upper_bound"] = "lower_bound",
        interpolation: int = cv2.INTER_CUBIC,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.height, self.width, self.multiple = height, width, multiple
        self.method, self.interpolation = method, interpolation

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Depth Anything's ``get_size`` for an input of ``height`` x ``width``."""
        scale_h, scale_w = self.height / height, self.width / width
        lower = self.method == "lower_bound"
        scale = max(scale_h, scale_w) if lower else min(scale_h, scale_w)
        bound = {"min_val": self.height} if lower else {"max_val": self.height}
        new_h = self._multiple(scale * height, **bound)
        bound = {"min_val": self.width} if lower else {"max_val": self.width}
        return new_h, self._multiple(scale * width, **bound)

    def _multiple(self, x: float, min_val: int = 0, max_val: int | None = None) -> int:
        m = self.multiple
        y = int(np.round(x / m) * m)
        if max_val is not None and y > max_val:
            y = int(np.floor(x / m) * m)
        if y < min_val:
            y = int(np.ceil(x / m) * m)
        return max(y, m)

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        return {"size": self.output_size(*params["shape"][:2])}

    def apply_to_mask(self, mask: np.ndarray, size: tuple[int, int], **params: Any) -> np.ndarray:
        return resize_depth(mask, size)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("height", "width", "multiple", "method", "interpolation")
