"""Config keys with a fixed set of values, as enums OmegaConf checks while Hydra composes
(before any heavy import): a bad value fails as fast as a key typo."""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A string key with a fixed set of values. OmegaConf refuses any other value while
    composing (~0.7 s, like a key typo) instead of after the run's imports (~3 s). Members
    are named as their values and compare, hash, format and serialise as plain strings."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class OutputFormat(Choice):
    """``output.format``: one member per entry of ``pipeline.dataset.layouts.LAYOUTS``."""

    webdataset = "webdataset"
    folder = "folder"
    filelist = "filelist"
    parquet = "parquet"

    @property
    def scale_per_part(self) -> bool:
        """Holds a 16-bit depth scale per mixture part (the trainer lists: one per part)."""
        return self in SCALE_PER_PART


class OutputOrder(Choice):
    """``output.order``: where the copies of one input go (``worker.position_of``)."""

    spread = "spread"  # copy-major: copies of one input land in different shards
    grouped = "grouped"  # input-major: copies of one input side by side, each input read once


class TiffCompression(Choice):
    """``output.depth.compression``: the keys of ``codecs.TIFF_COMPRESSIONS``. ``zstd`` is
    refused by ``checks.checks`` (OpenCV cannot read it): ``codecs.READABLE_TIFF_COMPRESSIONS``
    are the ones every reader decodes."""

    none = "none"
    zlib = "zlib"
    deflate = "deflate"  # = zlib
    zstd = "zstd"
    lzw = "lzw"


class ImageFormat(Choice):
    """``output.image.format``."""

    png = "png"
    jpg = "jpg"


class DepthFormat(Choice):
    """``output.depth.format``: float32 TIFF metres, uint16 PNG x ``output.depth.scale``, or
    float32 ``.npy`` metres (one class each in ``pipeline.encode.depth``)."""

    tiff = "tiff"
    png16 = "png16"
    npy = "npy"

    @property
    def integer(self) -> bool:
        """Stored as integers: value / ``output.depth.scale`` = metres (needs a scale)."""
        return self in INTEGER_DEPTH


class CameraMode(Choice):
    """``augment.camera``: track (approximate where a pinhole K cannot follow) | strict."""

    track = "track"
    strict = "strict"


class DataType(Choice):
    """What a mixture part's depth is (Metric3D's ``data_type``), recorded per sample."""

    dense = "dense"
    lidar = "lidar"
    denselidar = "denselidar"
    stereo = "stereo"
    sfm = "sfm"
    synthetic = "synthetic"


class CanonicalMode(Choice):
    """Metric3D's two canonical-camera modes: scale depth by focal / fx, or resize."""

    depth = "depth"
    resize = "resize"


# "raise" is a Python keyword: the functional form can still name a member so, and
# OmegaConf matches members by name.
OnError = Choice("OnError", [("raise", "raise"), ("skip", "skip")], module=__name__)


# Traits of the choices, read through their properties (schema defaults, mixture scales).
SCALE_PER_PART = frozenset({OutputFormat.filelist})
INTEGER_DEPTH = frozenset({DepthFormat.png16})
