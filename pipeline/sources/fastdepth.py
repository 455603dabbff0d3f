"""NYU Depth v2 as FastDepth distributes it: one HDF5 file per frame, ``rgb`` uint8
(3, H, W) and ``depth`` float32 (H, W) metres, under ``train/<scene>/<frame>.h5`` (47,584
frames) and ``val/official/<frame>.h5`` (the 654 official test frames).

``source.path`` is that folder tree (or a folder inside it), a .tar of it, a folder of
tars or a glob: tars are read in place, each member by seeking to its offset (no
extraction), the way the archives behind the hub's ``sayakpaul/nyu_depth_v2``
(``data/train-0000NN.tar``, ``data/val-00000N.tar``) are laid out. Without ``path``,
those archives are first downloaded from ``source.repo`` (``pipeline/sources/hub_files``).
Keys are the relative paths without ``.h5`` (``train/bedroom_0078/00066``), in sorted
order, so a folder and its tar give the same dataset.
"""

from __future__ import annotations

import glob
import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import h5py
import numpy as np

from pipeline.config.sources import FastdepthConfig
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Origin, Sample
from pipeline.sources import Source
from pipeline.sources.files import make_key, unique_keys

SUBDIRS = {"train": "train", "val": "val", "validation": "val", "test": "val"}
# (key, member or file path relative to its root, tar index or -1, data offset, size)
Item = tuple[str, str, int, int, int]


class FastdepthSource(Source):
    """The .h5 frames of one split, sorted by key."""

    def __init__(self, cfg: FastdepthConfig) -> None:
        self.cfg = cfg
        self.subdir = SUBDIRS.get(cfg.split, cfg.split)
        self.download: dict[str, object] = {}
        if cfg.path:
            spec = cfg.path
        elif cfg.repo:
            from pipeline.sources.hub_files import download

            spec, self.download = download(cfg, self.subdir)
        else:
            raise ValueError("set source.path to the FastDepth folder or tars (or source.repo)")
        self.root, self.tars, self.items = _scan(spec, self.subdir)
        if not self.items:
            where = f"{self.subdir}/" if self.tars else f"{spec} (or {spec}/{self.subdir})"
            raise PipelineError(
                f"source.path={spec}: no .h5 frames for source.split={cfg.split} under "
                f"{where}; check source.path and source.split (train, val)"
            )
        unique_keys([item[0] for item in self.items], f"source.path={spec}")

    def __len__(self) -> int:
        return len(self.items)

    def for_workers(self) -> FastdepthSource:
        """The index (a few MB for all of NYU) travels to the workers: no re-scan there."""
        return self

    def identity(self) -> dict[str, object]:
        listing = hashlib.sha256()
        for key, rel, tar, offset, size in self.items:
            listing.update(f"{key}\0{rel}\0{tar}\0{offset}\0{size}\n".encode())
        for tar in self.tars:  # a tar rewritten in place (same members) is another source
            listing.update(f"{tar.resolve()}\0{_stamp(tar)}\n".encode())
        files = [str(t.resolve()) for t in self.tars]
        return {
            "kind": "fastdepth",
            "path": str(self.root.resolve()) if self.root else None,
            "split_dir": self.subdir,
            "tars": files[:1000],
            "num_samples": len(self.items),
            "fingerprint": listing.hexdigest()[:16],
            **self.download,
        }

    def inputs_fingerprint(self, start: int, stop: int) -> str:
        """The listing and, for frames ``start`` .. ``stop``, the size and modification
        time of each .h5 file (or of its tar): a resumed run keeps nothing made from a
        frame rewritten since, even at the same size."""
        digest = hashlib.sha256(super().inputs_fingerprint(start, stop).encode())
        for key, rel, tar, _, _ in self.items[start:stop]:
            path = self.tars[tar] if tar >= 0 else self.root / rel if self.root else None
            digest.update(f"{key}|{_stamp(path) if path else '-'}\n".encode())
        return digest.hexdigest()[:16]

    def iter(self, start: int, stop: int) -> Iterator[Sample | SampleError]:
        handle: tuple[int, BinaryIO] | None = None
        try:
            for key, rel, tar, offset, size in self.items[start:stop]:
                if tar >= 0 and (handle is None or handle[0] != tar):
                    if handle is not None:
                        handle[1].close()
                    handle = (tar, open(self.tars[tar], "rb"))
                try:
                    if tar >= 0:
                        assert handle is not None
                        where = f"{self.tars[tar].name}:{rel}"
                        handle[1].seek(offset)
                        data = handle[1].read(size)
                        if len(data) != size:
                            raise SampleError(key, f"{where}: truncated tar member")
                        yield _frame(key, io.BytesIO(data), where)
                    else:
                        yield _frame(key, self.root / rel, str(self.root / rel))
                except SampleError as err:
                    yield err
        finally:
            if handle is not None:
                handle[1].close()


