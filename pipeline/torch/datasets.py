"""The torch datasets: ``DepthDataset`` (map-style) and ``DepthShards`` (iterable, split
by rank and loader worker, batches that know the parts) over any output format, local or
at a URL; their sample dict and ``collate``.

A sample is a dict of tensors and tags::

    image     uint8 (3, H, W) RGB
    depth     float32 (1, H, W) metres, 0 = invalid; divided by ``depth_factor`` it is
              metres again when a transform scaled it (a canonical camera: x focal / fx)
    valid     bool (1, H, W): depth > 0
    eval_mask bool (1, H, W): the evaluation region (EigenCrop / GargCrop mode=mask),
              all True when the dataset has none
    K         float32 (3, 3) pixels of this image; NaN when the camera is unknown
    has_camera bool ()
    depth_factor float32 (): stored-and-augmented depth / metres (1 for metric depth)
    key, dataset (the part tag), index (input index), epoch; params (with return_params)

``collate`` stacks them (a batch may mix samples with and without a camera: ``K`` is NaN
and ``has_camera`` False for those) and keeps strings and params as lists.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from pipeline.dataset.reader import Reader
from pipeline.errors import PipelineError
from pipeline.torch.online import AugmentSpec, Online
from pipeline.torch.plan import Layout, check_weights, epoch_batches, share
from pipeline.torch.recipes import Recipes

STACKED = ("image", "depth", "valid", "eval_mask", "K", "has_camera", "depth_factor")
BATCH_BY = (None, "part", "size")


def depth_factor(*params: Mapping[str, Any] | None) -> float:
    """The product of the ``depth_factor`` every depth-scaling transform recorded."""
    factor = 1.0
    for applied in params:
        for value in (applied or {}).values():
            if isinstance(value, Mapping) and "depth_factor" in value:
                factor *= float(value["depth_factor"])
    return factor


def to_tensors(
    item: Online, dataset: str, epoch: int, params: bool, contiguous: bool = True
) -> dict[str, Any]:
    """The sample dict of one (augmented) sample; ``contiguous=False`` leaves the image a
    CHW view of the HWC pixels (``collate`` copies it once, into the batch)."""
    sample = item.sample
    image = torch.from_numpy(np.ascontiguousarray(sample.image)).permute(2, 0, 1)
    if contiguous:
        image = image.contiguous()
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
    factor = depth_factor(item.stored.params, item.params)
    out: dict[str, Any] = {
        "image": image,
        "depth": depth,
        "valid": depth > 0,
        "eval_mask": eval_mask,
        "K": k,
        "has_camera": torch.tensor(cam is not None),
        "depth_factor": torch.tensor(factor, dtype=torch.float32),
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
    first = batch[0]
    other = next((s for s in batch if s["image"].shape != first["image"].shape), None)
    if other is not None:
        a, b = (f"{s['key']} (part {s['dataset']}, {tuple(s['image'].shape[1:])})"
                for s in (first, other))  # fmt: skip
        raise ValueError(
            f"collate: samples of different sizes in one batch: {a} and {b}; read with "
            f"DepthShards(batch_size=..., batch_by='part') (one part per batch) or "
            f"batch_by='size', crop to one size in each part's recipe, or use batch_size=1"
        )
    out: dict[str, Any] = {name: _stack([s[name] for s in batch]) for name in STACKED}
    for name in first:
        if name not in STACKED:
            values = [s.get(name) for s in batch]
            is_int = all(isinstance(v, int) for v in values)
            out[name] = torch.tensor(values) if is_int else values
    return out


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack``; in a loader worker straight into shared memory (as torch's
    ``default_collate`` does), so sending the batch to the main process copies nothing."""
    if get_worker_info() is None:
        return torch.stack(tensors)
    first = tensors[0]
    storage = first._typed_storage()._new_shared(len(tensors) * first.numel())
    out = first.new(storage).resize_(len(tensors), *first.shape)
    return torch.stack(tensors, out=out)


