"""Depth a rule turned into 0 (invalid), said in the run's summary: the range
(``source.depth.min/max``; a mixture's ``source.parts.<part>.depth.min/max``), the png16
scale (``output.depth.scale``) and the contract's
NaN / inf / negative values, each when it zeroed more than ``runtime.checks.warn_dropped``
of the run's measured depth pixels, with the share and the key to change. (Above
``runtime.checks.max_dropped`` on a first sample the run stops before writing:
``pipeline.checks.units``.)"""

from __future__ import annotations

from pipeline.config.schema import Config
from pipeline.config.sources import DepthRange, MixConfig, SourceConfig
from pipeline.dataset.records import DatasetInfo
from pipeline.encode.depth import depth_encoding


def lines(info: DatasetInfo, cfg: Config) -> list[str]:
    """One line per rule that zeroed more than the warning share (none below it)."""
    bad = info.invalid_pixels
    stats = info.stats
    pixels = int(stats.get("pixels") or 0)
    if not pixels:
        return []
    valid = round(pixels * (1.0 - float(stats.get("invalid_fraction") or 0.0)))
    png16 = bad.png16_too_far + bad.png16_too_near
    measured = valid + bad.out_of_range + png16
    warn = cfg.runtime.checks.warn_dropped
    out = []

    def share(n: int) -> str:
        return f"{n / pixels:.1%} of the depth pixels ({n / max(measured, 1):.1%} of the measured)"

    if bad.out_of_range and bad.out_of_range > warn * measured:
        ranges = _ranges(cfg.source)
        keys = " or ".join(dict.fromkeys(k for k, _ in ranges))
        spans = ", ".join(f"{k} = {span} m" for k, span in ranges)
        out.append(
            f"note: {spans} zeroed {share(bad.out_of_range)}; widen {keys} if those are "
            f"real measurements"
        )
    if png16 and png16 > warn * measured:
        scale = depth_encoding(cfg.output).scale
        out.append(
            f"note: output.depth.scale={scale:g} zeroed {share(png16)} ({bad.png16_too_far} "
            f"farther than {65535 / scale:.4g} m, {bad.png16_too_near} nearer than "
            f"{0.5 / scale:.3g} m); change output.depth.scale or use output.depth.format=tiff"
        )
    broken = bad.nonfinite + bad.negative
    if broken and broken > warn * (measured + broken):
        out.append(
            f"note: {broken / pixels:.1%} of the depth pixels were NaN, inf or negative in the "
            f"source ({bad.nonfinite} not finite, {bad.negative} negative) and are written as "
            f"0 (invalid); check the source's depth files and source.depth_scale"
        )
    return out


def _ranges(source: SourceConfig) -> list[tuple[str, str]]:
    """(key, ``min..max``) of the depth ranges that can zero depth: a mixture's parts
    that set one (``source.parts.<part>.depth.min/max``), else ``source.depth.min/max``."""

    def span(rng: DepthRange) -> str:
        return f"{rng.min:g}..{'inf' if rng.max is None else f'{rng.max:g}'}"

    if isinstance(source, MixConfig):
        parts = [
            (f"source.parts.{name}.depth.min/max", span(part.source.depth))
            for name, part in source.parts.items()
            if isinstance(part.source, SourceConfig)
            and (part.source.depth.min > 0 or part.source.depth.max is not None)
        ]
        if parts:
            return parts
    return [("source.depth.min/max", span(source.depth))]
