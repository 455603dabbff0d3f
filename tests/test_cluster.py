"""The SLURM path: workers follow the CPUs the job was given, ``hydra/launcher=slurm``
without SLURM is one line, ``hydra/launcher=slurm`` submits the slices as an array and the
merge as a job depending on it (a stand-in ``sbatch`` records what is submitted), and the
same launcher on submitit's local executor (``slurm_local``: jobs as local processes, the
merge job included) gives the tars of one unsliced run."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

import pytest
from conftest import SMALL, make_cfg, run_cli, shard_bytes

from pipeline import read
from pipeline.cluster import merge
from pipeline.dataset.records import INFO_FILE
from pipeline.dataset.remote_lock import RemoteLock
from pipeline.dataset.store import Remote, slice_lock
from pipeline.errors import PipelineError
from pipeline.pool.cpus import available_cpus, cgroup_quota
from pipeline.run.runner import run

DATA = ["source.num_samples=8", "output.shard_size=2", "report.enabled=false"]


def test_workers_follow_slurm_cpus_per_task_not_the_node(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert available_cpus() == 1
    result = run(make_cfg(tmp_path / "ds", *DATA, "runtime.workers=0"))
    assert result.info.timings.workers == 1
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "512")  # never more than the affinity set
    assert available_cpus() == min(len(os.sched_getaffinity(0)), cgroup_quota_or(512))


def cgroup_quota_or(default: int) -> int:
    from pipeline.pool import cpus

    return cgroup_quota(cpus.CGROUP_CPU_MAX) or default


def test_a_cgroup_cpu_quota_counts(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert cgroup_quota(cpu_max) == 2
    cpu_max.write_text("max 100000\n")
    assert cgroup_quota(cpu_max) is None
    assert cgroup_quota(tmp_path / "absent") is None


submitit = pytest.importorskip("hydra_plugins.hydra_submitit_launcher")


def test_slurm_launcher_without_slurm_is_one_line(tmp_path):
    proc = run_cli(
        "-m",
        "hydra/launcher=slurm",
        f"output.dir={tmp_path / 'ds'}",
        "shard.num_shards=2",
        "shard.index=range(0,2)",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        env={"PATH": os.path.dirname(os.__file__)},  # no sbatch, no srun
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: hydra/launcher=slurm: SLURM is not available on this machine (sbatch and "
        "srun not found on PATH); submit from a login node of the cluster, or run the same "
        "slices here with hydra/launcher=slurm_local (or hydra/launcher=local)"
    )
    assert not (tmp_path / "ds").exists()


def test_sliced_recipe_through_submitits_local_executor_equals_one_run(tmp_path):
    whole = tmp_path / "whole"
    run(make_cfg(whole, *DATA, "runtime.workers=1"))
    sliced = tmp_path / "sliced"
    proc = run_cli(
        "-m",
        "hydra/launcher=submitit_local",
        f"output.dir={sliced}",
        "shard.num_shards=2",
        "shard.index=range(0,2)",
        "runtime.workers=1",
        *SMALL,
        *DATA,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"merged 2 slices into {sliced}/dataset_info.json" in proc.stdout
    assert shard_bytes(sliced) == shard_bytes(whole) and len(shard_bytes(whole)) == 4


def sliced(launcher: str, out, tmp_path, *more: str, indices: str = "range(0,2)"):
    return run_cli(
        "-m",
        f"hydra/launcher={launcher}",
        f"output.dir={out}",
        "shard.num_shards=2",
        f"shard.index={indices}",
        "runtime.workers=1",
        *SMALL,
        *DATA,
        *more,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        timeout=600,
    )


def test_slurm_local_runs_the_array_then_the_merge_job_equal_to_one_run(tmp_path):
    whole = tmp_path / "whole"
    run(make_cfg(whole, *DATA, "runtime.workers=1"))
    out = tmp_path / "sliced"
    proc = sliced("slurm_local", out, tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.search(r"^submitted 2 slice job\(s\): local job array \d+$", proc.stdout, re.M)
    assert any(x.startswith(f"submitted the merge of {out}: job ") for x in lines)
    # one merge, by the merge job: the callback leaves it alone
    assert [x for x in lines if "merged" in x] == [f"merged 2 slices into {out}/dataset_info.json"]
    assert shard_bytes(out) == shard_bytes(whole) and len(shard_bytes(whole)) == 4
    assert (out / INFO_FILE).is_file()


def test_the_merge_job_fails_in_one_line_when_slices_are_missing(tmp_path):
    out = tmp_path / "sliced"
    proc = sliced("slurm_local", out, tmp_path, indices="1")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(
        "error: 1 of 2 slices missing: slice-00000-of-00002; run those jobs (shard.index=0 "
        f"shard.num_shards=2) and merge again (merge of {out}; log: "
    )
    log = line.rsplit("log: ", 1)[1].rstrip(")")
    assert open(log).read().strip() == line.split(" (merge of ")[0]  # the job's stderr: one line
    assert not (out / INFO_FILE).exists()


def fake_slurm(tmp_path):
    """``sbatch`` that keeps each script and answers a job id, ``srun`` that does nothing."""
    bin_dir, kept = tmp_path / "bin", tmp_path / "sbatch"
    bin_dir.mkdir()
    kept.mkdir()
    (bin_dir / "sbatch").write_text(
        "#!/bin/sh\n"
        f"id=$((1000 + $(ls {kept} | wc -l)))\n"
        f'cp "$1" {kept}/$id.sh\n'
        'echo "Submitted batch job $id"\n'
    )
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, kept


def test_slurm_submits_the_array_and_a_merge_after_it_and_returns(tmp_path):
    env, kept = fake_slurm(tmp_path)
    out = tmp_path / "ds"
    proc = run_cli(
        "-m",
        "hydra/launcher=slurm",
        "hydra.launcher.wait=false",
        f"output.dir={out}",
        "shard.num_shards=3",
        "shard.index=range(0,3)",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in kept.iterdir()) == ["1000.sh", "1001.sh"]
    array, merge_job = (kept / "1000.sh").read_text(), (kept / "1001.sh").read_text()
    assert "#SBATCH --array=0-2%3" in array and "--dependency" not in array
    assert "#SBATCH --dependency=afterok:1000\n" in merge_job
    assert "#SBATCH --kill-on-invalid-dep=yes\n" in merge_job
    assert "--array" not in merge_job
    assert "submitted 3 slice job(s): SLURM job array 1000" in proc.stdout
    assert f"submitted the merge of {out}: job 1001, after every task of 1000 succeeds" in (
        proc.stdout
    )
    assert "follow: squeue -j 1000,1001" in proc.stdout
    assert proc.stderr.strip() == ""  # nothing merged (or refused) by the callback meanwhile
    assert not out.exists()  # nothing ran here


def test_slice_jobs_of_a_merge_job_only_record_their_slice(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    monkeypatch.setattr(merge, "_DEFERRED", [True])  # what the launcher sets in its jobs
    for k in range(2):
        run(make_cfg(out, *DATA, "runtime.workers=1", "shard.num_shards=2", f"shard.index={k}"))
    assert not (out / INFO_FILE).exists()  # left to the merge job
    assert merge.merge(out).timings.slices == 2
    assert (out / INFO_FILE).is_file()


# ---- sliced runs to a URL: one lock object per slice, merged from the bucket -----------


def merge_cli(*args: str) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "depth-pipeline-merge")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)


def s3_slice(url: str, k: int):
    return run(make_cfg(url, *DATA, "runtime.workers=1", "shard.num_shards=2", f"shard.index={k}"))


def test_slices_to_s3_then_merge_equal_one_local_run(s3, tmp_path):
    """Two slices write side by side into one bucket prefix; ``depth-pipeline-merge
    s3://...`` reads their records from the bucket and writes dataset_info.json."""
    pytest.importorskip("s3fs")
    whole = tmp_path / "whole"
    run(make_cfg(whole, *DATA, "runtime.workers=1"))
    url = f"{s3}/sliced"
    for k in range(2):
        assert s3_slice(url, k).out_dir == url
    remote = Remote(url, {"skip_instance_cache": True})
    listed = remote.listing()
    assert INFO_FILE not in listed  # a slice never merges
    assert {"slices/slice-00000-of-00002.json", "slices/slice-00001-of-00002.json"} <= set(listed)
    assert not any(rel.startswith(".depth-pipeline/") for rel in listed)  # locks released
    done = merge_cli(url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"merged 2 slices: 8 samples (0 skipped) in 4 shard(s) -> {url}\n"
    objects = remote.listing()
    tars = {rel: remote.read_bytes(rel) for rel in objects if rel.endswith(".tar")}
    assert tars == shard_bytes(whole) and len(tars) == 4
    info = json.loads(remote.read_bytes(INFO_FILE))
    assert info["counts"]["written"] == 8 and info["timings"]["slices"] == 2
    keys = [meta["key"] for _, _, meta in read.load(url)]
    assert keys == [meta["key"] for _, _, meta in read.load(whole)] and len(keys) == 8


def test_one_slice_to_s3_is_one_writer_and_a_missing_slice_stops_the_merge(s3):
    pytest.importorskip("s3fs")
    url = f"{s3}/sliced"
    remote = Remote(url)
    held = RemoteLock.acquire(remote, slice_lock(0, 2))  # another job of slice 0
    try:
        with pytest.raises(PipelineError, match="is in use by another depth-pipeline run"):
            s3_slice(url, 0)
        s3_slice(url, 1)  # the other slice writes beside it
    finally:
        held.release()
    done = merge_cli(url)
    assert done.returncode == 2
    assert done.stderr == (
        "error: 1 of 2 slices missing: slice-00000-of-00002; run those jobs (shard.index=0 "
        "shard.num_shards=2) and merge again\n"
    )
    assert INFO_FILE not in Remote(url, {"skip_instance_cache": True}).listing()


def test_slurm_local_to_s3_merges_in_the_merge_job(s3, tmp_path):
    pytest.importorskip("s3fs")
    whole = tmp_path / "whole"
    run(make_cfg(whole, *DATA, "runtime.workers=1"))
    url = f"{s3}/sliced"
    proc = sliced("slurm_local", url, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"merged 2 slices into {url}/dataset_info.json" in proc.stdout.splitlines()
    remote = Remote(url, {"skip_instance_cache": True})
    tars = {rel: remote.read_bytes(rel) for rel in remote.listing() if rel.endswith(".tar")}
    assert tars == shard_bytes(whole)


def test_a_multirun_of_slices_to_s3_is_merged_at_its_end(s3, tmp_path):
    """Hydra's basic launcher (jobs one after the other here): the slices never merge,
    the multirun's MergeCallback merges from the bucket, once."""
    pytest.importorskip("s3fs")
    url = f"{s3}/sliced"
    proc = sliced("basic", url, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [x for x in proc.stdout.splitlines() if "merged" in x] == [
        f"merged 2 slices into {url}/dataset_info.json"
    ]
    assert INFO_FILE in Remote(url, {"skip_instance_cache": True}).listing()
