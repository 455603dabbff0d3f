"""The last resort: anything unexpected becomes one line on stderr (what failed, while
doing what, where the full traceback went) and exit code 2.

Expected failures are ``PipelineError`` lines worded where they happen. Anything else is
either a bug in depth-pipeline or an input nobody foresaw; its traceback is written to
the run's log (Hydra's ``<run dir>/<job>.log``; a temporary file when there is none) and
shown on stderr only with ``DEPTH_PIPELINE_DEBUG=1``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
import traceback

DEBUG_ENV = "DEPTH_PIPELINE_DEBUG"
# a disk that cannot take a file: full, over quota, read-only, not ours
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
_step = ["starting"]
# exception class names (matched along the class hierarchy and the cause chain) that mean
# the endpoint stopped answering: botocore's, aiohttp's
NETWORK_ERRORS = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                  "ClientConnectorError", "ServerDisconnectedError"}  # fmt: skip


def step(what: str) -> None:
    """Say what the run is doing now, for the one line if something unexpected fails."""
    _step[0] = what


def debugging() -> bool:
    """True when tracebacks should reach the terminal (``DEPTH_PIPELINE_DEBUG=1``)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def one_line(exc: BaseException) -> str:
    """Save the traceback of ``exc``; return the line to print (without ``error: ``)."""
    unreachable = endpoint_line(exc)
    if unreachable is not None:
        return unreachable
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:  # the disk, not a bug
        return (
            f"cannot write {exc.filename or 'a file'} ({exc.strerror}) while {_step[0]}: the "
            f"disk is full or read-only, or the folder is not writable by this user; free "
            f"space or make it writable, then re-run the same command"
        )
    where = save_traceback(exc)
    text = " ".join(str(exc).split()) or "(no message)"
    if len(text) > 200:
        text = text[:197] + "..."
    return (
        f"unexpected {type(exc).__name__} while {_step[0]}: {text}; the full traceback is in "
        f"{where} ({DEBUG_ENV}=1 prints it here). If the input is not at fault, this is a "
        f"bug in depth-pipeline: please report it with that traceback"
    )


def endpoint_line(exc: BaseException) -> str | None:
    """One line for an object store that stopped answering (botocore's
    ``EndpointConnectionError``, aiohttp's connector errors, a refused connection),
    naming the endpoint; None for anything else."""
    seen: BaseException | None = exc
    while seen is not None:
        names = {c.__name__ for c in type(seen).__mro__}
        if names & NETWORK_ERRORS:
            kwargs = getattr(seen, "kwargs", None) or {}
            endpoint = kwargs.get("endpoint_url") or str(getattr(seen, "host", "") or "")
            text = " ".join(str(seen).split()) or type(seen).__name__
            return (
                f"lost the connection to the object store{f' at {endpoint}' if endpoint else ''}"
                f" while {_step[0]} ({text}); check that the endpoint is up and reachable "
                f"(output.endpoint_url, AWS_ENDPOINT_URL), then re-run the same command to "
                f"resume (finished shards are kept)"
            )
        seen = seen.__cause__ or seen.__context__
    return None


def disk_error(exc: BaseException) -> OSError | None:
    """The OSError of a full, read-only or forbidden disk that ``exc`` is or was raised
    from (``logging.config`` turns a log file that cannot be opened into a ValueError)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_ERRNOS:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def run_dir_line(exc: OSError, args: list[str]) -> str:
    """One line for Hydra failing to write its run directory (config copies, logs)."""
    given = [a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")]
    where = f"hydra.run.dir={given[-1]}" if given else "hydra.run.dir"
    name = f"{exc.filename} " if exc.filename else ""
    fix = "free space there" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "make it writable"
    return (
        f"cannot write Hydra's run directory {name}({where}: {exc.strerror or exc}); {fix} "
        f"or point hydra.run.dir at a writable folder (e.g. hydra.run.dir=/tmp/depth-runs/x)"
    )


def save_traceback(exc: BaseException) -> str:
    """Write the traceback into the log files of the root logger (the run's log under
    Hydra), else into a new temporary file; return where it went."""
    files = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.FileHandler) and h.stream is not None and not h.stream.closed
    ]
    try:
        return _save(exc, files)
    except OSError as err:  # a full or read-only disk: the line still goes out
        return f"nowhere (it could not be written: {err.strerror or err})"


def _save(exc: BaseException, files: list[logging.FileHandler]) -> str:
    """Into the log ``files`` if they take it, else a temporary file."""
    written = []
    for handler in files:
        with contextlib.suppress(OSError):  # a failing stream raises on flush
            handler.handle(record_of(exc))
            handler.flush()
            written.append(handler.baseFilename)
    if written:
        return written[0]
    fd, path = tempfile.mkstemp(prefix="depth-pipeline-traceback-", suffix=".txt")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"unexpected error while {_step[0]}\n")
        fh.write("".join(traceback.format_exception(exc)))
    return path


def record_of(exc: BaseException) -> logging.LogRecord:
    """The log record carrying the traceback of ``exc``."""
    return logging.LogRecord(
        "pipeline",
        logging.ERROR,
        __file__,
        0,
        f"unexpected error while {_step[0]}",
        None,
        (type(exc), exc, exc.__traceback__),
    )


def quiet_logging() -> None:
    """A log file that cannot be written (a full or read-only disk) costs the log, never
    the run's one line: no "--- Logging error ---" tracebacks on stderr."""
    logging.raiseExceptions = False
