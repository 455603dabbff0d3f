"""The plan of a mixture: how many samples each part gives (``counts``), which of its
inputs they are (``PartPlan.input_of``) and where they go (``Schedule``).

- Counts: ``num_samples`` shared out by weight with largest-remainder rounding (ties to
  the earlier part), after the parts with an explicit ``count``.
- Inputs: a part with fewer inputs than its count reads all of them in passes (pass
  ``r`` is the sample's repeat; a last partial pass takes a seeded subset); a part with
  more reads a seeded subset. Within a pass inputs are read in increasing order.
- Order: block by block (``shard_size``), each block holds every part's ideal share
  rounded down or up (so within 1 of weight x block size), the roundings chosen by the
  largest accumulated deficit so the totals come out exact; inside a block the parts are
  interleaved smoothly (each position goes to the part furthest behind its share).
Everything is a function of the config: workers rebuild the same plan.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np


def counts(total: int, weights: list[float], fixed: list[int | None]) -> list[int]:
    """Samples per part: ``fixed`` where given, the rest of ``total`` by ``weights``
    (largest remainder)."""
    rest = total - sum(c for c in fixed if c is not None)
    free = [i for i, c in enumerate(fixed) if c is None]
    out = [c if c is not None else 0 for c in fixed]
    wsum = sum(weights[i] for i in free)
    if not free or wsum <= 0 or rest <= 0:
        return out
    quotas = {i: rest * weights[i] / wsum for i in free}
    for i in free:
        out[i] = int(quotas[i])
    left = rest - sum(out[i] for i in free)
    for i in sorted(free, key=lambda i: (-(quotas[i] - int(quotas[i])), i))[:left]:
        out[i] += 1
    return out


@dataclass
class PartPlan:
    """Part ``name``: ``count`` samples from its ``inputs`` inputs (``seed`` picks the
    subset of a partial pass)."""

    name: str
    inputs: int
    count: int
    seed: int = 0
    _subset: np.ndarray | None = field(default=None, repr=False)

    @property
    def repeats(self) -> int:
        """Passes over the inputs (the most times one input is used)."""
        return -(-self.count // self.inputs) if self.inputs else 0

    def to_json(self) -> dict[str, int | float]:
        return {
            "inputs": self.inputs,
            "count": self.count,
            "repeats": self.repeats,
            "used": min(self.inputs, self.count),
        }

    def input_of(self, k: int) -> tuple[int, int]:
        """Sample ``k`` of this part: (its input index, its repeat)."""
        full, n = divmod(self.count, self.inputs)
        rep, i = divmod(k, self.inputs)
        if rep < full:
            return i, rep
        if self._subset is None:
            stream = np.random.SeedSequence([self.seed, zlib.crc32(self.name.encode())])
            perm = np.random.default_rng(stream).permutation(self.inputs)
            self._subset = np.sort(perm[:n])
        return int(self._subset[i]), rep


class Schedule:
    """The order of a mixture of ``counts`` samples in blocks of ``block``."""

    def __init__(self, part_counts: list[int], block: int) -> None:
        self.counts = list(part_counts)
        self.total = sum(self.counts)
        self.block = block
        self.starts = self._allocate()
        self._cached: tuple[int, list[tuple[int, int]]] | None = None

    def _allocate(self) -> list[list[int]]:
        """Per block, the first sample number of each part (and a last row of totals)."""
        c, n, size = self.counts, self.total, self.block
        taken = [0] * len(c)
        rows = [list(taken)]
        for a in range(0, n, size):
            b = min(a + size, n)
            if b == n:
                share = [ci - ti for ci, ti in zip(c, taken)]
            else:
                share = [(b - a) * ci // n for ci in c]
                # deficit x n after taking share: b*c - (taken + share)*n
                deficit = [b * ci - (ti + si) * n for ci, ti, si in zip(c, taken, share)]
                extra = (b - a) - sum(share)
                for i in sorted(range(len(c)), key=lambda i: (-deficit[i], i))[:extra]:
                    share[i] += 1
            taken = [t + s for t, s in zip(taken, share)]
            rows.append(list(taken))
        return rows

    def block_order(self, block: int) -> list[tuple[int, int]]:
        """(part, sample number of that part) for each position of block ``block``."""
        if self._cached is not None and self._cached[0] == block:
            return self._cached[1]
        first, after = self.starts[block], self.starts[block + 1]
        share = [b - a for a, b in zip(first, after)]
        size = sum(share)
        done = [0] * len(share)
        order = []
        for j in range(size):
            p = max(
                (i for i in range(len(share)) if done[i] < share[i]),
                key=lambda i: ((j + 1) * share[i] - done[i] * size, -i),
            )
            order.append((p, first[p] + done[p]))
            done[p] += 1
        self._cached = (block, order)
        return order

    def at(self, position: int) -> tuple[int, int]:
        """(part, sample number of that part) at mixture position ``position``."""
        block, j = divmod(position, self.block)
        return self.block_order(block)[j]

    def block_counts(self) -> list[list[int]]:
        """Samples of each part in each block."""
        return [[b - a for a, b in zip(r0, r1)] for r0, r1 in zip(self.starts, self.starts[1:])]
