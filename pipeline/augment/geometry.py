"""Camera tracking through the augmentation: where every geometric step moved the pixels,
composed into one homography, and the intrinsics read back from it.

A step's pixel map comes from albumentations' own geometry: a 4x4 grid of points spanning
the step's input goes through the transform's ``apply_to_keypoints`` with the parameters
it applied, and a homography is fitted to where they land. No table per transform, so a
transform the tracker has never seen (or one of ``pipeline.augment.transforms``) is tracked too.

Albumentations uses two pixel conventions for keypoints, verified against its source:
flips, rot90, affine and perspective warps map pixel centres (``x' = W-1-x``, the matrix
the image is warped with), while resizes scale corner coordinates (``x' = s*x``) although
``cv2.resize`` maps centres (``x' = s*(x+0.5)-0.5``). The resizing transforms
(``RESIZING``) are converted to the centre convention, and the whole-image ones take their
exact scale from the output size (albumentations scales their keypoints by the nominal
factor, not by the rounded size). Their depth is resampled with ``INTER_NEAREST_EXACT``:
OpenCV's INTER_NEAREST resize picks ``floor(x*scale)``, which shifts depth against the
image by up to (scale-1)/2 source pixels; sparse depth is scattered instead
(``augment.resample``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import albumentations_import

albumentations_import.prepare()  # no update check, no torch

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from albumentations.augmentations.crops.transforms import _BaseRandomSizedCrop  # noqa: E402
from albumentations.augmentations.geometric.resize import MaxSizeTransform  # noqa: E402

from pipeline.augment.homography import (  # noqa: E402
    NON_UNIFORM_TOL,
    camera_after,
    centre_scale,
    fit,
    translation,
)
from pipeline.augment.traits import spec_traits, traits_of  # noqa: E402
from pipeline.sample import Camera  # noqa: E402

# Transforms whose image goes through cv2.resize and whose keypoints are scaled in the
# corner convention (every caller of fgeometric.keypoints_scale / fgeometric.resize in
# albumentations 2.0.x; tests/test_camera_tracking.py checks the list against the library).
RESIZING: tuple[type, ...] = (
    A.Resize,
    A.RandomScale,
    MaxSizeTransform,
    _BaseRandomSizedCrop,
    A.RandomSizedBBoxSafeCrop,
    A.CropAndPad,
)
# ... of which these resize the whole input: the exact scale is output size / input size.
WHOLE_IMAGE_RESIZES: tuple[type, ...] = (A.Resize, A.RandomScale, MaxSizeTransform)
GRID = 4  # probe points per axis
HOMOGRAPHY_TOL = 1e-2  # px: a worse fit means the step is not a homography (a distortion)


@functools.lru_cache(maxsize=64)
def _probe(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The probe grid spanning a ``height`` x ``width`` input, as keypoints (x, y, z,
    angle, scale, id), its affine design matrix and that matrix's pseudo-inverse."""
    xs = np.linspace(0.0, max(width - 1.0, GRID - 1.0), GRID)
    ys = np.linspace(0.0, max(height - 1.0, GRID - 1.0), GRID)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    points = np.zeros((len(grid), 6))
    points[:, :2] = grid
    points[:, 4] = 1.0  # keypoint scale
    points[:, 5] = np.arange(len(grid))  # an id column, carried along untouched
    design = np.hstack([grid, np.ones((len(grid), 1))])
    for array in (points, design):
        array.setflags(write=False)
    return points, design, np.linalg.pinv(design)


