"""The sources depth trainers' data comes in: FastDepth's per-frame .h5 (folders, tars read
in place, the archives behind the hub's sayakpaul/nyu_depth_v2 and their download into the
Hugging Face cache), trainer file lists, the official NYU split, and the hub's partial
parquet conversion. Fixtures are written in the real layouts (``fixtures.py``)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import fixtures
import numpy as np
import pytest
from conftest import make_cfg

from pipeline import read
from pipeline.errors import PipelineError
from pipeline.run.runner import run

PLAIN = ["augment=none", "runtime.progress=false", "report.enabled=false", "runtime.workers=1"]
NYU_COMMIT = "50579a0b591445f91bf7269b28611ad1cc6a05d2"  # conf/source/nyu.yaml


def cfg(out: Path, *overrides: str):
    return make_cfg(out, *PLAIN, *overrides, small=False)


def written(out: Path) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    return {m["key"]: (image, depth, m) for image, depth, m in read.load(out)}


@pytest.fixture(scope="module")
def fastdepth(tmp_path_factory) -> tuple[Path, fixtures.Samples]:
    root = tmp_path_factory.mktemp("fastdepth")
    samples = fixtures.fastdepth_tree(root / "nyudepthv2")
    fixtures.sayakpaul_tars(root / "nyudepthv2", root / "data")
    with tarfile.open(root / "nyudepthv2.tar", "w") as tar:  # one tar of the whole tree
        for split in ("train", "val"):
            tar.add(root / "nyudepthv2" / split, arcname=split)
    return root, samples


@pytest.mark.parametrize("where", ["nyudepthv2", "nyudepthv2.tar", "data", "data/*.tar"])
def test_fastdepth_folder_and_tars_give_bit_exact_frames(fastdepth, tmp_path, where):
    root, samples = fastdepth
    out = tmp_path / "out"
    result = run(cfg(out, "source=fastdepth", f"source.path={root / where}", "output.shard_size=3"))
    got = written(out)
    train = {k: v for k, v in samples.items() if k.startswith("train/")}
    assert list(got) == sorted(train)  # keys from the relative path, sorted
    for key, (image, depth) in train.items():
        assert np.array_equal(got[key][0], image)
        assert got[key][1].tobytes() == depth.tobytes()
        assert got[key][2]["camera"]["fx"] == 518.8579  # the NYU camera
    identity = result.info.source
    assert identity["kind"] == "fastdepth" and identity["num_samples"] == len(train)
    if where == "data":  # the split's own archives only
        assert [Path(t).name for t in identity["tars"]] == ["train-000000.tar", "train-000001.tar"]


def test_fastdepth_val_split_and_a_folder_inside_the_tree(fastdepth, tmp_path):
    root, samples = fastdepth
    val = {k: v for k, v in samples.items() if k.startswith("val/")}
    run(cfg(tmp_path / "v", "source=fastdepth", f"source.path={root / 'data'}", "source.split=val"))
    got = written(tmp_path / "v")
    assert list(got) == sorted(val)
    assert all(got[k][1].tobytes() == v[1].tobytes() for k, v in val.items())
    inside = root / "nyudepthv2" / "val" / "official"
    run(cfg(tmp_path / "i", "source=fastdepth", f"source.path={inside}", "source.split=test"))
    assert [k.rpartition("/")[2] for k in written(tmp_path / "i")] == ["00001", "00002"]


def test_fastdepth_refuses_compressed_tars_and_missing_frames(fastdepth, tmp_path):
    root, _ = fastdepth
    gz = tmp_path / "nyudepthv2.tar.gz"
    gz.write_bytes(b"\x1f\x8b")
    with pytest.raises(PipelineError, match="compressed and cannot be read in place"):
        run(cfg(tmp_path / "gz", "source=fastdepth", f"source.path={gz}"))
    with pytest.raises(PipelineError, match="no .h5 frames for source.split=val"):
        run(
            cfg(
                tmp_path / "m",
                "source=fastdepth",
                f"source.path={root / 'data' / 'train-*.tar'}",
                "source.split=val",
            )
        )


def test_fastdepth_corrupt_frame_is_a_sample_error_naming_it(tmp_path):
    tree = tmp_path / "nyudepthv2"
    samples = fixtures.fastdepth_tree(tree)
    (tree / "train" / "kitchen_0028b" / "00005.h5").write_bytes(b"not hdf5")
    out = tmp_path / "out"
    result = run(cfg(out, "source=fastdepth", f"source.path={tree}", "runtime.on_error=skip"))
    assert (
        result.skipped == 1 and result.written == sum(k.startswith("train/") for k in samples) - 1
    )
    reasons = result.info.counts.skipped_reasons
    assert any("00005.h5" in r and "HDF5" in r for r in reasons), reasons


def test_nyu_reads_the_archives_from_the_hugging_face_cache_offline(
    fastdepth, tmp_path, monkeypatch
):
    """source=nyu: snapshot_download finds the pinned commit's archives in the cache (what
    an earlier, online run left there) and the fastdepth reader reads them in place."""
    root, samples = fastdepth
    cache = tmp_path / "hf"
    snapshot = cache / "datasets--sayakpaul--nyu_depth_v2" / "snapshots" / NYU_COMMIT / "data"
    snapshot.mkdir(parents=True)
    for tar in (root / "data").glob("*.tar"):
        (snapshot / tar.name).symlink_to(tar)
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read when huggingface_hub is imported ...
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # ... already was
    out = tmp_path / "out"
    result = run(cfg(out, "source=nyu", f"source.cache_dir={cache}", "source.split=validation"))
    got = written(out)
    val = {k: v for k, v in samples.items() if k.startswith("val/")}
    assert list(got) == sorted(val)
    assert all(np.array_equal(got[k][0], v[0]) for k, v in val.items())
    identity = result.info.source
    assert identity["repo"] == "sayakpaul/nyu_depth_v2"
    assert identity["resolved_revision"] == NYU_COMMIT
    assert identity["files_pattern"] == "data/val-*.tar"


def test_hub_partial_parquet_conversion_is_refused(tmp_path):
    import datasets

    partial = tmp_path / "conversion" / "default" / "partial-train"
    partial.mkdir(parents=True)
    image, depth = fixtures.rgbd(6, 1)[0]
    features = datasets.Features({"image": datasets.Image(), "depth_map": datasets.Image()})
    ds = datasets.Dataset.from_dict({"image": [image], "depth_map": [depth]}, features=features)
    ds.to_parquet(str(partial / "0000.parquet"))
    files = "source.data_files=default/partial-train/*.parquet"
    source = ["source=nyu_parquet", f"source.path={tmp_path / 'conversion'}", files]
    with pytest.raises(PipelineError, match=r"partial .*default/partial-train.* source=nyu"):
        run(cfg(tmp_path / "out", *source, f"source.cache_dir={tmp_path}/c"))
    assert not (tmp_path / "out").exists()


# ---- trainer file lists as a source ----------------------------------------------------


def test_bts_list_with_leading_slashes_none_depth_and_focal(tmp_path):
    samples = fixtures.bts_list(tmp_path / "bts", focal=520.5)
    out = tmp_path / "out"
    result = run(
        cfg(out, "source=filelist", f"source.path={tmp_path / 'bts/train_files_with_gt.txt'}")
    )
    got = written(out)
    assert sorted(got) == sorted(samples) and len(got) == 7
    for key, (image, depth) in samples.items():
        assert np.array_equal(got[key][0], image)
        assert got[key][1].tobytes() == depth.tobytes()  # millimetres / 1000
        camera = {k: got[key][2]["camera"][k] for k in ("fx", "fy", "cx", "cy")}
        assert camera == {"fx": 520.5, "fy": 520.5, "cx": 63.5, "cy": 47.5}
    identity = result.info.source
    assert identity["dropped_without_depth"] == 1 and identity["num_samples"] == 7


def test_filelist_line_errors_are_one_line(tmp_path):
    bad = tmp_path / "list.txt"
    bad.write_text("a.png b.png 518.8 extra\n")
    with pytest.raises(PipelineError, match="line 1: expected `rgb depth \\[focal\\]`, got 4"):
        run(cfg(tmp_path / "o", "source=filelist", f"source.path={bad}"))
    bad.write_text("a.png b.png f\n")
    with pytest.raises(PipelineError, match="line 1: focal 'f' is not a number"):
        run(cfg(tmp_path / "o", "source=filelist", f"source.path={bad}"))


# ---- the official NYU split -----------------------------------------------------------


def test_nyu_mat_official_split(tmp_path):
    mat = tmp_path / "nyu_depth_v2_labeled.mat"
    samples = fixtures.nyu_mat(mat, n=7)
    fixtures.splits_mat(tmp_path / "splits.mat", train=[0, 2, 3, 5], test=[1, 4, 6])
    source = ["source=nyu_mat", f"source.path={mat}", f"source.splits={tmp_path / 'splits.mat'}"]
    run(cfg(tmp_path / "train", *source))
    run(cfg(tmp_path / "test", *source, "source.split=test"))
    train, test = written(tmp_path / "train"), written(tmp_path / "test")
    assert list(train) == ["train/000000", "train/000002", "train/000003", "train/000005"]
    assert list(test) == ["test/000001", "test/000004", "test/000006"]
    assert test["test/000004"][1].tobytes() == samples["train/000004"][1].tobytes()
    assert "split: test" in (tmp_path / "test" / "README.md").read_text()
    with pytest.raises(PipelineError, match="with source.splits the split is train or test"):
        run(cfg(tmp_path / "v", *source, "source.split=val"))
    fixtures.splits_mat(tmp_path / "bad.mat", train=[0, 9], test=[1])
    with pytest.raises(PipelineError, match="trainNdxs holds index 10"):
        run(
            cfg(
                tmp_path / "b",
                "source=nyu_mat",
                f"source.path={mat}",
                f"source.splits={tmp_path / 'bad.mat'}",
            )
        )
