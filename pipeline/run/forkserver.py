"""Where worker processes come from: a forkserver that has imported the worker code once
(``pipeline.run.serve``: albumentations, OpenCV, the codecs), so each worker starts as a fork
of it, with everything loaded.

Starting it is cheap and does not wait for its imports: ``depth-pipeline`` starts it first
thing (``start_early``), so those imports run on another core while this process parses
the command line and composes the config.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

PRELOAD = ["pipeline.run.serve"]
# Commands that never start workers: they print, or hand the jobs to other processes.
NO_WORKERS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version")
NO_WORKERS += ("runtime.workers=1",)
NO_WORKERS_PREFIXES = ("--shell-completion", "-sc", "hydra/launcher=")


def context() -> Any:
    """The multiprocessing context for workers: forkserver where available (started now,
    preloading ``PRELOAD``), else spawn."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    from multiprocessing import forkserver

    from pipeline.run.interrupts import ignored

    with ignored():  # the server and its forks never print a KeyboardInterrupt of their own
        forkserver.ensure_running()
    return ctx


def start_early(argv: list[str]) -> None:
    """Start the forkserver now unless the command line says no workers will be needed."""
    for arg in argv:
        if arg in NO_WORKERS or arg.startswith(NO_WORKERS_PREFIXES):
            return
    context()
