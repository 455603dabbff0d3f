"""Schemas of the public metric-depth datasets read as their authors distribute them
(``pipeline/sources/public/``), one per dataset, registered with the built-in kinds in
``SOURCE_KINDS``.

Each reads ``path`` (where the download is unpacked; a URL works too) and converts to
float32 metres itself: ``depth_scale`` stays 1, ``depth.min/max`` is the preset's range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.config.sources import SOURCE_SCHEMAS, SourceConfig, UrlSourceConfig


@dataclass
class HypersimConfig(UrlSourceConfig):
    """Apple Hypersim: ``ai_VVV_NNN/images/scene_cam_XX_final_preview/frame.IIII.tonemap.jpg``
    and ``scene_cam_XX_geometry_hdf5/frame.IIII.depth_meters.hdf5`` (distance to the camera
    centre, turned into planar depth along each pixel's ray). ``camera_csv``: the authors'
    ``metadata_camera_parameters.csv`` (default: that name under ``path`` when present),
    giving each scene's own rays and intrinsics; without it the standard 60 degree camera.
    ``split_csv``: ``metadata_images_split_scene_v1.csv``; ``split`` then picks its frames."""

    impl: ClassVar[str] = "pipeline.sources.public.hypersim:HypersimSource"
    kind: str = "hypersim"
    camera_csv: str | None = None
    split_csv: str | None = None


@dataclass
class Vkitti2Config(UrlSourceConfig):
    """Virtual KITTI 2: ``SceneNN/<variation>/frames/rgb/Camera_K/rgb_NNNNN.jpg`` under
    ``path``, the depth archive under ``depth_root`` and the text ground truth
    (``SceneNN/<variation>/intrinsic.txt``) under ``text_root`` (null: ``path``).
    ``variation``: a glob of variation folders. Depth 65535 (sky): invalid, or
    ``sky_depth`` metres."""

    impl: ClassVar[str] = "pipeline.sources.public.vkitti2:Vkitti2Source"
    kind: str = "vkitti2"
    depth_root: str | None = None
    text_root: str | None = None
    variation: str = "*"
    sky_depth: float | None = None


@dataclass
class DiodeConfig(UrlSourceConfig):
    """DIODE: ``{train,val}/{indoors,outdoor}/scene_*/scan_*/<name>.png`` with
    ``<name>_depth.npy`` (metres) and ``<name>_depth_mask.npy``; ``split`` is the top
    folder, ``scene_type`` indoors | outdoor | all."""

    impl: ClassVar[str] = "pipeline.sources.public.diode:DiodeSource"
    kind: str = "diode"
    split: str = "train"
    scene_type: str = "all"


@dataclass
class SunrgbdConfig(UrlSourceConfig):
    """SUN RGB-D: every frame folder (``image/*.jpg``, ``depth/*.png``, ``intrinsics.txt``)
    below the ``sensors`` folders under ``path``; ``refined`` reads ``depth_bfx/``;
    ``splits``: the toolbox's ``allsplit.mat`` (``split`` train: ``alltrain``, test:
    ``alltest``)."""

    impl: ClassVar[str] = "pipeline.sources.public.sunrgbd:SunrgbdSource"
    kind: str = "sunrgbd"
    sensors: list[str] | None = None  # null: kv1, kv2, realsense, xtion
    refined: bool = False
    splits: str | None = None  # the toolbox's traintestSUNRGBD/allsplit.mat: split train | test


@dataclass
class CityscapesConfig(UrlSourceConfig):
    """Cityscapes: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with
    ``disparity/...*_disparity.png`` and ``camera/...*_camera.json`` under ``path``."""

    impl: ClassVar[str] = "pipeline.sources.public.cityscapes:CityscapesSource"
    kind: str = "cityscapes"
    split: str = "train"


@dataclass
class ScannetConfig(UrlSourceConfig):
    """ScanNet frames exported by the authors' SensReader: ``sceneXXXX_XX/color/N.jpg``,
    ``depth/N.png`` (mm), ``intrinsic/intrinsic_color.txt``. ``size``: depth (the colour
    image resized to the depth map) | color (the depth resized, nearest, to the image);
    the camera follows the image. ``scenes``: a scene list (``scannetv2_train.txt``)."""

    impl: ClassVar[str] = "pipeline.sources.public.scannet:ScannetSource"
    kind: str = "scannet"
    size: str = "depth"
    scenes: str | None = None


DATASET_SCHEMAS: dict[str, type[SourceConfig]] = {
    cls().kind: cls
    for cls in (
        HypersimConfig,
        Vkitti2Config,
        DiodeConfig,
        SunrgbdConfig,
        CityscapesConfig,
        ScannetConfig,
    )
}
# every source kind: the built-in ones and the public datasets
SOURCE_KINDS: dict[str, type[SourceConfig]] = {**SOURCE_SCHEMAS, **DATASET_SCHEMAS}
