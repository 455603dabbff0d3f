"""The camera follows every geometric transform: a reprojection test on the synthetic
scene, whose 3D geometry is known, over many random parameter draws; what a pinhole camera
cannot carry is marked approximate (or refused under augment.camera=strict)."""

from __future__ import annotations

import inspect

import albumentations as A
import cv2
import numpy as np
import pytest

from pipeline.augment.augmenter import Augmenter, known_output_size, ordered
from pipeline.augment.geometry import RESIZING
from pipeline.config.schema import AugmentConfig
from pipeline.errors import PipelineError
from pipeline.sample import Camera, Sample
from pipeline.sources.synthetic import camera as renderer_camera
from pipeline.sources.synthetic import render

H, W = 96, 128
CAMERAS = {
    "renderer": renderer_camera(H, W),
    # The renderer's principal point is the image centre, which a flip maps to itself: an
    # off-centre, non-square camera also catches a wrong flip or a swapped fx / fy.
    "off_centre": Camera(112.0, 97.5, 70.3, 41.6),
}


def T(name: str, **kwargs: object) -> dict[str, object]:
    return {"_target_": name, **kwargs}


FLIPS = {
    "hflip": T("albumentations.HorizontalFlip", p=0.5),
    "vflip": T("albumentations.VerticalFlip", p=0.5),
}
# Every supported geometric transform; "integer" pipelines move pixels by whole pixels.
PIPELINES: dict[str, tuple[bool, dict[str, dict[str, object]]]] = {
    "flips+random crop": (
        True,
        {**FLIPS, "crop": T("albumentations.RandomCrop", height=50, width=70)},
    ),
    "center crop": (True, {"crop": T("albumentations.CenterCrop", height=61, width=77), **FLIPS}),
    "pad+crop": (
        True,
        {
            "pad": T("albumentations.PadIfNeeded", min_height=120, min_width=150),
            "crop": T("albumentations.RandomCrop", height=100, width=110),
            **FLIPS,
        },
    ),
    "kb crop": (
        True,
        {**FLIPS, "kb": T("pipeline.augment.transforms.KBCrop", height=64, width=100)},
    ),
    "eval region": (
        True,
        {
            **FLIPS,
            "eigen": T("pipeline.augment.transforms.EigenCrop", dataset="kitti", mode="depth"),
        },
    ),
    "random resized crop": (
        False,
        {"rrc": T("albumentations.RandomResizedCrop", size=[40, 56], scale=[0.2, 1.0]), **FLIPS},
    ),
    # one resize per pipeline: chained nearest resamplings add up their half pixels
    "random scale (albumentations)": (
        False,
        {"scale": T("albumentations.RandomScale", scale_limit=[-0.5, 0.8], p=1.0), **FLIPS},
    ),
    "longest / smallest max size": (
        False,
        {
            **FLIPS,
            "longest": T("albumentations.LongestMaxSize", max_size=[50, 77, 150], p=0.5),
            "crop": T("albumentations.RandomCrop", height=30, width=40),
        },
    ),
    "non-uniform resize": (
        False,
        {"resize": T("albumentations.Resize", height=70, width=60), **FLIPS},
    ),
    "affine scale+shift": (
        False,
        {
            "affine": T(
                "albumentations.Affine", scale=[0.6, 1.4], translate_percent=[-0.1, 0.1], p=1.0
            )
        },
    ),
    "random scale, divide depth": (
        False,
        {
            "scale": T(
                "pipeline.augment.transforms.RandomScale",
                mode="divide_depth",
                scale_limit=[0.6, 1.6],
            ),
            "crop": T("albumentations.CenterCrop", height=48, width=64),
            **FLIPS,
        },
    ),
    "random scale, scale camera": (
        False,
        {
            **FLIPS,
            "scale": T(
                "pipeline.augment.transforms.RandomScale",
                mode="scale_camera",
                scale_limit=[0.5, 1.3],
            ),
        },
    ),
    "canonical camera, depth": (
        False,
        {
            **FLIPS,
            "canon": T("pipeline.augment.transforms.CanonicalCamera", mode="depth", focal=500.0),
        },
    ),
    "canonical camera, resize": (
        False,
        {
            "canon": T("pipeline.augment.transforms.CanonicalCamera", mode="resize", focal=70.0),
            "crop": T("albumentations.RandomCrop", height=40, width=50),
            **FLIPS,
        },
    ),
}
DRAWS = 10  # per pipeline and camera: 14 pipelines x 2 cameras x 10 = 280 random draws


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray]:
    return render(H, W, 0, 7)


