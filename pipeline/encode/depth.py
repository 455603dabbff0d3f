"""One class per depth encoding (``output.depth.format``): its member extension, scale,
bytes both ways, magic bytes and header size, and what ``dataset_info.json``, the card and
the report say about it; and ``ENCODINGS``, the one registry of every encoding (the image
ones of ``images`` too).

Every other module asks the registry or the object (``depth_encoding(output_cfg)`` when
writing, ``from_info(info.encodings["depth"])`` when reading a written dataset, ``sniff``
and ``by_ext`` when a source reads a file) instead of checking format names or magic
bytes. A new encoding = a subclass here (``exts``, ``magic``, ``declared``, ``read``,
``encode`` and what it says) + one line in ``ENCODINGS`` (+ a member of
``config.choices.DepthFormat`` for ``output.depth.format`` to choose it).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pipeline.config.schema import DepthCodec, ImageCodec, OutputConfig
from pipeline.encode.encoding import Encoding
from pipeline.encode.images import JpegImage, OtherImage, PngImage
from pipeline.encode.png import encode_png
from pipeline.encode.tiff import (  # noqa: F401 (re-exported: callers ask the encodings)
    READABLE_TIFF_COMPRESSIONS,
    TIFF_COMPRESSIONS,
    TIFF_MAGIC,
    encode_tiff,
    read_plain_float,
    tiff_size,
)


@dataclass
class EncodedDepth:
    """A depth member's bytes, the depth exactly as a reader gets it back (float32 metres)
    and the valid pixels the encoding could not hold (written as 0)."""

    data: bytes
    depth: np.ndarray
    too_far: int = 0
    too_near: int = 0


class DepthEncoding(Encoding):
    """The base of every depth encoding; ``scale``: stored value / scale = metres."""

    ext: ClassVar[str] = ""  # the member extension, e.g. "depth.tiff"
    dtype: ClassVar[str] = "float32"
    # the trainer file lists (output=filelist) can point at it
    for_lists: ClassVar[bool] = True
    # stores metres x ``output.depth.scale`` (which must then be > 0)
    scaled: ClassVar[bool] = False

    def __init__(self, codec: DepthCodec | None = None, png: ImageCodec | None = None) -> None:
        self.codec = codec if codec is not None else DepthCodec()
        self.png = png if png is not None else ImageCodec()

    @property
    def scale(self) -> float:
        return 1.0

    def encode(self, depth: np.ndarray) -> EncodedDepth:
        """Float32 HxW metres to the member's bytes."""
        raise NotImplementedError

    def decode(self, data: bytes) -> np.ndarray:
        """The member's bytes as float32 HxW metres (0 = invalid)."""
        return _float32(self.read(data), self.scale)

    def info(self) -> dict[str, Any]:
        """The ``depth`` entry of ``dataset_info.json``'s encodings."""
        return {"ext": self.ext, "dtype": self.dtype, "unit": "metre", "depth_scale": 1.0}

    def words(self) -> str:
        """How the card's layout paragraph describes a member, in a few words."""
        raise NotImplementedError

    def summary(self) -> str:
        """The encoding in one line (card and report): unit, scale, quantisation."""
        raise NotImplementedError

    def feature(self) -> dict[str, Any]:
        """The ``datasets`` feature (YAML, without the name) of the member in a tar."""
        return {"dtype": "image"}


class TiffDepth(DepthEncoding):
    """Float32 metres in a single-page TIFF (exact), optionally compressed."""

    name, ext, exts, magic = "tiff", "depth.tiff", ("tiff", "tif"), TIFF_MAGIC
    for_lists = False  # the trainers' loaders read 16-bit PNG

    def encode(self, depth: np.ndarray) -> EncodedDepth:
        return EncodedDepth(encode_tiff(depth, self.codec), depth)

    @classmethod
    def declared(cls, data: bytes) -> tuple[int, str] | None:
        size = tiff_size(data)
        return None if size is None else (size[0] * size[1], f"{size[0]}x{size[1]}")

    @classmethod
    def read(cls, data: bytes) -> np.ndarray:
        import tifffile

        plain = read_plain_float(data)
        return plain if plain is not None else tifffile.imread(io.BytesIO(data))

    def info(self) -> dict[str, Any]:
        return super().info() | {
            "invalid": 0,
            "compression": self.codec.compression,
            "level": self.codec.level,
            "predictor": self.codec.predictor,
        }

    def words(self) -> str:
        return "float32 TIFF, metres, 0 = invalid"

    def summary(self) -> str:
        return "float32 TIFF in metres (exact), 0 = invalid"


class Png16Depth(PngImage, DepthEncoding):
    """uint16 round(metres x scale) in a 16-bit grey PNG, 0 = invalid (trainers' format);
    a PNG file (``images.PngImage``: magic, header, reader), so the registry's PNG."""

    name, ext, dtype = "png16", "depth.png", "uint16"
    scaled = True

    @property
    def scale(self) -> float:
        return float(self.codec.scale) if self.codec.scale else 1.0

    def encode(self, depth: np.ndarray) -> EncodedDepth:
        stored, too_far, too_near = quantize_depth(depth, self.scale)
        written = (stored.astype(np.float32) / np.float32(self.scale)).astype(np.float32)
        return EncodedDepth(encode_png(stored, self.png), written, too_far, too_near)

    def info(self) -> dict[str, Any]:
        scale = self.scale
        return {
            "ext": self.ext,
            "dtype": self.dtype,
            "unit": f"metre x {scale:g} (stored value / depth_scale = metres)",
            "depth_scale": scale,
            "invalid": 0,
            "max_depth_m": 65535 / scale,
            "max_error_m": 0.5 / scale,
        }

    def words(self) -> str:
        scale = self.scale
        return (
            f"uint16 PNG, metres x {scale:g}, 0 = invalid; read back within "
            f"{0.5 / scale:.3g} m, up to {65535 / scale:.4g} m"
        )

    def summary(self) -> str:
        scale = self.scale
        return (
            f"16-bit PNG, stored value / depth_scale = metres, depth_scale = {scale:g}; "
            f"quantisation error at most {0.5 / scale:.3g} m, depths beyond "
            f"{65535 / scale:.5g} m written as 0 (invalid)"
        )


