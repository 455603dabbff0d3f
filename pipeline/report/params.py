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

from pipeline.records import SampleRecord

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


def correlation_matrix(table: ParamTable) -> np.ndarray:
    """Pairwise Pearson r (rows where both columns are present); NaN where undefined."""
    k = len(table.names)
    out = np.full((k, k), math.nan)
    for i in range(k):
        for j in range(i, k):
            r = 1.0 if i == j else _corr(table.values[:, i], table.values[:, j])[0]
            out[i, j] = out[j, i] = r
    return out


def cross_transform_pairs(table: ParamTable, corr: np.ndarray) -> list[dict[str, Any]]:
    """Pairs from different transforms, strongest |r| first: these should be independent."""
    pairs = []
    for i in range(len(table.names)):
        for j in range(i + 1, len(table.names)):
            if table.transforms[i] == table.transforms[j] or math.isnan(corr[i, j]):
                continue
            n = _corr(table.values[:, i], table.values[:, j])[1]
            pairs.append({"a": table.names[i], "b": table.names[j], "r": corr[i, j], "n": n})
    return sorted(pairs, key=lambda p: -abs(p["r"]))


def independence(table: ParamTable, corr: np.ndarray) -> dict[str, Any]:
    """Summary: the strongest cross-transform |r| against the noise level ~3/sqrt(n)."""
    pairs = cross_transform_pairs(table, corr)
    n = len(table.keys)
    out: dict[str, Any] = {"samples": n, "pairs": len(pairs), "top": pairs[:8]}
    if not pairs:
        out["verdict"] = "no parameters from different transforms to compare"
        out["status"] = "unknown"
        return out
    top = pairs[0]
    bound = 3.0 / math.sqrt(max(top["n"], 1))
    out["noise_bound"] = bound
    out["suspicious"] = [p for p in pairs if abs(p["r"]) > 3.0 / math.sqrt(max(p["n"], 1))]
    if n < 20:
        out["verdict"] = f"only {n} samples: too few to judge independence"
        out["status"] = "unknown"
    elif abs(top["r"]) >= 0.99:
        out["verdict"] = (
            f"DEPENDENT: {top['a']} and {top['b']} have r = {top['r']:.3f}; transforms share "
            f"a random stream"
        )
        out["status"] = "bad"
    elif out["suspicious"]:
        out["verdict"] = (
            f"{len(out['suspicious'])} of {len(pairs)} cross-transform pairs exceed 3/sqrt(n) "
            f"(strongest {top['a']} ~ {top['b']}, r = {top['r']:.3f}); expected ~0 by chance"
        )
        out["status"] = "bad"
    else:
        out["verdict"] = (
            f"independent as far as {n} samples show: max |r| = {abs(top['r']):.3f} "
            f"< 3/sqrt(n) = {bound:.3f}"
        )
        out["status"] = "ok"
    return out
