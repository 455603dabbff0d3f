"""The same guarantees on every object store, each against a real-protocol server on the
loopback (fixture ``bucket``: S3 on moto, GCS on gcp-storage-emulator, Azure Blob on
azurite): a run equals the local run byte for byte and reads back, kill -9 then the same
command gives the same dataset, a second writer is refused, a lock whose writer on another
host died is taken over after ``output.lock_stale_s``, overwrite keeps objects the
dataset does not own, and a URL with ``..`` segments is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, SMALL, make_cfg
from object_servers import make_bucket_on

from pipeline import read
from pipeline.dataset.remote_lock import RemoteLock
from pipeline.dataset.store import LOCK_FILE, Remote
from pipeline.errors import PipelineError
from pipeline.run.runner import run

DATA = ["source.num_samples=6", "output.shard_size=2", "report.enabled=false"]


def objects(url: str) -> dict[str, bytes]:
    """Every object under ``url`` (the lock excepted), read with a fresh client."""
    remote = Remote(url, {"skip_instance_cache": True})
    return {rel: remote.read_bytes(rel) for rel in remote.listing() if rel != LOCK_FILE}


def shards_and_manifests(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k.endswith(".tar") or k.startswith("manifests/")}


def cli(out: str, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    env.pop("DEPTH_PIPELINE_FAULT", None)
    if fault:
        env["DEPTH_PIPELINE_FAULT"] = fault
    argv = [sys.executable, "-m", "pipeline", *SMALL, *DATA, f"output.dir={out}", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "ds"
    run(make_cfg(out, *DATA, "runtime.workers=1"))
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    return out, shards_and_manifests(files)


def test_a_run_equals_the_local_run_and_reads_back(bucket, local_reference):
    local, reference = local_reference
    url = f"{bucket}/nyu_aug"
    result = run(make_cfg(url, *DATA, "runtime.workers=2"))
    assert result.out_dir == url and result.written == 6
    got = objects(url)
    assert shards_and_manifests(got) == reference  # byte for byte
    assert "dataset_info.json" in got and not any(".tmp-" in rel for rel in got)
    remote = Remote(url)
    for manifest in (json.loads(v) for k, v in got.items() if k.startswith("manifests/")):
        for rel, sha in manifest.get("files", {}).items():  # kept by the store for resume
            assert remote.store.sha256_of(remote.path(rel)) == sha, rel
    assert not remote.matches("train-000000.tar", "0" * 64)

    pairs = zip(read.load(url), read.load(local), strict=True)
    for (ri, rd, rm), (li, ld, lm) in pairs:
        assert np.array_equal(ri, li) and np.array_equal(rd, ld) and rm == lm


def test_datasets_reads_the_tars_with_storage_options(bucket, tmp_path):
    datasets = pytest.importorskip("datasets")
    url = f"{bucket}/hf"
    run(make_cfg(url, *DATA, "runtime.workers=1"))
    ds = datasets.load_dataset(
        "webdataset", data_files=f"{url}/*.tar", split="train", cache_dir=str(tmp_path),
        storage_options={"skip_instance_cache": True},
    )  # fmt: skip
    assert len(ds) == 6
    first = next(iter(read.load(url)))
    assert np.array_equal(np.array(ds[0]["png"]), first[0])


def test_kill9_then_the_same_command_gives_the_same_dataset(bucket, local_reference):
    _, reference = local_reference
    url = f"{bucket}/ds"
    killed = cli(url, "runtime.workers=1", fault="shard-uploaded@2")
    assert killed.returncode == -signal.SIGKILL
    left = objects(url)
    assert "train-000001.tar" in left and "manifests/train-000001.json" not in left
    assert "dataset_info.json" not in left

    resumed = cli(url, "runtime.workers=1")
    assert resumed.returncode == 0, resumed.stderr
    assert "kept 2 from an earlier run in 1 shard" in resumed.stdout
    assert shards_and_manifests(objects(url)) == reference
    assert not Remote(url).fs.exists(f"{url}/{LOCK_FILE}")


def test_a_second_writer_is_refused(bucket):
    url = f"{bucket}/ds"
    holder = RemoteLock.acquire(Remote(url))
    try:
        with pytest.raises(PipelineError, match="in use by another depth-pipeline run"):
            RemoteLock.acquire(Remote(url))
        second = cli(url)
        assert second.returncode == 2
        line = second.stderr.strip()
        assert "\n" not in line and f"pid {os.getpid()}" in line, second.stderr
        assert objects(url) == {}
    finally:
        holder.release()
    assert not Remote(url).fs.exists(f"{url}/{LOCK_FILE}")


def test_a_dead_writers_lock_from_another_host_is_taken_over(bucket):
    url = f"{bucket}/ds"
    dead = {"host": "node-17", "pid": 4242, "since": "2026-12-01 03:00:00", "token": "x"}
    Remote(url).store.create(f"{url}/{LOCK_FILE}", json.dumps(dead).encode())
    written = time.monotonic()
    refused = cli(url)  # the default (600 s): still the other run's
    assert refused.returncode == 2
    assert "(pid 4242 on host node-17" in refused.stderr and "last rewritten" in refused.stderr
    # the smallest lock_stale_s a run takes is 30 s (checks.LOCK_STALE_MIN); some stores
    # keep the last-modified time in whole seconds
    time.sleep(max(0.0, 31.5 - (time.monotonic() - written)))
    took = cli(url, "output.lock_stale_s=30")
    assert took.returncode == 0, took.stderr
    assert "took over the lock of" in took.stderr and "pid 4242 on host node-17" in took.stderr
    assert not Remote(url).fs.exists(f"{url}/{LOCK_FILE}")
    assert json.loads(objects(url)["dataset_info.json"])["counts"]["written"] == 6


def test_overwrite_keeps_foreign_objects_and_names_the_bucket(bucket):
    url = f"{bucket}/ds"
    assert cli(url).returncode == 0
    remote = Remote(url)
    remote.fs.pipe_file(f"{url}/notes.txt", b"mine")
    remote.fs.pipe_file(f"{url}/report/extra/keep.bin", b"mine too")
    changed = cli(url, "source.num_samples=4", "output.overwrite=true")
    assert changed.returncode == 0, changed.stderr
    got = objects(url)
    assert got["notes.txt"] == b"mine", changed.stderr
    assert sorted(r for r in got if r.endswith(".tar")) == [
        "train-000000.tar",
        "train-000001.tar",
    ], changed.stdout + changed.stderr + str(sorted(got))
    assert got["report/extra/keep.bin"] == b"mine too"
    assert json.loads(got["dataset_info.json"])["counts"]["written"] == 4
    kept = f"output.overwrite kept 1 file(s) in {url} that the old dataset's records do not list"
    assert kept in changed.stderr and "report/extra/keep.bin" in changed.stderr, changed.stderr
    assert "depth-pipeline-staging" not in changed.stderr


def test_a_url_with_dot_dot_segments_is_refused(bucket):
    proc = cli(f"{bucket}/a/../b")
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and f"output.dir={bucket}/a/../b" in line and "'..'" in line
    assert objects(bucket) == {}


def test_a_run_to_gcs_never_asks_a_bucket_its_type_over_grpc(servers):
    """gcsfs >= 2026.8 would wrap the filesystem in one that first probes each bucket's
    type over gRPC (60 s against the emulator): a run gets the plain GCS filesystem."""
    pytest.importorskip("gcsfs")
    bucket = make_bucket_on("gs", f"grpc-{os.getpid()}")
    env = {k: v for k, v in os.environ.items() if k != "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"}
    code = (
        "from pipeline.config.urls import filesystem\n"
        f"print(type(filesystem('{bucket}/ds')).__name__)\n"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert probe.stdout.strip() == "GCSFileSystem", probe.stderr
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *SMALL, *DATA, f"output.dir={bucket}/ds"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "bucket type" not in done.stderr and "depth-pipeline:" not in done.stderr


def test_a_store_without_guarantees_says_so_before_writing(tmp_path):
    """fsspec's in-memory store: no conditional replace, no server checksum; one line."""
    proc = cli("memory://lab/ds", "runtime.workers=1")
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("depth-pipeline: memory"))
    assert "no conditional replace" in line and "read back and hashed" in line
