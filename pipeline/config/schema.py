"""Typed configuration schemas, registered in Hydra's ConfigStore.

Every YAML file under ``conf/`` is merged onto these dataclasses, so a typo'd key or a
wrongly typed value fails before any work, naming the key. Each source kind has its own
schema (``pipeline/config/sources.py``; ``conf/source/<preset>.yaml`` starts from
``/schema/source/<kind>``), so a key the chosen source does not have is refused too.
``to_config`` converts the DictConfig at the boundary; nothing past it sees OmegaConf.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.config.choices import (
    CameraMode,
    DepthFormat,
    ImageFormat,
    OnError,
    OutputFormat,
    OutputOrder,
    TiffCompression,
)
from pipeline.config.datasets import SOURCE_KINDS
from pipeline.config.dirname import dirname
from pipeline.config.scales import part_scales, png16_scale
from pipeline.config.sources import MixConfig, SourceConfig

# ---- augmentation, output, runtime, slices, report ------------------------------------


@dataclass
class AugmentConfig:
    """Ordered mapping name -> albumentations spec; depth is always the ``mask`` target.
    ``camera``: track (the camera follows every transform; what a pinhole K cannot express
    is marked approximate, with the homography) | strict (such transforms are refused)."""

    seed: int = 0
    copies: int = 1
    camera: CameraMode = CameraMode.track
    transforms: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImageCodec:
    """The RGB image: ``png`` (lossless; ``level`` 0 = no compression .. 9 = smallest) or
    ``jpg`` (lossy; ``quality`` 1..100), for trainers whose loaders expect JPEG."""

    format: ImageFormat = ImageFormat.png
    level: int = 1
    quality: int = 95


@dataclass
class DepthCodec:
    """The depth map: ``tiff`` = float32 metres (compression none|zlib|lzw, predictor
    1 none / 3 float), or ``png16`` = uint16 round(metres x ``scale``), 0 = invalid, the
    trainers' format (null scale = the source's own integer scale, e.g. 256 for KITTI,
    else 1000 = millimetres; resolved by ``to_config``), or ``npy`` = float32 metres
    (``numpy.load``). The encodings themselves: ``pipeline.encode.depth``."""

    format: DepthFormat = DepthFormat.tiff
    scale: float | None = None
    compression: TiffCompression = TiffCompression.none
    level: int | None = None
    predictor: int = 1


@dataclass
class OutputConfig:
    """Where and how the dataset is written; ``format`` picks the layout, ``order`` where
    the copies of one input go."""

    dir: str = "outputs/datasets/default"
    format: OutputFormat = OutputFormat.webdataset
    prefix: str = "${source.split}"
    shard_size: int = 32
    order: OutputOrder = OutputOrder.spread
    overwrite: bool = False
    # several splits in one dataset (output=parquet): this run writes {dir}/{source.split}/
    # and the top card and dataset_info.json describe every finished split
    splits: bool = False
    image: ImageCodec = field(default_factory=ImageCodec)
    depth: DepthCodec = field(default_factory=DepthCodec)
    # a URL output.dir (s3://bucket/prefix, any fsspec URL): passed to the filesystem as
    # given, the endpoint of an S3-compatible store (else AWS_ENDPOINT_URL), and where
    # shards wait for their upload (default: the system's temporary directory), and after
    # how many seconds without a rewrite a run's lock there is taken over.
    # storage_options: a mapping, typed Any so that Hydra's struct mode takes new keys
    # (`output.storage_options='{profile: lab}'`)
    storage_options: Any = None
    endpoint_url: str | None = None
    staging_dir: str | None = None
    lock_stale_s: float = 600.0


@dataclass
class ChecksConfig:
    """Data checks before and after writing (``pipeline.checks.units``, ``pipeline.checks.drops``).

    ``units``: stop when the first samples' depth looks like the wrong unit (false
    accepts it). ``warn_dropped``: the summary names every rule (a depth range, the png16
    scale) that zeroed more than this share of the run's valid depth pixels;
    ``max_dropped``: above this share on one of the first samples the run stops before
    writing (1 = never)."""

    units: bool = True
    warn_dropped: float = 0.01
    max_dropped: float = 0.5


@dataclass
class RuntimeConfig:
    """How the run executes; none of these keys change the output bytes."""

    workers: int = 0
    on_error: OnError = OnError["raise"]
    progress: bool = True
    max_in_flight: int = 0
    checks: ChecksConfig = field(default_factory=ChecksConfig)


@dataclass
class ShardConfig:
    """Contiguous slice ``index`` of ``num_shards`` for runs spread over many jobs."""

    index: int = 0
    num_shards: int = 1


@dataclass
class ReportConfig:
    """The report under ``output.dir/report``; ``plots`` picks pictures by name from
    ``pipeline/report/pictures.py`` (null = all of them). Checked before the run by
    ``pipeline.report.colors.check``."""

    enabled: bool = True
    rows: int = 3
    cols: int = 3
    before_after_rows: int = 4
    copies_rows: int = 3
    plots: list[str] | None = None
    colormap: str = "viridis"
    invalid_color: str = "grey"
    depth_min: float | None = None
    depth_max: float | None = None
    sparse_below: float = 0.5
    cell_width: int = 256
    dpi: int = 100
    embed: bool = False


@dataclass
class Config:
    """The whole run."""

    source: SourceConfig = field(default_factory=SourceConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)


def register() -> None:
    """Store the schemas so ``conf/config.yaml`` and the group files merge onto them.
    (Hydra is imported here, not with the schemas: workers use the schemas only.)"""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="schema", node=Config)
    for kind, schema in SOURCE_KINDS.items():
        store.store(group="schema/source", name=kind, node=schema)
    OmegaConf.register_new_resolver("dirname", dirname, replace=True)


def source_kind_of(schema: type) -> str | None:
    """The source kind whose schema is ``schema`` (for messages), else None."""
    return next((k for k, s in SOURCE_KINDS.items() if s is schema), None)


def to_config(cfg: DictConfig | Config | dict[str, Any]) -> Config:
    """Resolve a DictConfig (or its plain dict, e.g. from ``dataset_info.json``) into typed
    dataclasses; transform specs become plain dicts.

    Re-merging onto the schema of the chosen source kind also rejects keys force-added
    with ``+`` that the schema does not know; errors come out as one ``PipelineError`` line.
    """
    from omegaconf.errors import OmegaConfBaseException

    from pipeline.errors import PipelineError

    if isinstance(cfg, Config):
        return cfg
    try:
        if isinstance(cfg, DictConfig):
            _check_kind(cfg)
            plain = OmegaConf.to_container(cfg, resolve=True)
        else:
            plain = cfg
        assert isinstance(plain, dict)
        plain = {k: v for k, v in plain.items() if k != "hydra"}
        kind = (plain.get("source") or {}).get("kind", "synthetic")
        schema = SOURCE_KINDS.get(kind)
        if schema is None:
            raise PipelineError(
                f"source.kind={kind!r} is unknown; choose one of: {', '.join(SOURCE_KINDS)}"
            )
        base = OmegaConf.structured(Config)
        base.source = OmegaConf.structured(schema)
        obj = OmegaConf.to_object(OmegaConf.merge(base, plain))
        assert isinstance(obj, Config)
        if isinstance(obj.source, MixConfig):
            _type_parts(obj.source, obj.output.shard_size)
    except OmegaConfBaseException as exc:
        raise config_error(exc) from None
    assert isinstance(obj, Config)
    _derive_defaults(obj)
    return obj


def config_error(exc: Exception, where: str = "") -> Exception:
    """An OmegaConf error as a one-line ``PipelineError``: its key (under ``where``; else
    ``where``, else "config") and the first line of its message."""
    from pipeline.errors import PipelineError

    key = getattr(exc, "full_key", "") or ""
    msg = " ".join(str(getattr(exc, "msg", exc)).splitlines()[0].split())
    return PipelineError(f"{'.'.join(p for p in (where, key) if p) or 'config'}: {msg}")


def unknown_source_key(parent: str, leaf: str, kind: str, known: list[str]) -> str:
    """A key the source at ``parent`` (``source``, ``source.parts.<part>.source``) does
    not have, with the nearest key it has."""
    near = difflib.get_close_matches(leaf, known, n=1)
    hint = f"did you mean {parent}.{near[0]}? " if near else ""
    return (
        f"{parent}.{leaf}: the {kind} source has no key {leaf!r} ({hint}its keys: "
        f"{', '.join(known)}); see depth-pipeline --help"
    )


def _type_parts(mix: MixConfig, shard_size: int) -> None:
    """Each part's ``source`` mapping merged onto its kind's schema (a key that kind does
    not have is refused, named ``source.parts.<name>.source.<key>``), the part's depth
    range over the source's, and the shard size the parts are interleaved in."""
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

    from pipeline.errors import PipelineError

    mix.shard_size = shard_size
    for name, part in mix.parts.items():
        where = f"source.parts.{name}.source"
        src = part.source
        if isinstance(src, SourceConfig):
            continue
        kind = src.get("kind") if isinstance(src, dict) else None
        schema = SOURCE_KINDS.get(kind) if isinstance(kind, str) else None
        if schema is None or schema is MixConfig:
            kinds = ", ".join(k for k in SOURCE_KINDS if k != "mix")
            raise PipelineError(
                f"{where}.kind={kind!r}: a part needs a source mapping whose kind is one of "
                f"{kinds} (e.g. +source@source.parts.{name}.source=kitti)"
            )
        try:
            typed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), src))
        except ConfigKeyError as exc:  # a key the part's source kind does not have
            leaf = str(getattr(exc, "full_key", "") or exc).rpartition(".")[2]
            known = list(OmegaConf.structured(schema))
            raise PipelineError(unknown_source_key(where, leaf, kind, known)) from None
        except OmegaConfBaseException as exc:
            raise config_error(exc, where) from None
        assert isinstance(typed, SourceConfig)
        if part.depth.min is not None:
            typed.depth.min = part.depth.min
        if part.depth.max is not None:
            typed.depth.max = part.depth.max
        part.source = typed


