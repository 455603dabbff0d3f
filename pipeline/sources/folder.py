"""Image / depth file pairs in a directory tree.

Images are ``source.image_glob`` under ``source.path`` in sorted (deterministic) order;
``source.depth_path`` (and ``source.mask_path``) are templates giving each image's depth
(and validity mask, and camera) file, filled from the image's relative path and the named
groups of ``source.image_regex``. Depth files: float TIFF, 16-bit PNG (/ ``depth_scale``)
or .npy. Camera files: ``.json`` or a text calibration (KITTI's per-date
``calib_cam_to_cam.txt``, line ``source.camera_entry``), read once per file.
``source.path`` may be a URL (``s3://bucket/nyu/``): the objects are listed once (fsspec
glob) and each is fetched when its sample is read (``tree.UrlTree``).
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from PIL import Image

from pipeline.config import urls
from pipeline.config.sources import FolderConfig
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Camera, Origin, Sample
from pipeline.sources import Source
from pipeline.sources.cameras import camera_file
from pipeline.sources.files import (
    IMAGE_EXTS,
    apply_mask,
    make_key,
    read_each,
    unique_keys,
)
from pipeline.sources.headers import MAX_FILE_BYTES
from pipeline.sources.tree import LocalTree, tree_at

# key, image, depth, mask, camera file, camera entry (paths relative to source.path)
Item = tuple[str, str, str, str | None, str | None, str | None]


class FolderSource(Source):
    """One sample per image file; the key is the image path relative to ``source.path``
    without extension (or the regex group ``key``), sanitized."""

    def __init__(self, cfg: FolderConfig) -> None:
        if not cfg.path:
            raise ValueError("set source.path to the dataset directory")
        if cfg.unpaired not in ("error", "drop"):
            raise PipelineError("source.unpaired must be error or drop")
        self.cfg = cfg
        self.tree = tree_at(cfg.path, cfg.filesystem)
        if not self.tree.is_dir():
            raise FileNotFoundError(f"source.path={cfg.path} is not a directory")
        try:
            self.regex = re.compile(cfg.image_regex) if cfg.image_regex else None
        except re.error as exc:
            raise PipelineError(f"source.image_regex: {exc}") from None
        matched = self.tree.glob(cfg.image_glob)
        images = sorted(
            rel for rel in matched if PurePosixPath(rel).suffix.lower().lstrip(".") in IMAGE_EXTS
        )
        if not images:
            raise PipelineError(self._no_images(len(matched)))
        self.items: list[Item] = []
        self.cameras: dict[tuple[str, str | None, int, int], Camera | None] = {}
        self.dropped = 0
        for rel in images:
            fields = self._fields(rel)
            if fields is None:
                continue
            depth = self._fill(cfg.depth_path, fields, "source.depth_path")
            mask = self._fill(cfg.mask_path, fields, "source.mask_path") if cfg.mask_path else None
            if cfg.unpaired == "drop" and not self.tree.is_file(depth):
                self.dropped += 1
                continue
            cam = (
                self._fill(cfg.camera_path, fields, "source.camera_path")
                if cfg.camera_path
                else None
            )
            entry = cfg.camera_entry
            if cam is not None and entry is not None:
                entry = self._fill(entry, fields, "source.camera_entry")
            self.items.append((make_key(fields["key"]), rel, depth, mask, cam, entry))
        if not self.items:
            raise PipelineError(self._no_pairs(images))
        unique_keys([item[0] for item in self.items], f"source.path={cfg.path}")

    def _no_images(self, matched: int) -> str:
        """Why ``image_glob`` found no image: what it matched, what the directory holds."""
        glob, where = self.cfg.image_glob, f"source.path={self.cfg.path}"
        if matched:
            return (
                f"source.image_glob={glob!r} matches {matched} file(s) under {where} but no "
                f"image ({', '.join(sorted(IMAGE_EXTS))}); point it at the images"
            )
        found: dict[str, list[str]] = {}  # extension -> files
        for i, rel in enumerate(self._all_files()):
            if i >= 5000:  # enough for a hint; a KITTI tree holds ~10^5 files
                break
            ext = PurePosixPath(rel).suffix.lower().lstrip(".")
            if ext in IMAGE_EXTS:
                found.setdefault(ext, []).append(rel)
        seen = ", ".join(
            f"{len(files)} .{ext} (e.g. {min(files)})"
            for ext, files in sorted(found.items(), key=lambda kv: -len(kv[1]))
        )
        held = f"; it holds {seen}" if seen else "; it holds no image files"
        return f"source.image_glob={glob!r} matches no file under {where}{held}"

    def _all_files(self) -> Iterator[str]:
        """Files below the root (for a hint only)."""
        if isinstance(self.tree, LocalTree):
            root = self.tree.root
            return (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        return iter(self.tree.glob("**"))

    def _no_pairs(self, images: list[str]) -> str:
        """Why none of the images became a sample: regex or depth files."""
        c = self.cfg
        glob = f"the {len(images)} image(s) of source.image_glob={c.image_glob!r}"
        if self.regex is not None and all(self._fields(rel) is None for rel in images):
            return (
                f"source.image_regex={c.image_regex!r} matches none of {glob} "
                f"(e.g. {images[0]!r}); fix source.image_regex or set it to null"
            )
        first = self._fields(next(r for r in images if self._fields(r) is not None)) or {}
        depth = self._fill(c.depth_path, first, "source.depth_path")
        return (
            f"none of {glob} under source.path={c.path} has a depth file at "
            f"source.depth_path={c.depth_path!r} (e.g. {depth!r} does not exist)"
        )

    def _fields(self, rel: str) -> dict[str, str] | None:
        """Template fields of one image; None if ``image_regex`` does not match it."""
        p = PurePosixPath(rel)
        fields = {
            "rel": str(p.with_suffix("")),
            "dir": str(p.parent),
            "stem": p.stem,
            "name": p.name,
            "ext": p.suffix.lstrip("."),
        }
        if self.regex is not None:
            match = self.regex.search(rel)
            if match is None:
                return None
            fields |= {k: v for k, v in match.groupdict().items() if v is not None}
        fields.setdefault("key", fields["rel"])
        return fields

    @staticmethod
    def _fill(template: str, fields: dict[str, str], name: str) -> str:
        try:
            return template.format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            raise PipelineError(
                f"{name}={template!r}: unknown field {exc}; use {{rel}}, {{dir}}, {{stem}}, "
                f"{{name}}, {{ext}} or a named group of source.image_regex"
            ) from None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def size(self) -> tuple[int, int] | None:
        """(H, W) of the first image, from its header only."""
        if not self.items:
            return None
        first = self.items[0][1]
        try:
            size = self.tree.file_size(first)
            if size is None or size > MAX_FILE_BYTES:
                return None  # a FIFO would block here: its sample says what is wrong
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with self.tree.open(first) as fh, Image.open(fh) as im:
                    return im.size[1], im.size[0]
        except (OSError, Image.DecompressionBombError):
            return None  # reported as a sample error when the run reaches it

    def for_workers(self) -> FolderSource | None:
        """A folder at a URL: this opened source with its listing, so that workers do
        not list the bucket again; a local one is globbed again by each worker."""
        return None if isinstance(self.tree, LocalTree) else self

    def paths(self) -> list[Path]:
        """``source.path`` and every file a sample reads (a depth template may point
        anywhere, an image may be a symlink)."""
        if not isinstance(self.tree, LocalTree):
            return []
        root = self.tree.root
        return [root, *(root / f for f in self._files())]

    def urls(self) -> list[str]:
        """``source.path`` and every object a sample reads, at a URL."""
        if isinstance(self.tree, LocalTree):
            return []
        return [self.cfg.path, *(self.tree.where(f) for f in self._files())]

    def _files(self) -> list[str]:
        return sorted({f for item in self.items for f in item[1:5] if f is not None})

    def identity(self) -> dict[str, object]:
        listing = hashlib.sha256()
        for key, image, depth, mask, cam, entry in self.items:
            camera = f"\0{cam}\0{entry}" if cam is not None else ""
            listing.update(f"{key}\0{image}\0{depth}\0{mask}{camera}\n".encode())
        c = self.cfg
        return {
            "kind": "folder",
            "path": str(self.tree.root.resolve())
            if isinstance(self.tree, LocalTree)
            else self.cfg.path,
            "image_glob": c.image_glob,
            "image_regex": c.image_regex,
            "depth_path": c.depth_path,
            "mask_path": c.mask_path,
            "camera_path": c.camera_path,
            "camera_entry": c.camera_entry,
            "num_samples": len(self.items),
            "dropped_without_depth": self.dropped,
            "file_list_sha256": listing.hexdigest(),
        }

    def inputs_fingerprint(self, start: int, stop: int) -> str:
        """Names, sizes and modification times (objects: size and ETag) of the files
        samples ``start`` .. ``stop`` read: a resumed run keeps nothing made from files
        that changed since."""
        digest = hashlib.sha256()
        for key, *files in self.items[start:stop]:
            digest.update(f"{key}\n".encode())
            for rel in files:
                stamp = self.tree.stamp(rel) if rel is not None else "-"
                digest.update(f"{rel}|{stamp}\n".encode())
        return digest.hexdigest()[:16]

    def iter(self, start: int, stop: int) -> Iterator[Sample | SampleError]:
        return read_each(self.items[start:stop], self._read)

    def _read(self, item: Item) -> Sample:
        key, rel, depth_rel, mask_rel, camera_rel, entry = item
        image = self.tree.read(rel, key)
        depth = self.tree.read(depth_rel, key)
        if depth.ndim == 3 and depth.shape[2] > 1:
            raise SampleError(
                key,
                f"{self.tree.where(depth_rel)}: depth has {depth.shape[2]} channels, expected one",
            )
        if mask_rel is not None:
            depth = apply_mask(depth, self.tree.read(mask_rel, key), key, mask_rel)
        camera = None
        if camera_rel is not None:
            camera = self._camera(key, camera_rel, entry, image.shape[0], image.shape[1])
        return Sample(key, image, depth, Origin("folder", self.tree.where(rel)), camera)

    def _camera(
        self, key: str, rel: str, entry: str | None, height: int, width: int
    ) -> Camera | None:
        """The camera in file ``rel`` (cached: KITTI has one calibration per date)."""
        cache_key = (rel, entry, height, width)
        if cache_key not in self.cameras:
            path = self.tree.where(rel)
            try:
                data = self.tree.read_bytes(rel) if urls.is_url(path) else None
                self.cameras[cache_key] = camera_file(path, entry, height, width, data)
            except OSError as exc:
                raise SampleError(
                    key, f"cannot read camera file {path} ({exc.strerror or exc})"
                ) from None
            except ValueError as exc:
                raise SampleError(key, f"camera file {path}: {exc}") from None
        return self.cameras[cache_key]
