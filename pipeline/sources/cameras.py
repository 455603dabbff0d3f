"""Reading a sample's camera from what sources hold.

Accepted everywhere (a hub cell, a webdataset ``.json`` member, a folder's camera file):
a JSON object with ``fx`` (``fy``, ``cx``, ``cy`` optional: fy = fx, principal point at
the image centre) such as this tool's own ``camera`` object or a whole sample ``.json``
holding one; Metric3D's ``cam_in`` / a ``K`` / ``intrinsics`` / ``focal`` entry;
[fx, fy, cx, cy]; a 3x3 K or 3x4 P (flat or nested); a single focal length. Text
calibrations (``NAME: numbers`` lines, e.g. KITTI's ``calib_cam_to_cam.txt``) give one
named line as a K or P. Pixel centres are at integer coordinates, as OpenCV and KITTI's
rectified P matrices have them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.sample import Camera
from pipeline.sources.headers import read_regular

NESTED_KEYS = ("camera", "cam_in", "K", "intrinsics", "intrinsic", "focal")


def camera_from(value: Any, height: int, width: int) -> Camera | None:
    """The camera described by ``value`` for a ``height`` x ``width`` image; None when the
    value says nothing about one (null, or an object without camera keys). ValueError
    when it does but cannot be read."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return _from_mapping(value, height, width)
    if isinstance(value, (bytes, bytearray, str)):
        raise ValueError(f"expected numbers or an object with fx, fy, cx, cy, got {value!r:.60}")
    try:
        flat = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"not numbers: {value!r:.80}") from None
    if flat.size == 1:
        return _checked(flat[0], flat[0], (width - 1) / 2, (height - 1) / 2)
    if flat.size == 4:
        return _checked(*flat)
    if flat.size in (9, 12):
        k = flat.reshape(3, -1)
        if k[0, 1] != 0 or k[1, 0] != 0 or k[2, 0] != 0 or k[2, 1] != 0 or k[2, 2] != 1:
            raise ValueError(f"{flat.size} numbers are not an upper-triangular K / P without skew")
        return _checked(k[0, 0], k[1, 1], k[0, 2], k[1, 2])
    raise ValueError(
        f"{flat.size} numbers; expected 1 (focal), 4 (fx, fy, cx, cy), 9 (K) or 12 (P)"
    )


def _from_mapping(value: Mapping[str, Any], height: int, width: int) -> Camera | None:
    if "fx" in value:
        fx = value["fx"]
        if fx is None:
            return None  # this tool's object for an unknown camera
        fy = value.get("fy")
        cx, cy = value.get("cx"), value.get("cy")
        camera = _checked(
            fx,
            fx if fy is None else fy,
            (width - 1) / 2 if cx is None else cx,
            (height - 1) / 2 if cy is None else cy,
        )
        if value.get("approximate"):
            camera = Camera(camera.fx, camera.fy, camera.cx, camera.cy, approximate=True)
        return camera
    for key in NESTED_KEYS:
        if key in value:
            return camera_from(value[key], height, width)
    return None


def _checked(fx: Any, fy: Any, cx: Any, cy: Any) -> Camera:
    try:
        values = [float(v) for v in (fx, fy, cx, cy)]
    except (TypeError, ValueError):
        raise ValueError(
            f"fx, fy, cx, cy must be numbers, got {fx!r}, {fy!r}, {cx!r}, {cy!r}"
        ) from None
    if not all(math.isfinite(v) for v in values) or values[0] <= 0 or values[1] <= 0:
        raise ValueError(f"fx, fy must be > 0 and all finite, got {values}")
    return Camera(*values)


def read_calibration(path: Path | str, data: bytes | None = None) -> dict[str, np.ndarray]:
    """``NAME: n1 n2 ...`` lines of a text calibration file (or its ``data``); lines that
    are not all numbers (``calib_time: 09-Jan-2012 13:57:47``) are skipped."""
    entries: dict[str, np.ndarray] = {}
    raw = read_regular(path) if data is None else data
    for line in raw.decode(errors="replace").splitlines():
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            entries[name.strip()] = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            continue
    return entries


def camera_file(
    path: Path | str, entry: str | None, height: int, width: int, data: bytes | None = None
) -> Camera | None:
    """The camera in a ``.json`` file, or in line ``entry`` of a text calibration;
    ``data``: its bytes when already fetched (an object at a URL)."""
    if str(path).lower().endswith(".json"):
        return camera_from(json.loads(read_regular(path) if data is None else data), height, width)
    entries = read_calibration(path, data)
    if entry is None:
        raise ValueError(f"{path} is a text calibration: set source.camera_entry (e.g. P_rect_02)")
    if entry not in entries:
        have = ", ".join(sorted(entries)) or "no NAME: numbers lines"
        raise ValueError(f"{path} has no line {entry!r} (has {have})")
    return camera_from(entries[entry], height, width)
