"""Cityscapes (``source=cityscapes``): the left image, depth from the disparity maps.

Disparity PNGs are uint16: p > 0 gives disparity (p - 1) / 256 pixels, p = 0 is invalid
(cityscapesScripts README, "disparity"); depth = baseline x fx / disparity with
``extrinsic.baseline`` and ``intrinsic.fx`` of the frame's ``_camera.json`` (a zero
disparity, p = 1, is infinitely far: invalid too). The camera is that file's
``intrinsic`` fx, fy, u0, v0.
"""

from __future__ import annotations

import json
import re

import numpy as np

from pipeline.config.datasets import CityscapesConfig
from pipeline.errors import SampleError
from pipeline.sample import Camera, Origin, Sample
from pipeline.sources.public import DatasetSource, Frame

IMAGE = re.compile(
    r"^leftImg8bit/(?P<split>[^/]+)/(?P<city>[^/]+)/(?P<stem>[^/]+)_leftImg8bit\.png$"
)


def depth_from_disparity(stored: np.ndarray, baseline: float, fx: float) -> np.ndarray:
    """Metres from a Cityscapes disparity PNG; 0 where p <= 1 (no or zero disparity)."""
    disparity = (stored.astype(np.float64) - 1.0) / 256.0
    valid = stored > 1
    depth = np.zeros(stored.shape, dtype=np.float64)
    depth[valid] = baseline * fx / disparity[valid]
    return depth.astype(np.float32)


class CityscapesSource(DatasetSource):
    TITLE = "Cityscapes"
    LAYOUT = (
        "leftImg8bit/<split>/<city>/*_leftImg8bit.png, disparity/<split>/<city>/*_disparity.png "
        "and camera/<split>/<city>/*_camera.json"
    )

    def __init__(self, cfg: CityscapesConfig) -> None:
        self.ccfg = cfg
        super().__init__(cfg)

    def list_frames(self) -> list[Frame]:
        split = self.ccfg.split
        frames = []
        for rel in sorted(self.tree.glob(f"leftImg8bit/{split}/*/*_leftImg8bit.png")):
            m = IMAGE.match(rel)
            if m is None:
                continue
            city, stem = m["city"], m["stem"]
            files = (
                ("path", rel),
                ("path", f"disparity/{split}/{city}/{stem}_disparity.png"),
                ("path", f"camera/{split}/{city}/{stem}_camera.json"),
            )
            frames.append(Frame(self.key(split, city, stem), files))
        return frames

    def selection(self) -> str:
        return f" (source.split={self.ccfg.split})"

    def settings(self) -> dict[str, object]:
        return {"split": self.ccfg.split}

    def read(self, frame: Frame) -> Sample:
        image = self.array(frame, 0)
        stored = self.array(frame, 1)
        if stored.dtype != np.uint16 or stored.ndim != 2:
            raise SampleError(frame.key, f"{frame.files[1][1]}: expected a uint16 disparity PNG")
        where = self.tree.where(frame.files[2][1])
        try:
            calib = json.loads(self.text(frame, 2))
            baseline = float(calib["extrinsic"]["baseline"])
            k = calib["intrinsic"]
            camera = Camera(float(k["fx"]), float(k["fy"]), float(k["u0"]), float(k["v0"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise SampleError(
                frame.key, f"{where}: expected extrinsic.baseline and intrinsic.fx/fy/u0/v0 ({exc})"
            ) from None
        depth = depth_from_disparity(stored, baseline, camera.fx)
        return Sample(frame.key, image, depth, Origin("cityscapes", self.location(frame)), camera)
