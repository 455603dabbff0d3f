"""Photometric recipes of the trainers that albumentations has no one transform for."""

from __future__ import annotations

from typing import Any

from pipeline.config import albumentations_import

albumentations_import.prepare()  # no update check, no torch

import albumentations as A  # noqa: E402
import numpy as np  # noqa: E402
from albumentations.core.transforms_interface import BaseTransformInitSchema  # noqa: E402
from pydantic import model_validator  # noqa: E402

from pipeline.augment.traits import Traits  # noqa: E402


class GammaBrightnessColor(A.ImageOnlyTransform):
    """BTS / AdaBins / ZoeDepth ``augment_image``, applied as one step with probability
    ``p`` (their ``do_augment > 0.5``): on the image in [0, 1], ``image ** gamma *
    brightness * colour`` (one colour factor per channel), clipped to [0, 1]; gamma,
    brightness and each colour factor uniform in their ranges. Depth is never touched."""

    traits = Traits()  # photometric: the pixels stay where they are

    class InitSchema(BaseTransformInitSchema):
        gamma: tuple[float, float] = (0.9, 1.1)
        brightness: tuple[float, float] = (0.75, 1.25)
        color: tuple[float, float] = (0.9, 1.1)

        @model_validator(mode="after")
        def _check(self) -> GammaBrightnessColor.InitSchema:
            for name in ("gamma", "brightness", "color"):
                low, high = getattr(self, name)
                if not 0 < low <= high:
                    raise ValueError(f"{name} must be 0 < low <= high, got {(low, high)}")
            return self

    def __init__(
        self,
        gamma: tuple[float, float] = (0.9, 1.1),
        brightness: tuple[float, float] = (0.75, 1.25),
        color: tuple[float, float] = (0.9, 1.1),
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        self.gamma, self.brightness, self.color = gamma, brightness, color

    def get_params(self) -> dict[str, Any]:
        uniform = self.py_random.uniform
        return {
            "gamma": uniform(*self.gamma),
            "brightness": uniform(*self.brightness),
            "color": [uniform(*self.color) for _ in range(3)],
        }

    def apply(
        self,
        img: np.ndarray,
        gamma: float,
        brightness: float,
        color: list[float],
        **params: Any,
    ) -> np.ndarray:
        x = img.astype(np.float32) / np.float32(255.0)
        x = np.power(x, np.float32(gamma)) * np.float32(brightness)
        x *= np.asarray(color, dtype=np.float32)
        return (np.clip(x, 0.0, 1.0) * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("gamma", "brightness", "color")