def depth_factor(params: dict[str, object]) -> float:
    """How the pipeline multiplied depth, from the parameters it recorded (FastDepth's
    depth / s, Metric3D's depth x focal / fx)."""
    m = 1.0
    for p in params.values():
        if isinstance(p, dict) and "ratio" in p and p.get("depth_factor") == p["ratio"]:
            m *= p["ratio"]
        elif (
            isinstance(p, dict) and "scale" in p and "depth_factor" in p and p["depth_factor"] != 1
        ):
            m /= p["scale"]
    return m


def written_values(source: np.ndarray, params: dict[str, object]) -> np.ndarray:
    """Source depth put through the same float32 operation the trainers apply."""
    out = source
    for p in params.values():
        if isinstance(p, dict) and "depth_factor" in p and p["depth_factor"] != 1:
            metric3d = "ratio" in p  # Metric3D: label * ratio; FastDepth: depth / s
            out = out * np.float32(p["ratio"]) if metric3d else out / np.float32(p["scale"])
    return out


def reprojection_errors(source: Sample, out: Sample, integer: bool) -> tuple[np.ndarray, float]:
    """For every written depth pixel: the source pixel whose depth it carries (found by its
    unique value), its 3D point P = z K^-1 (u, v, 1), that point as the transform moved the
    scene (mirrored by flips, squashed along z by a depth factor m), projected with the
    written K. Returns the distances to the written pixel in source pixels, and the share
    of written pixels matched."""
    params = out.params
    sx = -1.0 if params.get("hflip") else 1.0
    sy = -1.0 if params.get("vflip") else 1.0
    m = depth_factor(params)
    values = written_values(source.depth, params).ravel()
    uniq, counts = np.unique(values, return_counts=True)
    single = uniq[(counts == 1) & (uniq > 0)]
    order = np.argsort(values, kind="stable")
    v_out, u_out = np.nonzero(out.depth > 0)
    d_out = out.depth[v_out, u_out]
    pos = np.clip(np.searchsorted(single, d_out), 0, len(single) - 1)
    matched = single[pos] == d_out
    v_out, u_out, d_out = v_out[matched], u_out[matched], d_out[matched]
    flat = order[np.searchsorted(values[order], d_out)]
    v_src, u_src = np.divmod(flat, source.depth.shape[1])
    k, k2 = source.camera, out.camera
    z = source.depth[v_src, u_src].astype(np.float64)
    x, y = (u_src - k.cx) / k.fx * z, (v_src - k.cy) / k.fy * z
    px, py, pz = sx * x, sy * y, m * z  # the scene as the transform moved it
    u_hat, v_hat = k2.fx * px / pz + k2.cx, k2.fy * py / pz + k2.cy
    # output pixels per source pixel along each axis, to state errors in source pixels
    per_x, per_y = k2.fx / (m * k.fx), k2.fy / (m * k.fy)
    err = np.maximum(np.abs(u_hat - u_out) / per_x, np.abs(v_hat - v_out) / per_y)
    if integer:  # whole-pixel moves: the same image content, too
        assert np.array_equal(out.image[v_out, u_out], source.image[v_src, u_src])
    return err, float(matched.mean()) if matched.size else 0.0


@pytest.mark.parametrize("cam", sorted(CAMERAS))
@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_written_camera_reprojects_the_scene(scene, pipeline, cam):
    integer, spec = PIPELINES[pipeline]
    image, depth = scene
    source = Sample("k", image, depth, camera=CAMERAS[cam])
    aug = Augmenter(AugmentConfig(seed=11, transforms=spec))
    worst = 0.0
    for draw in range(DRAWS):
        out = aug(source, draw, 0)
        assert out.camera is not None and not out.camera.approximate
        err, share = reprojection_errors(source, out, integer)
        assert share > 0.9 and err.size > 500, (draw, share, err.size)
        worst = max(worst, float(err.max()))
    # nearest-neighbour depth lands within half a source pixel; whole-pixel moves exactly
    assert worst <= (1e-6 if integer else 0.5 + 1e-6), worst


