"""Hugging Face ``datasets``: a hub repo, a local parquet directory, ``data_files`` globs,
or a directory written by ``save_to_disk`` (all named by ``source.path``).

Non-streaming data is prepared once into the datasets Arrow cache and memory-mapped, so
workers read rows by index without holding the split in RAM; ``streaming=true`` iterates
(no download of the whole split). Image columns are read as raw bytes and decoded here
(PNG/JPEG image, float TIFF / 16-bit PNG depth), never through PIL's lossy modes.
Hub problems (unreachable, script-based repo, unknown repo or split) become one line.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.config import urls
from pipeline.config.sources import HubConfig
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Camera, Origin, Sample
from pipeline.sources import Source
from pipeline.sources.cameras import camera_from
from pipeline.sources.files import apply_mask, to_array
from pipeline.sources.hub_errors import explain as _explain
from pipeline.sources.hub_errors import refuse_partial as _refuse_partial
from pipeline.sources.hub_reach import offline_unless_reachable
from pipeline.sources.parquet import ParquetRows, plain_split_files, plain_split_files_at

ROWS_PER_READ = 16  # rows fetched from the memory-mapped table at a time
_COMMIT = re.compile(r"@([0-9a-f]{40})/")


def _quiet() -> None:
    """Keep hub retry warnings and datasets chatter off stderr (errors are ours to word)."""
    import datasets  # first: importing huggingface_hub sets its logger's level

    for name in ("huggingface_hub", "datasets", "fsspec", "httpx", "httpx2", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    datasets.disable_progress_bars()  # one progress bar per run: ours


class HubSource(Source):
    """Rows of one split; keys ``{split}/{row:06d}``."""

    def __init__(self, cfg: HubConfig) -> None:
        if not cfg.path:
            raise ValueError(
                "set source.path to a hub repo id (user/name) or a local dataset directory"
            )
        self.cfg = cfg
        self.local = Path(cfg.path).exists()
        self.at_url = urls.is_url(cfg.path)  # a directory of parquet in an object store
        self.fs = cfg.filesystem(cfg.path) if self.at_url else None
        self.data_files: list[str] = []
        self.fingerprint: str | None = None
        self.parquet: ParquetRows | None = None
        try:
            if self._plain_parquet():
                self.ds = None
            elif _is_saved(Path(cfg.path)):
                self.ds = self._from_disk()
            elif self.local:
                self.ds = self._from_builder()
            else:  # a hub repo: asked in offline mode when the hub cannot be reached
                with offline_unless_reachable():
                    self.ds = self._from_builder()
        except PipelineError:
            raise
        except Exception as exc:  # datasets and huggingface_hub raise many types
            raise _explain(exc, cfg) from None
        self.camera_columns = [
            c.strip() for c in (cfg.columns.camera or "").split(",") if c.strip()
        ]
        if len(self.camera_columns) not in (0, 1, 2, 4):
            raise PipelineError(
                f"source.columns.camera={cfg.columns.camera!r}: give one column (an object, a "
                f"list or a focal length), or fx,fy or fx,fy,cx,cy"
            )
        named = (cfg.columns.image, cfg.columns.depth, cfg.columns.mask, *self.camera_columns)
        self.columns = list(dict.fromkeys(c for c in named if c))
        # None when a stream does not declare its features
        available = self.parquet.column_names if self.parquet else self.ds.column_names
        if available is not None:
            missing = [c for c in self.columns if c not in available]
            if missing:
                raise PipelineError(
                    f"source.columns: {', '.join(missing)} not in {cfg.path} (columns: "
                    f"{', '.join(available)}); set source.columns.image / source.columns.depth"
                )
            if self.parquet is None:
                self.ds = self.ds.select_columns(self.columns)
        if self.parquet is None:
            self.ds = _raw_images(self.ds)

    # -- opening ---------------------------------------------------------------------

    def _plain_parquet(self) -> bool:
        """A local directory of plain split files: read in place without ``datasets``."""
        c = self.cfg
        if c.streaming or c.name or c.data_files or not (self.local or self.at_url):
            return False
        if self.at_url:
            files = plain_split_files_at(c.path, c.split, self.fs)
            if files is None:
                raise PipelineError(
                    f"source.path={c.path}: no {c.split}.parquet or "
                    f"{c.split}-NNNNN-of-NNNNN.parquet files there (at its top or in data/); "
                    f"a URL source reads plain split files only"
                )
        else:
            files = plain_split_files(Path(c.path), c.split)
        if files is None:
            return False
        self.data_files = files
        self._read_in_place()
        return True

    def _read_in_place(self) -> None:
        """Local parquet is read in place, row group by row group: no Arrow cache copy of
        the whole split (time and disk), bounded memory, random access by row."""
        self.parquet = ParquetRows(self.data_files, self.fs)
        self.n = self.parquet.n
        self.fingerprint = self.parquet.fingerprint

    def _from_disk(self) -> Any:
        _quiet()
        import datasets

        ds = datasets.load_from_disk(self.cfg.path)
        if isinstance(ds, datasets.DatasetDict):
            if self.cfg.split not in ds:
                raise PipelineError(
                    f"source.split={self.cfg.split} is not in {self.cfg.path} "
                    f"(splits: {', '.join(ds)})"
                )
            ds = ds[self.cfg.split]
        self.data_files = [f["filename"] for f in ds.cache_files]
        self.fingerprint = _files_fingerprint(self.data_files)
        self.n = len(ds)
        return ds.to_iterable_dataset() if self.cfg.streaming else ds

    def _from_builder(self) -> Any:
        _quiet()
        import datasets

        c = self.cfg
        builder = datasets.load_dataset_builder(
            c.path,
            c.name,
            revision=c.revision,
            data_files=c.data_files,
            cache_dir=c.cache_dir,
        )
        files = builder.config.data_files
        if files is not None:
            if c.split not in files:
                raise PipelineError(
                    f"source.split={c.split} is not in {c.path} (splits: {', '.join(files)})"
                )
            self.data_files = [str(f) for f in files[c.split]]
            _refuse_partial(self.data_files, c)
        if not c.streaming and self.data_files and all(map(_local_parquet, self.data_files)):
            self._read_in_place()
            return None
        if c.streaming:
            ds = builder.as_streaming_dataset(split=c.split)
            self.n = self._streamed_length(builder, ds)
            return ds
        builder.download_and_prepare()
        ds = builder.as_dataset(split=c.split)
        self.fingerprint = _files_fingerprint([f["filename"] for f in ds.cache_files])
        self.n = len(ds)
        return ds

    def _streamed_length(self, builder: Any, ds: Any) -> int:
        """Rows in the streamed split: from the dataset info, parquet footers or ``limit``."""
        splits = builder.info.splits or {}
        if self.cfg.split in splits and splits[self.cfg.split].num_examples:
            return int(splits[self.cfg.split].num_examples)
        if self.data_files and all(f.endswith(".parquet") for f in self.data_files):
            import fsspec
            import pyarrow.parquet as pq

            total = 0
            for url in self.data_files:
                with fsspec.open(url, "rb") as fh:
                    total += pq.ParquetFile(fh).metadata.num_rows
            return total
        if self.cfg.limit is not None:
            return self.cfg.limit
        raise PipelineError(
            f"source.streaming=true: the size of {self.cfg.path} split {self.cfg.split} is "
            f"unknown; set source.limit=N, or use source.streaming=false"
        )

    # -- the Source protocol ---------------------------------------------------------

    def __len__(self) -> int:
        return self.n

    def for_workers(self) -> HubSource | None:
        """Local parquet: this opened source, pickled to the workers (a file list and row
        group offsets), so they neither resolve the files again nor import datasets."""
        return self if self.parquet is not None else None

    def identity(self) -> dict[str, object]:
        c = self.cfg
        listing = hashlib.sha256()
        for f in self.data_files:
            p = Path(f)
            if urls.is_url(f):
                stamp = urls.stamp(f, fs=self.fs)
            else:
                stamp = f"{p.stat().st_size}|{p.stat().st_mtime_ns}" if p.is_file() else ""
            listing.update(f"{f}\0{stamp}\n".encode())
        commits = sorted({m.group(1) for f in self.data_files if (m := _COMMIT.search(f))})
        return {
            "kind": "hub",
            "path": str(Path(c.path).resolve()) if self.local else c.path,
            "local": self.local,
            "name": c.name,
            "split": c.split,
            "revision": None if self.local else c.revision,  # local copies have none
            "resolved_revision": commits[0] if len(commits) == 1 else commits or None,
            "streaming": c.streaming,
            "columns": self.columns,
            "num_rows": self.n,
            "fingerprint": self.fingerprint,
            "data_files": self.data_files[:1000],
            "data_files_sha256": listing.hexdigest(),
        }

    def iter(self, start: int, stop: int) -> Iterator[Sample | SampleError]:
        stop = min(stop, self.n)
        if self.cfg.streaming:
            rows = self.ds.skip(start).take(stop - start)
            for index, row in zip(range(start, stop), rows):
                yield self._sample(index, row)
            return
        if self.parquet is not None:
            for index, row in self.parquet.rows(start, stop, self.columns):
                yield self._sample(index, row)
            return
        table = self.ds.with_format("arrow")
        for lo in range(start, stop, ROWS_PER_READ):
            batch = table[lo : min(lo + ROWS_PER_READ, stop)]
            cols = {c: batch.column(c) for c in self.columns}
            for j in range(batch.num_rows):
                yield self._sample(lo + j, {c: cols[c][j].as_py() for c in self.columns})

    def _sample(self, index: int, row: dict[str, Any]) -> Sample | SampleError:
        c = self.cfg
        key = f"{c.split}/{index:06d}"
        name = Path(c.path).name if self.local else c.path.rstrip("/").rsplit("/", 1)[-1]
        where = f"{name if self.local or self.at_url else c.path}[{c.split}][{index}]"
        try:
            image = to_array(row[c.columns.image], key, f"{where}.{c.columns.image}")
            depth = to_array(row[c.columns.depth], key, f"{where}.{c.columns.depth}")
            if c.columns.mask:
                mask = to_array(row[c.columns.mask], key, f"{where}.{c.columns.mask}")
                depth = apply_mask(depth, mask, key, f"{where}.{c.columns.mask}")
            camera = self._camera(row, image.shape[:2], key, where)
        except SampleError as err:
            return err
        return Sample(key, image, depth, Origin("hub", where), camera)

    def _camera(
        self, row: dict[str, Any], shape: tuple[int, ...], key: str, where: str
    ) -> Camera | None:
        """The camera from ``columns.camera``: one column, or fx,fy[,cx,cy] columns."""
        names = self.camera_columns
        if not names:
            return None
        values = [row[c] for c in names]
        value = values[0] if len(values) == 1 else values
        if len(values) == 2:  # fx, fy: principal point at the image centre
            value = {"fx": values[0], "fy": values[1]}
        if len(values) > 1 and any(v is None for v in values):
            return None
        try:
            return camera_from(value, shape[0], shape[1])
        except ValueError as exc:
            raise SampleError(
                key, f"{where}.{','.join(names)}: no readable camera ({exc})"
            ) from None


def _files_fingerprint(paths: list[str]) -> str:
    """Names, sizes and modification times of local files: changes when they do."""
    digest = hashlib.sha256()
    for f in paths:
        st = Path(f).stat()
        digest.update(f"{Path(f).name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _local_parquet(name: str) -> bool:
    return name.endswith(".parquet") and Path(name).is_file()


def _is_saved(path: Path) -> bool:
    """A directory written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    return path.is_dir() and (
        (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()
    )


def _raw_images(ds: Any) -> Any:
    """Read ``datasets.Image`` columns as ``{"bytes", "path"}`` instead of PIL images."""
    import datasets

    features = getattr(ds, "features", None) or {}
    for name, feature in features.items():
        if isinstance(feature, datasets.Image) and feature.decode:
            ds = ds.cast_column(name, datasets.Image(decode=False))
    return ds
