"""Random and sequential access to the samples of a finished dataset, without torch.

``DatasetReader(root)`` lists every written sample (shard manifests in order, then each
manifest's samples) and reads one by position (``read(i)``, the map-style dataset) or a
range streamed shard by shard (``stream(lo, hi)``, the iterable one). Decoding goes
through the output layout's own read path (``layouts.webdataset.decode_members``,
``Layout.samples``), so a depth encoding added there is read here too; the depth scale
comes from each sample's JSON record.

A webdataset tar is read at random by member offsets (the tar headers are scanned once
per tar and process, ~1 ms per 100 members).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.dataset.layouts import Layout, layout_for
from pipeline.dataset.layouts.folder import files_by_key
from pipeline.dataset.layouts.webdataset import decode_members
from pipeline.dataset.records import DatasetInfo, SampleRecord, ShardManifest
from pipeline.encode import codecs
from pipeline.errors import PipelineError
from pipeline.sample import Camera

MASK = "mask.png"


@dataclass
class Stored:
    """One written sample as stored: image uint8 HxWx3, depth float32 metres, the JSON
    record, the evaluation mask (uint8, nonzero = inside) when the dataset has one, and
    its position in the dataset."""

    position: int
    key: str
    image: np.ndarray
    depth: np.ndarray
    record: dict[str, Any]
    mask: np.ndarray | None

    @property
    def camera(self) -> Camera | None:
        cam = self.record.get("camera") or {}
        if cam.get("fx") is None:
            return None
        fx, fy, cx, cy = (float(cam[k]) for k in ("fx", "fy", "cx", "cy"))
        return Camera(fx, fy, cx, cy, bool(cam.get("approximate", False)))

    @property
    def index(self) -> int:
        """The input index the sample was made from (what offline seeding used)."""
        return int((self.record.get("augment") or {}).get("index", self.position))

    @property
    def copy(self) -> int:
        return int((self.record.get("augment") or {}).get("copy", 0))


class DatasetReader:
    """The samples of the finished dataset in ``root`` (any output format)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.info = DatasetInfo.read(self.root)
        output = self.info.config["output"]
        self.format = str(output["format"])
        self.layout: Layout = layout_for(self.format, self.root, output["prefix"])
        self.manifests = self.info.manifests(self.root)
        self.entries: list[tuple[int, SampleRecord]] = [
            (m, s) for m, manifest in enumerate(self.manifests) for s in manifest.samples
        ]
        self.starts = np.cumsum([0] + [len(m.samples) for m in self.manifests])
        self._offsets: dict[int, dict[str, dict[str, tuple[int, int]]]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_offsets": {}}  # tar offsets are rebuilt per process

    def shard_sizes(self) -> list[int]:
        return [len(m.samples) for m in self.manifests]

    def read(self, position: int) -> Stored:
        """The sample at ``position`` (0 .. len-1, dataset order)."""
        shard, record = self.entries[position]
        manifest = self.manifests[shard]
        if self.format == "webdataset":
            members = self._tar_members(shard, record.key)
            return self._decoded(position, record.key, members)
        return self._from_files(position, manifest, record.key)

    def stream(self, lo: int, hi: int) -> Iterator[Stored]:
        """Samples ``lo`` .. ``hi`` in dataset order, each shard read front to back once."""
        first = int(np.searchsorted(self.starts, lo, side="right")) - 1
        for shard in range(max(first, 0), len(self.manifests)):
            start = int(self.starts[shard])
            if start >= hi:
                return
            keys = {
                s.key for i, s in enumerate(self.manifests[shard].samples) if lo <= start + i < hi
            }
            positions = {s.key: start + i for i, s in enumerate(self.manifests[shard].samples)}
            if self.format != "webdataset":
                for key in sorted(keys, key=positions.__getitem__):
                    yield self._from_files(positions[key], self.manifests[shard], key)
                continue
            for key, members in _tar_samples(self._tar_path(shard), keys):
                yield self._decoded(positions[key], key, members)

    # ---- webdataset ------------------------------------------------------------------

    def _tar_path(self, shard: int) -> Path:
        return self.root / f"{self.manifests[shard].shard}.tar"

    def _tar_members(self, shard: int, key: str) -> dict[str, bytes]:
        offsets = self._offsets.get(shard)
        if offsets is None:
            offsets = self._offsets[shard] = _member_offsets(self._tar_path(shard))
        found = offsets.get(key)
        if found is None:
            raise PipelineError(
                f"{self._tar_path(shard)}: sample {key} listed in its manifest is missing; "
                f"re-run the pipeline with the same config to repair the dataset"
            )
        out = {}
        with open(self._tar_path(shard), "rb") as fh:
            for ext, (offset, size) in found.items():
                fh.seek(offset)
                out[ext] = fh.read(size)
        return out

    def _decoded(self, position: int, key: str, members: dict[str, bytes]) -> Stored:
        _, image, depth, record = decode_members(key, members)
        mask = codecs.decode("png", members[MASK]) if MASK in members else None
        return Stored(position, key, image, depth, record, mask)

    # ---- folder, filelist --------------------------------------------------------------

    def _from_files(self, position: int, manifest: ShardManifest, key: str) -> Stored:
        ((_, image, depth, record),) = list(self.layout.samples(manifest, {key}))
        rel = files_by_key(manifest)[key].get("mask")
        mask = codecs.decode("png", (self.root / rel).read_bytes()) if rel else None
        return Stored(position, key, image, depth, record, mask)


def _member_offsets(path: Path) -> dict[str, dict[str, tuple[int, int]]]:
    """``{key: {ext: (data offset, size)}}`` of a tar, from its headers only."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    with tarfile.open(path) as tar:
        for member in tar:
            if member.isfile():
                key, _, ext = member.name.partition(".")
                out.setdefault(key, {})[ext] = (member.offset_data, member.size)
    return out


def _tar_samples(path: Path, keys: set[str]) -> Iterator[tuple[str, dict[str, bytes]]]:
    """The members of ``keys`` in a tar, streamed in order, one sample at a time."""
    current, members = "", {}
    with tarfile.open(path) as tar:
        for member in tar:
            key, _, ext = member.name.partition(".")
            if key != current:
                if members:
                    yield current, members
                current, members = key, {}
            if key in keys:
                handle = tar.extractfile(member)
                assert handle is not None
                members[ext] = handle.read()
    if members:
        yield current, members
