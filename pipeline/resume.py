"""What earlier runs left in ``output.dir``: finished shards to keep, a dead run's
temporaries to drop, and (``output.overwrite=true``) an old dataset to remove.

Only files this tool writes are ever deleted: temporaries named ``*.tmp-HOST-PID`` in the
places it writes, files listed in its own manifests, shard names it generates, and its
own metadata (``dataset_info.json``, the ``README.md`` card, ``report/``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipeline.writers import TMP_NAME, is_being_written, sha256_file

MANIFEST_DIR = "manifests"
LOCK_NAME = "config.json"
CARD_MARK = "made by depth-pipeline"
TOOL_DIRS = (MANIFEST_DIR, "report", "image", "depth", "meta")


def read_manifest(root: Path, shard: str) -> dict[str, Any] | None:
    try:
        manifest = json.loads((root / MANIFEST_DIR / f"{shard}.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def finished(root: Path, shard: str, start: int, stop: int, chash: str) -> dict[str, Any] | None:
    """The manifest of a complete shard whose files still match their checksums, else None."""
    manifest = read_manifest(root, shard)
    if manifest is None:
        return None
    if (manifest.get("config_hash"), manifest.get("start"), manifest.get("stop")) != (
        chash,
        start,
        stop,
    ):
        return None
    for rel, digest in manifest.get("files", {}).items():
        f = _inside(root, rel)
        if f is None or not f.is_file() or sha256_file(f) != digest:
            return None
    return manifest


def drop_unrecorded(root: Path, shards: Iterable[str]) -> None:
    """Remove shard tars that a killed worker renamed but never recorded in a manifest, so
    nothing is left looking finished; a re-run writes them again, byte for byte."""
    for name in shards:
        if read_manifest(root, name) is None:
            (root / f"{name}.tar").unlink(missing_ok=True)


def _inside(root: Path, rel: str) -> Path | None:
    """``root / rel`` if it stays inside ``root`` (a manifest never points outside)."""
    path = Path(rel)
    if path.is_absolute() or ".." in path.parts:
        return None
    return root / path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tool_files(root: Path) -> Iterator[Path]:
    """Files in the places this tool writes: the top of ``root`` and its own subfolders."""
    if not root.is_dir():
        return
    yield from (p for p in root.iterdir() if p.is_file())
    for name in TOOL_DIRS:
        if (root / name).is_dir():
            yield from (p for p in (root / name).rglob("*") if p.is_file())


def clean_temporaries(root: Path, own_shards: Iterable[str] = ()) -> list[Path]:
    """Delete temporaries a dead run left behind; return them.

    A temporary from this host is stale when its process is gone. One from another host
    (a preempted job restarted elsewhere) is only removed if it belongs to one of
    ``own_shards``: other slice jobs may be writing theirs right now.
    """
    own = {f"{s}.tar" for s in own_shards} | {f"{s}.json" for s in own_shards}
    host, removed = socket.gethostname(), []
    for path in _tool_files(root):
        m = TMP_NAME.match(path.name)
        if m is None:
            continue
        if _stale(m["host"] == host, int(m["pid"]), m["final"] in own, path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _stale(this_host: bool, pid: int, ours: bool, path: Path) -> bool:
    if this_host:  # a pid can be reused (or linger as a zombie): the writer lock decides
        return pid == os.getpid() or not _alive(pid) or not is_being_written(path)
    return ours


def remove_dataset(root: Path, chash: str, own_shards: Iterable[str], prefixes: set[str]) -> None:
    """``output.overwrite=true``: delete the old dataset's files, and this job's own shards.

    Shards of the *new* config written by other slice jobs (same ``chash``, not ours)
    are kept, so every job of an array can be started with overwrite=true.
    """
    own = set(own_shards)
    keep: set[str] = set()
    manifests = root / MANIFEST_DIR
    for path in sorted(manifests.glob("*.json")) if manifests.is_dir() else []:
        if path.name == LOCK_NAME:
            continue
        manifest = read_manifest(root, path.stem) or {}
        files = manifest.get("files", {})
        if manifest.get("config_hash") == chash and path.stem not in own:
            keep |= set(files)
            continue
        for rel in files:
            f = _inside(root, rel)
            if f is not None:
                f.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
    names = re.compile("|".join(rf"{re.escape(p)}-\d{{6}}\.tar" for p in sorted(prefixes)))
    for path in root.iterdir():
        if path.is_file() and names.fullmatch(path.name) and path.name not in keep:
            path.unlink()
    (root / "dataset_info.json").unlink(missing_ok=True)
    card = root / "README.md"
    if card.is_file() and CARD_MARK in card.read_text(errors="replace"):
        card.unlink()
    shutil.rmtree(root / "report", ignore_errors=True)
    for name in ("image", "depth", "meta"):
        _remove_empty_dirs(root / name)


def _remove_empty_dirs(top: Path) -> None:
    if not top.is_dir():
        return
    for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):  # not empty: holds files of the kept shards
            os.rmdir(dirpath)