class _Base:
    """What both datasets share: the reader, the online recipes, the epoch."""

    def __init__(
        self,
        root: str | Path,
        augment: AugmentSpec | Mapping[str, AugmentSpec] = None,
        seed: int | None = None,
        dataset: str | None = None,
        return_params: bool = False,
        storage_options: dict[str, Any] | None = None,
        verify: bool = True,
        **cache: Any,
    ) -> None:
        self.reader = Reader.open(root, storage_options, verify, **cache)
        self.online = Recipes(augment, seed, self.reader)
        self.dataset = dataset or str(self.reader.info.config["source"].get("kind", "data"))
        self.return_params = return_params
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration draws its augmentation (and shuffle) from; call it
        before iterating a DataLoader (workers copy the dataset when an epoch starts)."""
        self.epoch = int(epoch)

    def _sample(self, stored: Any, contiguous: bool = True) -> dict[str, Any]:
        item = self.online(stored, self.epoch)
        return to_tensors(item, self.dataset, self.epoch, self.return_params, contiguous)


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
    """Iterable over any written dataset (a directory or a URL), in an epoch order that
    depends only on (``shuffle_seed``, epoch) (``pipeline.torch.plan``): the global list
    of batches is dealt to ranks and to loader workers round robin, so every sample comes
    once per epoch across all of them and a resumed job continues on any world size.

    ``batch_size``: yield collated batches (use ``DepthLoader``); None yields samples.
    ``batch_by``: ``"part"`` (each batch from one part of a mixture) or ``"size"`` (each
    batch of one output size). ``weights``: by part, drawn at read time instead of the
    written proportions (``epoch_samples`` per epoch, default as many as written).
    ``augment``: one recipe, or ``{part: recipe, "default": recipe}``; ``seed`` replaces
    the recipes' seed. ``lanes``: a shuffled or weighted epoch is read as that many runs
    of neighbouring shards, dealt round robin: when ``world_size x num_workers`` divides
    it, each reader fetches and checks its own stretch of shards (any other count reads
    the same order, sharing more shards); unshuffled, the epoch is the written order. A URL's
    shards go through a cache under ``cache_dir`` of ``cache_shards`` shards (at least
    the runs a reader keeps open, plus ``prefetch``) with the next ``prefetch`` shards
    fetched in the background.
    ``rank`` / ``world_size`` default to ``torch.distributed`` when it is initialised."""

    def __init__(
        self,
        root: str | Path,
        augment: AugmentSpec | Mapping[str, AugmentSpec] = None,
        seed: int | None = None,
        dataset: str | None = None,
        return_params: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle: bool = False,
        shuffle_seed: int = 0,
        batch_size: int | None = None,
        batch_by: str | None = None,
        weights: Mapping[str, float] | None = None,
        epoch_samples: int | None = None,
        lanes: int = 8,
        storage_options: dict[str, Any] | None = None,
        verify: bool = True,
        cache_dir: str | Path | None = None,
        cache_shards: int = 2,
        prefetch: int = 2,
        endpoint_url: str | None = None,
    ) -> None:
        cache = {"cache_dir": cache_dir, "cache_shards": cache_shards, "prefetch": prefetch,
                 "endpoint_url": endpoint_url}  # fmt: skip
        super().__init__(
            root, augment, seed, dataset, return_params, storage_options, verify, **cache
        )
        self.rank, self.world_size = _rank(rank, world_size)
        if batch_by not in BATCH_BY:
            raise PipelineError(f"batch_by={batch_by!r}: choose 'part', 'size' or None")
        if batch_size is not None and batch_size < 1:
            raise PipelineError(f"batch_size={batch_size}: must be at least 1 (or None)")
        if batch_by is not None and batch_size is None:
            raise PipelineError(f"batch_by={batch_by!r} needs batch_size= (the samples per batch)")
        self.weights = check_weights(dict(weights) if weights else None, self.reader.parts())
        if self.weights and batch_by == "size":
            raise PipelineError("weights= draw parts: use batch_by='part' (or None) with them")
        self.shuffle, self.shuffle_seed = shuffle, shuffle_seed
        self.batch_size, self.batch_by, self.epoch_samples = batch_size, batch_by, epoch_samples
        if not isinstance(lanes, int) or lanes < 1:
            raise PipelineError(f"lanes={lanes!r}: must be a whole number, at least 1 (default 8)")
        self.lanes = lanes
        self.consumed = 0  # global batches of this epoch already trained on (resume)
        self._layout = self._make_layout()
        self._plan: tuple[int, list[list[int]]] | None = None

    def _make_layout(self) -> Layout:
        entries = self.reader.entries
        parts = [record.dataset for _, record in entries]
        if self.batch_by == "size":
            groups: list[Any] = [
                self.online.output_size(r.dataset, (int(r.shape[0]), int(r.shape[1])))
                or (r.dataset, "varies")
                for _, r in entries
            ]
        else:
            groups = parts
        return Layout([shard for shard, _ in entries], parts, groups)

    def set_epoch(self, epoch: int) -> None:
        self.consumed = 0  # the epoch from its start (``DepthLoader.load_state_dict`` resumes)
        super().set_epoch(epoch)

    def batches(self) -> list[list[int]]:
        """This epoch's global batches of dataset positions (every rank's, in order)."""
        if self._plan is None or self._plan[0] != self.epoch:
            size = self.batch_size or 1
            plan = epoch_batches(
                self._layout, size, self.shuffle_seed, self.epoch, self.shuffle,
                self.weights, self.batch_by is not None, self.epoch_samples, self.lanes,
            )  # fmt: skip
            self._plan = (self.epoch, plan)
        return self._plan[1]

    def mine(self, worker: int = 0, workers: int = 1) -> list[list[int]]:
        """The batches this rank's ``worker`` reads this epoch (after ``consumed``)."""
        return share(self.batches(), self.rank, self.world_size, self.consumed)[worker::workers]

    def __len__(self) -> int:
        """Batches (samples without ``batch_size``) this rank yields for the rest of the epoch."""
        return len(self.mine())

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_plan": None}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:
            _one_thread()
        mine = self.mine(worker, workers)
        self.reader.expect([p for batch in mine for p in batch])
        for batch in mine:
            if self.batch_size is None:
                yield self._sample(self.reader.read(batch[0]))
            else:
                yield collate([self._sample(self.reader.read(p), False) for p in batch])


def _rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    dist = torch.distributed
    ready = dist.is_available() and dist.is_initialized()
    if rank is None:
        rank = dist.get_rank() if ready else 0
    if world_size is None:
        world_size = dist.get_world_size() if ready else 1
    if not 0 <= rank < world_size:
        raise PipelineError(f"rank {rank} is outside world_size {world_size}")
    return rank, world_size


def _one_thread() -> None:
    """A loader worker: one intra-op thread for torch (the workers are the parallelism;
    DataLoader sets it too). OpenCV's pool is left alone: ``cv2.setNumThreads`` in a
    process forked from one whose OpenCV pool ran hangs on the pool's inherited lock."""
    torch.set_num_threads(1)
