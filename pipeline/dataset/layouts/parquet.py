"""Parquet shards in the layout the Hugging Face hub and ``datasets`` read without a
loading script: ``data/{split}-NNNNN-of-NNNNN.parquet`` with ``image`` (PNG) and
``depth_map`` (float32 TIFF, or 16-bit PNG) as ``datasets.Image`` columns, as
``sayakpaul/nyu_depth_v2`` stores them, and the record as typed columns
(``parquet_schema``). Row groups of ``ROW_GROUP_ROWS`` rows (what ``datasets`` writes for
image data) stream well; the writer's options are fixed, so the bytes depend only on the
content. A shard appears under its final name only when complete."""

from __future__ import annotations

import contextlib
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
MAGIC = {PNG: "png", b"\xff\xd8": "jpg"}


def shard_file(shard: str, count: int) -> str:
    """``data/{split}-NNNNN-of-NNNNN.parquet`` of shard ``{split}-NNNNNN`` of ``count``."""
    prefix, _, number = shard.rpartition("-")
    return f"{DATA_DIR}/{prefix}-{int(number):05d}-of-{max(count, 1):05d}.parquet"


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

    def writer(self, shard: str, count: int = 1) -> ParquetShardWriter:
        return ParquetShardWriter(self.root, shard_file(shard, count))

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

    def data_files(self) -> list[str]:
        """The split's files, as a ``data_files`` glob relative to ``root``."""
        return [f"{DATA_DIR}/{self.prefix}-*.parquet"]

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
        return (
            f"---\n{card_config(split, info, self.data_files(), self.root)}"
            f"dataset_info:\n  config_name: default\n  features:\n"
            f"{features_yaml(self.features(), 2)}\n"
            f"  splits:\n  - name: {split}\n    num_bytes: {nbytes}\n"
            f"    num_examples: {rows}\n---\n"
        )

    def members(
        self, base: Path, manifest: ShardManifest, keys: set[str]
    ) -> Iterator[tuple[str, Members]]:
        import pyarrow.parquet as pq

        with pq.ParquetFile(base / _file_of(manifest)) as f:
            for g in range(f.num_row_groups):
                for r in f.read_row_group(g).to_pylist():
                    if r["key"] in keys:
                        yield r["key"], _members(r)

    def member_index(self, base: Path, manifest: ShardManifest) -> Callable[[str], Members]:
        import pyarrow.parquet as pq

        path = base / _file_of(manifest)
        where: dict[str, tuple[int, int]] = {}
        with pq.ParquetFile(path) as f:  # the key column only
            for g in range(f.num_row_groups):
                for i, key in enumerate(f.read_row_group(g, columns=["key"]).column(0)):
                    where[key.as_py()] = (g, i)

        def read(key: str) -> Members:
            if key not in where:
                raise KeyError(f"sample {key} listed in its manifest is not in the parquet file")
            g, i = where[key]
            with pq.ParquetFile(path) as f:
                return _members(f.read_row_group(g).slice(i, 1).to_pylist()[0])

        return read


def _file_of(manifest: ShardManifest) -> str:
    return next(rel for rel in manifest.files if rel.endswith(".parquet"))


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
