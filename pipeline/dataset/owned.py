"""What a dataset in ``output.dir`` owns, and removing exactly that on overwrite.

``output.overwrite=true`` deletes a file only when the dataset's own records name it and
its sha256 still matches (a file a user changed or put there is kept and named):

- ``dataset_info.json`` first (the finished marker: an interrupted overwrite never leaves
  a dataset that looks finished), then the files ``.depth-pipeline-published.json`` lists
  (the layout's publish-time files, the report's files), the ``README.md`` card if its
  own checksum line still matches (never a user's README, nor a card a user edited);
- the files listed in the dataset's shard manifests (``manifests/{shard}.json`` that parse
  as manifests), when they lie in a place its layout writes (``{shard}.*`` at the top, or
  the layout's folders), then those manifests; slice records ``slices/slice-*.json``;
- then the old format's folders, if that left them empty.

Shard files named by the old dataset's format and prefix that no manifest lists (a killed
worker's) are kept and named: a run replaces those of its own plan (``claim``).
The old dataset's format and prefix come from its config record, never from the new
config: a user's ``image/`` folder next to a webdataset dataset is not the tool's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Container, Iterable
from pathlib import Path
from typing import Any

from pipeline.dataset.layouts import Layout, layout_for
from pipeline.dataset.records import INFO_FILE, MANIFEST_DIR, ShardManifest
from pipeline.dataset.writers import atomic_write, sha256_file

CONFIG_RECORD = f"{MANIFEST_DIR}/config.json"
CARD = "README.md"
CARD_MARK = "made by depth-pipeline"
# hidden: not a data file to loaders (datasets, webdataset globs), like the lock
PUBLISHED = ".depth-pipeline-published.json"
# the card's last line: the sha256 of the text above it (an edited card is not ours)
CARD_SUM = re.compile(r"<!-- depth-pipeline card sha256 ([0-9a-f]{64}) -->\n?\Z")
REPORT_DIR = "report"
SLICE_DIR = "slices"
SLICE_FILE = re.compile(r"(slice|failed)-\d{5}-of-\d{5}\.json")  # a slice's record, or its error


def card_is_ours(root: Path) -> bool:
    """True if ``root/README.md`` is a dataset card this tool wrote, unchanged since."""
    card = root / CARD
    if card.is_symlink() or not card.is_file():
        return False
    data = card.read_bytes()
    body, _, last = data.rstrip(b"\n").rpartition(b"\n")
    found = CARD_SUM.match(last.decode("ascii", "replace") + "\n")
    return bool(found) and hashlib.sha256(body + b"\n").hexdigest() == found.group(1)


def signed_card(text: str) -> bytes:
    """The card's bytes: ``text`` and a last line holding its sha256 (``card_is_ours``)."""
    body = text.rstrip("\n").encode() + b"\n"
    digest = hashlib.sha256(body).hexdigest()
    return body + f"<!-- depth-pipeline card sha256 {digest} -->\n".encode()


def published(root: Path) -> dict[str, str]:
    """The files publishing wrote, as {relative path: sha256} ({} if none recorded)."""
    try:
        files = json.loads((root / PUBLISHED).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items()}


def record_published(root: Path, files: Iterable[Path], replace_under: str | None = None) -> None:
    """Record the sha256 of ``files`` (written by publishing) in ``.depth-pipeline-published.json``;
    ``replace_under``: keep the other entries, replacing those under that folder (a rebuilt
    report), else start afresh."""
    kept = {}
    if replace_under is not None:
        kept = {k: v for k, v in published(root).items() if not k.startswith(f"{replace_under}/")}
    for path in files:
        if path.is_file() and not path.is_symlink():
            kept[path.relative_to(root).as_posix()] = sha256_file(path)
    body = {"tool": "depth-pipeline", "files": dict(sorted(kept.items()))}
    atomic_write(root / PUBLISHED, (json.dumps(body, indent=2) + "\n").encode())