class NpyDepth(DepthEncoding):
    """Float32 metres as a ``.npy`` array (exact): ``numpy.load``, webdataset's default
    ``.decode()`` and ``datasets`` read it with no custom handler."""

    name, ext, exts, magic = "npy", "depth.npy", ("npy",), (b"\x93NUMPY",)
    image = False

    def encode(self, depth: np.ndarray) -> EncodedDepth:
        array = np.ascontiguousarray(depth, dtype="<f4")
        buf = io.BytesIO()
        np.lib.format.write_array(buf, array, version=(1, 0), allow_pickle=False)
        return EncodedDepth(buf.getvalue(), depth)

    @classmethod
    def declared(cls, data: bytes) -> tuple[int, str] | None:
        buf = io.BytesIO(data)
        version = np.lib.format.read_magic(buf)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, _ = read_header(buf)
        return int(np.prod(shape, dtype=np.int64)), "x".join(map(str, shape[:2][::-1]))

    @classmethod
    def read(cls, data: bytes) -> np.ndarray:
        try:
            return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        except Exception:
            raise ValueError("cannot decode .npy data (corrupt or truncated)") from None

    def info(self) -> dict[str, Any]:
        return super().info() | {"invalid": 0}

    def words(self) -> str:
        return "float32 .npy, metres, 0 = invalid"

    def summary(self) -> str:
        return "float32 .npy in metres (exact, numpy.load), 0 = invalid"

    def feature(self) -> dict[str, Any]:
        # a flow mapping: HxW float32 as a list of rows (the size varies between datasets)
        return {"list": "{list: float32}"}


# The one registry of encodings, by name (a depth one's is its ``output.depth.format``), in
# sniffing order: sources sniff and read files, outputs write and read depth through it.
ENCODINGS: dict[str, type[Encoding]] = {
    "png16": Png16Depth,
    "jpg": JpegImage,
    "tiff": TiffDepth,
    "npy": NpyDepth,
    "image": OtherImage,
}


def depth_encoding(cfg: OutputConfig) -> DepthEncoding:
    """The encoding ``output.depth`` selects (16-bit PNG shares the image's PNG level)."""
    cls = ENCODINGS[str(cfg.depth.format)]
    assert issubclass(cls, DepthEncoding), cls  # DepthFormat names depth encodings only
    return cls(cfg.depth, cfg.image)


def by_ext(ext: str) -> type[Encoding] | None:
    """The encoding that reads files named ``*.ext`` (``depth.png`` counts as ``png``)."""
    last = ext.lower().rpartition(".")[2]
    return next((cls for cls in ENCODINGS.values() if last in cls.exts), None)


def sniff(data: bytes) -> str:
    """The extension the magic bytes of ``data`` say it is read as ("" if none does)."""
    return next((ext for cls in ENCODINGS.values() if (ext := cls.sniff(data))), "")


def readable_exts(images_only: bool = False) -> frozenset[str]:
    """Every extension an encoding reads (only the image files', Pillow readable)."""
    return frozenset(e for c in ENCODINGS.values() if c.image or not images_only for e in c.exts)


def _depth_encodings() -> list[type[DepthEncoding]]:
    return [c for c in ENCODINGS.values() if issubclass(c, DepthEncoding)]


def from_info(info: dict[str, Any]) -> DepthEncoding:
    """The encoding a written dataset used, from its ``dataset_info.json`` depth entry."""
    return for_member(str(info.get("ext", "depth.tiff")), float(info.get("depth_scale", 1.0)))


def for_member(ext: str, scale: float = 1.0) -> DepthEncoding:
    """The encoding of a depth member (``depth.png`` etc; ``.tif`` is TIFF too) that stores
    value / ``scale`` = metres; a one-line ValueError for an unknown extension."""
    cls = by_ext(ext)
    if cls is not None and issubclass(cls, DepthEncoding):
        return cls(DepthCodec(scale=scale))
    known = ", ".join(member_exts())
    raise ValueError(f"no depth encoding for member .{ext} (known: {known})")


def member_exts() -> tuple[str, ...]:
    """Every depth member extension an encoding writes."""
    return tuple(cls.ext for cls in _depth_encodings())


def _float32(depth: np.ndarray, scale: float) -> np.ndarray:
    """Stored values as float32 metres: float32 as stored, integers / ``scale``."""
    depth = np.asarray(depth)
    if depth.dtype == np.float32:
        return depth
    return (depth.astype(np.float32) / np.float32(scale)).astype(np.float32)


def quantize_depth(depth: np.ndarray, scale: float) -> tuple[np.ndarray, int, int]:
    """Float metres to uint16 ``round(depth x scale)`` (0 stays 0 = invalid).

    Returns the array and the valid pixels it could not hold, which become 0: farther than
    65535 / scale metres, and nearer than 0.5 / scale (they would round to 0 anyway).
    Every other pixel reads back within 0.5 / scale metres of ``depth``.
    """
    scaled = np.rint(depth.astype(np.float64) * scale)
    valid = depth > 0
    too_far = valid & (scaled > 65535)
    too_near = valid & (scaled < 1)
    scaled[too_far] = 0
    return scaled.astype(np.uint16), int(np.count_nonzero(too_far)), int(np.count_nonzero(too_near))
