"""The per-sample JSON record: ``{key}.json`` in a tar, ``meta/{key}.json`` in folders, a
row of ``metadata.jsonl``. Its keys and types are the same in every sample of every
dataset, because ``datasets`` (Arrow) fixes a schema from the first rows: a field that is
null in some samples and an object in others (a transform that rarely fires) would make
``load_dataset`` fail. So the applied parameters are one JSON string, and the camera
always has its four keys::

    {
      "key": "train/000001",                  # the written key
      "source": {"kind": "hub", "key": "train/000001", "location": "nyu[train][1]"},
      "augment": {"index": 1, "copy": 0, "params": "{\\"flip\\":null,\\"crop\\":{...}}"},
      "camera": {"fx": 518.86, "fy": 519.47, "cx": 325.58, "cy": 253.74,
                 "approximate": false, "homography": [1.0, 0.0, 0.0, ...]},
      "depth_scale": 1000.0                   # stored depth / depth_scale = metres
    }

``params`` is the JSON text of ``{transform name: its applied parameters, or null when it
did not fire}`` in the configured order (``pipeline.read`` parses it back). ``camera``
is ``pipeline.sample.camera_json``: intrinsics in pixels (null when unknown), whether they
are approximate, and the 3x3 homography from source to written pixels (always 9 floats).
``depth_scale`` is 1.0 for float TIFF depth.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.sample import Sample

CAMERA_KEYS = ("fx", "fy", "cx", "cy")
# The record's Arrow schema as the dataset card declares it (``datasets`` YAML features).
RECORD_FEATURES: list[dict[str, Any]] = [
    {"name": "key", "dtype": "string"},
    {
        "name": "source",
        "struct": [{"name": k, "dtype": "string"} for k in ("kind", "key", "location")],
    },
    {
        "name": "augment",
        "struct": [
            {"name": "index", "dtype": "int64"},
            {"name": "copy", "dtype": "int64"},
            {"name": "params", "dtype": "string"},
        ],
    },
    {
        "name": "camera",
        "struct": [
            *({"name": k, "dtype": "float64"} for k in CAMERA_KEYS),
            {"name": "approximate", "dtype": "bool"},
            {"name": "homography", "list": "float64"},
        ],
    },
    {"name": "depth_scale", "dtype": "float64"},
]


def record(
    out: Sample, key: str, index: int, copy: int, camera: dict[str, float | None], scale: float
) -> dict[str, Any]:
    """The JSON record of written sample ``key`` (copy ``copy`` of input ``index``)."""
    source = out.meta.get("source") or {}
    params = (out.meta.get("augment") or {}).get("params") or {}
    return {
        "key": key,
        "source": {
            "kind": str(source.get("kind", "")),
            "key": out.key,
            "location": str(source.get("location", "")),
        },
        "augment": {
            "index": index,
            "copy": copy,
            "params": json.dumps(params, separators=(",", ":")),
        },
        "camera": camera,
        "depth_scale": float(scale),
    }


def parse(meta: dict[str, Any]) -> dict[str, Any]:
    """A record with ``augment.params`` parsed back into a dict."""
    augment = dict(meta.get("augment") or {})
    if isinstance(augment.get("params"), str):
        augment["params"] = json.loads(augment["params"])
    return {**meta, "augment": augment}


def _float(value: Any) -> Any:
    return (
        float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    )


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
