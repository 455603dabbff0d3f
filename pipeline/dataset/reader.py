"""The one reader of a dataset this tool wrote, whatever its format and wherever it is.

``Reader.open(root)`` takes a directory or any fsspec URL (``s3://bucket/prefix``) of a
finished dataset; the report builds one from the run's own manifests before
``dataset_info.json`` exists. It lists every written sample (shard manifests in order,
then each manifest's samples), reads one by position (``read(i)``) or a range streamed
shard by shard (``stream(lo, hi)``), and checks a shard's sha256 when it is first read
(``verify=False`` opts out, like ``datasets``' ``VerificationMode.NO_CHECKS``).

The output format (``layouts``) says where a sample's members are stored; decoding is
here, once: image, depth as float32 metres (through the record's ``depth_scale``), the
evaluation mask, and the JSON record with camera, params and the mixture part's tag.
``read.load``, ``pipeline.torch``, the report, ``depth-pipeline-verify``, the merge and
the webdataset source (fed an earlier output) all read through it.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config.urls import is_url, local_path
from pipeline.dataset.layouts import Layout, layout_for
from pipeline.dataset.records import DatasetInfo, SampleRecord, ShardManifest
from pipeline.dataset.shard_cache import CachedFiles
from pipeline.dataset.shard_files import ShardFiles, manifest_rel
from pipeline.encode import codecs
from pipeline.encode.depth import for_member, member_exts
from pipeline.encode.record import Record
from pipeline.errors import PipelineError
from pipeline.sample import Camera

MASK = "mask.png"
IMAGE_EXTS = ("png", "jpg")


@dataclass
class ReadSample:
    """One written sample read back: image uint8 HxWx3 RGB, depth float32 HxW metres
    (0 = invalid), the evaluation mask (uint8, nonzero = inside) when written, the JSON
    record as stored (``meta``), and its position in the dataset."""

    position: int
    key: str
    image: np.ndarray
    depth: np.ndarray
    mask: np.ndarray | None
    meta: dict[str, Any]

    @cached_property
    def record(self) -> Record:
        return Record.from_json(self.meta)

    @property
    def camera(self) -> Camera | None:
        return self.record.camera.camera()

    @property
    def params(self) -> dict[str, Any]:
        """The applied augmentation parameters by transform name (None: did not fire)."""
        return dict(self.record.augment.params)

    @property
    def index(self) -> int:
        """The input index the sample was made from (what offline seeding used)."""
        return self.record.augment.index

    @property
    def copy(self) -> int:
        return self.record.augment.copy

    @property
    def dataset(self) -> str:
        """A mixture's part ("" for a single source)."""
        return self.record.dataset

    @property
    def data_type(self) -> str:
        return self.record.data_type


def decode(position: int, key: str, members: dict[str, bytes]) -> ReadSample:
    """One sample's stored members (``png``|``jpg``, a depth member, ``json``, maybe
    ``mask.png``), decoded."""
    meta = json.loads(members["json"])
    image_ext = next((ext for ext in IMAGE_EXTS if ext in members), "png")
    depth_ext = next((ext for ext in member_exts() if ext in members), "depth.tiff")
    image = codecs.decode(image_ext, members[image_ext])
    depth = for_member(depth_ext, float(meta.get("depth_scale", 1.0))).decode(members[depth_ext])
    mask = codecs.decode("png", members[MASK]) if MASK in members else None
    return ReadSample(position, key, image, depth, mask, meta)


