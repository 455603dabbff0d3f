"""The one meaning of ``depth_scale``, the trainers': stored value / depth_scale = metres
(KITTI 256, NYU millimetre PNG 1000, 1 for float depth), on sources and written records
alike. Earlier versions multiplied on sources (``source.depth_scale=0.001``): such a
value below 1 on integer depth stops the run with the setting to write instead."""

from __future__ import annotations

import numpy as np

MEANING = "stored value / depth_scale = metres"


def old_meaning(value: float, dtype: np.dtype, key: str = "source.depth_scale") -> str | None:
    """One line when ``key=value`` reads as the old multiplying scale: a value below 1
    applied to integer depth of ``dtype``; None otherwise."""
    if not (np.issubdtype(dtype, np.integer) and 0 < value < 1):
        return None
    return (
        f"{key}={value:g} is below 1 on integer depth ({np.dtype(dtype)}): depth_scale now "
        f"divides ({MEANING}, as in the written records and Metric3D/KITTI lists); "
        f"write {key}={reciprocal(value)}"
    )


def reciprocal(value: float) -> str:
    """``1 / value`` as a person writes it: 0.00390625 -> '256', 0.001 -> '1000'."""
    return format(round(1.0 / value, 6), ".12g")
