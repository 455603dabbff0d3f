"""A dataset under a URL (``s3://bucket/prefix``, any fsspec URL) read through a bounded
local cache: a shard's files are fetched whole (one concurrent fsspec ``get``), checked
against the manifest's sha256 on arrival, and kept for at most ``keep`` shards per process
(least recently used leave first) in a temporary directory removed when the reader or its
process goes; given the order it will read shards in (``expect``), the next ``prefetch``
of them are fetched in a background thread (checked there too) while the current one is
read. Each process (a forked loader worker too) gets its own cache and filesystem.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import tempfile
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Any

from pipeline.dataset.owned import inside
from pipeline.dataset.records import ShardManifest
from pipeline.dataset.shard_files import (
    ShardFiles,
    manifest_rel,
    parse_manifest,
    refuse,
)


class CachedFiles(ShardFiles):
    """The objects under a URL, fetched a shard at a time into a bounded local cache."""

    def __init__(
        self, remote: Any, keep: int = 2, cache_dir: Path | None = None, prefetch: int = 0
    ) -> None:
        super().__init__(Path())
        self.remote = remote  # a dataset.store.Remote (picklable; its filesystem is lazy)
        self.keep, self.ahead = max(1, keep), max(0, prefetch)
        self.cache_dir = cache_dir
        self._reset()

    def _reset(self) -> None:
        """This process's own cache state (a forked loader worker starts empty)."""
        self._pid, self._verify = os.getpid(), True
        self._held: OrderedDict[str, list[str]] = OrderedDict()
        self._dir: Path | None = None
        self._pending: dict[str, tuple[Future[list[str]], list[str]]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._follow([])

    def __getstate__(self) -> dict[str, Any]:
        state = {**super().__getstate__()}
        for name in ("_held", "_dir", "_pending", "_plan", "_place", "_pool"):
            state.pop(name)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def where(self, rel: str) -> str:
        return self.remote.path(rel)

    @property
    def root(self) -> str:
        return str(self.remote.url)

    def read_bytes(self, rel: str) -> bytes:
        return self.remote.read_bytes(rel)

    def manifests(self, shards: list[str]) -> dict[str, ShardManifest | None]:
        """Fetched concurrently (one fsspec ``cat`` call): a dataset of many shards opens
        in about one round trip."""
        fs = self.remote.fs
        paths = {fs._strip_protocol(self.remote.path(manifest_rel(s))): s for s in shards}
        got = fs.cat(list(paths), on_error="return") if paths else {}
        got = {fs._strip_protocol(path): data for path, data in got.items()}
        out: dict[str, ShardManifest | None] = {}
        for path, shard in paths.items():
            data = got.get(path)
            out[shard] = parse_manifest(data) if isinstance(data, bytes) else None
        return out

    def stamps(self, rels: list[str]) -> str:
        """One listing of the prefix: each object's size and version (ETag)."""
        from pipeline.config.urls import version

        fs, base = self.remote.fs, self.remote.fs._strip_protocol(self.remote.url).rstrip("/")
        found = {
            fs._strip_protocol(name)[len(base) + 1 :]: f"{info.get('size')}|{version(info)}"
            for name, info in fs.find(self.remote.url, detail=True).items()
        }
        h = hashlib.sha256()
        for rel in sorted(rels):
            h.update(f"{rel}\0{found.get(rel)}\n".encode())
        return h.hexdigest()[:16]

    def check(self, manifest: ShardManifest) -> list[str]:
        problems = self.fetch(manifest) or self.damaged(manifest)
        self.drop(manifest)
        return problems

    @property
    def local(self) -> Path:
        """This process's cache directory (made on first use, removed with the reader)."""
        if self._pid != os.getpid():  # a forked loader worker: its own cache and connection
            self._reset()
            self.remote = copy.copy(self.remote)
            self.remote._fs = None  # fsspec's async filesystems are not fork-safe
        if self._dir is None:
            if self.cache_dir is not None:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
            self._dir = Path(tempfile.mkdtemp(prefix="depth-pipeline-read-", dir=self.cache_dir))
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="depth-pipeline-prefetch")
            # removed with the reader or at its process's exit (a loader worker's too)
            Finalize(self, _cleanup, (self._pool, str(self._dir)), exitpriority=10)
            self.base = self._dir
        return self._dir

    def expect(self, manifests: list[ShardManifest], at_once: int = 1) -> None:
        """Read these shards in this order next (``at_once`` of them in turn, all kept):
        each ``ensure`` starts fetching the following ``prefetch`` shards in the background."""
        self.local  # noqa: B018 (this process's directory and prefetch thread)
        self.keep = max(self.keep, at_once + self.ahead)
        for shard, (future, rels) in list(self._pending.items()):
            self._arrived(shard, future.result(), rels)
        self._follow(manifests)

    def ensure(self, manifest: ShardManifest, verify: bool) -> None:
        self.local  # noqa: B018
        self._verify = verify
        if manifest.shard in self._held:
            self._held.move_to_end(manifest.shard)
        else:
            pending = self._pending.pop(manifest.shard, None)
            problems = pending[0].result() if pending else self._arrive(manifest, verify)
            self._arrived(manifest.shard, problems, list(manifest.files))
            if problems:
                self.drop(manifest)
                refuse(problems)
        self._next(manifest)

    def _arrive(self, manifest: ShardManifest, verify: bool) -> list[str]:
        """Fetch one shard and (with ``verify``) check it: in this thread or the prefetch one."""
        problems = self.fetch(manifest)
        return self.damaged(manifest) if verify and not problems else problems

    def _arrived(self, shard: str, problems: list[str], rels: list[str]) -> None:
        self._pending.pop(shard, None)
        if problems:
            return
        while len(self._held) >= self.keep:
            _, old = self._held.popitem(last=False)
            for rel in old:
                (self.local / rel).unlink(missing_ok=True)
        self._held[shard] = rels

    def _next(self, manifest: ShardManifest) -> None:
        """Start fetching the ``prefetch`` shards that follow ``manifest`` in the plan."""
        if not self.ahead or not self._reached(manifest):
            return
        for upcoming in self._plan[self._at : self._at + self.ahead]:
            shard = upcoming.shard
            if shard in self._held or shard in self._pending or self._pool is None:
                continue
            future = self._pool.submit(self._arrive, upcoming, self._verify)
            self._pending[shard] = (future, list(upcoming.files))

    def fetch(self, manifest: ShardManifest) -> list[str]:
        """Download the shard's files (one call: fsspec fetches them concurrently)."""
        rels = [rel for rel in manifest.files if inside(self.local, rel) is not None]
        for rel in rels:
            (self.local / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.remote.fs.get(
                [self.remote.path(rel) for rel in rels], [str(self.local / rel) for rel in rels]
            )
        except FileNotFoundError:
            return [
                f"{self.where(rel)}: missing (listed in shard {manifest.shard}'s manifest)"
                for rel in rels
                if not self.remote.fs.exists(self.remote.path(rel))
            ] or [f"{self.where(rels[0])}: could not be fetched"]
        return []

    def drop(self, manifest: ShardManifest) -> None:
        """Remove a shard's cached files (after checking it, or when it was refused)."""
        self._held.pop(manifest.shard, None)
        for rel in manifest.files:
            if inside(self.local, rel) is not None:
                (self.local / rel).unlink(missing_ok=True)


def _cleanup(pool: ThreadPoolExecutor, where: str) -> None:
    pool.shutdown(wait=True, cancel_futures=True)
    shutil.rmtree(where, True)
