"""What a file declares before it is decoded: its pixel count from the header, and whether
a path names a regular file at all.

Every source reads through ``files.read_file`` / ``files.decode_bytes``, which refuse,
per sample and before decoding, a file that is not a regular file (a FIFO would block, a
device such as ``/dev/zero`` never ends) and a header declaring more than ``MAX_PIXELS``
pixels (a small file can declare gigabytes: PNG, TIFF, NPY, JPEG and what Pillow opens).
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings

import numpy as np
from PIL import Image

# Pillow's DecompressionBombError threshold (2 x Image.MAX_IMAGE_PIXELS): no RGB-D frame
# comes near it; a small file declaring more pixels would exhaust memory when decoded
MAX_PIXELS = 178_956_970
# a frame of MAX_PIXELS float64 pixels, with room for headers: no image file is larger
MAX_FILE_BYTES = 8 * MAX_PIXELS + (1 << 20)


def file_kind(mode: int) -> str:
    """A readable name for a non-regular file type."""
    for test, name in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: os.PathLike[str] | str) -> bytes:
    """The bytes of a regular file; ``ValueError`` (the reason) for anything else.

    Opened non-blocking (a FIFO does not wait for a writer) and checked on the open file
    (no swap between check and read); the size is checked before reading."""
    st = os.stat(path)  # follows symlinks: a link to /dev/zero is a device
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"is {file_kind(st.st_mode)}, not a regular file")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"is {file_kind(st.st_mode)}, not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise ValueError(
                f"is {st.st_size} bytes, more than any frame of {MAX_PIXELS} pixels needs"
            )
        return f.read()


def declared(ext: str, data: bytes) -> tuple[int, str] | None:
    """(pixels, "WxH") the header of ``data`` declares, or None when it cannot tell (the
    decoder then reports what is wrong)."""
    last = ext.lower().rpartition(".")[2]
    try:
        if last == "png":
            if data[12:16] != b"IHDR":
                return None
            w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
            return w * h, f"{w}x{h}"
        if last in ("tif", "tiff"):
            size = _tiff_size(data)
            return None if size is None else (size[0] * size[1], f"{size[0]}x{size[1]}")
        if last == "npy":
            buf = io.BytesIO(data)
            version = np.lib.format.read_magic(buf)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, _ = read_header(buf)
            return int(np.prod(shape, dtype=np.int64)), "x".join(map(str, shape[:2][::-1]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.size[0] * im.size[1], f"{im.size[0]}x{im.size[1]}"
    except Image.DecompressionBombError as exc:
        return MAX_PIXELS + 1, str(exc).split(" pixels")[0].split()[-1]
    except Exception:  # not parseable here: the decoder says what is wrong
        return None


_TIFF_INT = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8


def _tiff_size(data: bytes) -> tuple[int, int] | None:
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
