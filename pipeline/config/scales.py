"""16-bit PNG depth scales (stored value / scale = metres): a source's own integer scale,
and each part of a mixture's (``source.parts.<part>.depth.scale``), derived by
``config.schema.to_config`` when not set."""

from __future__ import annotations

from pipeline.config.sources import MixConfig, SourceConfig


def png16_scale(source: SourceConfig) -> float:
    """A source's own integer depth scale, else 1000 (a mixture takes its parts' smallest:
    KITTI's 256 keeps its 80 m within 16 bits, at 4 mm steps for the other parts)."""
    return source.scale if source.scale > 1 else 1000.0


def part_scales(mix: MixConfig, fmt: str, scale: float | None, per_part: bool, own: bool) -> None:
    """Each part's png16 scale: where the output format holds one per part (``per_part``:
    ``output=filelist``) the part's own integer scale (``own``: no explicit
    ``output.depth.scale``) or the one set; elsewhere the output's ``scale``, and a part
    scale that differs from it is refused (those formats hold one scale)."""
    from pipeline.errors import PipelineError

    for name, part in mix.parts.items():
        if part.depth.scale is None:
            mine = own and per_part and isinstance(part.source, SourceConfig)
            part.depth.scale = png16_scale(part.source) if mine else scale
        elif not per_part and part.depth.scale != scale:
            raise PipelineError(
                f"source.parts.{name}.depth.scale={part.depth.scale:g}: output={fmt} holds "
                f"one depth scale for every part (output.depth.scale={scale:g}); use "
                f"output=filelist for a scale per part, or drop the override"
            )
