"""The depth of the first samples, checked before output.dir is touched: a
``source.depth_scale`` written with its old multiplying meaning (below 1 on integer depth:
always checked), a unit that looks wrong (millimetres read as metres, a scale applied
twice, nearly every value outside ``source.depth.min/max``) and a rule that would zero
most of a sample's valid depth (the range, the png16 scale) stop the run in one line naming
the source, the sample key and the key to set. ``runtime.checks.units=false`` accepts the
units; ``runtime.checks.max_dropped`` sets how much a rule may zero."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.config.schema import Config
from pipeline.config.sources import SourceConfig
from pipeline.encode.depth import depth_encoding
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Sample
from pipeline.sources import Source, finalize
from pipeline.sources.depth_scale import MEANING, old_meaning

FIRST = 3  # samples read for the check
FAR = 1000.0  # metres: a median beyond this is no camera's depth
INDOOR_MAX = 20.0  # source.depth.max at or below this marks an indoor source
INDOOR_FAR = 100.0  # metres: a median beyond this is no indoor depth
NEAR = 0.02  # metres: a median below this is no camera's depth either
OUTSIDE = 0.9  # share of measured pixels outside source.depth.min/max that stops the run
ACCEPT = "or runtime.checks.units=false to accept the values as they are"


@dataclass
class Look:
    """What the check sees of one sample: its raw dtype, the measured values in metres
    (positive and finite, before the range) and how many the range zeroed."""

    key: str
    dtype: np.dtype
    measured: np.ndarray
    out_of_range: int


def check_first(cfg: Config, source: Source, n_inputs: int) -> None:
    """The scale's meaning, units and drops on the first samples of the source, or of every
    part of a mixture (each with its own scale and range; bad samples are left to the run)."""
    checks = cfg.runtime.checks
    parts = getattr(cfg.source, "parts", None) or {"": None}
    looked: dict[str, int] = {}
    for item in source.iter(0, min(FIRST * len(parts), n_inputs)):
        if not isinstance(item, Sample):
            continue
        part = item.origin.dataset
        if looked.get(part, 0) >= FIRST:
            continue
        looked[part] = looked.get(part, 0) + 1
        part_cfg = cfg.source.part(part)
        old = old_meaning(part_cfg.scale, np.asarray(item.depth).dtype)
        if old:
            raise PipelineError(_in_part(f"{_where(part_cfg, item.key)}: {old}", part))
        if not checks.units and checks.max_dropped >= 1:
            continue
        try:
            sample, counts = finalize(item, cfg.source, plausible=False)
        except SampleError:
            continue
        look = _look(item, sample, counts.out_of_range, part_cfg)
        problem = units_problem(look, part_cfg) if checks.units else None
        problem = problem or drop_problem(look, sample, cfg, part_cfg)
        if problem:
            raise PipelineError(_in_part(problem, part))


def _in_part(line: str, part: str) -> str:
    """A mixture part's keys live under ``source.parts.<part>``."""
    if not part:
        return line
    line = line.replace("source.depth_scale", f"source.parts.{part}.source.depth_scale")
    line = line.replace("source.depth.min/max", f"source.parts.{part}.depth.min/max")
    return line.replace("source (", f"source.parts.{part} (", 1)


def _look(raw: Sample, sample: Sample, out_of_range: int, cfg: SourceConfig) -> Look:
    depth = np.asarray(raw.depth)
    scaled = depth.astype(np.float32) / np.float32(cfg.scale)
    with np.errstate(invalid="ignore"):
        measured = scaled[np.isfinite(scaled) & (scaled > 0)]
    return Look(sample.key, depth.dtype, measured, out_of_range)


def _where(cfg: SourceConfig, key: str) -> str:
    return f"source ({cfg.kind}) sample {key}"


def units_problem(look: Look, cfg: SourceConfig) -> str | None:
    """One line when the depth of ``look`` is implausible for ``cfg``'s scale and range."""
    if not look.measured.size:
        return None
    median = float(np.median(look.measured))
    lo, hi = float(look.measured.min()), float(look.measured.max())
    seen = f"depth {lo:.4g}..{hi:.4g} m, median {median:.4g} m"
    mm = "looks like millimetres: set source.depth_scale=1000 (KITTI's x256 PNG: 256)"
    where = _where(cfg, look.key)
    if np.issubdtype(look.dtype, np.integer) and cfg.scale == 1.0:
        hint = mm if median > INDOOR_FAR else f"set source.depth_scale ({MEANING})"
        return (
            f"{where}: integer depth ({look.dtype}) read with source.depth_scale=1 gives "
            f"{seen}; {hint}, {ACCEPT}"
        )
    indoor = cfg.depth.max is not None and cfg.depth.max <= INDOOR_MAX
    if median > FAR or (indoor and median > INDOOR_FAR):
        return f"{where}: {seen}; {mm}, {ACCEPT}"
    if median < NEAR:
        return (
            f"{where}: {seen}; looks like a scale applied twice: check source.depth_scale "
            f"(now {cfg.scale:g}; 1.0 for depth already in metres), {ACCEPT}"
        )
    share = look.out_of_range / look.measured.size
    if share > OUTSIDE:
        top = "inf" if cfg.depth.max is None else f"{cfg.depth.max:g}"
        return (
            f"{where}: {share:.0%} of the measured depth ({seen}) is outside "
            f"source.depth.min/max = {cfg.depth.min:g}..{top} m; check source.depth_scale "
            f"(now {cfg.scale:g}) and source.depth.min/max, {ACCEPT}"
        )
    return None


def drop_problem(
    look: Look, sample: Sample, cfg: Config, source: SourceConfig | None = None
) -> str | None:
    """One line when the range or the png16 scale zeroes more than
    ``runtime.checks.max_dropped`` of the measured depth of this sample."""
    limit = cfg.runtime.checks.max_dropped
    measured = look.measured.size
    if limit >= 1 or not measured:
        return None
    accept = "runtime.checks.max_dropped=1 writes it anyway"
    source = source or cfg.source
    where = _where(source, look.key)
    pixels = sample.depth.size
    if look.out_of_range / measured > limit:
        top = "inf" if source.depth.max is None else f"{source.depth.max:g}"
        return (
            f"{where}: source.depth.min/max = {source.depth.min:g}..{top} m zeroes "
            f"{look.out_of_range / pixels:.0%} of the depth pixels "
            f"({look.out_of_range / measured:.0%} of the measured ones); widen "
            f"source.depth.min/max (null max: no limit), or {accept}"
        )
    encoding = depth_encoding(cfg.output)
    if not encoding.scaled:
        return None
    scale = encoding.scale
    encoded = encoding.encode(sample.depth)
    valid = int(np.count_nonzero(sample.depth > 0))
    lost = encoded.too_far + encoded.too_near
    if valid and lost / valid > limit:
        return (
            f"{where}: output.depth.scale={scale:g} zeroes {lost / pixels:.0%} of the depth "
            f"pixels ({lost / valid:.0%} of the valid ones): 16-bit PNG holds "
            f"{0.5 / scale:.3g}..{65535 / scale:.3g} m at this scale; set output.depth.scale "
            f"to at most {math.floor(65535 / float(sample.depth.max())):g} (1000 = mm, "
            f"256 = KITTI) or output.depth.format=tiff, or {accept}"
        )
    return None
