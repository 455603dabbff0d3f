"""Webdataset tar shards, made by this tool or by others.

A sample is the group of consecutive members sharing a key (the member name up to the
first '.' of its base name, as in the webdataset library): ``{key}.png|jpg`` plus
``{key}.depth.tiff|depth.png|depth.npy`` by default (``source.columns``), and the camera
from ``{key}.json`` when that member has one (``columns.camera``); 16-bit PNG depth this
tool wrote is read as metres through that record's ``depth_scale`` (while
``source.depth_scale`` is left at 1; stored value / depth_scale = metres, as on every
source). ``source.path`` is a tar file, a directory of tars
or a glob, local or at a URL (``s3://bucket/shards/``, any fsspec URL). Opening indexes
the member headers only (offsets, no data); samples are read by seeking, so any worker can
start anywhere. A tar in an object store is read the same way through ranged reads: the
headers in small ranges, the samples a few MB at a time, never the whole tar first; its
size and ETag identify it for resume.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from pipeline.config import urls
from pipeline.config.sources import WebdatasetConfig
from pipeline.encode import codecs
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Origin, Sample
from pipeline.sources import Source
from pipeline.sources.cameras import camera_from
from pipeline.sources.files import apply_mask, decode_bytes, make_key, unique_keys

_MEMBER = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class _Entry:
    tar: int  # index into the tar list
    key: str  # key as stored in the tar
    members: dict[str, tuple[int, int]]  # extension -> (data offset, size) in the tar


class WebdatasetSource(Source):
    """Samples in tar order (tars sorted by name); the key is the stored key, sanitized."""

    def __init__(self, cfg: WebdatasetConfig) -> None:
        if not cfg.path:
            raise ValueError("set source.path to a .tar, a directory of tars or a glob")
        self.cfg = cfg
        self.fs = cfg.filesystem(cfg.path) if urls.is_url(cfg.path) else None
        self.tars = _list_tars(cfg.path, self.fs)
        if not self.tars:
            raise FileNotFoundError(f"source.path={cfg.path}: no .tar files found")
        self.entries: list[_Entry] = []
        for i, tar in enumerate(self.tars):
            self.entries += _index(tar, i, self.fs)
        _contiguous(self.entries, self.tars, cfg.path)
        self.keys = [make_key(e.key) for e in self.entries]
        unique_keys(self.keys, f"source.path={cfg.path}")
        self.image_exts = _choices(cfg.columns.image, "source.columns.image")
        self.depth_exts = _choices(cfg.columns.depth, "source.columns.depth")
        mask = cfg.columns.mask
        self.mask_exts = _choices(mask, "source.columns.mask") if mask else []
        camera = cfg.columns.camera
        self.camera_exts = _choices(camera, "source.columns.camera") if camera else []

    def __len__(self) -> int:
        return len(self.entries)

    def identity(self) -> dict[str, object]:
        listing = hashlib.sha256()
        for tar in self.tars:
            if isinstance(tar, str):
                listing.update(f"{tar}\0{urls.stamp(tar, fs=self.fs)}\n".encode())
            else:
                st = tar.stat()
                listing.update(f"{tar.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return {
            "kind": "webdataset",
            "path": self.cfg.path,
            "tars": [_where(t) for t in self.tars][:1000],
            "num_tars": len(self.tars),
            "num_samples": len(self.entries),
            "fingerprint": listing.hexdigest(),
        }

    def iter(self, start: int, stop: int) -> Iterator[Sample | SampleError]:
        handle: tuple[int, BinaryIO] | None = None
        try:
            for index in range(start, min(stop, len(self.entries))):
                entry = self.entries[index]
                if handle is None or handle[0] != entry.tar:
                    if handle is not None:
                        handle[1].close()
                    handle = (entry.tar, _open(self.tars[entry.tar], self.fs))
                try:
                    yield self._read(handle[1], entry, self.keys[index])
                except SampleError as err:
                    yield err
        finally:
            if handle is not None:
                handle[1].close()

    def _read(self, fh: BinaryIO, entry: _Entry, key: str) -> Sample:
        where = f"{_name(self.tars[entry.tar])}:{entry.key}"

        def field(exts: list[str], what: str) -> tuple[str, bytes]:
            for ext in exts:
                span = entry.members.get(ext)
                if span is not None and span[0] < 0:
                    raise SampleError(key, f"{where}.{ext}: a link or special member, not a file")
                if span is not None:
                    fh.seek(span[0])
                    data = fh.read(span[1])
                    if len(data) != span[1]:
                        raise SampleError(key, f"{where}.{ext}: truncated tar member")
                    return ext, data
            have = ", ".join(e or "(no extension)" for e in sorted(entry.members))
            raise SampleError(key, f"{where}: no {what} member ({'|'.join(exts)}); has {have}")

        image_ext, image_data = field(self.image_exts, "image")
        depth_ext, depth_data = field(self.depth_exts, "depth")
        image = decode_bytes(image_data, key, f"{where}.{image_ext}", image_ext)
        depth = decode_bytes(depth_data, key, f"{where}.{depth_ext}", depth_ext)
        if self.mask_exts:
            mask_ext, mask_data = field(self.mask_exts, "mask")
            mask = decode_bytes(mask_data, key, f"{where}.{mask_ext}", mask_ext)
            depth = apply_mask(depth, mask, key, f"{where}.{mask_ext}")
        if depth.dtype.kind in "ui" and "json" in entry.members and self.cfg.depth_scale == 1.0:
            depth = self._own_scale(depth, field(["json"], "json")[1])
        camera = None
        found = [ext for ext in self.camera_exts if ext in entry.members]
        if found:  # optional: a sample without the member has no camera
            ext, data = field(found[:1], "camera")
            try:
                value = codecs.decode(ext, data)
                # a .json that is not an object is someone else's annotation, not a camera
                if not (ext.endswith("json") and not isinstance(value, dict)):
                    camera = camera_from(value, *image.shape[:2])
            except ValueError as exc:
                raise SampleError(key, f"{where}.{ext}: no readable camera ({exc})") from None
        return Sample(key, image, depth, Origin("webdataset", where), camera)

    @staticmethod
    def _own_scale(depth: np.ndarray, data: bytes) -> np.ndarray:
        """Integer depth written by this tool (png16) as metres: its ``.json`` record says
        ``depth_scale`` (stored value / depth_scale = metres). Used only while
        ``source.depth_scale`` is left at 1, so an explicit setting always wins."""
        try:
            record = json.loads(data)
        except ValueError:
            return depth
        scale = record.get("depth_scale") if isinstance(record, dict) else None
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
            return depth
        return (depth.astype(np.float32) / np.float32(scale)).astype(np.float32)


# A tar: a local path, or the URL of an object (read in ranges through fsspec).
Tar = Path | str
HEADER_RANGE = 64 << 10  # indexing a remote tar reads ranges this small around each header


def _name(tar: Tar) -> str:
    return tar.rsplit("/", 1)[-1] if isinstance(tar, str) else tar.name


def _where(tar: Tar) -> str:
    return tar if isinstance(tar, str) else str(tar.resolve())


def _open(tar: Tar, fs: Any, block_size: int = 4 << 20) -> BinaryIO:
    """The tar as a seekable byte stream (a URL through ``fs``); gzip-compressed tars (by
    their magic number, so also one named ``.tar``) are decompressed on the fly."""
    raw = urls.open_url(tar, block_size, fs=fs) if isinstance(tar, str) else open(tar, "rb")
    gzipped = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    return gzip.open(raw, "rb") if gzipped else raw


def _list_tars(spec: str, fs: Any) -> list[Tar]:
    if urls.is_url(spec):
        return list(urls.find(spec, TAR_SUFFIXES, fs=fs))
    path = Path(spec)
    if path.is_dir():
        found = [p for p in path.iterdir() if p.name.endswith(TAR_SUFFIXES)]
    elif path.is_file():
        found = [path]
    else:
        found = [Path(p) for p in glob.glob(spec, recursive=True) if p.endswith(TAR_SUFFIXES)]
    return sorted(found, key=lambda p: str(p))


def _index(tar: Tar, number: int, fs: Any) -> list[_Entry]:
    """Group member headers into samples (consecutive members with the same key)."""
    entries: list[_Entry] = []
    try:
        with _open(tar, fs, HEADER_RANGE) as fh, tarfile.open(fileobj=fh) as tf:
            for info in tf:
                if info.isdir():
                    continue
                # every other member is part of a sample, so nothing vanishes unseen: a key
                # the sample contract refuses ('__x'), a name without an extension or a
                # link member makes its sample fail, named (or counted as skipped)
                match = _MEMBER.match(info.name)
                key, ext = (match.group(1), match.group(2).lower()) if match else (info.name, "")
                if not entries or entries[-1].key != key:
                    entries.append(_Entry(number, key, {}))
                span = (info.offset_data, info.size) if info.isfile() else (-1, 0)
                entries[-1].members[ext] = span
    except (tarfile.TarError, OSError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineError(
            f"source.path: {tar} is not a readable tar file ({detail}); re-create or "
            f"re-download it, or leave it out of source.path"
        ) from None
    return entries


def _contiguous(entries: list[_Entry], tars: list[Tar], spec: str) -> None:
    """Refuse a key whose members are not next to each other in its tar (webdataset reads
    a sample as a run of consecutive members: the parts would be two samples), or a key
    stored in two tars, naming the tar(s), the key and the fix."""
    seen: dict[str, int] = {}  # key -> the tar it was first found in
    for entry in entries:  # consecutive members of one key are one entry already
        if entry.key not in seen:
            seen[entry.key] = entry.tar
            continue
        first = seen[entry.key]
        if first == entry.tar:
            raise PipelineError(
                f"source.path={spec}: the members of key {entry.key!r} are not next to each "
                f"other in {_where(tars[first])} (a sample is a run of consecutive members); "
                f"re-create that tar with its members sorted by name (e.g. tar --sort=name "
                f"-cf NEW.tar FILES...) so each sample's members follow one another"
            )
        raise PipelineError(
            f"source.path={spec}: key {entry.key!r} is in both {_where(tars[first])} and "
            f"{_where(tars[entry.tar])}; a sample's members belong in one tar: rename one "
            f"of them, or move its members next to the others"
        )


def _choices(spec: str, name: str) -> list[str]:
    exts = [e.strip().lower().lstrip(".") for e in spec.split("|") if e.strip()]
    if not exts:
        raise PipelineError(f"{name} is empty; give member extensions like png|jpg")
    return exts
