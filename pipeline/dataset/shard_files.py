"""Where a written dataset's shard files are read from: its directory, or a local cache of
the objects under a URL (``shard_cache.CachedFiles``).

``ShardFiles.ensure(manifest)`` makes one shard's files present under ``base`` and, when
asked, checks them against the manifest's sha256 once: a local shard the first time this
process reads it (the next shard of an ``expect``-ed order in a background thread while
this one is read), a remote one each time it is fetched. A damaged shard is one line naming
the file (or the object's URL).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from pipeline.dataset.owned import inside
from pipeline.dataset.records import INFO_FILE, DatasetInfo, ShardManifest
from pipeline.dataset.writers import sha256_file
from pipeline.errors import PipelineError

REPAIR = "re-run the command that wrote it (the damaged shards are written again)"


class ShardFiles:
    """A local dataset directory: the files are where the manifests say."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._checked: set[str] = set()
        self._ahead: dict[str, Future[list[str]]] = {}  # shard -> its check, running
        self._pid = os.getpid()
        self._follow([])

    def where(self, rel: str) -> str:
        """How a message names the file ``rel`` (a path, or a URL)."""
        return str(self.base / rel)

    @property
    def root(self) -> str:
        """The dataset's location as given (a directory, or a URL)."""
        return str(self.base)

    def read_bytes(self, rel: str) -> bytes:
        """A record file of the dataset (``dataset_info.json``, a manifest, a list)."""
        return (self.base / rel).read_bytes()

    def info(self) -> DatasetInfo:
        """``dataset_info.json``; one line if absent or invalid."""
        try:
            data = self.read_bytes(INFO_FILE)
        except FileNotFoundError:
            raise PipelineError(
                f"{self.root} holds no finished depth-pipeline dataset (it has no {INFO_FILE}, "
                f"which a run writes last): give the output.dir of a finished run, or re-run "
                f"the pipeline to finish it"
            ) from None
        except OSError as exc:
            raise PipelineError(f"{self.where(INFO_FILE)}: cannot be read ({exc})") from None
        try:
            record = json.loads(data)
            if isinstance(record, dict) and set(record) == {"splits"}:  # output.splits
                names = ", ".join(record["splits"])
                raise PipelineError(
                    f"{self.root} holds the splits {names} (output.splits=true): read one of "
                    f"them, e.g. {self.root.rstrip('/')}/{next(iter(record['splits']))}"
                )
            return DatasetInfo.from_json(record)
        except (ValueError, KeyError, TypeError) as exc:
            raise PipelineError(
                f"{self.where(INFO_FILE)}: not a valid {INFO_FILE} ({exc})"
            ) from None

    def manifests(self, shards: list[str]) -> dict[str, ShardManifest | None]:
        """The manifests of these shards (None where missing or unreadable)."""
        out: dict[str, ShardManifest | None] = {}
        for shard in shards:
            try:
                out[shard] = parse_manifest(self.read_bytes(manifest_rel(shard)))
            except OSError:
                out[shard] = None
        return out

    def check(self, manifest: ShardManifest) -> list[str]:
        """Every file of one shard against its sha256 (what ``depth-pipeline-verify`` does)."""
        return self.damaged(manifest)

    def stamps(self, rels: list[str]) -> str:
        """A digest of these files' sizes and modification times (ETags at a URL): it
        changes when any of them is rewritten, without reading them."""
        h = hashlib.sha256()
        for rel in sorted(rels):
            path = inside(self.base, rel)
            st = path.stat() if path is not None and path.exists() else None
            h.update(f"{rel}\0{st and st.st_size}\0{st and st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    def expect(self, manifests: list[ShardManifest], at_once: int = 1) -> None:
        """The shards this process reads next, in order, ``at_once`` of them read in turn:
        when one is first checked, the next one's check starts in a background thread
        (hashlib and file reads release the GIL: it runs beside the decoding)."""
        self._follow(manifests)

    def _follow(self, manifests: list[ShardManifest]) -> None:
        """The plan ``_reached`` walks: its shards in order, the cursor at its start."""
        self._plan, self._at = list(manifests), 0  # the cursor: just past the last reached
        self._place = {m.shard: i for i, m in enumerate(self._plan)}

    def _reached(self, manifest: ShardManifest) -> bool:
        """Whether ``manifest`` is still ahead in the plan; if so the cursor moves past it."""
        i = self._place.get(manifest.shard, -1)
        if i < self._at:
            return False
        self._at = i + 1
        return True

    def ensure(self, manifest: ShardManifest, verify: bool) -> None:
        """The shard's files present under ``base``; with ``verify``, checked once."""
        if not verify or manifest.shard in self._checked:
            return
        if self._pid != os.getpid():  # a forked loader worker: the parent's threads are gone
            self._pid, self._ahead = os.getpid(), {}
        running = self._ahead.pop(manifest.shard, None)
        refuse(running.result() if running is not None else self.damaged(manifest))
        self._checked.add(manifest.shard)
        if self._reached(manifest):
            after = range(self._at, len(self._plan))
            upcoming = next((self._plan[i] for i in after
                             if self._plan[i].shard not in self._checked), None)  # fmt: skip
            if upcoming is not None and upcoming.shard not in self._ahead:
                self._ahead[upcoming.shard] = in_thread(self.damaged, upcoming)

    def damaged(self, manifest: ShardManifest) -> list[str]:
        """What is wrong with the files of one shard, one line each ([] if nothing)."""
        problems = []
        for rel, digest in sorted(manifest.files.items()):
            path = inside(self.base, rel)
            if path is None:
                problems.append(f"{rel}: shard {manifest.shard}'s manifest points outside")
            elif not path.is_file():
                problems.append(
                    f"{self.where(rel)}: missing (listed in shard {manifest.shard}'s manifest)"
                )
            elif sha256_file(path) != digest:
                problems.append(changed(self.where(rel), manifest.shard))
        return problems

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_checked": set(), "_ahead": {}}  # each process checks its own


def in_thread(fn: Callable[[ShardManifest], list[str]], manifest: ShardManifest) -> Future:
    """``fn(manifest)`` in a short-lived daemon thread (none is left once it is done, so a
    loader started later may still fork); its result or exception in the future."""
    future: Future[list[str]] = Future()

    def run() -> None:
        try:
            future.set_result(fn(manifest))
        except BaseException as exc:  # handed to the reader, which raises it
            future.set_exception(exc)

    threading.Thread(target=run, name="depth-pipeline-check", daemon=True).start()
    return future


def manifest_rel(shard: str) -> str:
    return ShardManifest.path(Path(), shard).as_posix()


def parse_manifest(data: bytes) -> ShardManifest | None:
    try:
        return ShardManifest.from_json(json.loads(data))
    except (ValueError, KeyError, TypeError):
        return None


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def changed(where: str, shard: str) -> str:
    return f"{where}: its bytes changed since shard {shard} was written (sha256 differs)"


def refuse(problems: list[str]) -> None:
    """One ``PipelineError`` line for the first problem of a damaged shard."""
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PipelineError(f"damaged dataset: {problems[0]}{more}; {REPAIR}")
