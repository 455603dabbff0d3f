"""Are the augmentation draws of different transforms independent?

One global test over every cross-transform pair, so the verdict does not fire by chance
as the number of pairs grows (a 3-sigma bound per pair over 55 pairs fires ~15% of the
time): the statistic is the largest |Fisher z| = |atanh(r)| * sqrt(n - 3) over the pairs,
and its distribution under independence comes from shuffling each transform's rows
separately (a permutation test, Westfall-Young max-T). Shuffling keeps every transform's
own joint distribution (flags, gated parameters, discrete values) and breaks only the
links between transforms, so the false-alarm rate is ``ALPHA`` whatever the parameter
distributions, the sample count or the correlation between pairs. The shuffles come
from a fixed seed: the same dataset gives the same verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.report.params import ParamTable

ALPHA = 0.01  # false alarms on independent streams
SHUFFLES = 199  # p-values in steps of 0.005: exact, if coarse
MAX_ROWS = 2000  # rows tested (evenly spaced): |r| > ~0.09 still stands out
MIN_PAIR = 10  # rows holding both parameters for a pair to count
JUDGE_R = 0.5  # below this many samples' worth of power, say "too few to judge"
CHUNK = 4_000_000  # array elements per batch of shuffles


def _features(values: np.ndarray) -> np.ndarray:
    """Per row: each column centred (0 where absent), its square, and its presence flag;
    every pairwise sum the correlations need is then one product ``F.T @ F``."""
    present = ~np.isnan(values)
    count = np.maximum(present.sum(axis=0), 1)
    mean = np.where(present, values, 0.0).sum(axis=0) / count
    x = np.where(present, values - mean, 0.0)
    return np.concatenate([x, x * x, present.astype(np.float64)], axis=-1)


def _pairwise(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r and n over rows where both columns are present, for a stack of feature
    tables (..., rows, 3k) from ``_features``; NaN where undefined."""
    k = features.shape[-1] // 3
    g = np.swapaxes(features, -1, -2) @ features
    sxy, sx, sxx, n = (
        g[..., :k, :k],
        g[..., :k, 2 * k :],
        g[..., k : 2 * k, 2 * k :],
        g[..., 2 * k :, 2 * k :],
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        sy = np.swapaxes(sx, -1, -2)  # [i, j]: sum of x_j over rows where i is present
        cov = sxy - sx * sy / n
        var_i = sxx - sx * sx / n
        var_j = np.swapaxes(var_i, -1, -2)
        r = cov / np.sqrt(var_i * var_j)
    flat = var_i <= 1e-5 * np.maximum(sxx, 1e-30)  # column i constant where j is present
    r[flat | np.swapaxes(flat, -1, -2) | (n < 3)] = np.nan
    # rounded: equal tables give equal r in any batch (ties, e.g. r = 1, stay ties)
    return np.clip(r, -1.0, 1.0).round(5), n


def _z(r: np.ndarray, n: np.ndarray) -> np.ndarray:
    """|Fisher z|, 0 where undefined (constant column) or where fewer than ``MIN_PAIR``
    rows hold both parameters (with 6 rows, r = 0.95 happens by chance)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.abs(np.arctanh(r)) * np.sqrt(np.maximum(n - 3, 0))
    return np.where(np.isnan(z) | (n < MIN_PAIR), 0.0, z)


def _cross(table: ParamTable) -> np.ndarray:
    """Upper-triangle mask of pairs from different transforms."""
    t = np.array(table.transforms)
    return np.triu(t[:, None] != t[None, :], 1)


def _shuffled_max(
    features: np.ndarray, blocks: list[np.ndarray], cross: np.ndarray, seed: int = 0
) -> np.ndarray:
    """The max-|z| statistic over ``SHUFFLES`` tables whose transform blocks (columns of
    ``features``) are shuffled; the first block stays put (only relative order matters)."""
    rng = np.random.default_rng(seed)
    rows, width = features.shape
    per = max(1, CHUNK // max(rows * width, 1))
    out = []
    for lo in range(0, SHUFFLES, per):
        b = min(per, SHUFFLES - lo)
        stack = np.broadcast_to(features, (b, rows, width)).copy()
        for cols in blocks[1:]:
            order = rng.permuted(np.broadcast_to(np.arange(rows), (b, rows)), axis=1)
            stack[:, :, cols] = features[:, cols][order]
        r, n = _pairwise(stack)
        out.append(_z(r, n)[:, cross].max(axis=1, initial=0.0))
    return np.concatenate(out)


@dataclass
class _Stratum:
    """One part's table tested on its own: its pairs' r, n, |z| and its null draws."""

    name: str
    table: ParamTable
    cross: np.ndarray
    r: np.ndarray
    n: np.ndarray
    z: np.ndarray
    null: np.ndarray


def _stratum(name: str, table: ParamTable, seed: int) -> _Stratum:
    """Correlations within one part and the max-|z| of its shuffled tables."""
    n = len(table.keys)
    cross = _cross(table)
    rows = np.unique(np.linspace(0, n - 1, min(n, MAX_ROWS)).round().astype(int))
    features = _features(table.values[rows]).astype(np.float32)
    r, npair = _pairwise(features)
    k = len(table.names)
    blocks = [
        np.array(
            [c + part * k for part in range(3) for c, t in enumerate(table.transforms) if t == x]
        )
        for x in dict.fromkeys(table.transforms)
    ]
    from threadpoolctl import threadpool_limits

    # small products: OpenBLAS's threads only add wake-up stalls on busy cores (~1 s seen)
    with threadpool_limits(limits=1, user_api="blas"):
        null = _shuffled_max(features, blocks, cross, seed) if cross.any() else np.zeros(SHUFFLES)
    return _Stratum(name, table, cross, r, npair, _z(r, npair), null)


def independence(table: ParamTable, parts: dict[str, ParamTable] | None = None) -> dict[str, Any]:
    """The verdict: ``status`` ok | bad | unknown, a sentence, and the strongest pairs
    with their adjusted p-values (the chance that independent streams show a pair that
    strong anywhere among the pairs).

    ``parts``: a mixture's tables by part. The parts differ in size, crop and focal, so
    pooled draws correlate through the part (a confound, not a shared stream): the pairs
    are tested within each part, rows shuffled within their part, and the statistic is
    the largest |z| over every part's pairs (one test, ``ALPHA`` in all); a pair names its
    part. Without ``parts``: ``table`` is the one stratum."""
    strata = [
        _stratum(name, t, seed)
        for seed, (name, t) in enumerate((parts or {"": table}).items())
        if len(t.keys)
    ]
    n = sum(len(s.table.keys) for s in strata)
    pairs = sum(int(s.cross.sum()) for s in strata)
    within = " within each part" if parts else ""
    out: dict[str, Any] = {
        "samples": n,
        "pairs": pairs,
        "method": (
            f"permutation max-|z| test over all cross-transform pairs{within}, {SHUFFLES} shuffles"
        ),
        "alpha": ALPHA,
        "top": [],
    }
    if not pairs:
        return out | {
            "status": "unknown",
            "verdict": "no parameters of different transforms to compare",
        }
    null = np.max([s.null for s in strata], axis=0)
    threshold = float(np.quantile(null, 1 - ALPHA, method="higher"))

    def adjusted(value: float) -> float:
        return (1 + int((null >= value - 1e-9).sum())) / (SHUFFLES + 1)

    top = _top(strata, adjusted, named=bool(parts))
    out["top"] = top
    out["tested_samples"] = sum(min(len(s.table.keys), MAX_ROWS) for s in strata)
    out["z_threshold"] = round(threshold, 3) if math.isfinite(threshold) else None
    pair_n = float(np.median(np.concatenate([s.n[s.cross] for s in strata])))
    # the smallest |r| a typical pair must show to stand out (1: no pair can be judged)
    judged = pair_n >= MIN_PAIR and threshold > 0
    detectable = math.tanh(threshold / math.sqrt(pair_n - 3)) if judged else 1.0
    detectable = detectable if math.isfinite(detectable) else 1.0
    out["detectable_r"] = round(detectable, 3)
    out["p_value"] = adjusted(max(float(s.z[s.cross].max(initial=0.0)) for s in strata))
    out["suspicious"] = [p for p in top if p["p_adjusted"] <= ALPHA]
    return out | _verdict(out, top, detectable)


def _top(strata: list[_Stratum], adjusted: Any, named: bool) -> list[dict[str, Any]]:
    """The 8 strongest pairs over every stratum, each with its adjusted p-value (and its
    part when ``named``)."""
    found = []
    for s in strata:
        ii, jj = np.nonzero(s.cross)
        for i, j in zip(ii.tolist(), jj.tolist()):
            if not math.isnan(s.r[i, j]):
                found.append((-float(s.z[i, j]), s, i, j))
    top = []
    for _, s, i, j in sorted(found, key=lambda f: f[0])[:8]:
        pair = {"a": s.table.names[i], "b": s.table.names[j], "r": round(float(s.r[i, j]), 4)}
        pair |= {"n": int(s.n[i, j]), "p_adjusted": round(adjusted(float(s.z[i, j])), 4)}
        top.append(pair | ({"part": s.name} if named else {}))
    return top


def _verdict(out: dict[str, Any], top: list[dict[str, Any]], detectable: float) -> dict[str, str]:
    """status and sentence: dependent (p <= ALPHA), too few samples, or independent."""
    n, pairs, p_value = out["samples"], out["pairs"], out["p_value"]
    strongest = (
        f"{top[0]['a']} ~ {top[0]['b']}, r = {top[0]['r']:.3f} (n = {top[0]['n']})" if top else "—"
    )
    if top and top[0].get("part"):
        strongest = f"in part {top[0]['part']}, {strongest}"
    if p_value <= ALPHA:
        return {
            "status": "bad",
            "verdict": (
                f"DEPENDENT: {strongest}; p = {p_value:.3f} after accounting for all {pairs} "
                f"cross-transform pairs. The transforms' random draws are linked: do they "
                f"share a random stream (albumentations' Compose.set_random_seed)?"
            ),
        }
    if detectable > JUDGE_R:
        return {
            "status": "unknown",
            "verdict": (
                f"too few samples to judge: with {n} samples only |r| > {detectable:.2f} "
                f"would stand out from chance over {pairs} pairs (strongest: {strongest})"
            ),
        }
    return {
        "status": "ok",
        "verdict": (
            f"independent as far as {n} samples show: the strongest of {pairs} cross-"
            f"transform pairs, {strongest}, is within chance (p = {p_value:.2f}; |r| > "
            f"{detectable:.2f} would stand out)"
        ),
    }
