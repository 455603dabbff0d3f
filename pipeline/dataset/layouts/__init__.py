"""Output formats. One ``Layout`` per format owns its on-disk shape in both directions:
shard and member names, the writer of a shard, the dataset card's description and loading
header, which files it owns (for resume and overwrite) and where a written sample's
members are read back from (``members``, ``member_index``), which ``dataset.reader``
decodes for every consumer (``pipeline.read``, ``pipeline.torch``, the report, verify).

A new output format = one module here + an entry in ``LAYOUTS`` + a member of
``config.OutputFormat`` + ``conf/output/<name>.yaml``.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from pipeline.dataset.records import DatasetInfo, ShardManifest
from pipeline.dataset.writers import ShardWriter

if TYPE_CHECKING:
    from pipeline.config.schema import OutputConfig

LAYOUTS = {
    "webdataset": "pipeline.dataset.layouts.webdataset:WebdatasetLayout",
    "folder": "pipeline.dataset.layouts.folder:FolderLayout",
    "filelist": "pipeline.dataset.layouts.filelist:FilelistLayout",
    "parquet": "pipeline.dataset.layouts.parquet:ParquetLayout",
}
# One written sample's stored members by extension (``png``, ``depth.tiff``, ``json``...).
Members = dict[str, bytes]


class Layout:
    """The base every output format extends; ``root`` is ``output.dir``."""

    name: ClassVar[str] = ""
    # subfolders of output.dir this format writes samples into (temporaries live there too)
    dirs: ClassVar[tuple[str, ...]] = ()
    # every written sample must have a focal length (a sample without one is a sample error)
    needs_focal: ClassVar[bool] = False

    def __init__(self, root: Path, prefix: str) -> None:
        self.root = root
        self.prefix = prefix

    def writer(self, shard: str, count: int = 1) -> ShardWriter:
        """A writer that publishes shard ``shard`` (of ``count`` in the whole plan) on
        ``commit`` (nothing before)."""
        raise NotImplementedError

    def shard_files(self, shard: str) -> list[str]:
        """Files named after the shard that appear before its manifest does (a tar)."""
        return []

    def shard_pattern(self) -> re.Pattern[str] | None:
        """Names of the shard files (top level of ``root``) this format writes: named on
        overwrite when no manifest lists them (kept: the records do not vouch for them)."""
        return None

    def extra_files(self) -> list[str]:
        """Files (relative to ``root``) the layout writes when the dataset is published,
        e.g. trainer file lists: owned by the tool like the card."""
        return []

    def write_extra(self, manifests: list[ShardManifest], info: DatasetInfo) -> None:
        """Write ``extra_files`` (each atomically) at publish time, before the card."""

    def publish_reads(self, manifests: list[ShardManifest]) -> list[str]:
        """Written files ``write_extra`` reads back (a URL output's are fetched for it)."""
        return []

    def check(self, output: OutputConfig) -> None:
        """Refuse, before the run, a config this format cannot write (one line)."""

    def describe(self, info: DatasetInfo) -> str:
        """The dataset card's paragraph on the layout (Markdown)."""
        raise NotImplementedError

    def card_header(self, split: str, info: DatasetInfo) -> str:
        """YAML front matter that lets ``datasets.load_dataset(root)`` read the data ("" if
        it cannot). Its config carries the content fingerprint: ``datasets`` caches a local
        dataset by directory name and patterns, so two same-named or rewritten datasets
        would otherwise share (stale) cached rows."""
        return ""

    def members(
        self, base: Path, manifest: ShardManifest, keys: set[str]
    ) -> Iterator[tuple[str, Members]]:
        """The stored members of these keys of one shard under ``base``, in shard order,
        each shard file read front to back once."""
        raise NotImplementedError

    def member_index(self, base: Path, manifest: ShardManifest) -> Callable[[str], Members]:
        """Random access to one shard's samples by key (locations are looked up once)."""
        raise NotImplementedError


def card_config(split: str, info: DatasetInfo, paths: list[str], root: Path) -> str:
    """The ``configs:`` entry of a card header: one split, its data files, and as the
    config's description (part of the ``datasets`` cache identity) the content fingerprint
    and the absolute location (a cached image-folder row refers to its files by path)."""
    listed = "\n".join(f'    - "{p}"' for p in paths)
    where = json.dumps(str(root.resolve()))[1:-1]
    return (
        f"configs:\n- config_name: default\n"
        f'  description: "depth-pipeline dataset, content {info.fingerprint}, in {where}"\n'
        f"  data_files:\n  - split: {split}\n    path:\n{listed}\n"
    )


def decode_depth(ext: str, data: bytes, scale: float) -> np.ndarray:
    """A written depth member as float32 metres, through its encoding (``ext`` names it)."""
    from pipeline.encode.depth import for_member

    return for_member(ext, scale).decode(data)


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
