"""Tiny trees in the public datasets' own layouts, written from known planar depth and
cameras with the datasets' encodings (float16 HDF5 distances, uint16 centimetres,
bit-rotated millimetres, Cityscapes disparity ...), for ``test_public_datasets.py`` and
the README's mixture block.

Each builder returns ``{key: Truth}``: what the source must give, computed here from the
known values by the datasets' published formulas (not by the pipeline's code)."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np

H, W = 24, 32


@dataclass
class Truth:
    depth: np.ndarray  # float32 metres, 0 = invalid
    camera: tuple[float, float, float, float]  # fx, fy, cx, cy
    image_shape: tuple[int, int]
    approximate: bool = False  # a tilted image plane: fx, fy, cx, cy only the best fit


def _image(rng: np.random.Generator, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    return rng.integers(0, 256, (*shape, 3), dtype=np.uint8)


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), array)


# ---- Hypersim -----------------------------------------------------------------------


def standard_k(shape: tuple[int, int] = (H, W)) -> np.ndarray:
    """60 degree horizontal field of view, centred: 886.81 px at 1024 x 768."""
    h, w = shape
    f = w / (2 * math.tan(math.pi / 6))
    return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])


def m_cam_from_uv(k: np.ndarray, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    """The CSV's M_cam_from_uv for pinhole ``k``: OpenGL camera axes (-z forward, y up),
    u, v in [-1, 1] over the image (v up), scaled so that M[2, 2] = -1 as the authors'."""
    h, w = shape
    pixel_from_uv = np.array([[w / 2, 0, (w - 1) / 2], [0, -h / 2, (h - 1) / 2], [0, 0, 1]])
    m = np.diag([1.0, -1.0, -1.0]) @ np.linalg.inv(k) @ pixel_from_uv
    return m / -m[2, 2]


# the authors' row for ai_037_002, their example of a tilt-shift scene (vertical tilt)
TILTED = np.array([[0.5796, 0, -0.0696], [0, 0.4347, 0.0927], [0, 0.0041, -1.0039]])


