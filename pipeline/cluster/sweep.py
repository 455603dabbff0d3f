"""Hydra callback for ``depth-pipeline -m ...``: every job leaves a pointer to its
``output.dir`` in its own job dir; at the end of the multirun the sweep page (contact
sheet + stats table) is written into the sweep dir.

Registered in ``conf/config.yaml`` under ``hydra.callbacks.sweep_report``; other callbacks
(e.g. a slice merge) sit beside it as separate entries.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pipeline.dataset.writers import atomic_write

POINTER = "depth_pipeline_job.json"


def job_record(config: DictConfig, job_return: JobReturn) -> dict[str, Any]:
    """Where a job wrote its dataset, with its overrides and how it ended."""
    code, error = 0, None
    try:  # a failed job's ``return_value`` re-raises the job's exception
        value = job_return.return_value
    except Exception as exc:
        value, code, error = None, 1, " ".join(str(exc).split())[:500]
    if job_return.status == JobStatus.COMPLETED and isinstance(value, dict):
        code, error = int(value.get("exit_code", 0)), value.get("error")
    try:
        out_dir = os.path.abspath(str(OmegaConf.select(config, "output.dir")))
    except Exception as exc:  # an unresolvable output.dir: keep the record, say why
        out_dir, code, error = "", code or 2, error or f"output.dir: {exc}"
    return {
        "num": OmegaConf.select(config, "hydra.job.num"),
        "overrides": [str(o) for o in OmegaConf.select(config, "hydra.overrides.task") or []],
        "output_dir": out_dir,
        "exit_code": code,
        "error": error,
    }


def read_jobs(sweep_dir: Path, since: float | None = None) -> list[dict[str, Any]]:
    """The pointer files the jobs of this sweep left in their job dirs, by job number
    (only those written after ``since``, so a reused sweep dir shows this sweep)."""
    jobs = []
    for path in sweep_dir.glob(f"*/{POINTER}"):
        try:
            if since is not None and path.stat().st_mtime < since:
                continue
            jobs.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(jobs, key=lambda j: (j.get("num") is None, j.get("num") or 0))


class SweepReport(Callback):
    """Writes ``index.html`` + ``contact_sheet.png`` + ``sweep.json`` into the sweep dir."""

    def __init__(self, keys: int = 4) -> None:
        self.keys = keys
        self.started: float | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time() - 1.0

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        job_dir = Path(str(OmegaConf.select(config, "hydra.runtime.output_dir")))
        record = job_record(config, job_return)
        atomic_write(job_dir / POINTER, json.dumps(record, indent=2).encode())

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.errors import PipelineError
        from pipeline.report.sweep_page import build_sweep_page

        sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        jobs = read_jobs(sweep_dir, self.started)
        if not jobs:
            return
        try:
            page = build_sweep_page(sweep_dir, jobs, keys=self.keys)
        except PipelineError as exc:
            print(f"sweep page not written: {exc}")
            return
        print(f"sweep page: {page}")
