"""Output formats. One ``Layout`` per format owns its on-disk shape: shard and member
names, the writer of a shard, the dataset card's description and loading header, which
files it owns (for resume and overwrite) and how the report reads samples back.

A new output format = one module here + an entry in ``LAYOUTS`` + a member of
``config.OutputFormat`` + ``conf/output/<name>.yaml``.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import ClassVar

import numpy as np

from pipeline.records import DatasetInfo, ShardManifest
from pipeline.writers import ShardWriter

LAYOUTS = {
    "webdataset": "pipeline.layouts.webdataset:WebdatasetLayout",
    "folder": "pipeline.layouts.folder:FolderLayout",
}


class Layout:
    """The base every output format extends; ``root`` is ``output.dir``."""

    name: ClassVar[str] = ""
    # subfolders of output.dir this format writes samples into (temporaries live there too)
    dirs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, root: Path, prefix: str) -> None:
        self.root = root
        self.prefix = prefix

    def writer(self, shard: str) -> ShardWriter:
        """A writer that publishes shard ``shard`` on ``commit`` (nothing before)."""
        raise NotImplementedError

    def shard_files(self, shard: str) -> list[str]:
        """Files named after the shard that appear before its manifest does (a tar)."""
        return []

    def shard_pattern(self) -> re.Pattern[str] | None:
        """Names of the shard files (top level of ``root``) this format writes: removed on
        overwrite even when no manifest lists them."""
        return None

    def extra_files(self) -> list[str]:
        """Files (relative to ``root``) the layout writes when the dataset is published,
        e.g. trainer file lists: owned by the tool like the card."""
        return []

    def write_extra(self, manifests: list[ShardManifest], info: DatasetInfo) -> None:
        """Write ``extra_files`` (each atomically) at publish time, before the card."""

    def describe(self) -> str:
        """The dataset card's paragraph on the layout (Markdown)."""
        raise NotImplementedError

    def card_header(self, split: str) -> str:
        """YAML front matter that lets ``datasets.load_dataset(root)`` read the data ("" if
        it cannot)."""
        return ""

    def read(
        self, manifest: ShardManifest, keys: set[str]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{key: (image, depth)}`` for these keys of one shard, decoded from disk."""
        raise NotImplementedError


def layout_for(fmt: str, root: Path, prefix: str) -> Layout:
    """The layout of ``output.format``; a one-line error naming the choices otherwise."""
    from pipeline.errors import PipelineError

    target = LAYOUTS.get(fmt)
    if target is None:
        raise PipelineError(f"output.format must be one of {sorted(LAYOUTS)} (got {fmt!r})")
    module, name = target.split(":")
    cls: type[Layout] = getattr(importlib.import_module(module), name)
    return cls(root, prefix)


def every_layout(root: Path, prefix: str) -> list[Layout]:
    """One layout of each format: overwrite and cleanup cover a dataset whatever its
    format was."""
    return [layout_for(fmt, root, prefix) for fmt in LAYOUTS]
