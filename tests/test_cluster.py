"""The SLURM path: workers follow the CPUs the job was given, ``hydra/launcher=slurm``
without SLURM is one line, and the README's sliced recipe through submitit's local
executor (the same launcher plugin, jobs as local processes) merges into the tars of one
unsliced run."""

from __future__ import annotations

import os

import pytest
from conftest import SMALL, make_cfg, run_cli, shard_bytes

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
        "slices here with hydra/launcher=submitit_local (or hydra/launcher=local)"
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
