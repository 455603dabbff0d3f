"""URLs in the config (``output.dir``, ``source.path``): ``proto://...`` served by an
fsspec implementation (s3fs for ``s3://``), or one line naming what to install.

Credentials come from the implementation's standard places (``AWS_*`` variables, profiles);
an S3 endpoint from the config or ``AWS_ENDPOINT_URL`` (MinIO, Ceph, a test server)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.errors import PipelineError

_URL = re.compile(r"^(?P<protocol>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$")
S3_PROTOCOLS = ("s3", "s3a")
# what to install for a protocol whose fsspec implementation is missing
EXTRAS = {
    "s3": "pip install 'depth-pipeline[s3]'",
    "s3a": "pip install 'depth-pipeline[s3]'",
    "gs": "pip install gcsfs",
    "gcs": "pip install gcsfs",
    "az": "pip install adlfs",
    "abfs": "pip install adlfs",
    "abfss": "pip install adlfs",
}


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

    check_segments(url, key)
    protocol = url.split("://", 1)[0].lower()
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
        how = EXTRAS.get(protocol, f"pip install {package}")
        raise PipelineError(
            f"{key}={url}: {protocol}:// needs {package}, which is not installed; {how}"
        ) from None
    opts = dict(options or {})
    endpoint = (
        endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    if protocol in S3_PROTOCOLS:
        for name in ("aiobotocore", "botocore", "s3fs"):  # "Found credentials in ..." lines
            logging.getLogger(name).setLevel(logging.WARNING)
        if endpoint and "endpoint_url" not in opts:
            opts["endpoint_url"] = endpoint
        opts.setdefault("use_listings_cache", False)  # other processes write the prefix
        # Shards go up with their sha256 as a signed x-amz-checksum-sha256 header that the
        # store verifies, so botocore's own pass over the body to sign it (done over http
        # only) adds nothing but CPU; over https it is skipped already.
        config = dict(opts.get("config_kwargs") or {})
        config["s3"] = {"payload_signing_enabled": False, **dict(config.get("s3") or {})}
        opts["config_kwargs"] = config
    return cls(**opts)


def check_segments(url: str, key: str) -> None:
    """Refuse a URL with a ``..`` or ``.`` path segment: object stores take it literally
    (``s3://bkt/../x`` writes under a key prefix ``../x/``), never as a parent."""
    rest = url.split("://", 1)[-1]
    if any(part in ("..", ".") for part in rest.split("/")):
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
    """What changes with an object's content in its fsspec info: the ETag, else the time
    it was last written."""
    return str(info.get("ETag") or info.get("LastModified") or info.get("mtime") or "")


def find(
    spec: str, suffixes: tuple[str, ...], key: str = "source.path", fs: Any = None
) -> list[str]:
    """The objects ``spec`` names: itself, the top of a "directory", or a glob's matches
    ending in ``suffixes``, as full URLs in name order."""
    fs = fs or filesystem(spec, key=key)
    if fs.isfile(spec):
        names = [spec]
    elif fs.isdir(spec):
        names = [fs.unstrip_protocol(p) for p in fs.ls(spec, detail=False)]
    else:
        names = [fs.unstrip_protocol(p) for p in fs.glob(spec)]
    return sorted(n for n in names if n.endswith(suffixes))


def check_apart(out: str, source: str) -> None:
    """Refuse a URL ``output.dir`` equal to, inside or containing a URL source."""
    a, b = out.rstrip("/") + "/", source.rstrip("/") + "/"
    if a.startswith(b) or b.startswith(a):
        raise PipelineError(
            f"output.dir={out} overlaps the source ({source}): writing or replacing a dataset "
            f"there could delete or mix the input; choose an output.dir outside it"
        )
