"""``hydra/launcher=slurm``: the slices of a sliced run as one SLURM job array, and the
merge as one more job that SLURM starts when every array task has succeeded.

``depth-pipeline -m hydra/launcher=slurm output.dir=D shard.num_shards=64
'shard.index=range(0,64)'`` submits the 64 slices as an array (hydra-submitit-launcher,
``submitit``), then ``merge_job(D)`` (what ``depth-pipeline-merge D`` does) with
``--dependency=afterok:ARRAY`` and ``--kill-on-invalid-dep=yes`` (a failed slice cancels
the merge instead of leaving it pending), and prints both job ids. With
``hydra.launcher.wait=true`` (the default) the command then waits for all of it, like any
Hydra launcher; ``wait=false`` returns right after submitting (for a login node).

``hydra/launcher=slurm_local`` is the same launcher on submitit's local executor (jobs are
local processes; the tests run the README recipe through it): it has no dependencies, so
the merge job is submitted once the array has finished, and it always waits.

The merge has one owner: the merge job. Slice jobs started by these launchers do not merge
when they find all slices present (``merge.defer_to_merge_job``), and ``MergeCallback``
leaves a sweep to the merge job (``MERGES_SLICES``). A sweep that is not sliced runs as
with hydra-submitit-launcher. ``output.dir`` may be a URL (``merge_remote.py``).

``SlicedSweep`` is what both launchers add to hydra-submitit-launcher's; the launcher
classes themselves are in ``hydra_launchers.py`` (entered in Hydra's plugin table under
``PLUGIN_MODULE``), with the schemas ``register`` stores for
``conf/hydra/launcher/slurm.yaml`` and ``slurm_local.yaml``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.config import (
    BaseQueueConf,
    LocalQueueConf,
    SlurmQueueConf,
)
from omegaconf import OmegaConf

from pipeline.config.urls import is_url
from pipeline.errors import shortened

PLUGIN_MODULE = "hydra_plugins.depth_pipeline_launcher"  # Hydra's name for our launchers


@dataclass
class SlurmConf(SlurmQueueConf):
    _target_: str = f"{PLUGIN_MODULE}.SlurmLauncher"
    wait: bool = True  # false: return once the array and the merge are submitted


@dataclass
class LocalConf(LocalQueueConf):
    _target_: str = f"{PLUGIN_MODULE}.LocalLauncher"


def register() -> None:
    """``hydra/launcher/depth_slurm`` and ``depth_slurm_local``, the schemas of
    ``conf/hydra/launcher/slurm.yaml`` and ``slurm_local.yaml``."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group="hydra/launcher", name="depth_slurm", node=SlurmConf)
    store.store(group="hydra/launcher", name="depth_slurm_local", node=LocalConf)


def merge_job(out_dir: str) -> str:
    """The merge job's body: ``depth-pipeline-merge out_dir``. Refused (slices missing or
    made with other configs): one line on stderr and exit code 2, so the job fails."""
    from pipeline.cluster.merge import merge
    from pipeline.errors import PipelineError

    try:
        info = merge(out_dir)
    except PipelineError as exc:
        print(f"error: {shortened(str(exc))}", file=sys.stderr, flush=True)
        sys.exit(2)
    line = f"merged {info.timings.slices} slices into {out_dir}/dataset_info.json"
    print(line, flush=True)
    return line


