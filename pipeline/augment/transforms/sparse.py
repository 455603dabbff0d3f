"""Resampling depth that may be sparse (LiDAR): dense maps keep OpenCV's exact nearest
resize (today's bytes); a map with fewer than ``SPARSE_BELOW`` valid pixels is scattered
instead, as Metric3D's ``resize_depth_preserve`` does: every valid point goes to the target
pixel its centre lands in, and where several land in one pixel the one nearest to that
pixel's centre wins (no blending, no invented points: upscaling leaves the new pixels in
between empty)."""

from __future__ import annotations

import cv2
import numpy as np

SPARSE_BELOW = 0.5  # valid fraction under which a depth map is resampled as points
NEAREST = cv2.INTER_NEAREST_EXACT


def is_sparse(depth: np.ndarray) -> bool:
    return bool(depth.size) and np.count_nonzero(depth > 0) < SPARSE_BELOW * depth.size


def resize_depth(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``depth`` resized to ``size`` = (H, W): nearest (dense) or scattered (sparse)."""
    if not is_sparse(depth):
        return cv2.resize(depth, (size[1], size[0]), interpolation=NEAREST)
    return scatter(depth, size)


def scatter(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Every valid point of ``depth`` at the target pixel its centre maps to (pixel-centre
    aligned like ``cv2.resize``: x' = (x + 0.5) * W'/W - 0.5); per target pixel, the point
    nearest to its centre (ties: the first in row-major source order)."""
    height, width = depth.shape[:2]
    out = np.zeros((size[0], size[1]), dtype=depth.dtype)
    ys, xs = np.nonzero(depth > 0)
    if not ys.size:
        return out
    fx = (xs + 0.5) * (size[1] / width) - 0.5
    fy = (ys + 0.5) * (size[0] / height) - 0.5
    tx, ty = np.floor(fx + 0.5).astype(np.int64), np.floor(fy + 0.5).astype(np.int64)
    inside = (tx >= 0) & (tx < size[1]) & (ty >= 0) & (ty < size[0])
    tx, ty, fx, fy, ys, xs = tx[inside], ty[inside], fx[inside], fy[inside], ys[inside], xs[inside]
    dist = (fx - tx) ** 2 + (fy - ty) ** 2
    target = ty * size[1] + tx
    order = np.lexsort((dist, target))  # by target pixel, nearest first (stable: row-major)
    first = np.ones(order.size, dtype=bool)
    first[1:] = target[order][1:] != target[order][:-1]
    keep = order[first]
    out.reshape(-1)[target[keep]] = depth[ys[keep], xs[keep]]
    return out
