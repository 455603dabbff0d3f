"""Reading a dataset this tool wrote, whatever its output format, as float metres.

``load(dir)`` yields ``(image, depth, meta)``: image uint8 HxWx3 RGB, depth float32 HxW
metres (0 = invalid; 16-bit PNG depth divided by its scale), meta the per-sample JSON
record (``pipeline/metadata.py``) with ``augment.params`` parsed back into a dict.

For the webdataset library, ``depth_decoder`` decodes the depth members: its own
``.decode("rgb8")`` would turn a float TIFF into uint8 whole metres and a 16-bit PNG
into 8 bits, silently::

    decoder = read.depth_decoder(read.depth_scale(dir))
    wds.WebDataset(read.shards(dir), shardshuffle=False).decode(decoder, "rgb8")

This module needs neither webdataset nor ``datasets``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.dataset.layouts import decode_depth, layout_for
from pipeline.dataset.records import DatasetInfo
from pipeline.dataset.verify import check_shard
from pipeline.encode import record as metadata

DEPTH_MEMBERS = ("depth.tiff", "depth.tif", "depth.png")


def load(root: str | Path) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    """Every sample of the finished dataset in ``root``, in order, decoded; each shard's
    files are checked against its manifest's sha256 first (``PipelineError`` if damaged)."""
    root = Path(root)
    info = DatasetInfo.read(root)
    output = info.config["output"]
    layout = layout_for(output["format"], root, output["prefix"])
    for manifest in info.manifests(root):
        check_shard(root, manifest)  # a flipped byte is refused, not decoded
        for _, image, depth, record in layout.samples(manifest):
            yield image, depth, metadata.parse(record)


def shards(root: str | Path) -> list[str]:
    """The tar shards of a webdataset-format dataset, in order (for ``wds.WebDataset``)."""
    root = Path(root)
    info = DatasetInfo.read(root)
    names = [rel for s in info.shards for rel in s["files"] if rel.endswith(".tar")]
    return [str(root / name) for name in names]


def depth_scale(root: str | Path) -> float:
    """Stored depth value / depth_scale = metres: 1.0 for float TIFF, e.g. 1000 for png16."""
    info = DatasetInfo.read(Path(root))
    return float(info.encodings["depth"].get("depth_scale", 1.0))


def depth_decoder(scale: float | None = None) -> Callable[[str, bytes], Any]:
    """A webdataset decode handler: ``depth.tiff`` and ``depth.png`` members become float32
    metres (PNG values / ``scale``); other members are left to the next handler."""

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
