"""The run's one progress display on stderr: a tqdm bar on a terminal, plain lines in a
log file (SLURM output, ``2> run.log``), where a redrawn bar would pile up ``\\r`` frames.

Both show the same rate: samples written by this run / seconds since the display began
(tqdm ``smoothing=0``), so the last in-flight figure is the final one; shards kept from
an earlier run count as done (``initial``) but not towards the rate. ``seconds()`` is
the display's time, frozen when it closes: the run's summary line and
``dataset_info.json`` (``timings.data_s``) report that same time and rate.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any, Protocol

DESC = "depth-pipeline"
MIN_COLUMNS = 20  # a pty that reports fewer (often 0: CI, `docker exec -t`) gets 80
LOG_INTERVAL = 30.0  # seconds between lines in a log file


class Progress(Protocol):
    """What the pool drives: ``n`` done so far, ``update`` by a count, ``close``; and
    ``seconds`` since the display began (until it closed)."""

    n: int

    def update(self, n: int = 1) -> Any: ...

    def close(self) -> None: ...

    def seconds(self) -> float: ...


class _Clock:
    """Seconds since creation, frozen at ``stop``."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.end: float | None = None

    def stop(self) -> None:
        if self.end is None:
            self.end = time.monotonic()

    def seconds(self) -> float:
        return (self.end if self.end is not None else time.monotonic()) - self.start


def progress_bar(
    total: int, enabled: bool, initial: int = 0, file: IO[str] | None = None
) -> Progress:
    """A display of ``total`` samples, ``initial`` of them already done."""
    from tqdm import tqdm

    class Bar(tqdm):
        """tqdm with the display's own time (also when disabled: tqdm keeps none then)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.clock = _Clock()
            super().__init__(*args, **kwargs)

        def close(self) -> None:
            clock = self.__dict__.get("clock")  # None: a Ctrl-C landed before __init__ set it
            if clock is not None:
                clock.stop()
            super().close()

        def seconds(self) -> float:
            return self.clock.seconds()

    stream = file or sys.stderr
    if enabled and not _is_tty(stream):
        return LogProgress(total, initial, stream)
    sized = _reports_width(stream)  # else tqdm would draw for -1 columns
    bar: Progress = Bar(
        total=total,
        initial=initial,
        unit="sample",
        disable=not enabled,
        dynamic_ncols=sized,  # follow resizes
        ncols=None if sized else 79,
        smoothing=0,
        file=stream,
        desc=DESC,
    )
    return bar


class LogProgress:
    """Whole lines at most every ``interval`` seconds, and the last one once, at close."""

    def __init__(
        self, total: int, initial: int, file: IO[str], interval: float = LOG_INTERVAL
    ) -> None:
        self.total, self.initial, self.n = total, initial, initial
        self.file, self.interval = file, interval
        self.clock = _Clock()
        self.last = self.clock.start
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if n and self.n < self.total and now - self.last >= self.interval:
            self.last = now
            self._line(now)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.clock.stop()
            self._line(time.monotonic())

    def seconds(self) -> float:
        return self.clock.seconds()

    def _line(self, now: float) -> None:
        elapsed = self.clock.seconds()
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        pct = 100 * self.n / self.total if self.total else 100.0
        print(
            f"{DESC}: {self.n}/{self.total} samples ({pct:.0f}%) in {elapsed:.1f} s, "
            f"{rate:.1f} samples/s",
            file=self.file,
            flush=True,
        )


def _is_tty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _reports_width(stream: IO[str]) -> bool:
    """Whether the terminal reports a usable width (a fresh pty reports 0 columns)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns >= MIN_COLUMNS
    except (AttributeError, ValueError, OSError):
        return False
