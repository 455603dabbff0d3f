"""The report's pictures, read back as pixels: sparse (KITTI-like) depth is visible where
the data has points and grey where it has none, wide images get a readable layout, the
crop window drawn on a source image is where the written pixels came from, and colours
that would pass for depth are refused before the run."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import ROOT, make_cfg, run_cli
from kitti_calib import write_calib
from matplotlib import colormaps
from PIL import Image

from pipeline.augment.augmenter import Augmenter
from pipeline.config.schema import AugmentConfig
from pipeline.report.params import crop_window
from pipeline.run.runner import run
from pipeline.sample import Sample

H, W = 352, 1216  # KITTI's benchmark crop
LIDAR_TOP = 130  # rows above this hold no LiDAR return (sky)
GREY = (128, 128, 128)  # report.invalid_color default


def _kitti_sparse(root: Path, frames: int, rng: np.random.Generator) -> float:
    """A KITTI layout whose ground truth looks like projected LiDAR: every 4th row below
    LIDAR_TOP, half of the columns in it; metres x 256 in uint16 PNG. Returns the valid
    fraction. Images are pure red shades (far from viridis and from grey)."""
    drive = "2011_09_26_drive_0001_sync"
    raw = root / "2011_09_26" / drive / "image_02" / "data"
    gt = root / "data_depth_annotated/train" / drive / "proj_depth/groundtruth/image_02"
    raw.mkdir(parents=True)
    gt.mkdir(parents=True)
    write_calib(root, "2011_09_26")  # the KITTI preset reads the day's camera
    valid = 0
    for frame in range(frames):
        name = f"{frame:010d}.png"
        image = np.zeros((H, W, 3), np.uint8)
        image[..., 2] = rng.integers(128, 256, (H, W), dtype=np.uint8)  # BGR: red
        cv2.imwrite(str(raw / name), image)
        depth = np.zeros((H, W), np.uint16)
        rows = np.arange(LIDAR_TOP, H, 4)
        metres = 60.0 - (rows - LIDAR_TOP) / (H - LIDAR_TOP) * 55.0  # far at the top
        hits = rng.random((rows.size, W)) < 0.5
        depth[rows] = np.where(hits, (metres[:, None] * 256).astype(np.uint16), 0)
        valid += int((depth > 0).sum())
        cv2.imwrite(str(gt / name), depth)
    return valid / (frames * H * W)


def _near(rgb: np.ndarray, colors: np.ndarray, tol: int = 3) -> np.ndarray:
    """Pixels within ``tol`` (per channel) of any of ``colors``."""
    out = np.zeros(rgb.shape[:2], bool)
    for c in colors:
        out |= (np.abs(rgb.astype(int) - c.astype(int)) <= tol).all(axis=-1)
    return out


@pytest.fixture(scope="module")
def kitti_report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("kitti")
    frac = _kitti_sparse(tmp / "kitti", 6, np.random.default_rng(0))
    assert 0.04 < frac < 0.12  # sparse, like projected LiDAR
    out = tmp / "out"
    cfg = make_cfg(out, "source=kitti", f"source.path={tmp / 'kitti'}", "augment=none", small=False)
    run(cfg)
    return out / "report"


def test_sparse_depth_panels_show_depth_where_the_data_has_points(kitti_report):
    rgb = np.array(Image.open(kitti_report / "collage.png").convert("RGB"))
    viridis = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).round()
    grey = np.all(rgb == GREY, axis=-1)
    depthish = grey | _near(rgb, viridis.astype(np.uint8))
    count, _, boxes, _ = cv2.connectedComponentsWithStats(depthish.astype(np.uint8))
    panels = [b for b in boxes[1:] if b[2] > 200 and b[3] > 40]  # skip the colour bar
    assert len(panels) == 6
    for x, y, w, h, _ in panels:
        assert 2.5 < w / h < 4.5  # KITTI's aspect, not squeezed
        split = y + round(h * (LIDAR_TOP + 8) / H)
        sky = grey[y : y + round(h * (LIDAR_TOP - 4) / H), x : x + w].mean()
        ground = grey[split : y + h, x : x + w].mean()
        assert ground < 0.2, f"depth panel at {x},{y}: {ground:.0%} invalid colour"
        assert sky > 0.95, "rows without any LiDAR point stay invalid"


def test_pictures_are_tasks_another_process_can_draw(kitti_report, tmp_path):
    """The plots go to an executor (later: the run's worker pool) as picklable tasks."""
    import multiprocessing as mp
    import shutil
    from concurrent.futures import ProcessPoolExecutor

    from pipeline.dataset.records import DatasetInfo
    from pipeline.report.build import build_report, config_of

    root = tmp_path / "copy"
    shutil.copytree(kitti_report.parent, root)
    shutil.rmtree(root / "report")
    info = DatasetInfo.read(root)
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        build_report(root, config_of(info), info.manifests(root), info, executor=pool)
    for name in ("depth_hist", "invalid_fraction", "rgb_hist", "collage", "most_invalid"):
        with Image.open(root / "report" / f"{name}.png") as im:
            im.load()
            assert im.size[0] > 300
    assert 'src="depth_hist.png"' in (root / "report" / "index.html").read_text()


def test_wide_images_are_stacked_image_over_depth(kitti_report):
    with Image.open(kitti_report / "collage.png") as im:
        width, height = im.size
    assert width / height < 4  # 3 x 2 cells of 1216x352: side by side would be ~10:1
    with Image.open(kitti_report / "before_after.png") as im:
        assert im.size[0] < 2200


def _coordinate_image(h: int, w: int) -> Sample:
    """R = x, G = y: each written pixel says where in the source it came from."""
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = np.arange(w)[None, :]
    image[..., 1] = np.arange(h)[:, None]
    return Sample("k", image, np.ones((h, w), np.float32))


@pytest.mark.parametrize(
    "transforms",
    [
        ["flip", "crop"],
        ["crop", "flip"],
        ["vflip", "flip", "crop", "brightness"],
        ["crop", "crop2"],
        ["flip", "crop", "vflip", "crop2"],
    ],
)
def test_crop_window_is_where_the_written_pixels_came_from(transforms):
    specs = {
        "flip": {"_target_": "albumentations.HorizontalFlip", "p": 0.5},
        "vflip": {"_target_": "albumentations.VerticalFlip", "p": 0.5},
        "crop": {"_target_": "albumentations.RandomCrop", "height": 60, "width": 90},
        "crop2": {"_target_": "albumentations.RandomCrop", "height": 30, "width": 40},
        "brightness": {"_target_": "albumentations.RandomBrightnessContrast", "p": 0.0},
    }
    chosen = {name: specs[name] for name in transforms}
    augment = Augmenter(AugmentConfig(seed=3, transforms=chosen))
    source = _coordinate_image(100, 200)
    for index in range(12):
        out = augment(source, index, 0)
        params = out.params
        window, reason = crop_window(chosen, params, 100, 200)
        assert reason is None
        xs, ys = out.image[..., 0], out.image[..., 1]
        expected = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert window == expected, (params, window, expected)


def test_crop_window_is_not_guessed_after_a_rotation():
    chosen = yaml.safe_load(
        "rot: {_target_: albumentations.Rotate, limit: 10, p: 1.0}\n"
        "crop: {_target_: albumentations.RandomCrop, height: 40, width: 40}"
    )
    out = Augmenter(AugmentConfig(transforms=chosen))(_coordinate_image(64, 64), 0, 0)
    window, reason = crop_window(chosen, out.params, 64, 64)
    assert window is None and "rot (Rotate) moves pixels" in reason


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["report.colormap=viridsi"], "report.colormap='viridsi' is not a matplotlib colormap"),
        (["report.invalid_color=gray"], None),  # fine with viridis
        (["report.colormap=cividis"], "set report.invalid_color="),  # grey is in cividis
        (["report.colormap=gray", "report.invalid_color='#7f7f7f'"], "looks like a depth"),
        (["report.invalid_color=notacolour"], "is not a colour"),
        (["report.cell_width=5"], "report.cell_width must be"),
        (["report.depth_min=5", "report.depth_max=2"], "report.depth_min must be below"),
    ],
)
def test_report_settings_are_checked_before_the_run(tmp_path, args, words):
    out = tmp_path / "ds"
    if words is None:
        run(make_cfg(out, "source.num_samples=2", "runtime.workers=1", *args))
        assert (out / "report" / "collage.png").is_file()
        return
    proc = run_cli(*args, "source.num_samples=2", f"output.dir={out}", cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert not out.exists()


def test_the_default_colours_pass_the_colour_check():
    """``colors.check`` skips the colour lookups for the shipped pair: it must pass."""
    from pipeline.config.schema import ReportConfig
    from pipeline.report.colors import MIN_DELTA_E, distance_to_colormap, parse_color

    defaults = ReportConfig()
    dist, _ = distance_to_colormap(parse_color(defaults.invalid_color), defaults.colormap)
    assert dist >= MIN_DELTA_E
