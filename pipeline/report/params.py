"""Recorded augmentation parameters as a table of scalar columns, and their correlations.

Each transform contributes an ``applied`` flag (0/1) and its numeric parameters
(``brightness.alpha``, ``crop.x_min`` ...), NaN where a sample did not draw them.
Columns that never vary, or that follow exactly from an earlier column of the same
transform (``crop.x_max`` = ``crop.x_min`` + width), are dropped with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.augment.traits import spec_traits
from pipeline.config.schema import Config
from pipeline.config.sources import MixConfig
from pipeline.dataset.records import SampleRecord

ALIASES = {"crop_coords": ("x_min", "y_min", "x_max", "y_max")}
SKIP = {"shape"}
EXACT = 1.0 - 1e-9


@dataclass
class ParamTable:
    """Scalar parameter columns over the written samples (NaN = not drawn)."""

    keys: list[str]
    names: list[str]
    transforms: list[str]
    values: np.ndarray
    dropped: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, (bool, int, float)):
        out[prefix] = float(value)
    elif isinstance(value, dict):
        for k, v in sorted(value.items()):  # sorted: the same columns from memory or disk
            if k not in SKIP:
                _flatten(f"{prefix}.{k}", v, out)
    elif isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        leaf = prefix.rpartition(".")[2]
        names = ALIASES.get(leaf, ())
        base = prefix.rpartition(".")[0] if len(names) == len(value) else prefix
        for i, v in enumerate(value):
            _flatten(f"{base}.{names[i]}" if names else f"{prefix}[{i}]", v, out)


def _corr(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Pearson r over rows where both are present; NaN if undefined."""
    both = ~(np.isnan(a) | np.isnan(b))
    n = int(both.sum())
    if n < 3:
        return math.nan, n
    x, y = a[both], b[both]
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, n
    return float(np.corrcoef(x, y)[0, 1]), n


def param_table(samples: list[SampleRecord], transforms: list[str] | None = None) -> ParamTable:
    """Flatten every sample's ``params`` into columns (in ``transforms`` order, e.g. the
    configured one; manifests store them sorted); drop constant and derived ones."""
    rows: list[dict[str, float]] = []
    order: dict[str, str] = {}  # column -> transform, in first-seen order
    rank = {name: i for i, name in enumerate(transforms or [])}
    for s in samples:
        row: dict[str, float] = {}
        params = s.params or {}
        for tname in sorted(params, key=lambda t: (rank.get(t, len(rank)), t)):
            p = params[tname]
            row[f"{tname}.applied"] = float(p is not None)
            if isinstance(p, dict):
                _flatten(tname, {k: v for k, v in p.items() if k not in SKIP}, row)
        for name in row:
            order.setdefault(name, name.partition(".")[0])
        rows.append(row)
    names = list(order)
    values = np.array(
        [[row.get(n, math.nan) for n in names] for row in rows], dtype=np.float64
    ).reshape(len(rows), len(names))
    dropped: dict[str, str] = {}
    keep: list[int] = []
    for j, name in enumerate(names):
        col = values[:, j]
        present = col[~np.isnan(col)]
        if present.size < 2 or np.ptp(present) == 0:
            dropped[name] = "constant"
            continue
        for i in keep:
            if order[names[i]] == order[name]:
                same_rows = np.array_equal(np.isnan(values[:, i]), np.isnan(col))
                r, _ = _corr(values[:, i], col)
                if same_rows and abs(r) >= EXACT:
                    dropped[name] = f"follows {names[i]}"
                    break
        else:
            keep.append(j)
    return ParamTable(
        keys=[s.key for s in samples],
        names=[names[j] for j in keep],
        transforms=[order[names[j]] for j in keep],
        values=values[:, keep],
        dropped=dropped,
    )


def part_tables(samples: list[SampleRecord], cfg: Config) -> dict[str, ParamTable]:
    """A mixture's parameter table per part (its samples, its transforms' order); {} for
    a single source. The parts differ in frame size, crop and focal: pooled, their draws
    correlate through the part."""
    if not isinstance(cfg.source, MixConfig):
        return {}
    from pipeline.config.mixture import part_augments

    augments = part_augments(cfg.augment, cfg.source)
    return {
        name: param_table([s for s in samples if s.dataset == name], list(aug.transforms))
        for name, aug in augments.items()
    }


