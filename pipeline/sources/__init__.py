"""Sample sources: one module per kind, each a class with ``len``, ``iter(start, stop)``
and ``identity()`` (and ``size`` when the image size is known up front); ``open_source``
picks it from ``source.kind``. Sources are built from the plain ``SourceConfig`` in every
worker, so opening one must be cheap and must not load the data; a source whose opened
state is cheap to pickle may offer it instead with ``for_workers()`` (else ``None``).

``finalize`` applies the shared sample contract to whatever a source read: uint8 RGB,
float32 metres, 0 = invalid (NaN/inf/non-positive/out-of-range become 0 and are counted).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from pipeline.config import SourceConfig
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Sample

KINDS = {
    "synthetic": "pipeline.sources.synthetic:SyntheticSource",
    "hub": "pipeline.sources.hub:HubSource",
    "webdataset": "pipeline.sources.webdataset:WebdatasetSource",
    "folder": "pipeline.sources.folder:FolderSource",
    "nyu_mat": "pipeline.sources.nyu_mat:NyuMatSource",
}


class Source(Protocol):
    """What every source provides; samples are read lazily, in index order."""

    def __len__(self) -> int: ...

    def iter(self, start: int, stop: int) -> Iterator[Sample | SampleError]: ...

    def identity(self) -> dict[str, object]: ...


def open_source(cfg: SourceConfig) -> Source:
    """Instantiate the source named by ``cfg.kind``."""
    target = KINDS.get(cfg.kind)
    if target is None:
        raise PipelineError(
            f"source.kind={cfg.kind!r} is unknown; choose one of: {', '.join(sorted(KINDS))}"
        )
    module, name = target.split(":")
    cls = getattr(importlib.import_module(module), name)
    try:
        return cls(cfg)
    except (ValueError, FileNotFoundError) as exc:
        raise PipelineError(f"source ({cfg.kind}): {exc}") from exc


def finalize(sample: Sample, cfg: SourceConfig) -> tuple[Sample, dict[str, int]]:
    """Enforce the sample contract; return the sample and its invalid-pixel counts.

    Contract violations are ``SampleError`` naming the key and the source location."""
    try:
        return _finalize(sample, cfg)
    except SampleError as err:
        location = sample.meta.get("source", {}).get("location")
        if location and location not in err.reason:
            raise SampleError(err.key, f"{err.reason} (in {location})") from None
        raise


def _finalize(sample: Sample, cfg: SourceConfig) -> tuple[Sample, dict[str, int]]:
    image, depth, key = sample.image, sample.depth, sample.key
    if image.dtype != np.uint8:
        raise SampleError(key, f"image dtype is {image.dtype}, expected uint8 RGB")
    if image.ndim != 3 or image.shape[2] != 3:
        raise SampleError(key, f"image shape is {image.shape}, expected HxWx3 RGB")
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise SampleError(key, f"depth shape is {depth.shape}, expected HxW")
    if depth.shape != image.shape[:2]:
        raise SampleError(
            key,
            f"image is {image.shape[1]}x{image.shape[0]} but depth is "
            f"{depth.shape[1]}x{depth.shape[0]} (WxH); they must match",
        )
    if not (np.issubdtype(depth.dtype, np.floating) or np.issubdtype(depth.dtype, np.integer)):
        raise SampleError(key, f"depth dtype is {depth.dtype}, expected float or integer")
    depth = depth.astype(np.float32, copy=False)
    if cfg.depth_scale != 1.0:
        depth = depth * np.float32(cfg.depth_scale)
    with np.errstate(invalid="ignore"):
        nonfinite = ~np.isfinite(depth)
        negative = depth < 0
        zero = depth == 0
        outside = depth < cfg.depth.min
        if cfg.depth.max is not None:
            outside |= depth > cfg.depth.max
        out_of_range = ~(nonfinite | negative | zero) & outside
    fixed = nonfinite | negative | out_of_range
    if fixed.any():
        depth = np.where(fixed, np.float32(0.0), depth)
    counts = {
        "zero": int(np.count_nonzero(zero)),
        "nonfinite": int(np.count_nonzero(nonfinite)),
        "negative": int(np.count_nonzero(negative)),
        "out_of_range": int(np.count_nonzero(out_of_range)),
    }
    return Sample(
        key, np.ascontiguousarray(image), np.ascontiguousarray(depth), sample.meta
    ), counts
