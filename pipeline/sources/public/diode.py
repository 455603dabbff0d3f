"""DIODE (``source=diode``): RGB, depth and validity mask of the authors' download.

``<name>_depth.npy`` is float32 metres (H x W x 1), ``<name>_depth_mask.npy`` marks the
valid pixels (nonzero); the camera is the published one (diode-devkit ``intrinsics.txt``:
fx 886.81, fy 927.06, cx 512, cy 384 at 1024 x 768), scaled with an image of another size.
"""

from __future__ import annotations

import re

import numpy as np

from pipeline.config.datasets import DiodeConfig
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Camera, Origin, Sample
from pipeline.sources.files import apply_mask
from pipeline.sources.public import DatasetSource, Frame

IMAGE = re.compile(
    r"^(?P<split>[^/]+)/(?P<type>indoors|outdoor)/(?P<scene>scene_\d+)/(?P<scan>scan_\d+)/"
    r"(?P<name>[^/]+)\.png$"
)
SCENE_TYPES = ("indoors", "outdoor", "all")
WIDTH, HEIGHT = 1024, 768
FX, FY, CX, CY = 886.81, 927.06, 512.0, 384.0


class DiodeSource(DatasetSource):
    TITLE = "DIODE"
    LAYOUT = (
        "<split>/{indoors,outdoor}/scene_*/scan_*/<name>.png with <name>_depth.npy and "
        "<name>_depth_mask.npy"
    )

    def __init__(self, cfg: DiodeConfig) -> None:
        if cfg.scene_type not in SCENE_TYPES:
            raise PipelineError(f"source.scene_type must be one of {', '.join(SCENE_TYPES)}")
        self.dcfg = cfg
        super().__init__(cfg)

    def list_frames(self) -> list[Frame]:
        c = self.dcfg
        types = "*" if c.scene_type == "all" else c.scene_type
        frames = []
        for rel in sorted(self.tree.glob(f"{c.split}/{types}/scene_*/scan_*/*.png")):
            m = IMAGE.match(rel)
            if m is None:
                continue
            stem = rel.removesuffix(".png")
            files = (
                ("path", rel),
                ("path", f"{stem}_depth.npy"),
                ("path", f"{stem}_depth_mask.npy"),
            )
            frames.append(Frame(self.key(stem), files))
        return frames

    def selection(self) -> str:
        return f" (source.split={self.dcfg.split}, source.scene_type={self.dcfg.scene_type})"

    def settings(self) -> dict[str, object]:
        return {"split": self.dcfg.split, "scene_type": self.dcfg.scene_type}

    def read(self, frame: Frame) -> Sample:
        image = self.array(frame, 0)
        depth = self.array(frame, 1)
        if depth.ndim == 3 and depth.shape[2] == 1:
            depth = depth[..., 0]
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
            raise SampleError(
                frame.key, f"{self.location(frame)}: depth .npy is not H x W x 1 metres"
            )
        depth = apply_mask(
            depth.astype(np.float32), self.array(frame, 2), frame.key, frame.files[2][1]
        )
        height, width = depth.shape
        sx, sy = width / WIDTH, height / HEIGHT
        camera = Camera(FX * sx, FY * sy, CX * sx, CY * sy)
        return Sample(frame.key, image, depth, Origin("diode", self.location(frame)), camera)
