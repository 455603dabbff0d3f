"""Image / depth file pairs in a directory tree.

Images are ``source.image_glob`` under ``source.path`` in sorted (deterministic) order;
``source.depth_path`` (and ``source.mask_path``) are templates giving each image's depth
(and validity mask) file, filled from the image's relative path and the named groups of
``source.image_regex``. Depth files: float TIFF, 16-bit PNG (x ``depth_scale``) or .npy.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from PIL import Image

from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Sample
from pipeline.source_config import FolderConfig
from pipeline.sources import Source
from pipeline.sources.files import apply_mask, make_key, read_file, unique_keys

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


class FolderSource(Source):
    """One sample per image file; the key is the image path relative to ``source.path``
    without extension (or the regex group ``key``), sanitized."""

    def __init__(self, cfg: FolderConfig) -> None:
        if not cfg.path:
            raise ValueError("set source.path to the dataset directory")
        if cfg.unpaired not in ("error", "drop"):
            raise PipelineError("source.unpaired must be error or drop")
        self.cfg = cfg
        self.root = Path(cfg.path)
        if not self.root.is_dir():
            raise FileNotFoundError(f"source.path={cfg.path} is not a directory")
        try:
            self.regex = re.compile(cfg.image_regex) if cfg.image_regex else None
        except re.error as exc:
            raise PipelineError(f"source.image_regex: {exc}") from None
        images = sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.glob(cfg.image_glob)
            if p.suffix.lower() in IMAGE_EXTS and p.is_file()
        )
        self.items: list[tuple[str, str, str | None, str | None]] = []
        self.dropped = 0
        for rel in images:
            fields = self._fields(rel)
            if fields is None:
                continue
            depth = self._fill(cfg.depth_path, fields, "source.depth_path")
            mask = self._fill(cfg.mask_path, fields, "source.mask_path") if cfg.mask_path else None
            if cfg.unpaired == "drop" and not (self.root / depth).is_file():
                self.dropped += 1
                continue
            self.items.append((make_key(fields["key"]), rel, depth, mask))
        unique_keys([item[0] for item in self.items], f"source.path={cfg.path}")

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
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(self.root / self.items[0][1]) as im:
                    return im.size[1], im.size[0]
        except (OSError, Image.DecompressionBombError):
            return None  # reported as a sample error when the run reaches it

    def identity(self) -> dict[str, object]:
        listing = hashlib.sha256()
        for key, image, depth, mask in self.items:
            listing.update(f"{key}\0{image}\0{depth}\0{mask}\n".encode())
        c = self.cfg
        return {
            "kind": "folder",
            "path": str(self.root.resolve()),
            "image_glob": c.image_glob,
            "image_regex": c.image_regex,
            "depth_path": c.depth_path,
            "mask_path": c.mask_path,
            "num_samples": len(self.items),
            "dropped_without_depth": self.dropped,
            "file_list_sha256": listing.hexdigest(),
        }

    def inputs_fingerprint(self, start: int, stop: int) -> str:
        """Names, sizes and modification times of the files samples ``start`` .. ``stop``
        read: a resumed run redoes nothing made from files that changed since."""
        digest = hashlib.sha256()
        for key, *files in self.items[start:stop]:
            digest.update(f"{key}\n".encode())
            for rel in files:
                try:
                    st = (self.root / rel).stat() if rel is not None else None
                except OSError:
                    st = None
                stamp = f"{st.st_size}|{st.st_mtime_ns}" if st is not None else "-"
                digest.update(f"{rel}|{stamp}\n".encode())
        return digest.hexdigest()[:16]

    def iter(self, start: int, stop: int) -> Iterator[Sample | SampleError]:
        for key, rel, depth_rel, mask_rel in self.items[start:stop]:
            try:
                yield self._read(key, rel, depth_rel, mask_rel)
            except SampleError as err:
                yield err

    def _read(self, key: str, rel: str, depth_rel: str, mask_rel: str | None) -> Sample:
        image_file, depth_file = self.root / rel, self.root / depth_rel
        image = read_file(image_file, key)
        depth = read_file(depth_file, key)
        if depth.ndim == 3 and depth.shape[2] > 1:
            raise SampleError(
                key, f"{depth_file}: depth has {depth.shape[2]} channels, expected one"
            )
        if mask_rel is not None:
            depth = apply_mask(depth, read_file(self.root / mask_rel, key), key, mask_rel)
        meta = {"kind": "folder", "image": rel, "depth": depth_rel, "location": str(image_file)}
        return Sample(key, image, depth, {"source": meta})
