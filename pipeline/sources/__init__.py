"""Sample sources: one module per kind, each a ``Source`` subclass built from its own
config schema (``pipeline.config.schema``: the schema's ``impl`` names the class).

A source is built from its plain config in the parent and, unless ``for_workers`` hands
over the opened one, again in every worker: opening must be cheap and must not load the
data. ``finalize`` applies the shared sample contract to whatever a source read: uint8
RGB, float32 metres, 0 = invalid (NaN/inf/non-positive/out-of-range become 0, counted),
and a physical camera (finite positive focal lengths, a finite principal point).

A new source = one module here + a schema in ``pipeline/config/sources.py`` (with
``impl``) + ``conf/source/<preset>.yaml`` starting from ``/schema/source/<kind>``. A public
dataset read in its authors' layout: ``sources/public/`` and ``config/datasets.py``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline.config.paths import key_problem
from pipeline.config.sources import SourceConfig
from pipeline.config.urls import is_url
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Camera, InvalidPixels, Sample


class Source:
    """What the runner needs from a source; samples are read lazily, in index order."""

    def __len__(self) -> int:
        raise NotImplementedError

    def iter(self, start: int, stop: int) -> Iterator[Sample | SampleError]:
        """Samples ``start`` .. ``stop`` (a bad one as the ``SampleError`` naming it)."""
        raise NotImplementedError

    def identity(self) -> dict[str, object]:
        """What identifies the data read (path, revision, fingerprint): provenance."""
        raise NotImplementedError

    def paths(self) -> list[Path]:
        """Every local file and directory the source reads, so that ``output.dir`` is
        kept apart from them (``config.paths.check_apart`` resolves each): by default the
        ``path``, ``tars`` and ``data_files`` of ``identity()`` that exist on this machine;
        a source reading files named by templates or lists adds each of them."""
        return [Path(item) for item in self._named() if Path(item).exists()]

    def urls(self) -> list[str]:
        """Every URL the source reads (``s3://...``), kept apart from a URL ``output.dir``
        (``config.urls.check_apart``): by default the ``path``, ``tars`` and
        ``data_files`` of ``identity()`` that are URLs."""
        return [item for item in self._named() if is_url(item)]

    def _named(self) -> Iterator[str]:
        """The ``path``, ``tars`` and ``data_files`` of ``identity()``, each item."""
        ident = self.identity()
        for name in ("path", "tars", "data_files"):
            value = ident.get(name)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and item:
                    yield item

    def inputs_fingerprint(self, start: int, stop: int) -> str:
        """A digest of the data samples ``start`` .. ``stop`` are read from, recorded in
        each shard manifest so that a resumed run keeps no shard of a changed source. By
        default the whole ``identity()`` (any change counts); a source that can tell which
        files a range reads narrows it (a fixed bad file then redoes only its shard)."""
        cached = getattr(self, "_identity_digest", None)
        if cached is None:
            blob = json.dumps(self.identity(), sort_keys=True, default=str).encode()
            cached = hashlib.sha256(blob).hexdigest()[:16]
            self._identity_digest = cached
        return cached

    def describe(self) -> list[str]:
        """Lines printed before the run (a mixture's plan); none by default."""
        return []

    @property
    def size(self) -> tuple[int, int] | None:
        """(H, W) of the images when known without decoding samples, else None."""
        return None

    def for_workers(self) -> Source | None:
        """This opened source, if it is cheap to pickle to the workers; None makes every
        worker open its own from the config."""
        return None


def open_source(cfg: SourceConfig) -> Source:
    """Instantiate the source class named by the schema of ``cfg``."""
    module, name = type(cfg).impl.split(":")
    cls = getattr(importlib.import_module(module), name)
    try:
        return cls(cfg)
    except (ValueError, FileNotFoundError) as exc:
        raise PipelineError(f"source ({cfg.kind}): {exc}") from exc


def finalize(
    sample: Sample, cfg: SourceConfig, plausible: bool = True
) -> tuple[Sample, InvalidPixels]:
    """Enforce the sample contract; return the sample and its invalid-pixel counts.

    Contract violations are ``SampleError`` naming the key and the source location.
    ``plausible=False`` skips the depth ceiling (the units check, which names a likelier
    fix, looks first)."""
    try:
        return _finalize(sample, cfg, plausible)
    except SampleError as err:
        location = sample.origin.location
        if location and location not in err.reason:
            raise SampleError(err.key, f"{err.reason} (in {location})") from None
        raise


def _finalize(sample: Sample, cfg: SourceConfig, plausible: bool) -> tuple[Sample, InvalidPixels]:
    cfg = cfg.part(sample.origin.dataset)  # a mixture's sample: its part's scale and range
    image, depth, key = sample.image, sample.depth, sample.key
    problem = key_problem(key)
    if problem:
        raise SampleError(key, f"{problem}; the source must give safe keys")
    if image.dtype != np.uint8:
        raise SampleError(key, f"image dtype is {image.dtype}, expected uint8 RGB")
    if image.ndim != 3 or image.shape[2] != 3:
        raise SampleError(key, f"image shape is {image.shape}, expected HxWx3 RGB")
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise SampleError(key, f"depth shape is {depth.shape}, expected HxW")
    if depth.shape != image.shape[:2]:
        turned = depth.shape == image.shape[1::-1]
        raise SampleError(
            key,
            f"image is {image.shape[1]}x{image.shape[0]} but depth is "
            f"{depth.shape[1]}x{depth.shape[0]} (WxH); they must match"
            + (
                " (turned by 90 degrees: images are read as stored, an EXIF orientation tag "
                "is not applied; store the image upright)"
                if turned
                else ""
            ),
        )
    if not (np.issubdtype(depth.dtype, np.floating) or np.issubdtype(depth.dtype, np.integer)):
        raise SampleError(key, f"depth dtype is {depth.dtype}, expected float or integer")
    depth = depth.astype(np.float32, copy=False)
    if cfg.scale != 1.0:
        depth = depth / np.float32(cfg.scale)  # stored value / depth_scale = metres
    with np.errstate(invalid="ignore"):
        nonfinite = ~np.isfinite(depth)
        negative = depth < 0
        zero = depth == 0
        outside = depth < cfg.depth.min
        if cfg.depth.max is not None:
            outside |= depth > cfg.depth.max
        out_of_range = ~(nonfinite | negative | zero) & outside
        if cfg.depth.max is None and plausible:
            _check_plausible(key, depth, nonfinite, cfg.depth.plausible)
    fixed = nonfinite | negative | out_of_range
    if fixed.any():
        depth = np.where(fixed, np.float32(0.0), depth)
    counts = InvalidPixels(
        zero=int(np.count_nonzero(zero)),
        nonfinite=int(np.count_nonzero(nonfinite)),
        negative=int(np.count_nonzero(negative)),
        out_of_range=int(np.count_nonzero(out_of_range)),
    )
    camera = _usable_camera(key, sample.camera or cfg.fixed_camera(*depth.shape))
    image, depth = np.ascontiguousarray(image), np.ascontiguousarray(depth)
    out = Sample(key, image, depth, sample.origin, camera, sample.params)
    return out, counts


def _check_plausible(key: str, depth: np.ndarray, nonfinite: np.ndarray, ceiling: float) -> None:
    """Refuse finite depth beyond ``ceiling`` metres when no ``source.depth.max`` is set."""
    far = ~nonfinite & (depth > ceiling)
    if far.any():
        n, top = int(np.count_nonzero(far)), float(depth[far].max())
        raise SampleError(
            key,
            f"{n} pixel(s) of depth beyond {ceiling:g} m (largest {top:.3g} m): implausible for "
            f"RGB-D data (wrong units or depth_scale?); if they are real, accept them with "
            f"source.depth.max={top:.3g} (or more), or drop them as invalid with a smaller one",
        )


def _usable_camera(key: str, camera: Camera | None) -> Camera | None:
    """``camera``, or a ``SampleError`` naming ``key`` when its values are not usable."""
    if camera is not None and not _camera_ok(camera):
        raise SampleError(
            key,
            f"camera fx={camera.fx}, fy={camera.fy}, cx={camera.cx}, cy={camera.cy} is not "
            f"usable (focal lengths must be finite and > 0, the principal point finite); "
            f"fix this sample's camera in the source",
        )
    return camera


def _camera_ok(camera: Camera) -> bool:
    values = (camera.fx, camera.fy, camera.cx, camera.cy)
    try:
        return all(math.isfinite(float(v)) for v in values) and camera.fx > 0 and camera.fy > 0
    except (TypeError, ValueError):
        return False
