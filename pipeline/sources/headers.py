"""What a file declares before it is decoded: its pixel count from the header, and whether
a path names a regular file at all.

Every source reads through ``files.read_file`` / ``files.decode_bytes``, which refuse,
per sample and before decoding, a file that is not a regular file (a FIFO would block, a
device such as ``/dev/zero`` never ends) and a header declaring more than ``MAX_PIXELS``
pixels (a small file can declare gigabytes), as the encoding the file is read as reads its
header (``encode.depth.by_ext(ext).declared``).
"""

from __future__ import annotations

import os
import stat

from PIL import Image

from pipeline.encode.depth import by_ext
from pipeline.encode.encoding import Encoding

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
    """(pixels, "WxH") the header of ``data`` declares, read by the encoding ``ext`` names
    (Pillow for one no encoding names), or None when it cannot tell (the decoder then
    reports what is wrong)."""
    try:
        return (by_ext(ext) or Encoding).declared(data)
    except Image.DecompressionBombError as exc:
        return MAX_PIXELS + 1, str(exc).split(" pixels")[0].split()[-1]
    except Exception:  # not parseable here: the decoder says what is wrong
        return None