def notebook_rays(m: np.ndarray, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    """Rays as the authors' notebook casts them (01_casting_rays...ipynb): a u, v grid
    over pixel centres, v upwards, times M_cam_from_uv."""
    h, w = shape
    u, v = np.meshgrid(
        np.linspace(-1 + 1 / w, 1 - 1 / w, w), np.linspace(-1 + 1 / h, 1 - 1 / h, h)[::-1]
    )
    return np.einsum("ij,hwj->hwi", m, np.dstack((u, v, np.ones_like(u))))


def hypersim_tree(root: Path, seed: int, tilt_scene: bool) -> dict[str, Truth]:
    """Two scenes of two frames: ai_001_001 standard; ai_001_002 standard or (with a
    camera CSV) lens-shifted; with the CSV also ai_037_002, tilted. Distances as float16
    ``depth_meters``; one NaN pixel. Planar depth = -z in camera space (the authors)."""
    rng = np.random.default_rng(seed)
    shifted = np.array([[30.0, 0, 12.25], [0, 30.0, 15.5], [0, 0, 1]])
    scenes = {"ai_001_001": standard_k(), "ai_001_002": shifted if tilt_scene else standard_k()}
    rays_of = {scene: m_cam_from_uv(k) for scene, k in scenes.items()}
    if tilt_scene:
        rays_of["ai_037_002"] = TILTED
        # no pinhole K: the fit's focal lengths are those at the image centre, about these
        scenes["ai_037_002"] = np.array([[W / 2 / 0.5796, 0, 0], [0, H / 2 / 0.4347, 0], [0, 0, 1]])
    truth = {}
    for scene, m in rays_of.items():
        r = notebook_rays(m)
        stretch = np.linalg.norm(r, axis=-1) / -r[..., 2]  # distance / planar depth
        k = scenes[scene]
        for frame in range(2):
            base = root / scene / "images"
            _write(
                base / "scene_cam_00_final_preview" / f"frame.{frame:04d}.tonemap.jpg", _image(rng)
            )
            distance = (rng.uniform(1.0, 15.0, (H, W)) * stretch).astype(np.float16)
            distance[3, 5] = np.nan
            geometry = base / "scene_cam_00_geometry_hdf5"
            geometry.mkdir(parents=True, exist_ok=True)
            with h5py.File(geometry / f"frame.{frame:04d}.depth_meters.hdf5", "w") as f:
                f.create_dataset("dataset", data=distance)
            want = (distance.astype(np.float64) / stretch).astype(np.float32)
            want[3, 5] = 0.0
            camera = (k[0, 0], k[1, 1], k[0, 2], k[1, 2])
            tilted = scene == "ai_037_002"
            truth[f"{scene}/cam_00/{frame:04d}"] = Truth(want, camera, (H, W), tilted)
    if tilt_scene:
        _camera_csv(root / "metadata_camera_parameters.csv", rays_of)
    return truth


def _camera_csv(path: Path, scenes: dict[str, np.ndarray]) -> None:
    """The authors' CSV columns this tool reads, one row per scene's M_cam_from_uv."""
    names = [f"M_cam_from_uv_{i}{j}" for i in range(3) for j in range(3)]
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(
            ["scene_name", "settings_output_img_height", "settings_output_img_width"] + names
        )
        for scene, m in scenes.items():
            out.writerow([scene, float(H), float(W), *m.ravel()])


# ---- Virtual KITTI 2 ------------------------------------------------------------------


def vkitti2_tree(rgb: Path, depth: Path, text: Path, seed: int) -> dict[str, Truth]:
    """Scene01/clone, cameras 0 and 1, frames 0 and 1, each its own K; some sky."""
    rng = np.random.default_rng(seed)
    truth = {}
    lines = ["frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]"]
    for frame in range(2):
        for cam in range(2):
            fx, fy, cx, cy = 25.0 + frame + cam / 2, 25.5 + frame, 15.5 + cam, 11.5
            lines.append(f"{frame} {cam} {fx} {fy} {cx} {cy}")
            name = f"Scene01/clone/frames/{{}}/Camera_{cam}/{{}}_{frame:05d}"
            _write(rgb / (name.format("rgb", "rgb") + ".jpg"), _image(rng))
            stored = rng.integers(100, 8000, (H, W)).astype(np.uint16)  # 1 .. 80 m
            stored[:4] = 65535
            _write(depth / (name.format("depth", "depth") + ".png"), stored)
            want = stored.astype(np.float32) / np.float32(100.0)
            want[:4] = 0.0
            truth[f"Scene01/clone/Camera_{cam}/{frame:05d}"] = Truth(want, (fx, fy, cx, cy), (H, W))
    (text / "Scene01/clone").mkdir(parents=True, exist_ok=True)
    (text / "Scene01/clone/intrinsic.txt").write_text("\n".join(lines) + "\n")
    return truth


# ---- DIODE ------------------------------------------------------------------------------


def diode_tree(root: Path, seed: int) -> dict[str, Truth]:
    rng = np.random.default_rng(seed)
    truth = {}
    for kind in ("indoors", "outdoor"):
        scan = root / "val" / kind / "scene_00019" / "scan_00183"
        name = f"00019_00183_{kind}_000_010"
        _write(scan / f"{name}.png", _image(rng))
        depth = rng.uniform(0.6, 50.0, (H, W, 1)).astype(np.float32)
        mask = (rng.random((H, W)) > 0.2).astype(np.float32)
        np.save(scan / f"{name}_depth.npy", depth)
        np.save(scan / f"{name}_depth_mask.npy", mask)
        want = np.where(mask > 0, depth[..., 0], 0).astype(np.float32)
        camera = (886.81 * W / 1024, 927.06 * H / 768, 512 * W / 1024, 384 * H / 768)
        truth[f"val/{kind}/scene_00019/scan_00183/{name}"] = Truth(want, camera, (H, W))
    return truth


# ---- SUN RGB-D ----------------------------------------------------------------------------


def sunrgbd_tree(root: Path, seed: int) -> dict[str, Truth]:
    """One frame folder per sensor kind used here, depth bit-rotated as the toolbox reads."""
    rng = np.random.default_rng(seed)
    truth = {}
    for folder, stem in (("kv1/NYUdata/NYU0001", "NYU0001"), ("xtion/sun3ddata/x/y/z", "0000103")):
        mm = rng.integers(400, 9000, (H, W)).astype(np.uint16)
        mm[0, :3] = 0
        stored = ((mm.astype(np.uint32) << 3) | (mm.astype(np.uint32) >> 13)) & 0xFFFF
        _write(root / folder / "image" / f"{stem}.jpg", _image(rng))
        _write(root / folder / "depth" / f"{stem}.png", stored.astype(np.uint16))
        k = (20.5, 21.0, 15.0, 11.25)
        (root / folder / "intrinsics.txt").write_text(f"{k[0]} 0 {k[2]}\n0 {k[1]} {k[3]}\n0 0 1\n")
        truth[folder] = Truth(mm.astype(np.float32) / np.float32(1000.0), k, (H, W))
    return truth


# ---- Cityscapes ----------------------------------------------------------------------------


def cityscapes_tree(root: Path, seed: int) -> dict[str, Truth]:
    rng = np.random.default_rng(seed)
    truth = {}
    for stem in ("aachen_000000_000019", "aachen_000001_000019"):
        calib = {
            "extrinsic": {"baseline": 0.209313, "pitch": 0.038, "roll": 0.0, "yaw": -0.0195},
            "intrinsic": {"fx": 2262.52, "fy": 2265.30, "u0": 1096.98, "v0": 513.137},
        }
        p = rng.integers(0, 40000, (H, W)).astype(np.uint16)
        p[0, 0], p[0, 1] = 0, 1
        _write(root / "leftImg8bit/val/aachen" / f"{stem}_leftImg8bit.png", _image(rng))
        _write(root / "disparity/val/aachen" / f"{stem}_disparity.png", p)
        (root / "camera/val/aachen").mkdir(parents=True, exist_ok=True)
        (root / "camera/val/aachen" / f"{stem}_camera.json").write_text(json.dumps(calib))
        want = np.zeros((H, W), np.float64)
        for (i, j), value in np.ndenumerate(p):
            if value > 0 and (value - 1.0) / 256.0 > 0:
                want[i, j] = 0.209313 * 2262.52 / ((float(value) - 1.0) / 256.0)
        camera = (2262.52, 2265.30, 1096.98, 513.137)
        truth[f"val/aachen/{stem}"] = Truth(want.astype(np.float32), camera, (H, W))
    return truth


# ---- ScanNet ----------------------------------------------------------------------------


def scannet_tree(root: Path, seed: int) -> dict[str, Truth]:
    """Colour twice the depth map's size (as 1296x968 vs 640x480, scaled down)."""
    rng = np.random.default_rng(seed)
    truth = {}
    k = np.array([[58.0, 0, 31.5, 0], [0, 57.0, 23.25, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    for scene in ("scene0000_00", "scene0001_01"):
        (root / scene / "intrinsic").mkdir(parents=True)
        np.savetxt(root / scene / "intrinsic" / "intrinsic_color.txt", k, fmt="%f")
        for frame in (0, 10):
            mm = rng.integers(300, 9000, (H, W)).astype(np.uint16)
            _write(root / scene / "color" / f"{frame}.jpg", _image(rng, (2 * H, 2 * W)))
            _write(root / scene / "depth" / f"{frame}.png", mm)
            # the colour camera after halving the image: f / 2, (c + 0.5) / 2 - 0.5
            camera = (29.0, 28.5, 15.5, 11.375)
            truth[f"{scene}/{frame:06d}"] = Truth(mm.astype(np.float32) / 1000, camera, (H, W))
    return truth
