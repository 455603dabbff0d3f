"""What an object store offers, and the generic fsspec store that offers the least.

An ``ObjectStore`` wraps one fsspec filesystem and states, as class attributes, the
guarantees its family gives (the README's table of stores is these attributes):

- ``conditional_create``: an object is created only if absent, arbitrated by the store
  (a second writer's lock is refused);
- ``conditional_replace``: an object is replaced only if unchanged since it was read (the
  lock's lease, and taking over a stale lock, where two runs racing get one winner);
- ``server_checksum``: the store checks a digest sent with the upload against the bytes
  it received before the object exists;
- ``resume_by_checksum``: an object carries the sha256 it was uploaded with, so resume
  knows an object is this shard's bytes (not only that it exists);
- ``consistent_listing``: a listing shows every object written before it.

Every method takes full URLs (or fsspec paths). ``create``/``replace`` raise
``FileExistsError`` when the store refuses the condition.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pipeline.errors import PipelineError

SHA_META = "sha256"  # the object's sha256, kept as user metadata where the store has it


class ObjectStore:
    """Any fsspec filesystem: whatever ``mode="create"`` it has, nothing more."""

    family: ClassVar[str] = "other fsspec"
    protocols: ClassVar[tuple[str, ...]] = ()
    package: ClassVar[str] = ""  # the fsspec implementation, for "pip install"
    extra: ClassVar[str] = ""  # depth-pipeline's extra that installs it
    endpoint: ClassVar[str] = "the implementation's own options (output.storage_options)"
    credentials: ClassVar[str] = "the implementation's own"
    conditional_create: ClassVar[bool] = False
    conditional_replace: ClassVar[bool] = False
    server_checksum: ClassVar[bool] = False
    resume_by_checksum: ClassVar[bool] = False
    consistent_listing: ClassVar[bool] = True

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    @classmethod
    def options(cls, opts: dict[str, Any], endpoint: str | None) -> dict[str, Any]:
        """The filesystem's keyword arguments from ``storage_options`` and an endpoint
        (no listings cache: other processes write the prefix)."""
        opts.setdefault("use_listings_cache", False)
        return opts

    @classmethod
    def limits(cls) -> list[str]:
        """One line per guarantee the family lacks, said before a run writes there."""
        out = []
        if not cls.conditional_replace:
            out.append(
                "no conditional replace: a lock left by a run on another host is not taken "
                "over (remove it by hand once that run is dead)"
            )
        if not cls.server_checksum:
            out.append("no server-verified checksum: each shard is read back and hashed")
        if not cls.resume_by_checksum:
            out.append("no checksum metadata: resume trusts an object that exists")
        return out

    def create(self, path: str, body: bytes) -> str | None:
        """Write ``body`` only if ``path`` is absent; its version (None: unknown)."""
        try:
            self.fs.pipe_file(path, body, mode="create")
        except TypeError:  # an implementation without the mode
            raise PipelineError(
                f"{path}: {self.fs.protocol} offers no conditional create here, so two "
                f"writers could not be kept apart; write to s3://, gs://, az:// or a local "
                f"directory"
            ) from None
        return None

    def replace(self, path: str, body: bytes, version: str | None) -> str | None:
        """Write ``body`` only if ``path`` is still at ``version``; its new version."""
        raise FileExistsError(path)  # never offered: the caller does not take over

    def delete_if(self, path: str, version: str | None) -> None:
        """Delete ``path`` (only if still at ``version`` where the store can say so)."""
        self.fs.rm(path)

    def upload(self, local: Path, path: str, sha256: str | None = None) -> None:
        """``local`` as the whole object ``path``; with ``sha256``, checked as the family
        can (here: read back and hashed)."""
        self.fs.put_file(str(local), path)
        if sha256 and hashlib.sha256(self.fs.cat_file(path)).hexdigest() != sha256:
            raise PipelineError(f"{path}: the uploaded object is not the shard's bytes")

    def sha256_of(self, path: str) -> str | None:
        """The sha256 ``path`` was uploaded with (None: absent, or not kept)."""
        return None

    def version(self, info: dict[str, Any]) -> str | None:
        """What changes with an object's content: the token ``replace`` checks."""
        return _str(info.get("ETag") or info.get("etag") or info.get("mtime"))

    def age(self, info: dict[str, Any]) -> float:
        """Seconds since the object was last written (0 when the store does not say)."""
        for key in ("LastModified", "last_modified", "mtime", "updated"):
            stamp = info.get(key)
            if isinstance(stamp, str):
                with contextlib.suppress(ValueError):
                    stamp = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            if hasattr(stamp, "timestamp"):
                return max(0.0, time.time() - stamp.timestamp())
        return 0.0

    def info(self, path: str) -> dict[str, Any]:
        return dict(self.fs.info(path))


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
