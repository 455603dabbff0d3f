"""``output.splits=true``: train (augmented) and test (``augment=none``) written by two runs
into one dataset, each in its own folder with its own records; ``datasets.load_dataset``
of the top dir gives both, the hub's card parser reads the top card, and overwriting one
split leaves the other's files byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL, run_cli

from pipeline import read

TRAIN = [*SMALL, "source.num_samples=10", "output.shard_size=4", "report.enabled=false"]
TEST = ["source.height=96", "source.width=128", "runtime.progress=false", "augment=none",
        "report.enabled=false", "source.split=test", "source.seed=7",
        "+augment.transforms.eigen._target_=pipeline.augment.transforms.EigenCrop",
        "+augment.transforms.eigen.dataset=nyu"]  # fmt: skip


def write(out: Path, *args: str) -> None:
    proc = run_cli(*args, "output=parquet", "output.splits=true", f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("splits") / "ds"
    write(out, *TRAIN)
    write(out, *TEST, "source.num_samples=6")
    return out


def test_load_dataset_gives_both_splits_with_the_cards_sizes(both, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    ds = datasets.load_dataset(str(both), cache_dir=str(tmp_path / "hf"))
    assert isinstance(ds, datasets.DatasetDict) and set(ds) == {"train", "test"}
    card = DatasetCard.load(both / "README.md")
    sizes = {s["name"]: s["num_examples"] for s in card.data.dataset_info["splits"]}
    assert sizes == {"train": 10, "test": 6} == {k: len(v) for k, v in ds.items()}
    for split in ("train", "test"):
        written = list(read.load(both / split))
        for row, (image, depth, meta) in zip(ds[split], written, strict=True):
            assert (row["image"].mode, row["depth_map"].mode) == ("RGB", "F")
            assert row["key"] == meta["key"]
            assert np.array_equal(np.asarray(row["image"]), image)
            assert np.asarray(row["depth_map"]).tobytes() == depth.tobytes()
    params = {s: ds[s][0]["params"] for s in ds}
    assert '"crop"' in params["train"] and '"eigen"' in params["test"]
    # the evaluation region: a mask image in test, null in train (one schema for both)
    assert ds["train"][0]["mask"] is None
    reader = read.Reader.open(both / "test")
    assert reader.read(0).mask is not None
    assert np.array_equal(np.asarray(ds["test"][0]["mask"]), reader.read(0).mask)


def test_the_top_dir_is_named_by_the_reader_in_one_line(both):
    from pipeline.errors import PipelineError

    with pytest.raises(PipelineError, match=r"holds the splits train, test .* e\.g\. .*/train"):
        read.Reader.open(both)


def test_overwriting_test_leaves_every_train_file_unchanged(both, tmp_path):
    before = digests(both / "train")
    write(both, *TEST, "source.num_samples=3", "output.overwrite=true")
    assert digests(both / "train") == before
    assert len(list(read.load(both / "test"))) == 3
    import datasets

    ds = datasets.load_dataset(str(both), cache_dir=str(tmp_path / "hf"))
    assert {k: len(v) for k, v in ds.items()} == {"train": 10, "test": 3}


def test_splits_need_parquet(tmp_path):
    proc = run_cli(*TEST, "output.splits=true", f"output.dir={tmp_path / 'x'}")
    assert proc.returncode == 2
    assert "output.splits=true" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_a_single_split_dataset_is_not_turned_into_splits(tmp_path):
    out = tmp_path / "one"
    proc = run_cli(*TEST, "source.num_samples=2", "output=parquet", f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr
    before = digests(out)
    proc = run_cli(*TEST, "source.num_samples=2", "output=parquet", "output.splits=true",
                   f"output.dir={out}")  # fmt: skip
    assert proc.returncode == 2 and "without output.splits" in proc.stderr
    assert digests(out) == before
