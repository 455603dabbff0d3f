"""URLs in the config (``output.dir``, ``source.path``): ``proto://...`` served by an
fsspec implementation (s3fs, gcsfs, adlfs...), or one line naming what to install.

What each store family needs to be reached (its endpoint, its credentials) is its
``pipeline.stores`` class's ``options``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.errors import PipelineError
from pipeline.stores import store_for

_URL = re.compile(r"^(?P<protocol>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$")


def _how(protocol: str, package: str) -> str:
    """What to install for ``protocol`` whose fsspec implementation is missing."""
    extra = store_for(protocol).extra
    return f"pip install 'depth-pipeline[{extra}]'" if extra else f"pip install {package}"


def is_url(value: str | Path) -> bool:
    """True for ``proto://...`` other than ``file://`` (which is a local path)."""
    m = _URL.match(str(value))
    return m is not None and m["protocol"].lower() != "file"


def local_path(value: str) -> str:
    """``file:///x`` as ``/x``; anything else unchanged."""
    m = _URL.match(value)
    return m["rest"] if m is not None and m["protocol"].lower() == "file" else value


def filesystem(url: str, options: dict[str, Any] | None = None, endpoint: str | None = None,
               key: str = "output.dir") -> Any:  # fmt: skip
    """The fsspec filesystem serving ``url``, or one line naming the package to install."""
    import fsspec

    protocol = url.split("://", 1)[0].lower()
    check_segments(url, key)
    opts = store_for(protocol).options(dict(options or {}), endpoint)
    try:
        cls = fsspec.get_filesystem_class(protocol)
    except (ImportError, ValueError):
        from fsspec.registry import known_implementations

        impl = known_implementations.get(protocol, {}).get("class", "")
        if not impl:
            raise PipelineError(
                f"{key}={url}: no fsspec implementation serves {protocol}://; check the URL"
            ) from None
        package = impl.split(".")[0]
        how = _how(protocol, package)
        raise PipelineError(
            f"{key}={url}: {protocol}:// needs {package}, which is not installed; {how}"
        ) from None
    return cls(**opts)


def check_segments(url: str, key: str) -> None:
    """Refuse a URL with ``.`` or ``..`` segments: a store names objects with them as
    written (no directory to resolve them against), so the path would not be the one meant."""
    segments = url.split("://", 1)[1].split("/")
    if any(s in (".", "..") for s in segments):
        raise PipelineError(
            f"{key}={url}: a URL path with '..' or '.' segments names no parent in an object "
            f"store (the store keeps them literally in the key); write the path without them"
        )


def storage_options(value: Any, key: str) -> dict[str, Any]:
    """A ``storage_options`` setting as a dict (None: none), or one line naming ``key``
    (typed Any in the schemas so that Hydra's struct mode takes ``'{profile: lab}'``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PipelineError(
            f"{key}={value!r} must be a mapping of filesystem options, e.g. "
            f"{key}='{{profile: lab}}'"
        )
    return dict(value)


def open_url(
    url: str, block_size: int = 4 << 20, key: str = "source.path", fs: Any = None
) -> BinaryIO:
    """A seekable byte stream over ``url`` read in ``block_size`` ranges as it is read
    (no download of the whole object first); ``fs`` (default: ``filesystem(url)``) serves it."""
    fs = fs or filesystem(url, key=key)
    return fs.open(url, "rb", block_size=block_size, cache_type="readahead")


def stamp(url: str, key: str = "source.path", fs: Any = None) -> str:
    """Size and version (ETag, else modification time) of an object: changes when it does."""
    info = (fs or filesystem(url, key=key)).info(url)
    return f"{info.get('size')}|{version(info)}"


def version(info: dict[str, Any]) -> str:
    """What changes with an object's content in its fsspec info: the ETag (or generation),
    else the time it was last written."""
    for key in ("ETag", "generation", "etag", "LastModified", "last_modified", "mtime"):
        if info.get(key):
            return str(info[key])
    return ""


def find(
    spec: str, suffixes: tuple[str, ...], key: str = "source.path", fs: Any = None
) -> list[str]:
    """The objects ``spec`` names: itself, the top of a "directory", or a glob's matches
    ending in ``suffixes``, as full URLs in name order."""
    fs = fs or filesystem(spec, key=key)
    if fs.isfile(spec):
        names = [spec]
    elif fs.isdir(spec):
        names = [full_url(spec, fs, p) for p in fs.ls(spec, detail=False)]
    else:
        names = [full_url(spec, fs, p) for p in fs.glob(spec)]
    return sorted(n for n in names if n.endswith(suffixes))


def full_url(like: str, fs: Any, path: str) -> str:
    """``path`` (as ``fs`` lists it) as a URL with the protocol of ``like``: the one the
    user wrote (adlfs names ``az://`` objects ``abfs://``)."""
    return f"{like.split('://', 1)[0]}://{fs._strip_protocol(path)}"


def check_apart(out: str, source: str) -> None:
    """Refuse a URL ``output.dir`` equal to, inside or containing a URL source."""
    a, b = out.rstrip("/") + "/", source.rstrip("/") + "/"
    if a.startswith(b) or b.startswith(a):
        raise PipelineError(
            f"output.dir={out} overlaps the source ({source}): writing or replacing a dataset "
            f"there could delete or mix the input; choose an output.dir outside it"
        )
