"""Parquet shards in the layout the Hugging Face hub and ``datasets`` read without a
loading script: ``data/{split}-NNNNN-of-NNNNN.parquet`` with ``image`` (PNG) and
``depth_map`` (float32 TIFF, or 16-bit PNG) as ``datasets.Image`` columns, as
``sayakpaul/nyu_depth_v2`` stores them, and the record as typed columns
(``parquet_schema``). Row groups of ``ROW_GROUP_ROWS`` rows (what ``datasets`` writes for
image data) stream well; the writer's options are fixed, so the bytes depend only on the
content. A shard appears under its final name only when complete."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.dataset.layouts import Layout, Members, card_config
from pipeline.dataset.layouts import parquet_schema as columns
from pipeline.dataset.records import DatasetInfo, ShardManifest
from pipeline.dataset.writers import fsync_dir, open_temporary, sha256_file, tmp_path
from pipeline.encode.depth import ENCODINGS, from_info
from pipeline.encode.record import features_yaml
from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from pipeline.config.schema import OutputConfig

DATA_DIR = "data"
# ``datasets``' own row group size for image datasets (``push_to_hub``): a streaming
# reader fetches one group (~1.4 MB per 640x480 sample) at a time
ROW_GROUP_ROWS = 100
PNG = b"\x89PNG"
PART_NAME = re.compile(r"[\w.-]*")
MAGIC = {PNG: "png", b"\xff\xd8": "jpg"}


def shard_file(shard: str, count: int, part: str = "") -> str:
    """``data/{split}-NNNNN-of-NNNNN.parquet`` of shard ``{split}-NNNNNN`` of ``count``;
    a mixture part's rows of it in ``data/{part}/``."""
    prefix, _, number = shard.rpartition("-")
    folder = f"{DATA_DIR}/{part}" if part else DATA_DIR
    return f"{folder}/{prefix}-{int(number):05d}-of-{max(count, 1):05d}.parquet"


class PartedWriter:
    """One shard: a parquet file per mixture part (``dataset`` tag; one file for a single
    source), each opened when its first row comes, so ``load_dataset(out, part)`` can
    select a part by its files."""

    def __init__(self, root: Path, shard: str, count: int) -> None:
        self.root, self.shard, self.count = root, shard, count
        self.files: dict[str, ParquetShardWriter] = {}

    def add(self, key: str, fields: dict[str, bytes]) -> None:
        part = columns.part_of(fields)
        if part not in self.files:
            if part.startswith(".") or not PART_NAME.fullmatch(part):
                raise PipelineError(f"mixture part {part!r} cannot name a folder (sample {key})")
            rel = shard_file(self.shard, self.count, part)
            self.files[part] = ParquetShardWriter(self.root, rel)
        self.files[part].add(key, fields)

    def commit(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in sorted(self.files):
            out |= self.files[part].commit()
        return out

    def abort(self) -> None:
        for w in self.files.values():
            w.abort()


class ParquetShardWriter:
    """Writes rows into ``{file}.tmp-HOST-PID`` a row group at a time; renames on commit."""

    def __init__(self, root: Path, rel: str) -> None:
        self.rel = rel
        self.path = root / rel
        self.tmp = tmp_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open_temporary(self.tmp)
        self._writer: Any = None
        self._rows: list[dict[str, Any]] = []

    def add(self, key: str, fields: dict[str, bytes]) -> None:
        image = next(ext for ext in ("png", "jpg") if ext in fields)
        depth = next(ext for ext in fields if ext.startswith("depth."))
        self._rows.append(columns.row(fields, image, depth))
        if self._writer is None:
            self._open()
        if len(self._rows) == ROW_GROUP_ROWS:
            self._flush()

    def _open(self) -> None:
        import pyarrow.parquet as pq

        self.schema = columns.schema()
        images = columns.IMAGE_COLUMNS
        self._writer = pq.ParquetWriter(
            self._fh,
            self.schema,
            compression={c: "none" for c in images} | {"default": "snappy"},  # type: ignore[dict-item]
            use_dictionary=["dataset", "data_type"],
            write_statistics=["key", "index", "copy", "depth_scale"],
            data_page_size=1 << 20,
            version="2.6",
        )

    def _flush(self) -> None:
        import pyarrow as pa

        if self._rows:
            table = pa.Table.from_pylist(self._rows, schema=self.schema)
            self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            self._rows = []

    def commit(self) -> dict[str, str]:
        if self._writer is None:
            self._open()
        self._flush()
        self._writer.close()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        digest = sha256_file(self.tmp)
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)
        return {self.rel: digest}

    def abort(self) -> None:
        """Drop the temporary; closing may fail again (e.g. a full disk), which is moot."""
        with contextlib.suppress(Exception):
            if self._writer is not None:
                self._writer.close()
        with contextlib.suppress(OSError):
            self._fh.close()
        self.tmp.unlink(missing_ok=True)


