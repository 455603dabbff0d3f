"""The per-sample record: ``{key}.json`` in a tar, ``meta/{key}.json`` in folders, a row
of ``metadata.jsonl``, and (with the sample's shape and invalid share) its entry in the
shard manifest. ``Record`` is its one description: the JSON, the Arrow features the
dataset card declares (``features``) and the manifest entry all derive from its fields.

Its keys and types are the same in every sample of every dataset, because ``datasets``
(Arrow) fixes a schema from the first rows: a field that is null in some samples and an
object in others (a transform that rarely fires) would make ``load_dataset`` fail. So the
applied parameters are one JSON string, and the camera always has its four keys::

    {
      "key": "train/000001",                  # the written key
      "source": {"kind": "hub", "key": "train/000001", "location": "nyu[train][1]"},
      "augment": {"index": 1, "copy": 0, "params": "{\\"flip\\":null,\\"crop\\":{...}}"},
      "camera": {"fx": 518.86, "fy": 519.47, "cx": 325.58, "cy": 253.74,
                 "approximate": false, "homography": [1.0, 0.0, 0.0, ...]},
      "depth_scale": 1000.0,                  # stored depth / depth_scale = metres
      "dataset": "nyu", "data_type": "dense"  # a mixture's part ("" for one source)
    }

``params`` is the JSON text of ``{transform name: its applied parameters, or null when it
did not fire}`` in the configured order (``Record.from_json`` parses it back). ``camera``
holds the intrinsics in pixels (null when unknown), whether they are approximate, and the
3x3 homography from source to written pixels (always 9 floats). ``depth_scale`` is 1.0 for
float depth.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from pipeline.sample import IDENTITY, Augmented, Camera

CAMERA_KEYS = ("fx", "fy", "cx", "cy")


class JsonText(dict):
    """A mapping stored as one JSON string (its keys vary from sample to sample)."""


@dataclass
class CameraRecord:
    """The written sample's camera: intrinsics in pixels (None = unknown), whether they
    are a pinhole fit of a map no pinhole expresses, and the source-to-written homography."""

    fx: float | None = None
    fy: float | None = None
    cx: float | None = None
    cy: float | None = None
    approximate: bool = False
    homography: list[float] = field(default_factory=lambda: list(IDENTITY))

    @classmethod
    def of(cls, camera: Camera | None, homography: tuple[float, ...]) -> CameraRecord:
        matrix = [float(v) for v in homography]
        if camera is None:
            return cls(homography=matrix)
        c = camera
        return cls(c.fx, c.fy, c.cx, c.cy, c.approximate, matrix)

    @property
    def known(self) -> bool:
        return self.fx is not None

    def camera(self) -> Camera | None:
        """The intrinsics as a ``Camera`` (None when unknown)."""
        if self.fx is None or self.fy is None or self.cx is None or self.cy is None:
            return None
        return Camera(self.fx, self.fy, self.cx, self.cy, self.approximate)


@dataclass
class SourceRecord:
    """Where the written sample was read: source kind, source key, location."""

    kind: str = ""
    key: str = ""
    location: str = ""


@dataclass
class AugmentRecord:
    """Which input (``index``) and copy the sample is, and the applied parameters."""

    index: int = 0
    copy: int = 0
    params: JsonText = field(default_factory=JsonText)


@dataclass
class Record:
    """One written sample's record."""

    key: str
    source: SourceRecord
    augment: AugmentRecord
    camera: CameraRecord
    depth_scale: float
    dataset: str = ""
    data_type: str = ""

    @classmethod
    def of(cls, out: Augmented, depth_scale: float) -> Record:
        return cls(
            key=out.key,
            source=SourceRecord(out.origin.kind, out.source_key, out.origin.location),
            augment=AugmentRecord(out.index, out.copy, JsonText(out.params)),
            camera=CameraRecord.of(out.camera, out.homography),
            depth_scale=float(depth_scale),
            dataset=out.origin.dataset,
            data_type=out.origin.data_type,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object (``params`` as its JSON text)."""
        out = asdict(self)
        out["augment"]["params"] = json.dumps(self.augment.params, separators=(",", ":"))
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        augment = dict(data.get("augment") or {})
        params = augment.get("params") or {}
        augment["params"] = JsonText(json.loads(params) if isinstance(params, str) else params)
        return cls(
            key=data["key"],
            source=SourceRecord(**(data.get("source") or {})),
            augment=AugmentRecord(**augment),
            camera=CameraRecord(**(data.get("camera") or {})),
            depth_scale=float(data.get("depth_scale", 1.0)),
            dataset=str(data.get("dataset", "")),
            data_type=str(data.get("data_type", "")),
        )


def parse(meta: dict[str, Any]) -> dict[str, Any]:
    """A record's JSON object with ``augment.params`` parsed back into a dict."""
    augment = dict(meta.get("augment") or {})
    if isinstance(augment.get("params"), str):
        augment["params"] = json.loads(augment["params"])
    return {**meta, "augment": augment}


_DTYPES = {str: "string", int: "int64", float: "float64", bool: "bool", JsonText: "string"}


def features(cls: type = Record) -> list[dict[str, Any]]:
    """The Arrow features of a record dataclass as the ``datasets`` card YAML declares
    them, derived from its fields (``str`` string, ``int`` int64, ``float`` float64 (also
    when optional), ``bool``, ``list[float]``, a nested record = a struct)."""
    hints = typing.get_type_hints(cls)
    out: list[dict[str, Any]] = []
    for f in fields(cls):
        kind = hints[f.name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            kind = args[0]
        if is_dataclass(kind):
            out.append({"name": f.name, "struct": features(kind)})
        elif typing.get_origin(kind) is list:
            out.append({"name": f.name, "list": _DTYPES[typing.get_args(kind)[0]]})
        else:
            out.append({"name": f.name, "dtype": _DTYPES[kind]})
    return out


RECORD_FEATURES = features()


def features_yaml(columns: list[dict[str, Any]], indent: int = 2) -> str:
    """``datasets`` YAML for a feature list (``name`` + ``dtype``, ``list`` or ``struct``)."""
    lines: list[str] = []
    pad = " " * indent
    for col in columns:
        lines.append(f'{pad}- name: "{col["name"]}"')
        if "struct" in col:
            lines.append(f"{pad}  struct:")
            lines.append(features_yaml(col["struct"], indent + 2))
        elif "list" in col:
            lines.append(f"{pad}  list: {col['list']}")
        else:
            lines.append(f"{pad}  dtype: {col['dtype']}")
    return "\n".join(lines)
