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
KEEP = 12  # a value this short is never cut when a name is shortened


def dirname(overrides: str) -> str:
    """A readable, shell-safe directory name for Hydra's ``override_dirname`` ("default"
    when there are none): only ``A-Za-z0-9._-``, the same for the same overrides (resume),
    different for different ones.

    ``a=1,b=x`` becomes ``a-1_b-x``; that mapping can be read back when every key and
    value is plain (letters, digits, ``.``; keys also ``_``). Anything else (paths, quotes,
    lists, ``+``/``~``, negative numbers) is transliterated for reading and gets ``--`` and
    a hash of the exact overrides, which a plain name never contains; names longer than
    ``MAX_DIRNAME`` are shortened before the hash so that every value survives (a sweep's
    jobs differ in a value: ``brightness_limit-0.2``): keys lose their leading dotted
    components first (down to the shortest suffix that still tells them apart), then
    long values keep their tails; only then is the name cut.
    """
    if not overrides:
        return "default"
    if _PLAIN.fullmatch(overrides) and len(overrides) <= MAX_DIRNAME:
        return overrides.replace("=", "-").replace(",", "_")
    digest = hashlib.sha256(overrides.encode()).hexdigest()[:10]
    budget = MAX_DIRNAME - len(digest) - 2
    pairs = [_readable(item) for item in _items(overrides)]
    readable = _joined(pairs)
    if len(readable) > budget:
        readable = _joined(_short_values(_short_keys(pairs), budget))
    readable = readable[:budget].rstrip("_.-")
    return f"{readable}--{digest}" if readable else digest


def _joined(pairs: list[tuple[str, str]]) -> str:
    """The readable name of (key, value) pairs: ``key-value_key-value``, shell-safe."""
    text = "_".join(f"{k}-{v}" if v else k for k, v in pairs)
    return _UNSAFE.sub("_", text).strip("_.-")


def _short_keys(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each key cut to its shortest dotted suffix that no other key ends with (the common
    prefix, ``source.parts.kitti.augment.transforms.``, is what goes)."""
    keys = [k.split(".") for k, _ in pairs]
    out = []
    for i, (parts, (_, value)) in enumerate(zip(keys, pairs)):
        others = [k for j, k in enumerate(keys) if j != i]
        n = 1
        while n < len(parts) and any(o[-n:] == parts[-n:] for o in others):
            n += 1
        out.append((".".join(parts[-n:]), value))
    return out


def _short_values(pairs: list[tuple[str, str]], budget: int) -> list[tuple[str, str]]:
    """The longest values cut to their tails (``..._data_kitti`` -> ``kitti``), one
    character at a time, until the name fits or no value is longer than ``KEEP``."""
    values = [v for _, v in pairs]
    over = len(_joined(pairs)) - budget
    while over > 0:
        longest = max(range(len(values)), key=lambda i: len(values[i]))
        if len(values[longest]) <= KEEP:
            break
        cut = min(over, len(values[longest]) - KEEP)
        values[longest] = values[longest][cut:]
        over -= cut
    return [(k, v) for (k, _), v in zip(pairs, values)]


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


def _readable(item: str) -> tuple[str, str]:
    """One override for reading, as (key, value): ``~key`` -> (key, ``deleted``); ``+``,
    quotes and brackets dropped; list commas -> ``-``; ``/`` and the rest -> ``_``."""
    if item.startswith("~"):
        return item.lstrip("~").split("=")[0], "deleted"
    key, _, value = item.lstrip("+").partition("=")
    value = re.sub(r"[\[\]{}()'\" ]", "", value).replace(",", "-").replace("/", "_")
    return key, _UNSAFE.sub("_", value)