def test_a_wrong_camera_fails_the_reprojection_check(scene):
    """The check can fail: the principal point left unmirrored by a flip is caught."""
    image, depth = scene
    source = Sample("k", image, depth, camera=CAMERAS["off_centre"])
    out = Augmenter(AugmentConfig(transforms={"hflip": T("albumentations.HorizontalFlip", p=1)}))(
        source, 0, 0
    )
    c = out.camera
    out.camera = Camera(c.fx, c.fy, W - 1 - c.cx, c.cy)  # as if the flip kept cx
    err, _ = reprojection_errors(source, out, integer=True)
    assert err.max() > 10


def test_rotation_is_a_camera_roll_when_fx_equals_fy_else_approximate(scene):
    image, depth = scene
    rot = {"rot": T("albumentations.Rotate", limit=[12, 12], p=1.0)}
    aug = Augmenter(AugmentConfig(transforms=rot))
    square = aug(Sample("k", image, depth, camera=CAMERAS["renderer"]), 0, 0)
    # rotating about the principal point keeps it, and fx = fy is a pure roll: exact (up to
    # the float32 keypoints albumentations computes)
    assert not square.camera.approximate
    assert square.camera.cx == pytest.approx((W - 1) / 2, abs=1e-4)
    assert square.camera.fx == pytest.approx(CAMERAS["renderer"].fx, rel=1e-6)
    skewed = aug(Sample("k", image, depth, camera=CAMERAS["off_centre"]), 0, 0)
    assert skewed.camera.approximate
    matrix = np.array(skewed.params["rot"]["matrix"])
    assert np.allclose(np.reshape(skewed.homography, (3, 3)), matrix, atol=1e-4)
    # the principal point moves with the image: H (cx, cy)
    moved = matrix @ [70.3, 41.6, 1.0]
    assert (skewed.camera.cx, skewed.camera.cy) == pytest.approx(tuple(moved[:2]), abs=1e-3)


def test_perspective_records_its_homography_and_marks_the_camera(scene):
    image, depth = scene
    aug = Augmenter(AugmentConfig(transforms={"p": T("albumentations.Perspective", p=1.0)}))
    out = aug(Sample("k", image, depth, camera=CAMERAS["renderer"]), 3, 0)
    assert out.camera.approximate
    params = out.params["p"]
    # keep_size: the image is warped with diag(W / max_width, H / max_height) @ matrix
    scale = np.diag([W / params["max_width"], H / params["max_height"], 1.0])
    expected = scale @ np.array(params["matrix"])
    assert np.allclose(np.reshape(out.homography, (3, 3)), expected / expected[2, 2], atol=1e-4)


def test_unknown_camera_still_records_the_pixel_map(scene):
    image, depth = scene
    spec = {"crop": T("albumentations.Crop", x_min=10, y_min=5, x_max=100, y_max=80)}
    out = Augmenter(AugmentConfig(transforms=spec))(Sample("k", image, depth), 0, 0)
    assert out.camera is None
    assert out.homography == (1.0, 0.0, -10.0, 0.0, 1.0, -5.0, 0.0, 0.0, 1.0)


def test_depth_resizes_are_pixel_centre_aligned():
    """OpenCV's INTER_NEAREST resize takes source floor(x * 3) for a 3x reduction: depth
    would sit a pixel left of the image. The tracked resizes use the centre pixel 3x + 1."""
    xs = np.tile(np.arange(96, dtype=np.float32), (48, 1)) + 1
    sample = Sample("k", np.zeros((48, 96, 3), np.uint8), xs)
    out = Augmenter(
        AugmentConfig(transforms={"r": T("albumentations.Resize", height=16, width=32)})
    )(sample, 0, 0)
    assert np.array_equal(out.depth[0], np.arange(32) * 3 + 1 + 1)
    assert out.homography[0] == pytest.approx(1 / 3) and out.homography[2] == pytest.approx(-1 / 3)


