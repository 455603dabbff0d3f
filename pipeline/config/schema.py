"""Typed configuration schemas, registered in Hydra's ConfigStore.

Every YAML file under ``conf/`` is merged onto these dataclasses, so a typo'd key or a
wrongly typed value fails before any work, naming the key. Each source kind has its own
schema (``pipeline/config/sources.py``; ``conf/source/<preset>.yaml`` starts from
``/schema/source/<kind>``), so a key the chosen source does not have is refused too.
``to_config`` converts the DictConfig at the boundary; nothing past it sees OmegaConf.
"""

from __future__ import annotations

import hashlib
import re
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
from pipeline.config.sources import SOURCE_SCHEMAS, SourceConfig

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
    else 1000 = millimetres; resolved by ``to_config``)."""

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
    image: ImageCodec = field(default_factory=ImageCodec)
    depth: DepthCodec = field(default_factory=DepthCodec)


@dataclass
class ChecksConfig:
    """Data checks before and after writing (``pipeline.run.units``, ``pipeline.run.drops``).

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


# One override `key=value` whose name is its plain transliteration ('=' -> '-', ',' -> '_'):
# neither part contains '-' and values contain no '_', so the name can be read back.
_PLAIN_ITEM = r"[A-Za-z0-9_.]+=[A-Za-z0-9.]+"
_PLAIN = re.compile(rf"{_PLAIN_ITEM}(,{_PLAIN_ITEM})*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_DIRNAME = 120


def dirname(overrides: str) -> str:
    """A readable, shell-safe directory name for Hydra's ``override_dirname`` ("default"
    when there are none): only ``A-Za-z0-9._-``, the same for the same overrides (resume),
    different for different ones.

    ``a=1,b=x`` becomes ``a-1_b-x``; that mapping can be read back when every key and
    value is plain (letters, digits, ``.``; keys also ``_``). Anything else (paths, quotes,
    lists, ``+``/``~``, negative numbers) is transliterated for reading and gets ``--`` and
    a hash of the exact overrides, which a plain name never contains; names longer than
    ``MAX_DIRNAME`` are cut before the hash.
    """
    if not overrides:
        return "default"
    if _PLAIN.fullmatch(overrides) and len(overrides) <= MAX_DIRNAME:
        return overrides.replace("=", "-").replace(",", "_")
    digest = hashlib.sha256(overrides.encode()).hexdigest()[:10]
    readable = _UNSAFE.sub("_", "_".join(_readable(item) for item in _items(overrides)))
    readable = readable.strip("_.-")[: MAX_DIRNAME - len(digest) - 2].rstrip("_.-")
    return f"{readable}--{digest}" if readable else digest


def _items(overrides: str) -> list[str]:
    """``override_dirname`` split at the commas between overrides (not inside [] or {})."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(overrides):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth <= 0:
            items.append(overrides[start:i])
            start = i + 1
    return [*items, overrides[start:]]


def _readable(item: str) -> str:
    """One override for reading: ``~key`` -> ``key-deleted``; ``+``, quotes and brackets
    dropped; ``=`` -> ``-``; list commas -> ``-``; ``/`` and the rest -> ``_``."""
    if item.startswith("~"):
        return item.lstrip("~").split("=")[0] + "-deleted"
    key, _, value = item.lstrip("+").partition("=")
    value = re.sub(r"[\[\]{}()'\" ]", "", value).replace(",", "-").replace("/", "_")
    return f"{key}-{value}"


def register() -> None:
    """Store the schemas so ``conf/config.yaml`` and the group files merge onto them.
    (Hydra is imported here, not with the schemas: workers use the schemas only.)"""
    from hydra.core.config_store import ConfigStore

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
    _derive_defaults(obj)
    return obj


def _derive_defaults(cfg: Config) -> None:
    """Fill keys whose default depends on others: the png16 depth scale is the source's
    own integer scale when it reads one (KITTI x256, millimetre PNGs x1000), else 1000."""
    depth = cfg.output.depth
    if depth.format == "png16" and depth.scale is None:
        source_scale = cfg.source.scale
        depth.scale = round(1.0 / source_scale, 6) if 0 < source_scale < 1 else 1000.0


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
