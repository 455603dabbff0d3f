"""Sparse-safe depth for albumentations' own resizers (``Resize``, ``RandomScale``,
``LongestMaxSize``, ``SmallestMaxSize`` and the random-sized crops that resize after
cropping: the classes whose traits say ``resamples``). Their ``apply_to_mask`` resizes
with OpenCV's nearest, which drops LiDAR points where several fall in one target pixel;
here each such instance's ``apply_to_mask`` is wrapped so that sparse depth goes through
``transforms.sparse.resize_depth`` instead (every valid point kept, no invented points).
Dense depth and the uint8 ``valid`` region target keep the library's nearest (its bytes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.augment.transforms.sparse import is_sparse, resize_depth


def scatter_sparse_depth(leaf: Any) -> None:
    """Wrap ``leaf.apply_to_mask``: float (depth) input that is sparse in the region being
    resized (the crop for the sized crops, ``crop_coords`` in params) is scattered to the
    size the library's own resize gives."""
    original = leaf.apply_to_mask

    def apply_to_mask(mask: np.ndarray, *args: Any, **params: Any) -> np.ndarray:
        out = original(mask, *args, **params)
        if mask.dtype.kind != "f" or mask.ndim != 2:
            return out
        region = mask
        if (coords := params.get("crop_coords")) is not None:
            x_min, y_min, x_max, y_max = (int(c) for c in coords)
            region = mask[y_min:y_max, x_min:x_max]
        if not is_sparse(region):
            return out
        return resize_depth(region, out.shape[:2]).astype(out.dtype, copy=False)

    leaf.apply_to_mask = apply_to_mask  # type: ignore[method-assign]
    # albumentations looks its target functions up in a table built at construction
    for key, function in list(leaf._key2func.items()):
        if function == original:
            leaf._key2func[key] = apply_to_mask