def _stamp(path: Path) -> str:
    """Size and modification time of a file ("-" when it cannot be read)."""
    try:
        st = path.stat()
    except OSError:
        return "-"
    return f"{st.st_size}|{st.st_mtime_ns}"


def _frame(key: str, source: Path | BinaryIO, where: str) -> Sample:
    """One .h5 frame: ``rgb`` (3, H, W) -> HxWx3, ``depth`` (H, W) metres, bit-exact."""
    try:
        with h5py.File(source, "r") as f:
            rgb, depth = f.get("rgb"), f.get("depth")
            if not isinstance(rgb, h5py.Dataset) or not isinstance(depth, h5py.Dataset):
                raise SampleError(key, f"{where}: no `rgb` and `depth` datasets (FastDepth .h5)")
            rgb, depth = rgb[()], depth[()]
    except OSError as exc:
        raise SampleError(key, f"{where}: not a readable HDF5 file ({exc})") from None
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise SampleError(key, f"{where}: rgb has shape {rgb.shape}, expected (3, H, W)")
    image = np.ascontiguousarray(rgb.transpose(1, 2, 0))
    return Sample(key, image, np.asarray(depth), Origin("fastdepth", where))


def _scan(spec: str, subdir: str) -> tuple[Path | None, list[Path], list[Item]]:
    """The root folder (None for tars), the tars and every frame of the split."""
    path = Path(spec)
    if path.is_dir() and not any(path.glob("*.tar")):
        root = path / subdir if (path / subdir).is_dir() else path
        items = [
            (make_key(str(p.relative_to(path).with_suffix(""))), p.relative_to(path).as_posix())
            for p in root.rglob("*.h5")
            if p.is_file()
        ]
        return path, [], sorted((k, rel, -1, 0, 0) for k, rel in items)
    if path.is_dir():
        tars = sorted(p for p in path.glob("*.tar") if _wanted_tar(p, subdir))
    elif path.is_file():
        tars = [path]
    else:
        tars = sorted(Path(p) for p in glob.glob(spec, recursive=True))
    for tar in tars:
        if tar.name.endswith((".gz", ".tgz", ".bz2", ".xz")):
            raise PipelineError(
                f"source.path: {tar} is compressed and cannot be read in place; decompress "
                f"it to a plain .tar first (e.g. gunzip), or extract it and point at the folder"
            )
    items: list[Item] = []
    for number, tar in enumerate(tars):
        items += _index(tar, number, subdir)
    return None, tars, sorted(items)


def _wanted_tar(tar: Path, subdir: str) -> bool:
    """In a folder of split-named tars (``train-000000.tar``), only the split's own."""
    stem = tar.name.split("-")[0]
    return stem not in set(SUBDIRS.values()) or stem == subdir


def _index(tar: Path, number: int, subdir: str) -> list[Item]:
    """The split's .h5 members of one tar: offsets from the headers, no data read."""
    out = []
    try:
        with tarfile.open(tar) as tf:
            for info in tf:
                name = info.name[2:] if info.name.startswith("./") else info.name
                if info.isfile() and name.endswith(".h5") and name.startswith(f"{subdir}/"):
                    key = make_key(name[: -len(".h5")])
                    out.append((key, name, number, info.offset_data, info.size))
    except (tarfile.TarError, OSError) as exc:
        raise PipelineError(f"source.path: {tar} is not a readable tar file ({exc})") from None
    return out
