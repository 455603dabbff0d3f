"""The record that flows through every stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics in pixels of the sample's image: focal lengths fx, fy and the
    principal point cx, cy, with pixel centres at integer coordinates (OpenCV's
    convention: the centre of the top-left pixel is (0, 0), the image centre of a WxH
    image is ((W-1)/2, (H-1)/2))."""

    fx: float
    fy: float
    cx: float
    cy: float

    def to_json(self) -> dict[str, float]:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy}


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
