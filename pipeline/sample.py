"""The record that flows through every stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics in pixels of the sample's image (fx, fy focal lengths; cx, cy
    principal point)."""

    fx: float
    fy: float
    cx: float
    cy: float


@dataclass
class Sample:
    """One RGB-D sample.

    ``image`` is uint8 HxWx3 RGB, ``depth`` float32 HxW in metres with 0 = invalid,
    ``key`` is stable and unique (derived from the source), ``meta`` is JSON-able,
    ``camera`` the intrinsics of ``image`` (None when unknown).
    """

    key: str
    image: np.ndarray
    depth: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    camera: Camera | None = None
