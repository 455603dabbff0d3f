"""Turning what sources hold (files, bytes, arrays) into arrays, and paths into keys.

Shared by the file, tar and hub sources: the format is taken from the file extension or,
for bare bytes, sniffed from the magic number. Failures become ``SampleError`` naming the
sample key and where the data came from, so ``runtime.on_error=skip`` can record them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pipeline.encode import codecs
from pipeline.encode.depth import by_ext, readable_exts, sniff
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Sample
from pipeline.sources import headers
from pipeline.sources.headers import MAX_PIXELS as MAX_PIXELS

# image files sources read (Pillow reads them too): the extensions the encodings read
IMAGE_EXTS = readable_exts(images_only=True)
_UNSAFE = re.compile(r"[^A-Za-z0-9_/-]")
# A corrupt file is reported once, as a SampleError; not also as tifffile log lines.
logging.getLogger("tifffile").setLevel(logging.ERROR)


def decode_bytes(data: bytes, key: str, where: str, ext: str | None = None) -> np.ndarray:
    """Decode an encoded image/depth (PNG, JPEG, TIFF, NPY) to an array."""
    ext = ext or sniff(data)
    if not ext:
        raise SampleError(
            key, f"{where}: not an image (PNG, JPEG, TIFF, WebP, BMP ...) or NPY file"
        )
    size = headers.declared(ext, data)  # a decompression bomb is refused undecoded
    if size is not None and size[0] > MAX_PIXELS:
        raise SampleError(
            key,
            f"{where}: the {ext.rpartition('.')[2].upper()} is {size[1]} pixels, more than "
            f"{MAX_PIXELS} (a decompression bomb?); not decoded",
        )
    try:
        arr = codecs.decode(ext, data)
    except Exception as exc:  # every codec has its own error types
        raise SampleError(key, f"{where}: cannot decode ({_first_line(exc)})") from None
    arr = np.asarray(arr)
    if arr.size == 0:  # tifffile returns an empty array for some corrupt files
        raise SampleError(key, f"{where}: cannot decode (no pixel data; corrupt file?)")
    if arr.ndim == 3 and ext.rpartition(".")[2] in ("tif", "tiff"):
        pages = _tiff_pages(data)
        if pages > 1:  # a stack reads as (pages, H, W): not H x W x channels
            raise SampleError(
                key, f"{where}: a TIFF of {pages} pages (a stack); expected one page per file"
            )
    return arr


def _tiff_pages(data: bytes) -> int:
    import io

    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            return len(tif.pages)
    except Exception:  # decoded above: a page count it cannot give is not a stack
        return 1


def read_file(path: Path, key: str) -> np.ndarray:
    """Read an image or depth file; missing and unreadable files are sample errors."""
    try:
        data = headers.read_regular(path)  # a FIFO, a device, a socket: refused unopened
    except OSError as exc:
        raise SampleError(key, f"cannot read {path} ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise SampleError(key, f"{path} {exc}") from None
    return decode_bytes(data, key, str(path), ext_of(path.name))


def to_array(value: Any, key: str, where: str) -> np.ndarray:
    """A table cell as an array: ``{"bytes", "path"}`` (datasets Image), raw bytes, a
    decoded PIL image, or a (nested) list / array."""
    if value is None:
        raise SampleError(key, f"{where} is empty")
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        if value.get("bytes"):
            return decode_bytes(value["bytes"], key, where)
        if value.get("path"):
            return read_file(Path(value["path"]), key)
        raise SampleError(key, f"{where} holds neither bytes nor a path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return decode_bytes(bytes(value), key, where)
    try:
        return np.asarray(value)
    except Exception as exc:
        raise SampleError(key, f"{where}: not an array ({_first_line(exc)})") from None


def apply_mask(depth: np.ndarray, mask: np.ndarray, key: str, where: str) -> np.ndarray:
    """Zero the depth where the validity mask is 0 (any nonzero mask value = valid)."""
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.shape != depth.shape[:2]:
        raise SampleError(
            key,
            f"{where}: mask is {mask.shape[1]}x{mask.shape[0]} but depth is "
            f"{depth.shape[1]}x{depth.shape[0]} (WxH); they must match",
        )
    return np.where(mask != 0, depth, np.zeros((), dtype=depth.dtype))


_Item = TypeVar("_Item")


def read_each(
    items: Iterable[_Item], read: Callable[[_Item], Sample]
) -> Iterator[Sample | SampleError]:
    """``read(item)`` for each item, in order; a sample's own error takes its place, so a
    bad file costs one sample, not the shard."""
    for item in items:
        try:
            yield read(item)
        except SampleError as err:
            yield err


def make_key(relative: str) -> str:
    """A stable sample key from a relative path without extension: '/'-separated, only
    letters, digits, '_', '-' (a '.' would break ``{key}.{ext}`` tar member names)."""
    key = _UNSAFE.sub("_", relative.replace("\\", "/")).strip("/")
    return re.sub("/+", "/", key)


def unique_keys(keys: list[str], what: str) -> None:
    """Refuse two samples that would share a key after sanitizing."""
    seen: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in seen:
            raise PipelineError(
                f"{what}: items {seen[key]} and {i} both map to sample key {key!r}; "
                f"rename one of them"
            )
        seen[key] = i


def ext_of(name: str) -> str | None:
    """The extension of ``name`` if an encoding reads it, else None (sniffed from the bytes)."""
    suffix = name.rpartition(".")[2].lower()
    return suffix if by_ext(suffix) is not None else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(text[0].split()) if text else type(exc).__name__
