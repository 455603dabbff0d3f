"""A timeline of a run for ``make bench``: where the wall time goes (start-up, the first
sample, each shard's fill and commit in each worker, the end of the shards, the report).

``DEPTH_PIPELINE_TRACE=FILE`` makes every process of the run append one line per event
to FILE: ``{wall clock} {pid} {event} {detail}``. Unset, as it is outside the benchmark,
``mark`` does nothing.
"""

from __future__ import annotations

import os
import time

ENV = "DEPTH_PIPELINE_TRACE"


def mark(event: str, detail: str = "") -> None:
    """Record ``event`` now (a no-op unless ``DEPTH_PIPELINE_TRACE`` names a file)."""
    path = os.environ.get(ENV)
    if not path:
        return
    line = f"{time.time():.6f} {os.getpid()} {event} {detail}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read(path: str) -> list[tuple[float, int, str, str]]:
    """The events in FILE, in time order: (wall clock, pid, event, detail)."""
    events = []
    with open(path) as fh:
        for line in fh:
            t, pid, event, *rest = line.rstrip("\n").split(" ", 3)
            events.append((float(t), int(pid), event, rest[0] if rest else ""))
    return sorted(events)