def _derive_defaults(cfg: Config) -> None:
    """Fill keys whose default depends on others: the png16 depth scale is the source's
    own integer scale when it reads one (KITTI x256, millimetre PNGs x1000), else 1000;
    a mixture's is the smallest of its parts'."""
    depth = cfg.output.depth
    explicit = depth.scale is not None
    fmt = OutputFormat(cfg.output.format)
    if DepthFormat(depth.format).integer and depth.scale is None:
        depth.scale = min(png16_scale(s) for s in _sources(cfg.source))
    if isinstance(cfg.source, MixConfig) and DepthFormat(depth.format).integer:
        part_scales(cfg.source, str(fmt), depth.scale, fmt.scale_per_part, own=not explicit)


def _sources(source: SourceConfig) -> list[SourceConfig]:
    """The sources a run reads: a mixture's parts, else the one."""
    if isinstance(source, MixConfig):
        return [p.source for p in source.parts.values()] or [source]
    return [source]


def _check_kind(cfg: DictConfig) -> None:
    """``source.kind`` must be the kind of the source preset's schema."""
    from pipeline.errors import PipelineError

    node = cfg.get("source")
    expected = source_kind_of(OmegaConf.get_type(node)) if node is not None else None
    kind = OmegaConf.select(cfg, "source.kind", default=None)
    if expected is not None and kind != expected:
        raise PipelineError(
            f"source.kind={kind}: this preset is a {expected} source; choose the source "
            f"with source=<preset> (e.g. source={kind}) instead of changing source.kind"
        )
