"""ScanNet (``source=scannet``): frames exported by the authors' SensReader.

``sceneXXXX_XX/color/N.jpg`` (1296 x 968), ``depth/N.png`` (640 x 480, uint16
millimetres, 0 = no measurement) and ``intrinsic/intrinsic_color.txt`` (4x4, the colour
camera), as ``SensReader/python/SensorData.py`` exports them. The two are brought to one
size (``source.size``): depth (the image resized, area, to the depth map: the depth stays
exact) or color (the depth resized, nearest, to the image); the camera is the colour
camera, following the image's resize (pixel centres: x' = (x + 0.5) s - 0.5).
``source.scenes``: a scene list such as the authors' ``scannetv2_train.txt``.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from pipeline.config.datasets import ScannetConfig
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Camera, Origin, Sample
from pipeline.sources.public import DatasetSource, Frame, numbers

IMAGE = re.compile(r"^(?P<scene>scene\d+_\d+)/color/(?P<frame>\d+)\.jpg$")
SIZES = ("depth", "color")


def resized_camera(camera: Camera, sx: float, sy: float) -> Camera:
    """``camera`` after resizing its image by ``sx``, ``sy`` (pixel centres at integers)."""
    return Camera(
        camera.fx * sx, camera.fy * sy, (camera.cx + 0.5) * sx - 0.5, (camera.cy + 0.5) * sy - 0.5
    )


class ScannetSource(DatasetSource):
    TITLE = "ScanNet"
    LAYOUT = (
        "sceneXXXX_XX/color/N.jpg, sceneXXXX_XX/depth/N.png and "
        "sceneXXXX_XX/intrinsic/intrinsic_color.txt (SensReader's export)"
    )
    MILLIMETRES = 1000.0  # stored value / MILLIMETRES = metres

    def __init__(self, cfg: ScannetConfig) -> None:
        if cfg.size not in SIZES:
            raise PipelineError(f"source.size must be one of {', '.join(SIZES)}")
        self.ncfg = cfg
        super().__init__(cfg)

    def list_frames(self) -> list[Frame]:
        chosen = self._scenes()
        found = []
        for rel in self.tree.glob("scene*_*/color/*.jpg"):
            m = IMAGE.match(rel)
            if m is not None and (chosen is None or m["scene"] in chosen):
                found.append((m["scene"], int(m["frame"]), rel))
        frames = []
        for scene, index, rel in sorted(found):
            files = (
                ("path", rel),
                ("path", f"{scene}/depth/{index}.png"),
                ("path", f"{scene}/intrinsic/intrinsic_color.txt"),
            )
            frames.append(Frame(self.key(scene, f"{index:06d}"), files))
        return frames

    def _scenes(self) -> set[str] | None:
        if not self.ncfg.scenes:
            return None
        import fsspec

        try:
            with fsspec.open(self.ncfg.scenes, "rt") as fh:
                return {line.strip() for line in fh if line.strip()}
        except OSError as exc:
            raise PipelineError(
                f"source.scenes={self.ncfg.scenes}: cannot read ({exc.strerror or exc})"
            ) from None

    def selection(self) -> str:
        return f" among source.scenes={self.ncfg.scenes}" if self.ncfg.scenes else ""

    def settings(self) -> dict[str, object]:
        return {"size": self.ncfg.size, "scenes": self.ncfg.scenes}

    def read(self, frame: Frame) -> Sample:
        image = self.array(frame, 0)
        stored = self.array(frame, 1)
        if stored.dtype != np.uint16 or stored.ndim != 2:
            raise SampleError(frame.key, f"{frame.files[1][1]}: expected a uint16 depth PNG (mm)")
        where = self.tree.where(frame.files[2][1])
        k = numbers(self.text(frame, 2), 16, frame.key, where).reshape(4, 4)
        camera = Camera(*(float(v) for v in (k[0, 0], k[1, 1], k[0, 2], k[1, 2])))
        depth = stored.astype(np.float32) / np.float32(self.MILLIMETRES)
        (h, w), (dh, dw) = image.shape[:2], depth.shape
        if self.ncfg.size == "depth" and (h, w) != (dh, dw):
            image = cv2.resize(image, (dw, dh), interpolation=cv2.INTER_AREA)
            camera = resized_camera(camera, dw / w, dh / h)
        elif (h, w) != (dh, dw):
            depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
        return Sample(frame.key, image, depth, Origin("scannet", self.location(frame)), camera)
