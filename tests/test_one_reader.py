"""The one reader (``pipeline.dataset.reader``): every consumer of a written dataset reads
through it, from a directory and from the loopback S3 server alike, and every one refuses
a shard with one flipped byte, naming it (``read.load``, ``pipeline.torch``,
``depth-pipeline-verify``); verify also covers the manifests' sample records and the
trainer lists."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, make_cfg

from pipeline import read
from pipeline.dataset.reader import Reader
from pipeline.dataset.store import Remote
from pipeline.errors import PipelineError
from pipeline.run.runner import run

DATA = ["source.num_samples=6", "output.shard_size=3", "report.enabled=false"]


def verify(root: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from pipeline.app import verify_cli; verify_cli()", root],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def flip(data: bytes, at: int = 2000) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    out = tmp_path_factory.mktemp("one-reader") / "ds"
    run(make_cfg(out, *DATA, "runtime.workers=1"))
    return out


def test_reader_reads_what_the_tar_holds_by_position_and_by_range(local):
    reader = Reader.open(local)
    assert len(reader) == 6 and reader.shard_sizes() == [3, 3]
    streamed = list(reader.stream(1, 5))
    assert [s.position for s in streamed] == [1, 2, 3, 4]
    for s in streamed:
        again = reader.read(s.position)
        assert again.key == s.key and np.array_equal(again.depth, s.depth)
        assert s.depth.dtype == np.float32 and s.image.dtype == np.uint8
        assert s.camera is not None and s.camera.fx == s.meta["camera"]["fx"]
        assert s.index == s.meta["augment"]["index"] and isinstance(s.params, dict)
    loaded = [meta["key"] for _, _, meta in read.load(local)]
    assert loaded == [reader.read(i).key for i in range(6)]


def damaged_copy(local, tmp_path):
    """A copy of the dataset whose second shard has one flipped byte."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(local, copy)
    tar = copy / "train-000001.tar"
    tar.write_bytes(flip(tar.read_bytes()))
    return copy


def test_every_reader_refuses_a_flipped_byte_locally(local, tmp_path):
    torch_datasets = pytest.importorskip("pipeline.torch")
    copy = damaged_copy(local, tmp_path)
    with pytest.raises(PipelineError, match="train-000001.tar: its bytes changed"):
        list(read.load(copy))
    ds = torch_datasets.DepthDataset(copy)
    ds[0]  # the intact shard reads
    with pytest.raises(PipelineError, match="train-000001.tar: its bytes changed"):
        ds[4]
    with pytest.raises(PipelineError, match="train-000001.tar"):
        list(torch_datasets.DepthShards(copy))
    proc = verify(str(copy))
    assert proc.returncode == 2 and "train-000001.tar: its bytes changed" in proc.stderr
    # opting out of the check: the damaged member is still one line naming the shard
    with pytest.raises(PipelineError, match="shard train-000001 cannot be read"):
        list(Reader.open(copy, verify=False).stream())


def test_the_next_shard_checked_in_the_background_is_still_refused_when_reached(local, tmp_path):
    import threading

    torch_datasets = pytest.importorskip("pipeline.torch")
    copy = damaged_copy(local, tmp_path)
    got = []
    with pytest.raises(PipelineError, match="train-000001.tar: its bytes changed"):
        for sample in torch_datasets.DepthShards(copy):  # shard 0, then the damaged one
            got.append(sample["key"])
    assert got == [s.key for s in Reader.open(local).stream(0, 3)]
    assert len(list(torch_datasets.DepthShards(local))) == 6
    names = [t.name for t in threading.enumerate()]
    assert "depth-pipeline-check" not in names  # none left: a later loader may still fork


def test_verify_covers_sample_records_and_trainer_lists(tmp_path):
    out = tmp_path / "lists"
    size = ["source.height=48", "source.width=64", "runtime.progress=false"]
    run(make_cfg(out, *DATA, *size, "output=filelist", "augment=none", small=False))
    assert verify(str(out)).returncode == 0
    manifest = out / "manifests" / "train-000000.json"
    original = manifest.read_bytes()
    data = json.loads(original)
    data["samples"][0]["params"] = {"flip": {"edited": True}}
    manifest.write_text(json.dumps(data, sort_keys=True))
    proc = verify(str(out))
    assert proc.returncode == 2 and "manifests/train-000000.json: edited" in proc.stderr
    manifest.write_bytes(original)
    listing = out / "train_files_with_gt.txt"
    listing.write_text(listing.read_text().replace(" ", "  ", 1))
    proc = verify(str(out))
    assert proc.returncode == 2 and "train_files_with_gt.txt: edited" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unknown_part_is_refused_by_read_load(local):
    """At the call, before anything is iterated."""
    with pytest.raises(PipelineError, match="has no part 'nope'; its parts: none"):
        read.load(local, parts=["nope"])


