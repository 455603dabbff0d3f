"""SUN RGB-D (``source=sunrgbd``): every frame folder of the four sensors.

A frame folder holds ``image/<name>.jpg``, ``depth/<name>.png`` (or the refined
``depth_bfx/``) and ``intrinsics.txt`` (the 3x3 K, row by row). The depth PNGs store
each value rotated by 3 bits; the authors' toolbox (``readData/read3dPoints.m``) reads
``bitor(bitshift(d, -3), bitshift(d, 16 - 3))`` in 16 bits, then millimetres (it also
clamps beyond 8 m to 8; here that is ``source.depth.max``'s business: unclamped).
"""

from __future__ import annotations

import posixpath

import numpy as np

from pipeline.config.datasets import SunrgbdConfig
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Origin, Sample
from pipeline.sources.cameras import camera_from
from pipeline.sources.public import DatasetSource, Frame

SENSORS = ("kv1", "kv2", "realsense", "xtion")
SPLITS = {"train": "alltrain", "test": "alltest"}


def unrotate(stored: np.ndarray) -> np.ndarray:
    """The toolbox's ``(d >> 3) | (d << 13)`` in 16 bits: the depth in millimetres."""
    d = stored.astype(np.uint16)
    return (d >> np.uint16(3)) | (d << np.uint16(13))


class SunrgbdSource(DatasetSource):
    TITLE = "SUN RGB-D"
    LAYOUT = "<sensor>/.../<frame>/image/*.jpg, depth/*.png (or depth_bfx/) and intrinsics.txt"
    MILLIMETRES = 1000.0  # stored value / MILLIMETRES = metres

    def __init__(self, cfg: SunrgbdConfig) -> None:
        self.scfg = cfg
        super().__init__(cfg)

    def list_frames(self) -> list[Frame]:
        depth_dir = "depth_bfx" if self.scfg.refined else "depth"
        chosen = self._split()
        frames = []
        for sensor in self.scfg.sensors or SENSORS:
            folders = sorted(
                posixpath.dirname(rel) for rel in self.tree.glob(f"{sensor}/**/intrinsics.txt")
            )
            images = _by_folder(self.tree.glob(f"{sensor}/**/image/*.jpg"))
            depths = _by_folder(self.tree.glob(f"{sensor}/**/{depth_dir}/*.png"))
            for folder in folders:
                if folder not in images or (chosen is not None and folder not in chosen):
                    continue
                image = images[folder]
                stem = posixpath.splitext(posixpath.basename(image))[0]
                depth = depths.get(folder, f"{folder}/{depth_dir}/{stem}.png")
                files = (("path", image), ("path", depth), ("path", f"{folder}/intrinsics.txt"))
                frames.append(Frame(self.key(folder), files))
        return frames

    def _split(self) -> set[str] | None:
        """Frame folders (relative to the SUNRGBD root) of ``split`` in allsplit.mat."""
        if not self.scfg.splits:
            return None
        import fsspec
        import scipy.io

        name = SPLITS.get(self.scfg.split)
        if name is None:
            raise PipelineError(
                f"source.split={self.scfg.split}: with source.splits, train or test"
            )
        try:
            with fsspec.open(self.scfg.splits, "rb") as fh:
                paths = scipy.io.loadmat(fh)[name].ravel()
            # '/n/fs/sun3d/data/SUNRGBD/kv1/NYUdata/NYU0001' -> 'kv1/NYUdata/NYU0001'
            return {str(p.ravel()[0]).rstrip("/").split("/SUNRGBD/")[-1] for p in paths}
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise PipelineError(
                f"source.splits={self.scfg.splits}: not the toolbox's allsplit.mat "
                f"(alltrain / alltest; {exc})"
            ) from None

    def selection(self) -> str:
        split = f", source.split={self.scfg.split}" if self.scfg.splits else ""
        return f" (source.sensors={list(self.scfg.sensors or SENSORS)}{split})"

    def settings(self) -> dict[str, object]:
        sensors = list(self.scfg.sensors or SENSORS)
        return {"sensors": sensors, "refined": self.scfg.refined, "splits": self.scfg.splits}

    def read(self, frame: Frame) -> Sample:
        image = self.array(frame, 0)
        stored = self.array(frame, 1)
        if stored.dtype != np.uint16 or stored.ndim != 2:
            raise SampleError(frame.key, f"{frame.files[1][1]}: expected a uint16 depth PNG")
        depth = unrotate(stored).astype(np.float32) / np.float32(self.MILLIMETRES)
        where = self.tree.where(frame.files[2][1])
        try:
            values = [float(x) for x in self.text(frame, 2).split()]
            camera = camera_from(values, *depth.shape)
        except ValueError as exc:
            raise SampleError(frame.key, f"{where}: expected a 3x3 K ({exc})") from None
        return Sample(frame.key, image, depth, Origin("sunrgbd", self.location(frame)), camera)


def _by_folder(files: list[str]) -> dict[str, str]:
    """Frame folder -> its one file in a subfolder (``<folder>/image/x.jpg``)."""
    out: dict[str, str] = {}
    for rel in sorted(files):
        out.setdefault(posixpath.dirname(posixpath.dirname(rel)), rel)
    return out
