"""Files under a root directory, on local disk or at a URL (``s3://bucket/nyu/``, any
fsspec URL): what the folder and file-list sources list, stamp and read.

Names are relative to the root, '/'-separated. A local tree reads through
``files.read_file`` (regular files only) and stamps a file by size and modification time.
A URL tree lists the objects under its root once (name, size, ETag: one listing, no
request per file) and reads an object when its sample is read, one GET of that object,
never a download of the tree first; its stamp is the object's size and ETag, so a
resumed run refuses an object that changed.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import IO, Any

import numpy as np

from pipeline.config import urls
from pipeline.errors import PipelineError, SampleError
from pipeline.sources.files import decode_bytes, ext_of, read_file
from pipeline.sources.headers import MAX_FILE_BYTES, MAX_PIXELS


class Tree:
    """A root directory and the files below it (the local one: ``LocalTree``)."""

    def glob(self, pattern: str) -> list[str]:
        """Names matching ``pattern`` below the root (directories left out), any order."""
        raise NotImplementedError

    def is_dir(self) -> bool:
        raise NotImplementedError

    def is_file(self, name: str) -> bool:
        raise NotImplementedError

    def where(self, name: str) -> str:
        """The file as the user would name it (path or URL): messages and provenance."""
        raise NotImplementedError

    def read(self, name: str, key: str) -> np.ndarray:
        """The decoded image or depth file; a missing or bad file is a ``SampleError``."""
        raise NotImplementedError

    def read_bytes(self, name: str) -> bytes:
        """The file's bytes (``OSError`` / ``ValueError`` when it cannot be read)."""
        raise NotImplementedError

    def open(self, name: str) -> IO[bytes]:
        raise NotImplementedError

    def file_size(self, name: str) -> int | None:
        """Bytes of a regular file, None for anything else."""
        raise NotImplementedError

    def stamp(self, name: str) -> str:
        """What changes when the file does ("-" when it is not there)."""
        raise NotImplementedError

    def listed(self, name: str) -> str:
        """A name as a file list gives it (a leading '/' is relative to the root)."""
        return name.lstrip("/")


