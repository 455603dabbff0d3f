"""The torch datasets: ``DepthDataset`` (map-style) and ``DepthShards`` (iterable, split
by rank and loader worker) over any output format, local or at a URL; their sample dict
and ``collate``.

A sample is a dict of tensors and tags::

    image     uint8 (3, H, W) RGB
    depth     float32 (1, H, W) metres, 0 = invalid
    valid     bool (1, H, W): depth > 0
    eval_mask bool (1, H, W): the evaluation region (EigenCrop / GargCrop mode=mask),
              all True when the dataset has none
    K         float32 (3, 3) pixels of this image; NaN when the camera is unknown
    has_camera bool ()
    key, dataset (the tag), index (input index), epoch; params (with return_params)

``collate`` stacks them (a batch may mix samples with and without a camera: ``K`` is NaN
and ``has_camera`` False for those) and keeps strings and params as lists.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from pipeline.dataset.reader import Reader
from pipeline.errors import PipelineError
from pipeline.torch.online import AugmentSpec, Online, OnlineAugment, augment_config

STACKED = ("image", "depth", "valid", "eval_mask", "K", "has_camera")


def to_tensors(item: Online, dataset: str, epoch: int, params: bool) -> dict[str, Any]:
    """The sample dict of one (augmented) sample."""
    sample = item.sample
    image = torch.from_numpy(np.ascontiguousarray(sample.image.transpose(2, 0, 1)))
    depth = torch.from_numpy(np.ascontiguousarray(sample.depth, dtype=np.float32))[None]
    if sample.mask is not None:
        eval_mask = torch.from_numpy(np.asarray(sample.mask) > 0)[None]
    else:
        eval_mask = torch.ones_like(depth, dtype=torch.bool)
    cam = sample.camera
    if cam is None:
        k = torch.full((3, 3), math.nan, dtype=torch.float32)
    else:
        k = torch.tensor([[cam.fx, 0, cam.cx], [0, cam.fy, cam.cy], [0, 0, 1]], dtype=torch.float32)
    out: dict[str, Any] = {
        "image": image,
        "depth": depth,
        "valid": depth > 0,
        "eval_mask": eval_mask,
        "K": k,
        "has_camera": torch.tensor(cam is not None),
        "key": item.stored.key,
        "dataset": item.stored.dataset or dataset,  # a mixture's part
        "index": item.stored.index,
        "epoch": epoch,
    }
    if params:
        out["params"] = item.params
    return out


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack a list of sample dicts into a batch (same image size required)."""
    if not batch:
        raise ValueError("collate: an empty batch")
    sizes = {tuple(s["image"].shape) for s in batch}
    if len(sizes) > 1:
        keys = ", ".join(f"{s['key']} {tuple(s['image'].shape[1:])}" for s in batch[:4])
        raise ValueError(
            f"collate: samples of different sizes in one batch ({keys} ...); crop to one "
            f"size in the augment recipe (e.g. RandomCrop) or use batch_size=1"
        )
    out: dict[str, Any] = {name: torch.stack([s[name] for s in batch]) for name in STACKED}
    for name in batch[0]:
        if name not in STACKED:
            values = [s.get(name) for s in batch]
            is_int = all(isinstance(v, int) for v in values)
            out[name] = torch.tensor(values) if is_int else values
    return out


