"""The SLURM path: workers follow the CPUs the job was given, ``hydra/launcher=slurm``
without SLURM is one line, ``hydra/launcher=slurm`` submits the slices as an array and the
merge as a job depending on it (a stand-in ``sbatch`` records what is submitted), and the
same launcher on submitit's local executor (``slurm_local``: jobs as local processes, the
merge job included) gives the tars of one unsliced run."""

from __future__ import annotations

import os
import re
import stat

import pytest
from conftest import SMALL, make_cfg, run_cli, shard_bytes

from pipeline.dataset.records import INFO_FILE
from pipeline.run import merge
from pipeline.run.cpus import available_cpus, cgroup_quota
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
    from pipeline.run import cpus

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
