"""The trainer presets (conf/augment/bts_nyu, bts_kitti, depth_anything, metric3d) and the
transforms they brought, against the trainers' own code restated below (each function
names its repository, file and lines)."""

from __future__ import annotations

import math
import re

import cv2
import numpy as np
import pytest
import yaml
from conftest import ROOT

from pipeline.augment.augmenter import Augmenter
from pipeline.augment.transforms import GammaBrightnessColor, RandomScale, ResizeToMultiple
from pipeline.config.schema import AugmentConfig
from pipeline.sample import Camera, Sample
from pipeline.sources.synthetic import camera as renderer_camera
from pipeline.sources.synthetic import render


def preset(name: str) -> dict:
    return yaml.safe_load((ROOT / "conf" / "augment" / f"{name}.yaml").read_text())


# ---- Depth Anything V2 metric_depth/dataset/transform.py --------------------------------


def depth_anything_size(height: int, width: int, net: int = 518, multiple: int = 14):
    """Resize.get_size with keep_aspect_ratio=True, resize_method='lower_bound' (L96-162)."""

    def constrain(x: float, min_val: int) -> int:
        y = (np.round(x / multiple) * multiple).astype(int)
        if y < min_val:
            y = (np.ceil(x / multiple) * multiple).astype(int)
        return int(y)

    scale_height, scale_width = net / height, net / width
    if scale_width > scale_height:
        scale_height = scale_width
    else:
        scale_width = scale_height
    return constrain(scale_height * height, net), constrain(scale_width * width, net)


@pytest.mark.parametrize("shape", [(480, 640), (375, 1242), (768, 1024), (96, 128), (518, 518)])
def test_resize_to_multiple_is_depth_anythings_resize(shape):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    size = depth_anything_size(*shape)
    out = Augmenter(
        AugmentConfig(transforms={"r": preset("depth_anything")["transforms"]["resize"]})
    )
    got = out(Sample("k", image, np.ones(shape, np.float32), camera=None), 0, 0)
    assert got.image.shape[:2] == size and size[0] % 14 == 0 and size[1] % 14 == 0
    assert min(size) >= 518
    assert np.array_equal(got.image, cv2.resize(image, size[::-1], interpolation=cv2.INTER_CUBIC))
    assert ResizeToMultiple().output_size(*shape) == size


# ---- BTS pytorch/bts_dataloader.py augment_image (L216-235) -----------------------------


def bts_augment_image(image: np.ndarray, gamma: float, brightness: float, colors) -> np.ndarray:
    image_aug = image**gamma
    image_aug = image_aug * brightness
    white = np.ones((image.shape[0], image.shape[1]))
    color_image = np.stack([white * colors[i] for i in range(3)], axis=2)
    image_aug *= color_image
    return np.clip(image_aug, 0, 1)


def test_gamma_brightness_color_is_bts_augment_image():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    t = GammaBrightnessColor(p=1.0)
    t.set_random_seed(3)
    for _ in range(20):
        params = t.get_params()
        assert 0.9 <= params["gamma"] <= 1.1 and 0.75 <= params["brightness"] <= 1.25
        assert all(0.9 <= c <= 1.1 for c in params["color"])
        ours = t.apply(image, **params).astype(np.float64) / 255
        theirs = bts_augment_image(
            np.asarray(image, dtype=np.float32) / 255.0, *params.values()
        )  # fmt: skip
        assert np.abs(ours - theirs).max() <= 0.5 / 255 + 1e-6  # ours is stored as uint8


# ---- Metric3D training/mono/utils/transform.py RandomResize (L779-796) -----------------


def test_random_scale_nearest_is_metric3d_random_resize():
    rng = np.random.default_rng(2)
    depth = rng.uniform(0.5, 9, (97, 131)).astype(np.float32)
    t = RandomScale(mode="divide_depth", scale_limit=(0.85, 1.15), rounding="nearest")
    t.set_random_seed(5)
    for _ in range(10):
        r = t.get_params()["scale"]
        params = t.get_params_dependent_on_data({"scale": r, "shape": depth.shape}, {})
        reshape = (int(97 * r + 0.5), int(131 * r + 0.5))
        assert params["size"] == reshape
        got = t.apply_to_mask(depth, size=params["size"], scale=r)
        theirs = cv2.resize(depth, reshape[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
        assert np.allclose(got, theirs * (1.0 / r), rtol=1e-6)  # label * label_scale_ratio


# ---- the presets as a whole ------------------------------------------------------------

SIZES = {  # preset: (source frame, the trainer's training size)
    "bts_nyu": ((480, 640), (416, 544)),
    "bts_kitti": ((375, 1242), (352, 704)),
    "depth_anything": ((480, 640), (518, 518)),
    "metric3d": ((480, 640), (616, 1064)),
}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_each_preset_gives_its_trainers_size_and_keeps_the_camera_exact(name):
    frame, size = SIZES[name]
    image, depth = render(*frame, 0, 3)
    sample = Sample("k", image, depth, camera=renderer_camera(*frame))
    augment = Augmenter(AugmentConfig(**preset(name)))
    for index in range(4):
        out = augment(sample, index, 0)
        assert out.image.shape[:2] == size and out.depth.shape == size
        assert out.camera is not None and not out.camera.approximate
        if name == "metric3d":  # canonical focal 1000, kept through the random resize
            assert out.camera.fx == pytest.approx(1000.0, rel=2e-3)


def test_bts_rotation_stays_within_its_degree_and_leaves_corners_invalid():
    image, depth = render(480, 640, 0, 3)
    sample = Sample("k", image, depth, camera=Camera(500.0, 500.0, 319.5, 239.5))
    spec = preset("bts_nyu")
    spec["transforms"] = {k: spec["transforms"][k] for k in ("border", "rotate")}
    augment = Augmenter(AugmentConfig(**spec))
    angles = []
    for index in range(20):
        out = augment(sample, index, 0)
        m = np.array(out.params["rotate"]["matrix"])
        angles.append(math.degrees(math.atan2(m[1, 0], m[0, 0])))
        if abs(angles[-1]) > 1:
            assert out.depth[0, 0] == 0 or out.depth[0, -1] == 0  # a corner rotated in
    assert max(abs(a) for a in angles) <= 2.5 + 1e-6 and max(angles) - min(angles) > 2


@pytest.mark.parametrize("name", sorted(SIZES))
def test_each_preset_cites_its_trainers_file_and_lines(name):
    comment = (ROOT / "conf" / "augment" / f"{name}.yaml").read_text().split("\nseed:")[0]
    assert re.search(r"Origin: [\w-]+/[\w-]+ @ [0-9a-f]{7}", comment)
    assert re.search(r"\.py", comment) and len(re.findall(r"L\d+", comment)) >= 4
    for transform in preset(name)["transforms"]:
        assert f"-> {transform}" in comment, transform  # every step says where it is from