@contextlib.contextmanager
def _constant_border(transform: Any, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Reflecting borders make albumentations add mirrored copies of keypoints (and drop
    those outside); the real content moves exactly as with a constant border."""
    old = getattr(transform, "border_mode", None)
    if old is not None:
        transform.border_mode = cv2.BORDER_CONSTANT
    try:
        if "border_mode" in params:
            params = {**params, "border_mode": cv2.BORDER_CONSTANT}
        yield params
    finally:
        if old is not None:
            transform.border_mode = old


def step_map(
    transform: Any, params: dict[str, Any], out_shape: tuple[int, int]
) -> tuple[np.ndarray, float] | None:
    """The map of one applied step from its input to its output pixels (centre
    convention) and the fit residual; None if the transform cannot map keypoints."""
    height, width = params["shape"][:2]
    if isinstance(transform, WHOLE_IMAGE_RESIZES):
        return centre_scale(out_shape[1] / width, out_shape[0] / height), 0.0
    points, design, pinv = _probe(int(height), int(width))
    try:
        with _constant_border(transform, params) as probe_params:
            moved = np.asarray(transform.apply_to_keypoints(points.copy(), **probe_params))
    except Exception:  # a transform without keypoint support
        return None
    if moved.ndim != 2 or moved.shape[1] < 6 or len(moved) < 4:
        return None
    ids = np.rint(moved[:, 5]).astype(int)
    if len(set(ids.tolist())) != len(ids):
        return None
    full = len(ids) == len(points) and bool((ids == np.arange(len(ids))).all())
    matrix, residual = fit(points[ids, :2], moved[:, :2].astype(np.float64), pinv if full else None)
    if isinstance(transform, RESIZING):
        matrix = translation(-0.5, -0.5) @ matrix @ translation(0.5, 0.5)
    return matrix, residual


@dataclass
class Track:
    """The running geometry of one augmentation call; reset for every sample.

    Transforms of ``pipeline.augment.transforms`` read ``current()`` (the camera of the image as
    it is at their position in the list); the augmenter reads the result at the end."""

    camera: Camera | None = None
    source_shape: tuple[int, int] = (0, 0)
    matrix: np.ndarray = field(default_factory=lambda: np.eye(3))
    depth_factor: float = 1.0
    exact: bool = True  # every geometric step was read and was a homography
    lost: list[str] = field(default_factory=list)  # steps that could not be read

    def reset(self, camera: Camera | None, shape: tuple[int, int]) -> None:
        self.camera, self.source_shape = camera, (int(shape[0]), int(shape[1]))
        self.matrix = np.eye(3)
        self.depth_factor = 1.0
        self.exact = True
        self.lost = []

    def step(
        self, name: str, transform: Any, params: dict[str, Any], out_shape: tuple[int, int]
    ) -> None:
        """Compose the map of one applied step (and, for a transform whose traits say it
        scales depth, the ``depth_factor`` it records)."""
        if traits_of(transform).scales_depth:
            self.depth_factor *= float(params.get("depth_factor", 1.0))
        found = step_map(transform, params, out_shape)
        if found is None:
            self.exact = False
            self.lost.append(name)
            return
        matrix, residual = found
        if residual > HOMOGRAPHY_TOL:
            self.exact = False
        self.matrix = matrix @ self.matrix
        self.matrix /= self.matrix[2, 2]

    def current(self) -> Camera | None:
        return camera_after(self.camera, self.matrix, self.depth_factor, self.exact)

    @property
    def homography(self) -> tuple[float, ...]:
        return tuple(float(v) + 0.0 for v in self.matrix.ravel())  # + 0.0: no "-0.0"


def strict_refusal(name: str, spec: dict[str, Any]) -> str | None:
    """Why ``augment.camera=strict`` refuses this transform spec before the run (else
    None), from its ``Traits``: it warps, rotates or shears through its arguments, or
    resizes crops of varying aspect."""
    target = str(spec.get("_target_", "")).rpartition(".")[2]
    traits = spec_traits(spec)
    what = f"augment.transforms.{name} ({target})"
    if traits.warps:
        return (
            f"{what} rotates or warps the image, which no pinhole camera expresses exactly; "
            f"remove it, or use augment.camera=track (the camera is then marked approximate "
            f"and the homography recorded)"
        )
    for key, default in traits.angle_args:
        value = spec.get(key, default)
        values = value.values() if isinstance(value, dict) else np.ravel(value)
        if any(float(np.max(np.abs(np.ravel(v)))) > 0 for v in values):
            return (
                f"{what}: {key}={value} rotates or shears the image; set it to 0 or use "
                f"augment.camera=track"
            )
    if traits.aspect_arg is not None and not _uniform_crop(traits.aspect_arg, spec):
        return (
            f"{what} resizes crops of varying aspect to a fixed size: a non-uniform rescale "
            f"of metric depth; give it one crop aspect equal to the output's (ratio / "
            f"w2h_ratio), or use augment.camera=track"
        )
    return None


def _uniform_crop(aspect_arg: tuple[str, Any], spec: dict[str, Any]) -> bool:
    """Whether a random-sized crop keeps the aspect of the output size (within 1%): every
    crop aspect its ``aspect_arg`` (name, default) allows equals the output's."""
    size = spec.get("size")
    if not size:
        return False
    aspect = float(size[1]) / float(size[0])
    ratios = np.ravel(spec.get(aspect_arg[0], aspect_arg[1]))
    return all(abs(float(r) / aspect - 1.0) < NON_UNIFORM_TOL for r in ratios)