class _Base:
    """What both datasets share: the reader, the online recipe, the epoch."""

    def __init__(
        self,
        root: str | Path,
        augment: AugmentSpec = None,
        seed: int | None = None,
        dataset: str | None = None,
        return_params: bool = False,
        storage_options: dict[str, Any] | None = None,
        verify: bool = True,
    ) -> None:
        self.reader = Reader.open(root, storage_options, verify)
        self.online = OnlineAugment(augment_config(augment, seed))
        self.online.check(self.reader.info.image_size)
        self.dataset = dataset or str(self.reader.info.config["source"].get("kind", "data"))
        self.return_params = return_params
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration draws its augmentation (and shuffle) from; call it
        before iterating a DataLoader (workers copy the dataset when an epoch starts)."""
        self.epoch = int(epoch)

    def _sample(self, stored: Any) -> dict[str, Any]:
        item = self.online(stored, self.epoch)
        return to_tensors(item, self.dataset, self.epoch, self.return_params)


class DepthDataset(_Base, Dataset):
    """Map-style: sample ``i`` of the dataset in ``root`` (webdataset, folder, filelist).
    Use ``DistributedSampler`` across ranks; ``augment`` as for ``DepthShards``."""

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} of a dataset of {len(self)}")
        return self._sample(self.reader.read(i % len(self)))


class DepthShards(_Base, IterableDataset):
    """Iterable over the shards of ``root`` (any format, a directory or a URL): each
    (rank, loader worker) part reads a contiguous run of the epoch's shard order (sizes
    differ by at most one sample), so every sample comes once per epoch across all ranks
    and workers. ``storage_options`` reach the filesystem of a URL; ``verify=False`` skips
    the sha256 check of each shard when it is first read.

    ``rank`` / ``world_size`` default to ``torch.distributed`` when it is initialised
    (else 0 / 1). ``shuffle``: the shard order and a buffer of ``buffer`` samples are
    shuffled per epoch from (``shuffle_seed``, epoch). ``augment``: a preset name
    (``"bts_nyu"``), a YAML path, a transforms mapping or an ``AugmentConfig``, drawn per
    (seed, epoch, index); ``seed`` replaces the recipe's (the offline run's seed gives
    its samples at epoch 0)."""

    def __init__(
        self,
        root: str | Path,
        augment: AugmentSpec = None,
        seed: int | None = None,
        dataset: str | None = None,
        return_params: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle: bool = False,
        buffer: int = 64,
        shuffle_seed: int = 0,
        storage_options: dict[str, Any] | None = None,
        verify: bool = True,
    ) -> None:
        super().__init__(root, augment, seed, dataset, return_params, storage_options, verify)
        dist = torch.distributed
        ready = dist.is_available() and dist.is_initialized()
        if rank is None:
            rank = dist.get_rank() if ready else 0
        if world_size is None:
            world_size = dist.get_world_size() if ready else 1
        if not 0 <= rank < world_size:
            raise PipelineError(f"rank {rank} is outside world_size {world_size}")
        self.rank, self.world_size = rank, world_size
        self.shuffle, self.buffer, self.shuffle_seed = shuffle, buffer, shuffle_seed

    def part(self, worker: int = 0, workers: int = 1) -> list[tuple[int, int]]:
        """The (lo, hi) runs of dataset positions this rank's ``worker`` reads this epoch,
        in reading order."""
        sizes = self.reader.shard_sizes()
        order = list(range(len(sizes)))
        if self.shuffle:
            np.random.default_rng([self.shuffle_seed, self.epoch]).shuffle(order)
        parts = self.world_size * workers
        k = self.rank * workers + worker
        total = sum(sizes)
        lo, hi = k * total // parts, (k + 1) * total // parts
        runs, at = [], 0  # position in the shuffled sequence
        for shard in order:
            start = int(self.reader.starts[shard])
            a, b = max(lo, at), min(hi, at + sizes[shard])
            if a < b:
                runs.append((start + a - at, start + b - at))
            at += sizes[shard]
        return runs

    def __len__(self) -> int:
        """Samples this rank yields per epoch (all its workers together)."""
        total = len(self.reader)
        return (self.rank + 1) * total // self.world_size - self.rank * total // self.world_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        stream = (s for lo, hi in self.part(worker, workers) for s in self.reader.stream(lo, hi))
        if self.shuffle and self.buffer > 1:
            k = self.rank * workers + worker
            stream = _buffered(stream, self.buffer, [self.shuffle_seed, self.epoch, k])
        for stored in stream:
            yield self._sample(stored)


def _buffered(items: Iterator[Any], size: int, entropy: list[int]) -> Iterator[Any]:
    """Shuffle a stream within a buffer of ``size`` (every item once)."""
    rng = np.random.default_rng(entropy)
    pool: list[Any] = []
    for item in items:
        pool.append(item)
        if len(pool) >= size:
            yield pool.pop(int(rng.integers(len(pool))))
    while pool:
        yield pool.pop(int(rng.integers(len(pool))))
