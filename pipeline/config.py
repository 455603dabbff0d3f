"""Typed configuration schemas, registered in Hydra's ConfigStore.

Every YAML file under ``conf/`` is merged onto these dataclasses, so a typo'd key or a
wrongly typed value fails before any work, naming the key. ``to_config`` converts the
DictConfig at the boundary; nothing past it sees OmegaConf.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf


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
    """Where samples come from. ``kind`` picks the module in ``pipeline/sources``:
    synthetic | hub | webdataset | folder | nyu_mat (presets in ``conf/source/``)."""

    kind: str = "synthetic"
    split: str = "train"
    limit: int | None = None
    depth_scale: float = 1.0  # raw depth value x depth_scale = metres (0.001 mm, 1/256 KITTI)
    depth: DepthRange = field(default_factory=DepthRange)
    columns: Columns = field(default_factory=Columns)
    # synthetic
    num_samples: int = 64
    seed: int = 0
    height: int = 480
    width: int = 640
    # file, directory and hub sources: where the data is (a hub repo id for kind=hub)
    path: str | None = None
    # hub: config name, pinned revision (branch, tag or commit), streaming, data_files glob(s)
    name: str | None = None
    revision: str | None = None
    streaming: bool = False
    data_files: Any | None = None
    cache_dir: str | None = None  # hub, non-streaming: Arrow cache (default: HF_DATASETS_CACHE)
    # folder: image glob under ``path``; templates for the depth / mask file of each image.
    # Fields: {rel} (path without extension), {dir}, {stem}, {name}, {ext} of the image
    # relative to ``path``, plus the named groups of ``image_regex``; a group named ``key``
    # becomes the sample key (default: {rel}). Relative results are under ``path``.
    image_glob: str = "**/*.png"
    image_regex: str | None = None
    depth_path: str = "{rel}.depth.tiff"
    mask_path: str | None = None
    unpaired: str = "error"  # image without depth file: error (a sample error) | drop (listed)


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
    """Where and how the dataset is written."""

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
    """The report under ``output.dir/report``: index.html, stats.json, pictures, plots."""

    enabled: bool = True
    rows: int = 3
    cols: int = 3
    before_after_rows: int = 4
    copies_rows: int = 3
    plots: list[str] = field(
        default_factory=lambda: [
            "depth_hist",
            "invalid_fraction",
            "rgb_hist",
            "params",
            "param_corr",
        ]
    )
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
    """Store the schema so ``conf/config.yaml`` and the group files merge onto it."""
    ConfigStore.instance().store(name="schema", node=Config)
    OmegaConf.register_new_resolver("dirname", dirname, replace=True)


def to_config(cfg: DictConfig | Config) -> Config:
    """Resolve a DictConfig into plain typed dataclasses (transform specs become dicts).

    Re-merging onto the schema also rejects keys force-added with ``+`` that the schema
    does not know (``+foo=1``); errors come out as one ``PipelineError`` line.
    """
    from omegaconf.errors import OmegaConfBaseException

    from pipeline.errors import PipelineError

    if isinstance(cfg, Config):
        return cfg
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(plain, dict)
        plain = {k: v for k, v in plain.items() if k != "hydra"}
        obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), plain))
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or "config"
        msg = " ".join(str(getattr(exc, "msg", exc)).splitlines()[0].split())
        raise PipelineError(f"{key}: {msg}") from None
    assert isinstance(obj, Config)
    return obj
