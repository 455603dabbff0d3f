"""What a dataset in ``output.dir`` owns, and removing exactly that on overwrite.

The tool owns, and ``output.overwrite=true`` deletes, only:

- the files listed in the dataset's shard manifests (``manifests/{shard}.json`` that parse
  as manifests), when they lie in a place its layout writes (``{shard}.*`` at the top, or
  the layout's folders), and those manifests;
- shard files named by the old dataset's own format and prefix (``train-000003.tar``:
  a killed worker may have renamed one without listing it yet), and that format's
  publish-time files (``Layout.extra_files``);
- ``dataset_info.json``, the ``README.md`` card if it is the tool's (never a user's
  README), the report's own files in ``report/`` and slice records ``slices/slice-*.json``;
- then the old format's folders, if that left them empty.

The old dataset's format and prefix come from its config record, never from the new
config: a user's ``image/`` folder next to a webdataset dataset is not the tool's.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from pipeline.dataset.layouts import Layout, layout_for
from pipeline.dataset.records import INFO_FILE, MANIFEST_DIR, ShardManifest

CONFIG_RECORD = f"{MANIFEST_DIR}/config.json"
CARD = "README.md"
CARD_MARK = "made by depth-pipeline"
REPORT_DIR = "report"
SLICE_DIR = "slices"
# what the report writes at the top of report/: pictures, the page, its JSON tables
REPORT_FILE = re.compile(r"[A-Za-z0-9_.-]+\.(png|html|json)")
SLICE_FILE = re.compile(r"slice-\d{5}-of-\d{5}\.json")


def card_is_ours(root: Path) -> bool:
    """True if ``root/README.md`` is a dataset card this tool wrote."""
    card = root / CARD
    return card.is_file() and CARD_MARK in card.read_text(errors="replace")


def inside(root: Path, rel: str) -> Path | None:
    """``root / rel`` if it stays inside ``root`` (a manifest never points outside)."""
    path = Path(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return root / path


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
    root: Path, record: dict[str, Any] | None, chash: str, own_shards: set[str]
) -> list[Path]:
    """``output.overwrite=true``: delete the old dataset's files (see the module
    docstring) and this job's own shards; return what was deleted.

    Shards of the *new* config written by other slice jobs (same ``chash``, not ours) are
    kept. Without a config record there is no dataset here, so nothing is deleted.
    """
    if record is None:
        return []
    layout = old_layout(root, record)
    removed: list[Path] = []
    keep: set[str] = set()

    def rm(path: Path) -> None:
        if path.is_symlink() or path.is_file():  # a symlink: the link goes, not its target
            path.unlink()
            removed.append(path)

    manifests = root / MANIFEST_DIR
    for path in sorted(manifests.glob("*.json")) if manifests.is_dir() else []:
        manifest = ShardManifest.read(root, path.stem)
        if manifest is None or manifest.shard != path.stem:
            continue  # config.json, or a file that is not a shard manifest: not ours
        if manifest.config_hash == chash and path.stem not in own_shards:
            keep |= set(manifest.files)
            continue
        for rel in manifest.files:
            f = inside(root, rel)
            if f is not None and _listed_file_is_ours(rel, manifest.shard, layout):
                rm(f)
        rm(path)
    if layout is not None:
        pattern = layout.shard_pattern()
        if pattern is not None:
            for path in sorted(root.iterdir()):
                if path.name not in keep and pattern.fullmatch(path.name):
                    rm(path)
        for rel in layout.extra_files():
            rm(root / rel)
    rm(root / INFO_FILE)
    if card_is_ours(root):
        rm(root / CARD)
    for folder, names in ((REPORT_DIR, REPORT_FILE), (SLICE_DIR, SLICE_FILE)):
        if (root / folder).is_dir():
            for path in sorted((root / folder).iterdir()):
                if names.fullmatch(path.name):
                    rm(path)
            _remove_empty_dirs(root / folder)
    for name in layout.dirs if layout is not None else ():
        _remove_empty_dirs(root / name)
    return removed


def _remove_empty_dirs(top: Path) -> None:
    if not top.is_dir() or top.is_symlink():
        return
    for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):  # not empty: holds files of the kept shards
            os.rmdir(dirpath)
