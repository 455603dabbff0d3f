"""Apple Hypersim (``source=hypersim``): the tone-mapped preview and ``depth_meters``.

``depth_meters`` holds, per pixel, the distance to the camera centre (not planar depth).
Each pixel's ray is ``M_cam_from_uv @ (u, v, 1)`` with u, v in [-1, 1] at pixel centres
(v upwards) and the camera looking along -z, as the authors cast rays
(``contrib/mikeroberts3000/jupyter/01_casting_rays_that_match_hypersim_images.ipynb``):
planar depth = distance x (-ray_z) / |ray|. ``M_cam_from_uv`` is the scene's row of the
authors' ``metadata_camera_parameters.csv`` (tilt-shift scenes have their own); without
the file, the standard camera (60 degree horizontal field of view: focal 886.81 px at
1024 x 768, the conversion Depth Anything V2 and ZoeDepth use). The camera of the sample
is the pinhole matching those rays (marked approximate when the scene's image plane is
tilted, which no fx, fy, cx, cy describe). NaN depth (no surface) is invalid.
"""

from __future__ import annotations

import csv
import io
import math
import re

import numpy as np

from pipeline.config.datasets import HypersimConfig
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Camera, Origin, Sample
from pipeline.sources.public import DatasetSource, Frame

CAMERA_CSV = "metadata_camera_parameters.csv"
IMAGE = re.compile(
    r"^(?P<scene>ai_\d+_\d+)/images/scene_(?P<cam>cam_\d+)_final_preview/"
    r"frame\.(?P<frame>\d+)\.tonemap\.jpg$"
)
STANDARD_FOV = math.pi / 3  # 60 degrees, horizontal
TILT_PIXELS = 0.01  # a pinhole fit off by more at a corner is approximate


def standard_rays(height: int, width: int) -> np.ndarray:
    """``M_cam_from_uv`` of the standard Hypersim camera for a ``width`` x ``height`` image."""
    t = math.tan(STANDARD_FOV / 2)
    return np.diag([t, t * height / width, -1.0])


def rays(m_cam_from_uv: np.ndarray, height: int, width: int) -> np.ndarray:
    """H x W x 3 camera-space rays through the pixel centres (the authors' u, v grid)."""
    u = np.linspace(-1 + 1 / width, 1 - 1 / width, width)
    v = np.linspace(-1 + 1 / height, 1 - 1 / height, height)[::-1]
    uu, vv = np.meshgrid(u, v)
    uv1 = np.stack([uu, vv, np.ones_like(uu)], axis=-1)
    return uv1 @ m_cam_from_uv.T


def planar(distance: np.ndarray, m_cam_from_uv: np.ndarray) -> np.ndarray:
    """Distance to the camera centre -> depth along the camera's viewing axis (float32)."""
    r = rays(m_cam_from_uv, *distance.shape)
    cosine = -r[..., 2] / np.linalg.norm(r, axis=-1)
    return (distance.astype(np.float64) * cosine).astype(np.float32)


def camera(m_cam_from_uv: np.ndarray, height: int, width: int) -> Camera:
    """The pinhole camera (OpenCV axes, pixel centres at integers) whose rays these are;
    approximate when it misplaces a corner pixel's ray by more than ``TILT_PIXELS`` (a
    tilted image plane, which no fx, fy, cx, cy describe)."""
    uv_from_pixel = np.array(
        [[2 / width, 0, 1 / width - 1], [0, -2 / height, 1 - 1 / height], [0, 0, 1]]
    )
    opencv_from_gl = np.diag([1.0, -1.0, -1.0])
    ray_from_pixel = opencv_from_gl @ m_cam_from_uv @ uv_from_pixel
    k = np.linalg.inv(ray_from_pixel)
    k = k / k[2, 2]
    pinhole = np.array([[k[0, 0], 0, k[0, 2]], [0, k[1, 1], k[1, 2]], [0, 0, 1]])
    corners = np.array([[0, width - 1, 0, width - 1], [0, 0, height - 1, height - 1], [1, 1, 1, 1]])
    seen = pinhole @ (ray_from_pixel @ corners)
    error = np.abs(seen[:2] / seen[2] - corners[:2]).max()
    fx, fy, cx, cy = (float(v) for v in (k[0, 0], k[1, 1], k[0, 2], k[1, 2]))
    return Camera(fx, fy, cx, cy, approximate=bool(error > TILT_PIXELS))


