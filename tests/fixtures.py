"""Small source datasets in their real on-disk layouts, written with the formats' own
tools (datasets, h5py, scipy, tarfile, Pillow), for the export and source tests.

Each builder returns ``{source key: (image uint8 HxWx3, depth float32 metres)}``: the
samples as the pipeline must read them (depth invalid = 0)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

H, W = 96, 128  # the test crop (64x96) fits
Samples = dict[str, tuple[np.ndarray, np.ndarray]]


def rgbd(
    seed: int, n: int, zeros: bool = True, shape: tuple[int, int] = (H, W)
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` random images and depths (0.5..9 m, a few invalid zeros) of ``shape``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        depth = rng.uniform(0.5, 9.0, shape).astype(np.float32)
        if zeros:
            depth[rng.random(shape) < 0.05] = 0.0
        out.append((image, depth))
    return out


def hub_parquet(root: Path, n: int = 7, shape: tuple[int, int] = (H, W)) -> Samples:
    """A parquet copy in the sayakpaul/nyu_depth_v2 schema (``image`` PNG, ``depth_map``
    float32 TIFF), written by ``datasets``: ``root/data/train-00000-of-00001.parquet``."""
    import datasets

    pairs = rgbd(1, n, shape=shape)
    features = datasets.Features({"image": datasets.Image(), "depth_map": datasets.Image()})
    table = {"image": [p[0] for p in pairs], "depth_map": [p[1] for p in pairs]}
    (root / "data").mkdir(parents=True)
    ds = datasets.Dataset.from_dict(table, features=features)
    ds.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    return {f"train/{i:06d}": p for i, p in enumerate(pairs)}


def nyu_mat(path: Path, n: int = 7, shape: tuple[int, int] = (H, W)) -> Samples:
    """An HDF5 file laid out like the official labeled .mat (MATLAB's transposed arrays)."""
    pairs = rgbd(2, n, shape=shape)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.stack([p[0].transpose(2, 1, 0) for p in pairs]))
        f.create_dataset("depths", data=np.stack([p[1].T for p in pairs]))
    return {f"train/{i:06d}": p for i, p in enumerate(pairs)}


def splits_mat(path: Path, train: list[int], test: list[int]) -> None:
    """The official splits.mat (MATLAB v5): 1-based column vectors of frame numbers."""
    from scipy.io import savemat

    column = np.array([[i + 1] for i in train], dtype=np.float64)
    savemat(path, {"trainNdxs": column, "testNdxs": np.array([[i + 1] for i in test], float)})


def fastdepth_tree(root: Path, shape: tuple[int, int] = (H, W)) -> Samples:
    """FastDepth's NYU folder: ``train/<scene>/<frame>.h5`` and ``val/official/<frame>.h5``
    with ``rgb`` uint8 (3, H, W) and ``depth`` float32 (H, W) metres."""
    pairs = iter(rgbd(3, 9, shape=shape))
    out = {}
    for split, scene, frames in (
        ("train", "bedroom_0078", (1, 66, 131)),
        ("train", "kitchen_0028b", (5, 9)),
        ("train", "living_room_0010", (2, 3)),
        ("val", "official", (1, 2)),
    ):
        (root / split / scene).mkdir(parents=True, exist_ok=True)
        for frame in frames:
            image, depth = next(pairs)
            with h5py.File(root / split / scene / f"{frame:05d}.h5", "w") as f:
                f.create_dataset("rgb", data=image.transpose(2, 0, 1))
                f.create_dataset("depth", data=depth)
            out[f"{split}/{scene}/{frame:05d}"] = (image, depth)
    return out


