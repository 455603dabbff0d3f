"""Every path built from config or data stays inside ``output.dir``, and ``output.dir``
never touches the input.

Names from the config (``source.split``, ``output.prefix``) become file names and key
parts: plain names only. Sample keys become paths below ``output.dir`` (``image/{key}.png``,
tar members ``{key}.png``): '/'-separated parts of letters, digits, '_' and '-', so no
``..``, no absolute path, no '.' (webdataset splits a member name at its first '.') and no
part starting with ``__`` (webdataset's own fields, ``__key__``). ``output.dir`` may
not be, contain or lie inside a local path the source reads (symlinks resolved).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from pipeline.errors import PipelineError

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_KEY_PART = re.compile(r"[A-Za-z0-9_-]+")


def check_name(value: str, key: str, dots: bool = True) -> None:
    """Refuse a config value used as a file name (``dots``) or a key part that is not a
    plain name."""
    if not _NAME.fullmatch(value) or ".." in value or (not dots and "." in value):
        allowed = "letters, digits, '_', '-'" + (", '.'" if dots else "")
        raise PipelineError(
            f"{key}={value!r} must be a plain name ({allowed}; no '/', no '..', not "
            f"starting with '.' or '-'): it names files inside output.dir"
        )


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a safe sample key, or None if it is."""
    parts = key.split("/")
    if not key or not all(_KEY_PART.fullmatch(p) for p in parts):
        return (
            f"sample key {key!r} is not safe as a file name: use '/'-separated parts of "
            f"letters, digits, '_' and '-' (no '..', no leading '/', no '.')"
        )
    if any(p.startswith("__") for p in parts):
        return f"sample key {key!r} has a part starting with '__' (reserved by webdataset)"
    return None


def output_dir(value: str) -> Path:
    """``output.dir`` as a path: ``~`` expanded, an empty value refused."""
    if not value.strip():
        raise PipelineError("output.dir is empty; give the directory to write the dataset into")
    path = Path(os.path.expanduser(value))
    if str(path).startswith("~"):
        raise PipelineError(
            f"output.dir={value}: cannot expand '~' (no such user); give the directory in full"
        )
    return path


def check_apart(out: Path, inputs: Iterable[Path]) -> None:
    """Refuse an ``output.dir`` equal to, inside or containing a path the source reads
    (each resolved, symlinks followed: a link into ``output.dir`` is inside it)."""
    target = out.resolve()
    prefix = f"{target.as_posix().rstrip('/')}/"
    for given in inputs:
        src = given.resolve()
        if target == src:
            how = "is"
        elif src in target.parents:
            how = "is inside"
        elif src.as_posix().startswith(prefix):
            how = "contains"
        else:
            continue
        raise PipelineError(
            f"output.dir={out} {how} the source ({given}"
            f"{f' = {src}' if str(src) != str(given) else ''}): writing or replacing a "
            f"dataset there could delete or mix the input; choose an output.dir outside it"
        )
