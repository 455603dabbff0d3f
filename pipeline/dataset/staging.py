"""The local staging directory of a URL ``output.dir``, and claiming the remote prefix.

``staged(remote, root)`` holds the remote lock for a run and makes ``root`` (the staging
directory) a mirror the ordinary claim (``claim.claimed``) can work on: the dataset's
records (config record, shard manifests, card, the list of published files, slice
records) are downloaded, every
other object gets an empty placeholder file. The claim then decides as for a local
directory; ``Staging.claimed`` carries its decisions to the store (objects whose
placeholder or record it deleted are deleted, a new config record is uploaded, the old
``dataset_info.json`` first) and drops the placeholders. Workers upload their shards
(``Remote.publish_shard``); ``Staging.published`` uploads what publishing wrote, with
``dataset_info.json`` last. The staging directory is emptied when the run ends.

For a local ``output.dir`` (``remote`` None) every step is a no-op.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.dataset.lock import LOCK_DIR
from pipeline.dataset.owned import CARD, CONFIG_RECORD, PUBLISHED, SLICE_DIR
from pipeline.dataset.records import INFO_FILE, MANIFEST_DIR
from pipeline.dataset.remote_lock import RemoteLock
from pipeline.dataset.store import LOCK_FILE, Remote
from pipeline.dataset.writers import TMP_NAME
from pipeline.errors import PipelineError

MARK = ".depth-pipeline-staging"


def directory(remote: Remote, base: str | None, part: str = "") -> Path:
    """The staging directory of ``remote``: one per URL (and ``part``: a slice, a merge)
    under ``base`` (default: the system's temporary directory)."""
    top = Path(os.path.expanduser(base)) if base else Path(tempfile.gettempdir())
    name = hashlib.sha256(f"{remote.url} {part}".strip().encode()).hexdigest()[:16]
    return top / "depth-pipeline-staging" / name


def _is_record(rel: str) -> bool:
    parts = rel.split("/")
    if len(parts) == 1:
        return rel in (CARD, PUBLISHED)
    return len(parts) == 2 and parts[0] in (MANIFEST_DIR, SLICE_DIR) and rel.endswith(".json")


class Staging:
    """What a run needs from the staging mirror; for a local output every call is a no-op."""

    def __init__(self, remote: Remote | None, root: Path) -> None:
        self.remote = remote
        self.root = root
        self.listing: dict[str, int] = {}
        self.placeholders: dict[str, int] = {}  # rel -> inode of the empty file
        self.synced: dict[str, bytes] = {}  # records as they are in the store
        self.lock: RemoteLock | None = None  # held for the run (``staged``)

    def mirror(self) -> None:
        """Download the records, placeholders for the other objects."""
        assert self.remote is not None
        self.listing = {
            rel: size
            for rel, size in self.remote.listing().items()
            if not rel.startswith(f"{LOCK_DIR}/")
        }
        if self.listing and CONFIG_RECORD not in self.listing:
            foreign = sorted({rel.split("/")[0] for rel in self.listing})
            raise PipelineError(
                f"output.dir={self.remote.url} is not empty ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}) and holds no depth-pipeline dataset; "
                f"choose a new or empty output.dir"
            )
        for rel in self.listing:
            local = self.root / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            if _is_record(rel):
                self.remote.download(rel, local)
                self.synced[rel] = local.read_bytes()
            else:
                local.write_bytes(b"")
                self.placeholders[rel] = local.stat().st_ino

    def has(self, path: Path, digest: str) -> bool:
        """A shard file in the store with this sha256 (``claim.finished`` on resume)."""
        if self.remote is None:
            from pipeline.dataset.writers import sha256_file

            return path.is_file() and sha256_file(path) == digest
        rel = path.relative_to(self.root).as_posix()
        return rel in self.listing and self.remote.matches(rel, digest)

    def claimed(self) -> None:
        """Carry the claim's deletions and config record to the store; drop placeholders."""
        if self.remote is None:
            return
        gone = [rel for rel in self.listing if not (self.root / rel).exists()]
        gone.sort(key=lambda rel: rel != INFO_FILE)  # "finished" goes first
        self.remote.delete(gone)
        for rel in gone:
            self.listing.pop(rel)
            self.synced.pop(rel, None)
        self._upload_changed([CONFIG_RECORD])
        for rel, inode in self.placeholders.items():
            local = self.root / rel
            with contextlib.suppress(FileNotFoundError):
                if local.stat().st_ino == inode:
                    local.unlink()

    def published(self) -> None:
        """Upload what publishing wrote (records changed since, the card, the report, a
        layout's lists), ``dataset_info.json`` last."""
        if self.remote is None:
            return
        rels = []
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if not path.is_file() or rel.startswith((f"{LOCK_DIR}/", MARK)):
                continue
            if TMP_NAME.match(path.name) or rel == INFO_FILE:
                continue
            if rel.startswith(f"{MANIFEST_DIR}/") and rel != CONFIG_RECORD:
                continue  # shard manifests went up with their shards
            rels.append(rel)
        self._upload_changed(rels)
        if self.lock is not None:
            self.lock.check()  # never mark a dataset finished under another run's lock
        self._upload_changed([INFO_FILE])

    def sync_record(self) -> None:
        self._upload_changed([CONFIG_RECORD])

    def _upload_changed(self, rels: list[str]) -> None:
        assert self.remote is not None
        for rel in rels:
            local = self.root / rel
            if not local.is_file():
                continue
            data = local.read_bytes()
            if self.synced.get(rel) != data:  # with its sha256: an overwrite checks it
                self.remote.upload(local, rel, hashlib.sha256(data).hexdigest())
                self.synced[rel] = data


@contextlib.contextmanager
def staged(remote: Remote | None, root: Path, lock_name: str = LOCK_FILE) -> Iterator[Staging]:
    """Hold ``remote`` (its lock object ``lock_name``) for the block with ``root`` as its
    fresh staging mirror (see the module docstring); errors name the URL, not the staging
    directory."""
    stage = Staging(remote, root)
    if remote is None:
        yield stage
        return
    limits = remote.store.limits()
    if limits:  # what this store cannot guarantee, said before anything is written
        family = remote.store.family
        print(f"depth-pipeline: {remote.url} ({family}): {'; '.join(limits)}", file=sys.stderr)
    lock = RemoteLock.acquire(remote, lock_name)
    stage.lock = lock
    if lock.took_over:
        note = f"took over the lock of {remote.url} from a dead run ({lock.took_over})"
        print(f"depth-pipeline: {note}", file=sys.stderr, flush=True)
    try:
        _reset(root)
        stage.mirror()
        yield stage
        stage.sync_record()  # the claim re-records the source the dataset now matches
    except PipelineError as exc:
        if type(exc) is PipelineError:
            raise PipelineError(str(exc).replace(str(root), remote.url)) from None
        raise
    finally:
        lock.release()
        _remove(root)


def _reset(root: Path) -> None:
    """An empty staging directory (a killed run's leftovers removed)."""
    _remove(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARK).write_text("staging of a depth-pipeline output.dir URL\n")


def _remove(root: Path) -> None:
    """Remove ``root`` only if it is a staging directory this tool made."""
    if (root / MARK).is_file():
        shutil.rmtree(root, ignore_errors=True)
