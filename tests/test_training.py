"""Training on a mixture straight from the bucket (issue 30): a NYU-schema parquet + KITTI
layout mixture written to the loopback S3 server, read by ``DepthShards`` / ``DepthLoader``
with per-part recipes, one-part batches, read-time weights and mid-epoch resume, across two
simulated ranks x two loader workers. Keys are checked against the dataset's own records
(``read.load``); tensors against an uninterrupted run."""

from __future__ import annotations

import gc
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import make_bucket, make_cfg
from fixtures import hub_parquet, kitti_tree

torch = pytest.importorskip("torch")
pytest.importorskip("s3fs")

from pipeline import read  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.run.runner import run  # noqa: E402
from pipeline.torch import DepthLoader, DepthShards  # noqa: E402

NYU, KITTI = (96, 128), (64, 208)  # small frames: the tests' own per-part recipes fit them


def crop(h: int, w: int) -> dict:
    return {
        "crop": {"_target_": "albumentations.RandomCrop", "height": h, "width": w},
        "flip": {"_target_": "albumentations.HorizontalFlip", "p": 0.5},
    }


RECIPES = {"nyu": crop(64, 96), "kitti": crop(48, 160)}
SIZES = {"nyu": (64, 96), "kitti": (48, 160)}


def mixture(root: Path, out: str | Path, shapes: tuple, n: int, *extra: str) -> None:
    """Write a NYU + KITTI mixture (unaugmented) to ``out``."""
    hub_parquet(root / "nyu", n=n, shape=shapes[0])
    kitti_tree(root / "kitti", shape=shapes[1], frames=n // 2 + 1)
    run(
        make_cfg(
            out,
            "source=mix",
            "+source@source.parts.nyu.source=nyu_parquet",
            f"source.parts.nyu.source.path={root / 'nyu'}",
            "+source@source.parts.kitti.source=kitti",
            f"source.parts.kitti.source.path={root / 'kitti'}",
            "source.parts.nyu.weight=0.5",
            "source.parts.kitti.weight=0.5",
            "source.parts.kitti.data_type=lidar",
            "augment=none",
            f"source.num_samples={2 * n}",
            "output.shard_size=4",
            "runtime.workers=1",
            "runtime.progress=false",
            "report.enabled=false",
            *extra,
            small=False,
        )
    )


@pytest.fixture(scope="module")
def bucket(s3_server, tmp_path_factory) -> str:
    """40 samples (20 per part) in 10 shards, in a bucket of the loopback S3 server."""
    url = make_bucket(f"training-nk-{os.getpid()}") + "/nk"  # one per test process
    mixture(tmp_path_factory.mktemp("nk-src"), url, (NYU, KITTI), 20)
    return url


def all_keys(root: str | Path) -> list[str]:
    return sorted(meta["key"] for _, _, meta in read.load(root))


def rank_batches(url: str, rank: int, world: int, workers: int, epoch: int = 0, **kw) -> list:
    data = DepthShards(url, augment=RECIPES, batch_size=4, batch_by="part", shuffle=True,
                       rank=rank, world_size=world, **kw)  # fmt: skip
    data.set_epoch(epoch)
    return list(DepthLoader(data, num_workers=workers))


def test_two_ranks_two_workers_one_part_batches_every_sample_once(bucket):
    everything = all_keys(bucket)
    epochs = []
    for epoch in (0, 1):
        ranks = [rank_batches(bucket, rank, 2, 2, epoch) for rank in (0, 1)]
        keys = [k for batches in ranks for b in batches for k in b["key"]]
        assert sorted(keys) == everything  # each written sample exactly once
        for batch in (b for batches in ranks for b in batches):
            (part,) = set(batch["dataset"])  # one part per batch ...
            assert tuple(batch["image"].shape[2:]) == SIZES[part]  # ... with its recipe
            assert len(batch["key"]) <= 4
        assert abs(len(ranks[0]) - len(ranks[1])) <= 1
        epochs.append([b["key"] for b in ranks[0]])
    assert epochs[0] != epochs[1]  # set_epoch reshuffles


def test_global_order_is_the_same_on_1_and_2_ranks(bucket):
    one = [b["key"] for b in rank_batches(bucket, 0, 1, 0)]
    two = [[b["key"] for b in rank_batches(bucket, rank, 2, 2)] for rank in (0, 1)]
    interleaved = [b for pair in zip(*two, strict=False) for b in pair]
    interleaved += two[0][len(two[1]) :]
    assert interleaved == one


def test_lanes_give_each_reader_its_own_run_of_shards(bucket):
    from pipeline.dataset.reader import Reader

    reader = Reader.open(bucket)
    shard_of = {r.key: reader.manifests[m].index for m, r in reader.entries}

    def reads(lanes: int) -> int:
        """Shards fetched, summed over 2 ranks x 2 workers (a rank's batches are dealt to
        its DataLoader workers round robin)."""
        readers = [
            batches[worker::2]
            for rank in (0, 1)
            for batches in [rank_batches(bucket, rank, 2, 2, lanes=lanes)]
            for worker in (0, 1)
        ]
        return sum(len({shard_of[k] for b in batches for k in b["key"]}) for batches in readers)

    # each of the 4 runs covers one stretch of each part's shards: only a shard where two
    # runs meet (3 places x 2 parts) is read twice; one lane deals every shard to everybody
    assert reads(4) <= len(reader.manifests) + 3 * 2 < reads(1)
    one = [k for b in rank_batches(bucket, 0, 1, 0, lanes=4) for k in b["key"]]
    assert sorted(one) == all_keys(bucket)  # the lanes reorder, every sample still once


def test_resume_after_7_batches_gives_the_rest_of_the_uninterrupted_run(bucket, tmp_path):
    whole = rank_batches(bucket, 0, 1, 2, epoch=1)
    data = DepthShards(bucket, augment=RECIPES, batch_size=4, batch_by="part", shuffle=True,
                       cache_dir=tmp_path)  # fmt: skip
    data.set_epoch(1)
    loader = DepthLoader(data, num_workers=2)
    for seen, _ in enumerate(loader, 1):
        if seen == 7:
            break  # preempted
    state = loader.state_dict()
    del loader, data
    again = DepthShards(bucket, augment=RECIPES, batch_size=4, batch_by="part", shuffle=True)
    resumed_loader = DepthLoader(again, num_workers=2)
    resumed_loader.load_state_dict(state)
    resumed = list(resumed_loader)
    assert len(resumed) == len(whole) - 7 > 0
    for a, b in zip(resumed, whole[7:], strict=True):
        assert a["key"] == b["key"]
        for name in ("image", "depth", "valid", "K", "depth_factor"):
            assert torch.equal(a[name], b[name]), name
    assert resumed_loader.state_dict() == {"epoch": 2, "consumed": 0, "seed": 0}
    gc.collect()
    assert not any(tmp_path.iterdir())  # the cache went with the dataset


def test_read_time_weights_draw_each_part_half_the_time(bucket):
    data = DepthShards(bucket, weights={"nyu": 0.5, "kitti": 0.5}, epoch_samples=2000,
                       batch_size=4, shuffle=True)  # fmt: skip
    parts = data.reader.parts()
    assert sorted(parts) == ["kitti", "nyu"]
    tags = [data.reader.entries[p][1].dataset for batch in data.batches() for p in batch]
    assert len(tags) == 2000
    share = Counter(tags)["nyu"] / len(tags)
    assert abs(share - 0.5) <= 0.03, share
    # per part batches: the draws are per batch; the batches read hold what was planned
    data = DepthShards(bucket, augment=RECIPES, weights={"nyu": 0.8, "kitti": 0.2},
                       epoch_samples=40, batch_size=4, batch_by="part")  # fmt: skip
    batches = list(DepthLoader(data))
    assert len(batches) == 10 and all(len(set(b["dataset"])) == 1 for b in batches)
    # without weights the written proportions: the same count of each as written
    unweighted = DepthShards(bucket, batch_size=4)
    tags = [unweighted.reader.entries[p][1].dataset for b in unweighted.batches() for p in b]
    written = Counter(m["dataset"] for _, _, m in read.load(bucket))
    assert Counter(tags) == written


def test_mixed_sizes_in_a_batch_name_both_parts_and_the_option(bucket):
    data = DepthShards(bucket, batch_size=40)  # everything in one batch: both parts
    with pytest.raises(ValueError, match=r"part (nyu|kitti).*part (nyu|kitti).*batch_by='part'"):
        next(iter(data))
    sized = DepthShards(bucket, batch_size=4, batch_by="size", shuffle=True)
    shapes = {tuple(b["image"].shape[2:]): set(b["dataset"]) for b in DepthLoader(sized)}
    assert shapes == {NYU: {"nyu"}, KITTI: {"kitti"}}


def test_bad_options_are_one_line(bucket):
    with pytest.raises(PipelineError, match=r"augment for part nyu \(96x128 samples\).*crop"):
        DepthShards(bucket, augment=crop(64, 160), batch_size=4)
    with pytest.raises(PipelineError, match="weights: no part named nope"):
        DepthShards(bucket, weights={"nope": 1.0}, batch_size=4)
    with pytest.raises(PipelineError, match="batch_by='parts'"):
        DepthShards(bucket, batch_size=4, batch_by="parts")
    with pytest.raises(PipelineError, match="DepthLoader reads a DepthShards built with"):
        DepthLoader(DepthShards(bucket))


def test_the_trainers_presets_per_part_on_full_size_frames(tmp_path):
    out = tmp_path / "nk"
    mixture(tmp_path / "src", out, ((480, 640), (375, 1242)), 2)
    with pytest.raises(PipelineError, match="part nyu"):  # KITTI's crop on NYU frames
        DepthShards(out, augment="bts_kitti")
    data = DepthShards(out, augment={"nyu": "bts_nyu", "kitti": "bts_kitti"}, batch_size=2,
                       batch_by="part", shuffle=True)  # fmt: skip
    sizes = {b["dataset"][0]: tuple(b["image"].shape[2:]) for b in DepthLoader(data)}
    assert sizes == {"nyu": (416, 544), "kitti": (352, 704)}


def test_a_canonical_camera_labels_the_batch_with_its_depth_factor(tmp_path):
    out = tmp_path / "canon"
    mixture(tmp_path / "src", out, (NYU, KITTI), 2, "source.canonical.focal=1000")
    ratios = {m["key"]: m["augment"]["params"]["canonical"]["ratio"] for *_, m in read.load(out)}
    plain = {m["key"]: d for _, d, m in read.load(out)}
    batch = next(iter(DepthLoader(DepthShards(out, batch_size=1))))
    key = batch["key"][0]
    assert float(batch["depth_factor"][0]) == pytest.approx(ratios[key], rel=1e-6)
    assert ratios[key] != pytest.approx(1.0)
    np.testing.assert_array_equal(batch["depth"][0, 0].numpy(), plain[key])
