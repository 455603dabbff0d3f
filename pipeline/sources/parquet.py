"""Parquet files read in place: random access by row, bounded memory, no Arrow-cache
copy of the split (used by the hub source). Local files are memory-mapped; files at a URL
(``s3://bucket/nyu/``, any fsspec URL) are read through ranged reads (the footer, then
the row groups a shard needs), never downloaded whole.

Rows are streamed in small batches from the memory-mapped file rather than read a whole
row group at a time: a row group of images is ~100 MB (57 rows of 640x480 photos) and a
shard usually needs part of one, so whole-group reads cost 3-6 ms per used row (fresh
100 MB buffers, rows read and dropped) against ~1.7 ms streamed (measured on 640x480
photographs, one thread).
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.config import urls

BATCH_ROWS = 8  # rows decoded from parquet at a time: ~14 MB of 640x480 PNG + float TIFF
# The file names `datasets` gives a split without any configuration (its exact split names,
# optionally sharded as the hub writes them); anything else is left to `datasets` to resolve.
PLAIN_NAME = re.compile(r"(train|validation|test)(-\d{5}-of-\d{5})?\.parquet")


def plain_split_files(directory: Path, split: str) -> list[str] | None:
    """The files of ``split`` in a directory that holds nothing but ``{split}.parquet`` or
    ``{split}-NNNNN-of-NNNNN.parquet`` files (one of the two namings), at its top or in its
    only entry ``data/``
    (hidden entries aside): what ``datasets.load_dataset_builder`` resolves them to,
    found without importing ``datasets`` (~1 s). None when it holds anything else (a
    card that may declare configs, other names) or not ``split``: ``datasets`` decides."""
    names = _visible(directory)
    if names == ["data"]:
        directory = directory / "data"
        names = _visible(directory)
    matches = [PLAIN_NAME.fullmatch(n) for n in names]
    if not names or not all(m and (directory / m.group(0)).is_file() for m in matches):
        return None
    if len({m.group(2) is None for m in matches if m}) > 1:  # datasets takes one naming only
        return None
    mine = sorted(m.group(0) for m in matches if m and m.group(1) == split)
    # datasets resolves symlinks and returns absolute paths
    return [str(directory.resolve() / n) for n in mine] or None


def plain_split_files_at(url: str, split: str, fs: Any) -> list[str] | None:
    """``plain_split_files`` for a "directory" URL in an object store (served by ``fs``)."""

    def visible(at: str) -> dict[str, str]:
        if not fs.isdir(at):
            return {}
        full = [urls.full_url(url, fs, p) for p in fs.ls(at, detail=False)]
        found = {f.rsplit("/", 1)[-1]: f for f in full}
        return {n: full for n, full in found.items() if n and not n.startswith(".")}

    names = visible(url)
    if list(names) == ["data"]:
        names = visible(names["data"])
    matches = [PLAIN_NAME.fullmatch(n) for n in sorted(names)]
    if not names or not all(matches):
        return None
    if len({m.group(2) is None for m in matches if m}) > 1:
        return None
    mine = sorted(m.group(0) for m in matches if m and m.group(1) == split)
    return [names[n] for n in mine] or None


def _visible(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(e.name for e in directory.iterdir() if not e.name.startswith("."))


class ParquetRows:
    """Rows of parquet files, local or at URLs served by ``fs`` (never a whole file or row
    group in memory)."""

    def __init__(self, files: list[str], fs: Any = None) -> None:
        import pyarrow.parquet as pq

        self.files = files
        self.fs = fs
        self.groups: list[tuple[int, int, int, int]] = []  # first row, file, group, rows
        digest = hashlib.sha256()
        row = 0
        names = []
        for fi, f in enumerate(files):
            handle = pq.ParquetFile(_source(f, fs))
            meta = handle.metadata
            # name, size and footer identify the content without reading the row data
            name, size = (f.rsplit("/", 1)[-1], urls.stamp(f, fs=fs)) if urls.is_url(f) else (
                Path(f).name, Path(f).stat().st_size)  # fmt: skip
            digest.update(f"{name}|{size}|{meta.num_rows}|".encode())
            # the schema's text without its first line (which holds the object's address)
            digest.update(str(meta.schema).split("\n", 1)[-1].encode())
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                self.groups.append((row, fi, g, n))
                row += n
            names.append(handle.schema_arrow.names)
        self.n = row
        self.fingerprint = digest.hexdigest()[:16]
        self._first_rows = [g[0] for g in self.groups]
        # columns every file has: a file lacking one is refused when the source opens,
        # not by a worker half-way through the run
        self.column_names = [c for c in names[0] if all(c in n for n in names[1:])]

    def _file(self, index: int, open_files: dict[int, Any]) -> Any:
        """The file memory-mapped, once per ``rows`` call: its pages are unmapped when the
        call ends, so a worker's resident memory stays at a shard's rows instead of
        growing with every page of the file it has read (which counts towards a SLURM
        job's memory)."""
        import pyarrow.parquet as pq

        if index not in open_files:
            f = self.files[index]
            source = _source(f, self.fs)
            open_files[index] = pq.ParquetFile(source, memory_map=True, pre_buffer=False)
        return open_files[index]

    def rows(self, start: int, stop: int, columns: list[str]) -> Iterator[tuple[int, dict]]:
        """``(row index, {column: python value})`` for rows ``start`` .. ``stop``."""
        i = max(bisect.bisect_right(self._first_rows, start) - 1, 0)
        open_files: dict[int, Any] = {}
        for first, fi, g, n in self.groups[i:]:
            if first >= stop:
                break
            lo, hi = max(start - first, 0), min(stop - first, n)
            if lo >= hi:
                continue
            batches = self._file(fi, open_files).iter_batches(
                batch_size=BATCH_ROWS, row_groups=[g], columns=columns, use_threads=False
            )
            at = 0  # row of the group at the start of the batch
            for batch in batches:
                size = batch.num_rows
                if at + size > lo:
                    cols = [batch.column(c) for c in columns]
                    for j in range(max(lo - at, 0), min(hi - at, size)):
                        yield first + at + j, {c: col[j].as_py() for c, col in zip(columns, cols)}
                at += size
                if at >= hi:
                    break


def _source(f: str, fs: Any) -> Any:
    """A local path as is (pyarrow maps it), a URL as a ranged-read stream."""
    return urls.open_url(f, 1 << 20, fs=fs) if urls.is_url(f) else f
