"""Hydra launchers as a cluster user meets them: ``hydra/launcher=slurm`` where SLURM is
not there is one line (which command is missing, what to do), before any job is made.

``LauncherCheck`` is a Hydra callback (``conf/config.yaml``, ``hydra.callbacks``); Hydra
turns a callback's exception into a warning, so the refusal exits by itself (code 2).
"""

from __future__ import annotations

import shutil
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from pipeline.errors import shortened

SLURM_COMMANDS = ("sbatch", "srun")  # submitit submits with sbatch, each task runs srun


def slurm_problem(target: str) -> str | None:
    """Why jobs of the launcher ``target`` cannot be submitted here, or None."""
    if "SlurmLauncher" not in target:
        return None
    missing = [c for c in SLURM_COMMANDS if shutil.which(c) is None]
    if not missing:
        return None
    return (
        f"hydra/launcher=slurm: SLURM is not available on this machine ({' and '.join(missing)} "
        f"not found on PATH); submit from a login node of the cluster, or run the same slices "
        f"here with hydra/launcher=slurm_local (or hydra/launcher=local)"
    )


class LauncherCheck(Callback):
    """Refuse a multirun whose launcher cannot start jobs here, in one line."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        target = OmegaConf.select(config, "hydra.launcher._target_", default="") or ""
        problem = slurm_problem(str(target))
        if problem is not None:
            print(f"error: {shortened(str(problem))}", file=sys.stderr)
            sys.exit(2)
