"""Making ``output.dir`` this run's: the config record, what earlier runs left there
(finished shards to keep, a dead run's temporaries to drop) and, with
``output.overwrite=true``, removing an old dataset.

Only files this tool writes are ever deleted: temporaries named ``*.tmp-HOST-PID`` in the
places it writes, files listed in its own manifests, shard names its layout generates,
and its own metadata (``dataset_info.json``, the ``README.md`` card, ``report/``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.layouts import Layout, every_layout
from pipeline.records import INFO_FILE, MANIFEST_DIR, ShardManifest
from pipeline.writers import TMP_NAME, atomic_write, is_being_written, sha256_file, tmp_path

CONFIG_RECORD = f"{MANIFEST_DIR}/config.json"
CARD = "README.md"
CARD_MARK = "made by depth-pipeline"
REPORT_DIR = "report"
COSMETIC = ("dir", "overwrite")  # output.* keys that do not shape the data


# ---- the config record: which config made this dataset --------------------------------


def data_config(cfg: Config) -> dict[str, Any]:
    """The part of the config that shapes output bytes.

    Left out: ``runtime.*``, ``report.*``, ``output.dir``/``overwrite`` and ``shard.*``
    (the slices of one dataset share its directory). Transforms keep their order
    (``augment.order``); a transform disabled with ``null`` counts as absent.
    """
    out = asdict(cfg.output)
    for cosmetic in COSMETIC:
        out.pop(cosmetic)
    augment = asdict(cfg.augment)
    augment["transforms"] = {k: v for k, v in augment["transforms"].items() if v is not None}
    augment["order"] = list(augment["transforms"])
    return {"source": asdict(cfg.source), "augment": augment, "output": out}


def config_hash(cfg: Config) -> str:
    blob = json.dumps(data_config(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict) or not d:
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out |= _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every leaf where two data configs differ."""
    before, after = _flatten(old), _flatten(new)
    return [
        (k, before.get(k, "<unset>"), after.get(k, "<unset>"))
        for k in sorted(before.keys() | after.keys())
        if before.get(k) != after.get(k)
    ]


def read_record(root: Path) -> dict[str, Any] | None:
    """The config record of the dataset in ``root``, or None if there is none."""
    record = root / CONFIG_RECORD
    if not record.exists():
        return None
    try:
        body = json.loads(record.read_text())
        assert isinstance(body, dict) and "hash" in body
    except (OSError, ValueError, AssertionError):
        raise PipelineError(
            f"{record} is unreadable; use output.overwrite=true to replace the dataset in {root}"
        ) from None
    return body


def check_record(root: Path, cfg: Config) -> None:
    """Refuse a different config against an existing dataset, naming the keys that differ."""
    old = read_record(root)
    if old is None or old.get("hash") == config_hash(cfg):
        return
    differ = config_diff(old.get("config", {}), data_config(cfg))
    shown = ", ".join(f"{k} ({_show(a)} -> {_show(b)})" for k, a, b in differ[:4]) + (
        f" and {len(differ) - 4} more" if len(differ) > 4 else ""
    )
    raise PipelineError(
        f"output.dir={root} holds a dataset made with a different config (differs in: "
        f"{shown}); use another output.dir, or output.overwrite=true to replace it"
    )


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def write_record(root: Path, cfg: Config) -> None:
    body = {"hash": config_hash(cfg), "config": data_config(cfg)}
    atomic_write(
        root / CONFIG_RECORD, json.dumps(body, indent=2, sort_keys=True, default=str).encode()
    )


# ---- claiming the directory ------------------------------------------------------------


def claim(root: Path, cfg: Config, layout: Layout, own_shards: list[str]) -> str:
    """Make ``root`` ours for this config: writable, same config (or overwrite), no dead
    run's temporaries; record the config. Returns the config hash."""
    check_writable(root)
    check_ours(root)
    chash = config_hash(cfg)
    if cfg.output.overwrite:
        try:
            old = read_record(root)
        except PipelineError:  # unreadable: replaced anyway
            old = None
        prefixes = {cfg.output.prefix}
        if old is not None:
            prefixes.add(str(old.get("config", {}).get("output", {}).get("prefix", "")))
        remove_dataset(root, chash, own_shards, prefixes - {""})
    else:
        check_record(root, cfg)
    clean_temporaries(root, layout, own_shards)
    write_record(root, cfg)
    return chash