class LocalTree(Tree):
    def __init__(self, root: Path) -> None:
        self.root = root

    def glob(self, pattern: str) -> list[str]:
        # not only regular files: a broken link or a FIFO named like an image is a sample
        # whose read fails (counted, or the run's one line), never silently left out
        matched = [p for p in self.root.glob(pattern) if p.is_symlink() or not p.is_dir()]
        self._listable(pattern)
        return [p.relative_to(self.root).as_posix() for p in matched]

    def _listable(self, pattern: str) -> None:
        """Refuse a folder the glob walks but cannot list (pathlib skips it silently: its
        images would be left out, or "matches no file" would point the wrong way)."""
        folders = pattern.rpartition("/")[0]
        for folder in [self.root, *(self.root.glob(folders) if folders else [])]:
            if not folder.is_dir():
                continue
            try:
                with os.scandir(folder):
                    pass
            except PermissionError as exc:
                raise PipelineError(
                    f"cannot list {folder} ({exc.strerror or 'Permission denied'}): its files "
                    f"would be left out; give this user read and execute permission on it"
                ) from None

    def is_dir(self) -> bool:
        return self.root.is_dir()

    def is_file(self, name: str) -> bool:
        return (self.root / name).is_file()

    def where(self, name: str) -> str:
        return str(self.root / name)

    def read(self, name: str, key: str) -> np.ndarray:
        return read_file(self.root / name, key)

    def read_bytes(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def open(self, name: str) -> IO[bytes]:
        return open(self.root / name, "rb")

    def file_size(self, name: str) -> int | None:
        path = self.root / name
        return path.stat().st_size if path.is_file() else None

    def stamp(self, name: str) -> str:
        try:
            st = (self.root / name).stat()
        except OSError:
            return "-"
        return f"{st.st_size}|{st.st_mtime_ns}"

    def listed(self, name: str) -> str:
        """Under the root; an absolute path that exists only as such is kept (a relative
        ``Path`` joined with an absolute one is the absolute one)."""
        under = name.lstrip("/")
        if not (self.root / under).exists() and Path(name).is_absolute() and Path(name).exists():
            return name
        return under


class UrlTree(Tree):
    """Objects under a URL prefix, served by ``fs`` (the source's filesystem)."""

    def __init__(self, url: str, fs: Any) -> None:
        self.url = url.rstrip("/")
        self.fs = fs
        self._base = fs._strip_protocol(self.url).rstrip("/")
        self._listing: dict[str, dict[str, Any]] | None = None

    @property
    def listing(self) -> dict[str, dict[str, Any]]:
        """Every object below the root, listed once: name -> info (size, ETag)."""
        if self._listing is None:
            found = self.fs.find(self.url, detail=True) if self.is_dir() else {}
            self._listing = {self._name(p): _kept(info) for p, info in found.items()}
        return self._listing

    def _name(self, stripped: str) -> str:
        prefix = self._base + "/"
        return stripped[len(prefix) :] if stripped.startswith(prefix) else stripped

    def _full(self, name: str) -> str:
        return urls.full_url(self.url, self.fs, posixpath.normpath(f"{self._base}/{name}"))

    def _info(self, name: str) -> dict[str, Any] | None:
        if name in self.listing:
            return self.listing[name]
        if not name.startswith("../"):  # outside the root (a template with '..'): ask
            return None
        try:
            info = self.fs.info(self._full(name))
        except OSError:
            return None
        return info if info.get("type") != "directory" else None

    def glob(self, pattern: str) -> list[str]:
        found = self.fs.glob(f"{self._base}/{pattern}")
        return [n for n in (self._name(p) for p in found) if n in self.listing]

    def is_dir(self) -> bool:
        return bool(self.fs.isdir(self.url))

    def is_file(self, name: str) -> bool:
        return self._info(posixpath.normpath(name)) is not None

    def where(self, name: str) -> str:
        return self._full(name)

    def read(self, name: str, key: str) -> np.ndarray:
        where = self.where(name)
        try:
            data = self.read_bytes(name)
        except OSError as exc:
            reason = "no such object" if isinstance(exc, FileNotFoundError) else exc
            raise SampleError(key, f"cannot read {where} ({reason})") from None
        except ValueError as exc:
            raise SampleError(key, f"{where} {exc}") from None
        return decode_bytes(data, key, where, ext_of(name))

    def read_bytes(self, name: str) -> bytes:
        size = self.file_size(name)
        if size is not None and size > MAX_FILE_BYTES:
            raise ValueError(f"is {size} bytes, more than any frame of {MAX_PIXELS} pixels needs")
        return bytes(self.fs.cat_file(self.where(name)))

    def open(self, name: str) -> IO[bytes]:
        return self.fs.open(self.where(name), "rb")

    def file_size(self, name: str) -> int | None:
        info = self._info(posixpath.normpath(name))
        return None if info is None else int(info.get("size") or 0)

    def stamp(self, name: str) -> str:
        info = self._info(posixpath.normpath(name))
        return "-" if info is None else f"{info['size']}|{urls.version(info)}"


def _kept(info: dict[str, Any]) -> dict[str, Any]:
    """What a stamp needs of an object's listing entry (small to pickle to workers)."""
    return {"size": info.get("size"), "ETag": urls.version(info), "type": info.get("type")}


def tree_at(root: str, fs_of: Any) -> Tree:
    """The tree at ``root``: a ``UrlTree`` through ``fs_of(root)`` (the source config's
    ``filesystem``) for a URL, else a ``LocalTree`` (``file://`` as a local path)."""
    if urls.is_url(root):
        return UrlTree(root, fs_of(root))
    return LocalTree(Path(urls.local_path(root)))
