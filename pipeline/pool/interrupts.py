"""Ctrl-C and SIGTERM at every moment of a command: exit 130 / 143 with the one usual line.

A command installs ``install()`` first thing, so SIGTERM (preemption, ``kill``) raises
``Interrupted`` as Ctrl-C raises ``KeyboardInterrupt``, from its first line on; the
command's outermost frame turns either into the line and the exit code
(``exit_interrupted``), so an interrupt during the imports, the checks or the first sample
is no traceback. Helper processes (the workers' forkserver) are started with both signals
ignored (``ignored``): the disposition survives ``exec``, so they never print a traceback
of their own; the parent stops them.

Light on purpose: imported before anything else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

from pipeline.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install() -> None:
    """SIGTERM raises ``Interrupted`` (SIGINT keeps Python's ``KeyboardInterrupt``)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise)


def _raise(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def exit_interrupted(exc: KeyboardInterrupt) -> NoReturn:
    """The usual line for ``exc`` on stderr, then exit 128 + the signal number."""
    err = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
    _stop_forkserver()
    print(err, file=sys.stderr, flush=True)
    sys.exit(err.exit_code)


def _stop_forkserver() -> None:
    """The workers' forkserver may still be importing (it ignores the signal): stopped
    now, so that it does not hold the terminal (or a pipe's reader) for seconds more."""
    server = getattr(sys.modules.get("multiprocessing.forkserver"), "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if isinstance(pid, int):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        server._forkserver_pid = None  # type: ignore[union-attr]


@contextlib.contextmanager
def ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored meanwhile: processes started here inherit that (they
    never print a traceback of their own; the parent stops them). Both are also blocked
    here, so one that arrives in this window is not discarded (Linux never ignores a
    blocked signal): it stays pending and reaches the restored handler when the window
    ends (ignored alone, a Ctrl-C at that moment went unnoticed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
