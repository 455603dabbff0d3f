"""Image encodings sources read: PNG (imagecodecs), JPEG (OpenCV) and the other formats
OpenCV or Pillow read (WebP, BMP, GIF, PNM, JPEG 2000 ...). Each entered in the one
registry, ``depth.ENCODINGS`` (PNG through ``depth.Png16Depth``, a PNG holding depth)."""

from __future__ import annotations

import numpy as np

from pipeline.encode.encoding import Encoding
from pipeline.encode.png import PNG_SIGNATURE, decode_png

# Other image formats sources may hold, read through OpenCV (then Pillow): ``OtherImage``.
OTHER_IMAGE_EXTS = frozenset(
    {"bmp", "dib", "webp", "gif", "ppm", "pgm", "pbm", "pnm", "jp2", "tga", "avif", "jpe"}
)


class PngImage(Encoding):
    """PNG: RGB uint8 or 16-bit grey, read through imagecodecs."""

    name, exts, magic = "png", ("png",), (PNG_SIGNATURE[:4],)

    @classmethod
    def declared(cls, data: bytes) -> tuple[int, str] | None:
        if data[12:16] != b"IHDR":
            return None
        w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return w * h, f"{w}x{h}"

    @classmethod
    def read(cls, data: bytes) -> np.ndarray:
        return decode_png(data)


class JpegImage(Encoding):
    """Baseline JPEG through OpenCV (libjpeg-turbo), as RGB."""

    name, exts, magic = "jpg", ("jpg", "jpeg"), (b"\xff\xd8",)

    @classmethod
    def read(cls, data: bytes) -> np.ndarray:
        import cv2

        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise ValueError("cannot decode JPEG data (corrupt or truncated)")
        return _rgb(arr)


class OtherImage(Encoding):
    """Any other format OpenCV or Pillow reads: RGB uint8, or one channel as stored (e.g.
    16-bit grey depth). Sniffed: BMP, GIF, WebP."""

    name, exts = "image", ("bmp", *sorted(OTHER_IMAGE_EXTS - {"bmp"}))
    magic = (b"BM", b"GIF8")  # and WebP's RIFF....WEBP (``sniff``)

    @classmethod
    def sniff(cls, data: bytes) -> str:
        if data.startswith(b"GIF8"):
            return "gif"
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return "webp"
        return super().sniff(data)

    @classmethod
    def read(cls, data: bytes) -> np.ndarray:
        return decode_image(data)


def decode_image(data: bytes) -> np.ndarray:
    """Any image OpenCV, else Pillow, reads: RGB uint8, or one channel as stored."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is not None:
        return _rgb(arr)
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            keep = im.mode in ("L", "I", "I;16", "F")
            return np.asarray(im if keep else im.convert("RGB"))
    except Exception:
        raise ValueError("not an image OpenCV or Pillow can read (corrupt or unknown)") from None


def _rgb(arr: np.ndarray) -> np.ndarray:
    """OpenCV's BGR(A) as RGB; one channel as it is."""
    if arr.ndim == 3:
        import cv2

        code = cv2.COLOR_BGRA2RGB if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB
        arr = cv2.cvtColor(arr, code)
    return arr
