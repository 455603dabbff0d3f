"""A trainer's file list, read as it ships: the lists of BTS, AdaBins, ZoeDepth and
Depth-Anything's metric fine-tuning (``rgb depth focal`` per line, paths relative to a
data root and a ground-truth root; ``None`` as depth for frames without ground truth), or
Metric3D's annotation files (``{"files": [...]}`` JSON or JSON lines of ``{rgb, depth,
cam_in, depth_scale}``). The list and the roots may be URLs (``s3://bucket/nyu/list.txt``):
each listed object is fetched when its sample is read and stamped by size and ETag.

Keys are the image paths without extension, sanitized (``/kitchen_0028b/rgb_00045.jpg``
-> ``kitchen_0028b/rgb_00045``). A leading ``/`` is relative to the root, as in BTS's own
lists. Depth files are 16-bit PNG (stored value / depth_scale = metres: the record's
``depth_scale`` in Metric3D lists, else ``source.depth_scale``), float TIFF or .npy.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import urls
from pipeline.config.sources import FilelistConfig
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Camera, Origin, Sample
from pipeline.sources import Source
from pipeline.sources.depth_scale import MEANING, old_meaning
from pipeline.sources.files import make_key, read_each, unique_keys
from pipeline.sources.tree import LocalTree, Tree, tree_at


@dataclass(frozen=True)
class Entry:
    """One listed sample: image and depth paths as listed, focal or full intrinsics."""

    key: str
    image: str
    depth: str
    focal: float | None = None
    cam_in: tuple[float, float, float, float] | None = None
    depth_scale: float | None = None  # Metric3D's own (None: source.depth_scale)


class FilelistSource(Source):
    """The listed samples in list order."""

    def __init__(self, cfg: FilelistConfig) -> None:
        if not cfg.path:
            raise ValueError("set source.path to the file list (.txt, .json or .jsonl)")
        self.cfg = cfg
        if urls.is_url(cfg.path):
            base, _, name = cfg.path.rpartition("/")
        else:
            self.path = Path(urls.local_path(cfg.path))
            base, name = str(self.path.parent), self.path.name
        trees: dict[str, Tree] = {}  # one tree (one listing of a bucket prefix) per root

        def at(root: str) -> Tree:
            if root.rstrip("/") not in trees:
                trees[root.rstrip("/")] = tree_at(root, cfg.filesystem)
            return trees[root.rstrip("/")]

        self.list = at(base)
        self.suffix = "." + name.rpartition(".")[2] if "." in name else ""
        if not self.list.is_file(name):
            raise FileNotFoundError(f"source.path={cfg.path} is not a file")
        self.images = at(cfg.image_root or base)
        self.depths = at(cfg.depth_root or base)
        for key, tree in (("image_root", self.images), ("depth_root", self.depths)):
            if not tree.is_dir():
                raise FileNotFoundError(f"source.{key}={tree.where('')} is not a directory")
        self.dropped = 0
        self.list_bytes = self.list.read_bytes(name)
        text = self.list_bytes.decode("utf-8-sig", errors="replace")  # BOM: accepted
        if self.suffix in (".json", ".jsonl"):
            self.entries = self._metric3d(text)
        else:
            self.entries = self._lines(text)
        unique_keys([e.key for e in self.entries], f"source.path={cfg.path}")

    def _lines(self, text: str) -> list[Entry]:
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            cols = line.split()
            if not cols or cols[0].startswith("#"):
                continue
            if len(cols) not in (2, 3):
                raise PipelineError(
                    f"source.path={self.cfg.path} line {number}: expected `rgb depth [focal]`, "
                    f"got {len(cols)} column(s)"
                )
            if cols[1] == "None":
                self.dropped += 1
                continue
            focal = None
            if len(cols) == 3:
                try:
                    focal = float(cols[2])
                except ValueError:
                    raise PipelineError(
                        f"source.path={self.cfg.path} line {number}: focal {cols[2]!r} is not "
                        f"a number"
                    ) from None
            self._inside_roots(cols[0], cols[1], f"line {number}")
            entries.append(Entry(_key(cols[0]), cols[0], cols[1], focal))
        return entries

    def _inside_roots(self, image: str, depth: str, where: str) -> None:
        """A listed path climbing out of its root with '..' cannot become a safe key."""
        for listed, root in ((image, "source.image_root"), (depth, "source.depth_root")):
            if ".." in listed.replace("\\", "/").split("/"):
                raise PipelineError(
                    f"source.path={self.cfg.path} {where}: {listed!r} climbs out of "
                    f"{root} with '..'; list paths under the roots (or set {root} to a "
                    f"folder above them)"
                )

    def _metric3d(self, text: str) -> list[Entry]:
        where = "record"
        try:
            if self.suffix == ".json":
                numbered = list(enumerate(json.loads(text)["files"], 1))
            else:
                numbered = []
                for number, line in enumerate(text.splitlines(), 1):
                    where = f"line {number}"
                    if line.strip():
                        numbered.append((number, json.loads(line)))
            entries = []
            for number, r in numbered:
                where = f"{'record' if self.path.suffix == '.json' else 'line'} {number}"
                if r.get("depth") in (None, "None"):
                    self.dropped += 1
                    continue
                cam = r.get("cam_in")
                if cam is not None and (isinstance(cam, (str, dict)) or len(cam) != 4):
                    raise PipelineError(
                        f"source.path={self.cfg.path} {where}: cam_in={cam!r} must be the 4 "
                        f"numbers [fx, fy, cx, cy] (pixels); fix that record"
                    )
                cam_in = tuple(float(v) for v in cam) if cam else None
                if not all(isinstance(r.get(k), str) for k in ("rgb", "depth")):
                    raise TypeError("rgb and depth must be paths (strings)")
                scale = float(r["depth_scale"]) if "depth_scale" in r else None
                self._inside_roots(r["rgb"], r["depth"], where)
                entries.append(Entry(_key(r["rgb"]), r["rgb"], r["depth"], None, cam_in, scale))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PipelineError(
                f"source.path={self.cfg.path} {where}: not a Metric3D record of {{rgb, depth, "
                f"cam_in, depth_scale}} ({type(exc).__name__}: {exc})"
            ) from None
        return entries

    def __len__(self) -> int:
        return len(self.entries)

    def identity(self) -> dict[str, object]:
        return {
            "kind": "filelist",
            "path": str(self.path.resolve()) if self._local_list else self.cfg.path,
            "image_root": _where(self.images),
            "depth_root": _where(self.depths),
            "num_samples": len(self.entries),
            "dropped_without_depth": self.dropped,
            "list_sha256": hashlib.sha256(self.list_bytes).hexdigest(),
            "list_bytes": len(self.list_bytes),
        }

    @property
    def _local_list(self) -> bool:
        return isinstance(self.list, LocalTree)

    def _files(self) -> Iterator[tuple[Tree, str]]:
        for e in self.entries:
            yield self.images, self.images.listed(e.image)
            yield self.depths, self.depths.listed(e.depth)

    def paths(self) -> list[Path]:
        """The list and every image and depth file it names, on local disk."""
        listed = [t.root / n for t, n in self._files() if isinstance(t, LocalTree)]
        return [self.path, *listed] if self._local_list else listed

    def urls(self) -> list[str]:
        """The list and every image and depth file it names, at a URL."""
        listed = [t.where(n) for t, n in self._files() if not isinstance(t, LocalTree)]
        return listed if self._local_list else [self.cfg.path, *listed]

    def inputs_fingerprint(self, start: int, stop: int) -> str:
        """The list's identity and, for samples ``start`` .. ``stop``, each image and depth
        file's size and modification time (objects: size and ETag): a resumed run keeps
        nothing made from a file that changed since."""
        digest = hashlib.sha256(super().inputs_fingerprint(start, stop).encode())
        for e in self.entries[start:stop]:
            for tree, listed in ((self.images, e.image), (self.depths, e.depth)):
                name = tree.listed(listed)
                digest.update(f"{e.key}|{name}|{tree.stamp(name)}\n".encode())
        return digest.hexdigest()[:16]

    def iter(self, start: int, stop: int) -> Iterator[Sample | SampleError]:
        return read_each(self.entries[start:stop], self._read)

    def _read(self, e: Entry) -> Sample:
        image_name, depth_name = self.images.listed(e.image), self.depths.listed(e.depth)
        image = self.images.read(image_name, e.key)
        depth = self.depths.read(depth_name, e.key)
        if depth.ndim == 3 and depth.shape[2] > 1:
            where = self.depths.where(depth_name)
            raise SampleError(e.key, f"{where}: depth has {depth.shape[2]} channels")
        if self.suffix in (".json", ".jsonl"):
            depth = self._metres(e, depth)
        origin = Origin("filelist", self.images.where(image_name))
        return Sample(e.key, image, depth, origin, self._camera(e, image.shape))

    def _metres(self, e: Entry, depth: np.ndarray) -> np.ndarray:
        """A Metric3D record's depth in metres: stored value / its ``depth_scale`` (default
        ``source.depth_scale``; float32 depth is metres already)."""
        if e.depth_scale is None:
            old = old_meaning(self.cfg.depth_scale, depth.dtype)
            if old:  # the list's default, not one record's: the run stops
                raise PipelineError(f"source.path={self.cfg.path} sample {e.key}: {old}")
        scale = self.cfg.depth_scale if e.depth_scale is None else e.depth_scale
        if not (math.isfinite(scale) and scale > 0):
            raise SampleError(
                e.key,
                f"depth_scale {scale:g} in source.path={self.cfg.path} must be finite "
                f"and > 0 ({MEANING})",
            )
        if depth.dtype == np.float32:
            return depth
        return depth.astype(np.float32) / np.float32(scale)

    def _camera(self, e: Entry, shape: tuple[int, ...]) -> Camera | None:
        """The listed intrinsics: Metric3D's cam_in, or the focal column with the principal
        point from source.camera.cx/cy (default the image centre)."""
        if e.cam_in is not None:
            return Camera(*e.cam_in)
        if e.focal is None:
            return None  # finalize falls back to source.camera
        c = self.cfg.camera
        cx = c.cx if c.cx is not None else (shape[1] - 1) / 2
        cy = c.cy if c.cy is not None else (shape[0] - 1) / 2
        return Camera(e.focal, c.fy if c.fy is not None else e.focal, cx, cy)


def _key(listed: str) -> str:
    return make_key(listed.lstrip("/").rpartition(".")[0] or listed)


def _where(tree: Tree) -> str:
    """A local root resolved (as recorded ever since); a URL as given."""
    return str(tree.root.resolve()) if isinstance(tree, LocalTree) else tree.where("")
