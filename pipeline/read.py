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
fetched first, then one shard at a time into a temporary directory (never the whole
dataset on disk), with ``storage_options`` for the filesystem (the endpoint of an
S3-compatible store from ``AWS_ENDPOINT_URL``, as for writing). ``shards`` and
``depth_scale`` take a URL too (the shards' URLs, for webdataset over fsspec).

This module needs neither webdataset nor ``datasets``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.dataset import store
from pipeline.dataset.layouts import decode_depth, layout_for
from pipeline.dataset.records import INFO_FILE, DatasetInfo, ShardManifest
from pipeline.dataset.verify import check_shard
from pipeline.encode import record as metadata
from pipeline.encode.depth import from_info, member_exts
from pipeline.errors import PipelineError

DEPTH_MEMBERS = (*member_exts(), "depth.tif")


def load(
    root: str | Path,
    parts: Iterable[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    """Every sample of the finished dataset in ``root`` (a directory or a URL), in order,
    decoded; with ``parts``, only the samples of those parts of a mixture (their
    ``dataset``). Each shard's files are checked against its manifest's sha256 first
    (``PipelineError`` if damaged)."""
    wanted = None if parts is None else set(parts)
    if store.is_url(root):
        for image, depth, record in _load_url(str(root), storage_options or {}):
            if wanted is None or record.get("dataset", "") in wanted:
                yield image, depth, record
        return
    root = Path(store.local_path(str(root)))
    info = DatasetInfo.read(root)
    output = info.config["output"]
    layout = layout_for(output["format"], root, output["prefix"])
    for manifest in info.manifests(root):
        if wanted is not None and not any(s.dataset in wanted for s in manifest.samples):
            continue
        check_shard(root, manifest)  # a flipped byte is refused, not decoded
        for _, image, depth, record in layout.samples(manifest):
            if wanted is None or record.get("dataset", "") in wanted:
                yield image, depth, metadata.parse(record)


def _load_url(
    url: str, options: dict[str, Any]
) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    remote = store.Remote(url, options)
    info = _remote_info(remote)
    with tempfile.TemporaryDirectory(prefix="depth-pipeline-read-") as tmp:
        local = Path(tmp)
        for shard in info.shards:
            rel = ShardManifest.path(local, shard["name"]).relative_to(local).as_posix()
            remote.download(rel, local / rel)
        output = info.config["output"]
        layout = layout_for(output["format"], local, output["prefix"])
        for manifest in info.manifests(local):
            for rel in manifest.files:
                remote.download(rel, local / rel)
            check_shard(local, manifest)
            for _, image, depth, record in layout.samples(manifest):
                yield image, depth, metadata.parse(record)
            for rel in manifest.files:
                (local / rel).unlink(missing_ok=True)


def shards(root: str | Path, storage_options: dict[str, Any] | None = None) -> list[str]:
    """The tar shards of a webdataset-format dataset, in order (for ``wds.WebDataset``):
    paths, or URLs for a dataset at a URL."""
    info = _info(root, storage_options)
    names = [rel for s in info.shards for rel in s["files"] if rel.endswith(".tar")]
    if store.is_url(root):
        return [f"{str(root).rstrip('/')}/{name}" for name in names]
    return [str(Path(store.local_path(str(root))) / name) for name in names]


def depth_scale(root: str | Path, storage_options: dict[str, Any] | None = None) -> float:
    """Stored depth value / depth_scale = metres: 1.0 for float depth, e.g. 1000 for png16."""
    info = _info(root, storage_options)
    return from_info(info.encodings["depth"]).scale


def _info(root: str | Path, options: dict[str, Any] | None) -> DatasetInfo:
    """The dataset's ``dataset_info.json``, in a directory or at a URL."""
    if not store.is_url(root):
        return DatasetInfo.read(Path(store.local_path(str(root))))
    return _remote_info(store.Remote(str(root), options or {}))


def _remote_info(remote: store.Remote) -> DatasetInfo:
    """``dataset_info.json`` at a URL; one line if absent or invalid."""
    try:
        data = remote.read_bytes(INFO_FILE)
    except FileNotFoundError:
        raise PipelineError(
            f"{remote.url} has no {INFO_FILE}: not a finished depth-pipeline dataset (a run "
            f"writes it last; re-run the pipeline to finish it)"
        ) from None
    try:
        return DatasetInfo.from_json(json.loads(data))
    except (ValueError, KeyError, TypeError) as exc:
        raise PipelineError(f"{remote.path(INFO_FILE)}: not a valid {INFO_FILE} ({exc})") from None


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
