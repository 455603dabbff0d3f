"""The official NYU Depth v2 labeled file ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5).

MATLAB writes arrays column-major, so h5py sees them transposed: ``images`` is
(N, 3, W, H) uint8 and ``depths`` (N, W, H) float32 metres. Samples are read one at a
time with h5py (never the whole 2.8 GB file); each worker opens the file itself.

``source.splits`` names the official ``splits.mat`` (MATLAB v5 or v7.3): ``trainNdxs``
(795 frames) and ``testNdxs`` (654), 1-based; ``source.split`` = train | test picks one.
Keys are ``{split}/{frame:06d}`` with the frame's 0-based index in the .mat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from pipeline.config.sources import NyuMatConfig
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Origin, Sample
from pipeline.sources import Source


class NyuMatSource(Source):
    """Samples ``{split}/{index:06d}`` from the ``columns.image`` / ``columns.depth`` datasets
    (``images`` / ``depths``, or ``rawDepths`` for the unfilled sensor depth)."""

    def __init__(self, cfg: NyuMatConfig) -> None:
        if not cfg.path:
            raise ValueError("set source.path to nyu_depth_v2_labeled.mat")
        if cfg.columns.camera:
            raise ValueError(
                "source.columns.camera: the NYU .mat holds no camera; the official one is "
                "source.camera.fx/fy/cx/cy (set by the nyu_mat preset)"
            )
        self.cfg = cfg
        self.path = Path(cfg.path)
        if not self.path.is_file():
            raise FileNotFoundError(f"source.path={cfg.path} is not a file")
        try:
            with h5py.File(self.path, "r") as f:
                image, depth = self._datasets(f)
                self.n = image.shape[0]
                self.image_shape, self.depth_shape = image.shape, depth.shape
        except OSError as exc:
            raise ValueError(
                f"source.path={cfg.path} is not an HDF5 (MATLAB v7.3) file ({exc}); "
                f"use the official nyu_depth_v2_labeled.mat"
            ) from None
        if len(self.image_shape) != 4 or self.image_shape[1] != 3:
            raise ValueError(
                f"{cfg.path}: dataset {cfg.columns.image!r} has shape {self.image_shape}, "
                f"expected (N, 3, W, H) as in the official NYU .mat"
            )
        if len(self.depth_shape) != 3 or self.depth_shape[0] != self.n:
            raise ValueError(
                f"{cfg.path}: dataset {cfg.columns.depth!r} has shape {self.depth_shape}, "
                f"expected ({self.n}, W, H) as in the official NYU .mat"
            )
        self.frames = official_split(cfg, self.n) if cfg.splits else list(range(self.n))

    def _datasets(self, f: h5py.File) -> tuple[h5py.Dataset, h5py.Dataset]:
        names = (self.cfg.columns.image, self.cfg.columns.depth)
        for name in names:
            if not isinstance(f.get(name), h5py.Dataset):
                have = ", ".join(sorted(k for k in f if isinstance(f[k], h5py.Dataset)))
                raise ValueError(
                    f"{self.cfg.path} has no dataset {name!r} (it has: {have}); "
                    f"set source.columns.image / source.columns.depth"
                )
        return f[names[0]], f[names[1]]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of every image, from the HDF5 shape."""
        return int(self.image_shape[3]), int(self.image_shape[2])

    def identity(self) -> dict[str, object]:
        st = self.path.stat()
        stamp = f"{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        return {
            "kind": "nyu_mat",
            "path": str(self.path.resolve()),
            "bytes": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "fingerprint": hashlib.sha256(stamp.encode()).hexdigest()[:16],
            "image_dataset": self.cfg.columns.image,
            "depth_dataset": self.cfg.columns.depth,
            "num_samples": len(self.frames),
            "frames_in_file": self.n,
            "splits": str(Path(self.cfg.splits).resolve()) if self.cfg.splits else None,
        }

    def iter(self, start: int, stop: int) -> Iterator[Sample | SampleError]:
        # One handle per call; HDF5 handles must not cross processes.
        with h5py.File(self.path, "r") as f:
            images, depths = self._datasets(f)
            for index in self.frames[start:stop]:
                key = f"{self.cfg.split}/{index:06d}"
                where = f"{self.path.name}[{index}]"
                try:
                    image = np.ascontiguousarray(images[index].transpose(2, 1, 0))
                    depth = np.ascontiguousarray(depths[index].T)
                except (OSError, ValueError) as exc:
                    yield SampleError(key, f"cannot read {where} ({exc})")
                    continue
                yield Sample(key, image, depth, Origin("nyu_mat", where))


SPLIT_NAMES = {"train": "trainNdxs", "test": "testNdxs"}


def official_split(cfg: NyuMatConfig, n: int) -> list[int]:
    """The 0-based frames of ``cfg.split`` in the official ``splits.mat`` (1-based)."""
    assert cfg.splits is not None
    name = SPLIT_NAMES.get(cfg.split)
    if name is None:
        raise PipelineError(
            f"source.split={cfg.split}: with source.splits the split is train or test"
        )
    path = Path(cfg.splits)
    if not path.is_file():
        raise PipelineError(f"source.splits={cfg.splits} is not a file (the official splits.mat)")
    try:
        if h5py.is_hdf5(path):  # MATLAB v7.3
            with h5py.File(path, "r") as f:
                indices = np.asarray(f[name]).ravel()
        else:  # MATLAB v5, as the official file is
            from scipy.io import loadmat

            indices = np.asarray(loadmat(path)[name]).ravel()
    except (OSError, KeyError, ValueError) as exc:
        raise PipelineError(
            f"source.splits={cfg.splits}: not the official splits.mat with trainNdxs and "
            f"testNdxs ({type(exc).__name__}: {exc})"
        ) from None
    frames = [int(i) - 1 for i in indices]
    bad = [i + 1 for i in frames if not 0 <= i < n]
    if bad:
        raise PipelineError(
            f"source.splits={cfg.splits}: {name} holds index {bad[0]}, but {cfg.path} has "
            f"{n} frames; use the splits.mat that goes with this file"
        )
    return frames
