"""Writing files so that they appear under their final name only when complete.

``atomic_write`` (temporary + fsync + rename), the temporaries' naming and writer lock (so
a later run can tell a dead run's leftovers from a live writer's), the ``ShardWriter``
protocol every output layout implements, and one line for a failed write.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import re
import socket
from pathlib import Path
from typing import Protocol

from pipeline.errors import PipelineError

TMP_MARK = ".tmp-"
# ``{final name}.tmp-{host}-{pid}``: who wrote a temporary, so a later run can tell a
# dead run's leftovers from a live writer's (another slice job sharing output.dir).
TMP_NAME = re.compile(rf"^(?P<final>.+){re.escape(TMP_MARK)}(?P<host>[^/]+)-(?P<pid>\d+)$")


def tmp_path(path: Path) -> Path:
    """The temporary name beside ``path`` that this process writes before renaming."""
    return path.with_name(f"{path.name}{TMP_MARK}{socket.gethostname()}-{os.getpid()}")


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def open_temporary(tmp: Path) -> io.BufferedWriter:
    """Open a temporary for writing, holding an exclusive ``flock`` on it until it is
    closed: a later run can tell a live writer's file from a dead one's even when the pid
    in its name has been reused (see ``claim.clean_temporaries``)."""
    fh = open(tmp, "wb")
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fh


def is_being_written(tmp: Path) -> bool:
    """True while some process holds the temporary's writer lock."""
    try:
        with open(tmp, "rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    try:
        with open_temporary(tmp) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ShardWriter(Protocol):
    """Collects the encoded fields of one shard; ``commit`` publishes it, ``abort`` drops it."""

    def add(self, key: str, fields: dict[str, bytes]) -> None: ...

    def commit(self) -> dict[str, str]: ...

    def abort(self) -> None: ...


def write_error(exc: OSError, what: str, root: Path | str) -> PipelineError:
    """One line for a failed write: a full disk, a read-only or vanished directory..."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return PipelineError(
            f"no space left for output.dir={root} while writing {what} ({exc.strerror}); "
            f"free some space and re-run the same command to resume (finished shards are kept)"
        )
    return PipelineError(
        f"cannot write {what} in output.dir={root} ({exc.strerror or exc}); fix the "
        f"directory and re-run the same command to resume (finished shards are kept)"
    )
