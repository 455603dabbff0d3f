"""Public metric-depth datasets read as their authors distribute them: one module per
dataset, each a ``DatasetSource`` that lists its frames (a key keeping scene and frame,
and the files read) and reads one frame into float32 metres and its exact camera.

A new dataset = a module here (``TITLE``, ``LAYOUT``, ``list_frames``, ``read``) + a
schema in ``pipeline/config/datasets.py`` + ``conf/source/<name>.yaml``; the README's
table cites the toolkit or loader line each conversion follows. A file missing or laid
out differently is one line naming the file expected and where: at open time for the
layout (no frame, or the first frame's files), as that sample's error for a later one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from pipeline.config.sources import UrlSourceConfig
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Sample
from pipeline.sources import Source
from pipeline.sources.files import make_key, read_each, unique_keys
from pipeline.sources.tree import LocalTree, Tree, tree_at


@dataclass(frozen=True)
class Frame:
    """One sample to read: its key and the files it reads (``(tree, name)`` pairs, in the
    order the dataset's ``read`` expects them)."""

    key: str
    files: tuple[tuple[str, str], ...]  # (root name, file name relative to that root)


class DatasetSource(Source):
    """What every public dataset shares: trees under the configured roots, the frame list,
    missing-file lines, identity, per-shard fingerprints and the files kept apart."""

    TITLE: ClassVar[str] = ""
    LAYOUT: ClassVar[str] = ""  # the layout expected under source.path, for messages

    def __init__(self, cfg: UrlSourceConfig) -> None:
        if not cfg.path or cfg.path == "???":
            raise ValueError(f"set source.path to where the {self.TITLE} download is unpacked")
        self.cfg = cfg
        self.trees: dict[str, Tree] = {}
        self.tree = self.root("path", cfg.path)
        self.frames = self.list_frames()
        if not self.frames:
            raise PipelineError(
                f"source ({cfg.kind}): no {self.TITLE} frame under source.path={cfg.path}"
                f"{self.selection()}; expected {self.LAYOUT}"
            )
        unique_keys([f.key for f in self.frames], f"source.path={cfg.path}")
        first = self.frames[0]
        for root, name in first.files:
            if not self.trees[root].is_file(name):
                raise PipelineError(
                    f"source ({cfg.kind}): frame {first.key}: expected {self.describe_file(name)}"
                    f" at {self.trees[root].where(name)} (source.{root}={self.where_root(root)})"
                    f"; is the {self.TITLE} download unpacked there?"
                )

    # ---- what each dataset defines -----------------------------------------------------

    def list_frames(self) -> list[Frame]:
        raise NotImplementedError

    def read(self, frame: Frame) -> Sample:
        raise NotImplementedError

    def settings(self) -> dict[str, object]:
        """The dataset's own keys that shape what is read (provenance)."""
        return {}

    def selection(self) -> str:
        """The keys narrowing the frames, for the 'no frame' line (", split=val")."""
        return ""

    # ---- helpers ------------------------------------------------------------------------

    def root(self, name: str, where: str) -> Tree:
        """The tree at ``where`` (key ``source.<name>``), refused when not a directory."""
        tree = tree_at(where, self.cfg.filesystem)
        if not tree.is_dir():
            raise PipelineError(
                f"source.{name}={where} is not a directory; set it to where the {self.TITLE} "
                f"download is unpacked ({self.LAYOUT})"
            )
        self.trees[name] = tree
        return tree

    def where_root(self, name: str) -> str:
        value = getattr(self.cfg, name, None)
        return str(value if value else self.cfg.path)

    @staticmethod
    def describe_file(name: str) -> str:
        return Path(name).name

    def need(self, frame: Frame, index: int) -> tuple[Tree, str]:
        """File ``index`` of ``frame``, a ``SampleError`` naming it when it is missing."""
        root, name = frame.files[index]
        tree = self.trees[root]
        if not tree.is_file(name):
            raise SampleError(
                frame.key, f"expected {self.describe_file(name)} at {tree.where(name)}"
            )
        return tree, name

    def array(self, frame: Frame, index: int) -> np.ndarray:
        """File ``index`` of ``frame`` decoded (PNG, JPEG, NPY)."""
        tree, name = self.need(frame, index)
        return tree.read(name, frame.key)

    def text(self, frame: Frame, index: int) -> str:
        tree, name = self.need(frame, index)
        try:
            return tree.read_bytes(name).decode("utf-8", "replace")
        except (OSError, ValueError) as exc:
            raise SampleError(frame.key, f"cannot read {tree.where(name)} ({exc})") from None

    def raw(self, frame: Frame, index: int) -> bytes:
        tree, name = self.need(frame, index)
        try:
            return tree.read_bytes(name)
        except (OSError, ValueError) as exc:
            raise SampleError(frame.key, f"cannot read {tree.where(name)} ({exc})") from None

    def location(self, frame: Frame) -> str:
        root, name = frame.files[0]
        return self.trees[root].where(name)

    @staticmethod
    def key(*parts: str) -> str:
        return make_key("/".join(parts))

    # ---- the Source interface -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self.frames)

    def iter(self, start: int, stop: int) -> Iterator[Sample | SampleError]:
        return read_each(self.frames[start:stop], self.read)

    def identity(self) -> dict[str, object]:
        listing = hashlib.sha256()
        for frame in self.frames:
            listing.update(f"{frame.key}\0{frame.files}\n".encode())
        roots = {
            name: str(tree.root.resolve()) if isinstance(tree, LocalTree) else self.where_root(name)
            for name, tree in self.trees.items()
        }
        return {
            "kind": self.cfg.kind,
            **roots,
            **self.settings(),
            "num_samples": len(self.frames),
            "file_list_sha256": listing.hexdigest(),
        }

    def inputs_fingerprint(self, start: int, stop: int) -> str:
        """Names and stamps (size, modification time or ETag) of the files read."""
        digest = hashlib.sha256()
        for frame in self.frames[start:stop]:
            digest.update(f"{frame.key}\n".encode())
            for root, name in frame.files:
                digest.update(f"{root}:{name}|{self.trees[root].stamp(name)}\n".encode())
        return digest.hexdigest()[:16]

    def paths(self) -> list[Path]:
        local = {n: t for n, t in self.trees.items() if isinstance(t, LocalTree)}
        files = {Path(local[r].root) / n for f in self.frames for r, n in f.files if r in local}
        return [*(t.root for t in local.values()), *sorted(files)]

    def urls(self) -> list[str]:
        remote = {n: t for n, t in self.trees.items() if not isinstance(t, LocalTree)}
        files = {remote[r].where(n) for f in self.frames for r, n in f.files if r in remote}
        return [*(self.where_root(n) for n in remote), *sorted(files)]

    def for_workers(self) -> DatasetSource | None:
        """At a URL: this opened source with its listing (workers do not list again)."""
        return None if all(isinstance(t, LocalTree) for t in self.trees.values()) else self


def numbers(text: str, count: int, key: str, where: str) -> np.ndarray:
    """The first ``count`` numbers of ``text`` (a K, a 4x4 matrix), else a SampleError."""
    try:
        values = np.array([float(x) for x in text.split()[:count]], dtype=np.float64)
    except ValueError:
        values = np.zeros(0)
    if values.size != count or not np.isfinite(values).all():
        raise SampleError(key, f"{where}: expected {count} numbers (a camera matrix)")
    return values
