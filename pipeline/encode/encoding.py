"""The base of every encoding sources read and outputs write: the file extensions that name
it, the magic bytes that start it, the size its header declares and its bytes decoded as
stored. The encodings themselves: ``images`` (PNG, JPEG, the formats OpenCV or Pillow
read) and ``depth`` (TIFF, 16-bit PNG, NPY), whose ``ENCODINGS`` is the one registry."""

from __future__ import annotations

import io
from typing import Any, ClassVar


class Encoding:
    """A file encoding; ``exts[0]`` is the extension a sniffed file is read as."""

    name: ClassVar[str] = ""
    exts: ClassVar[tuple[str, ...]] = ()  # lower case, without the dot
    magic: ClassVar[tuple[bytes, ...]] = ()  # what its files start with
    # an image file Pillow (and so the datasets Image feature) reads
    image: ClassVar[bool] = True

    @classmethod
    def sniff(cls, data: bytes) -> str:
        """The extension ``data`` is read as if it is in this encoding, else ""."""
        return cls.exts[0] if cls.magic and data.startswith(cls.magic) else ""

    @classmethod
    def declared(cls, data: bytes) -> tuple[int, str] | None:
        """(pixels, "WxH") the header declares, or None when it cannot tell; may raise on a
        malformed header (the caller then lets the decoder say what is wrong). This
        default asks Pillow, which reads only the header; it raises
        ``PIL.Image.DecompressionBombError`` past twice its pixel limit."""
        import warnings

        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.size[0] * im.size[1], f"{im.size[0]}x{im.size[1]}"

    @classmethod
    def read(cls, data: bytes) -> Any:
        """The bytes decoded as stored: images RGB uint8 (or one channel), depth unscaled."""
        raise NotImplementedError
