"""The shard plan: which output positions a shard holds, which inputs (and copies) they
come from under ``output.order``, and the fingerprint of those inputs (resume refuses a
shard whose inputs changed). Light on purpose: the claim and the workers share it."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

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
    count: int = 1  # shards in the whole plan (a parquet file is named NNNNN-of-count)


@dataclass(frozen=True)
class Placement:
    """Where output samples go: ``copies`` per input placed by ``order`` (``spread`` or
    ``grouped``), ``shard_size`` per shard named ``{prefix}-NNNNNN``, and this job's slice
    ``index`` of ``num_shards``. Built once from the config (``of``); the plan, the claim
    and the workers ask it instead of reading the config's keys."""

    copies: int = 1
    order: str = "spread"
    shard_size: int = 32
    prefix: str = "train"
    index: int = 0
    num_shards: int = 1

    @classmethod
    def of(cls, cfg: Config) -> Placement:
        out, shard = cfg.output, cfg.shard
        order = str(getattr(out.order, "value", out.order))
        return cls(cfg.augment.copies, order, out.shard_size, out.prefix, shard.index,
                   shard.num_shards)  # fmt: skip

    def position_of(self, index: int, copy: int, inputs: int) -> int:
        """The output position of copy ``copy`` of input ``index``.

        ``spread`` (copy-major: every input's copy 0, then every input's copy 1 ...) puts
        the copies of one input ``inputs`` positions apart, so in different shards whenever
        there are at least ``shard_size`` inputs: a trainer's shuffle buffer over a few
        shards does not see one scene several times. ``grouped`` (input-major) keeps them
        side by side and reads each input once; ``spread`` reads each input once per copy.
        """
        return copy * inputs + index if self.order == "spread" else index * self.copies + copy

    def input_runs(self, task: ShardTask) -> list[tuple[int, int, range]]:
        """The inputs shard ``task`` reads, as runs ``(first, last, copies)``: inputs
        ``first`` .. ``last`` (exclusive) are read once each and these copies of each are
        written where ``position_of`` falls inside the shard."""
        copies = self.copies
        if self.order != "spread":
            return [(task.start // copies, -(-task.stop // copies), range(copies))]
        n = task.inputs
        return [
            (max(task.start - c * n, 0), min(task.stop - c * n, n), range(c, c + 1))
            for c in range(task.start // n, -(-task.stop // n))
        ]

    def plan(self, n_inputs: int) -> Plan:
        """Shards of ``shard_size`` output samples (``copies`` per input, placed by
        ``position_of``); this job's contiguous slice of them, made on demand."""
        size, total = self.shard_size, n_inputs * self.copies
        count = math.ceil(total / size)
        k, m = self.index, self.num_shards
        return Plan(self.prefix, size, total, n_inputs, k * count // m, (k + 1) * count // m)

    def fingerprint(self, source: Source, task: ShardTask) -> str:
        """A digest of the inputs shard ``task`` reads (``Source.inputs_fingerprint`` of
        each run of inputs)."""
        parts = [source.inputs_fingerprint(a, b) for a, b, _ in self.input_runs(task)]
        if len(parts) == 1:
            return parts[0]
        return hashlib.sha256("+".join(parts).encode()).hexdigest()[:16]

    def inputs(self, task: ShardTask) -> str:
        """The input samples shard ``task`` reads, for messages: "input samples 0..31"."""
        runs = self.input_runs(task)
        return "input samples " + ", ".join(f"{a}..{b - 1}" for a, b, _ in runs)

    def units(self, tasks: Sequence[ShardTask], workers: int) -> Sequence[tuple[ShardTask, ...]]:
        """The units of work handed to workers, largest first: single shards, except under
        ``order=spread`` with ``copies > 1``, where the shards of the different copies
        that read the same inputs go together (``ShardProcessor.fill_group`` reads each
        input once for all of them, instead of once per copy).

        A group takes the single-run shards whose first input falls in one window of
        ``m x shard_size`` inputs; a copy's shard may run past the window, so those inputs
        are read again by the next group (1.1-1.5x reads instead of ``copies``x); a group
        whose inputs the previous one reads anyway joins it. ``m`` (1-4) keeps at least ~3
        groups per worker, so that workers finish together. A shard that spans two copies
        (at most ``copies - 1`` of them) goes alone."""
        if self.order != "spread" or self.copies == 1 or not tasks:
            return Singles(tasks)
        size = self.shard_size
        window = size * max(1, min(4, tasks[0].inputs // (3 * max(workers, 1) * size)))
        groups: dict[int, list[ShardTask]] = {}
        alone: list[tuple[ShardTask, ...]] = []
        for task in tasks:
            runs = self.input_runs(task)
            if len(runs) == 1:
                groups.setdefault(runs[0][0] // window, []).append(task)
            else:
                alone.append((task,))
        merged: list[list[ShardTask]] = []
        for _, group in sorted(groups.items()):
            if merged and self._within(group, merged[-1]):  # reads nothing new
                merged[-1].extend(group)
            else:
                merged.append(group)
        out = [tuple(g) for g in merged] + alone
        return sorted(out, key=lambda u: -sum(t.stop - t.start for t in u))

    def _within(self, group: list[ShardTask], other: list[ShardTask]) -> bool:
        """Whether every input ``group`` reads is read by ``other`` too."""

        def span(tasks: list[ShardTask]) -> tuple[int, int]:
            runs = [self.input_runs(t)[0] for t in tasks]
            return min(r[0] for r in runs), max(r[1] for r in runs)

        (lo, hi), (olo, ohi) = span(group), span(other)
        return olo <= lo and hi <= ohi


class Plan(Sequence[ShardTask]):
    """This job's shards, made on demand: a billion samples plan in no time and no memory.

    ``name in plan`` asks whether a shard of that name is one of this job's (the claim
    and the clean-up ask it about the files they find, instead of listing every name)."""

    def __init__(self, prefix: str, size: int, total: int, inputs: int, lo: int, hi: int):
        self.prefix, self.size, self.total, self.inputs = prefix, size, total, inputs
        self.lo, self.hi = lo, hi

    def __len__(self) -> int:
        return self.hi - self.lo

    @overload
    def __getitem__(self, i: int) -> ShardTask: ...
    @overload
    def __getitem__(self, i: slice) -> list[ShardTask]: ...
    def __getitem__(self, i: int | slice) -> ShardTask | list[ShardTask]:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.task(self.lo + i)

    def __iter__(self) -> Iterator[ShardTask]:
        return (self.task(i) for i in range(self.lo, self.hi))

    def __contains__(self, item: object) -> bool:
        name = item.name if isinstance(item, ShardTask) else item
        return isinstance(name, str) and self.named(name) is not None

    def task(self, i: int) -> ShardTask:
        """Shard number ``i`` of the whole plan."""
        start = i * self.size
        stop, count = min(start + self.size, self.total), -(-self.total // self.size)
        return ShardTask(i, f"{self.prefix}-{i:06d}", start, stop, self.inputs, count)

    def named(self, name: str) -> ShardTask | None:
        """This job's shard called ``name``, if there is one."""
        head, sep, number = name.rpartition("-")
        if head != self.prefix or not sep or not number.isdigit():
            return None
        i = int(number)
        if not self.lo <= i < self.hi or name != f"{self.prefix}-{i:06d}":
            return None
        return self.task(i)

    @property
    def samples(self) -> int:
        """Output samples of this job's shards."""
        return max(0, min(self.hi * self.size, self.total) - self.lo * self.size)


class Remaining(Sequence[ShardTask]):
    """The shards of ``plan`` not in ``done`` (by name), in plan order, made on demand."""

    def __init__(self, plan: Sequence[ShardTask], done: Container[str]) -> None:
        self.plan, self.done = plan, done
        self.count = len(plan) - sum(1 for name in done if name in plan)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[ShardTask]:
        return (t for t in self.plan if t.name not in self.done)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        if i == 0 or i == -len(self) or isinstance(i, slice):
            return list(self)[i] if isinstance(i, slice) else next(iter(self))
        raise IndexError("Remaining gives its first shard only; iterate it")

    def __contains__(self, item: object) -> bool:
        name = item.name if isinstance(item, ShardTask) else item
        return name in self.plan and name not in self.done


class Singles(Sequence[tuple[ShardTask, ...]]):
    """Units of one shard each, in plan order, made on demand (the shards are of equal
    size but the last: plan order is largest first)."""

    def __init__(self, tasks: Sequence[ShardTask]) -> None:
        self.tasks = tasks

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[tuple[ShardTask, ...]]:
        return ((t,) for t in self.tasks)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        if isinstance(i, slice):
            return [(t,) for t in self.tasks[i]]
        return (self.tasks[i],)
