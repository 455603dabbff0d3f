"""Typed configuration schemas, registered in Hydra's ConfigStore.

Every YAML file under ``conf/`` is merged onto these dataclasses, so a typo'd key or a
wrongly typed value fails before any work, naming the key. Each source kind has its own
schema (``conf/source/<preset>.yaml`` starts from ``/schema/source/<kind>``), so a key the
chosen source does not have is refused too. ``to_config`` converts the DictConfig at the
boundary; nothing past it sees OmegaConf.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

# ---- sources: one schema per kind -----------------------------------------------------


@dataclass
class Columns:
    """Which source fields hold the image, the depth map and an optional validity mask.

    hub: column names. webdataset: member extensions, alternatives separated by ``|``
    (the first one present wins). nyu_mat: HDF5 dataset names. Mask: nonzero = valid.
    """

    image: str = "image"
    depth: str = "depth_map"
    mask: str | None = None


@dataclass
class DepthRange:
    """Valid depth range in metres; values outside become 0 (invalid)."""

    min: float = 0.0
    max: float | None = None


@dataclass
class SourceConfig:
    """What every source kind shares. ``impl`` names the class in ``pipeline/sources``."""

    impl: ClassVar[str] = ""
    kind: str = MISSING
    split: str = "train"
    limit: int | None = None
    depth: DepthRange = field(default_factory=DepthRange)

    @property
    def scale(self) -> float:
        """Raw depth value x scale = metres."""
        return 1.0


@dataclass
class SyntheticConfig(SourceConfig):
    """Built-in procedural rooms: ``num_samples`` scenes of ``height`` x ``width``."""

    impl: ClassVar[str] = "pipeline.sources.synthetic:SyntheticSource"
    kind: str = "synthetic"
    num_samples: int = 64
    seed: int = 0
    height: int = 480
    width: int = 640


@dataclass
class FileSourceConfig(SourceConfig):
    """Sources read from ``path`` (a file, a directory, a glob or a hub repo id)."""

    path: str = MISSING
    depth_scale: float = 1.0  # raw depth value x depth_scale = metres (0.001 mm, 1/256 KITTI)

    @property
    def scale(self) -> float:
        return self.depth_scale


@dataclass
class HubConfig(FileSourceConfig):
    """Hugging Face ``datasets``: a repo id, local parquet, ``data_files`` or save_to_disk."""

    impl: ClassVar[str] = "pipeline.sources.hub:HubSource"
    kind: str = "hub"
    name: str | None = None  # config name
    revision: str | None = None  # branch, tag or commit (pin a commit)
    streaming: bool = False
    data_files: Any | None = None
    cache_dir: str | None = None  # non-streaming Arrow cache (default: HF_DATASETS_CACHE)
    columns: Columns = field(default_factory=Columns)


@dataclass
class WebdatasetConfig(FileSourceConfig):
    """Webdataset tars: ``columns`` are member extensions, alternatives split by ``|``."""

    impl: ClassVar[str] = "pipeline.sources.webdataset:WebdatasetSource"
    kind: str = "webdataset"
    columns: Columns = field(
        default_factory=lambda: Columns(
            "png|jpg|jpeg", "depth.tiff|depth.tif|depth.png|depth.npy", None
        )
    )


@dataclass
class FolderConfig(FileSourceConfig):
    """Image / depth file pairs. ``image_glob`` under ``path``; ``depth_path`` and
    ``mask_path`` are templates with {rel} (path without extension), {dir}, {stem},
    {name}, {ext} of the image relative to ``path`` and the named groups of
    ``image_regex`` (a group ``key`` becomes the sample key, default {rel})."""

    impl: ClassVar[str] = "pipeline.sources.folder:FolderSource"
    kind: str = "folder"
    image_glob: str = "**/*.png"
    image_regex: str | None = None
    depth_path: str = "{rel}.depth.tiff"
    mask_path: str | None = None
    unpaired: str = "error"  # image without depth file: error (a sample error) | drop


@dataclass
class NyuMatConfig(FileSourceConfig):
    """The official NYU Depth v2 labeled ``.mat``; ``columns`` are HDF5 dataset names."""

    impl: ClassVar[str] = "pipeline.sources.nyu_mat:NyuMatSource"
    kind: str = "nyu_mat"
    columns: Columns = field(default_factory=lambda: Columns("images", "depths", None))


SOURCE_SCHEMAS: dict[str, type[SourceConfig]] = {
    cls().kind: cls
    for cls in (SyntheticConfig, HubConfig, WebdatasetConfig, FolderConfig, NyuMatConfig)
}

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
    ``pipeline/report/pictures.py`` (null = all of them)."""

    enabled: bool = True
    rows: int = 3
    cols: int = 3
    before_after_rows: int = 4
    copies_rows: int = 3
    plots: list[str] | None = None
    colormap: str = "viridis"
    invalid_color: str = "magenta"
    depth_min: float | None = None
    depth_max: float | None = None
    dpi: int = 100


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
