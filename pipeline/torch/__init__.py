"""The PyTorch reader (``pip install -e '.[torch]'``): the output of a run as torch
datasets, with the offline augmentation available on the fly.

- ``DepthDataset(root, augment=None)``: map-style over any output format (webdataset,
  folder, filelist); pair it with ``DistributedSampler`` across ranks.
- ``DepthShards(root, rank=, world_size=, shuffle=, batch_size=, batch_by=, weights=)``:
  iterable in an epoch order that depends only on (seed, epoch), dealt to ranks and loader
  workers; each sample once per epoch without read-time ``weights``; one-part
  (``batch_by="part"``) or one-size batches; ``set_epoch(e)``.
- ``DepthLoader(data, num_workers=)``: the ``DataLoader`` for a batching ``DepthShards``,
  with ``state_dict()`` / ``load_state_dict()`` for mid-epoch resume.
- ``root`` is a directory or any fsspec URL (``s3://bucket/prefix``, with
  ``storage_options=``): both read through the one reader (``pipeline.dataset.reader``),
  which checks each shard's sha256 when it first reads it (``verify=False`` opts out);
  a URL's next shards are prefetched into a bounded cache.
- ``collate``: stacks sample dicts; mixes samples with and without a camera.
- ``augment=``: a preset (``"bts_nyu"``, ``"bts_kitti"``, ``"depth_anything"``,
  ``"metric3d"``, ``"seed"``), a YAML path, a transforms mapping or an ``AugmentConfig``,
  or ``{part: one of those, "default": ...}`` for a mixture; epoch 0 with the offline
  run's seed reproduces that run's samples bit for bit.

The rest of the package never imports torch.
"""

from pipeline.dataset.reader import Reader
from pipeline.torch.datasets import DepthDataset, DepthShards, collate, to_tensors
from pipeline.torch.loader import DepthLoader
from pipeline.torch.online import augment_config, presets

__all__ = [
    "Reader",
    "DepthDataset",
    "DepthLoader",
    "DepthShards",
    "augment_config",
    "collate",
    "presets",
    "to_tensors",
]
