"""pipeline.torch with a real torch DataLoader (2 loader workers) and two simulated ranks:
every sample once per epoch, the map-style and iterable datasets agree, batches mixing
cameras collate, and the augmentation on the fly reproduces an offline run bit for bit
at epoch 0 (the default recipe and every trainer preset), differs at epoch 1 and keeps the
camera reprojecting within half a pixel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fixtures
import numpy as np
import pytest
from conftest import ROOT, make_cfg

torch = pytest.importorskip("torch")

from torch.utils.data import ConcatDataset, DataLoader  # noqa: E402

from pipeline import read  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.run.runner import run  # noqa: E402
from pipeline.sample import Augmented, Camera, Origin, Sample  # noqa: E402
from pipeline.torch import DepthDataset, DepthShards, collate, presets  # noqa: E402

QUIET = ["runtime.workers=1", "runtime.progress=false", "report.enabled=false"]
PRESETS = ["bts_nyu", "bts_kitti", "depth_anything", "metric3d"]
# the synthetic source at the frame size each recipe is made for (BTS's NYU border crop
# needs 640x480, its KITTI crop 1242x375)
FRAME = {"seed": (480, 640), "bts_nyu": (480, 640), "metric3d": (480, 640)}
FRAME |= {"bts_kitti": (375, 1242), "depth_anything": (96, 128), "small": (96, 128)}


def write(out: Path, frame: str, *overrides: str, n: int = 4) -> Path:
    h, w = FRAME[frame]
    size = [f"source.height={h}", f"source.width={w}", f"source.num_samples={n}"]
    run(make_cfg(out, *size, *QUIET, *overrides, small=False))
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """10 unaugmented samples in 4 webdataset shards (3, 3, 3, 1)."""
    out = tmp_path_factory.mktemp("torch") / "base"
    return write(out, "small", "augment=none", "output.shard_size=3", n=10)


def keys_of(root: Path) -> list[str]:
    return [meta["key"] for _, _, meta in read.load(root)]


def epoch_keys(root: Path, epoch: int) -> list[list[str]]:
    """The keys each of 2 ranks gets in ``epoch`` through a DataLoader of 2 workers."""
    per_rank = []
    for rank in range(2):
        ds = DepthShards(root, rank=rank, world_size=2, shuffle=True)
        ds.set_epoch(epoch)
        loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate)
        per_rank.append([k for batch in loader for k in batch["key"]])
        assert len(per_rank[-1]) == len(ds)
    return per_rank


def test_every_sample_once_per_epoch_across_2_ranks_and_2_workers(base):
    everything = sorted(keys_of(base))
    orders = []
    for epoch in (0, 1):
        ranks = epoch_keys(base, epoch)
        assert sorted(ranks[0] + ranks[1]) == everything  # each once, none lost
        assert {len(r) for r in ranks} == {5}  # balanced between ranks
        orders.append(ranks)
    assert orders[0] != orders[1]  # set_epoch reshuffles


def test_map_style_returns_the_iterables_tensors_and_the_stored_samples(base):
    by_key = {s["key"]: s for s in DepthShards(base)}
    mapped = DepthDataset(base)
    assert len(mapped) == len(by_key) == 10
    for i, (image, depth, meta) in enumerate(read.load(base)):
        s = mapped[i]
        assert s["key"] == meta["key"]
        for name in ("image", "depth", "valid", "eval_mask", "K", "has_camera"):
            assert torch.equal(s[name], by_key[s["key"]][name]), name
        assert s["image"].dtype == torch.uint8 and s["image"].shape == (3, 96, 128)
        assert np.array_equal(s["image"].permute(1, 2, 0).numpy(), image)
        assert s["depth"].dtype == torch.float32 and np.array_equal(s["depth"][0].numpy(), depth)
        assert torch.equal(s["valid"][0], torch.from_numpy(depth > 0))
        c = meta["camera"]
        k = [[c["fx"], 0, c["cx"]], [0, c["fy"], c["cy"]], [0, 0, 1]]
        assert np.allclose(s["K"].numpy(), np.array(k), rtol=1e-6)


def test_folder_and_filelist_outputs_read_like_the_webdataset_one(base, tmp_path):
    folder = write(tmp_path / "folder", "small", "augment=none", "output=folder", n=10)
    lists = write(tmp_path / "lists", "small", "augment=none", "output=filelist", n=10)
    tar = DepthDataset(base)
    for root, tolerance in ((folder, 0.0), (lists, 0.5 / 1000 + 1e-6)):  # png16: mm
        ds = DepthDataset(root)
        for i in (0, 9):
            assert torch.equal(ds[i]["image"], tar[i]["image"]) and ds[i]["key"] == tar[i]["key"]
            assert float((ds[i]["depth"] - tar[i]["depth"]).abs().max()) <= tolerance
    # the iterable dataset streams any format through the same reader
    streamed = [s["key"] for s in DepthShards(lists)]
    assert streamed == [tar[i]["key"] for i in range(len(tar))]


def test_a_batch_mixing_samples_with_and_without_a_camera_collates(base, tmp_path):
    fixtures.folder_mm(tmp_path / "src", n=4)
    source = ["source=folder", f"source.path={tmp_path / 'src'}"]
    depth = ['source.depth_path="depth/{stem}.png"', "source.depth_scale=1000"]
    plain = tmp_path / "no_camera"
    run(make_cfg(plain, *source, *depth, "augment=none", *QUIET, small=False))
    mixed = ConcatDataset([DepthDataset(base, dataset="nyu"), DepthDataset(plain, dataset="mine")])
    loader = DataLoader(mixed, batch_size=14, num_workers=2, collate_fn=collate)
    (batch,) = list(loader)
    has = batch["has_camera"]
    assert has.tolist() == [True] * 10 + [False] * 4
    assert batch["K"].shape == (14, 3, 3) and batch["K"][~has].isnan().all()
    assert not batch["K"][has].isnan().any()
    assert batch["dataset"] == ["nyu"] * 10 + ["mine"] * 4
    assert batch["image"].shape == (14, 3, 96, 128) and batch["valid"].dtype == torch.bool


def offline_and_online(tmp_path: Path, recipe: str) -> tuple[Path, DepthDataset]:
    """An offline run with ``recipe`` and the same recipe on the fly over an unaugmented
    dataset of the same source."""
    frame = "small" if recipe == "small" else recipe
    overrides = [] if recipe in ("seed", "small") else [f"augment={recipe}"]
    if recipe == "small":  # the default recipe with the test crop
        overrides = ["augment.transforms.crop.height=64", "augment.transforms.crop.width=96"]
    overrides.append("augment.seed=7")
    offline = write(tmp_path / "offline", frame, *overrides)
    plain = write(tmp_path / "plain", frame, "augment=none")
    augment = make_cfg(offline, *overrides, small=False).augment
    return offline, DepthDataset(plain, augment=augment, return_params=True)


@pytest.mark.parametrize("recipe", ["small", "seed", *PRESETS])
def test_online_epoch_0_is_the_offline_dataset_bit_for_bit_and_epoch_1_differs(tmp_path, recipe):
    offline, online = offline_and_online(tmp_path, recipe)
    stored = list(read.load(offline))
    assert len(stored) == len(online) == 4
    for i, (image, depth, meta) in enumerate(stored):
        s = online[i]
        assert np.array_equal(s["image"].permute(1, 2, 0).numpy(), image)
        assert s["depth"][0].numpy().tobytes() == depth.tobytes()
        c = meta["camera"]
        k = np.array([[c["fx"], 0, c["cx"]], [0, c["fy"], c["cy"]], [0, 0, 1]], np.float32)
        assert s["K"].numpy().tobytes() == k.tobytes()
        assert json.loads(json.dumps(s["params"])) == meta["augment"]["params"]
    online.set_epoch(1)
    later = [online[i] for i in range(4)]
    assert any(s["params"] != m["augment"]["params"] for s, (_, _, m) in zip(later, stored))
    assert any(
        s["image"].shape != (3, *img.shape[:2]) or not np.array_equal(s["image"].numpy(), img)
        for s, (img, _, _) in zip(later, stored)
        for img in [img.transpose(2, 0, 1)]
    )


def test_online_camera_reprojects_within_half_a_pixel(base):
    from test_camera_tracking import reprojection_errors

    recipe = {
        "hflip": {"_target_": "albumentations.HorizontalFlip", "p": 0.5},
        "scale": {
            "_target_": "pipeline.augment.transforms.RandomScale",
            "mode": "divide_depth",
            "scale_limit": [0.8, 1.3],
        },
        "crop": {"_target_": "albumentations.RandomCrop", "height": 64, "width": 96},
    }
    plain, online = DepthDataset(base), DepthDataset(base, augment=recipe, return_params=True)
    worst = 0.0
    for epoch in (0, 1, 2):
        online.set_epoch(epoch)
        for i in range(len(online)):
            a, b = plain[i], online[i]
            assert b["epoch"] == epoch and b["has_camera"]
            source = Sample("k", a["image"].permute(1, 2, 0).numpy(), a["depth"][0].numpy(),
                            camera=camera(a["K"]))  # fmt: skip
            out = Augmented("k", "k", Origin(""), i, 0, b["image"].permute(1, 2, 0).numpy(),
                            b["depth"][0].numpy(), camera(b["K"]), params=b["params"])  # fmt: skip
            err, share = reprojection_errors(source, out, integer=False)
            assert share > 0.9 and err.size > 500
            worst = max(worst, float(err.max()))
    assert worst <= 0.5 + 1e-3  # K is float32 in the tensor (float64 in the JSON)


def camera(k: torch.Tensor) -> Camera:
    k = k.double()
    return Camera(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]))


def test_presets_are_listed_and_a_wrong_one_is_one_line(base):
    assert set(PRESETS) <= set(presets())
    with pytest.raises(PipelineError, match=r"augment=bts: no such preset; choose one of: .*"):
        DepthDataset(base, augment="bts")
    with pytest.raises(PipelineError, match=r"crop 448x576 \(HxW\) is larger than the 96x128"):
        DepthDataset(base, augment="seed")  # the default recipe's crop, before any loader
    with pytest.raises(PipelineError, match="augment.transforms.crop"):
        DepthDataset(base, augment={"crop": {"_target_": "albumentations.RandomCrop", "hieght": 3}})
    for wrong in (123, 1.5, ["hflip"]):
        with pytest.raises(PipelineError, match=r"expected a preset name .* not "):
            DepthDataset(base, augment=wrong)
    with pytest.raises(PipelineError, match="augment: key 1 is not a name"):
        DepthDataset(base, augment={1: {"_target_": "albumentations.HorizontalFlip"}})


def test_an_online_recipe_that_makes_a_float_image_is_refused(base):
    """Offline refuses Normalize (a float image); online does too, naming the sample."""
    normalize = {"n": {"_target_": "albumentations.Normalize"}}
    dataset = DepthDataset(base, augment=normalize)
    with pytest.raises(PipelineError, match=r"turns the image into float32 .* must stay uint8"):
        dataset[0]


def test_the_core_never_imports_torch():
    code = (
        "import sys, pipeline.app, pipeline.read, pipeline.run.runner, pipeline.pool.worker, "
        "pipeline.augment.augmenter, pipeline.augment.transforms; assert 'torch' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # what the workers' forkserver preloads, first thing: every worker is a fork of it
    code = "import sys, pipeline.pool.serve; assert 'torch' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