class Reader:
    """The samples of one written dataset: ``layout`` says where members are stored,
    ``files`` where the shards are (a directory or a cache of a URL)."""

    def __init__(
        self,
        layout: Layout,
        manifests: list[ShardManifest],
        files: ShardFiles,
        verify: bool = True,
        info: DatasetInfo | None = None,
    ) -> None:
        self.layout, self.manifests, self.files = layout, manifests, files
        self.verify, self.info = verify, info
        self.entries: list[tuple[int, SampleRecord]] = [
            (m, s) for m, manifest in enumerate(manifests) for s in manifest.samples
        ]
        self.starts = np.cumsum([0] + [len(m.samples) for m in manifests])
        self._index: dict[int, Any] = {}  # per process: a shard's member locations

    @classmethod
    def open(
        cls,
        root: str | Path,
        storage_options: dict[str, Any] | None = None,
        verify: bool = True,
        cache_dir: str | Path | None = None,
        cache_shards: int = 2,
        endpoint_url: str | None = None,
        prefetch: int = 0,
    ) -> Reader:
        """The finished dataset at ``root`` (a directory or a URL); a URL's shards are
        fetched into a cache of ``cache_shards`` shards under ``cache_dir`` (a temporary
        directory by default), the next ``prefetch`` shards of the reading plan
        (``expect``) in the background; ``endpoint_url``: an S3-compatible store's
        endpoint (default: ``AWS_ENDPOINT_URL``)."""
        files = locate(root, storage_options, cache_dir, cache_shards, endpoint_url, prefetch)
        info = files.info()
        manifests = []
        for shard, manifest in files.manifests([s["name"] for s in info.shards]).items():
            if manifest is None:
                raise PipelineError(
                    f"{files.where(manifest_rel(shard))}: missing or unreadable shard "
                    f"manifest; re-run the pipeline with the same config to repair the dataset"
                )
            manifests.append(manifest)
        output = info.config["output"]
        layout = layout_for(str(output["format"]), files.base, str(output["prefix"]))
        manifests = sorted(manifests, key=lambda m: m.index)
        return cls(layout, manifests, files, verify, info)

    def __len__(self) -> int:
        return len(self.entries)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_index": {}}

    def shard_sizes(self) -> list[int]:
        return [len(m.samples) for m in self.manifests]

    def parts(self) -> list[str]:
        """The parts of a mixture (their ``dataset`` tags), in first-seen order."""
        return list(dict.fromkeys(s.dataset for _, s in self.entries if s.dataset))

    def expect(self, positions: Iterable[int]) -> None:
        """The positions this process will read next, in order: a URL's cache fetches the
        shards that hold them ahead of ``read`` and keeps as many as are read at once (a
        directory ignores it)."""
        shards = [self.entries[p][0] for p in positions]
        last = {s: i for i, s in enumerate(shards)}
        order, open_now, most = list(dict.fromkeys(shards)), set(), 0
        for i, s in enumerate(shards):
            open_now.add(s)
            most = max(most, len(open_now))
            if last[s] == i:
                open_now.discard(s)
        self.files.expect([self.manifests[s] for s in order], most)

    def read(self, position: int) -> ReadSample:
        """The sample at ``position`` (0 .. len-1, dataset order)."""
        shard, record = self.entries[position]
        manifest = self._shard(shard)
        index = self._index.get(shard)
        if index is None:
            index = self._index[shard] = self._guard(
                manifest, lambda: self.layout.member_index(self.files.base, manifest)
            )
        return self._guard(manifest, lambda: decode(position, record.key, index(record.key)))

    def stream(self, lo: int = 0, hi: int | None = None) -> Iterator[ReadSample]:
        """Samples ``lo`` .. ``hi`` in dataset order, each shard read front to back once."""
        hi = len(self) if hi is None else hi
        first = max(int(np.searchsorted(self.starts, lo, side="right")) - 1, 0)
        for shard in range(first, len(self.manifests)):
            start = int(self.starts[shard])
            if start >= hi:
                return
            samples = self.manifests[shard].samples
            positions = {s.key: start + i for i, s in enumerate(samples) if lo <= start + i < hi}
            yield from self._shard_samples(shard, positions)

    def samples(self, keys: Iterable[str] | None = None) -> Iterator[ReadSample]:
        """Every sample (or those of ``keys``) in dataset order, reading only the shards
        that hold them."""
        wanted = None if keys is None else set(keys)
        for shard, manifest in enumerate(self.manifests):
            start = int(self.starts[shard])
            positions = {
                s.key: start + i
                for i, s in enumerate(manifest.samples)
                if wanted is None or s.key in wanted
            }
            if positions:
                yield from self._shard_samples(shard, positions)

    def _shard_samples(self, shard: int, positions: dict[str, int]) -> Iterator[ReadSample]:
        manifest = self._shard(shard)
        stream = self.layout.members(self.files.base, manifest, set(positions))
        while True:
            item = self._guard(manifest, lambda: next(stream, None))
            if item is None:
                return
            key, members = item
            yield self._guard(manifest, lambda: decode(positions[key], key, members))  # noqa: B023

    def _shard(self, shard: int) -> ShardManifest:
        manifest = self.manifests[shard]
        self.files.ensure(manifest, self.verify)
        return manifest

    def _guard(self, manifest: ShardManifest, read: Any) -> Any:
        """``read()``, with a damaged or truncated shard as one line naming it."""
        try:
            return read()
        except (tarfile.TarError, OSError, KeyError, ValueError, EOFError) as exc:
            where = self.files.where(next(iter(sorted(manifest.files)), manifest.shard))
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise PipelineError(
                f"{where}: shard {manifest.shard} cannot be read ({detail}); run "
                f"depth-pipeline-verify {self.files.root} and re-run the command "
                f"that wrote it"
            ) from None


def locate(
    root: str | Path,
    storage_options: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    cache_shards: int = 2,
    endpoint_url: str | None = None,
    prefetch: int = 0,
) -> ShardFiles:
    """The files of the dataset at ``root``: a directory, or a URL read through a cache."""
    if not is_url(root):
        return ShardFiles(Path(local_path(str(root))))
    from pipeline.config.urls import check_segments
    from pipeline.dataset import store

    check_segments(str(root), "dataset")  # named as the reader's, not as an output.dir
    remote = store.Remote(str(root), dict(storage_options or {}), endpoint_url)
    cache = Path(cache_dir) if cache_dir is not None else None
    return CachedFiles(remote, cache_shards, cache, prefetch)
