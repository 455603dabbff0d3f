"""Hydra's ``override_dirname`` made a safe, readable directory name (the ``dirname``
resolver of ``conf/config.yaml``: default output and sweep directories)."""

from __future__ import annotations

import hashlib
import re

# One override `key=value` whose name is its plain transliteration ('=' -> '-', ',' -> '_'):
# neither part contains '-' and values contain no '_', so the name can be read back.
_PLAIN_ITEM = r"[A-Za-z0-9_.]+=[A-Za-z0-9.]+"
_PLAIN = re.compile(rf"{_PLAIN_ITEM}(,{_PLAIN_ITEM})*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_DIRNAME = 120


def dirname(overrides: str) -> str:
    """A readable, shell-safe directory name for Hydra's ``override_dirname`` ("default"
    when there are none): only ``A-Za-z0-9._-``, the same for the same overrides (resume),
    different for different ones.

    ``a=1,b=x`` becomes ``a-1_b-x``; that mapping can be read back when every key and
    value is plain (letters, digits, ``.``; keys also ``_``). Anything else (paths, quotes,
    lists, ``+``/``~``, negative numbers) is transliterated for reading and gets ``--`` and
    a hash of the exact overrides, which a plain name never contains; names longer than
    ``MAX_DIRNAME`` are cut before the hash.
    """
    if not overrides:
        return "default"
    if _PLAIN.fullmatch(overrides) and len(overrides) <= MAX_DIRNAME:
        return overrides.replace("=", "-").replace(",", "_")
    digest = hashlib.sha256(overrides.encode()).hexdigest()[:10]
    readable = _UNSAFE.sub("_", "_".join(_readable(item) for item in _items(overrides)))
    readable = readable.strip("_.-")[: MAX_DIRNAME - len(digest) - 2].rstrip("_.-")
    return f"{readable}--{digest}" if readable else digest


def _items(overrides: str) -> list[str]:
    """``override_dirname`` split at the commas between overrides (not inside [] or {})."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(overrides):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth <= 0:
            items.append(overrides[start:i])
            start = i + 1
    return [*items, overrides[start:]]


def _readable(item: str) -> str:
    """One override for reading: ``~key`` -> ``key-deleted``; ``+``, quotes and brackets
    dropped; ``=`` -> ``-``; list commas -> ``-``; ``/`` and the rest -> ``_``."""
    if item.startswith("~"):
        return item.lstrip("~").split("=")[0] + "-deleted"
    key, _, value = item.lstrip("+").partition("=")
    value = re.sub(r"[\[\]{}()'\" ]", "", value).replace(",", "-").replace("/", "_")
    return f"{key}-{value}"
