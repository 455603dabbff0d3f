"""Trainer file lists: the folders of ``output=folder`` with 16-bit PNG (or ``.npy``)
depth, plus, at
publish time, the lists depth trainers read.

- ``{prefix}_files_with_gt.txt``: ``rgb depth focal`` per line, the BTS / AdaBins /
  ZoeDepth (and Depth-Anything metric fine-tuning) format; ``rgb`` is relative to
  ``image/`` (their ``data_path``), ``depth`` to ``depth/`` (``gt_path``), focal = fx in
  pixels of the written image;
- ``{prefix}.jsonl`` (one record per line) and ``{prefix}.json`` (``{"files": [...]}``,
  Metric3D's annotation file): ``{rgb, depth, cam_in: [fx, fy, cx, cy], depth_scale}``
  with paths relative to output.dir and depth = PNG value / depth_scale metres (and, in
  a mixture, the sample's part ``dataset`` and its ``data_type``).

A mixture's parts are written each at its own depth scale (``source.parts.<part>.
depth.scale``: KITTI 256, NYU 1000 by default), so the BTS list, which states no scale,
is one per part, ``{prefix}_{part}_files_with_gt.txt`` (a trainer config points at one
part, with that part's scale); ``{prefix}_files_with_gt.txt`` only when every sample has
the same scale. The Metric3D lists hold every part, each record with its scale.

The focal length is the written sample's (``meta/{key}.json`` camera); a sample without
one cannot be listed (a run is refused up front when the first sample has none).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pipeline.dataset.layouts.folder import METADATA, FolderLayout, Row
from pipeline.dataset.records import DatasetInfo
from pipeline.dataset.writers import atomic_write
from pipeline.encode import codecs
from pipeline.encode.depth import depth_encoding, from_info
from pipeline.encode.record import Record
from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from pipeline.config.schema import OutputConfig


class FilelistLayout(FolderLayout):
    name = "filelist"
    needs_focal = True

    def lists(self) -> dict[str, str]:
        """The list files by kind, relative to output.dir."""
        p = self.prefix
        return {"txt": f"{p}_files_with_gt.txt", "jsonl": f"{p}.jsonl", "json": f"{p}.json"}

    def part_list(self, part: str) -> str:
        """The BTS / ZoeDepth list of one part of a mixture."""
        return f"{self.prefix}_{part}_files_with_gt.txt"

    def extra_files(self) -> list[str]:
        return [METADATA, *getattr(self, "written", self.lists().values())]

    def check(self, output: OutputConfig) -> None:
        """Depth the trainers read (the focal length of the first sample is checked with
        the transforms, ``run.checks.augment_first``)."""
        if not depth_encoding(output).for_lists:
            raise PipelineError(
                f"output=filelist writes 16-bit PNG depth (what the trainers read) or npy, "
                f"not output.depth.format={output.depth.format}; drop that override or "
                f"use output=folder"
            )

    def write_lists(self, rows: list[Row], info: DatasetInfo) -> None:
        names = self.lists()
        lines, records = [], []
        for files, meta, shape in rows:
            image_rel, depth_rel = files["image"], files["depth"]
            record = Record.from_json(meta)
            camera = record.camera
            fx = camera.fx
            lines.append(f"{image_rel.partition('/')[2]} {depth_rel.partition('/')[2]} {fx!r}\n")
            cx = camera.cx if camera.cx is not None else (shape[1] - 1) / 2
            cy = camera.cy if camera.cy is not None else (shape[0] - 1) / 2
            fy = camera.fy if camera.fy is not None else fx
            entry = {
                "rgb": image_rel,
                "depth": depth_rel,
                "cam_in": [fx, fy, cx, cy],
                "depth_scale": record.depth_scale,
            }
            if record.dataset:  # a mixture's part, as Metric3D's annotations name it
                entry |= {"dataset": record.dataset, "data_type": record.data_type}
            records.append(entry)
        texts = {}
        if len({r["depth_scale"] for r in records}) <= 1:  # one scale: one BTS list holds all
            texts[names["txt"]] = "".join(lines)
        for part in dict.fromkeys(r.get("dataset", "") for r in records):
            if part:
                mine = [line for line, r in zip(lines, records) if r.get("dataset") == part]
                texts[self.part_list(part)] = "".join(mine)
        for rel, text in texts.items():
            atomic_write(self.root / rel, text.encode())
        jsonl = b"".join(codecs.encode_json(r) + b"\n" for r in records)
        atomic_write(self.root / names["jsonl"], jsonl)
        atomic_write(self.root / names["json"], json.dumps({"files": records}).encode())
        self.written = [*texts, names["jsonl"], names["json"]]

    def describe(self, info: DatasetInfo) -> str:
        names, depth = self.lists(), from_info(info.encodings["depth"])
        image = info.encodings["image"]["ext"]
        scales = part_scales(info)
        bts, words = f"`{names['txt']}`", depth.words()
        if scales:
            each = ", ".join(f"`{self.part_list(p)}` (PNG / {s:g})" for p, s in scales.items())
            bts = f"One list per part, each at its part's depth scale: {each}"
            words = "uint16 PNG, metres x its part's scale, 0 = invalid"
        return (
            f"Trainer file lists. {bts}: `rgb depth focal` per line (BTS, "
            f"AdaBins, ZoeDepth: data_path = `image/`, gt_path = `depth/`); "
            f"`{names['jsonl']}` and `{names['json']}` (Metric3D): `rgb`, `depth` relative "
            f"to this directory, `cam_in` = [fx, fy, cx, cy] (the image centre where the "
            f"principal point is unknown), `depth_scale`. Files: `image/{{key}}.{image}` "
            f"(RGB uint8), `depth/{{key}}.{depth.ext.rpartition('.')[2]}` ({words}), "
            f"`meta/{{key}}.json`; "
            f"`{METADATA}` lists them all for `datasets`"
            f"{'' if depth.image else ' (the depth as its path `depth_file`)'}."
        )


def part_scales(info: DatasetInfo) -> dict[str, float]:
    """A mixture's png16 depth scale per part, as its config records it ({} otherwise)."""
    if info.encodings.get("depth", {}).get("ext") != "depth.png":
        return {}
    parts = (info.config.get("source") or {}).get("parts") or {}
    return {
        name: float(scale)
        for name, part in parts.items()
        if (scale := ((part or {}).get("depth") or {}).get("scale")) is not None
    }
