"""Shard writers. A shard appears under its final name only when complete.

``webdataset``: one tar per shard, members ``{key}.png``, ``{key}.depth.tiff``,
``{key}.json`` with fixed headers (mtime 0, uid 0) so bytes depend only on content.
``folder``: ``image/{key}.png``, ``depth/{key}.tiff``, ``meta/{key}.json``; each file is
committed atomically and the shard manifest marks the shard complete.
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
import tarfile
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


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# tarfile copies members in 16 KiB chunks by default (~6 ms per 1.4 MB sample); one chunk
# per member makes adding a sample a single write.
COPY_BUFSIZE = 16 << 20


def open_temporary(tmp: Path) -> io.BufferedWriter:
    """Open a temporary for writing, holding an exclusive ``flock`` on it until it is
    closed: a later run can tell a live writer's file from a dead one's even when the pid
    in its name has been reused (see ``resume.clean_temporaries``)."""
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
    _fsync_dir(path.parent)


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


class TarShardWriter:
    """Streams members into ``{name}.tar.tmp-HOST-PID`` and renames it on commit."""

    def __init__(self, root: Path, name: str) -> None:
        self.path = root / f"{name}.tar"
        self.tmp = tmp_path(self.path)
        root.mkdir(parents=True, exist_ok=True)
        self._fh = open_temporary(self.tmp)
        self._hash = hashlib.sha256()
        self._tar = tarfile.open(
            fileobj=_HashingFile(self._fh, self._hash),
            mode="w",
            format=tarfile.PAX_FORMAT,
            copybufsize=COPY_BUFSIZE,
        )

    def add(self, key: str, fields: dict[str, bytes]) -> None:
        for ext, data in fields.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(data))

    def commit(self) -> dict[str, str]:
        self._tar.close()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.tmp, self.path)
        _fsync_dir(self.path.parent)
        return {self.path.name: self._hash.hexdigest()}

    def abort(self) -> None:
        """Drop the temporary; closing may fail again (e.g. a full disk), which is moot."""
        with contextlib.suppress(OSError):
            self._fh.close()
        self.tmp.unlink(missing_ok=True)


class FolderShardWriter:
    """Writes ``image/``, ``depth/``, ``meta/`` files atomically, one at a time."""

    SUBDIRS = {"png": "image", "depth.tiff": "depth", "json": "meta"}

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.files: dict[str, str] = {}

    def add(self, key: str, fields: dict[str, bytes]) -> None:
        for ext, data in fields.items():
            sub = self.SUBDIRS.get(ext, ext.replace(".", "_"))
            rel = f"{sub}/{key}.{ext.rpartition('.')[2]}"
            atomic_write(self.root / rel, data)
            self.files[rel] = hashlib.sha256(data).hexdigest()

    def commit(self) -> dict[str, str]:
        return dict(self.files)

    def abort(self) -> None:
        for rel in self.files:
            (self.root / rel).unlink(missing_ok=True)


class _HashingFile:
    """A write-only file wrapper that hashes what passes through."""

    def __init__(self, fh: io.BufferedWriter, h: hashlib._Hash) -> None:
        self._fh, self._h = fh, h

    def write(self, data: bytes) -> int:
        self._h.update(data)
        return self._fh.write(data)

    def tell(self) -> int:
        return self._fh.tell()


WRITERS = {"webdataset": TarShardWriter, "folder": FolderShardWriter}


def shard_files(fmt: str, name: str) -> list[str]:
    """The file names a shard of this format publishes directly (folders: none)."""
    return [f"{name}.tar"] if fmt == "webdataset" else []


def write_error(exc: OSError, what: str, root: Path) -> PipelineError:
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
