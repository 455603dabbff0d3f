"""What the depth transforms share: the ``valid`` target moved by geometry only, the camera
track read from the ``camera`` target, and centre-aligned resizing."""

from __future__ import annotations

from typing import Any

from pipeline.config import albumentations_import

albumentations_import.prepare()  # no update check, no torch

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.augment.geometry import Track  # noqa: E402

NEAREST = cv2.INTER_NEAREST_EXACT  # pixel-centre aligned, like the linear image resize
# Evaluation regions: (top, bottom, left, right) as fractions of the source frame, from
# BTS / AdaBins evaluate.py; NYU's is the pixel box [45:471, 41:601] of 480x640 frames.
REGIONS = {
    "eigen_nyu": (45 / 480, 471 / 480, 41 / 640, 601 / 640),
    "eigen_kitti": (0.3324324, 0.91351351, 0.0359477, 0.96405229),
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
}


class _DepthTransform(A.DualTransform):
    """Shared plumbing: ``valid`` gets the geometry only; ``mask`` (depth) may be rescaled."""

    def apply_with_params(
        self, params: dict[str, Any], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        valid = kwargs.pop("valid", None)
        out = super().apply_with_params(params, *args, **kwargs)
        if valid is not None:
            out["valid"] = self.apply_to_valid(valid, **params)
        return out

    def apply_to_valid(self, valid: np.ndarray, **params: Any) -> np.ndarray:
        return valid

    @staticmethod
    def track(data: dict[str, Any], who: str) -> Track:
        track = data.get("camera")
        if not isinstance(track, Track):
            raise ValueError(f"{who} needs the camera track; run it through depth-pipeline")
        return track


def _resized(shape: tuple[int, ...], ratio_y: float, ratio_x: float) -> tuple[int, int]:
    """int(n * r + 0.5), as Metric3D rounds its resized sizes (at least 1 pixel)."""
    return max(int(shape[0] * ratio_y + 0.5), 1), max(int(shape[1] * ratio_x + 0.5), 1)


def _resize_keypoints(kp: np.ndarray, shape: tuple[int, ...], size: tuple[int, int]) -> np.ndarray:
    """Pixel centres under cv2.resize: x' = (x + 0.5) * W'/W - 0.5."""
    out = np.array(kp, dtype=np.float64)
    out[:, 0] = (out[:, 0] + 0.5) * size[1] / shape[1] - 0.5
    out[:, 1] = (out[:, 1] + 0.5) * size[0] / shape[0] - 0.5
    return out


class _Resizing(_DepthTransform):
    """A resize to ``size`` (image: ``interpolation``; depth and valid: nearest, exact)."""

    interpolation: int = cv2.INTER_LINEAR

    def apply(self, img: np.ndarray, size: tuple[int, int], **params: Any) -> np.ndarray:
        return cv2.resize(img, (size[1], size[0]), interpolation=self.interpolation)

    def apply_to_valid(self, valid: np.ndarray, size: tuple[int, int], **params: Any) -> np.ndarray:
        return cv2.resize(valid, (size[1], size[0]), interpolation=NEAREST)

    def apply_to_keypoints(
        self, keypoints: np.ndarray, size: tuple[int, int], **params: Any
    ) -> np.ndarray:
        return _resize_keypoints(keypoints, params["shape"], size)