def inside(root: Path, rel: str) -> Path | None:
    """``root / rel`` if it stays inside ``root`` (a manifest never points outside)."""
    path = Path(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return root / path


def really_inside(root: Path, path: Path) -> bool:
    """True if the folder holding ``path`` resolves (every component, links followed)
    inside ``root`` resolved: a file reached through a linked sub-folder is not."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path.parent)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def check_no_links(root: Path, names: Iterable[str]) -> None:
    """Refuse (one line, before anything is deleted or written) a sub-folder the tool
    writes (``manifests/``, ``report/``, the layout's folders), or any folder below one,
    that is a link or leads out of ``root``: deleting or writing through it would touch
    files elsewhere (outside ``output.dir``, or another folder's files)."""
    from pipeline.errors import PipelineError

    for name in sorted(set(names)):
        linked = _linked_folder(root, root / name)
        if linked is not None:
            rel = linked.relative_to(root).as_posix()
            target = os.path.realpath(linked)
            where = "inside" if really_inside(root, Path(target) / "x") else "outside"
            raise PipelineError(
                f"output.dir={root}: {rel}/ is a link to {target}, {where} output.dir; "
                f"nothing was deleted or written: replace the link with a real folder "
                f"(move the files back) or choose another output.dir"
            )


def _linked_folder(root: Path, top: Path) -> Path | None:
    """The first folder at or below ``top`` that is a link (or resolves outside ``root``),
    without following links; None if there is none (or no ``top``)."""
    if top.is_symlink() or (top.exists() and not really_inside(root, top / "x")):
        return top
    if not top.is_dir():
        return None
    for dirpath, dirnames, _ in os.walk(top):  # links to folders are listed, not entered
        for name in sorted(dirnames):
            if os.path.islink(os.path.join(dirpath, name)):
                return Path(dirpath) / name
    return None


def old_layout(root: Path, record: dict[str, Any]) -> Layout | None:
    """The layout (format and prefix) the dataset recorded in ``record`` was written with."""
    from pipeline.errors import PipelineError

    output = record.get("config", {}).get("output", {})
    try:
        return layout_for(str(output.get("format")), root, str(output.get("prefix")))
    except PipelineError:  # a format this version does not know: remove only listed files
        return None


def _listed_file_is_ours(rel: str, shard: str, layout: Layout | None) -> bool:
    """A file a manifest lists is removed only where the layout writes: ``{shard}.*`` at
    the top of ``output.dir`` or inside the layout's folders."""
    parts = Path(rel).parts
    if len(parts) == 1:
        return parts[0].startswith(f"{shard}.")
    return layout is not None and parts[0] in layout.dirs


def remove_dataset(
    root: Path,
    record: dict[str, Any] | None,
    chash: str,
    own_shards: Container[str],
    present: Callable[[Path, str], bool] | None = None,
) -> tuple[list[Path], list[Path]]:
    """``output.overwrite=true``: delete the old dataset's files (see the module
    docstring) and this job's own shards; return (deleted, kept because a user's).
    ``same(path, sha256)``: the file is there with that content (default: its local
    sha256; a URL output's staging mirror asks the store).

    Shards of the *new* config written by other slice jobs (same ``chash``, not ours) are
    kept. Without a config record there is no dataset here, so nothing is deleted.

    Longer than 60 lines: the order of deletion is the guarantee (the finished marker
    first, then each kind of owned file, checked against its record), read top to bottom.
    """
    if record is None:
        return [], []
    layout = old_layout(root, record)
    removed: list[Path] = []
    kept: list[Path] = []
    listed: set[str] = set()

    def rm(path: Path) -> None:
        if not really_inside(root, path):
            kept.append(path)
            return
        if path.is_symlink() or path.is_file():  # a symlink: the link goes, not its target
            path.unlink()
            removed.append(path)

    def rm_if_same(path: Path | None, digest: str) -> None:
        """Delete a recorded file only as it was written; keep (and name) anything else."""
        if path is None or not (path.is_symlink() or path.exists()):
            return
        same = present(path, digest) if present else _same(path, digest)
        if really_inside(root, path) and not path.is_symlink() and same:
            rm(path)
        else:
            kept.append(path)

    rm(root / INFO_FILE)  # first: from here on the directory is not a finished dataset
    recorded = published(root)
    for rel, digest in recorded.items():
        rm_if_same(inside(root, rel), digest)
    rm(root / PUBLISHED)
    if (root / REPORT_DIR).is_dir():  # the report's folder: what else is there is a user's
        kept += [p for p in sorted((root / REPORT_DIR).rglob("*")) if p.is_file() and p not in kept]
    if card_is_ours(root):
        rm(root / CARD)
    elif (root / CARD).is_file() and CARD_MARK in (root / CARD).read_text(errors="replace"):
        kept.append(root / CARD)  # our card, edited since: the user's now
    manifests = root / MANIFEST_DIR
    for path in sorted(manifests.glob("*.json")) if manifests.is_dir() else []:
        manifest = ShardManifest.read(root, path.stem)
        if manifest is None or manifest.shard != path.stem:
            continue  # config.json, or a file that is not a shard manifest: not ours
        listed |= set(manifest.files)
        if manifest.config_hash == chash and path.stem not in own_shards:
            continue
        for rel, digest in manifest.files.items():
            if _listed_file_is_ours(rel, manifest.shard, layout):
                rm_if_same(inside(root, rel), digest)
        rm(path)
    if layout is not None:
        pattern = layout.shard_pattern()
        if pattern is not None:
            kept += [
                p
                for p in sorted(root.iterdir())
                if p.name not in listed and pattern.fullmatch(p.name) and p not in kept
            ]
    if (root / SLICE_DIR).is_dir():
        for path in sorted((root / SLICE_DIR).iterdir()):
            if SLICE_FILE.fullmatch(path.name):
                rm(path)
    for name in (REPORT_DIR, SLICE_DIR, *(layout.dirs if layout is not None else ())):
        _remove_empty_dirs(root / name)
    return removed, kept


def _same(path: Path, digest: str) -> bool:
    return path.is_file() and sha256_file(path) == digest


def _remove_empty_dirs(top: Path) -> None:
    if not top.is_dir() or top.is_symlink():
        return
    for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):  # not empty: holds files of the kept shards
            os.rmdir(dirpath)
