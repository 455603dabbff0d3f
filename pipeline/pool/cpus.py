"""How many CPUs this process may use: what the job was given, never the node's count.

The smallest of: the CPU affinity set (SLURM's task affinity, ``taskset``, a cgroup
cpuset), ``SLURM_CPUS_PER_TASK`` (set in a SLURM job even where no affinity is bound) and
the cgroup v2 CPU quota (``cpu.max``: containers, systemd slices). ``runtime.workers=0``
starts this many workers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus() -> int:
    """CPUs this process may use (at least 1)."""
    try:
        counts = [len(os.sched_getaffinity(0)) or 1]
    except AttributeError:  # not on Linux
        counts = [os.cpu_count() or 1]
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm.isdigit() and int(slurm) > 0:
        counts.append(int(slurm))
    quota = cgroup_quota(CGROUP_CPU_MAX)
    if quota is not None:
        counts.append(quota)
    return max(1, min(counts))


def cgroup_quota(path: Path) -> int | None:
    """CPUs a cgroup v2 ``cpu.max`` ("QUOTA PERIOD", or "max PERIOD") allows, rounded up."""
    try:
        quota, period = path.read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None
