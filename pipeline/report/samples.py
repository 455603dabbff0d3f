"""The few samples a report shows: read back from the written shards, or from the source.

Only the chosen keys are decoded; tar members of other samples are skipped by seeking,
so a report never re-reads the whole dataset.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import codecs
from pipeline.config import Config
from pipeline.sample import Sample
from pipeline.sources import finalize, open_source


def pick(manifests: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` distinct inputs (copy 0) spread evenly over the dataset, in order."""
    firsts = [s for m in manifests for s in m["samples"] if s.get("copy", 0) == 0]
    if len(firsts) <= count:
        return firsts
    idx = np.linspace(0, len(firsts) - 1, count).round().astype(int)
    return [firsts[i] for i in sorted(set(idx.tolist()))]


def copies_of(manifests: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    """Every written copy of input sample ``index``, by copy number."""
    found = [s for m in manifests for s in m["samples"] if s["index"] == index]
    return sorted(found, key=lambda s: s.get("copy", 0))


def read_written(
    root: Path, cfg: Config, manifests: list[dict[str, Any]], keys: list[str]
) -> dict[str, Sample]:
    """Read these keys back from the written shards (tar members or folder files)."""
    wanted, out = set(keys), {}
    for m in manifests:
        names = {s["key"] for s in m["samples"]} & wanted
        if not names:
            continue
        if cfg.output.format == "webdataset":
            fields: dict[str, dict[str, bytes]] = {}
            with tarfile.open(root / f"{m['shard']}.tar") as tar:
                for member in tar:
                    key, _, ext = member.name.partition(".")
                    if key in names and ext in ("png", "depth.tiff"):
                        handle = tar.extractfile(member)
                        assert handle is not None
                        fields.setdefault(key, {})[ext] = handle.read()
            for key, f in fields.items():
                out[key] = Sample(
                    key, codecs.decode("png", f["png"]), codecs.decode("tiff", f["depth.tiff"])
                )
        else:
            for key in names:
                out[key] = Sample(
                    key,
                    codecs.decode("png", (root / "image" / f"{key}.png").read_bytes()),
                    codecs.decode("tiff", (root / "depth" / f"{key}.tiff").read_bytes()),
                )
    return out


def read_source(cfg: Config, indices: list[int]) -> dict[int, Sample]:
    """The untouched source samples at these input indices (each read on its own)."""
    if not indices:
        return {}
    source = open_source(cfg.source)
    out = {}
    for index in sorted(set(indices)):
        for item in source.iter(index, index + 1):
            if isinstance(item, Sample):
                out[index] = finalize(item, cfg.source)[0]
    return out
