"""Where ``output.dir`` lives: a local directory, or an fsspec URL (``s3://``, ``gs://``...).

A URL ``output.dir`` is written through a local staging directory: every file is made
there exactly as for a local run (``writers.atomic_write``, the layouts' writers), then
uploaded as one whole object under its final name (an S3 PUT is all or nothing, so a
partial object never appears), each shard before its manifest, ``dataset_info.json``
last; a shard's files leave the staging directory once uploaded, so it holds a few
shards at most (``staging.py`` mirrors the dataset's records there for the claim).

Only one writer at a time: ``RemoteLock`` creates ``.depth-pipeline/lock.json`` with a
conditional create (S3 ``PutObject`` with ``If-None-Match: *`` through s3fs's
``mode="create"``), which the store itself arbitrates; a second writer gets HTTP 412 and
is refused naming the holder. A URL nobody can serve is one line naming what to install.
Credentials come from the standard places (``AWS_*`` variables, profiles); the endpoint
from ``output.endpoint_url`` or ``AWS_ENDPOINT_URL``; ``output.storage_options`` go to the
filesystem as given.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config.urls import S3_PROTOCOLS, filesystem, is_url, local_path
from pipeline.errors import PipelineError

LOCK_FILE = ".depth-pipeline/lock.json"
SHA_META = "sha256"  # S3 user metadata: the object's sha256, checked on resume


@dataclass
class Remote:
    """A dataset prefix in an object store; picklable (the filesystem is made lazily)."""

    url: str
    options: dict[str, Any] = field(default_factory=dict)
    endpoint: str | None = None
    _fs: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "options": self.options, "endpoint": self.endpoint, "_fs": None}

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs = filesystem(self.url, self.options, self.endpoint)
        return self._fs

    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0].lower()

    def path(self, rel: str) -> str:
        return f"{self.url}/{rel}"

    def listing(self) -> dict[str, int]:
        """``{relative name: size}`` of every object under the prefix."""
        base = self.fs._strip_protocol(self.url).rstrip("/")
        try:
            found = self.fs.find(self.url, detail=True)
        except FileNotFoundError:
            return {}
        out = {}
        for name, info in found.items():
            name = self.fs._strip_protocol(name)
            if name.startswith(base + "/") and info.get("type", "file") == "file":
                out[name[len(base) + 1 :]] = int(info.get("size") or 0)
        return out

    def upload(self, local: Path, rel: str, sha256: str | None = None) -> None:
        """``local`` as the whole object ``rel`` (its sha256 kept as S3 metadata)."""
        extra = {"Metadata": {SHA_META: sha256}} if sha256 and self.protocol in S3_PROTOCOLS else {}
        self.fs.put_file(str(local), self.path(rel), **extra)

    def download(self, rel: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(self.path(rel), str(local))

    def read_bytes(self, rel: str) -> bytes:
        return bytes(self.fs.cat_file(self.path(rel)))

    def delete(self, rels: Iterable[str]) -> None:
        paths = [self.path(r) for r in rels]
        if paths:
            self.fs.rm(paths)

    def matches(self, rel: str, sha256: str) -> bool:
        """The object ``rel`` was uploaded by this tool with this content (S3: its sha256
        metadata; elsewhere whole-object uploads and manifest-after-shard: it exists)."""
        if self.protocol not in S3_PROTOCOLS:
            return bool(self.fs.exists(self.path(rel)))
        try:
            meta = self.fs.metadata(self.path(rel))
        except FileNotFoundError:
            return False
        return meta.get(SHA_META) == sha256

    def publish_shard(
        self, root: Path, files: dict[str, str], manifest: str, between: Any = None
    ) -> None:
        """Upload a committed shard's files, then (after ``between()``, a test's fault
        point) its manifest; drop the staged shard files."""
        for rel, digest in files.items():
            self.upload(root / rel, rel, digest)
        if between is not None:
            between()
        self.upload(root / manifest, manifest)
        for rel in files:
            (root / rel).unlink(missing_ok=True)


def remote_of(output: Any) -> Remote | None:
    """The ``Remote`` of an output config whose ``dir`` is a URL, else None."""
    if not is_url(output.dir):
        return None
    return Remote(str(output.dir), dict(output.storage_options or {}), output.endpoint_url)


def local_root(output: Any) -> Path:
    """Where this process writes ``output.dir``'s files: the directory itself, or the
    staging directory of a URL (set by the runner before the workers start)."""
    if is_url(output.dir):
        if not output.staging_dir:
            raise PipelineError(f"output.dir={output.dir}: no staging directory was set up")
        return Path(output.staging_dir)
    return Path(local_path(str(output.dir)))


@contextlib.contextmanager
def fetched(output: Any, root: Path, rels: Iterable[str]) -> Iterator[None]:
    """The files ``rels`` present under ``root`` for the block: for a URL output, those
    already uploaded are downloaded and removed again afterwards (bounded staging)."""
    remote = remote_of(output)
    got: list[Path] = []
    try:
        if remote is not None:
            for rel in rels:
                if not (root / rel).exists():
                    remote.download(rel, root / rel)
                    got.append(root / rel)
        yield
    finally:
        for path in got:
            path.unlink(missing_ok=True)


class RemoteLock:
    """``.depth-pipeline/lock.json`` of a URL output, created only if absent."""

    def __init__(self, remote: Remote, name: str = LOCK_FILE) -> None:
        self.remote = remote
        self.name = name
        self.held = False

    @classmethod
    def acquire(cls, remote: Remote, name: str = LOCK_FILE) -> RemoteLock:
        """Create the lock object ``name`` or raise one line naming its holder. A lock left
        by a dead process of this host (``kill -9``) is taken over. One slice of a sliced
        run locks only its slice (``slice_lock``): the slices write side by side."""
        lock = cls(remote, name)
        body = json.dumps(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(sys.argv)[:300],
            }
        ).encode()
        for attempt in range(2):
            try:
                lock._create(body)
                lock.held = True
                return lock
            except FileExistsError:
                holder = lock._holder()
                if attempt == 0 and _dead_here(holder):
                    with contextlib.suppress(FileNotFoundError):
                        remote.fs.rm(remote.path(name))
                    continue
                raise lock._refusal(holder) from None
        raise AssertionError("unreachable")

    def _create(self, body: bytes) -> None:
        try:
            self.remote.fs.pipe_file(self.remote.path(self.name), body, mode="create")
        except FileExistsError:
            raise
        except TypeError:  # an fsspec implementation without conditional create
            raise PipelineError(
                f"output.dir={self.remote.url}: {self.remote.protocol}:// offers no "
                f"conditional create here, so two writers could not be kept apart; write to "
                f"s3:// or a local directory"
            ) from None
        except Exception as exc:  # the first write: no bucket, no credentials, no network
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise PipelineError(
                f"output.dir={self.remote.url}: cannot write there ({detail}); check the "
                f"bucket, the credentials (AWS_* variables, AWS_PROFILE) and the endpoint "
                f"(AWS_ENDPOINT_URL or output.endpoint_url)"
            ) from None

    def _holder(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.remote.read_bytes(self.name)))
        except (OSError, ValueError, TypeError):
            return {}

    def _refusal(self, holder: dict[str, Any]) -> PipelineError:
        who = (
            f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('since')}"
            if holder
            else "holder unknown"
        )
        return PipelineError(
            f"output.dir={self.remote.url} is in use by another depth-pipeline run ({who}); "
            f"wait for it to end, or if it is dead remove {self.remote.path(self.name)}"
        )

    def release(self) -> None:
        if self.held:
            self.held = False
            with contextlib.suppress(FileNotFoundError):
                self.remote.fs.rm(self.remote.path(self.name))


def slice_lock(index: int, num_shards: int) -> str:
    """The lock object of slice ``index`` of ``num_shards`` (one per slice)."""
    return f".depth-pipeline/lock-slice-{index:05d}-of-{num_shards:05d}.json"


def _dead_here(holder: dict[str, Any]) -> bool:
    from pipeline.dataset.lock import alive

    try:
        pid = int(holder["pid"])
    except (KeyError, TypeError, ValueError):
        return False
    return holder.get("host") == socket.gethostname() and pid != os.getpid() and not alive(pid)
