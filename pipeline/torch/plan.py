"""An epoch's global order of batches, from (seed, epoch) alone: never from the number of
ranks or loader workers, so a job resumed on another world size continues the same epoch.

Positions are read shard by shard (the shard order and the samples within a shard are
shuffled), so a worker's next shards are known and prefetched. ``group`` keys (a part, or
an output size) make one-group batches; read-time ``weights`` (by part) replace the
written proportions:

- without weights, every written sample comes exactly once per epoch (sampling without
  replacement); one-group batches are interleaved in a random order, each group keeping
  its own order; the last batch of a group may be short;
- with weights, the epoch holds ``epoch_samples`` samples (default: as many as written);
  each batch (``group_by`` part) or each sample draws its part by weight, and takes the
  next sample of that part's stream, which goes through the part without replacement and
  starts a new shuffled pass when it runs out (so a small part repeats, with replacement
  across passes).

A shuffled or weighted list is then cut into ``lanes`` runs of consecutive batches
(near-equal lengths, each reading a few neighbouring shards) dealt round robin: batch
``j`` is from run ``j % lanes`` (MosaicML streaming's "canonical nodes" idea). Without
shuffle or weights the epoch is the written order.

The global list is split as ``remaining[rank::world_size]`` for a rank and that rank's
list as ``[worker::num_workers]`` for a loader worker: ``DataLoader`` takes its workers'
outputs round robin, so each rank sees its batches in global order. When the readers
(``world_size x num_workers``) divide ``lanes``, reader ``s`` gets runs ``s, s +
readers, ...``: their own stretch of shards, fetched and checked by them alone (but a
shard where two runs meet). Any other number of readers reads the same order, sharing
more shards.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.errors import PipelineError


@dataclass(frozen=True)
class Layout:
    """What the plan needs of a dataset: per position its shard, part and group."""

    shards: Sequence[int]
    parts: Sequence[str]
    groups: Sequence[Hashable]


def _shuffled(positions: list[int], shards: Sequence[int], rng: np.random.Generator) -> list[int]:
    """``positions`` grouped by shard, the shards and each shard's samples in random order."""
    by_shard: dict[int, list[int]] = {}
    for p in positions:
        by_shard.setdefault(shards[p], []).append(p)
    out: list[int] = []
    for shard in rng.permutation(sorted(by_shard)):
        out.extend(int(p) for p in rng.permutation(by_shard[int(shard)]))
    return out


def _ordered(positions: list[int], shards: Sequence[int], rng: np.random.Generator | None):
    return positions if rng is None else _shuffled(positions, shards, rng)


def epoch_batches(
    layout: Layout,
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    weights: dict[str, float] | None = None,
    by_group: bool = False,
    epoch_samples: int | None = None,
    lanes: int = 1,
) -> list[list[int]]:
    """The epoch's batches of dataset positions, in global order."""
    rng = np.random.default_rng([seed, epoch]) if shuffle else None
    n = len(layout.shards)
    if weights:
        walk = _weighted(layout, batch_size, seed, epoch, weights, by_group, epoch_samples or n)
    else:
        walk = _walk(layout, batch_size, rng, by_group)
    return interleave(walk, lanes) if shuffle or weights else walk


def interleave(batches: list[list[int]], lanes: int) -> list[list[int]]:
    """``batches`` cut into ``lanes`` runs of consecutive batches (the longer runs first,
    so every round but the last holds one batch of each run), dealt round robin."""
    lanes = max(1, min(lanes, len(batches)))
    q, longer = divmod(len(batches), lanes)
    starts = np.cumsum([0] + [q + 1] * longer + [q] * (lanes - longer))
    runs = [batches[starts[k] : starts[k + 1]] for k in range(lanes)]
    return [run[r] for r in range(q + (longer > 0)) for run in runs if r < len(run)]


def _walk(
    layout: Layout, batch_size: int, rng: np.random.Generator | None, by_group: bool
) -> list[list[int]]:
    """Every written sample once, shard after shard (shuffled), cut into batches."""
    n = len(layout.shards)
    everything = _ordered(list(range(n)), layout.shards, rng)
    if not by_group:
        return [everything[i : i + batch_size] for i in range(0, n, batch_size)]
    members: dict[Hashable, list[int]] = {}
    for p in everything:
        members.setdefault(layout.groups[p], []).append(p)
    queues = {
        g: [ps[i : i + batch_size] for i in range(0, len(ps), batch_size)]
        for g, ps in members.items()
    }
    labels = [g for g, q in queues.items() for _ in q]
    if rng is not None:
        labels = [labels[i] for i in rng.permutation(len(labels))]
    at = dict.fromkeys(queues, 0)
    out = []
    for g in labels:
        out.append(queues[g][at[g]])
        at[g] += 1
    return out


def _weighted(
    layout: Layout,
    batch_size: int,
    seed: int,
    epoch: int,
    weights: dict[str, float],
    by_part: bool,
    samples: int,
) -> list[list[int]]:
    parts = list(dict.fromkeys(layout.parts))
    names = list(weights)
    p = np.asarray([weights[name] for name in names], dtype=float)
    p = p / p.sum()
    members = {name: [i for i, part in enumerate(layout.parts) if part == name] for name in parts}
    streams = {name: _Cycle(members[name], layout.shards, [seed, epoch, k + 1])
               for k, name in enumerate(names)}  # fmt: skip
    rng = np.random.default_rng([seed, epoch, 0])
    n_batches = math.ceil(samples / batch_size)
    out = []
    for b in range(n_batches):
        size = min(batch_size, samples - b * batch_size)
        if by_part:
            name = names[int(rng.choice(len(names), p=p))]
            out.append([streams[name].next() for _ in range(size)])
        else:
            drawn = rng.choice(len(names), size=size, p=p)
            out.append([streams[names[int(k)]].next() for k in drawn])
    return out


class _Cycle:
    """One part's samples, shuffled pass after pass."""

    def __init__(self, positions: list[int], shards: Sequence[int], entropy: list[int]) -> None:
        self.positions, self.shards, self.entropy = positions, shards, entropy
        self.passes, self.order, self.at = 0, [], 0

    def next(self) -> int:
        if self.at >= len(self.order):
            rng = np.random.default_rng([*self.entropy, self.passes])
            self.order, self.at, self.passes = (
                _shuffled(self.positions, self.shards, rng),
                0,
                self.passes + 1,
            )
        self.at += 1
        return self.order[self.at - 1]


def check_weights(weights: dict[str, float] | None, parts: list[str]) -> dict[str, float] | None:
    """Read-time weights by part, checked against the dataset's parts (one line if not)."""
    if not weights:
        return None
    unknown = sorted(set(weights) - set(parts))
    if unknown:
        raise PipelineError(
            f"weights: no part named {', '.join(unknown)} in this dataset (its parts: "
            f"{', '.join(parts) or 'none: it is not a mixture'}); name only its parts"
        )
    bad = [name for name, w in weights.items() if not (isinstance(w, int | float) and w >= 0)]
    if bad or sum(weights.values()) <= 0:
        raise PipelineError(
            f"weights: {bad[0] if bad else 'all'} must be non-negative numbers with a "
            f"positive sum, e.g. weights={{'nyu': 0.5, 'kitti': 0.5}}"
        )
    return {name: float(w) for name, w in weights.items() if w > 0}


def share(
    batches: list[list[int]], rank: int, world_size: int, consumed: int = 0
) -> list[list[int]]:
    """A rank's batches once ``consumed`` global batches have been trained on."""
    return batches[consumed:][rank::world_size]
