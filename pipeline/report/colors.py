"""How depth is coloured in the sample pictures: one fixed range, matplotlib's colormap
sampled once into a 256-entry lookup table, invalid pixels in their own colour, and sparse
maps (LiDAR) thickened for display so their points stay visible when scaled down.

All of it is numpy/OpenCV on arrays: colouring a 640x480 map is a table lookup (~1 ms),
where drawing it through matplotlib's ``imshow`` + ``savefig`` cost ~1 s per picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from pipeline.config.schema import ReportConfig
from pipeline.errors import PipelineError

MIN_DELTA_E = 15.0  # CIELAB distance below which the invalid colour passes for a depth
SUGGESTIONS = ("grey", "magenta", "black", "white", "red")


@dataclass(frozen=True)
class DepthRange:
    """The depth span (metres) mapped onto the colormap; one per picture."""

    vmin: float
    vmax: float
    unit: str = "m"  # "canonical m": depth x focal / fx (CanonicalCamera), not metres

    @classmethod
    def of(
        cls,
        rcfg: ReportConfig,
        lows: list[float | None],
        highs: list[float | None],
        unit: str = "m",
    ) -> DepthRange:
        """``report.depth_min/max`` where set, else the lowest 1st / highest 99th percentile."""
        lo = rcfg.depth_min
        if lo is None:
            lo = min((v for v in lows if v is not None), default=0.0)
        hi = rcfg.depth_max
        if hi is None:
            hi = max((v for v in highs if v is not None), default=10.0)
        return cls(float(lo), float(max(hi, lo + 1e-3)), unit)

    @property
    def span(self) -> str:
        return f"{self.vmin:.2f}-{self.vmax:.2f} {self.unit}"


@lru_cache(maxsize=8)
def lut(name: str) -> np.ndarray:
    """``report.colormap`` sampled at 256 levels: uint8 (256, 3) RGB."""
    from matplotlib import colormaps

    try:
        cmap = colormaps[name]
    except KeyError:
        raise PipelineError(
            f"report.colormap={name!r} is not a matplotlib colormap (e.g. viridis, magma, "
            f"plasma, inferno, turbo)"
        ) from None
    rgba = cmap(np.linspace(0.0, 1.0, 256))
    return np.ascontiguousarray((rgba[:, :3] * 255.0).round().astype(np.uint8))


def parse_color(value: str, key: str = "report.invalid_color") -> tuple[int, int, int]:
    """A colour name or hex code (what Pillow reads: ``grey``, ``#808080``, ``rgb(...)``)."""
    from PIL import ImageColor

    try:
        rgb = ImageColor.getrgb(str(value))
    except ValueError:
        raise PipelineError(
            f"{key}={value!r} is not a colour; use a name (grey, magenta) or a hex code (#808080)"
        ) from None
    return int(rgb[0]), int(rgb[1]), int(rgb[2])


def _lab(rgb: np.ndarray) -> np.ndarray:
    pixels = np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2LAB).reshape(-1, 3)


def distance_to_colormap(color: tuple[int, int, int], name: str) -> tuple[float, float]:
    """Smallest CIELAB distance from ``color`` to the colormap, and where (0-1) it is."""
    dist = np.linalg.norm(_lab(lut(name)) - _lab(np.array([color])), axis=1)
    at = int(dist.argmin())
    return float(dist[at]), at / 255.0


def check(rcfg: ReportConfig) -> None:
    """Refuse report settings that cannot draw a truthful picture, before any work."""
    checks = [
        (rcfg.rows >= 1 and rcfg.cols >= 1, "report.rows and report.cols must be >= 1"),
        (rcfg.before_after_rows >= 0, "report.before_after_rows must be >= 0"),
        (rcfg.copies_rows >= 0, "report.copies_rows must be >= 0"),
        (32 <= rcfg.cell_width <= 2048, "report.cell_width must be 32..2048 pixels"),
        (50 <= rcfg.dpi <= 400, "report.dpi must be 50..400 (below, plot text is unreadable)"),
        (0.0 <= rcfg.sparse_below <= 1.0, "report.sparse_below must be a fraction in 0..1"),
        (
            rcfg.depth_min is None or rcfg.depth_max is None or rcfg.depth_min < rcfg.depth_max,
            "report.depth_min must be below report.depth_max",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise PipelineError(message)
    defaults = ReportConfig()
    if (rcfg.colormap, rcfg.invalid_color) == (defaults.colormap, defaults.invalid_color):
        return  # a pair the tests check; others import Pillow and matplotlib (~0.3 s)
    color = parse_color(rcfg.invalid_color)
    dist, at = distance_to_colormap(color, rcfg.colormap)
    if dist < MIN_DELTA_E:
        best = max(SUGGESTIONS, key=lambda c: distance_to_colormap(parse_color(c), rcfg.colormap))
        raise PipelineError(
            f"report.invalid_color={rcfg.invalid_color} looks like a depth in colormap "
            f"{rcfg.colormap} (at {at:.2f} of its range): invalid pixels would pass for "
            f"data; set report.invalid_color={best}"
        )


def display_depth(depth: np.ndarray, width: int, height: int, sparse_below: float) -> np.ndarray:
    """``depth`` resized to width x height for display (0 = invalid).

    Dense maps: nearest neighbour (no invented values). Sparse maps (valid fraction below
    ``sparse_below``, e.g. projected LiDAR): each display pixel takes the nearest (smallest)
    valid depth it covers, then each point is grown by a few pixels, again nearest wins:
    a 4%-valid KITTI map reads as depth instead of a field of the invalid colour. Regions
    without any point (the sky above the LiDAR) stay invalid.
    """
    valid = depth > 0
    frac = float(valid.mean()) if depth.size else 0.0
    if frac == 0.0 or frac >= sparse_below:
        return cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)
    d = np.where(valid, depth, np.float32(np.inf)).astype(np.float32, copy=False)
    fy, fx = math.ceil(depth.shape[0] / height), math.ceil(depth.shape[1] / width)
    if fx > 1 or fy > 1:  # min over each block, then one sample per block
        d = cv2.erode(d, np.ones((fy, fx), np.uint8), borderType=cv2.BORDER_REPLICATE)
    d = cv2.resize(d, (width, height), interpolation=cv2.INTER_NEAREST)
    shown = float(np.isfinite(d).mean())
    radius = int(min(max(round(0.6 / math.sqrt(max(shown, 1e-6))), 1), 4))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    d = cv2.erode(d, kernel, borderType=cv2.BORDER_REPLICATE)
    d[~np.isfinite(d)] = 0.0
    return d


def colorize(
    depth: np.ndarray, rng: DepthRange, table: np.ndarray, invalid: tuple[int, int, int]
) -> np.ndarray:
    """uint8 HxWx3: depth through the lookup table, 0 (invalid) in ``invalid``."""
    scale = 255.0 / (rng.vmax - rng.vmin)
    idx = np.clip((depth - np.float32(rng.vmin)) * np.float32(scale), 0, 255)
    out = table[(idx + 0.5).astype(np.uint8)]
    out[depth <= 0] = invalid
    return out


def ramp(table: np.ndarray, height: int, width: int) -> np.ndarray:
    """A vertical colour bar: the top row is the colormap's maximum."""
    rows = np.linspace(255, 0, height).round().astype(np.uint8)
    return np.repeat(table[rows][:, None, :], width, axis=1)


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) inside [lo, hi]."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + 1e-9 * span:
        ticks.append(round(v, 10))
        v += step
    return ticks
