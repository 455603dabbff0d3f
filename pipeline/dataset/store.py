"""Where ``output.dir`` lives: a local directory, or an fsspec URL (``s3://``, ``gs://``...).

A URL ``output.dir`` is written through a local staging directory: every file is made
there exactly as for a local run (``writers.atomic_write``, the layouts' writers), then
uploaded as one whole object under its final name (an S3 PUT is all or nothing, so a
partial object never appears), each shard before its manifest (with its checksum, as the
store family in ``pipeline.stores`` can check and keep it), ``dataset_info.json``
last; a shard's files leave the staging directory once uploaded, so it holds a few
shards at most (``staging.py`` mirrors the dataset's records there for the claim).

Only one writer at a time: ``remote_lock.RemoteLock`` holds ``.depth-pipeline/lock.json``
(a conditional create, kept alive as a lease). A URL nobody can serve is one line naming
what to install.
Credentials and the endpoint come from each family's standard places (``pipeline.stores``,
the README's table of stores); ``output.storage_options`` go to the filesystem as given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config.urls import filesystem, is_url, local_path
from pipeline.errors import PipelineError
from pipeline.stores import ObjectStore, store_for

LOCK_FILE = ".depth-pipeline/lock.json"


@dataclass
class Remote:
    """A dataset prefix in an object store; picklable (the filesystem is made lazily)."""

    url: str
    options: dict[str, Any] = field(default_factory=dict)
    endpoint: str | None = None
    lock_stale_s: float = 600.0  # a lock not rewritten for this long is a dead run's
    _fs: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fs": None}

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

    @property
    def store(self) -> ObjectStore:
        """What this prefix's store family offers, and how (``pipeline.stores``)."""
        return store_for(self.protocol)(self.fs)

    def upload(self, local: Path, rel: str, sha256: str | None = None) -> None:
        """``local`` as the whole object ``rel``; a shard's sha256 (known from its
        manifest) goes with it as the store family can check and keep it."""
        self.store.upload(local, self.path(rel), sha256)

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
        """The object ``rel`` was uploaded by this tool with this content: the sha256 it
        went up with, where the store keeps one; elsewhere (whole-object uploads, each
        manifest after its shard) that it exists."""
        store = self.store
        if store.resume_by_checksum:
            return store.sha256_of(self.path(rel)) == sha256
        return bool(self.fs.exists(self.path(rel)))

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
    options = dict(output.storage_options or {})
    return Remote(str(output.dir), options, output.endpoint_url, float(output.lock_stale_s))


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
            missing = [rel for rel in rels if not (root / rel).exists()]
            for rel in missing:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
            got = [root / rel for rel in missing]
            if missing:  # one call: fsspec fetches them concurrently
                remote.fs.get([remote.path(rel) for rel in missing], [str(p) for p in got])
        yield
    finally:
        for path in got:
            path.unlink(missing_ok=True)


def slice_lock(index: int, num_shards: int) -> str:
    """The lock object of slice ``index`` of ``num_shards`` (one per slice)."""
    return f".depth-pipeline/lock-slice-{index:05d}-of-{num_shards:05d}.json"
