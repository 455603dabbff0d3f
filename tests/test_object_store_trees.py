"""Folder and file-list sources in an object store (the loopback S3 server, fixture
``s3``): the same files give the same bytes as on local disk, each object is stamped for
resume (a changed one is refused), a missing one is one line, the input stays apart from
the output, and a source reaches its store through ``source.endpoint_url`` /
``source.storage_options`` with nothing in the environment (a mixture: per part)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import S3_ENDPOINT, make_cfg, read_tar, run_cli
from fixtures import bts_list, folder_mm
from test_object_store_sources import SMALL_RUN, upload_tree

from pipeline.dataset.store import Remote
from pipeline.errors import PipelineError
from pipeline.run.runner import run


def same_samples(made: Path, local: Path, where: tuple[str, str]) -> None:
    """The tars of ``made`` hold the bytes of ``local``'s: every image and depth member
    identical, each record too but for the source location it names (a path on one side,
    the object's URL on the other: ``where`` = (local prefix, URL prefix))."""
    a, b = sorted(made.glob("*.tar")), sorted(local.glob("*.tar"))
    assert [p.name for p in a] == [p.name for p in b] and a
    for x, y in zip(a, b):
        got, want = read_tar(x), read_tar(y)
        assert list(got) == list(want)
        for key, members in want.items():
            record = json.loads(members.pop("json"))
            mine = json.loads(got[key].pop("json"))
            assert got[key] == members  # image and depth bytes
            location = record["source"].pop("location")
            assert mine["source"].pop("location") == location.replace(*where)
            assert mine == record


CLI = [
    *SMALL_RUN,
    "runtime.progress=false",
    "augment.transforms.crop.height=64",
    "augment.transforms.crop.width=96",
]
FOLDER = ["source=folder", "source.depth_path='depth/{key}.png'", "source.depth_scale=1000"]


def test_a_folder_in_a_bucket_gives_the_bytes_of_the_local_folder_and_resumes(bucket, tmp_path):
    s3 = bucket  # each store (fixture ``bucket``)
    folder_mm(tmp_path / "mine", n=7)
    url = f"{s3}/nyu/mine"
    upload_tree(tmp_path / "mine", url)
    local = run(make_cfg(tmp_path / "local", *FOLDER, *SMALL_RUN, f"source.path={tmp_path}/mine"))
    # two workers: the opened source (its listing) goes to them, no second listing
    pool = [o for o in SMALL_RUN if not o.startswith("runtime.workers=")] + ["runtime.workers=2"]
    remote = run(make_cfg(tmp_path / "remote", *FOLDER, *pool, f"source.path={url}/"))
    assert remote.written == local.written == 7
    same_samples(tmp_path / "remote", tmp_path / "local", (f"{tmp_path}/mine", url))
    assert remote.info.source["path"] == f"{url}/"

    again = run(make_cfg(tmp_path / "remote", *FOLDER, *SMALL_RUN, f"source.path={url}/"))
    assert again.new_shards == 0 and again.kept_shards == 3  # resumed: every object unchanged
    if url.startswith("s3://"):  # how the store is reached is no part of the data
        reach = [f"source.endpoint_url={S3_ENDPOINT}", "source.storage_options={use_ssl: false}"]
        again = run(
            make_cfg(tmp_path / "remote", *FOLDER, *SMALL_RUN, f"source.path={url}/", *reach)
        )
        assert again.new_shards == 0 and again.kept_shards == 3

    # same size, other bytes: only the ETag tells (an S3 object has no mtime to go by)
    depth = tmp_path / "mine" / "depth" / "room_004.png"
    data = bytearray(depth.read_bytes())
    data[-20] ^= 1
    Remote(url).fs.pipe_file(f"{url}/depth/room_004.png", bytes(data))
    with pytest.raises(PipelineError, match=r"the source changed since output.dir=.*1 finished"):
        run(make_cfg(tmp_path / "remote", *FOLDER, *SMALL_RUN, f"source.path={url}/"))


def test_a_file_list_in_a_bucket_gives_the_bytes_of_the_local_list(bucket, tmp_path):
    s3 = bucket  # each store (fixture ``bucket``)
    bts_list(tmp_path / "sync", n=5)
    url = f"{s3}/nyu/sync"
    upload_tree(tmp_path / "sync", url)
    common = ["source=filelist", *SMALL_RUN]
    listed = "train_files_with_gt.txt"
    local = run(make_cfg(tmp_path / "local", *common, f"source.path={tmp_path}/sync/{listed}"))
    remote = run(make_cfg(tmp_path / "remote", *common, f"source.path={url}/{listed}"))
    # a local list of files in the bucket (BTS ships its lists apart from the images)
    (tmp_path / listed).write_bytes((tmp_path / "sync" / listed).read_bytes())
    mixed = run(
        make_cfg(
            tmp_path / "mixed",
            *common,
            f"source.path={tmp_path}/{listed}",
            f"source.image_root={url}",
            f"source.depth_root={url}/",
        )
    )
    assert remote.written == local.written == mixed.written == 5
    assert remote.info.source["dropped_without_depth"] == 1
    same_samples(tmp_path / "remote", tmp_path / "local", (f"{tmp_path}/sync", url))
    same_samples(tmp_path / "mixed", tmp_path / "local", (f"{tmp_path}/sync", url))

    again = run(make_cfg(tmp_path / "mixed", *common, f"source.path={tmp_path}/{listed}",
                         f"source.image_root={url}", f"source.depth_root={url}/"))  # fmt: skip
    assert again.new_shards == 0
    rgb = tmp_path / "sync" / "scene_0001" / "rgb_00003.png"
    Remote(url).fs.pipe_file(f"{url}/scene_0001/rgb_00003.png", rgb.read_bytes() + b"\0")
    with pytest.raises(PipelineError, match="the source changed since output.dir="):
        run(make_cfg(tmp_path / "remote", *common, f"source.path={url}/{listed}"))


def test_a_missing_object_is_one_line_naming_the_sample_and_the_url(s3, tmp_path):
    bts_list(tmp_path / "sync", n=3)
    url = f"{s3}/sync"
    upload_tree(tmp_path / "sync", url)
    Remote(url).fs.rm_file(f"{url}/scene_0001/sync_depth_00001.png")
    out = tmp_path / "out"
    r = run_cli("source=filelist", f"source.path={url}/train_files_with_gt.txt",
                f"output.dir={out}", *CLI)  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "scene_0001/rgb_00001" in lines[0]
    assert f"{url}/scene_0001/sync_depth_00001.png (no such object)" in lines[0]


def test_an_output_dir_holding_objects_the_source_reads_is_refused(s3, tmp_path):
    bts_list(tmp_path / "sync", n=2)
    url = f"{s3}/sync"
    upload_tree(tmp_path / "sync", url)
    (tmp_path / "list.txt").write_bytes((tmp_path / "sync/train_files_with_gt.txt").read_bytes())
    cfg = make_cfg(f"{url}/scene_0000", "source=filelist", f"source.path={tmp_path}/list.txt",
                   f"source.image_root={url}", f"source.depth_root={url}", *SMALL_RUN)  # fmt: skip
    with pytest.raises(PipelineError, match=r"overlaps the source \(s3://.*/scene_0000/rgb_"):
        run(cfg)
    assert not Remote(url).fs.exists(f"{url}/scene_0000/.depth-pipeline")


def _no_endpoint_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    return env


def _run_without_endpoint(*args: str):
    """The CLI with the AWS_* credentials of the session but no AWS_ENDPOINT_URL."""
    import subprocess
    import sys

    from conftest import ROOT

    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=_no_endpoint_env(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_source_endpoint_url_reaches_the_store_without_aws_endpoint_url(s3, tmp_path):
    folder_mm(tmp_path / "mine", n=3)
    url = f"{s3}/mine"
    upload_tree(tmp_path / "mine", url)
    local = run(make_cfg(tmp_path / "local", *FOLDER, *SMALL_RUN, f"source.path={tmp_path}/mine"))
    r = _run_without_endpoint(*FOLDER, f"source.path={url}", f"source.endpoint_url={S3_ENDPOINT}",
                              f"output.dir={tmp_path}/remote", *CLI)  # fmt: skip
    assert r.returncode == 0, r.stderr
    same_samples(tmp_path / "remote", tmp_path / "local", (f"{tmp_path}/mine", url))
    assert local.written == 3
    # the same through storage_options, the way s3fs takes an endpoint
    options = f"source.storage_options={{client_kwargs: {{endpoint_url: '{S3_ENDPOINT}'}}}}"
    r = _run_without_endpoint(*FOLDER, f"source.path={url}", options,
                              f"output.dir={tmp_path}/options", *CLI)  # fmt: skip
    assert r.returncode == 0, r.stderr
    same_samples(tmp_path / "options", tmp_path / "local", (f"{tmp_path}/mine", url))


def test_each_part_of_a_mixture_reaches_its_own_store(s3, tmp_path):
    """Part ``a`` in the bucket with its endpoint, part ``b`` on local disk: the mixture
    equals the one with both parts local (the endpoint is no part of the data config)."""
    folder_mm(tmp_path / "mine", n=4)
    folder_mm(tmp_path / "other", n=3)
    url = f"{s3}/mine"
    upload_tree(tmp_path / "mine", url)

    def part(name: str, path: str, endpoint: str | None) -> list[str]:
        at = f"source.parts.{name}.source"
        out = [f"+source@{at}=folder", f"{at}.path={path}", f"{at}.depth_path='depth/{{key}}.png'",
               f"{at}.depth_scale=1000"]  # fmt: skip
        return out + ([f"{at}.endpoint_url={endpoint}"] if endpoint else [])

    local_parts = [*part("a", f"{tmp_path}/mine", None), *part("b", f"{tmp_path}/other", None)]
    remote_parts = [*part("a", url, S3_ENDPOINT), *part("b", f"{tmp_path}/other", None)]
    base = ["source=mix", "source.num_samples=6", *CLI]
    r = run_cli(*base, *local_parts, f"output.dir={tmp_path}/local")
    assert r.returncode == 0, r.stderr
    r = _run_without_endpoint(*base, *remote_parts, f"output.dir={tmp_path}/remote")
    assert r.returncode == 0, r.stderr
    same_samples(tmp_path / "remote", tmp_path / "local", (f"{tmp_path}/mine", url))


def test_output_storage_options_given_on_the_command_line_reach_the_store(s3, tmp_path):
    """`output.storage_options='{...}'` as the README writes it (a mapping Hydra takes)."""
    options = f"output.storage_options={{client_kwargs: {{endpoint_url: '{S3_ENDPOINT}'}}}}"
    r = _run_without_endpoint("source.num_samples=2", f"output.dir={s3}/made", options, *CLI)
    assert r.returncode == 0, r.stderr
    assert Remote(f"{s3}/made").fs.exists(f"{s3}/made/dataset_info.json")


def test_objects_are_fetched_when_their_sample_is_read(s3, tmp_path, monkeypatch):
    """Opening lists the bucket; reading sample 1 fetches its two objects and no other."""
    from pipeline.config.schema import to_config
    from pipeline.sources import open_source

    folder_mm(tmp_path / "mine", n=4)
    url = f"{s3}/mine"
    upload_tree(tmp_path / "mine", url)
    cfg = to_config(make_cfg(tmp_path / "out", *FOLDER, f"source.path={url}")).source
    source = open_source(cfg)
    fs = source.tree.fs
    fetched: list[str] = []
    cat_file = fs.cat_file

    def counted(path: str, *args, **kwargs) -> bytes:
        fetched.append(path)
        return cat_file(path, *args, **kwargs)

    monkeypatch.setattr(fs, "cat_file", counted)
    assert len(source) == 4 and fetched == []
    (sample,) = source.iter(1, 2)
    assert sample.key == "room_001"
    assert fetched == [f"{url}/image/room_001.png", f"{url}/depth/room_001.png"]


@pytest.mark.parametrize("kind", ["webdataset", "hub"])
def test_webdataset_and_parquet_sources_take_their_own_endpoint(kind, s3, tmp_path):
    from fixtures import hub_parquet

    data = tmp_path / "data"
    if kind == "hub":
        hub_parquet(data, n=3)
    else:
        run(make_cfg(tmp_path / "made", "source.num_samples=3", *SMALL_RUN))
        data.mkdir()
        for tar in (tmp_path / "made").glob("*.tar"):
            (data / tar.name).write_bytes(tar.read_bytes())
    url = f"{s3}/data"  # the same directory name: the hub source's locations name it
    upload_tree(data, url)
    extra = [f"source.cache_dir={tmp_path}/cache"] if kind == "hub" else []
    base = [f"source={kind}", *extra, *CLI]
    r = run_cli(*base, f"source.path={data}", f"output.dir={tmp_path}/local")
    assert r.returncode == 0, r.stderr
    r = _run_without_endpoint(*base, f"source.path={url}", f"source.endpoint_url={S3_ENDPOINT}",
                              f"output.dir={tmp_path}/remote")  # fmt: skip
    assert r.returncode == 0, r.stderr
    local, remote = (
        sorted((tmp_path / "local").glob("*.tar")),
        sorted((tmp_path / "remote").glob("*.tar")),
    )
    assert local and [p.read_bytes() for p in remote] == [p.read_bytes() for p in local]


def test_kitti_in_s3_takes_each_frames_camera_from_the_calibration_in_the_bucket(s3, tmp_path):
    """The KITTI preset (a folder with a regex, unpaired frames dropped, a text calibration
    per date) reads the same samples and cameras from the bucket as from disk."""
    from fixtures import kitti_tree

    kitti_tree(tmp_path / "kitti")
    url = f"{s3}/kitti"
    upload_tree(tmp_path / "kitti", url)
    local = run(make_cfg(tmp_path / "local", "source=kitti", f"source.path={tmp_path}/kitti",
                         *SMALL_RUN))  # fmt: skip
    remote = run(make_cfg(tmp_path / "remote", "source=kitti", f"source.path={url}", *SMALL_RUN))
    assert remote.written == local.written == 4
    assert remote.info.source["dropped_without_depth"] == 2
    same_samples(tmp_path / "remote", tmp_path / "local", (f"{tmp_path}/kitti", url))


@pytest.mark.parametrize("key", ["output", "source"])
def test_storage_options_that_are_not_a_mapping_are_one_line(key, s3, tmp_path):
    folder_mm(tmp_path / "mine", n=1)
    upload_tree(tmp_path / "mine", f"{s3}/mine")
    r = run_cli(*FOLDER, f"source.path={s3}/mine", f"output.dir={s3}/out",
                f"{key}.storage_options=[1]", *CLI)  # fmt: skip
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: {key}.storage_options=[1] must be a mapping of filesystem options, e.g. "
        f"{key}.storage_options='{{profile: lab}}'"
    ]
