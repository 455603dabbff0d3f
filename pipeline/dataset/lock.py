"""The lock on ``output.dir``: who may write there while a run lasts.

A run (or one slice of a sliced run) holds the lock *shared*: identical runs and the
slices of one dataset work side by side. Replacing the dataset (``output.overwrite=true``)
needs it *exclusive*. A run that cannot get the lock stops at once with one line naming
the holders (host, pid, mode, since when) instead of waiting or mixing two datasets.

Two ``flock`` files in ``output.dir/.depth-pipeline/`` (hidden: not part of the dataset):
``run.lock``, taken without waiting and held for the whole run, and ``setup.lock``, held
only while a run claims the directory (reads the config record, deletes an old dataset,
writes its record), so that two runs starting together see each other's decisions: the
second one to set up finds the first one's record (and is refused if its config differs).

``flock`` locks die with their process (``kill -9`` included); on NFS, Linux emulates
them with POSIX locks, which the server arbitrates between machines. Each holder also
leaves a small JSON file naming itself in ``holders/``, only to word the refusal; the
lock itself is the ``flock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import PipelineError

LOCK_DIR = ".depth-pipeline"
SETUP_WAIT_S = 600.0  # setting up is short (runs sharing the lock check a record): wait


def _lock_dir(root: Path) -> Path:
    path = root / LOCK_DIR
    (path / "holders").mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def setting_up(root: Path, patience: float = SETUP_WAIT_S) -> Iterator[None]:
    """Serialise the claim step of runs sharing ``root`` (waits for the other one)."""
    fd = os.open(_lock_dir(root) / "setup.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PipelineError(
                        f"output.dir={root}: another run has been setting up this directory "
                        f"for {patience:.0f} s ({describe(holders(root)) or 'holder unknown'}); "
                        f"wait for it, or use another output.dir"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


class RunLock:
    """``run.lock`` of one ``output.dir``, held by this process until ``release``.

    The mode is known before the run starts (exclusive iff ``output.overwrite``), so a
    lock is never converted (``flock`` converts by dropping and re-taking).
    """

    _held: dict[Path, RunLock] = {}

    def __init__(self, root: Path, exclusive: bool) -> None:
        self.root = root
        self.exclusive = exclusive
        self.fd: int | None = None
        self.holder: Path | None = None

    @classmethod
    def held(cls, root: Path) -> RunLock | None:
        return cls._held.get(root.resolve())

    @classmethod
    def acquire(cls, root: Path, exclusive: bool) -> RunLock:
        """Take the lock without waiting, or raise one line naming who holds it."""
        lock = cls(root, exclusive)
        lock.fd = os.open(_lock_dir(root) / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            lock._flock(exclusive)
        except BaseException:
            os.close(lock.fd)
            raise
        lock._announce()
        cls._held[root.resolve()] = lock
        return lock

    def _flock(self, exclusive: bool) -> None:
        assert self.fd is not None
        try:
            fcntl.flock(self.fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._refusal(exclusive) from None

    def _refusal(self, exclusive: bool) -> PipelineError:
        others = [h for h in holders(self.root) if h.get("pid") != os.getpid()]
        who = describe(others) or "holder unknown"
        if exclusive:
            return PipelineError(
                f"output.dir={self.root} is in use by another depth-pipeline run ({who}); "
                f"output.overwrite=true needs the directory to itself: wait for that run to "
                f"end (or stop it), or use another output.dir"
            )
        return PipelineError(
            f"output.dir={self.root} is being replaced by another depth-pipeline run "
            f"({who}); wait for it to end, or use another output.dir"
        )

    def _announce(self) -> None:
        """Write (or rewrite) this process's holder file."""
        holder = _lock_dir(self.root) / "holders" / f"{socket.gethostname()}-{os.getpid()}.json"
        body = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "mode": "exclusive" if self.exclusive else "shared",
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv)[:300],
        }
        with contextlib.suppress(OSError):  # only used to word a refusal
            holder.write_text(json.dumps(body))
            self.holder = holder

    def release(self) -> None:
        RunLock._held.pop(self.root.resolve(), None)
        if self.holder is not None:
            self.holder.unlink(missing_ok=True)
            self.holder = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@contextlib.contextmanager
def holding(root: Path) -> Iterator[None]:
    """Hold ``root``'s lock shared for the block (a merge of slices), unless this process
    already holds it (the merge at the end of a sliced run)."""
    if RunLock.held(root) is not None:
        yield
        return
    lock = RunLock.acquire(root, exclusive=False)
    try:
        yield
    finally:
        lock.release()


def holders(root: Path) -> list[dict[str, object]]:
    """The runs that announced themselves as holders of ``root``'s lock. Files left by a
    dead process of this host are removed; other hosts' cannot be checked and are kept."""
    out = []
    host = socket.gethostname()
    for path in sorted((root / LOCK_DIR / "holders").glob("*.json")):
        try:
            body = json.loads(path.read_text())
            pid = int(body["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if body.get("host") == host and not alive(pid):
            path.unlink(missing_ok=True)
            continue
        out.append(body)
    return out


def describe(found: list[dict[str, object]]) -> str:
    """``pid 123 on host h, shared since 2024-..`` for up to three holders."""
    parts = [
        f"pid {h.get('pid')} on host {h.get('host')}, {h.get('mode')} since {h.get('since')}"
        for h in found[:3]
    ]
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return "; ".join(parts) + more


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