def test_every_resizing_transform_of_the_library_is_converted():
    """The corner-convention keypoint scaling (and cv2.resize of depth) of albumentations
    are found in its source: each transform using them is in ``RESIZING``. A fence around
    what geometry.py relies on (with the reprojection test for the keypoint array layout
    and ``apply_with_params``): it fails when an albumentations release moves them."""
    markers = (
        "keypoints_scale",
        "fgeometric.resize(",
        "fgeometric.scale(",
        "crop_and_pad_keypoints",
    )
    found = []
    for obj in vars(A).values():
        if not (isinstance(obj, type) and issubclass(obj, A.DualTransform)):
            continue
        source = ""
        for method in ("apply_to_keypoints", "apply_to_mask"):
            fn = getattr(obj, method, None)
            if fn is not None and fn is not getattr(A.DualTransform, method, None):
                source += inspect.getsource(fn)
        if any(m in source for m in markers):
            found.append(obj)
    assert len(found) >= 8
    missing = [cls.__name__ for cls in found if not issubclass(cls, RESIZING)]
    assert missing == []


@pytest.mark.parametrize(
    "spec",
    [
        {"rot": T("albumentations.Rotate", limit=10)},
        {"aff": T("albumentations.Affine", rotate=[-5, 5])},
        {"aff": T("albumentations.Affine", shear=4)},
        {"p": T("albumentations.Perspective")},
        {"e": T("albumentations.ElasticTransform")},
        {"rrc": T("albumentations.RandomResizedCrop", size=[40, 60])},
    ],
)
def test_strict_refuses_what_a_pinhole_camera_cannot_carry_before_the_run(spec):
    with pytest.raises(PipelineError, match="augment.camera=strict"):
        Augmenter(AugmentConfig(camera="strict", transforms=spec))


def test_strict_accepts_exact_transforms_and_refuses_a_non_uniform_resize_per_sample(scene):
    image, depth = scene
    sample = Sample("k", image, depth, camera=CAMERAS["renderer"])
    exact = {
        **FLIPS,
        "crop": T("albumentations.RandomCrop", height=50, width=70),
        "aff": T("albumentations.Affine", scale=[0.8, 1.2], keep_ratio=True, p=1.0),
        "rrc": T(
            "albumentations.RandomResizedCrop", size=[80, 112], scale=[0.5, 1.0], ratio=[1.4, 1.4]
        ),
    }
    aug = Augmenter(AugmentConfig(camera="strict", transforms=exact))
    assert not aug(sample, 0, 0).camera.approximate
    squash = {"r": T("albumentations.Resize", height=96, width=64)}
    with pytest.raises(ValueError, match="non-uniformly"):
        Augmenter(AugmentConfig(camera="strict", transforms=squash))(sample, 0, 0)
    with pytest.raises(PipelineError, match="augment.camera must be"):
        Augmenter(AugmentConfig(camera="loose", transforms=squash))


def test_before_and_after_place_a_transform():
    transforms = {
        "flip": T("albumentations.HorizontalFlip"),
        "crop": T("albumentations.RandomCrop", height=40, width=40),
        "gamma": T("albumentations.RandomGamma"),
        "rot": T("albumentations.Rotate", limit=10, before="crop"),
        "pad": T("albumentations.PadIfNeeded", min_height=50, min_width=50, after="flip"),
        "off": None,
    }
    names = [name for name, _ in ordered(transforms)]
    assert names == ["flip", "pad", "rot", "crop", "gamma"]
    assert "before" not in dict(ordered(transforms))["rot"]
    assert Augmenter(AugmentConfig(transforms=transforms)).names == names
    for bad, words in (
        ({"rot": T("albumentations.Rotate", before="nope")}, "nope is not a transform"),
        ({"rot": T("albumentations.Rotate", before="off"), "off": None}, "off is disabled"),
        (
            {"a": T("albumentations.Rotate", before="b", after="b"), "b": T("albumentations.Blur")},
            "not both",
        ),
    ):
        with pytest.raises(PipelineError, match=words):
            ordered(bad)


