"""pipeline.augment.transforms against the trainers' published code on known inputs: the BTS KITTI
benchmark crop, the BTS / AdaBins evaluation masks (Eigen, Garg), FastDepth's random scale
and Metric3D's canonical camera (label scaling and resizing). The reference functions
below restate those repositories' lines."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.augment.augmenter import Augmenter
from pipeline.config.schema import AugmentConfig
from pipeline.sample import Camera, Sample
from pipeline.sources.synthetic import render

NYU = Camera(518.8579, 519.4696, 325.5824, 253.7362)  # the official NYU Depth v2 RGB camera
KITTI = Camera(721.5377, 721.5377, 609.5593, 172.854)  # P_rect_02 of 2011_09_26


def T(name: str, **kwargs: object) -> dict[str, object]:
    return {"_target_": f"pipeline.augment.transforms.{name}", **kwargs}


def augment(spec: dict[str, dict[str, object]], sample: Sample, index: int = 0) -> Sample:
    return Augmenter(AugmentConfig(seed=4, transforms=spec))(sample, index, 0)


def sample_of(height: int, width: int, camera: Camera | None, seed: int = 0) -> Sample:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 80.0, (height, width)).astype(np.float32)
    depth[rng.random((height, width)) < 0.05] = 0
    return Sample("k", image, depth, camera=camera)


# ---- BTS / AdaBins ------------------------------------------------------------------


def bts_kb_crop(array: np.ndarray) -> np.ndarray:
    """cleinc/bts pytorch/bts_dataloader.py, do_kb_crop."""
    height, width = array.shape[0], array.shape[1]
    top_margin = int(height - 352)
    left_margin = int((width - 1216) / 2)
    return array[top_margin : top_margin + 352, left_margin : left_margin + 1216]


def adabins_eval_mask(gt_height: int, gt_width: int, crop: str, dataset: str) -> np.ndarray:
    """shariqfarooq123/AdaBins evaluate.py (= cleinc/bts eval): garg_crop / eigen_crop."""
    eval_mask = np.zeros((gt_height, gt_width))
    if crop == "garg":
        eval_mask[
            int(0.40810811 * gt_height) : int(0.99189189 * gt_height),
            int(0.03594771 * gt_width) : int(0.96405229 * gt_width),
        ] = 1
    elif dataset == "kitti":
        eval_mask[
            int(0.3324324 * gt_height) : int(0.91351351 * gt_height),
            int(0.0359477 * gt_width) : int(0.96405229 * gt_width),
        ] = 1
    else:
        eval_mask[45:471, 41:601] = 1
    return eval_mask.astype(bool)


@pytest.mark.parametrize("shape", [(375, 1242), (376, 1241), (370, 1226)])
def test_kb_crop_is_the_bts_crop_and_moves_the_principal_point(shape):
    sample = sample_of(*shape, KITTI)
    out = augment({"kb": T("KBCrop")}, sample)
    assert np.array_equal(out.image, bts_kb_crop(sample.image))
    assert np.array_equal(out.depth, bts_kb_crop(sample.depth))
    top, left = shape[0] - 352, int((shape[1] - 1216) / 2)
    assert out.camera == Camera(KITTI.fx, KITTI.fy, KITTI.cx - left, KITTI.cy - top)
    assert out.params["kb"]["crop_coords"] == [left, top, left + 1216, top + 352]


def test_kb_crop_refuses_a_small_image():
    with pytest.raises(ValueError, match="larger than the 300x1242 input"):
        augment({"kb": T("KBCrop")}, sample_of(300, 1242, KITTI))


@pytest.mark.parametrize(
    ("spec", "shape", "crop", "dataset"),
    [
        (T("EigenCrop", dataset="nyu"), (480, 640), "eigen", "nyu"),
        (T("EigenCrop", dataset="kitti"), (375, 1242), "eigen", "kitti"),
        (T("EigenCrop", dataset="kitti"), (352, 1216), "eigen", "kitti"),
        (T("GargCrop"), (375, 1242), "garg", "kitti"),
        (T("GargCrop"), (370, 1226), "garg", "kitti"),
    ],
)
def test_evaluation_regions_are_the_adabins_masks(spec, shape, crop, dataset):
    sample = sample_of(*shape, None)
    want = adabins_eval_mask(*shape, crop, dataset)
    as_mask = augment({"e": {**spec, "mode": "mask"}}, sample)
    assert as_mask.mask is not None and np.array_equal(as_mask.mask > 0, want)
    assert np.array_equal(as_mask.depth, sample.depth) and as_mask.mask.dtype == np.uint8
    as_depth = augment({"e": {**spec, "mode": "depth"}}, sample)
    assert as_depth.mask is None
    assert np.array_equal(as_depth.depth, np.where(want, sample.depth, 0))


def test_evaluation_region_follows_the_crops_flips_and_resizes_before_it():
    """The region is the source frame's: after a crop it is the crop of the source mask,
    after a flip its mirror, after a 2x reduction the same pixels the depth was read from."""
    sample = sample_of(480, 640, NYU)
    want = adabins_eval_mask(480, 640, "eigen", "nyu")
    eigen = T("EigenCrop", dataset="nyu")
    crop = {"_target_": "albumentations.Crop", "x_min": 20, "y_min": 30, "x_max": 620, "y_max": 470}
    out = augment({"c": crop, "e": eigen}, sample)
    assert np.array_equal(out.mask > 0, want[30:470, 20:620])
    flip = {"_target_": "albumentations.HorizontalFlip", "p": 1.0}
    assert np.array_equal(augment({"f": flip, "e": eigen}, sample).mask > 0, want[:, ::-1])
    half = {"_target_": "albumentations.Resize", "height": 240, "width": 320}
    out = augment({"r": half, "e": eigen}, sample)
    assert np.array_equal(out.mask > 0, want[1::2, 1::2])  # nearest of the pixel centres
    assert np.array_equal(out.depth, sample.depth[1::2, 1::2])
    # written first, the region is moved by the crop after it like the depth
    assert np.array_equal(augment({"e": eigen, "c": crop}, sample).mask > 0, want[30:470, 20:620])


# ---- FastDepth ------------------------------------------------------------------------


def test_random_scale_divide_depth_is_fastdepths():
    """dwofk/fast-depth dataloaders/nyu.py: s = uniform(1.0, 1.5); depth_np = depth / s;
    Resize(s) (scipy imresize: int(n * s)). The focal stays that of the source camera (up
    to the integer size: the written fx is exact for the pixels)."""
    sample = sample_of(240, 320, NYU, seed=1)
    for index in range(6):
        out = augment(
            {"s": T("RandomScale", mode="divide_depth", scale_limit=[1.0, 1.5])}, sample, index
        )
        s = out.params["s"]["scale"]
        assert 1.0 <= s <= 1.5
        size = (int(240 * s), int(320 * s))
        assert out.depth.shape == size
        depth_np = sample.depth / np.float32(s)
        want = cv2.resize(depth_np, size[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
        assert np.array_equal(out.depth, want)
        sx, sy = size[1] / 320, size[0] / 240
        assert out.camera.fx == pytest.approx(NYU.fx * sx / s, rel=1e-12)
        assert abs(out.camera.fx - NYU.fx) <= NYU.fx / (320 * s)  # FastDepth: K unchanged
        assert out.camera.cy == pytest.approx((NYU.cy + 0.5) * sy - 0.5, rel=1e-12)


def test_random_scale_scale_camera_keeps_depth_and_zooms_the_focal():
    sample = sample_of(240, 320, NYU, seed=2)
    out = augment({"s": T("RandomScale", mode="scale_camera", scale_limit=[0.5, 2.0])}, sample, 3)
    s = out.params["s"]["scale"]
    size = (int(240 * s), int(320 * s))
    want = cv2.resize(sample.depth, size[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
    assert np.array_equal(out.depth, want)
    assert out.camera.fx == pytest.approx(NYU.fx * size[1] / 320, rel=1e-12)
    assert out.camera.fy == pytest.approx(NYU.fy * size[0] / 240, rel=1e-12)


def test_random_scale_mode_must_be_chosen():
    from pipeline.errors import PipelineError

    with pytest.raises(PipelineError, match="mode"):
        Augmenter(AugmentConfig(transforms={"s": T("RandomScale")}))


# ---- Metric3D -------------------------------------------------------------------------


def metric3d_label_scale(label: np.ndarray, intrinsic: list[float], focal: float):
    """YvanYin/Metric3D training/mono/utils/transform.py, LabelScaleCononical."""
    label_scale_ratio = focal / intrinsic[0]
    intrinsic = [
        intrinsic[0] * label_scale_ratio,
        intrinsic[1] * label_scale_ratio,
        intrinsic[2],
        intrinsic[3],
    ]
    return label * label_scale_ratio, intrinsic, label_scale_ratio


def metric3d_resize_canonical(image: np.ndarray, intrinsic: list[float], focal: float):
    """Metric3D ResizeCanonical.random_on_canonical_transform with to_random_ratio = 1."""
    ori_h, ori_w, _ = image.shape
    ori_focal = (intrinsic[0] + intrinsic[1]) / 2.0
    resize_ratio = focal / ori_focal
    reshape_h = int(ori_h * resize_ratio + 0.5)
    reshape_w = int(ori_w * resize_ratio + 0.5)
    image = cv2.resize(image, dsize=(reshape_w, reshape_h), interpolation=cv2.INTER_LINEAR)
    intrinsic = [focal, focal, intrinsic[2] * resize_ratio, intrinsic[3] * resize_ratio]
    return image, intrinsic, resize_ratio


@pytest.mark.parametrize("camera", [NYU, KITTI])
def test_canonical_camera_depth_mode_is_metric3ds_label_scaling(camera):
    sample = sample_of(120, 160, camera, seed=3)
    out = augment({"c": T("CanonicalCamera", mode="depth", focal=1000.0)}, sample)
    label, intrinsic, ratio = metric3d_label_scale(
        sample.depth, list(camera.to_json().values()), 1000.0
    )
    assert np.array_equal(out.depth, label.astype(np.float32))
    assert np.array_equal(out.image, sample.image)
    got = [out.camera.fx, out.camera.fy, out.camera.cx, out.camera.cy]
    assert got == pytest.approx(intrinsic, rel=1e-12)
    assert out.params["c"]["ratio"] == pytest.approx(ratio, rel=1e-15)


def test_canonical_camera_resize_mode_is_metric3ds_resize_with_exact_intrinsics():
    """The image is Metric3D's; its intrinsics round fx = fy = focal and scale cx by the
    nominal ratio, ours follow the pixels (centre convention, integer size) exactly."""
    image, depth = render(480, 640, 0, 1)
    camera = Camera(518.8, 518.8, 319.5, 239.5)  # the renderer's: fx = fy
    out = augment(
        {"c": T("CanonicalCamera", mode="resize", focal=300.0)},
        Sample("k", image, depth, camera=camera),
    )
    want, intrinsic, ratio = metric3d_resize_canonical(image, [518.8, 518.8, 319.5, 239.5], 300.0)
    assert np.array_equal(out.image, want)
    h, w = want.shape[:2]
    assert np.array_equal(
        out.depth, cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
    )
    sx, sy = w / 640, h / 480
    assert (out.camera.fx, out.camera.fy) == pytest.approx((518.8 * sx, 518.8 * sy), rel=1e-12)
    assert out.camera.fx == pytest.approx(intrinsic[0], abs=300.0 / 640)  # integer width
    assert out.camera.cx == pytest.approx((319.5 + 0.5) * sx - 0.5, rel=1e-12)
    assert abs(out.camera.cx - intrinsic[2]) <= abs(ratio - 1) / 2 + 1.0
    assert out.params["c"]["ratio"] == pytest.approx(ratio, rel=1e-15)


def test_canonical_camera_without_a_camera_names_the_fix():
    with pytest.raises(ValueError, match="source.camera.fx"):
        augment({"c": T("CanonicalCamera", mode="depth")}, sample_of(20, 30, None))
