"""Several evaluation regions in one run stay several: each mask-writing transform
(``EigenCrop``, ``GargCrop`` in ``mode=mask``) gets its own bit of the uint8 ``mask.png``
(1, 2, 4 ... in the configured order), recorded in its params as ``mask_bit``; a pixel is
inside region R when ``mask & bit(R)``, and 0 means outside every region. With a single
region the mask stays 255 inside / 0 outside, as before."""

from __future__ import annotations

from typing import Any

MAX_REGIONS = 8  # bits of a uint8 mask


def assign_mask_bits(leaves: list[Any]) -> int:
    """Give each mask-writing leaf its ``mask_bit``; return the mask's starting value
    (every bit of every region set; 255 for one region)."""
    writers = [leaf for leaf in leaves if getattr(leaf, "writes_mask", False)]
    if len(writers) > MAX_REGIONS:
        raise ValueError(f"at most {MAX_REGIONS} evaluation regions in mask mode per run")
    if len(writers) <= 1:
        for leaf in writers:
            leaf.mask_bit = 255
        return 255
    for i, leaf in enumerate(writers):
        leaf.mask_bit = 1 << i
    return (1 << len(writers)) - 1


def region_bits(params: dict[str, Any]) -> dict[str, int]:
    """{transform name: bit} from one sample's recorded params (several regions only)."""
    bits = {
        name: int(p["mask_bit"])
        for name, p in params.items()
        if isinstance(p, dict) and isinstance(p.get("mask_bit"), int)
    }
    return bits if len(bits) > 1 else {}
