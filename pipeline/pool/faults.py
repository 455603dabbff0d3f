"""Test-only fault injection, so the crash-and-resume tests hit exact points.

``DEPTH_PIPELINE_FAULT=point@n`` makes the process that reaches ``point`` for the n-th
time kill itself with SIGKILL, as the OOM killer or ``kill -9`` would. Points:
``sample-written`` (worker, a shard half written), ``shard-done`` (worker, a shard and its
manifest committed), ``shard-uploaded`` (worker, a URL output's shard uploaded, its
manifest not yet), ``report`` (parent, after the shards, before the report).
Unset, as it always is outside the tests, ``fault_point`` does nothing.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "DEPTH_PIPELINE_FAULT"
_hits: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """Die here if ``DEPTH_PIPELINE_FAULT`` names this point and its count is reached."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition("@")
    if point != name:
        return
    _hits[name] += 1
    if _hits[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
