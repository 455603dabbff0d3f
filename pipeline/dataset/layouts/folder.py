"""Plain folders: ``image/{key}.png`` (or ``.jpg``), ``depth/{key}.tiff`` (or 16-bit
``.png``, ``.npy``), ``meta/{key}.json``. Each file is written atomically; the shard manifest
(written last) marks the shard complete. At publish, ``metadata.jsonl`` joins the records
with their file names (``image_file_name``, ``depth_file_name``), which is what the
``datasets`` image-folder loader reads: the card's ``configs:`` header points at it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipeline.dataset.layouts import Layout, Members, card_config
from pipeline.dataset.records import DatasetInfo, ShardManifest
from pipeline.dataset.writers import atomic_write
from pipeline.encode import codecs
from pipeline.encode.depth import from_info, member_exts

SUBDIRS = {
    "png": "image",
    "jpg": "image",
    **{ext: "depth" for ext in member_exts()},  # every depth encoding's member
    "json": "meta",
    "mask.png": "mask",
}
METADATA = "metadata.jsonl"
# One written sample: its files (relative to output.dir) by subfolder, JSON record, [H, W].
Row = tuple[dict[str, str], dict[str, Any], list[int]]


def member_path(key: str, ext: str) -> str:
    """Where the member ``ext`` of sample ``key`` goes, relative to output.dir."""
    sub = SUBDIRS.get(ext, ext.replace(".", "_"))
    return f"{sub}/{key}.{ext.rpartition('.')[2]}"


class FolderShardWriter:
    """Writes each member as its own file, atomically, one at a time."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.files: dict[str, str] = {}

    def add(self, key: str, fields: dict[str, bytes]) -> None:
        for ext, data in fields.items():
            rel = member_path(key, ext)
            atomic_write(self.root / rel, data)
            self.files[rel] = hashlib.sha256(data).hexdigest()

    def commit(self) -> dict[str, str]:
        return dict(self.files)

    def abort(self) -> None:
        for rel in self.files:
            (self.root / rel).unlink(missing_ok=True)


def files_by_key(manifest: ShardManifest) -> dict[str, dict[str, str]]:
    """``{key: {"image": rel, "depth": rel, "meta": rel}}`` from a shard's file list."""
    out: dict[str, dict[str, str]] = {}
    for rel in manifest.files:
        sub, _, rest = rel.partition("/")
        out.setdefault(rest.rpartition(".")[0], {})[sub] = rel
    return out


class FolderLayout(Layout):
    name = "folder"
    dirs = tuple(dict.fromkeys(SUBDIRS.values()))

    def writer(self, shard: str, count: int = 1) -> FolderShardWriter:
        return FolderShardWriter(self.root, shard)

    def extra_files(self) -> list[str]:
        return [METADATA]

    def publish_reads(self, manifests: list[ShardManifest]) -> list[str]:
        return [rel for m in manifests for rel in m.files if rel.startswith("meta/")]

    def write_extra(self, manifests: list[ShardManifest], info: DatasetInfo) -> None:
        rows = list(self.rows(manifests))
        # datasets reads a `*_file_name` column as an image; other depth files (.npy) are
        # listed by path (`depth_file`) for numpy.load
        depth_column = (
            "depth_file_name" if from_info(info.encodings["depth"]).image else "depth_file"
        )
        names = {"depth": depth_column}
        lines = [
            codecs.encode_json(
                {names.get(sub, f"{sub}_file_name"): rel for sub, rel in f.items() if sub != "meta"}
                | record
            )
            for f, record, _ in rows
        ]
        atomic_write(self.root / METADATA, b"".join(line + b"\n" for line in lines))
        self.write_lists(rows, info)

    def write_lists(self, rows: list[Row], info: DatasetInfo) -> None:
        """More publish-time files from the same rows (the trainer lists of ``filelist``)."""

    def rows(self, manifests: list[ShardManifest]) -> Iterator[Row]:
        """Every written sample's files and JSON record, in dataset order."""
        for m in manifests:
            files = files_by_key(m)
            for s in m.samples:
                record = json.loads((self.root / files[s.key]["meta"]).read_bytes())
                yield files[s.key], record, s.shape

    def describe(self, info: DatasetInfo) -> str:
        image, depth = info.encodings["image"]["ext"], from_info(info.encodings["depth"])
        return (
            f"Folders `image/{{key}}.{image}` (RGB uint8), `depth/{{key}}."
            f"{depth.ext.rpartition('.')[2]}` ({depth.words()}) and "
            f"`meta/{{key}}.json` (source, applied augmentation parameters, camera, "
            f"depth_scale); `{METADATA}` lists them all for `datasets`"
            f"{'' if depth.image else ' (the depth as its path `depth_file`, for numpy.load)'}."
        )

    def card_header(self, split: str, info: DatasetInfo) -> str:
        return f"---\n{card_config(split, info, [METADATA, 'image/**'], self.root)}---\n"

    def members(
        self, base: Path, manifest: ShardManifest, keys: set[str]
    ) -> Iterator[tuple[str, Members]]:
        read = self.member_index(base, manifest)
        for s in manifest.samples:
            if s.key in keys:
                yield s.key, read(s.key)

    def member_index(self, base: Path, manifest: ShardManifest) -> Callable[[str], Members]:
        files = files_by_key(manifest)

        def read(key: str) -> Members:
            return {member_ext(rel): (base / rel).read_bytes() for rel in files[key].values()}

        return read


def member_ext(rel: str) -> str:
    """The member extension of a written file (``depth/k.tiff`` -> ``depth.tiff``): the
    inverse of ``member_path``."""
    sub, _, name = rel.partition("/")
    last = name.rpartition(".")[2]
    for ext, folder in SUBDIRS.items():
        if folder == sub and ext.rpartition(".")[2] == last:
            return ext
    return f"{sub}.{last}"
