"""One structured-config schema per source kind, registered as ``/schema/source/<kind>``.

Each schema names its implementation (``impl``, a class in ``pipeline/sources``), so a
new source = its module + one schema here (added to ``SOURCE_SCHEMAS``) + a YAML preset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from pipeline.config import urls
from pipeline.config.choices import CanonicalMode, DataType
from pipeline.sample import Camera


@dataclass
class Columns:
    """Which source fields hold the image, the depth map, an optional validity mask and an
    optional camera.

    hub: column names. webdataset: member extensions, alternatives separated by ``|``
    (the first one present wins). nyu_mat: HDF5 dataset names. Mask: nonzero = valid.
    Camera (hub, webdataset): a field holding {fx, fy, cx, cy} (or this tool's ``camera``
    object, Metric3D's ``cam_in``), [fx, fy, cx, cy], a 3x3 K, a 3x4 P or one focal
    length; hub also takes comma-separated columns "fx,fy,cx,cy" (or "fx,fy", "focal").
    """

    image: str = "image"
    depth: str = "depth_map"
    mask: str | None = None
    camera: str | None = None


@dataclass
class DepthRange:
    """Valid depth range in metres; values outside become 0 (invalid). With ``max`` null,
    a sample holding depth beyond ``plausible`` metres is refused (no camera of RGB-D data
    measures that far: a unit or decoding mistake); set ``max`` to accept such values."""

    min: float = 0.0
    max: float | None = None
    plausible: float = 1000.0


@dataclass
class CameraConfig:
    """Intrinsics in pixels for sources whose data carries none (null = unknown); cx, cy
    default to the image centre ((W-1)/2, (H-1)/2), fy to fx."""

    fx: float | None = None
    fy: float | None = None
    cx: float | None = None
    cy: float | None = None


@dataclass
class SourceConfig:
    """What every source kind shares. ``impl`` names the class in ``pipeline/sources``."""

    impl: ClassVar[str] = ""
    kind: str = MISSING  # set by the preset (source=<preset>); never changed by hand
    split: str = "train"  # which split to read (train, val, test: what the source has)
    limit: int | None = None  # read at most this many inputs (null = all)
    depth: DepthRange = field(default_factory=DepthRange)

    @property
    def scale(self) -> float:
        """Stored depth value / scale = metres (the trainers' ``depth_scale``)."""
        return 1.0

    def fixed_camera(self, height: int, width: int) -> Camera | None:
        """The configured camera for a ``height`` x ``width`` image, if any."""
        return None

    def part(self, name: str) -> SourceConfig:
        """The config a sample of part ``name`` was read with (a mixture's part; any
        other source is its own one part)."""
        return self


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
    depth_scale: float = 1.0  # stored value / depth_scale = metres (1000 mm PNG, 256 KITTI)
    camera: CameraConfig = field(default_factory=CameraConfig)

    @property
    def scale(self) -> float:
        return self.depth_scale

    def fixed_camera(self, height: int, width: int) -> Camera | None:
        c = self.camera
        if c.fx is None:
            return None
        cx = c.cx if c.cx is not None else (width - 1) / 2
        cy = c.cy if c.cy is not None else (height - 1) / 2
        return Camera(c.fx, c.fy if c.fy is not None else c.fx, cx, cy)


@dataclass
class UrlSourceConfig(FileSourceConfig):
    """Sources whose ``path`` may be a URL (``s3://bucket/prefix``, any fsspec URL):
    ``storage_options`` go to the filesystem as given, ``endpoint_url`` names an
    S3-compatible store (default: ``AWS_ENDPOINT_URL``); credentials come from the
    standard places (``AWS_*`` variables, profiles). Neither shapes the data."""

    # a mapping (typed Any: Hydra's struct mode would refuse new keys in a dict field, so
    # `source.storage_options='{profile: lab}'` works as written); checked when used
    storage_options: Any = None
    endpoint_url: str | None = None

    def filesystem(self, url: str) -> Any:
        """The fsspec filesystem serving ``url`` with this source's options."""
        options = urls.storage_options(self.storage_options, "source.storage_options")
        return urls.filesystem(url, options, self.endpoint_url, key="source.path")


@dataclass
class HubConfig(UrlSourceConfig):
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
class WebdatasetConfig(UrlSourceConfig):
    """Webdataset tars: ``columns`` are member extensions, alternatives split by ``|``."""

    # an earlier output of this tool is read through the one reader (dataset.written_source)
    impl: ClassVar[str] = "pipeline.dataset.written_source:open_webdataset"
    kind: str = "webdataset"
    columns: Columns = field(
        default_factory=lambda: Columns(
            "png|jpg|jpeg", "depth.tiff|depth.tif|depth.png|depth.npy", None, "json"
        )
    )


@dataclass
class FolderConfig(UrlSourceConfig):
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
    # A file holding the image's camera (template like depth_path): a .json object, or a
    # text calibration ("NAME: numbers" lines, e.g. KITTI calib_cam_to_cam.txt) whose line
    # ``camera_entry`` (a template too, e.g. P_rect_{camid}) is a 3x4 P or a 3x3 K.
    camera_path: str | None = None
    camera_entry: str | None = None


@dataclass
class NyuMatConfig(FileSourceConfig):
    """The official NYU Depth v2 labeled ``.mat``; ``columns`` are HDF5 dataset names.
    ``splits``: the official ``splits.mat`` (``trainNdxs`` / ``testNdxs``); ``split``
    (train | test) then picks those frames, else every frame is read."""

    impl: ClassVar[str] = "pipeline.sources.nyu_mat:NyuMatSource"
    kind: str = "nyu_mat"
    columns: Columns = field(default_factory=lambda: Columns("images", "depths", None))
    splits: str | None = None


@dataclass
class FilelistConfig(UrlSourceConfig):
    """A trainer's file list: ``path`` is a ``.txt`` with ``rgb depth [focal]`` per line
    (BTS / AdaBins / ZoeDepth; ``None`` as depth = no ground truth: dropped and counted),
    or a Metric3D ``.json`` / ``.jsonl`` of ``{rgb, depth, cam_in, depth_scale}``. Paths
    are relative to ``image_root`` / ``depth_root`` (default: the list's folder). The
    focal column becomes the camera (cx, cy: ``camera.cx/cy`` or the image centre)."""

    impl: ClassVar[str] = "pipeline.sources.filelist:FilelistSource"
    kind: str = "filelist"
    image_root: str | None = None
    depth_root: str | None = None
    depth_scale: float = 1000.0  # PNG value / depth_scale = metres (NYU mm; KITTI 256)

    @property
    def scale(self) -> float:
        """Metric3D lists carry their own depth_scale per record (applied when read;
        ``depth_scale`` is the default for a record without one)."""
        return 1.0 if self.path.endswith((".json", ".jsonl")) else self.depth_scale


@dataclass
class FastdepthConfig(FileSourceConfig):
    """FastDepth's per-frame NYU Depth v2 ``.h5`` files (``rgb`` uint8 (3, H, W), ``depth``
    float32 (H, W) metres) under ``path``: a folder tree ``{train,val}/<scene>/<frame>.h5``,
    or tars of such files read in place (a .tar, a folder of tars or a glob). ``split``
    picks the subtree: train, or val (validation, test: the official 654 test frames).
    With ``path`` null, the tars matching ``files`` are downloaded from the Hugging Face
    dataset ``repo`` at ``revision`` (resumable, into the HF cache) and read from there."""

    impl: ClassVar[str] = "pipeline.sources.fastdepth:FastdepthSource"
    kind: str = "fastdepth"
    path: str | None = None  # type: ignore[assignment]
    repo: str | None = None
    revision: str | None = None  # pin a commit
    files: str = "data/{subdir}-*.tar"  # {subdir}: train | val
    cache_dir: str | None = None  # default: the Hugging Face hub cache (HF_HOME)


@dataclass
class PartDepth:
    """A part's valid depth range in metres, over its source's (null = the source's), and
    its 16-bit PNG ``scale`` (stored value / scale = metres): with ``output=filelist``
    each part is written at its own (null: the part's own integer scale, KITTI 256, else
    1000; an explicit ``output.depth.scale`` is every part's), listed per part; other
    formats hold one scale for all parts. Set by ``config.schema.to_config``."""

    min: float | None = None
    max: float | None = None
    scale: float | None = None


@dataclass
class PartAugment:
    """A part's own augmentation; null = the run's ``augment`` value. ``copies`` must be
    null or the run's (a part's size is its ``count``), so that an ``augment`` preset
    composes here as it is."""

    seed: int | None = None
    copies: int | None = None
    camera: str | None = None
    transforms: dict[str, Any] | None = None


@dataclass
class PartConfig:
    """One dataset of a mixture: ``source`` a complete source (a mapping with ``kind``
    and that kind's keys, or a preset composed through the defaults list; typed by
    ``config.schema.to_config``), its share (``weight``, or an exact ``count``), its own
    augmentation, depth range and ``data_type`` (recorded in every sample)."""

    source: Any = None
    weight: float | None = None
    count: int | None = None
    augment: PartAugment = field(default_factory=PartAugment)
    depth: PartDepth = field(default_factory=PartDepth)
    data_type: DataType = DataType.dense


@dataclass
class CanonicalConfig:
    """One camera for the whole mixture: with ``focal`` set, ``CanonicalCamera(mode,
    focal)`` ends every part's transforms (mode depth: depth x focal / fx; resize)."""

    focal: float | None = None
    mode: CanonicalMode = CanonicalMode.depth


@dataclass
class MixConfig(SourceConfig):
    """A weighted mixture of sources in one run (``pipeline.sources.mix``):
    ``num_samples`` in all (null: the parts' inputs added up), shared out by ``weight``
    (largest remainder; parts without weight or count: in proportion to their inputs),
    interleaved so that each shard holds every part in proportion; ``seed`` picks the
    subset of a part with more inputs than its count. ``shard_size`` is the output's
    (set by ``to_config``): the block in which the parts are in proportion."""

    impl: ClassVar[str] = "pipeline.sources.mix:MixSource"
    kind: str = "mix"
    parts: dict[str, PartConfig] = field(default_factory=dict)
    num_samples: int | None = None
    seed: int = 0
    canonical: CanonicalConfig = field(default_factory=CanonicalConfig)
    shard_size: int = 32

    def part(self, name: str) -> SourceConfig:
        return self.parts[name].source if name in self.parts else self


SOURCE_SCHEMAS: dict[str, type[SourceConfig]] = {
    cls().kind: cls
    for cls in (
        SyntheticConfig,
        HubConfig,
        WebdatasetConfig,
        FolderConfig,
        NyuMatConfig,
        FilelistConfig,
        FastdepthConfig,
        MixConfig,
    )
}
