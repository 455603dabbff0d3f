"""The shard plan: which output positions a shard holds, which inputs (and copies) they
come from under ``output.order``, and the fingerprint of those inputs (resume refuses a
shard whose inputs changed). Light on purpose: the claim and the workers share it."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from pipeline.config.schema import Config
from pipeline.sources import Source


@dataclass(frozen=True)
class ShardTask:
    """Output samples ``start`` .. ``stop`` (exclusive) go into shard ``name``; the run
    reads ``inputs`` input samples (after ``source.limit``)."""

    index: int
    name: str
    start: int
    stop: int
    inputs: int


def position_of(index: int, copy: int, inputs: int, copies: int, order: str) -> int:
    """The output position of copy ``copy`` of input ``index``.

    ``spread`` (copy-major: every input's copy 0, then every input's copy 1 ...) puts the
    copies of one input ``inputs`` positions apart, so in different shards whenever there
    are at least ``shard_size`` inputs: a trainer's shuffle buffer over a few shards does
    not see one scene several times. ``grouped`` (input-major) keeps them side by side and
    reads each input once; ``spread`` reads each input once per copy.
    """
    return copy * inputs + index if order == "spread" else index * copies + copy


def input_runs(task: ShardTask, copies: int, order: str) -> list[tuple[int, int, range]]:
    """The inputs shard ``task`` reads, as runs ``(first, last, copies)``: inputs
    ``first`` .. ``last`` (exclusive) are read once each and these copies of each are
    written where ``position_of`` falls inside the shard."""
    if order != "spread":
        return [(task.start // copies, -(-task.stop // copies), range(copies))]
    n = task.inputs
    return [
        (max(task.start - c * n, 0), min(task.stop - c * n, n), range(c, c + 1))
        for c in range(task.start // n, -(-task.stop // n))
    ]


def plan(n_inputs: int, cfg: Config) -> list[ShardTask]:
    """Shards of ``shard_size`` output samples (``augment.copies`` per input, placed by
    ``output.order``: ``position_of``); this job's contiguous slice of them."""
    size, total = cfg.output.shard_size, n_inputs * cfg.augment.copies
    count = math.ceil(total / size)
    k, m = cfg.shard.index, cfg.shard.num_shards
    lo, hi = k * count // m, (k + 1) * count // m
    return [
        ShardTask(i, f"{cfg.output.prefix}-{i:06d}", i * size, min((i + 1) * size, total), n_inputs)
        for i in range(lo, hi)
    ]


def fingerprint(source: Source, task: ShardTask, copies: int, order: str) -> str:
    """A digest of the inputs shard ``task`` reads (``Source.inputs_fingerprint`` of each
    run of inputs)."""
    parts = [source.inputs_fingerprint(a, b) for a, b, _ in input_runs(task, copies, order)]
    if len(parts) == 1:
        return parts[0]
    return hashlib.sha256("+".join(parts).encode()).hexdigest()[:16]


def inputs(task: ShardTask, cfg: Config) -> str:
    """The input samples shard ``task`` reads, for messages: "input samples 0..31"."""
    runs = input_runs(task, cfg.augment.copies, cfg.output.order)
    return "input samples " + ", ".join(f"{a}..{b - 1}" for a, b, _ in runs)


def units(tasks: list[ShardTask], cfg: Config, workers: int) -> list[tuple[ShardTask, ...]]:
    """The units of work handed to workers, largest first: single shards, except under
    ``output.order=spread`` with ``augment.copies > 1``, where the shards of the different
    copies that read the same inputs go together (``ShardProcessor.fill_group`` reads each
    input once for all of them, instead of once per copy).

    A group takes the single-run shards whose first input falls in one window of
    ``m x shard_size`` inputs; a copy's shard may run past the window, so those inputs
    are read again by the next group (1.1-1.5x reads instead of ``copies``x); a group
    whose inputs the previous one reads anyway joins it. ``m`` (1-4) keeps at least ~3
    groups per worker, so that workers finish together. A shard that spans two copies (at
    most ``copies - 1`` of them) goes alone."""
    copies, order = cfg.augment.copies, cfg.output.order
    if order != "spread" or copies == 1 or not tasks:
        return [(t,) for t in tasks]
    size = cfg.output.shard_size
    window = size * max(1, min(4, tasks[0].inputs // (3 * max(workers, 1) * size)))
    groups: dict[int, list[ShardTask]] = {}
    alone: list[tuple[ShardTask, ...]] = []
    for task in tasks:
        runs = input_runs(task, copies, order)
        if len(runs) == 1:
            groups.setdefault(runs[0][0] // window, []).append(task)
        else:
            alone.append((task,))
    merged: list[list[ShardTask]] = []
    for _, group in sorted(groups.items()):
        if merged and _within(group, merged[-1], copies, order):  # reads nothing new
            merged[-1].extend(group)
        else:
            merged.append(group)
    out = [tuple(g) for g in merged] + alone
    return sorted(out, key=lambda u: -sum(t.stop - t.start for t in u))


def _within(group: list[ShardTask], other: list[ShardTask], copies: int, order: str) -> bool:
    """Whether every input ``group`` reads is read by ``other`` too."""

    def span(tasks: list[ShardTask]) -> tuple[int, int]:
        runs = [input_runs(t, copies, order)[0] for t in tasks]
        return min(r[0] for r in runs), max(r[1] for r in runs)

    (lo, hi), (olo, ohi) = span(group), span(other)
    return olo <= lo and hi <= ohi
