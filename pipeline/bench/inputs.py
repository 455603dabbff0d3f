"""The benchmark's inputs: NYU-schema parquet (``image`` PNG RGB, ``depth_map`` float32
TIFF metres, 640x480, written with ``datasets`` as the hub's NYU copies are), built once
and kept under ``outputs/bench/``.

``photos``: real photographs shipped by scikit-image (astronaut, coffee, chelsea, rocket,
the Hubble deep field, immunohistochemistry, retina, the Middlebury motorcycle pair) with
real depth: the Middlebury motorcycle disparity as metres, Z = f B / (d + doffs), 0 where
the disparity is unknown (~7% of pixels). Each sample is a different random crop (4:3,
55-100% of the side), flip, colour jitter and mild sensor noise of one photograph, its
depth a crop of the motorcycle depth (the motorcycle's own crop for the left view: a true
RGB-D pair), so every sample is distinct and PNG decoding and encoding cost what real
photographs cost (synthetic renders are smoother: cheaper to decode and encode).
Images are PNG at Pillow's default settings, as the hub's NYU copies were written.

``synthetic``: the synthetic source's renders, for comparison with earlier runs.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import shutil
from pathlib import Path
from typing import Any

import numpy as np

VERSION = 1  # bump when the photo recipe changes: the cached parquet is rebuilt
PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "motorcycle_left",
    "motorcycle_right",
)
# Middlebury 2014 "Motorcycle", down-sampled 4x (scikit-image's calibration)
FOCAL_PX, BASELINE_M, DOFFS_PX = 994.978, 0.193001, 31.086
PART_ROWS = 500  # rows per Arrow table part (~0.9 GB of 640x480 photos)
NOISE_SIGMA = 1.5  # grey levels: a camera's sensor noise (real photos are never smooth)


def motorcycle_depth(disparity: np.ndarray) -> np.ndarray:
    """Metres from Middlebury disparity: Z = f B / (d + doffs); 0 where d is unknown."""
    d = np.asarray(disparity, dtype=np.float64)
    valid = np.isfinite(d) & (d > 0)
    depth = np.zeros(d.shape, np.float32)
    depth[valid] = (FOCAL_PX * BASELINE_M / (d[valid] + DOFFS_PX)).astype(np.float32)
    return depth


def _photos() -> dict[str, np.ndarray]:
    import skimage.data as data

    left, right, disparity = data.stereo_motorcycle()
    out = {name: getattr(data, name)() for name in PHOTOS if not name.startswith("motorcycle")}
    out["motorcycle_left"], out["motorcycle_right"] = left, right
    out["depth"] = motorcycle_depth(disparity)
    return out


def _crop_box(shape: tuple[int, ...], rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A random 4:3 window (55-100% of the largest one) inside an image of ``shape``."""
    h, w = shape[:2]
    full_h = min(h, w * 3 // 4)
    ch = max(int(full_h * rng.uniform(0.55, 1.0)), 48)
    cw = ch * 4 // 3
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return y, x, ch, cw


def photo_sample(
    photos: dict[str, np.ndarray], index: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``index``: (image uint8 HxWx3, depth float32 metres), deterministic."""
    import cv2

    rng = np.random.default_rng([VERSION, index])
    name = PHOTOS[index % len(PHOTOS)]
    photo = photos[name]
    y, x, ch, cw = _crop_box(photo.shape, rng)
    interp = cv2.INTER_AREA if cw > width else cv2.INTER_CUBIC
    image = cv2.resize(photo[y : y + ch, x : x + cw], (width, height), interpolation=interp)
    gains = rng.uniform(0.85, 1.15, 3) * rng.uniform(0.85, 1.15)
    gamma = rng.uniform(0.8, 1.25)
    level = (image.astype(np.float32) / 255.0) ** gamma * gains * 255.0
    level += rng.normal(0.0, NOISE_SIGMA, level.shape).astype(np.float32)
    image = np.clip(level, 0, 255).astype(np.uint8)
    depth_map = photos["depth"]
    if name != "motorcycle_left":  # the left view's own depth; others get another window
        y, x, ch, cw = _crop_box(depth_map.shape, rng)
    depth = cv2.resize(
        depth_map[y : y + ch, x : x + cw], (width, height), interpolation=cv2.INTER_NEAREST
    )
    if rng.random() < 0.5:
        image, depth = image[:, ::-1], depth[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(depth, dtype=np.float32)


def _encode_row(image: np.ndarray, depth: np.ndarray, png_level: int | None) -> dict[str, Any]:
    """One NYU parquet row: PNG image (Pillow), float32 TIFF depth (tifffile)."""
    import tifffile
    from PIL import Image

    png, tiff = io.BytesIO(), io.BytesIO()
    kwargs = {} if png_level is None else {"compress_level": png_level}
    Image.fromarray(image).save(png, format="PNG", **kwargs)
    tifffile.imwrite(tiff, depth)
    return {
        "image": {"bytes": png.getvalue(), "path": None},
        "depth_map": {"bytes": tiff.getvalue(), "path": None},
    }


def _rows(args: tuple[str, int, int, int, int]) -> list[dict[str, Any]]:
    kind, height, width, start, stop = args
    if kind == "photos":
        photos = _photos()
        return [
            _encode_row(*photo_sample(photos, i, height, width), None) for i in range(start, stop)
        ]
    from pipeline.sources.synthetic import render

    return [_encode_row(*render(height, width, 0, i), 1) for i in range(start, stop)]


def build(kind: str, root: Path, n: int, height: int, width: int, workers: int) -> Path:
    """``root/input-{kind}-{n}-{H}x{W}/train.parquet``, built once (rows in parallel)."""
    import datasets

    tag = f"-v{VERSION}" if kind == "photos" else ""
    out = root / f"input-{kind}{tag}-{n}-{height}x{width}"
    if (out / "train.parquet").is_file():
        return out
    datasets.disable_progress_bars()
    step = 25
    chunks = [(kind, height, width, s, min(s + step, n)) for s in range(0, n, step)]
    with mp.get_context("forkserver").Pool(workers) as pool:
        rows = [r for part in pool.map(_rows, chunks) for r in part]
    features = datasets.Features({"image": datasets.Image(), "depth_map": datasets.Image()})
    # one Arrow array holds at most 2 GB of binary data: build the table in parts
    parts = [
        datasets.Dataset.from_list(rows[i : i + PART_ROWS], features=features)
        for i in range(0, len(rows), PART_ROWS)
    ]
    ds = datasets.concatenate_datasets(parts)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ds.to_parquet(str(tmp / "train.parquet"))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def has_photos() -> bool:
    """Whether scikit-image (the ``bench`` extra) is installed."""
    import importlib.util

    return importlib.util.find_spec("skimage") is not None