class HypersimSource(DatasetSource):
    TITLE = "Hypersim"
    LAYOUT = (
        "ai_VVV_NNN/images/scene_cam_XX_final_preview/frame.IIII.tonemap.jpg and "
        "ai_VVV_NNN/images/scene_cam_XX_geometry_hdf5/frame.IIII.depth_meters.hdf5"
    )

    def __init__(self, cfg: HypersimConfig) -> None:
        self.hcfg = cfg
        self.matrices: dict[str, np.ndarray] = {}
        self.camera_file: str | None = None
        super().__init__(cfg)
        self._load_cameras()

    def list_frames(self) -> list[Frame]:
        chosen = self._split()
        frames = []
        for rel in sorted(self.tree.glob("ai_*/images/scene_cam_*_final_preview/*.tonemap.jpg")):
            m = IMAGE.match(rel)
            if m is None:
                continue
            scene, cam, index = m["scene"], m["cam"], m["frame"]
            if chosen is not None and (scene, cam, int(index)) not in chosen:
                continue
            depth = f"{scene}/images/scene_{cam}_geometry_hdf5/frame.{index}.depth_meters.hdf5"
            frames.append(Frame(self.key(scene, cam, index), (("path", rel), ("path", depth))))
        return frames

    def selection(self) -> str:
        return f" in source.split_csv's split={self.hcfg.split}" if self.hcfg.split_csv else ""

    def _split(self) -> set[tuple[str, str, int]] | None:
        """The frames of ``split`` in the authors' split CSV (public release only)."""
        if not self.hcfg.split_csv:
            return None
        rows = _csv_rows(self.hcfg.split_csv, "source.split_csv")
        try:
            return {
                (r["scene_name"], r["camera_name"], int(r["frame_id"]))
                for r in rows
                if r["split_partition_name"] == self.hcfg.split
                and r.get("included_in_public_release", "True").strip().lower() == "true"
            }
        except (KeyError, ValueError) as exc:
            raise PipelineError(
                f"source.split_csv={self.hcfg.split_csv}: not the authors' "
                f"metadata_images_split_scene_v1.csv (column or value {exc})"
            ) from None

    def _load_cameras(self) -> None:
        """Each scene's ``M_cam_from_uv`` from the camera CSV (given, or under path)."""
        given = self.hcfg.camera_csv
        if given is None and self.tree.is_file(CAMERA_CSV):
            given = self.tree.where(CAMERA_CSV)
        if given is None:
            return
        self.camera_file = given
        for row in _csv_rows(given, "source.camera_csv"):
            try:
                values = [float(row[f"M_cam_from_uv_{i}{j}"]) for i in range(3) for j in range(3)]
            except (KeyError, ValueError):
                raise PipelineError(
                    f"source.camera_csv={given}: expected the authors' {CAMERA_CSV} "
                    f"(columns scene_name, M_cam_from_uv_00 .. M_cam_from_uv_22)"
                ) from None
            self.matrices[row["scene_name"]] = np.array(values).reshape(3, 3)
        scenes = sorted({f.key.split("/")[0] for f in self.frames} - set(self.matrices))
        if scenes:
            raise PipelineError(
                f"source.camera_csv={given} has no row for scene {scenes[0]}"
                f"{f' (and {len(scenes) - 1} more)' if len(scenes) > 1 else ''}; use the "
                f"authors' {CAMERA_CSV} from ml-hypersim contrib/mikeroberts3000/"
            )

    def describe(self) -> list[str]:
        if self.camera_file is not None:
            return []
        return [
            f"source (hypersim): no {CAMERA_CSV} (source.camera_csv, or under source.path): "
            f"the standard 60 degree camera for every scene; tilt-shift scenes are then "
            f"approximate"
        ]

    def settings(self) -> dict[str, object]:
        return {"camera_csv": self.camera_file, "split_csv": self.hcfg.split_csv}

    def read(self, frame: Frame) -> Sample:
        image = self.array(frame, 0)
        distance = self._distance(frame)
        if distance.shape != image.shape[:2]:
            raise SampleError(
                frame.key,
                f"depth_meters is {distance.shape[1]}x{distance.shape[0]} but the image is "
                f"{image.shape[1]}x{image.shape[0]}",
            )
        scene = frame.key.split("/")[0]
        height, width = distance.shape
        m = self.matrices.get(scene, standard_rays(height, width))
        depth = planar(distance, m)
        return Sample(
            frame.key,
            image,
            depth,
            Origin("hypersim", self.location(frame)),
            camera(m, height, width),
        )

    def _distance(self, frame: Frame) -> np.ndarray:
        import h5py

        where = self.trees["path"].where(frame.files[1][1])
        try:
            with h5py.File(io.BytesIO(self.raw(frame, 1)), "r") as f:
                return np.asarray(f["dataset"][()], dtype=np.float32)
        except (OSError, KeyError, ValueError) as exc:
            raise SampleError(
                frame.key, f"{where}: not a Hypersim depth_meters HDF5 (dataset 'dataset'; {exc})"
            ) from None


def _csv_rows(path: str, key: str) -> list[dict[str, str]]:
    """The rows of a CSV file (local path or URL), or one line naming ``key``."""
    import fsspec

    try:
        with fsspec.open(path, "rt", newline="") as fh:
            return list(csv.DictReader(fh))
    except OSError as exc:
        raise PipelineError(f"{key}={path}: cannot read ({exc.strerror or exc})") from None
