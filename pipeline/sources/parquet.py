"""Local parquet files read in place, one row group at a time: random access by row,
bounded memory, no Arrow-cache copy of the split (used by the hub source)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ParquetRows:
    """Rows of local parquet files, read one row group at a time (never the whole file)."""

    def __init__(self, files: list[str]) -> None:
        import pyarrow.parquet as pq

        self.files = files
        self.groups: list[tuple[int, int, int, int]] = []  # first row, file, group, rows
        digest = hashlib.sha256()
        row = 0
        for fi, f in enumerate(files):
            meta = pq.ParquetFile(f).metadata
            # name, size and footer identify the content without reading the row data
            digest.update(f"{Path(f).name}|{Path(f).stat().st_size}|{meta.num_rows}|".encode())
            digest.update(str(meta.schema).encode())
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                self.groups.append((row, fi, g, n))
                row += n
        self.n = row
        self.fingerprint = digest.hexdigest()[:16]
        self._last: tuple[tuple[int, int, tuple[str, ...]], Any] | None = None
        # columns every file has: a file lacking one is refused when the source opens,
        # not by a worker half-way through the run
        names = [pq.ParquetFile(f).schema_arrow.names for f in files]
        self.column_names = [c for c in names[0] if all(c in n for n in names[1:])]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_last": None}  # never pickle a cached row group

    def rows(self, start: int, stop: int, columns: list[str]) -> Iterator[tuple[int, dict]]:
        """``(row index, {column: python value})`` for rows ``start`` .. ``stop``."""
        import bisect

        import pyarrow.parquet as pq

        i = max(bisect.bisect_right([g[0] for g in self.groups], start) - 1, 0)
        for first, fi, g, n in self.groups[i:]:
            if first >= stop:
                break
            # Keep the last row group: consecutive shards often share one (bounded: one group).
            wanted = (fi, g, tuple(columns))
            if self._last is None or self._last[0] != wanted:
                table = pq.ParquetFile(self.files[fi]).read_row_group(g, columns=columns)
                self._last = (wanted, table)
            table = self._last[1]
            cols = {c: table.column(c) for c in columns}
            for j in range(max(start - first, 0), min(stop - first, n)):
                yield first + j, {c: cols[c][j].as_py() for c in columns}
