"""One writer per URL ``output.dir``: ``.depth-pipeline/lock.json``, a lease in the store.

- **Taken** with a conditional create (S3 ``If-None-Match: *``, GCS
  ``ifGenerationMatch=0``, Azure ``If-None-Match: *``), which the store itself arbitrates:
  of two runs starting together, one is refused in one line naming the holder.
- **Kept alive**: the holder rewrites the object every ``stale_s / 8`` (at most every
  minute), conditional on the version it wrote last (ETag or generation), so the store's
  last-modified time says the holder is alive.
- **Taken over** when the holder is dead: a process of this host that no longer exists
  (``kill -9``), or a lock not rewritten for ``output.lock_stale_s`` seconds (a node that
  died, a preempted job). The takeover is itself conditional (on the stale lock's
  version), so of two runs taking over together one wins.
- **Lost**: a holder whose rewrite is refused was taken over (it was silent too long);
  ``lost`` is then true and the run stops before ``dataset_info.json`` (``staging``).

What a store offers is its ``pipeline.stores`` class: one without conditional replace
holds the lock without the lease (no takeover from another host); one without
conditional create is refused in one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from typing import Any

from pipeline.dataset.store import LOCK_FILE, Remote
from pipeline.errors import PipelineError


class RemoteLock:
    """The lock object of a URL output while this run holds it."""

    def __init__(self, remote: Remote, name: str = LOCK_FILE) -> None:
        self.remote = remote
        self.name = name  # LOCK_FILE, or one slice's (``store.slice_lock``)
        self.held = False
        self.lost = False
        self.took_over = ""  # who held the lock this run took over, for the log
        self.token = uuid.uuid4().hex
        self.etag: str | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @property
    def leased(self) -> bool:
        """The store can replace conditionally: a lease, and a stale lock taken over."""
        return self.remote.store.conditional_replace

    @classmethod
    def acquire(cls, remote: Remote, name: str = LOCK_FILE) -> RemoteLock:
        """Take the lock object ``name``, or raise one line naming its holder (see the
        module docstring). A slice of a sliced run locks only its slice: the slices write
        side by side."""
        lock = cls(remote, name)
        try:
            lock._write(if_none_match=True)
        except FileExistsError:
            holder, age, etag = lock._holder()
            if not (_dead_here(holder) or (lock.leased and age > remote.lock_stale_s)):
                raise lock._refusal(holder, age) from None
            try:
                lock._write(if_match=etag)
            except FileExistsError:  # another run took it over first
                raise lock._refusal(*lock._holder()[:2]) from None
            lock.took_over = f"{_who(holder)}, not rewritten for {age:.0f} s"
        lock.held = True
        if lock.leased:
            lock._beat = threading.Thread(target=lock._keep_alive, daemon=True)
            lock._beat.start()
        return lock

    def _body(self) -> bytes:
        return json.dumps(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "token": self.token,
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(sys.argv)[:300],
            }
        ).encode()

    def _write(self, if_none_match: bool = False, if_match: str | None = None) -> None:
        """Put the lock object conditionally; FileExistsError when the condition fails."""
        store, path = self.remote.store, self.remote.path(self.name)
        try:
            if if_none_match:
                self.etag = store.create(path, self._body())
            else:
                self.etag = store.replace(path, self._body(), if_match)
        except FileExistsError:
            raise
        except FileNotFoundError as exc:  # no bucket; or, rewriting, the lock was removed
            if not if_none_match:
                raise FileExistsError(path) from None
            raise self._unwritable(exc) from None
        except PipelineError:  # no conditional create here
            raise PipelineError(
                f"output.dir={self.remote.url}: {self.remote.protocol}:// offers no "
                f"conditional create here, so two writers could not be kept apart; write to "
                f"s3://, gs://, az:// or a local directory"
            ) from None
        except Exception as exc:  # the first write: no bucket, no credentials, no network
            raise self._unwritable(exc) from None

    def _unwritable(self, exc: BaseException) -> PipelineError:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        store = self.remote.store
        return PipelineError(
            f"output.dir={self.remote.url}: cannot write there ({detail}); check the "
            f"bucket, the credentials ({store.credentials}) and the endpoint "
            f"({store.endpoint})"
        )

    def _holder(self) -> tuple[dict[str, Any], float, str | None]:
        """The holder's record, seconds since the lock was last written (the object's
        own time: a garbage record ages like any other), and its version."""
        store, path = self.remote.store, self.remote.path(self.name)
        try:
            info = store.info(path)
        except (OSError, ValueError, TypeError):
            return {}, 0.0, None
        try:
            holder = json.loads(store.fs.cat_file(path))
            holder = dict(holder) if isinstance(holder, dict) else {}
        except (OSError, ValueError, TypeError):
            holder = {}
        return holder, store.age(info), store.version(info)

    def _refusal(self, holder: dict[str, Any], age: float) -> PipelineError:
        stale = (
            f", last rewritten {age:.0f} s ago; a lock silent for output.lock_stale_s="
            f"{self.remote.lock_stale_s:g} s is taken over"
            if self.leased
            else ""
        )
        return PipelineError(
            f"output.dir={self.remote.url} is in use by another depth-pipeline run "
            f"({_who(holder)}{stale}); wait for it to end, or if it is dead remove "
            f"{self.remote.path(self.name)}"
        )

    def _keep_alive(self) -> None:
        every = min(60.0, self.remote.lock_stale_s / 8)
        while not self._stop.wait(every):
            try:
                self._write(if_match=self.etag)
            except FileExistsError:  # rewritten by another run: it took the lock over
                self.lost = True
                return
            except Exception:  # a network blip: the next beat tries again
                continue

    def check(self) -> None:
        """Raise one line if another run took the lock over while this one held it."""
        if self.lost:
            raise PipelineError(
                f"output.dir={self.remote.url}: another run took the lock over while this "
                f"one was silent for more than output.lock_stale_s="
                f"{self.remote.lock_stale_s:g} s; dataset_info.json was not written: let "
                f"that run finish, or run this command again once it has ended"
            )

    def release(self) -> None:
        """Stop the lease and delete the lock object if it is still this run's."""
        if not self.held:
            return
        self.held = False
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.lost:
            return
        store, path = self.remote.store, self.remote.path(self.name)
        with contextlib.suppress(OSError, ValueError):
            if not self.leased:
                store.fs.rm(path)
            elif json.loads(store.fs.cat_file(path)).get("token") == self.token:
                store.delete_if(path, self.etag)


def _who(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    return f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('since')}"


def _dead_here(holder: dict[str, Any]) -> bool:
    from pipeline.dataset.lock import alive

    try:
        pid = int(holder["pid"])
    except (KeyError, TypeError, ValueError):
        return False
    return holder.get("host") == socket.gethostname() and pid != os.getpid() and not alive(pid)