def check_writable(root: Path) -> None:
    """Create ``root`` and prove a file can be written there, or say which dir and why."""
    probe = tmp_path(root / ".write-probe")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
        raise PipelineError(
            f"output.dir={root} is not writable ({exc.strerror}); choose another output.dir"
        ) from None


def check_ours(root: Path) -> None:
    """Refuse to write into a non-empty directory that holds no dataset of this tool."""
    if (root / CONFIG_RECORD).exists() or not root.is_dir():
        return
    foreign = [
        p.name
        for p in root.iterdir()
        if not p.name.startswith(".") and p.name != MANIFEST_DIR and not TMP_NAME.match(p.name)
    ]
    if foreign:
        raise PipelineError(
            f"output.dir={root} is not empty ({', '.join(sorted(foreign)[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}) and holds no depth-pipeline dataset; "
            f"choose a new or empty output.dir"
        )


# ---- what earlier runs left ------------------------------------------------------------


def finished(root: Path, shard: str, start: int, stop: int, chash: str) -> ShardManifest | None:
    """The manifest of a complete shard whose files still match their checksums, else None."""
    manifest = ShardManifest.read(root, shard)
    if manifest is None:
        return None
    if (manifest.config_hash, manifest.start, manifest.stop) != (chash, start, stop):
        return None
    for rel, digest in manifest.files.items():
        f = inside(root, rel)
        if f is None or not f.is_file() or sha256_file(f) != digest:
            return None
    return manifest


def drop_unrecorded(root: Path, layout: Layout, shards: Iterable[str]) -> None:
    """Remove shard files that a killed worker renamed but never recorded in a manifest, so
    nothing is left looking finished; a re-run writes them again, byte for byte."""
    for name in shards:
        if ShardManifest.read(root, name) is None:
            for rel in layout.shard_files(name):
                (root / rel).unlink(missing_ok=True)


def inside(root: Path, rel: str) -> Path | None:
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


def _tool_files(root: Path, layout: Layout) -> Iterator[Path]:
    """Files in the places this tool writes: the top of ``root`` and its own subfolders."""
    if not root.is_dir():
        return
    yield from (p for p in root.iterdir() if p.is_file())
    dirs = {d for x in every_layout(root, layout.prefix) for d in x.dirs}
    for name in (MANIFEST_DIR, REPORT_DIR, *sorted(dirs)):
        if (root / name).is_dir():
            yield from (p for p in (root / name).rglob("*") if p.is_file())


def clean_temporaries(root: Path, layout: Layout, own_shards: Iterable[str] = ()) -> list[Path]:
    """Delete temporaries a dead run left behind; return them.

    A temporary from this host is stale when its process is gone. One from another host
    (a preempted job restarted elsewhere) is only removed if it belongs to one of
    ``own_shards``: other slice jobs may be writing theirs right now.
    """
    own = {f for s in own_shards for f in layout.shard_files(s)} | {f"{s}.json" for s in own_shards}
    host, removed = socket.gethostname(), []
    for path in _tool_files(root, layout):
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
        if f"{MANIFEST_DIR}/{path.name}" == CONFIG_RECORD:
            continue
        manifest = ShardManifest.read(root, path.stem)
        files = manifest.files if manifest is not None else {}
        if manifest is not None and manifest.config_hash == chash and path.stem not in own:
            keep |= set(files)
            continue
        for rel in files:
            f = inside(root, rel)
            if f is not None:
                f.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
    layouts = [x for prefix in sorted(prefixes) for x in every_layout(root, prefix)]
    patterns = [p for p in (x.shard_pattern() for x in layouts) if p is not None]
    for path in root.iterdir():
        if (
            path.is_file()
            and path.name not in keep
            and any(p.fullmatch(path.name) for p in patterns)
        ):
            path.unlink()
    for rel in sorted({f for x in layouts for f in x.extra_files()}):
        (root / rel).unlink(missing_ok=True)
    (root / INFO_FILE).unlink(missing_ok=True)
    if card_is_ours(root):
        (root / CARD).unlink()
    shutil.rmtree(root / REPORT_DIR, ignore_errors=True)
    for name in sorted({d for x in layouts for d in x.dirs}):
        _remove_empty_dirs(root / name)


def card_is_ours(root: Path) -> bool:
    """True if ``root/README.md`` is a dataset card this tool wrote."""
    card = root / CARD
    return card.is_file() and CARD_MARK in card.read_text(errors="replace")


def _remove_empty_dirs(top: Path) -> None:
    if not top.is_dir():
        return
    for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):  # not empty: holds files of the kept shards
            os.rmdir(dirpath)