def correlation_matrix(table: ParamTable) -> np.ndarray:
    """Pairwise Pearson r (rows where both columns are present); NaN where undefined."""
    k = len(table.names)
    out = np.full((k, k), math.nan)
    for i in range(k):
        for j in range(i, k):
            r = 1.0 if i == j else _corr(table.values[:, i], table.values[:, j])[0]
            out[i, j] = out[j, i] = r
    return out


# ---- the applied parameters of one sample, for the before/after picture -----------------

UNSET_WHEN_NEGATIVE = {"x_min", "x_max", "y_min", "y_max"}  # Rotate's -1: no crop
HIDDEN = {"shape", "fill", "fill_mask", "pad_params", "crop_coords", "matrix", "bbox_matrix"}


def crop_window(
    transforms: dict[str, Any], params: dict[str, Any], height: int, width: int
) -> tuple[tuple[float, float, float, float] | None, str | None]:
    """Where the written pixels come from in the source image: (x0, y0, x1, y1) in source
    pixels, walking the configured transforms with the recorded params (flips mirror the
    frame, crops cut it). None when nothing was cropped, or (with the reason) when a
    transform moved pixels in a way a rectangle cannot show."""
    box = [0.0, 0.0, float(width), float(height)]
    mirrored = [False, False]
    cropped = False
    for name, spec in transforms.items():
        p = params.get(name)
        if not isinstance(spec, dict) or p is None:
            continue
        cls = str(spec.get("_target_", "")).rpartition(".")[2]
        traits = spec_traits(spec)
        if traits.flip_axis is not None:
            mirrored[traits.flip_axis] = not mirrored[traits.flip_axis]
        elif isinstance(p, dict) and isinstance(p.get("crop_coords"), list):
            pad = p.get("pad_params") or {}
            a, b, c, d = (float(v) for v in p["crop_coords"])
            lo_hi = [(a - pad.get("pad_left", 0), c - pad.get("pad_left", 0))]
            lo_hi.append((b - pad.get("pad_top", 0), d - pad.get("pad_top", 0)))
            for axis, (lo, hi) in enumerate(lo_hi):
                start, stop = box[axis], box[axis + 2]
                box[axis], box[axis + 2] = (
                    (stop - hi, stop - lo) if mirrored[axis] else (start + lo, start + hi)
                )
            cropped = True
        elif traits.moves_pixels_unboxed:
            return None, f"{name} ({cls}) moves pixels: no crop window drawn"
    return (tuple(box) if cropped else None), None  # type: ignore[return-value]


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list) and len(value) <= 4:
        return "(" + ", ".join(_short(v) for v in value) + ")"
    if isinstance(value, dict):  # e.g. the affine readout: angle 12.3 scale_x 1 ...
        return " ".join(f"{k} {_short(v)}" for k, v in value.items())
    return str(value)


def describe(params: dict[str, Any], order: list[str]) -> str:
    """One line per sample: each transform's applied values, e.g. ``crop x 47-623 y 11-459
    · brightness alpha 0.813 beta -2.22 · gamma: not applied``."""
    parts = []
    for name in sorted(params, key=lambda t: (order.index(t) if t in order else len(order), t)):
        p = params[name]
        if p is None:
            parts.append(f"{name}: not applied")
            continue
        if not isinstance(p, dict):
            parts.append(f"{name} {_short(p)}")
            continue
        bits = []
        if isinstance(p.get("crop_coords"), list) and len(p["crop_coords"]) == 4:
            a, b, c, d = p["crop_coords"]
            bits.append(f"x {a}-{c} y {b}-{d}")
        bits += [
            _short(v) if k == name else f"{k} {_short(v)}"
            for k, v in sorted(p.items())
            if k not in HIDDEN and not (k in UNSET_WHEN_NEGATIVE and v == -1)
        ]
        parts.append(f"{name} " + " ".join(bits) if bits else f"{name}: applied")
    return " · ".join(parts)
