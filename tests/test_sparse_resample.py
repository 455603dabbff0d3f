"""albumentations' own resizers (Resize, RandomResizedCrop, ...) resample sparse (LiDAR)
depth point by point like ``pipeline.augment.transforms``' do: every valid point that lands in the
new grid is kept, no value is blended or invented; dense depth keeps the nearest bytes."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import tifffile
from conftest import make_cfg, read_tar
from PIL import Image

from pipeline.run.runner import run

PLAIN = ["augment=none", "runtime.progress=false", "report.enabled=false", "runtime.workers=1"]


def _written_depth(tmp_path: Path, depth: np.ndarray, *transforms: str) -> np.ndarray:
    """``depth`` (float32 metres, one frame of a folder source) through ``transforms`` in a
    run; the depth it wrote, read back with tifffile."""
    src = tmp_path / "src"
    (src / "image").mkdir(parents=True)
    (src / "depth").mkdir(parents=True)
    image = np.random.default_rng(5).integers(0, 256, (*depth.shape, 3), dtype=np.uint8)
    Image.fromarray(image).save(src / "image" / "s0.png")
    tifffile.imwrite(src / "depth" / "s0.tiff", depth.astype(np.float32))
    out = tmp_path / "out"
    args = ["source=folder", f"source.path={src}", f"output.dir={out}", *PLAIN, *transforms]
    run(make_cfg(out, *args, small=False))
    (tar,) = out.glob("*.tar")
    (fields,) = read_tar(tar).values()
    return tifffile.imread(io.BytesIO(fields["depth.tiff"]))


def _kitti_like(shape=(352, 1216), share=0.05, seed=11) -> np.ndarray:
    """Projected-LiDAR-like depth: ``share`` of the pixels valid, every value unique."""
    rng = np.random.default_rng(seed)
    depth = np.zeros(shape, np.float32)
    hit = np.flatnonzero(rng.random(shape) < share)
    depth.reshape(-1)[hit] = 2.0 + np.arange(hit.size, dtype=np.float32) * (70.0 / hit.size)
    return depth


def _resize(height: int, width: int) -> list[str]:
    return ["+augment.transforms.rs._target_=albumentations.Resize",
            f"+augment.transforms.rs.height={height}",
            f"+augment.transforms.rs.width={width}"]  # fmt: skip


def test_resize_to_half_keeps_a_point_in_every_occupied_target_pixel(tmp_path):
    depth = _kitti_like()
    assert len(np.unique(depth[depth > 0])) == np.count_nonzero(depth)  # unique values
    got = _written_depth(tmp_path, depth, *_resize(176, 608))
    assert got.shape == (176, 608)
    ys, xs = np.nonzero(depth)
    occupied = set(zip(np.floor((ys + 0.5) * 0.5).tolist(), np.floor((xs + 0.5) * 0.5).tolist()))
    assert abs(np.count_nonzero(got) - len(occupied)) <= 0.01 * len(occupied)
    nearest = cv2.resize(depth, (608, 176), interpolation=cv2.INTER_NEAREST_EXACT)
    assert np.count_nonzero(got) > 1.5 * np.count_nonzero(nearest)  # what nearest lost
    assert set(got[got > 0].tolist()) <= set(depth[depth > 0].tolist())  # no blending


def test_resize_to_double_invents_no_points(tmp_path):
    depth = _kitti_like((60, 200), share=0.05)
    got = _written_depth(tmp_path, depth, *_resize(120, 400))
    assert got.shape == (120, 400)
    assert sorted(got[got > 0].tolist()) == sorted(depth[depth > 0].tolist())


def test_random_resized_crop_scatters_the_crop(tmp_path):
    depth = _kitti_like((120, 320), share=0.05)
    crop = ["+augment.transforms.rrc._target_=albumentations.RandomResizedCrop",
            "+augment.transforms.rrc.size=[30,80]",
            "+augment.transforms.rrc.scale=[1.0,1.0]",
            "+augment.transforms.rrc.ratio=[2.6666667,2.6666667]"]  # fmt: skip
    got = _written_depth(tmp_path, depth, *crop)
    assert got.shape == (30, 80)
    ys, xs = np.nonzero(depth)
    occupied = set(zip(np.floor((ys + 0.5) / 4).tolist(), np.floor((xs + 0.5) / 4).tolist()))
    assert abs(np.count_nonzero(got) - len(occupied)) <= 0.01 * len(occupied)
    assert set(got[got > 0].tolist()) <= set(depth[depth > 0].tolist())


def test_dense_depth_keeps_the_nearest_bytes(tmp_path):
    depth = np.random.default_rng(8).uniform(1.0, 9.0, (60, 80)).astype(np.float32)
    got = _written_depth(tmp_path, depth, *_resize(30, 40))
    want = cv2.resize(depth, (40, 30), interpolation=cv2.INTER_NEAREST_EXACT)
    assert got.tobytes() == want.tobytes()
