"""Typed configuration schemas, registered in Hydra's ConfigStore.

Every YAML file under ``conf/`` is merged onto these dataclasses, so a typo'd key or a
wrongly typed value fails before any work, naming the key. Each source kind has its own
schema (``pipeline/source_config.py``; ``conf/source/<preset>.yaml`` starts from
``/schema/source/<kind>``), so a key the chosen source does not have is refused too.
``to_config`` converts the DictConfig at the boundary; nothing past it sees OmegaConf.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from pipeline.source_config import SOURCE_SCHEMAS, SourceConfig

# ---- augmentation, output, runtime, slices, report ------------------------------------


@dataclass
class AugmentConfig:
    """Ordered mapping name -> albumentations spec; depth is always the ``mask`` target."""

    seed: int = 0
    copies: int = 1
    transforms: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImageCodec:
    """PNG settings for the RGB image (0 = no compression .. 9 = smallest)."""

    level: int = 1


@dataclass
class DepthCodec:
    """Float32 TIFF settings: compression none|zlib|zstd|lzw, predictor 1 none / 3 float."""

    compression: str = "none"
    level: int | None = None
    predictor: int = 1


@dataclass
class OutputConfig:
    """Where and how the dataset is written; ``format`` picks the layout."""

    dir: str = "outputs/datasets/default"
    format: str = "webdataset"
    prefix: str = "${source.split}"
    shard_size: int = 32
    overwrite: bool = False
    image: ImageCodec = field(default_factory=ImageCodec)
    depth: DepthCodec = field(default_factory=DepthCodec)


@dataclass
class RuntimeConfig:
    """How the run executes; none of these keys change the output bytes."""

    workers: int = 0
    on_error: str = "raise"
    progress: bool = True
    max_in_flight: int = 0


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


def dirname(overrides: str) -> str:
    """A directory name for a set of overrides ("default" when there are none)."""
    # brackets/braces are glob or brace-expansion syntax to datasets, fsspec and webdataset
    table = str.maketrans({"/": "_", " ": None, "[": "(", "]": ")", "{": "(", "}": ")"})
    name = overrides.translate(table) or "default"
    if len(name) > 120:
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        name = f"{name[:100]}...{digest}"
    return name


def register() -> None:
    """Store the schemas so ``conf/config.yaml`` and the group files merge onto them."""
    store = ConfigStore.instance()
    store.store(name="schema", node=Config)
    for kind, schema in SOURCE_SCHEMAS.items():
        store.store(group="schema/source", name=kind, node=schema)
    OmegaConf.register_new_resolver("dirname", dirname, replace=True)


def source_kind_of(schema: type) -> str | None:
    """The source kind whose schema is ``schema`` (for messages), else None."""
    return next((k for k, s in SOURCE_SCHEMAS.items() if s is schema), None)


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
        schema = SOURCE_SCHEMAS.get(kind)
        if schema is None:
            raise PipelineError(
                f"source.kind={kind!r} is unknown; choose one of: {', '.join(SOURCE_SCHEMAS)}"
            )
        base = OmegaConf.structured(Config)
        base.source = OmegaConf.structured(schema)
        obj = OmegaConf.to_object(OmegaConf.merge(base, plain))
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or "config"
        msg = " ".join(str(getattr(exc, "msg", exc)).splitlines()[0].split())
        raise PipelineError(f"{key}: {msg}") from None
    assert isinstance(obj, Config)
    return obj


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
