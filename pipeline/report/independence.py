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


def _shuffled_max(features: np.ndarray, blocks: list[np.ndarray], cross: np.ndarray) -> np.ndarray:
    """The max-|z| statistic over ``SHUFFLES`` tables whose transform blocks (columns of
    ``features``) are shuffled; the first block stays put (only relative order matters)."""
    rng = np.random.default_rng(0)
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


def independence(table: ParamTable) -> dict[str, Any]:
    """The verdict: ``status`` ok | bad | unknown, a sentence, and the strongest pairs
    with their adjusted p-values (the chance that independent streams show a pair that
    strong anywhere among the pairs).

    Longer than 60 lines: one statistical test read top to bottom (pairs,
    correlations, the multiple-comparison bound, the verdict)."""
    n = len(table.keys)
    cross = _cross(table)
    out: dict[str, Any] = {
        "samples": n,
        "pairs": int(cross.sum()),
        "method": f"permutation max-|z| test over all cross-transform pairs, {SHUFFLES} shuffles",
        "alpha": ALPHA,
        "top": [],
    }
    if not cross.any():
        return out | {
            "status": "unknown",
            "verdict": "no parameters of different transforms to compare",
        }
    rows = np.unique(np.linspace(0, n - 1, min(n, MAX_ROWS)).round().astype(int))
    features = _features(table.values[rows]).astype(np.float32)
    r, npair = _pairwise(features)
    z = _z(r, npair)
    order = np.argsort(-z[cross], kind="stable")
    ii, jj = np.nonzero(cross)
    transforms = list(dict.fromkeys(table.transforms))
    k = len(table.names)
    blocks = [
        np.array(
            [c + part * k for part in range(3) for c, t in enumerate(table.transforms) if t == name]
        )
        for name in transforms
    ]
    from threadpoolctl import threadpool_limits

    # small products: OpenBLAS's threads only add wake-up stalls on busy cores (~1 s seen)
    with threadpool_limits(limits=1, user_api="blas"):
        null = _shuffled_max(features, blocks, cross)
    threshold = float(np.quantile(null, 1 - ALPHA, method="higher"))

    def adjusted(value: float) -> float:
        return (1 + int((null >= value - 1e-9).sum())) / (SHUFFLES + 1)

    top = []
    for idx in order[:8]:
        i, j = int(ii[idx]), int(jj[idx])
        if math.isnan(r[i, j]):
            continue
        top.append(
            {
                "a": table.names[i],
                "b": table.names[j],
                "r": round(float(r[i, j]), 4),
                "n": int(npair[i, j]),
                "p_adjusted": round(adjusted(float(z[i, j])), 4),
            }
        )
    out["top"] = top
    out["tested_samples"] = int(rows.size)
    out["z_threshold"] = round(threshold, 3) if math.isfinite(threshold) else None
    pair_n = np.median(npair[cross]) if cross.any() else 0
    # the smallest |r| a typical pair must show to stand out (1: no pair can be judged)
    judged = pair_n >= MIN_PAIR and threshold > 0
    detectable = math.tanh(threshold / math.sqrt(pair_n - 3)) if judged else 1.0
    detectable = detectable if math.isfinite(detectable) else 1.0
    out["detectable_r"] = round(detectable, 3)
    out["p_value"] = adjusted(float(z[cross].max(initial=0.0)))
    out["suspicious"] = [p for p in top if p["p_adjusted"] <= ALPHA]
    return out | _verdict(out, top, detectable)


def _verdict(out: dict[str, Any], top: list[dict[str, Any]], detectable: float) -> dict[str, str]:
    """status and sentence: dependent (p <= ALPHA), too few samples, or independent."""
    n, pairs, p_value = out["samples"], out["pairs"], out["p_value"]
    strongest = (
        f"{top[0]['a']} ~ {top[0]['b']}, r = {top[0]['r']:.3f} (n = {top[0]['n']})" if top else "—"
    )
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
