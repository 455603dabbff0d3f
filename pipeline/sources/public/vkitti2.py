"""Virtual KITTI 2 (``source=vkitti2``): RGB, depth and the per-frame camera.

Depth PNGs are uint16 centimetres; 65535 (655.35 m) marks the sky (Virtual KITTI 2
README): invalid here, or ``source.sky_depth`` metres. ``intrinsic.txt`` (text ground
truth) holds a header line, then ``frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]`` per frame
and camera. The rgb, depth and text archives may be unpacked under separate roots
(``source.path``, ``source.depth_root``, ``source.text_root``).
"""

from __future__ import annotations

import re

import numpy as np

from pipeline.config.datasets import Vkitti2Config
from pipeline.errors import SampleError
from pipeline.sample import Camera, Origin, Sample
from pipeline.sources.public import DatasetSource, Frame

IMAGE = re.compile(
    r"^(?P<scene>Scene\d+)/(?P<var>[^/]+)/frames/rgb/Camera_(?P<cam>\d+)/rgb_(?P<frame>\d+)\.jpg$"
)
Intrinsics = dict[tuple[int, int], Camera]  # (frame, camera) -> camera


class Vkitti2Source(DatasetSource):
    TITLE = "Virtual KITTI 2"
    LAYOUT = (
        "SceneNN/<variation>/frames/rgb/Camera_K/rgb_NNNNN.jpg (source.path), "
        "SceneNN/<variation>/frames/depth/Camera_K/depth_NNNNN.png (source.depth_root) and "
        "SceneNN/<variation>/intrinsic.txt (source.text_root)"
    )
    CENTIMETRES = 100.0  # stored value / CENTIMETRES = metres
    SKY = 65535

    def __init__(self, cfg: Vkitti2Config) -> None:
        self.vcfg = cfg
        self.intrinsics: dict[str, Intrinsics] = {}
        super().__init__(cfg)

    def list_frames(self) -> list[Frame]:
        c = self.vcfg
        self.root("depth_root", c.depth_root or c.path)
        self.root("text_root", c.text_root or c.path)
        pattern = f"Scene*/{c.variation}/frames/rgb/Camera_*/rgb_*.jpg"
        frames = []
        for rel in sorted(self.tree.glob(pattern)):
            m = IMAGE.match(rel)
            if m is None:
                continue
            scene, var, cam, index = m["scene"], m["var"], m["cam"], m["frame"]
            depth = f"{scene}/{var}/frames/depth/Camera_{cam}/depth_{index}.png"
            text = f"{scene}/{var}/intrinsic.txt"
            files = (("path", rel), ("depth_root", depth), ("text_root", text))
            frames.append(Frame(self.key(scene, var, f"Camera_{cam}", index), files))
        return frames

    def selection(self) -> str:
        return f" (source.variation={self.vcfg.variation})" if self.vcfg.variation != "*" else ""

    def settings(self) -> dict[str, object]:
        return {"variation": self.vcfg.variation, "sky_depth": self.vcfg.sky_depth}

    def read(self, frame: Frame) -> Sample:
        image = self.array(frame, 0)
        stored = self.array(frame, 1)
        if stored.dtype != np.uint16 or stored.ndim != 2:
            where = self.trees["depth_root"].where(frame.files[1][1])
            raise SampleError(frame.key, f"{where}: expected a uint16 PNG (centimetres)")
        depth = stored.astype(np.float32) / np.float32(self.CENTIMETRES)
        sky = stored == self.SKY
        depth[sky] = 0.0 if self.vcfg.sky_depth is None else self.vcfg.sky_depth
        _, _, cam, index = frame.key.split("/")
        camera = self._camera(frame, int(index), int(cam.removeprefix("Camera_")))
        return Sample(frame.key, image, depth, Origin("vkitti2", self.location(frame)), camera)

    def _camera(self, frame: Frame, index: int, cam: int) -> Camera:
        name = frame.files[2][1]
        if name not in self.intrinsics:
            self.intrinsics[name] = self._parse(frame, self.text(frame, 2))
        found = self.intrinsics[name].get((index, cam))
        if found is None:
            where = self.trees["text_root"].where(name)
            raise SampleError(frame.key, f"{where} has no line for frame {index} camera {cam}")
        return found

    def _parse(self, frame: Frame, text: str) -> Intrinsics:
        """``frame cameraID fx fy cx cy`` lines after the header."""
        where = self.trees["text_root"].where(frame.files[2][1])
        out: Intrinsics = {}
        for n, line in enumerate(text.splitlines()[1:], start=2):
            fields = line.split()
            if not fields:
                continue
            try:
                index, cam = int(fields[0]), int(fields[1])
                fx, fy, cx, cy = (float(x) for x in fields[2:6])
            except (ValueError, IndexError):
                raise SampleError(
                    frame.key,
                    f"{where} line {n}: expected 'frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]'",
                ) from None
            out[(index, cam)] = Camera(fx, fy, cx, cy)
        return out