class ParquetLayout(Layout):
    name = "parquet"
    dirs = (DATA_DIR,)

    def writer(self, shard: str, count: int = 1) -> PartedWriter:
        return PartedWriter(self.root, shard, count)

    def shard_pattern(self) -> re.Pattern[str]:
        return re.compile(rf"{re.escape(self.prefix)}-\d{{5}}-of-\d{{5}}\.parquet")

    def check(self, output: OutputConfig) -> None:
        depth = str(output.depth.format)
        if not ENCODINGS[depth].image:
            raise PipelineError(
                f"output.format=parquet stores depth_map as a datasets.Image: "
                f"output.depth.format={depth} is not an image; use tiff or png16"
            )

    def describe(self, info: DatasetInfo) -> str:
        depth, image = from_info(info.encodings["depth"]), info.encodings["image"]["ext"]
        return (
            f"Parquet shards `{DATA_DIR}/{self.prefix}-NNNNN-of-NNNNN.parquet` as the hub "
            f"stores `sayakpaul/nyu_depth_v2`: `image` (RGB uint8, {image})"
            f" and `depth_map` ({depth.words()}) as `datasets.Image`, and typed columns `key`, "
            f"`dataset`, `data_type`, `camera` (fx, fy, cx, cy in pixels, approximate, "
            f"homography), `depth_scale`, `params` (applied augmentation parameters, JSON), "
            f"`index`, `copy`, `source` and `mask` (the evaluation region; null where none is "
            f"written)."
        )

    def data_files(self, info: DatasetInfo, part: str = "*") -> list[str]:
        """The split's files (of one mixture part) as a ``data_files`` glob under ``root``."""
        folder = f"{DATA_DIR}/{part}" if parts(info) else DATA_DIR
        return [f"{folder}/{self.prefix}-*.parquet"]

    @staticmethod
    def features() -> list[dict[str, Any]]:
        return columns.columns()

    def split_size(self, info: DatasetInfo) -> tuple[int, int]:
        """The split's rows and the bytes of its files (the card's ``splits`` entry)."""
        stored = [self.root / rel for s in info.shards for rel in s["files"]]
        rows = sum(int(s["samples"]) for s in info.shards)
        return rows, sum(p.stat().st_size for p in stored if p.is_file())

    def card_header(self, split: str, info: DatasetInfo) -> str:
        rows, nbytes = self.split_size(info)
        where = json.dumps(str(self.root.resolve()))[1:-1]
        configs = "".join(
            f"- config_name: {part}\n"
            f'  description: "part {part}, content {info.fingerprint}, in {where}"\n'
            f'  data_files:\n  - split: {split}\n    path:\n    - "{rel}"\n'
            for part in parts(info)
            for rel in self.data_files(info, part)
        )
        return (
            f"---\n{card_config(split, info, self.data_files(info), self.root)}{configs}"
            f"dataset_info:\n  config_name: default\n  features:\n"
            f"{features_yaml(self.features(), 2)}\n"
            f"  splits:\n  - name: {split}\n    num_bytes: {nbytes}\n"
            f"    num_examples: {rows}\n---\n"
        )

    def members(
        self, base: Path, manifest: ShardManifest, keys: set[str]
    ) -> Iterator[tuple[str, Members]]:
        import pyarrow.parquet as pq

        files = _files_of(manifest)
        if len(files) == 1:  # streamed a row group at a time, in shard order
            with pq.ParquetFile(base / files[0]) as f:
                for g in range(f.num_row_groups):
                    for r in f.read_row_group(g).to_pylist():
                        if r["key"] in keys:
                            yield r["key"], _members(r)
            return
        found = {}  # a mixture's shard: its parts' files, put back in shard order
        for rel in files:
            for r in pq.read_table(base / rel).to_pylist():
                if r["key"] in keys:
                    found[r["key"]] = _members(r)
        for s in manifest.samples:
            if s.key in found:
                yield s.key, found.pop(s.key)

    def member_index(self, base: Path, manifest: ShardManifest) -> Callable[[str], Members]:
        import pyarrow.parquet as pq

        where: dict[str, tuple[str, int, int]] = {}
        for rel in _files_of(manifest):
            with pq.ParquetFile(base / rel) as f:  # the key column only
                for g in range(f.num_row_groups):
                    for i, key in enumerate(f.read_row_group(g, columns=["key"]).column(0)):
                        where[key.as_py()] = (rel, g, i)

        def read(key: str) -> Members:
            if key not in where:
                raise KeyError(f"sample {key} listed in its manifest is not in the parquet file")
            rel, g, i = where[key]
            with pq.ParquetFile(base / rel) as f:
                return _members(f.read_row_group(g).slice(i, 1).to_pylist()[0])

        return read


def parts(info: DatasetInfo) -> list[str]:
    """A mixture's parts that have samples (one ``datasets`` config each), else []."""
    plan = info.source.get("plan") if info.source.get("kind") == "mix" else None
    return [name for name, p in (plan or {}).items() if p.get("count")]


def _files_of(manifest: ShardManifest) -> list[str]:
    return sorted(rel for rel in manifest.files if rel.endswith(".parquet"))


def _members(r: dict[str, Any]) -> Members:
    """A row as the members a tar would hold (``png``, ``depth.tiff``, ``json``...)."""
    image = r["image"]["bytes"]
    depth = r["depth_map"]["bytes"]
    out = {
        MAGIC.get(image[:4], MAGIC.get(image[:2], "png")): image,
        "depth.png" if depth[:4] == PNG else "depth.tiff": depth,
        "json": columns.record_json(r),
    }
    if r.get("mask") is not None:
        out["mask.png"] = r["mask"]["bytes"]
    return out
