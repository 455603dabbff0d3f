"""TIFF bytes: the float32 depth writer (``depth.TiffDepth``) and the size a TIFF header
declares, read without decoding (sources refuse a decompression bomb with it)."""

from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np

from pipeline.config.schema import DepthCodec

TIFF_COMPRESSIONS = {"none": None, "zlib": "zlib", "deflate": "zlib", "zstd": "zstd", "lzw": "lzw"}
# What tifffile, Pillow and OpenCV all decode (OpenCV's libtiff has no ZSTD).
READABLE_TIFF_COMPRESSIONS = ("none", "zlib", "deflate", "lzw")
# classic and Big TIFF, little and big endian
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def encode_tiff(depth: np.ndarray, codec: DepthCodec) -> bytes:
    """Float32 HxW depth to a single-page TIFF (no metadata that varies between runs)."""
    import tifffile

    kwargs: dict[str, Any] = {"compression": TIFF_COMPRESSIONS[codec.compression]}
    if codec.compression != "none":
        kwargs["predictor"] = codec.predictor if codec.predictor != 1 else None
        if codec.level is not None:
            kwargs["compressionargs"] = {"level": codec.level}
    buf = io.BytesIO()
    tifffile.imwrite(
        buf,
        np.ascontiguousarray(depth, dtype=np.float32),
        photometric="minisblack",
        metadata=None,
        software=False,
        datetime=False,
        **kwargs,
    )
    return buf.getvalue()


_TIFF_INT = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8


def tiff_size(data: bytes) -> tuple[int, int] | None:
    """(ImageWidth, ImageLength) of the first IFD of a classic or Big TIFF, read from the
    header in microseconds (opening it with tifffile costs ~1.5 ms a file)."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None:
        return None
    magic = struct.unpack_from(order + "H", data, 2)[0]
    if magic == 42:
        (offset,) = struct.unpack_from(order + "I", data, 4)
        (count,) = struct.unpack_from(order + "H", data, offset)
        first, entry, value_at = offset + 2, 12, 8
    elif magic == 43:
        (offset,) = struct.unpack_from(order + "Q", data, 8)
        (count,) = struct.unpack_from(order + "Q", data, offset)
        first, entry, value_at = offset + 8, 20, 12
    else:
        return None
    found: dict[int, int] = {}
    for i in range(min(count, 4096)):
        at = first + i * entry
        tag, kind = struct.unpack_from(order + "HH", data, at)
        if tag in (256, 257) and kind in _TIFF_INT:
            found[tag] = struct.unpack_from(order + _TIFF_INT[kind], data, at + value_at)[0]
    if 256 not in found or 257 not in found:
        return None
    return found[256], found[257]