class SlicedSweep:
    """What both launchers add to hydra-submitit-launcher's (see the module docstring)."""

    _EXECUTOR: str
    MERGES_SLICES = True  # read by MergeCallback: the merge job merges, not the callback
    params: dict[str, Any]
    config: Any
    hydra_context: Any

    def __init__(self, wait: bool = True, **params: Any) -> None:
        super().__init__(**params)  # type: ignore[call-arg]
        self.wait = wait
        self.in_sliced_sweep = False  # set before the array is pickled for its jobs

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        if self.in_sliced_sweep:
            from pipeline.cluster.merge import defer_to_merge_job

            defer_to_merge_job()
        return super().__call__(*args, **kwargs)  # type: ignore[misc]

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        dirs = self._sliced_dirs(job_overrides)
        if not dirs:
            return super().launch(job_overrides, initial_job_idx)  # type: ignore[misc]
        self.in_sliced_sweep = True
        try:
            return self._launch_sliced(job_overrides, initial_job_idx, dirs)
        finally:
            self.in_sliced_sweep = False

    def _sliced_dirs(self, job_overrides: Sequence[Sequence[str]]) -> list[str]:
        """The ``output.dir`` of every sliced job (``shard.num_shards > 1``), absolute.
        Jobs that differ only in ``shard.index`` are composed once (the index is not part
        of the default ``output.dir``; an ``output.dir`` made from it is composed per job)."""
        hydra = HydraConfig.instance()
        saved = hydra.cfg
        dirs: set[str] = set()
        seen: set[tuple[str, ...]] = set()
        try:
            for overrides in job_overrides:
                same = tuple(o for o in overrides if not o.startswith("shard.index="))
                if same in seen and "shard.index" not in " ".join(same):
                    continue
                seen.add(same)
                cfg = self.hydra_context.config_loader.load_sweep_config(
                    self.config, list(overrides)
                )
                hydra.set_config(cfg)
                if int(OmegaConf.select(cfg, "shard.num_shards")) > 1:
                    out = str(OmegaConf.select(cfg, "output.dir"))
                    dirs.add(out if is_url(out) else os.path.abspath(os.path.expanduser(out)))
        finally:
            hydra.cfg = saved
        return sorted(dirs)

    def _executor(self, **changes: Any) -> Any:
        """A submitit executor set up as hydra-submitit-launcher sets up its own, with
        ``changes`` to the launcher's settings."""
        import submitit

        params = dict(self.params) | changes
        init = {"folder": params.pop("submitit_folder")}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{k if k in base else f"{self._EXECUTOR}_{k}": v for k, v in params.items()}
        )
        return executor

    def _launch_sliced(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, dirs: list[str]
    ) -> Sequence[JobReturn]:
        from hydra.core.singleton import Singleton
        from hydra.core.utils import filter_overrides

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        job_params = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            print(f"  #{idx} : {' '.join(filter_overrides(overrides))}", flush=True)
            job_params.append(
                (
                    list(overrides),
                    "hydra.sweep.dir",
                    idx,
                    f"job_id_for_{idx}",
                    Singleton.get_state(),
                )
            )
        jobs = self._executor().map_array(self, *zip(*job_params))
        array = str(jobs[0].job_id).split("_")[0]
        print(f"submitted {len(jobs)} slice job(s): {self._what()} {array}", flush=True)
        if self._EXECUTOR == "slurm":
            merges = self._submit_merges(dirs, array)
            self._say_how_to_follow(array, merges, sweep_dir)
            if not self.wait:
                return []
            returns = [j.results()[0] for j in jobs]
        else:  # the local executor has no dependencies: merge once the array is done
            returns = [j.results()[0] for j in jobs]
            merges = self._submit_merges(dirs, None)
        self._wait_for(merges)
        return returns

    def _what(self) -> str:
        return "SLURM job array" if self._EXECUTOR == "slurm" else "local job array"

    def _submit_merges(self, dirs: list[str], array: str | None) -> list[tuple[str, Any]]:
        """One merge job per sliced ``output.dir``, after every task of ``array``."""
        changes: dict[str, Any] = {"name": f"{self.params.get('name') or 'depth-pipeline'}-merge"}
        if array is not None:
            more = dict(self.params.get("additional_parameters") or {})
            more.setdefault("kill-on-invalid-dep", "yes")
            changes |= {"dependency": f"afterok:{array}", "additional_parameters": more}
            changes.pop("array_parallelism", None)
        executor = self._executor(**changes)
        merges = []
        for out in dirs:
            job = executor.submit(merge_job, out)
            after = f", after every task of {array} succeeds" if array else ""
            print(f"submitted the merge of {out}: job {job.job_id}{after}", flush=True)
            merges.append((out, job))
        return merges

    def _say_how_to_follow(self, array: str, merges: list[tuple[str, Any]], sweep: Path) -> None:
        ids = ",".join([array, *(str(j.job_id) for _, j in merges)])
        print(
            f"follow: squeue -j {ids}   (logs: {sweep}/.submitit/<job id>/; each merge "
            f"writes OUTPUT_DIR/dataset_info.json last)",
            flush=True,
        )
        if not self.wait:
            print("not waiting (hydra.launcher.wait=false): the jobs run on", flush=True)

    def _wait_for(self, merges: list[tuple[str, Any]]) -> None:
        """Wait for the merge jobs; a refused merge is its one line, and exit code 2."""
        failed = False
        for out, job in merges:
            job.wait()
            if _succeeded(job):
                print(job.result(), flush=True)
                continue
            failed = True
            lines = [x for x in (job.stderr() or "").splitlines() if x.startswith("error: ")]
            line = lines[-1] if lines else f"error: the merge job {job.job_id} failed ({job.state})"
            print(f"{line} (merge of {out}; log: {job.paths.stderr})", file=sys.stderr)
        if failed:
            sys.exit(2)


def _succeeded(job: Any) -> bool:
    """The merge job returned (SLURM: COMPLETED; the local executor: its process ended
    having written its result). Not ``job.exception()``: it waits 15 s for a result file
    that a job ended by ``sys.exit(2)`` never writes."""
    state = job.state
    return state == "COMPLETED" or (state == "FINISHED" and job.paths.result_pickle.exists())
