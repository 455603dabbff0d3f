"""Everything checked before the first sample: the table of config values (``validate``),
report settings the plotting library must accept, and the transforms with the sample
contract after the augmentation, tried on the first sample one transform at a time so
that the message names the culprit (``augment_first``: in a worker when the run has a
pool, so that this process never imports albumentations).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.config import paths
from pipeline.config.choices import DataType, TiffCompression
from pipeline.config.schema import AugmentConfig, Config, OutputConfig, ReportConfig
from pipeline.config.sources import FileSourceConfig, MixConfig, SourceConfig, SyntheticConfig
from pipeline.dataset.layouts import LAYOUTS, layout_for
from pipeline.encode.depth import READABLE_TIFF_COMPRESSIONS, depth_encoding
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Sample
from pipeline.sources import Source, finalize

if TYPE_CHECKING:
    from pipeline.augment.augmenter import Augmenter

LOCK_STALE_MIN = 30.0  # seconds: below it a live run's lock rewrites flood the store


def validate(cfg: Config) -> None:
    """The table of up-front checks: every value a schema cannot constrain (ranges,
    choices, names that become files), one row each, naming the key.

    Longer than 60 lines: one flat list of independent checks, each a few lines."""
    src, rep = cfg.source, cfg.report
    depth_max = src.depth.max
    table = [
        (cfg.runtime.on_error in ("raise", "skip"), "runtime.on_error must be raise or skip"),
        (cfg.output.format in LAYOUTS, f"output.format must be one of {sorted(LAYOUTS)}"),
        (cfg.output.shard_size > 0, "output.shard_size must be > 0"),
        (
            math.isfinite(cfg.output.lock_stale_s) and cfg.output.lock_stale_s >= LOCK_STALE_MIN,
            f"output.lock_stale_s={cfg.output.lock_stale_s:g} must be finite and >= "
            f"{LOCK_STALE_MIN:g} s (a live run rewrites its lock every lock_stale_s/8)",
        ),
        (cfg.augment.copies >= 1, "augment.copies must be >= 1"),
        (cfg.augment.seed >= 0, "augment.seed must be >= 0"),
        (cfg.runtime.workers >= 0, "runtime.workers must be >= 0 (0 = all cores)"),
        (cfg.runtime.max_in_flight >= 0, "runtime.max_in_flight must be >= 0"),
        (
            cfg.shard.num_shards >= 1,
            f"shard.num_shards must be >= 1 (the number of slice jobs; 1 = no slicing), "
            f"not {cfg.shard.num_shards}",
        ),
        (
            cfg.shard.num_shards < 1 or 0 <= cfg.shard.index < cfg.shard.num_shards,
            "shard.index must be in [0, shard.num_shards)",
        ),
        (0 <= cfg.output.image.level <= 9, "output.image.level must be 0..9"),
        (
            cfg.output.depth.compression in [c.value for c in TiffCompression],
            "output.depth.compression must be none, zlib (= deflate) or lzw",
        ),
        (
            cfg.output.depth.compression in READABLE_TIFF_COMPRESSIONS,
            f"output.depth.compression={cfg.output.depth.compression}: OpenCV cannot read "
            f"such TIFFs (its libtiff has no {cfg.output.depth.compression}); use zlib with "
            f"output.depth.predictor=3, which tifffile, Pillow and OpenCV all read",
        ),
        (cfg.output.depth.predictor in (1, 2, 3), "output.depth.predictor must be 1, 2 or 3"),
        (
            not depth_encoding(cfg.output).scaled or (cfg.output.depth.scale or 0) > 0,
            "output.depth.scale must be > 0 (stored value = metres x scale)",
        ),
        (1 <= cfg.output.image.quality <= 100, "output.image.quality must be 1..100"),
        (
            cfg.output.depth.level is None or cfg.output.depth.level >= 0,
            "output.depth.level must be >= 0 (or null for the default)",
        ),
        (src.limit is None or src.limit >= 0, "source.limit must be >= 0"),
        (math.isfinite(src.depth.min) and src.depth.min >= 0, "source.depth.min must be >= 0"),
        (
            math.isfinite(src.depth.plausible) and src.depth.plausible > 0,
            "source.depth.plausible must be finite and > 0 (metres)",
        ),
        (
            depth_max is None or (math.isfinite(depth_max) and depth_max > src.depth.min),
            "source.depth.max must be > source.depth.min (or null for no limit)",
        ),
    ]
    if isinstance(src, SyntheticConfig):
        table += [
            (src.num_samples >= 0, "source.num_samples must be >= 0"),
            (src.seed >= 0, "source.seed must be >= 0"),
            (min(src.height, src.width) >= 16, "source.height and source.width must be >= 16"),
            (
                max(src.height, src.width) <= 16384,
                "source.height and source.width must be <= 16384",
            ),
        ]
    if isinstance(src, FileSourceConfig):
        c = src.camera
        table += [
            (
                math.isfinite(src.depth_scale) and src.depth_scale > 0,
                "source.depth_scale must be > 0 (stored value / depth_scale = metres)",
            ),
            (
                all(v is None or (math.isfinite(v) and v > 0) for v in (c.fx, c.fy)),
                "source.camera.fx and source.camera.fy must be > 0 pixels (or null)",
            ),
            (
                all(v is None or math.isfinite(v) for v in (c.cx, c.cy)),
                "source.camera.cx and source.camera.cy must be finite (or null)",
            ),
        ]
    for ok, message in table:
        if not ok:
            raise PipelineError(message)
    paths.check_name(src.split, "source.split", dots=False)
    if re.fullmatch(r"[A-Za-z0-9_]+", src.split) is None or src.split == "all":
        raise PipelineError(
            f"source.split={src.split} is not a valid split name (letters, digits, '_'; "
            f"'all' is reserved by datasets); use e.g. train or test"
        )
    paths.check_name(cfg.output.prefix, "output.prefix")
    if isinstance(src, MixConfig):
        _validate_mix(cfg, src)
    if rep.enabled:
        from pipeline.report.pictures import check

        check(rep)


def _validate_mix(cfg: Config, mix: MixConfig) -> None:
    """A mixture: its own keys, then each part's source as if it were the run's."""
    table = [
        (bool(mix.parts), "source=mix needs at least one part: source.parts.<name>"),
        (mix.num_samples is None or mix.num_samples >= 0, "source.num_samples must be >= 0"),
        (mix.seed >= 0, "source.seed must be >= 0"),
        (
            mix.depth.min == 0.0 and mix.depth.max is None,
            "source.depth.min/max: a mixture's ranges are per part; set "
            "source.parts.<name>.depth.min/max instead",
        ),
        (
            mix.canonical.focal is None or mix.canonical.focal > 0,
            "source.canonical.focal must be > 0 pixels (or null for none)",
        ),
    ]
    for ok, message in table:
        if not ok:
            raise PipelineError(message)
    for name, part in mix.parts.items():
        where = f"source.parts.{name}"
        paths.check_name(name, "a part name (source.parts.<name>)", dots=False)
        if part.weight is not None and not (math.isfinite(part.weight) and part.weight > 0):
            raise PipelineError(f"{where}.weight must be > 0 (or null: its inputs' share)")
        if part.count is not None and part.count < 0:
            raise PipelineError(f"{where}.count must be >= 0")
        if part.data_type not in [d.value for d in DataType]:
            raise PipelineError(
                f"{where}.data_type must be one of {', '.join(d.value for d in DataType)}"
            )
        if part.augment.copies not in (None, cfg.augment.copies):
            raise PipelineError(
                f"{where}.augment.copies={part.augment.copies} differs from augment.copies="
                f"{cfg.augment.copies}: a part's size is its count or weight; drop it"
            )
        try:
            no_report = ReportConfig(enabled=False)
            validate(dataclasses.replace(cfg, source=part.source, report=no_report))
        except PipelineError as exc:
            raise PipelineError(f"{where}: {exc}") from None


def augment_first(
    source_cfg: SourceConfig, augment: AugmentConfig, output: OutputConfig, source: Source
) -> None:
    """The transforms (built from the config: a bad ``_target_`` or argument fails here),
    the crop sizes against the source's image size, the sample contract after each
    transform on the first sample, and its focal length where the output format lists
    one per sample. For a mixture: each part with its own transforms and first sample."""
    from pipeline.augment.augmenter import Augmenter, known_output_size

    if isinstance(source_cfg, MixConfig):
        _augment_parts(source_cfg, augment, output, source)
        return

    augmenter = Augmenter(augment)
    needs_focal = layout_for(output.format, Path(output.dir), "").needs_focal
    if not augmenter.transforms and not needs_focal:
        return
    sample = first_sample(source, source_cfg)
    size = source.size or (sample.image.shape[:2] if sample is not None else None)
    if size is not None and augmenter.transforms:
        known_output_size(augment, int(size[0]), int(size[1]))
    if sample is not None and augmenter.transforms:
        check_contract(augmenter, sample)
    if sample is not None and needs_focal and augmenter(sample, 0, 0).camera is None:
        raise PipelineError(
            f"output={output.format} needs the focal length of every sample: source "
            f"({source_cfg.kind}) gives none for sample {sample.key}; set "
            f"source.camera.fx=... (pixels; and source.camera.fy/cx/cy if known)"
        )


def _augment_parts(
    mix: MixConfig, augment: AugmentConfig, output: OutputConfig, source: Source
) -> None:
    from pipeline.config.mixture import part_augment
    from pipeline.sources.mix import MixSource

    assert isinstance(source, MixSource)
    for name, part in mix.parts.items():
        try:
            own = part_augment(augment, mix, part)
            augment_first(part.source, own, output, source.sources[name])
        except PipelineError as exc:
            raise PipelineError(f"source.parts.{name}: {exc}") from None


def first_sample(source: Source, cfg: SourceConfig) -> Sample | None:
    """The first sample, finalized; None if it is bad (the run reports it, with
    ``runtime.on_error`` deciding whether that stops it)."""
    for item in source.iter(0, 1):
        if not isinstance(item, Sample):
            return None
        try:
            return finalize(item, cfg)[0]
        except SampleError:
            return None
    return None


def check_contract(augmenter: Augmenter, sample: Sample) -> None:
    """Apply each transform in turn (forced to apply, on a copy) to ``sample`` and refuse
    the first one whose output breaks the contract: uint8 HxWx3 image, HxW float depth.

    A transform that raises here is left to the run: it may fail on this sample only
    (a crop larger than one image), which ``runtime.on_error=skip`` can skip."""
    image, depth = sample.image, sample.depth
    for name, transform in zip(augmenter.names, augmenter.transforms):
        probe = copy.deepcopy(transform)
        _always(probe)
        try:
            out = probe(image=image, mask=depth)
        except Exception:
            return
        problem = _broken(out.get("image"), out.get("mask"))
        if problem:
            raise PipelineError(
                f"augment.transforms.{name} ({type(transform).__name__}) {problem} on the "
                f"first sample ({sample.key}): the output must stay a uint8 HxWx3 RGB image "
                f"with an HxW float depth; drop it (augment.transforms.{name}=null) or "
                f"configure it to keep uint8 RGB"
            )
        image, depth = out["image"], out["mask"]


def _always(transform: Any) -> None:
    """Make a transform (and every child of a composition) apply with probability 1."""
    if hasattr(transform, "p"):
        transform.p = 1.0
    for child in getattr(transform, "transforms", []) or []:
        _always(child)


def _broken(image: Any, depth: Any) -> str | None:
    if not isinstance(image, np.ndarray) or not isinstance(depth, np.ndarray):
        return "returns no image or depth array"
    shape = "x".join(map(str, image.shape))
    if image.dtype != np.uint8:
        return f"turns the image into {image.dtype} ({shape})"
    if image.ndim != 3 or image.shape[2] != 3:
        return f"turns the image into shape {shape}"
    if not np.issubdtype(depth.dtype, np.floating):
        return f"turns the depth into {depth.dtype}"
    if depth.shape[:2] != image.shape[:2] or (depth.ndim == 3 and depth.shape[2] != 1):
        return f"gives a depth of shape {depth.shape} for an image of shape {image.shape}"
    return None
