"""The few samples a report shows: read back from the written shards (through the one
reader, ``dataset.reader``), or from the source. Only the chosen keys are decoded.

The source is the run's own opened ``Source`` when the runner passes it (no second open:
for a hub source that would re-import ``datasets`` and resolve the files again, ~2 s);
``depth-pipeline-report`` opens one from the config."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.config.schema import Config
from pipeline.dataset import store
from pipeline.dataset.layouts import layout_for
from pipeline.dataset.reader import Reader, ReadSample
from pipeline.dataset.records import SampleRecord, ShardManifest
from pipeline.dataset.shard_cache import CachedFiles
from pipeline.dataset.shard_files import ShardFiles
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


def written(root: Path, cfg: Config, manifests: list[ShardManifest]) -> Reader:
    """The one reader over a dataset being published (its ``dataset_info.json`` is not
    written yet): the run's own shards, just written, so not hashed again; a URL
    output's uploaded shards are fetched into a small cache."""
    layout = layout_for(cfg.output.format, root, cfg.output.prefix)
    remote = store.remote_of(cfg.output)
    files = ShardFiles(root) if remote is None else CachedFiles(remote, keep=1)
    return Reader(layout, manifests, files, verify=False)


def read_written(
    root: Path, cfg: Config, manifests: list[ShardManifest], keys: list[str]
) -> dict[str, ReadSample]:
    """These keys read back from the written shards (image, depth, evaluation mask)."""
    return {s.key: s for s in written(root, cfg, manifests).samples(keys)}


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
