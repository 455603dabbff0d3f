"""Built-in procedural RGB-D scenes: a room seen in perspective with boxes and spheres.

Depth is ray-cast against the geometry (metric z, NYU-like 0.5-10 m); the RGB is shaded
from the same geometry, so edges and occlusions agree. Invalid pixels (0) imitate a
structured-light sensor: shadow bands left of foreground objects, far-range dropouts and
a few speckles. Each sample is a pure function of ``(seed, index)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import cv2
import numpy as np

from pipeline.config.sources import SyntheticConfig
from pipeline.sample import Camera, Origin, Sample
from pipeline.sources import Source

NYU_FOCAL = 518.8  # pixels, for a 640-wide image
BASELINE = 0.075  # metres between projector and camera
LIGHT_AMBIENT = 0.35


@lru_cache(maxsize=4)
def _rays(height: int, width: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-pixel ray directions (x, y) at z = 1, and the focal length in pixels."""
    f = NYU_FOCAL * width / 640.0
    xs = (np.arange(width, dtype=np.float32) - (width - 1) / 2) / f
    ys = (np.arange(height, dtype=np.float32) - (height - 1) / 2) / f
    rx, ry = np.meshgrid(xs, ys)
    rx.setflags(write=False)
    ry.setflags(write=False)
    return rx, ry, f


def camera(height: int, width: int) -> Camera:
    """The renderer's pinhole camera: the rays of ``_rays`` go through pixel centres."""
    f = NYU_FOCAL * width / 640.0
    return Camera(f, f, (width - 1) / 2, (height - 1) / 2)


@lru_cache(maxsize=4)
def _noise(height: int, width: int) -> np.ndarray:
    """A fixed standard-normal field twice the image size; samples read random windows."""
    field = np.random.default_rng(12345).standard_normal((2 * height, 2 * width), dtype=np.float32)
    field.setflags(write=False)
    return field


def _hit_plane(depth: np.ndarray, ids: np.ndarray, z: np.ndarray, ident: int) -> None:
    """Keep the nearer of the current depth and plane depth ``z`` (NaN/<=0 = miss)."""
    closer = (z > 0) & (z < depth)
    depth[closer] = z[closer]
    ids[closer] = ident


class SyntheticSource(Source):
    """Deterministic procedural scenes; ``len`` is ``num_samples`` (capped by ``limit``)."""

    def __init__(self, cfg: SyntheticConfig) -> None:
        if cfg.height < 16 or cfg.width < 16:
            raise ValueError("source.height and source.width must be at least 16")
        self.cfg = cfg

    def __len__(self) -> int:
        return self.cfg.num_samples

    @property
    def size(self) -> tuple[int, int]:
        return self.cfg.height, self.cfg.width

    def identity(self) -> dict[str, object]:
        c = self.cfg
        return {
            "kind": "synthetic",
            "seed": c.seed,
            "num_samples": c.num_samples,
            "height": c.height,
            "width": c.width,
        }

    def iter(self, start: int, stop: int) -> Iterator[Sample]:
        for index in range(start, stop):
            yield self.read(index)

    def read(self, index: int) -> Sample:
        height, width = self.cfg.height, self.cfg.width
        image, depth = render(height, width, self.cfg.seed, index)
        key = f"{self.cfg.split}/{index:06d}"
        return Sample(key, image, depth, Origin("synthetic"), camera(height, width))


