"""Making ``output.dir`` this run's: the lock, the config record, what earlier runs left
there (finished shards to keep, a dead run's temporaries to drop), the source check on
resume and, with ``output.overwrite=true``, removing the old dataset (``owned.py``).

A directory is a dataset only if its config record (``manifests/config.json``) is valid
and was written by this tool; a non-empty directory without one is refused, and nothing
in a directory with a foreign or damaged record is ever deleted. Only files this tool
writes are deleted: temporaries named ``*.tmp-HOST-PID`` in the places it writes, the
shard files of its own plan that no manifest lists, and what ``owned.remove_dataset`` deletes
(only what the records list, as it was written).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config.schema import Config
from pipeline.config.urls import is_url
from pipeline.dataset.config_record import check_record, read_record, shown, write_record
from pipeline.dataset.config_record import config_diff as config_diff
from pipeline.dataset.config_record import config_hash as config_hash
from pipeline.dataset.config_record import data_config as data_config
from pipeline.dataset.layouts import Layout
from pipeline.dataset.lock import RunLock, alive, setting_up
from pipeline.dataset.owned import CARD as CARD
from pipeline.dataset.owned import CARD_MARK as CARD_MARK
from pipeline.dataset.owned import (
    CONFIG_RECORD,
    REPORT_DIR,
    SLICE_DIR,
    check_no_links,
    inside,
    old_layout,
    remove_dataset,
)
from pipeline.dataset.owned import card_is_ours as card_is_ours
from pipeline.dataset.records import MANIFEST_DIR, ShardManifest
from pipeline.dataset.shards import Placement, Plan, ShardTask
from pipeline.dataset.writers import TMP_NAME, is_being_written, sha256_file, tmp_path, write_error
from pipeline.errors import PipelineError
from pipeline.sources import Source

# ``present(path, sha256)``: a shard file is there with this content
Present = Callable[[Path, str], bool]

# ---- claiming the directory ------------------------------------------------------------


@dataclass
class Claim:
    """What a run may rely on once ``output.dir`` is its own: the config hash and the
    finished shards to keep."""

    config_hash: str
    done: dict[str, ShardManifest]


@contextlib.contextmanager
def claimed(
    root: Path,
    cfg: Config,
    layout: Layout,
    shards: Plan,
    source: Source,
    present: Present | None = None,
) -> Iterator[Claim]:
    """Hold ``root`` for this run: refuse a foreign directory, a conflicting run (the
    lock), another config, a changed source; with overwrite, remove the old dataset;
    drop a dead run's temporaries; record the config. The lock lasts for the block.

    Only the decisions about the directory are taken one run at a time (``setting_up``);
    checking the finished shards (sha256 of every file) runs beside the other slices.
    ``present(path, sha256)`` tells whether a shard file is there with that content
    (default: the local file's sha256; a URL output asks the store)."""
    check_writable(root)
    check_ours(root)
    identity = source.identity()
    lock = RunLock.acquire(root, exclusive=cfg.output.overwrite)  # or refuse at once
    try:
        with setting_up(root):
            old = read_record(root)
            before = old_layout(root, old) if old is not None else None
            dirs = (MANIFEST_DIR, REPORT_DIR, SLICE_DIR, *layout.dirs)
            check_no_links(root, (*dirs, *(before.dirs if before is not None else ())))
            chash = config_hash(cfg)
            if cfg.output.overwrite:
                _, kept = remove_dataset(root, old, chash, shards, present)
                if kept:
                    where = cfg.output.dir if is_url(cfg.output.dir) else str(root)
                    _name_kept(root, kept, where, _replaced_by(layout, shards))
            else:
                check_record(root, cfg, old)
            clean_temporaries(root, layout, shards)
            if old is None or cfg.output.overwrite:
                write_record(root, cfg, identity)
        old_record = None if cfg.output.overwrite else old
        done = _resumable(root, cfg, chash, shards, source, old_record, present)
    except BaseException:
        lock.release()
        raise
    try:
        yield Claim(chash, done)
        if old is not None and not cfg.output.overwrite and old.get("source") != identity:
            write_record(root, cfg, identity)  # the source the dataset now matches
    finally:
        lock.release()


def _resumable(
    root: Path,
    cfg: Config,
    chash: str,
    shards: Plan,
    source: Source,
    old: dict[str, Any] | None,
    present: Present | None = None,
) -> dict[str, ShardManifest]:
    """The finished shards to keep; refuse if the source they were read from changed.

    Found from the manifests on disk (a fresh directory costs nothing, whatever the plan)."""
    done: dict[str, ShardManifest] = {}
    changed: list[ShardTask] = []
    placement = Placement.of(cfg)
    folder = root / MANIFEST_DIR
    found = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    for s in (t for t in map(shards.named, found) if t is not None):
        m = finished(root, s.name, s.start, s.stop, chash, present)
        if m is None:
            continue
        now = placement.fingerprint(source, s)
        if m.source_fingerprint is not None and m.source_fingerprint != now:
            changed.append(s)
        done[s.name] = m
    if changed:
        first = changed[0]
        before = (old or {}).get("source") or {}
        differ = config_diff(before, source.identity()) if before else []
        what = (
            f"source differs in: {shown(differ)}"
            if differ
            else "the files it read changed size or modification time"
        )
        raise PipelineError(
            f"the source changed since output.dir={root} was written: {len(changed)} finished "
            f"shard(s) were made from other data (first {first.name}, {placement.inputs(first)}; "
            f"{what}); use output.overwrite=true to rebuild "
            f"the dataset from the current source, or a new output.dir"
        )
    return done


def _name_kept(
    root: Path, kept: list[Path], shown_as: str, replaced: Callable[[str], bool]
) -> None:
    """One line naming the files an overwrite left because no record vouches for them;
    those this run's own shards will replace (same name) are named as replaced, not kept."""
    import sys

    names = [p.relative_to(root).as_posix() for p in kept]
    gone = [n for n in names if replaced(n)]
    left = [n for n in names if not replaced(n)]
    parts = []
    if left:
        parts.append(
            f"kept {len(left)} file(s) in {shown_as} that the old dataset's records do not "
            f"list as written (changed or added since): {_few(left)}"
        )
    if gone:
        parts.append(
            f"{len(gone)} file(s) changed since written are replaced by this run's shards of "
            f"the same name: {_few(gone)}"
        )
    print(f"depth-pipeline: output.overwrite {'; '.join(parts)}", file=sys.stderr, flush=True)


def _replaced_by(layout: Layout, shards: Container[str]) -> Callable[[str], bool]:
    """Whether a file (relative path) is one of this run's own shard files."""

    def replaced(rel: str) -> bool:
        shard = rel.partition(".")[0]
        return "/" not in rel and shard in shards and rel in layout.shard_files(shard)

    return replaced


def _few(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")


def check_writable(root: Path) -> None:
    """Create ``root`` and prove a file can be written there, or say which dir and why."""
    probe = tmp_path(root / ".write-probe")
    try:
        root.mkdir(parents=True, exist_ok=True)
        try:
            with open(probe, "wb", buffering=0) as fh:  # a byte, synced: a full disk shows
                fh.write(b"\0")  # here, at once
                os.fsync(fh.fileno())
        finally:  # whatever stops it, a Ctrl-C in the fsync included: no probe left behind
            with contextlib.suppress(OSError):
                probe.unlink(missing_ok=True)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise write_error(exc, "a first file", root) from None
        raise PipelineError(
            f"output.dir={root} is not writable ({exc.strerror}); choose another output.dir"
        ) from None


def check_ours(root: Path) -> None:
    """Refuse to write into a non-empty directory that holds no dataset of this tool.

    Hidden entries (the lock) and a ``manifests/`` holding only a killed run's temporary
    record do not count; a ``manifests/`` with anything else in it does."""
    if (root / CONFIG_RECORD).exists() or not root.is_dir():
        return
    foreign = [
        p.name
        for p in root.iterdir()
        if not p.name.startswith(".")
        and not TMP_NAME.match(p.name)
        and not (p.name == MANIFEST_DIR and p.is_dir() and _only_temporaries(p))
    ]
    if foreign:
        raise PipelineError(
            f"output.dir={root} is not empty ({', '.join(sorted(foreign)[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}) and holds no depth-pipeline dataset; "
            f"choose a new or empty output.dir"
        )


def _only_temporaries(folder: Path) -> bool:
    return all(TMP_NAME.match(p.name) and p.is_file() for p in folder.iterdir())


# ---- what earlier runs left ------------------------------------------------------------


def finished(
    root: Path, shard: str, start: int, stop: int, chash: str, present: Present | None = None
) -> ShardManifest | None:
    """The manifest of a complete shard whose files still match their checksums, else None."""
    manifest = ShardManifest.read(root, shard)
    if manifest is None:
        return None
    if (manifest.config_hash, manifest.start, manifest.stop) != (chash, start, stop):
        return None
    for rel, digest in manifest.files.items():
        f = inside(root, rel)
        if f is None or not (present or _present)(f, digest):
            return None
    return manifest


def _present(path: Path, digest: str) -> bool:
    return path.is_file() and sha256_file(path) == digest


def drop_unrecorded(root: Path, layout: Layout, own: Container[str]) -> None:
    """Remove shard files of ``own`` shards that a killed worker renamed but never recorded
    in a manifest, so nothing is left looking finished; a re-run writes them again, byte
    for byte. Looks at the files there are, not at every planned name."""
    pattern = layout.shard_pattern()
    if pattern is None or not root.is_dir():
        return
    for path in sorted(root.iterdir()):
        shard = path.name.partition(".")[0]
        if (
            pattern.fullmatch(path.name)
            and shard in own
            and path.name in layout.shard_files(shard)
            and ShardManifest.read(root, shard) is None
        ):
            path.unlink(missing_ok=True)


def _tool_files(root: Path, layout: Layout) -> Iterator[Path]:
    """Files in the places this tool writes: the top of ``root`` and its own subfolders."""
    if not root.is_dir():
        return
    yield from (p for p in root.iterdir() if p.is_file())
    for name in (MANIFEST_DIR, REPORT_DIR, SLICE_DIR, *layout.dirs):
        if (root / name).is_dir():
            yield from (p for p in (root / name).rglob("*") if p.is_file())


def clean_temporaries(root: Path, layout: Layout, own_shards: Container[str] = ()) -> list[Path]:
    """Delete temporaries a dead run left behind; return them.

    A temporary from this host is stale when its process is gone. One from another host
    (a preempted job restarted elsewhere) is only removed if it belongs to one of
    ``own_shards``: other slice jobs may be writing theirs right now.
    """

    def own(final: str) -> bool:
        shard = final.partition(".")[0]
        return shard in own_shards and final in (*layout.shard_files(shard), f"{shard}.json")

    host, removed = socket.gethostname(), []
    for path in _tool_files(root, layout):
        m = TMP_NAME.match(path.name)
        if m is None:
            continue
        if _stale(m["host"] == host, int(m["pid"]), own(m["final"]), path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _stale(this_host: bool, pid: int, ours: bool, path: Path) -> bool:
    if this_host:  # a pid can be reused (or linger as a zombie): the writer lock decides
        return pid == os.getpid() or not alive(pid) or not is_being_written(path)
    return ours
