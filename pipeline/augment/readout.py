"""Readable numbers for a transform's recorded 2x3 / 3x3 pixel ``matrix`` (albumentations'
Rotate, Affine, ShiftScaleRotate, SafeRotate ...): rotation angle and shear in degrees,
scale per axis and translation of the image centre in pixels, so that the per-sample
record, ``params.png`` and the before/after captions show them as numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

READOUT = "affine"  # the key added next to ``matrix`` in a transform's params


def affine_readout(matrix: Any, shape: Any = None) -> dict[str, float] | None:
    """``angle`` (degrees, counter-clockwise on screen), ``scale_x``, ``scale_y``,
    ``shear`` (degrees along x), ``tx``, ``ty`` (where the centre of a ``shape`` = (H, W)
    image moves, pixels; the matrix's own offset without a shape) of the affine
    ``matrix`` = R(angle) @ [[scale_x, m], [0, scale_y]] + t. None when ``matrix`` is not
    an affine 2x3 / 3x3 map (a perspective warp)."""
    try:
        m = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if m.shape not in ((2, 3), (3, 3)) or not np.isfinite(m).all():
        return None
    if m.shape == (3, 3) and not np.allclose(m[2], (0.0, 0.0, 1.0)):
        return None
    a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    sx = math.hypot(a, c)
    if sx == 0:
        return None
    angle = math.atan2(-c, a)
    cos, sin = math.cos(angle), math.sin(angle)
    shear_m, sy = b * cos - d * sin, b * sin + d * cos
    tx, ty = float(m[0, 2]), float(m[1, 2])
    if isinstance(shape, (list, tuple)) and len(shape) >= 2:
        cx, cy = (float(shape[1]) - 1) / 2, (float(shape[0]) - 1) / 2
        tx, ty = a * cx + b * cy + tx - cx, c * cx + d * cy + ty - cy
    shear = math.degrees(math.atan2(-shear_m, sy)) if sy else 0.0
    values = (math.degrees(angle), sx, sy, shear, tx, ty)
    names = ("angle", "scale_x", "scale_y", "shear", "tx", "ty")
    return {n: round(float(v), 6) + 0.0 for n, v in zip(names, values)}  # + 0.0: no -0.0


def with_readout(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` plus the readout of its ``matrix`` (unchanged when it holds none)."""
    if "matrix" not in params or READOUT in params:
        return params
    shape = params.get("shape")
    readout = affine_readout(params["matrix"], shape if isinstance(shape, (list, tuple)) else None)
    return params if readout is None else {**params, READOUT: readout}