def test_crop_sizes_are_checked_in_placement_order():
    late = {
        "crop": T("albumentations.RandomCrop", height=60, width=60),
        "resize": T("albumentations.Resize", height=50, width=50, before="crop"),
    }
    with pytest.raises(PipelineError, match="crop 60x60"):
        known_output_size(AugmentConfig(transforms=late), 96, 128)
    kb = {"kb": T("pipeline.augment.transforms.KBCrop")}
    with pytest.raises(PipelineError, match="augment.transforms.kb"):
        known_output_size(AugmentConfig(transforms=kb), 375, 1000)
    assert known_output_size(AugmentConfig(transforms=kb), 375, 1242) == (352, 1216)


def test_camera_transforms_get_the_camera_of_their_position(scene):
    """CanonicalCamera after a 2x downscale sees fx / 2: the ratio doubles."""
    image, depth = scene
    sample = Sample("k", image, depth, camera=CAMERAS["renderer"])
    canon = T("pipeline.augment.transforms.CanonicalCamera", mode="depth", focal=100.0)
    alone = Augmenter(AugmentConfig(transforms={"canon": canon}))(sample, 0, 0)
    halved = Augmenter(
        AugmentConfig(
            transforms={"r": T("albumentations.Resize", height=48, width=64), "canon": canon}
        )
    )(sample, 0, 0)
    r1 = alone.params["canon"]["ratio"]
    r2 = halved.params["canon"]["ratio"]
    assert r2 == pytest.approx(2 * r1) and halved.camera.fx == pytest.approx(100.0)
    no_camera = Augmenter(AugmentConfig(transforms={"canon": canon}))
    with pytest.raises(ValueError, match="source.camera.fx"):
        no_camera(Sample("k", image, depth), 0, 0)


def test_tracking_is_deterministic_and_cheap_to_repeat(scene):
    image, depth = scene
    sample = Sample("k", image, depth, camera=CAMERAS["off_centre"])
    spec = PIPELINES["random resized crop"][1]
    a, b = Augmenter(AugmentConfig(transforms=spec)), Augmenter(AugmentConfig(transforms=spec))
    for i in range(5):
        x, y = a(sample, i, 1), b(sample, i, 1)
        assert x.camera == y.camera and x.homography == y.homography
        assert cv2.absdiff(x.image, y.image).max() == 0


def test_perspective_fits_fx_fy_from_the_warps_local_scale(scene):
    """Under a projective warp the fitted focal lengths are the lengths of the camera's
    axes carried by the warp's Jacobian at the principal point. The Jacobian is measured
    here by central differences of the recorded homography (no closed form shared with
    the code): a sign slip in the projective term of ``camera_after`` moves fx, fy."""
    image, depth = scene
    spec = {"p": T("albumentations.Perspective", scale=(0.2, 0.3), p=1.0)}
    cam = CAMERAS["renderer"]
    out = Augmenter(AugmentConfig(transforms=spec))(Sample("k", image, depth, camera=cam), 3, 0)
    matrix = np.reshape(out.homography, (3, 3))
    assert np.abs(matrix[2, :2]).max() > 1e-4  # really projective

    def warp(x: float, y: float) -> np.ndarray:
        p = matrix @ [x, y, 1.0]
        return p[:2] / p[2]

    step = 1e-3
    columns = [
        (warp(cam.cx + step, cam.cy) - warp(cam.cx - step, cam.cy)) / (2 * step),
        (warp(cam.cx, cam.cy + step) - warp(cam.cx, cam.cy - step)) / (2 * step),
    ]
    jacobian = np.stack(columns, axis=1)
    axes = jacobian @ np.diag([cam.fx, cam.fy])
    assert out.camera.approximate
    assert out.camera.fx == pytest.approx(np.hypot(*axes[0]), rel=1e-4)
    assert out.camera.fy == pytest.approx(np.hypot(*axes[1]), rel=1e-4)