def render(height: int, width: int, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Render one scene: uint8 RGB image and float32 depth (metres, 0 = invalid).

    Longer than 60 lines: one procedural scene drawn step by step."""
    rng = np.random.default_rng([seed, index])
    rx, ry, f = _rays(height, width)
    room_w, room_d, room_h = rng.uniform(3.0, 6.0), rng.uniform(4.5, 9.0), rng.uniform(2.4, 3.0)
    cam_h, cam_x = rng.uniform(1.0, 1.6), rng.uniform(-0.5, 0.5)

    depth = np.full((height, width), np.inf, dtype=np.float32)
    ids = np.zeros((height, width), dtype=np.uint8)
    with np.errstate(divide="ignore", invalid="ignore"):
        _hit_plane(depth, ids, cam_h / ry, 1)  # floor (y grows downwards)
        _hit_plane(depth, ids, (cam_h - room_h) / ry, 2)  # ceiling
        _hit_plane(depth, ids, (-room_w / 2 - cam_x) / rx, 3)  # left wall
        _hit_plane(depth, ids, (room_w / 2 - cam_x) / rx, 4)  # right wall
    back = np.float32(room_d)
    ids[depth > back] = 5
    np.minimum(depth, back, out=depth)

    # Surfaces are shaded as palette colour x texture tint x Lambert term (one HxW map each).
    px, py = rx * depth, ry * depth
    light = (rng.uniform(-1, 1), cam_h - room_h + 0.2, room_d * 0.4)
    lx, ly, lz = light[0] - px, light[1] - py, light[2] - depth
    dist = np.sqrt(lx * lx + ly * ly + lz * lz) + 1e-6
    # Light along each surface's inward normal (floor -y, ceiling +y, walls +-x, back -z),
    # and a texture tint: planks on the floor, faint stripes on the walls. Each is computed
    # on its own surface's pixels only.
    facing = -lz
    tint = np.ones(depth.shape, dtype=np.float32)
    for ident, comp, sign in ((1, ly, -1.0), (2, ly, 1.0), (3, lx, 1.0), (4, lx, -1.0)):
        on = ids == ident
        facing[on] = comp[on] if sign > 0 else -comp[on]
    lam = facing / dist
    floor = ids == 1
    plank = (np.floor((px[floor] + cam_x) * 4.0).astype(np.int32) & 1).astype(np.float32)
    tint[floor] = 0.85 + 0.1 * plank + 0.08 * np.sin(depth[floor] * 9.0 + plank * 3.0)
    walls = ids >= 3
    tint[walls] = 0.95 + 0.05 * np.sin(py[walls] * 20.0)
    objects = [rng.uniform(0.2, 1.0, size=3) for _ in range(int(rng.integers(2, 6)))]
    palette = np.concatenate([rng.uniform(0.35, 0.9, size=(6, 3)), np.array(objects)])
    placed = [
        _add_object(
            rng, 6 + k, depth, ids, tint, lam, rx, ry, f, light, (room_w, room_d, cam_h, cam_x)
        )
        for k in range(len(objects))
    ]
    shadow = _shadows(depth, ids, [p for p in placed if p is not None], f, room_d)

    falloff = 1.0 / (1.0 + 0.02 * depth * depth)
    shade = (LIGHT_AMBIENT + (1 - LIGHT_AMBIENT) * np.clip(lam, 0.0, 1.0)) * falloff * tint
    oy, ox = int(rng.integers(0, height)), int(rng.integers(0, width))
    noise = _noise(height, width)[oy : oy + height, ox : ox + width]
    shade *= 255.0
    grain = 2.0 * noise
    image = np.empty((height, width, 3), dtype=np.uint8)
    lut = np.zeros((256, 3), dtype=np.float32)  # surface id -> colour (ids are uint8)
    lut[: len(palette)] = palette
    for c in range(3):
        channel = cv2.LUT(ids, np.ascontiguousarray(lut[:, c])) * shade + grain
        image[..., c] = np.clip(channel, 0, 255)

    # Sensor model: noise growing with z^2, then invalid regions.
    depth += noise[::-1] * (0.0012 + 0.0019 * (depth - 0.4) ** 2)
    far_limit = rng.uniform(7.5, 9.5)
    depth[depth > far_limit] = 0.0
    depth[shadow > 0] = 0.0
    for _ in range(int(rng.integers(0, 6))):  # speckle dropouts
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), int(rng.integers(2, 8))
        depth[max(cy - r, 0) : cy + r, max(cx - r, 0) : cx + r] = 0.0
    return image, depth


def _add_object(
    rng: np.random.Generator,
    ident: int,
    depth: np.ndarray,
    ids: np.ndarray,
    tint: np.ndarray,
    lam: np.ndarray,
    rx: np.ndarray,
    ry: np.ndarray,
    f: float,
    light: tuple[float, float, float],
    room: tuple[float, float, float, float],
) -> tuple[int, float, tuple[slice, slice]] | None:
    """Ray-cast a sphere or a floor-standing box into its image-space bounding window;
    return (id, mean depth, window) if any of it is visible.

    Longer than 60 lines: one procedural object drawn step by step."""
    room_w, room_d, cam_h, cam_x = room
    height, width = depth.shape
    z = rng.uniform(1.2, room_d - 0.6)
    x = rng.uniform(-room_w / 2 + 0.4, room_w / 2 - 0.4) - cam_x
    size = rng.uniform(0.25, 0.8)
    is_sphere = rng.random() < 0.5
    y = cam_h - size if is_sphere else cam_h - size / 2  # resting on the floor
    half = np.array([size * rng.uniform(0.3, 0.7), size / 2, size * rng.uniform(0.3, 0.7)])
    # Image-space window: the object's bounding cube (centre +- r) projected at its nearest
    # and farthest depth, plus 2 pixels. Tight windows keep the per-object ray casting
    # (most of a render's cost) small.
    r = size if is_sphere else float(np.sqrt(half @ half))
    near, far = max(z - r, 0.3), z + r
    cu, cv = (width - 1) / 2, (height - 1) / 2
    u0 = int(np.floor(min((x - r) / near, (x - r) / far) * f + cu)) - 2
    u1 = int(np.ceil(max((x + r) / near, (x + r) / far) * f + cu)) + 2
    v0 = int(np.floor(min((y - r) / near, (y - r) / far) * f + cv)) - 2
    v1 = int(np.ceil(max((y + r) / near, (y + r) / far) * f + cv)) + 2
    u0, u1, v0, v1 = max(u0, 0), min(u1, width), max(v0, 0), min(v1, height)
    if u1 <= u0 or v1 <= v0:
        return None
    win = (slice(v0, v1), slice(u0, u1))
    dx, dy = rx[win], ry[win]
    with np.errstate(invalid="ignore", divide="ignore"):
        if is_sphere:
            a = dx * dx + dy * dy + 1.0
            b = dx * x + dy * y + z
            disc = b * b - a * (x * x + y * y + z * z - size * size)
            t = (b - np.sqrt(disc)) / a
            hit = (disc > 0) & (t > 0)
            nx, ny, nz = (dx * t - x) / size, (dy * t - y) / size, (t - z) / size
        else:
            lo, hi = np.array([x, y, z]) - half, np.array([x, y, z]) + half
            enter = [np.minimum(lo[0] / dx, hi[0] / dx), np.minimum(lo[1] / dy, hi[1] / dy)]
            leave = [np.maximum(lo[0] / dx, hi[0] / dx), np.maximum(lo[1] / dy, hi[1] / dy)]
            t = np.maximum(np.maximum(enter[0], enter[1]), lo[2])
            hit = (np.minimum(np.minimum(leave[0], leave[1]), hi[2]) >= t) & (t > 0)
            # The face whose entry parameter equals t gives the normal.
            nx = np.where(enter[0] == t, -np.sign(dx), 0.0)
            ny = np.where(enter[1] == t, -np.sign(dy), 0.0)
            nz = np.where((enter[0] != t) & (enter[1] != t), -1.0, 0.0)
    current = depth[win]
    hit &= t < current
    if not hit.any():
        return None
    # Shade only the pixels the object wins (elementwise, so the same values as shading
    # the whole window and keeping the hits).
    t = t.astype(np.float32)[hit]
    dx, dy = dx[hit], dy[hit]
    nx, ny, nz = (np.broadcast_to(n, hit.shape)[hit] for n in (nx, ny, nz))
    current[hit] = t
    ids[win][hit] = ident
    tint[win][hit] = 0.85 + 0.15 * np.sign(np.sin(dx * t * 25.0) * np.sin(dy * t * 25.0))
    lx, ly, lz = light[0] - dx * t, light[1] - dy * t, light[2] - t
    dist = np.sqrt(lx * lx + ly * ly + lz * lz) + 1e-6
    lam[win][hit] = (nx * lx + ny * ly + nz * lz) / dist
    return ident, float(t.mean()), win


def _shadows(
    depth: np.ndarray,
    ids: np.ndarray,
    placed: list[tuple[int, float, tuple[slice, slice]]],
    f: float,
    room_d: float,
) -> np.ndarray:
    """Structured-light shadows: background just left of each visible object is unseen by
    the projector (band width from the disparity between object and background)."""
    shadow = np.zeros(depth.shape, dtype=bool)
    for ident, obj_z, (rows, cols) in placed:
        band = int(np.clip(f * BASELINE * (1.0 / obj_z - 1.0 / room_d), 1, 40))
        win = (rows, slice(max(cols.start - band, 0), cols.stop))
        mask = (ids[win] == ident).astype(np.uint8)
        if not mask.any():
            continue
        kernel = np.zeros((1, 2 * band + 1), np.uint8)
        kernel[0, band:] = 1  # output(x) = max of input(x .. x + band): grows leftwards
        grown = cv2.dilate(mask, kernel)
        shadow[win] |= (grown > mask) & (depth[win] > obj_z + 0.1)
    return shadow
