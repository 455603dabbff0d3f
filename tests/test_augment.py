"""The augmenter: geometry moves image and depth together, seeding is independent."""

from __future__ import annotations

import numpy as np

from pipeline.augment.augmenter import Augmenter
from pipeline.config.schema import AugmentConfig
from pipeline.sample import Sample


def _pattern(h: int = 60, w: int = 80) -> Sample:
    """Image encodes (x, y) of each pixel; depth is a unique value per pixel."""
    ys, xs = np.mgrid[0:h, 0:w]
    image = np.stack([xs, ys, np.full_like(xs, 7)], axis=-1).astype(np.uint8)
    depth = (1.0 + ys * w + xs).astype(np.float32)
    return Sample("k", image, depth)


def test_geometric_transforms_move_image_and_depth_identically():
    spec = {
        "flip": {"_target_": "albumentations.HorizontalFlip", "p": 0.5},
        "vflip": {"_target_": "albumentations.VerticalFlip", "p": 0.5},
        "crop": {"_target_": "albumentations.RandomCrop", "height": 40, "width": 50},
    }
    aug = Augmenter(AugmentConfig(seed=3, transforms=spec))
    sample, flips = _pattern(), set()
    for i in range(12):
        out = aug(sample, i, 0)
        assert out.image.shape == (40, 50, 3) and out.depth.shape == (40, 50)
        d = out.depth.astype(np.int64) - 1
        assert np.array_equal(out.image[..., 0], d % 80)  # x from the image == x from depth
        assert np.array_equal(out.image[..., 1], d // 80)
        flips.add(
            (
                bool(out.params["flip"]),
                bool(out.params["vflip"]),
            )
        )
    assert len(flips) > 1


def test_photometric_transforms_never_touch_depth():
    spec = {
        "b": {"_target_": "albumentations.RandomBrightnessContrast", "p": 1.0},
        "g": {"_target_": "albumentations.RandomGamma", "p": 1.0},
        "h": {"_target_": "albumentations.HueSaturationValue", "p": 1.0},
    }
    aug = Augmenter(AugmentConfig(seed=0, transforms=spec))
    sample = _pattern()
    out = aug(sample, 0, 0)
    assert out.depth.tobytes() == sample.depth.tobytes()
    assert not np.array_equal(out.image, sample.image)


def test_per_transform_draws_are_independent():
    """The albumentations trap: one seed for every child correlates their draws."""
    spec = {
        "b": {"_target_": "albumentations.RandomBrightnessContrast", "p": 1.0},
        "g": {"_target_": "albumentations.RandomGamma", "p": 1.0},
    }
    aug = Augmenter(AugmentConfig(seed=0, transforms=spec))
    sample = _pattern(16, 16)
    alphas, gammas = [], []
    for i in range(300):
        params = aug(sample, i, 0).params
        alphas.append(params["b"]["alpha"])
        gammas.append(params["g"]["gamma"])
    corr = np.corrcoef(alphas, gammas)[0, 1]
    assert abs(corr) < 0.2, corr
    assert len(set(alphas)) > 250


def test_same_index_and_copy_give_same_result_regardless_of_order():
    spec = {
        "crop": {"_target_": "albumentations.RandomCrop", "height": 30, "width": 30},
        "g": {"_target_": "albumentations.RandomGamma", "p": 0.5},
    }
    aug = Augmenter(AugmentConfig(seed=5, transforms=spec))
    sample = _pattern()
    first = [aug(sample, i, 0).image for i in range(5)]
    again = [aug(sample, i, 0).image for i in reversed(range(5))][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
