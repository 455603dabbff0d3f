"""The record that flows through every stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics in pixels of the sample's image: focal lengths fx, fy and the
    principal point cx, cy, with pixel centres at integer coordinates (OpenCV's
    convention: the centre of the top-left pixel is (0, 0), the image centre of a WxH
    image is ((W-1)/2, (H-1)/2)).

    ``approximate`` is True when the pixels went through a map a pinhole camera cannot
    express exactly (a rotation with fx != fy, a shear, a perspective warp, a distortion):
    fx, fy, cx, cy are then the best pinhole fit and the sample's homography says what
    really happened."""

    fx: float
    fy: float
    cx: float
    cy: float
    approximate: bool = False

    def to_json(self) -> dict[str, float]:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy}


@dataclass(frozen=True)
class Origin:
    """Where a sample comes from: the source ``kind`` and a human-readable ``location``
    (file, row, tar member; empty for generated data); in a mixture, the part's name
    (``dataset``) and its ``data_type`` (empty for a single source)."""

    kind: str
    location: str = ""
    dataset: str = ""
    data_type: str = ""


@dataclass
class Sample:
    """One RGB-D sample as a source gives it.

    ``image`` is uint8 HxWx3 RGB, ``depth`` float32 HxW in metres with 0 = invalid,
    ``key`` is stable and unique (derived from the source), ``origin`` says where it was
    read, ``camera`` the intrinsics of ``image`` (None when unknown), ``params`` the
    parameters an earlier run of this tool applied (a sample read from its output; they
    are carried into the new record, this run's transforms added by name).
    """

    key: str
    image: np.ndarray
    depth: np.ndarray
    origin: Origin = Origin("")
    camera: Camera | None = None
    params: dict[str, Any] | None = None


@dataclass
class Augmented:
    """Copy ``copy`` of input number ``index`` after augmentation, as it is written.

    ``key`` is the written key (the source's ``source_key``, with ``_c{copy}`` when the
    run writes several copies). ``camera`` holds the intrinsics of ``image`` (None when
    unknown), ``homography`` maps source pixels to this image's pixels (3x3 row-major,
    ``IDENTITY`` when nothing moved), ``params`` the applied parameters of each configured
    transform by name (None when it did not fire), ``mask`` an optional uint8 evaluation
    region (nonzero = valid) written next to the depth.
    """

    key: str
    source_key: str
    origin: Origin
    index: int
    copy: int
    image: np.ndarray
    depth: np.ndarray
    camera: Camera | None
    homography: tuple[float, ...] = IDENTITY
    params: dict[str, Any] = field(default_factory=dict)
    mask: np.ndarray | None = None


class Plain:
    """A record whose JSON is its field dict."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Any:
        return cls(**data)


class Tally(Plain):
    """A record of numbers that add up field by field."""

    def merge(self, other: Any) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class InvalidPixels(Tally):
    """Source pixels that hold no valid depth, by cause (each becomes 0 = invalid); and,
    with 16-bit PNG depth, valid pixels the format cannot hold (written as 0): farther
    than 65535 / scale metres, or nearer than 0.5 / scale."""

    zero: int = 0
    nonfinite: int = 0
    negative: int = 0
    out_of_range: int = 0
    png16_too_far: int = 0
    png16_too_near: int = 0
