"""Datasets in an object store: ``output.dir=s3://...`` against a real S3-protocol server
on the loopback (moto, fixture ``s3``), reached through s3fs over HTTP as AWS would be.

What is checked is what a user relies on: the objects equal a local run's files byte for
byte, ``read.load`` reads them back, a killed run resumes to the identical dataset, a
second writer is refused, overwrite deletes only the dataset's own objects, and a URL
nobody here can serve is one line (never a local directory named ``s3:``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, S3_ENDPOINT, SMALL, make_cfg

from pipeline import read
from pipeline.dataset.remote_lock import RemoteLock
from pipeline.dataset.store import LOCK_FILE, Remote
from pipeline.errors import PipelineError
from pipeline.run.runner import run

DATA = ["source.num_samples=10", "output.shard_size=2", "report.enabled=false"]


def objects(url: str) -> dict[str, bytes]:
    """Every object under ``url`` (the lock excepted), read with a fresh client."""
    remote = Remote(url, {"skip_instance_cache": True})
    return {rel: remote.read_bytes(rel) for rel in remote.listing() if rel != LOCK_FILE}


def local_files(root) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith(".depth-pipeline")
    }


def shards_and_manifests(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k.endswith(".tar") or k.startswith("manifests/")}


def cli(out: str, *args: str, fault: str | None = None, env_drop: tuple[str, ...] = ()):
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    env.pop("DEPTH_PIPELINE_FAULT", None)
    for name in env_drop:
        env.pop(name, None)
    if fault:
        env["DEPTH_PIPELINE_FAULT"] = fault
    argv = [sys.executable, "-m", "pipeline", *SMALL, *DATA, f"output.dir={out}", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    """The same dataset written to local disk: the files every s3 run must equal."""
    out = tmp_path_factory.mktemp("local") / "ds"
    run(make_cfg(out, *DATA, "runtime.workers=1"))
    return out, shards_and_manifests(local_files(out))


def test_s3_run_equals_local_run_and_reads_back(s3, local_reference, tmp_path):
    local, reference = local_reference
    url = f"{s3}/nyu_aug"
    result = run(make_cfg(url, *DATA, "runtime.workers=2", "report.enabled=true"))
    assert result.out_dir == url and result.written == 10
    got = objects(url)
    assert shards_and_manifests(got) == reference  # shards and manifests, byte for byte
    digests = {
        rel: sha
        for m in (json.loads(v) for k, v in got.items() if k.startswith("manifests/train"))
        for rel, sha in m["files"].items()
    }
    assert all(hashlib.sha256(got[rel]).hexdigest() == sha for rel, sha in digests.items())
    # each shard went up with its sha256 as the checksum the store verifies and keeps
    remote = Remote(url, {"skip_instance_cache": True})
    for rel, sha in digests.items():
        head = remote.fs.call_s3(
            "head_object", Bucket=url[5:].split("/")[0], Key=remote.path(rel).split("/", 3)[3],
            ChecksumMode="ENABLED",
        )  # fmt: skip
        assert base64.b64decode(head["ChecksumSHA256"]).hex() == sha, rel
    info = json.loads(got["dataset_info.json"])
    assert info["config"]["output"]["dir"] == url
    assert "README.md" in got and "report/index.html" in got
    assert f'read.load("{url}")' in got["README.md"].decode()
    assert not any(".tmp-" in rel for rel in got)
    assert not (ROOT / "s3:").exists() and not (tmp_path / "s3:").exists()

    remote_samples = list(read.load(url))
    local_samples = list(read.load(local))
    assert len(remote_samples) == len(local_samples) == 10
    for (ri, rd, rm), (li, ld, lm) in zip(remote_samples, local_samples):
        assert np.array_equal(ri, li) and np.array_equal(rd, ld) and rm == lm


def test_kill9_during_upload_then_same_command_gives_the_identical_dataset(s3, local_reference):
    _, reference = local_reference
    url = f"{s3}/ds"
    # inline (workers=1): the run's own process dies between a shard and its manifest,
    # holding the lock; the same command takes the dead run's lock over and resumes
    killed = cli(url, "runtime.workers=1", fault="shard-uploaded@2")
    assert killed.returncode == -signal.SIGKILL
    left = objects(url)
    assert "dataset_info.json" not in left
    assert "train-000001.tar" in left and "manifests/train-000001.json" not in left
    assert Remote(url).fs.exists(f"{url}/{LOCK_FILE}")  # the dead run's lock

    resumed = cli(url, "runtime.workers=1")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("wrote 8 samples"), resumed.stdout  # no library logs
    assert "kept 2 from an earlier run in 1 shard" in resumed.stdout
    assert shards_and_manifests(objects(url)) == reference
    assert not Remote(url).fs.exists(f"{url}/{LOCK_FILE}")


def test_a_second_writer_is_refused_by_the_conditional_create(s3):
    url = f"{s3}/ds"
    holder = RemoteLock.acquire(Remote(url))  # a live writer (this process)
    try:
        with pytest.raises(PipelineError, match="in use by another depth-pipeline run"):
            RemoteLock.acquire(Remote(url))  # If-None-Match: * answered 412
        second = cli(url)
        assert second.returncode == 2
        line = second.stderr.strip()
        assert "\n" not in line and f"pid {os.getpid()}" in line, second.stderr
        assert f"output.dir={url} is in use by another depth-pipeline run" in line
        assert objects(url) == {}  # the refused run wrote nothing
    finally:
        holder.release()
    assert cli(url).returncode == 0


def test_a_lock_silent_for_lock_stale_s_is_taken_over(s3):
    """A run killed on another node (a preempted job) leaves its lock; once the lock has
    not been rewritten for output.lock_stale_s, the same command takes it over."""
    url = f"{s3}/ds"
    dead = {"host": "node-17", "pid": 4242, "since": "2026-12-01 03:00:00", "token": "x"}
    Remote(url).fs.pipe_file(f"{url}/{LOCK_FILE}", json.dumps(dead).encode())
    time.sleep(2.5)  # S3 keeps LastModified in whole seconds
    refused = cli(url)  # the default (600 s): still the other run's
    assert refused.returncode == 2
    assert "in use by another depth-pipeline run (pid 4242 on host node-17" in refused.stderr
    assert "last rewritten" in refused.stderr and "output.lock_stale_s=600" in refused.stderr
    # the CLI refuses lock_stale_s below 30 s (tests/test_bad_input.py): the lock itself
    # takes a shorter one, so that the test need not wait half a minute
    took = RemoteLock.acquire(Remote(url, lock_stale_s=2))
    try:
        assert took.took_over.startswith("pid 4242 on host node-17")
    finally:
        took.release()
    assert not Remote(url).fs.exists(f"{url}/{LOCK_FILE}")
    assert cli(url).returncode == 0


def test_an_unreadable_lock_ages_from_the_objects_own_time(s3):
    """A garbage lock object (a partial write, an editor) is stale after lock_stale_s
    from when it was written, like any other: it never reads as written just now."""
    url = f"{s3}/ds"
    Remote(url).fs.pipe_file(f"{url}/{LOCK_FILE}", b"\x00not json {")
    time.sleep(2.5)  # S3 keeps LastModified in whole seconds
    took = RemoteLock.acquire(Remote(url, lock_stale_s=2))
    try:
        assert took.took_over.startswith("holder unknown, not rewritten for")
    finally:
        took.release()


def test_the_holder_keeps_its_lock_alive_and_notices_a_takeover(s3):
    url = f"{s3}/ds"
    holder = RemoteLock.acquire(Remote(url, lock_stale_s=2))  # rewritten every 0.25 s
    try:
        time.sleep(3)  # longer than lock_stale_s: only the rewrites keep it fresh
        with pytest.raises(PipelineError, match="in use by another depth-pipeline run"):
            RemoteLock.acquire(Remote(url, lock_stale_s=2))
        other = {"host": "node-3", "pid": 7, "token": "theirs"}
        Remote(url).fs.pipe_file(f"{url}/{LOCK_FILE}", json.dumps(other).encode())
        for _ in range(100):  # its next rewrite is refused: If-Match on its own ETag
            if holder.lost:
                break
            time.sleep(0.1)
        assert holder.lost
        with pytest.raises(PipelineError, match="another run took the lock over"):
            holder.check()
    finally:
        holder.release()
    assert json.loads(Remote(url).read_bytes(LOCK_FILE))["token"] == "theirs"  # left alone


@pytest.mark.slow
def test_overwrite_deletes_only_the_datasets_own_objects(s3):
    url = f"{s3}/ds"
    assert cli(url).returncode == 0
    remote = Remote(url)
    remote.fs.pipe_file(f"{url}/notes.txt", b"mine")
    remote.fs.pipe_file(f"{url}/report/extra/keep.bin", b"mine too")
    changed = cli(url, "source.num_samples=4", "output.overwrite=true")
    assert changed.returncode == 0, changed.stderr
    got = objects(url)
    assert got["notes.txt"] == b"mine" and got["report/extra/keep.bin"] == b"mine too"
    tars = sorted(rel for rel in got if rel.endswith(".tar"))
    assert tars == ["train-000000.tar", "train-000001.tar"]  # the 5-shard dataset is gone
    assert json.loads(got["dataset_info.json"])["counts"]["written"] == 4


@pytest.mark.slow
def test_a_changed_config_or_foreign_prefix_is_refused_in_one_line(s3):
    url = f"{s3}/ds"
    assert cli(url).returncode == 0
    changed = cli(url, "output.shard_size=3")
    assert changed.returncode == 2
    assert f"output.dir={url} holds a dataset made with a different config" in changed.stderr
    assert "depth-pipeline-staging" not in changed.stderr

    foreign = f"{s3}/theirs"
    Remote(foreign).fs.pipe_file(f"{foreign}/data.csv", b"a,b")
    refused = cli(foreign)
    assert refused.returncode == 2
    assert f"output.dir={foreign} is not empty (data.csv)" in refused.stderr
    assert objects(foreign) == {"data.csv": b"a,b"}


@pytest.mark.slow
def test_the_endpoint_can_come_from_the_config(s3, s3_server):
    url = f"{s3}/ds"
    done = cli(url, f"output.endpoint_url={s3_server}", env_drop=("AWS_ENDPOINT_URL",))
    assert done.returncode == 0, done.stderr
    assert "dataset_info.json" in objects(url)


def test_s3_without_s3fs_is_one_line_naming_the_extra(tmp_path):
    code = (
        "import sys; sys.modules['s3fs'] = None\n"  # as if the s3 extra were not installed
        "from pipeline.app import cli\n"
        f"sys.argv = ['depth-pipeline', *{SMALL!r}, 'output.dir=s3://bucket/nyu_aug']\n"
        "cli()\n"
    )
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: output.dir=s3://bucket/nyu_aug: s3:// needs s3fs, which is not installed; "
        "pip install 'depth-pipeline[s3]'"
    )
    assert not [p for p in tmp_path.rglob("*") if "s3:" in p.name]  # no local dir "s3:"


def test_a_missing_bucket_or_an_overlapping_source_is_one_line(s3, tmp_path):
    with pytest.raises(PipelineError) as missing:
        run(make_cfg("s3://no-such-bucket-23/ds", *DATA, "runtime.workers=1"))
    assert str(missing.value).startswith("output.dir=s3://no-such-bucket-23/ds: cannot write there")
    assert "\n" not in str(missing.value)
    with pytest.raises(PipelineError, match=r"overlaps the source \(s3://"):
        run(make_cfg(f"{s3}/tars/out", "source=webdataset", f"source.path={s3}/tars"))


@pytest.mark.parametrize("command", ["depth-pipeline-report"])  # merge takes URLs (test_cluster)
def test_the_local_only_commands_refuse_a_url_in_one_line(tmp_path, command):
    exe = os.path.join(os.path.dirname(sys.executable), command)
    proc = subprocess.run([exe, "s3://bucket/ds"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {command} works on a local dataset directory, not s3://bucket/ds; a dataset "
        f"in an object store is read with pipeline.read.load(url)"
    )
    assert list(tmp_path.iterdir()) == []  # no local directory named s3:


@pytest.mark.parametrize("fmt", ["folder", "filelist"])
def test_folder_and_filelist_outputs_in_a_bucket_equal_the_local_ones(s3, tmp_path, fmt):
    """Their publish step reads every sample's meta JSON back (metadata.jsonl, the trainer
    lists), after the shard files left the staging directory."""
    args = [*DATA, f"output={fmt}", "runtime.workers=1"]
    local = tmp_path / "local"
    run(make_cfg(local, *args))
    url = f"{s3}/{fmt}"
    run(make_cfg(url, *args))
    got, want = objects(url), local_files(local)
    for rel in ("metadata.jsonl", *(r for r in want if r.endswith(".txt"))):
        assert got[rel] == want[rel], rel
    same = [rel for rel in want if rel.startswith(("image/", "depth/", "meta/", "manifests/"))]
    assert same and all(got[rel] == want[rel] for rel in same)
    assert "dataset_info.json" in got


def test_an_endpoint_that_dies_mid_run_is_one_line_naming_it(s3, tmp_path, monkeypatch, capfd):
    """The store stops answering after the first shard went up: one line naming the
    endpoint, exit 2, no 'bug' (botocore's EndpointConnectionError, as s3fs raises it)."""
    from botocore.exceptions import EndpointConnectionError

    from pipeline import app

    real, sent = Remote.publish_shard, []

    def dies(self, *args, **kwargs):
        if sent:
            raise EndpointConnectionError(endpoint_url=f"{S3_ENDPOINT}/bkt/train-000001.tar")
        sent.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Remote, "publish_shard", dies)
    argv = [*SMALL, *DATA, f"output.dir={s3}/ds", "runtime.workers=1"]
    monkeypatch.setattr(sys, "argv", ["depth-pipeline", *argv, f"hydra.run.dir={tmp_path}"])
    capfd.readouterr()
    with pytest.raises(SystemExit) as exited:
        app.cli()
    err = capfd.readouterr().err
    assert exited.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"lost the connection to the object store at {S3_ENDPOINT}" in lines[0]
    assert "bug" not in lines[0]
