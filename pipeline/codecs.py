"""Encode and decode sample fields, keyed by file extension.

PNG encoding is the dominant stage of a run; see ``encode_png`` for the encoder choice.
PNG decoding goes through imagecodecs, JPEG through OpenCV, float32 depth through tifffile.
Decoders accept every layout this tool writes or reads: ``.png`` (RGB or uint16 depth),
``.jpg``, ``.tiff``/``.tif`` (float depth), ``.npy``, ``.json``.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from typing import Any

import cv2
import numpy as np
import tifffile

from pipeline.config import DepthCodec, ImageCodec, OutputConfig
from pipeline.sample import Sample, camera_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Other image formats sources may hold, read through OpenCV (then Pillow): ``decode_image``.
OTHER_IMAGE_EXTS = frozenset(
    {"bmp", "dib", "webp", "gif", "ppm", "pgm", "pbm", "pnm", "jp2", "tga", "avif", "jpe"}
)
TIFF_COMPRESSIONS = {"none": None, "zlib": "zlib", "deflate": "zlib", "zstd": "zstd", "lzw": "lzw"}


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


def encode_tiff(depth: np.ndarray, codec: DepthCodec) -> bytes:
    """Float32 HxW depth to a single-page TIFF (no metadata that varies between runs)."""
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


def encode_sample(sample: Sample, key: str, cfg: OutputConfig) -> dict[str, bytes]:
    """The members of one written sample, keyed by extension (``mask.png`` when the
    augmentation wrote a validity mask, e.g. an evaluation region)."""
    camera = camera_json(sample.camera, sample.homography)
    fields = {
        "png": encode_png(sample.image, cfg.image),
        "depth.tiff": encode_tiff(sample.depth, cfg.depth),
        "json": encode_json({"key": key, **sample.meta, "camera": camera}),
    }
    if sample.mask is not None:
        fields["mask.png"] = encode_png(sample.mask, cfg.image)
    return fields


def encodings(cfg: OutputConfig) -> dict[str, Any]:
    """What ``encode_sample`` writes, for ``dataset_info.json``."""
    image = {"ext": "png", "dtype": "uint8", "channels": "RGB", "png_level": cfg.image.level}
    depth = {"ext": "depth.tiff", "dtype": "float32", "unit": "metre", "invalid": 0}
    depth |= {
        "compression": cfg.depth.compression,
        "level": cfg.depth.level,
        "predictor": cfg.depth.predictor,
    }
    return {"image": image, "depth": depth}


def encode_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _decode_png(data: bytes) -> np.ndarray:
    """PNG via imagecodecs: RGB in file order (no BGR swap), ~2x faster than cv2 here.
    Alpha is dropped and grey+alpha becomes RGB, as OpenCV's reader does."""
    import imagecodecs

    try:
        arr = imagecodecs.png_decode(data)
    except Exception:
        raise ValueError("cannot decode PNG data (corrupt or truncated)") from None
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = np.ascontiguousarray(arr[..., :3])
    elif arr.ndim == 3 and arr.shape[2] == 2:
        arr = np.repeat(arr[..., :1], 3, axis=2)
    return arr


def decode(ext: str, data: bytes) -> Any:
    """Decode bytes by extension; images come back RGB uint8, depth as stored."""
    ext = ext.lower().lstrip(".")
    last = ext.rpartition(".")[2]
    if last == "png":
        return _decode_png(data)
    if last in ("jpg", "jpeg"):
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise ValueError("cannot decode JPEG data (corrupt or truncated)")
        if arr.ndim == 3:
            code = cv2.COLOR_BGRA2RGB if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB
            arr = cv2.cvtColor(arr, code)
        return arr
    if last in ("tiff", "tif"):
        return tifffile.imread(io.BytesIO(data))
    if last == "npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    if last == "json":
        return json.loads(data)
    if last in OTHER_IMAGE_EXTS:
        return decode_image(data)
    raise ValueError(f"no decoder for extension .{ext}")


def decode_image(data: bytes) -> np.ndarray:
    """Any other image format OpenCV or Pillow reads (WebP, BMP, GIF, PNM, JPEG 2000 ...):
    RGB uint8, or one channel as stored (e.g. 16-bit grey depth)."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is not None:
        if arr.ndim == 3:
            code = cv2.COLOR_BGRA2RGB if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB
            arr = cv2.cvtColor(arr, code)
        return arr
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            keep = im.mode in ("L", "I", "I;16", "F")
            return np.asarray(im if keep else im.convert("RGB"))
    except Exception:
        raise ValueError("not an image OpenCV or Pillow can read (corrupt or unknown)") from None