def sayakpaul_tars(tree: Path, data: Path) -> None:
    """The archives behind the hub's ``sayakpaul/nyu_depth_v2``: ``data/train-00000N.tar``
    (members ``train/<scene>/<frame>.h5``, split over several tars) and
    ``data/val-000000.tar`` (``val/official/<frame>.h5``)."""
    data.mkdir(parents=True, exist_ok=True)
    scenes = sorted(p for p in (tree / "train").iterdir())
    for number, group in enumerate((scenes[:2], scenes[2:])):
        with tarfile.open(data / f"train-{number:06d}.tar", "w") as tar:
            for scene in group:
                tar.add(scene, arcname=f"train/{scene.name}")
    with tarfile.open(data / "val-000000.tar", "w") as tar:
        tar.add(tree / "val", arcname="val")


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def bts_list(
    root: Path, n: int = 7, focal: float = 518.8579, shape: tuple[int, int] = (H, W)
) -> Samples:
    """A BTS-style NYU list: ``/scene/rgb_NNNNN.png /scene/sync_depth_NNNNN.png focal`` (a
    leading slash, as BTS's own lists have), 16-bit PNG depth in millimetres, and one
    frame without ground truth (``None``)."""
    pairs = rgbd(4, n, shape=shape)
    lines, out = [], {}
    for i, (image, depth) in enumerate(pairs):
        scene = f"scene_{i % 2:04d}"
        (root / scene).mkdir(parents=True, exist_ok=True)
        mm = np.rint(depth * 1000).astype(np.uint16)
        Image.fromarray(image).save(root / scene / f"rgb_{i:05d}.png")
        Image.fromarray(mm).save(root / scene / f"sync_depth_{i:05d}.png")
        lines.append(f"/{scene}/rgb_{i:05d}.png /{scene}/sync_depth_{i:05d}.png {focal}")
        out[f"{scene}/rgb_{i:05d}"] = (image, mm.astype(np.float32) / np.float32(1000))
    Image.fromarray(pairs[0][0]).save(root / "scene_0000" / "rgb_99999.png")
    lines.insert(3, "/scene_0000/rgb_99999.png None 518.8579")
    (root / "train_files_with_gt.txt").write_text("\n".join(lines) + "\n")
    return out


def kitti_tree(root: Path, shape: tuple[int, int] = (H, W), frames: int = 3) -> Samples:
    """KITTI depth as the official zips extract: raw frames
    ``<date>/<drive>/image_0[23]/data/<frame>.png``, ground truth (uint16 PNG, metres x
    256, 0 = none) under ``data_depth_annotated/train/<drive>/proj_depth/groundtruth/``
    for every frame but the first (which is dropped), and the day's calibration."""
    from kitti_calib import write_calib

    pairs = iter(rgbd(5, 2 * frames, shape=shape))
    date, drive = "2011_09_26", "2011_09_26_drive_0001_sync"
    write_calib(root, date)
    out = {}
    for cam in ("image_02", "image_03"):
        raw = root / date / drive / cam / "data"
        gt = root / "data_depth_annotated/train" / drive / "proj_depth/groundtruth" / cam
        raw.mkdir(parents=True)
        gt.mkdir(parents=True)
        for frame in range(frames):
            image, depth = next(pairs)
            Image.fromarray(image).save(raw / f"{frame:010d}.png")
            if frame == 0:
                continue  # no ground truth: dropped and counted
            stored = np.rint(depth * 256).astype(np.uint16)
            Image.fromarray(stored).save(gt / f"{frame:010d}.png")
            key = f"{date}/{drive}/{cam}/data/{frame:010d}"
            out[key] = (image, stored.astype(np.float32) / np.float32(256))
    return out


def folder_mm(root: Path, n: int = 5, shape: tuple[int, int] = (H, W)) -> Samples:
    """A folder of pairs: ``image/<key>.png`` and ``depth/<key>.png`` (uint16 millimetres)."""
    (root / "image").mkdir(parents=True)
    (root / "depth").mkdir(parents=True)
    out = {}
    for i, (image, depth) in enumerate(rgbd(6, n, shape=shape)):
        mm = np.rint(depth * 1000).astype(np.uint16)
        Image.fromarray(image).save(root / "image" / f"room_{i:03d}.png")
        Image.fromarray(mm).save(root / "depth" / f"room_{i:03d}.png")
        out[f"room_{i:03d}"] = (image, mm.astype(np.float32) / np.float32(1000))
    return out
