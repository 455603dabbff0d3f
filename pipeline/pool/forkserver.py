"""Where worker processes come from: a forkserver that has imported the worker code once
(``pipeline.pool.serve``: albumentations, OpenCV, the codecs), so each worker starts as a fork
of it, with everything loaded.

Starting it is cheap and does not wait for its imports: ``depth-pipeline`` starts it first
thing (``start_early``), so those imports run on another core while this process parses
the command line and composes the config. A command line naming a URL
(``output.dir=s3://...``) adds the fsspec implementation serving it (s3fs with botocore:
~0.7 CPU-s of imports), which every worker would otherwise import at its first upload.
"""

from __future__ import annotations

import multiprocessing as mp
import re
from typing import Any

from pipeline.stores import FAMILIES

PRELOAD = ["pipeline.pool.serve"]
# the fsspec implementation of a URL's protocol (a missing one is skipped by the server)
URL_MODULES = {p: family.package for family in FAMILIES for p in family.protocols}
_URL_ARG = re.compile(r"=\s*([A-Za-z][A-Za-z0-9+.-]*)://")
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
    ctx.set_forkserver_preload(list(PRELOAD))
    from multiprocessing import forkserver, resource_tracker

    from pipeline.pool.interrupts import ignored

    # the tracker first: starting it unblocks SIGINT, which would drop one pending in ours
    resource_tracker.ensure_running()
    with ignored():  # the server and its forks never print a KeyboardInterrupt of their own
        forkserver.ensure_running()
    return ctx


def start_early(argv: list[str]) -> None:
    """Start the forkserver now unless the command line says no workers will be needed."""
    for arg in argv:
        if arg in NO_WORKERS or arg.startswith(NO_WORKERS_PREFIXES):
            return
    for arg in argv:
        m = _URL_ARG.search(arg)
        module = URL_MODULES.get(m[1].lower()) if m else None
        if module and module not in PRELOAD:
            PRELOAD.append(module)
    context()
