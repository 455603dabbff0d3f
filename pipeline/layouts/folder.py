"""Plain folders: ``image/{key}.png``, ``depth/{key}.tiff``, ``meta/{key}.json``. Each
file is written atomically; the shard manifest (written last) marks the shard complete."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from pipeline import codecs
from pipeline.layouts import Layout
from pipeline.records import ShardManifest
from pipeline.writers import atomic_write

SUBDIRS = {"png": "image", "depth.tiff": "depth", "json": "meta", "mask.png": "mask"}


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


class FolderLayout(Layout):
    name = "folder"
    dirs = tuple(SUBDIRS.values())

    def writer(self, shard: str) -> FolderShardWriter:
        return FolderShardWriter(self.root, shard)

    def describe(self) -> str:
        return (
            "Folders `image/{key}.png` (RGB uint8), `depth/{key}.tiff` (float32 metres, "
            "0 = invalid) and `meta/{key}.json`."
        )

    def read(
        self, manifest: ShardManifest, keys: set[str]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for key in sorted({s.key for s in manifest.samples} & keys):
            image = (self.root / member_path(key, "png")).read_bytes()
            depth = (self.root / member_path(key, "depth.tiff")).read_bytes()
            out[key] = (codecs.decode("png", image), codecs.decode("tiff", depth))
        return out
