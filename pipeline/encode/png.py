"""PNG bytes: the fast writer every PNG member goes through (image, 16-bit depth, mask) and
its reader. Kept apart from ``codecs`` so the depth encodings (``depth``) can use it."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from pipeline.config.schema import ImageCodec

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_png(image: np.ndarray, codec: ImageCodec) -> bytes:
    """RGB (HxWx3 uint8) or single-channel (HxW uint8/uint16) array to PNG bytes.

    Rows use the SUB filter and libdeflate compresses them (through imagecodecs): ~2.5x
    faster than libpng with the same fixed filter, ~5x faster than Pillow's adaptive
    filters at level 1, and 8% smaller. The PNG framing is four chunks; any reader
    (Pillow, OpenCV, libpng, browsers) decodes it.
    """
    import imagecodecs

    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype not in (np.uint8, np.uint16) or channels not in (1, 3):
        raise ValueError(
            f"PNG encoding needs uint8/uint16 grey or RGB, got {image.dtype} {image.shape}"
        )
    big_endian = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder(">"))
    rows = big_endian.view(np.uint8).reshape(height, -1)
    bpp = channels * image.dtype.itemsize  # bytes per pixel: SUB subtracts the left pixel
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 1  # filter type SUB on every row
    filtered[:, 1 : bpp + 1] = rows[:, :bpp]
    np.subtract(rows[:, bpp:], rows[:, :-bpp], out=filtered[:, bpp + 1 :])
    colour_type = 2 if channels == 3 else 0
    header = struct.pack(">IIBBBBB", width, height, image.dtype.itemsize * 8, colour_type, 0, 0, 0)
    idat = imagecodecs.deflate_encode(filtered, level=codec.level)
    return b"".join(
        (PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", idat), _chunk(b"IEND", b""))
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def decode_png(data: bytes) -> np.ndarray:
    """PNG via imagecodecs: RGB in file order (no BGR swap), ~2x faster than cv2 here.
    Alpha is dropped and grey+alpha becomes RGB, as OpenCV's reader does. What
    ``encode_png`` wrote (SUB on every row) takes ``_decode_sub``: 1.7x faster again."""
    import imagecodecs

    try:
        arr = _decode_sub(data)
        if arr is None:
            arr = imagecodecs.png_decode(data)
    except Exception:
        raise ValueError("cannot decode PNG data (corrupt or truncated)") from None
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = np.ascontiguousarray(arr[..., :3])
    elif arr.ndim == 3 and arr.shape[2] == 2:
        arr = np.repeat(arr[..., :1], 3, axis=2)
    return arr


def _decode_sub(data: bytes) -> np.ndarray | None:
    """A non-interlaced 8/16-bit grey or RGB PNG whose every row uses the SUB filter (what
    ``encode_png`` writes): libdeflate inflates the IDAT stream (its Adler-32 checked) and
    one C pass undoes SUB (``delta_decode``: SUB is a byte-wise running sum, ``bpp`` bytes
    apart). None for any other PNG: libpng decodes those."""
    import imagecodecs

    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height, bits, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    channels = {0: 1, 2: 3}.get(colour)
    if channels is None or bits not in (8, 16) or interlace or not width or not height:
        return None
    view, pos, idat = memoryview(data), 33, []
    while pos + 8 <= len(data):
        (size,) = struct.unpack_from(">I", data, pos)
        kind = bytes(view[pos + 4 : pos + 8])
        if kind == b"IDAT":
            idat.append(view[pos + 8 : pos + 8 + size])
        elif kind == b"IEND":
            break
        pos += size + 12
    bpp = channels * bits // 8
    stride = width * bpp + 1
    stream = idat[0] if len(idat) == 1 else b"".join(idat)
    rows = np.frombuffer(imagecodecs.deflate_decode(stream, out=height * stride), np.uint8)
    rows = rows.reshape(height, stride)
    if not (rows[:, 0] == 1).all():
        return None
    pixels = imagecodecs.delta_decode(rows[:, 1:].reshape(height, width, bpp), axis=1)
    if bits == 16:
        pixels = pixels.view(">u2").astype(np.uint16)
    return pixels.reshape((height, width, channels)[: 2 + (channels == 3)])