def test_a_dataset_in_a_bucket_reads_like_the_local_copy(s3, local):
    torch_datasets = pytest.importorskip("pipeline.torch")
    url = f"{s3}/ds"
    run(make_cfg(url, *DATA, "runtime.workers=1"))
    here, there = torch_datasets.DepthDataset(local), torch_datasets.DepthDataset(url)
    assert len(here) == len(there) == 6
    for i in range(6):
        a, b = here[i], there[i]
        assert a["key"] == b["key"]
        for name in ("image", "depth", "K", "eval_mask"):
            assert bool((a[name] == b[name]).all()) or name == "K", name
    streamed = [s["key"] for s in torch_datasets.DepthShards(url)]
    assert streamed == [here[i]["key"] for i in range(6)]
    assert [m["key"] for _, _, m in read.load(url)] == streamed
    proc = verify(url)
    assert proc.returncode == 0 and "verified" in proc.stdout, proc.stderr
    # one flipped byte in an object: every reader names it
    remote = Remote(url, {"skip_instance_cache": True})
    name = "train-000001.tar"
    tampered = flip(remote.read_bytes(name))
    remote.fs.pipe_file(remote.path(name), tampered)
    where = f"{url}/{name}: its bytes changed"
    with pytest.raises(PipelineError, match=where):
        list(read.load(url))
    with pytest.raises(PipelineError, match=where):
        list(torch_datasets.DepthShards(url))
    proc = verify(url)
    assert proc.returncode == 2 and where in proc.stderr


def test_a_mixture_fed_back_keeps_its_tags_camera_and_params(tmp_path):
    """``source=webdataset`` on an earlier output reads it through the one reader."""
    from fixtures import folder_mm, hub_parquet

    hub_parquet(tmp_path / "nyu", n=4, shape=(96, 128))
    folder_mm(tmp_path / "mm", n=3, shape=(96, 128))
    first = tmp_path / "first"
    parts = [
        "source=mix",
        "+source@source.parts.nyu.source=nyu_parquet",
        f"source.parts.nyu.source.path={tmp_path / 'nyu'}",
        "+source@source.parts.mine.source=folder",
        f"source.parts.mine.source.path={tmp_path / 'mm'}",
        'source.parts.mine.source.depth_path="depth/{stem}.png"',
        "source.parts.mine.source.depth_scale=1000",
        "source.parts.mine.data_type=lidar",
        "source.num_samples=6",
        "augment.transforms.crop.height=64",
        "augment.transforms.crop.width=96",
    ]
    run(make_cfg(first, *parts, "report.enabled=false", "runtime.progress=false", small=False))
    again = tmp_path / "again"
    plain = ["augment=none", "report.enabled=false", "runtime.progress=false"]
    run(make_cfg(again, "source=webdataset", f"source.path={first}", *plain, small=False))
    before = {m["key"]: m for _, _, m in read.load(first)}
    after = {m["key"]: m for _, _, m in read.load(again)}
    assert sorted(after) == sorted(before) and {m["dataset"] for m in after.values()} == {
        "nyu",
        "mine",
    }
    for key, meta in after.items():
        old = before[key]
        assert (meta["dataset"], meta["data_type"]) == (old["dataset"], old["data_type"])
        assert meta["camera"]["fx"] == old["camera"]["fx"]
        assert meta["camera"]["cx"] == old["camera"]["cx"]
        assert meta["augment"]["params"] == old["augment"]["params"] != {}


def test_a_url_with_dot_segments_is_refused_by_every_reader_naming_the_dataset():
    url = "s3://bkt/a/../ds"
    with pytest.raises(PipelineError, match=r"^dataset=s3://bkt/a/\.\./ds: a URL path with '\.\.'"):
        read.load(url)
    with pytest.raises(PipelineError, match=r"^dataset=s3://bkt/a/\.\./ds"):
        Reader.open(url)
    proc = verify(url)
    assert proc.returncode == 2 and "dataset=s3://bkt/a/../ds" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "output.dir" not in proc.stderr
