"""Reading a dataset this tool wrote, whatever its output format, as float metres.

``load(dir)`` yields ``(image, depth, meta)``: image uint8 HxWx3 RGB, depth float32 HxW
metres (0 = invalid; 16-bit PNG depth divided by its scale: ``pipeline.encode.depth``),
meta the per-sample JSON record (``pipeline/metadata.py``) with ``augment.params``
parsed back into a dict.

For the webdataset library, ``depth_decoder`` decodes the depth members: its own
``.decode("rgb8")`` would turn a float TIFF into uint8 whole metres and a 16-bit PNG
into 8 bits, silently (``depth.npy`` needs no handler: the default ``.decode()`` loads
it as float32 metres)::

    decoder = read.depth_decoder(read.depth_scale(dir))
    wds.WebDataset(read.shards(dir), shardshuffle=False).decode(decoder, "rgb8")

``load`` also takes a URL (``s3://bucket/prefix``, any fsspec URL): the records are
fetched first, then a shard at a time into a small temporary cache (never the whole
dataset on disk), with ``storage_options`` for the filesystem (the endpoint of an
S3-compatible store from ``AWS_ENDPOINT_URL``, as for writing). ``shards`` and
``depth_scale`` take a URL too (the shards' URLs, for webdataset over fsspec).

``load`` is the one reader (``pipeline.dataset.reader.Reader``) in its simplest form; use
``Reader.open(root)`` for random access (``read(i)``), ranges (``stream(lo, hi)``) and the
typed sample (mask, camera, params, part tag).

This module needs neither webdataset nor ``datasets``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.dataset.layouts import decode_depth
from pipeline.dataset.reader import Reader, ReadSample, locate
from pipeline.encode import record as metadata
from pipeline.encode.depth import from_info, member_exts
from pipeline.errors import PipelineError

DEPTH_MEMBERS = (*member_exts(), "depth.tif")

__all__ = ["Reader", "ReadSample", "depth_decoder", "depth_scale", "load", "parse", "shards"]


def load(
    root: str | Path,
    parts: Iterable[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    """Every sample of the finished dataset at ``root`` (a directory or a URL), in order,
    decoded; with ``parts``, only the samples of those parts of a mixture (their
    ``dataset``; an unknown name is refused). Each shard is checked against its
    manifest's sha256 when it is first read (``PipelineError`` if damaged). The dataset
    is opened and ``parts`` checked at the call, not at the first sample."""
    reader = Reader.open(root, storage_options)
    keys = None
    if parts is not None:
        wanted, known = set(parts), reader.parts()
        unknown = sorted(wanted - set(known))
        if unknown:
            have = ", ".join(known) if known else "none: it is not a mixture"
            raise PipelineError(
                f"read.load: {root} has no part {', '.join(map(repr, unknown))}; its parts: {have}"
            )
        keys = [s.key for _, s in reader.entries if s.dataset in wanted]
    return _decoded(reader, keys)


def _decoded(
    reader: Reader, keys: list[str] | None
) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    for sample in reader.samples(keys):
        yield sample.image, sample.depth, metadata.parse(sample.meta)


def shards(root: str | Path, storage_options: dict[str, Any] | None = None) -> list[str]:
    """The tar shards of a webdataset-format dataset, in order (for ``wds.WebDataset``):
    paths, or URLs for a dataset at a URL."""
    files = locate(root, storage_options)
    names = [rel for s in files.info().shards for rel in s["files"] if rel.endswith(".tar")]
    return [files.where(name) for name in names]


def depth_scale(root: str | Path, storage_options: dict[str, Any] | None = None) -> float:
    """Stored depth value / depth_scale = metres: 1.0 for float depth, e.g. 1000 for png16."""
    return from_info(locate(root, storage_options).info().encodings["depth"]).scale


def depth_decoder(scale: float | None = None) -> Callable[[str, bytes], Any]:
    """A webdataset decode handler: depth members (``depth.tiff``, ``depth.png``,
    ``depth.npy``) become float32 metres (PNG values / ``scale``); other members are left
    to the next handler."""

    def decode(key: str, data: bytes) -> np.ndarray | None:
        name = key.lower()
        if not name.endswith(DEPTH_MEMBERS):
            return None
        if name.endswith("png") and scale is None:
            raise ValueError(
                f"{key.lstrip('.')} is 16-bit PNG depth: pass its scale, "
                f"read.depth_decoder(read.depth_scale(dataset_dir))"
            )
        return decode_depth(name, data, scale or 1.0)

    return decode


def parse(meta: dict[str, Any]) -> dict[str, Any]:
    """A per-sample JSON record (e.g. webdataset's decoded ``json``) with its applied
    augmentation parameters parsed from their JSON string."""
    return metadata.parse(meta)
