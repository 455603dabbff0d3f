"""Sources in an object store: webdataset tars and parquet in a bucket on each loopback
server (fixture ``bucket``: S3, GCS, Azure) produce the same bytes as the same files on
local disk, and are fingerprinted for resume like local ones (a changed object is refused)."""

from __future__ import annotations

import io
import tarfile

import pytest
from conftest import make_cfg, shard_bytes
from fixtures import hub_parquet

from pipeline.dataset.store import Remote
from pipeline.errors import PipelineError
from pipeline.run.runner import run

SMALL_RUN = ["output.shard_size=3", "report.enabled=false", "runtime.workers=1"]


def upload_tree(local, url: str) -> None:
    remote = Remote(url)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        remote.upload(path, path.relative_to(local).as_posix())


def retouched(tar) -> bytes:
    """The tar with its first member's bytes changed (same names, same keys)."""
    out = io.BytesIO()
    with tarfile.open(tar) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for i, member in enumerate(src):
            data = src.extractfile(member).read()
            data = data[:-1] + bytes([data[-1] ^ 1]) if i == 0 else data
            dst.addfile(member, io.BytesIO(data))
    return out.getvalue()


def test_webdataset_tars_in_a_bucket_give_the_bytes_of_local_tars_and_resume(bucket, tmp_path):
    made = tmp_path / "made"
    run(make_cfg(made, "source.num_samples=7", *SMALL_RUN))
    tars = tmp_path / "tars"
    tars.mkdir()
    for tar in sorted(made.glob("*.tar")):
        (tars / tar.name).write_bytes(tar.read_bytes())
    url = f"{bucket}/shards"
    upload_tree(tars, url)

    common = ["source=webdataset", *SMALL_RUN]
    local = run(make_cfg(tmp_path / "local", *common, f"source.path={tars}"))
    remote = run(make_cfg(tmp_path / "remote", *common, f"source.path={url}/"))
    assert remote.written == local.written == 7
    assert shard_bytes(tmp_path / "remote") == shard_bytes(tmp_path / "local")
    assert remote.info.source["tars"][0] == f"{url}/train-000000.tar"

    again = run(make_cfg(tmp_path / "remote", *common, f"source.path={url}/"))
    assert again.new_shards == 0 and again.kept_shards == 3  # resumed: nothing re-read

    first = sorted(tars.glob("*.tar"))[0]
    Remote(url).fs.pipe_file(f"{url}/{first.name}", retouched(first))  # same keys
    with pytest.raises(PipelineError, match="the source changed since output.dir="):
        run(make_cfg(tmp_path / "remote", *common, f"source.path={url}/"))


def test_parquet_in_a_bucket_gives_the_bytes_of_local_parquet(bucket, tmp_path):
    local_copy = tmp_path / "nyu"
    hub_parquet(local_copy)
    url = f"{bucket}/nyu"
    upload_tree(local_copy, url)
    common = ["source=hub", f"source.cache_dir={tmp_path}/cache", *SMALL_RUN]
    local = run(make_cfg(tmp_path / "local", *common, f"source.path={local_copy}"))
    remote = run(make_cfg(tmp_path / "remote", *common, f"source.path={url}"))
    assert remote.written == local.written == 7
    assert shard_bytes(tmp_path / "remote") == shard_bytes(tmp_path / "local")
    files = remote.info.source["data_files"]
    assert files == [f"{url}/data/train-00000-of-00001.parquet"]
    assert not list((tmp_path / "cache").rglob("*.parquet"))  # read in place, not copied
