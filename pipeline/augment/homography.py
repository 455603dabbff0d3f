"""Pixel maps as 3x3 homographies (source pixel centres -> output pixel centres, integer
coordinates at pixel centres) and what they do to a pinhole camera. Numpy only: the report
reads recorded maps without importing the augmentation libraries."""

from __future__ import annotations

import numpy as np

from pipeline.sample import Camera

SNAP_TOL = 1e-6  # relative: float32 keypoints carry ~6e-8
AFFINE_TOL = 1e-3  # px: keypoints come back as float32 (~1e-4 px at 2000 px)
ORTHOGONAL_TOL = 1e-6  # |cos| between the axes of K's image: below it, K is exact
NON_UNIFORM_TOL = 1e-2  # relative x/y scale difference reported as a non-uniform rescale


def translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def centre_scale(sx: float, sy: float) -> np.ndarray:
    """cv2.resize's map of pixel centres: x' = sx * (x + 0.5) - 0.5."""
    return translation(-0.5, -0.5) @ np.diag([sx, sy, 1.0]) @ translation(0.5, 0.5)


def fit(
    src: np.ndarray, dst: np.ndarray, pinv: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """The affine map (exactly, when it fits) or else the homography taking ``src`` to
    ``dst`` (N x 2 each), and the largest residual in pixels. ``pinv``: the pseudo-inverse
    of ``src``'s design matrix, when known."""
    ones = np.ones((len(src), 1))
    design = np.hstack([src, ones])
    if pinv is None:
        pinv = np.linalg.pinv(design)
    coef = pinv @ dst
    residual = float(np.abs(design @ coef - dst).max())
    if residual < AFFINE_TOL:
        return np.vstack([_snapped(coef.T), [0.0, 0.0, 1.0]]), residual
    # Direct linear transform on normalised points (Hartley).
    ts, td = _normaliser(src), _normaliser(dst)
    s = (np.hstack([src, ones]) @ ts.T)[:, :2]
    d = (np.hstack([dst, ones]) @ td.T)[:, :2]
    rows = []
    for (x, y), (u, v) in zip(s, d):
        rows.append([-x, -y, -1, 0, 0, 0, u * x, u * y, u])
        rows.append([0, 0, 0, -x, -y, -1, v * x, v * y, v])
    h = np.linalg.svd(np.asarray(rows))[2][-1].reshape(3, 3)
    h = np.linalg.inv(td) @ h @ ts
    h /= h[2, 2]
    mapped = np.hstack([src, ones]) @ h.T
    residual = float(np.abs(mapped[:, :2] / mapped[:, 2:] - dst).max())
    return h, residual


def _snapped(values: np.ndarray) -> np.ndarray:
    """Coefficients within float32 noise (keypoints come back as float32) of a multiple of
    1/64 become that multiple: integer crops and flips give exact intrinsics."""
    grid = np.round(values * 64.0) / 64.0
    close = np.abs(values - grid) <= SNAP_TOL * np.maximum(1.0, np.abs(values))
    return np.where(close, grid, values)


def _normaliser(points: np.ndarray) -> np.ndarray:
    centre = points.mean(axis=0)
    spread = np.sqrt(((points - centre) ** 2).sum(axis=1)).mean() or 1.0
    k = np.sqrt(2.0) / spread
    return np.array([[k, 0, -k * centre[0]], [0, k, -k * centre[1]], [0, 0, 1.0]])


def camera_after(
    camera: Camera | None, matrix: np.ndarray, depth_factor: float, exact: bool
) -> Camera | None:
    """The intrinsics of an image whose pixels are ``matrix`` (source -> output) applied to
    those of ``camera``'s image, with depth multiplied by ``depth_factor``.

    K' = H K R for a roll R of the camera about its axis (which keeps depth), when H's
    linear part maps K's axes to orthogonal ones (crops, pads, flips, rot90, resizes of any
    aspect; rotations when fx = fy); else the fit at the principal point, approximate.
    Multiplying depth by m while keeping the pixels is the same as multiplying the focal
    lengths by m (the scene squashed along the optical axis projects to the same pixels).
    """
    if camera is None:
        return None
    centre = matrix @ np.array([camera.cx, camera.cy, 1.0])
    cx, cy = centre[0] / centre[2], centre[1] / centre[2]
    # Jacobian of the (possibly projective) map at the principal point.
    jacobian = (matrix[:2, :2] - np.outer([cx, cy], matrix[2, :2])) / centre[2]
    axes = jacobian @ np.diag([camera.fx, camera.fy])
    fx, fy = float(np.hypot(*axes[0])), float(np.hypot(*axes[1]))
    cosine = float(axes[0] @ axes[1]) / (fx * fy) if fx and fy else 1.0
    projective = bool(np.abs(matrix[2, :2]).max() > 0)
    approximate = camera.approximate or not exact or projective or abs(cosine) > ORTHOGONAL_TOL
    return Camera(fx * depth_factor, fy * depth_factor, float(cx), float(cy), approximate)


def axis_scales(matrix: np.ndarray) -> tuple[float, float]:
    """How far a unit step along x and along y of the source goes in the output."""
    linear = matrix[:2, :2] / matrix[2, 2]
    return float(np.hypot(*linear[:, 0])), float(np.hypot(*linear[:, 1]))


def non_uniform(matrix: np.ndarray) -> bool:
    """Whether the map stretches x and y differently (by more than 1%)."""
    sx, sy = axis_scales(matrix)
    return abs(sx / sy - 1.0) > NON_UNIFORM_TOL if sy else True
