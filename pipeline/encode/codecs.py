"""Encode and decode sample fields, keyed by file extension.

Written members: the image as ``png`` (or ``jpg``), the depth as its encoding writes it
(``pipeline.encode.depth``: ``depth.tiff``, ``depth.png`` or ``depth.npy``), ``json``.
PNG encoding is the dominant stage of a run; see ``png.encode_png`` for the encoder choice.
Decoding asks the encoding registry (``depth.ENCODINGS``: PNG through imagecodecs, JPEG
through OpenCV, float32 depth through tifffile, ``.npy``, the formats OpenCV or Pillow
read; imported where used: the parent process of a run needs none of them) and reads
``.json`` itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.config.choices import ImageFormat
from pipeline.config.schema import ImageCodec, OutputConfig
from pipeline.encode.depth import (  # noqa: F401 (re-exported: the depth bytes live there)
    TIFF_COMPRESSIONS,
    by_ext,
    depth_encoding,
    encode_tiff,
    quantize_depth,
)
from pipeline.encode.png import PNG_SIGNATURE, decode_png, encode_png  # noqa: F401
from pipeline.sample import Sample


def encode_jpeg(image: np.ndarray, codec: ImageCodec) -> bytes:
    """RGB (HxWx3 uint8) to baseline JPEG at ``codec.quality`` (OpenCV's libjpeg-turbo:
    the same bytes for the same pixels and quality)."""
    import cv2

    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, codec.quality]
    )
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()


@dataclass
class EncodedSample:
    """The members of one written sample keyed by extension, the depth exactly as a reader
    gets it back (metres; png16 quantized) and the pixels png16 could not hold."""

    fields: dict[str, bytes]
    depth: np.ndarray
    too_far: int = 0
    too_near: int = 0


def image_ext(cfg: OutputConfig) -> str:
    """The image member extension: ``png`` or ``jpg``."""
    return ImageFormat(cfg.image.format).value


def encode_sample(sample: Sample, cfg: OutputConfig, meta: dict[str, Any]) -> EncodedSample:
    """Encode one output sample (``meta`` is its per-sample JSON record; ``mask.png`` when
    the augmentation wrote a validity mask)."""
    ext = image_ext(cfg)
    image = (
        encode_jpeg(sample.image, cfg.image)
        if ext == "jpg"
        else encode_png(sample.image, cfg.image)
    )
    encoding = depth_encoding(cfg)
    depth = encoding.encode(sample.depth)
    fields = {ext: image, encoding.ext: depth.data} | _extra(sample, meta, cfg)
    return EncodedSample(fields, depth.depth, depth.too_far, depth.too_near)


def _extra(sample: Sample, meta: dict[str, Any], cfg: OutputConfig) -> dict[str, bytes]:
    """The JSON record, and ``mask.png`` when the augmentation wrote a validity mask (an
    evaluation region)."""
    extra = {"json": encode_json(meta)}
    if sample.mask is not None:
        extra["mask.png"] = encode_png(sample.mask, cfg.image)
    return extra


def encodings(
    cfg: OutputConfig,
    parts: dict[str, OutputConfig] | None = None,
    canonical: tuple[str, float] | None = None,
) -> dict[str, Any]:
    """What ``encode_sample`` writes, for ``dataset_info.json``; ``parts``: a mixture's
    output config per part, when its parts are encoded at scales of their own;
    ``canonical``: (transform, focal) when depth is canonical (x focal / fx), not metres."""
    ext = image_ext(cfg)
    image: dict[str, Any] = {"ext": ext, "dtype": "uint8", "channels": "RGB"}
    if ext == "jpg":
        image["jpeg_quality"] = cfg.image.quality
    else:
        image["png_level"] = cfg.image.level
    depth = depth_encoding(cfg).info()
    scales = {name: depth_encoding(out).scale for name, out in (parts or {}).items()}
    if set(scales.values()) - {depth.get("depth_scale")}:
        depth["part_scales"] = scales  # each sample's record holds its own
    if canonical is not None:
        from pipeline.config.mixture import canonical_words

        name, focal = canonical
        words = canonical_words(name, focal)
        depth["canonical"] = {"transform": name, "focal": focal, "meaning": words}
    return {"image": image, "depth": depth}


def encode_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def decode(ext: str, data: bytes) -> Any:
    """Decode bytes by extension; images come back RGB uint8, depth as stored."""
    ext = ext.lower().lstrip(".")
    if ext.rpartition(".")[2] == "json":
        return json.loads(data)
    encoding = by_ext(ext)
    if encoding is None:
        raise ValueError(f"no decoder for extension .{ext}")
    return encoding.read(data)
