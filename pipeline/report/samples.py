"""The few samples a report shows: read back from the written shards (through the output
layout), or from the source. Only the chosen keys are decoded.

The source is the run's own opened ``Source`` when the runner passes it (no second open:
for a hub source that would re-import ``datasets`` and resolve the files again, ~2 s);
``depth-pipeline-report`` opens one from the config."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.config.schema import Config
from pipeline.dataset import store
from pipeline.dataset.layouts import layout_for
from pipeline.dataset.records import SampleRecord, ShardManifest
from pipeline.sample import Sample
from pipeline.sources import Source, finalize, open_source


def pick(manifests: list[ShardManifest], count: int) -> list[SampleRecord]:
    """``count`` distinct inputs (copy 0) spread evenly over the dataset, in order."""
    firsts = [s for m in manifests for s in m.samples if s.copy == 0]
    if len(firsts) <= count:
        return firsts
    idx = np.linspace(0, len(firsts) - 1, count).round().astype(int)
    return [firsts[i] for i in sorted(set(idx.tolist()))]


def copies_of(manifests: list[ShardManifest], index: int) -> list[SampleRecord]:
    """Every written copy of input sample ``index``, by copy number."""
    found = [s for m in manifests for s in m.samples if s.index == index]
    return sorted(found, key=lambda s: s.copy)


def read_written(
    root: Path, cfg: Config, manifests: list[ShardManifest], keys: list[str]
) -> dict[str, Sample]:
    """Read these keys back from the written shards."""
    layout = layout_for(cfg.output.format, root, cfg.output.prefix)
    wanted, out = set(keys), {}
    for m in manifests:
        if not wanted & {s.key for s in m.samples}:
            continue
        with store.fetched(cfg.output, root, m.files):  # a URL output's uploaded shard
            for key, (image, depth) in layout.read(m, wanted).items():
                out[key] = Sample(key, image, depth)
    return out


def read_source(cfg: Config, indices: list[int], source: Source | None = None) -> dict[int, Sample]:
    """The untouched source samples at these input indices (each read on its own)."""
    if not indices:
        return {}
    if source is None:
        source = open_source(cfg.source)
    out = {}
    for index in sorted(set(indices)):
        for item in source.iter(index, index + 1):
            if isinstance(item, Sample):
                out[index] = finalize(item, cfg.source)[0]
    return out


def read_masks(
    root: Path, cfg: Config, manifests: list[ShardManifest], keys: list[str]
) -> dict[str, np.ndarray]:
    """The evaluation-region masks (``mask.png``, uint8) of these keys, where written."""
    import tarfile

    import cv2

    from pipeline.dataset.layouts.folder import member_path

    wanted, out = set(keys), {}
    for m in manifests:
        mine = wanted & {s.key for s in m.samples}
        if not mine or "mask.png" not in m.members:
            continue
        found: dict[str, bytes] = {}
        with store.fetched(cfg.output, root, m.files):
            if cfg.output.format == "webdataset":
                with tarfile.open(root / f"{m.shard}.tar") as tar:
                    for member in tar:
                        key, _, ext = member.name.partition(".")
                        if key in mine and ext == "mask.png":
                            found[key] = tar.extractfile(member).read()  # type: ignore[union-attr]
            else:
                for key in mine:
                    if (path := root / member_path(key, "mask.png")).is_file():
                        found[key] = path.read_bytes()
        for key, data in found.items():
            mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            if mask is not None:
                out[key] = mask
    return out
