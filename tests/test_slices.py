"""Runs spread over many jobs: slices write disjoint shards, the merge joins them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, make_cfg, read_tar, run_cli, shard_bytes

from pipeline.cluster.merge import merge
from pipeline.errors import PipelineError
from pipeline.run.runner import run

COMMON = ["source.num_samples=11", "output.shard_size=2", "report.enabled=false"]


def _merge_cli(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from pipeline.app import merge_cli; merge_cli()", str(out)],
        cwd=ROOT,
        env=dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1"),
        capture_output=True,
        text=True,
    )


def _samples(out: Path) -> set[str]:
    return {k for t in sorted(out.glob("*.tar")) for k in read_tar(t)}


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "ds"
    run(make_cfg(out, *COMMON, "runtime.workers=1"))
    return out


def test_three_slices_merged_equal_one_unsliced_run(whole, tmp_path):
    out = tmp_path / "sliced"
    for k in (2, 0, 1):  # any order, each job on its own
        result = run(make_cfg(out, *COMMON, f"shard.index={k}", "shard.num_shards=3"))
        assert result.written > 0
    assert shard_bytes(out) == shard_bytes(whole) and len(shard_bytes(out)) == 6
    assert _samples(out) == _samples(whole) == {f"train/{i:06d}" for i in range(11)}
    # the last slice merged by itself; the merge command gives the same answer
    merged = json.loads((out / "dataset_info.json").read_text())
    proc = _merge_cli(out)
    assert proc.returncode == 0, proc.stderr
    assert "merged 3 slices: 11 samples" in proc.stdout
    again = json.loads((out / "dataset_info.json").read_text())
    one = json.loads((whole / "dataset_info.json").read_text())
    for info in (merged, again):
        assert info["counts"] == one["counts"]
        assert info["shards"] == one["shards"]
        assert info["stats"] == one["stats"]
        assert info["config_hash"] == one["config_hash"]
    assert "datasets.load_dataset" in (out / "README.md").read_text()


def test_slices_write_no_dataset_info_until_all_are_done(tmp_path):
    out = tmp_path / "partial"
    run(make_cfg(out, *COMMON, "shard.index=0", "shard.num_shards=3"))
    assert (out / "slices" / "slice-00000-of-00003.json").is_file()
    assert not (out / "dataset_info.json").exists()
    assert sorted(p.name for p in out.glob("*.tar")) == ["train-000000.tar", "train-000001.tar"]


def test_missing_slice_is_named(tmp_path):
    out = tmp_path / "missing"
    for k in (0, 2):
        run(make_cfg(out, *COMMON, f"shard.index={k}", "shard.num_shards=3"))
    with pytest.raises(PipelineError, match="slice-00001-of-00003"):
        merge(out)
    proc = _merge_cli(out)
    assert proc.returncode == 2
    assert "1 of 3 slices missing: slice-00001-of-00003" in proc.stderr
    assert "shard.index=1" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "dataset_info.json").exists()


def test_slices_with_different_configs_are_refused(tmp_path):
    out = tmp_path / "mixed"
    run(make_cfg(out, *COMMON, "shard.index=0", "shard.num_shards=2"))
    # a job run with another seed into another dir, its slice summary copied over
    other = tmp_path / "other"
    run(make_cfg(other, *COMMON, "augment.seed=7", "shard.index=1", "shard.num_shards=2"))
    (out / "slices" / "slice-00001-of-00002.json").write_bytes(
        (other / "slices" / "slice-00001-of-00002.json").read_bytes()
    )
    with pytest.raises(PipelineError, match="different configs.*augment.seed"):
        merge(out)


def test_slice_index_from_the_scheduler_environment(tmp_path):
    out = tmp_path / "env"
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="1", NO_ALBUMENTATIONS_UPDATE="1")
    from conftest import SMALL

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            *SMALL,
            *COMMON,
            f"output.dir={out}",
            "shard.index=${oc.env:SLURM_ARRAY_TASK_ID,0}",
            "shard.num_shards=3",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "slices" / "slice-00001-of-00003.json").is_file()
    assert sorted(p.name for p in out.glob("*.tar")) == ["train-000002.tar", "train-000003.tar"]


def test_overwrite_with_slices_is_refused(tmp_path):
    proc = run_cli(
        *COMMON, f"output.dir={tmp_path / 'o'}", "shard.num_shards=2", "output.overwrite=true"
    )
    assert proc.returncode == 2
    assert "output.overwrite" in proc.stderr and "shard.num_shards" in proc.stderr


def test_multirun_slices_are_merged_at_the_end(tmp_path):
    from conftest import SMALL

    out = tmp_path / "multi"
    proc = run_cli(
        "-m",
        *SMALL,
        *COMMON,
        f"output.dir={out}",
        "shard.num_shards=3",
        "shard.index=0,1,2",
        "runtime.workers=1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    assert proc.returncode == 0, proc.stderr
    assert f"merged 3 slices into {out}" in proc.stdout
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["counts"]["written"] == 11 and info["timings"]["slices"] == 3


def _flip_depth_byte(tar: Path) -> None:
    import tarfile

    with tarfile.open(tar) as tf:
        info = next(m for m in tf.getmembers() if m.name.endswith("depth.tiff"))
    data = bytearray(tar.read_bytes())
    data[info.offset_data + info.size // 2] ^= 0x01
    tar.write_bytes(bytes(data))


def test_a_flipped_byte_is_refused_by_read_merge_and_verify_and_redone_by_resume(tmp_path):
    """Item 9: a byte flipped in a written depth member is caught by ``read.load``, by the
    merge and by ``depth-pipeline-verify``; re-running the slice writes that shard again."""
    from pipeline import read

    out = tmp_path / "ds"
    for k in (0, 1):
        run(make_cfg(out, *COMMON, f"shard.index={k}", "shard.num_shards=2"))
    tar = out / "train-000001.tar"
    good = tar.read_bytes()
    _flip_depth_byte(tar)
    with pytest.raises(PipelineError, match="train-000001.tar: its bytes changed"):
        merge(out)
    with pytest.raises(PipelineError, match="damaged dataset: .*train-000001.tar"):
        list(read.load(out))
    proc = subprocess.run(
        [sys.executable, "-c", "from pipeline.app import verify_cli; verify_cli()", str(out)],
        cwd=ROOT, env=dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1"), capture_output=True,
        text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "train-000001.tar: its bytes changed" in lines[0], lines
    run(make_cfg(out, *COMMON, "shard.index=0", "shard.num_shards=2"))  # the slice again
    assert tar.read_bytes() == good  # rewritten byte for byte
    merge(out)
    assert len(list(read.load(out))) == 11


def test_a_failed_slices_first_error_is_in_the_merge_message(tmp_path):
    """A slice job stopped by a bad sample records its error line; the merge that finds
    that slice missing says why (not only "1 of 2 slices missing")."""
    import numpy as np
    import tifffile
    from PIL import Image

    src, out = tmp_path / "src", tmp_path / "ds"
    for sub in ("image", "depth"):
        (src / sub).mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((48, 64, 3), 40 * i, np.uint8)).save(src / "image" / f"f{i}.png")
        tifffile.imwrite(src / "depth" / f"f{i}.tiff", np.full((48, 64), 2.0, np.float32))
    (src / "depth" / "f3.tiff").write_bytes(b"not a tiff")
    args = ["source=folder", f"source.path={src}", "augment=none", "output.shard_size=2",
            "report.enabled=false", "shard.num_shards=2"]  # fmt: skip
    run(make_cfg(out, *args, "shard.index=0", small=False))
    with pytest.raises(PipelineError, match="f3"):
        run(make_cfg(out, *args, "shard.index=1", small=False))
    proc = _merge_cli(out)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "1 of 2 slices missing: slice-00001-of-00002; slice-00001-of-00002 failed: " in line
    assert "sample f3" in line and "Traceback" not in proc.stderr
