"""The float TIFF depth codecs offered by ``output.depth.compression``: bytes per frame,
encode time (``codecs.encode_tiff``, as the workers call it) and decode time in each of
tifffile, Pillow and OpenCV, on the synthetic renders' depth and on a sparse LiDAR-like
frame. ``python -m pipeline.bench.tiff`` prints the table alone."""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np

from pipeline.config.choices import TiffCompression
from pipeline.config.schema import DepthCodec
from pipeline.encode.depth import READABLE_TIFF_COMPRESSIONS, encode_tiff

SETTINGS = [("none", 1, None)] + [
    (c, p, level)
    for c in READABLE_TIFF_COMPRESSIONS
    if c not in ("none", "deflate")
    for p in (1, 3)
    for level in ((1, None) if c == "zlib" else (None,))
]


def _frames(n: int) -> dict[str, list[np.ndarray]]:
    from pipeline.config.sources import SyntheticConfig
    from pipeline.sources.synthetic import SyntheticSource

    dense = [s.depth for s in SyntheticSource(SyntheticConfig(num_samples=n)).iter(0, n)]
    rng = np.random.default_rng(0)
    sparse = []
    for d in dense:
        lidar = np.where(rng.random(d.shape) < 0.05, d * 8, 0).astype(np.float32)
        sparse.append(lidar)
    return {"dense": dense, "sparse": sparse}


def _ms(fn: Any, items: list[Any]) -> float:
    t0 = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - t0) * 1000 / len(items)


def measure(n: int = 8) -> dict[str, Any]:
    """{frames: {setting: {bytes, encode_ms, <reader>_ms}}} per setting."""
    import cv2
    import tifffile
    from PIL import Image

    readers = {
        "tifffile": lambda b: tifffile.imread(io.BytesIO(b)),
        "pillow": lambda b: np.asarray(Image.open(io.BytesIO(b))),
        "opencv": lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED),
    }
    out: dict[str, Any] = {}
    for kind, frames in _frames(n).items():
        rows = {}
        for comp, predictor, level in SETTINGS:
            codec = DepthCodec(compression=TiffCompression(comp), predictor=predictor, level=level)
            encoded = [encode_tiff(f, codec) for f in frames]
            row = {
                "bytes": int(np.mean([len(b) for b in encoded])),
                "encode_ms": _ms(lambda f, c=codec: encode_tiff(f, c), frames),
            }
            row |= {f"{name}_ms": _ms(read, encoded) for name, read in readers.items()}
            rows[f"{comp} p{predictor}" + (f" l{level}" if level else "")] = row
        out[kind] = rows
    return out


def print_table(result: dict[str, Any]) -> None:
    for kind, rows in result.items():
        print(f"TIFF depth, {kind} 640x480 frames:")
        print(
            f"  {'setting':<14}{'KB':>8}{'encode ms':>11}{'tifffile':>10}{'pillow':>8}{'opencv':>8}"
        )
        for name, r in rows.items():
            print(
                f"  {name:<14}{r['bytes'] / 1024:>8.0f}{r['encode_ms']:>11.1f}"
                f"{r['tifffile_ms']:>10.1f}{r['pillow_ms']:>8.1f}{r['opencv_ms']:>8.1f}"
            )


if __name__ == "__main__":
    print_table(measure())
