"""Webdataset tar shards ``{prefix}-NNNNNN.tar``: members ``{key}.png`` (or ``.jpg``),
``{key}.depth.tiff`` (or ``.depth.png``, ``.depth.npy``: ``encode.depth``) and
``{key}.json`` with fixed headers (mtime 0, uid 0), so the bytes depend only on the
content. A shard appears under its final name only when complete."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.dataset.layouts import Layout, Members, card_config
from pipeline.dataset.records import DatasetInfo, ShardManifest
from pipeline.dataset.writers import fsync_dir, open_temporary, tmp_path
from pipeline.encode import record as metadata
from pipeline.encode.depth import from_info

# tarfile copies members in 16 KiB chunks by default (~6 ms per 1.4 MB sample); one chunk
# per member makes adding a sample a single write.
COPY_BUFSIZE = 16 << 20


class TarShardWriter:
    """Streams members into ``{name}.tar.tmp-HOST-PID`` and renames it on commit."""

    def __init__(self, root: Path, name: str) -> None:
        self.path = root / f"{name}.tar"
        self.tmp = tmp_path(self.path)
        root.mkdir(parents=True, exist_ok=True)
        self._fh = open_temporary(self.tmp)
        self._hash = hashlib.sha256()
        self._tar = tarfile.open(
            fileobj=_HashingFile(self._fh, self._hash),
            mode="w",
            format=tarfile.PAX_FORMAT,
            copybufsize=COPY_BUFSIZE,
        )

    def add(self, key: str, fields: dict[str, bytes]) -> None:
        for ext, data in fields.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(data))

    def commit(self) -> dict[str, str]:
        self._tar.close()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)
        return {self.path.name: self._hash.hexdigest()}

    def abort(self) -> None:
        """Drop the temporary; closing may fail again (e.g. a full disk), which is moot."""
        with contextlib.suppress(OSError):
            self._fh.close()
        self.tmp.unlink(missing_ok=True)


class _HashingFile:
    """A write-only file wrapper that hashes what passes through."""

    def __init__(self, fh: io.BufferedWriter, h: hashlib._Hash) -> None:
        self._fh, self._h = fh, h

    def write(self, data: bytes) -> int:
        self._h.update(data)
        return self._fh.write(data)

    def tell(self) -> int:
        return self._fh.tell()


class WebdatasetLayout(Layout):
    name = "webdataset"

    def writer(self, shard: str, count: int = 1) -> TarShardWriter:
        return TarShardWriter(self.root, shard)

    def shard_files(self, shard: str) -> list[str]:
        return [f"{shard}.tar"]

    def shard_pattern(self) -> re.Pattern[str]:
        return re.compile(rf"{re.escape(self.prefix)}-\d{{6}}\.tar")

    def describe(self, info: DatasetInfo) -> str:
        image, depth = info.encodings["image"], info.encodings["depth"]
        return (
            f"Webdataset tar shards `{self.prefix}-NNNNNN.tar`; each sample has members "
            f"`{{key}}.{image['ext']}` (RGB uint8), `{{key}}.{depth['ext']}` "
            f"({from_info(depth).words()}) and `{{key}}.json` (source, applied augmentation "
            f"parameters, the camera: fx, fy, cx, cy in pixels, approximate, homography; "
            f"depth_scale)."
        )

    def card_header(self, split: str, info: DatasetInfo) -> str:
        image, depth = info.encodings["image"]["ext"], from_info(info.encodings["depth"])
        columns = [
            {"name": "__key__", "dtype": "string"},
            {"name": "__url__", "dtype": "string"},
            {"name": image, "dtype": "image"},
            {"name": depth.ext} | depth.feature(),
            {"name": "json", "struct": metadata.RECORD_FEATURES},
        ]
        if "mask.png" in info.encodings.get("members", []):  # an evaluation-region mask
            columns.insert(4, {"name": "mask.png", "dtype": "image"})
        return (
            f"---\n{card_config(split, info, [f'{self.prefix}-*.tar'], self.root)}"
            f"dataset_info:\n  config_name: default\n  features:\n"
            f"{metadata.features_yaml(columns, 2)}\n---\n"
        )

    def members(
        self, base: Path, manifest: ShardManifest, keys: set[str]
    ) -> Iterator[tuple[str, Members]]:
        current, found = "", {}
        with tarfile.open(base / f"{manifest.shard}.tar") as tar:
            for member in tar:
                key, _, ext = member.name.partition(".")
                if key != current:
                    if found:
                        yield current, found
                    current, found = key, {}
                if key in keys and member.isfile():
                    handle = tar.extractfile(member)
                    assert handle is not None
                    found[ext] = handle.read()
        if found:
            yield current, found

    def member_index(self, base: Path, manifest: ShardManifest) -> Callable[[str], Members]:
        path = base / f"{manifest.shard}.tar"
        offsets: dict[str, dict[str, tuple[int, int]]] = {}
        with tarfile.open(path) as tar:  # the headers only (~1 ms per 100 members)
            for member in tar:
                if member.isfile():
                    key, _, ext = member.name.partition(".")
                    offsets.setdefault(key, {})[ext] = (member.offset_data, member.size)

        def read(key: str) -> Members:
            found = offsets.get(key)
            if found is None:
                raise KeyError(f"sample {key} listed in its manifest is not in the tar")
            out = {}
            with open(path, "rb") as fh:
                for ext, (offset, size) in found.items():
                    fh.seek(offset)
                    out[ext] = fh.read(size)
                    if len(out[ext]) != size:
                        raise EOFError(f"member {key}.{ext} is truncated")
            return out

        return read
