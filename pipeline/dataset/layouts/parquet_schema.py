"""The columns of a parquet shard, derived from ``encode.record.Record``: the Arrow schema
(carrying the ``datasets`` features in its ``huggingface`` metadata, so the types survive
without the card), the card's ``features`` YAML, and a row to and from the stored record.

``image`` and ``depth_map`` are ``datasets.Image`` (``{bytes, path}``) like the hub's
``sayakpaul/nyu_depth_v2``; ``mask`` one too when an evaluation region is written; the
record's fields are typed columns (``camera`` a struct, ``params`` its JSON text).
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from pipeline.encode.codecs import encode_json
from pipeline.encode.record import (
    AugmentRecord,
    CameraRecord,
    Record,
    SourceRecord,
    features,
)

IMAGE_COLUMNS = ("image", "depth_map", "mask")
_ARROW = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}
_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def columns() -> list[dict[str, Any]]:
    """The columns in card-YAML form (``name`` + ``dtype``, ``list`` or ``struct``). The
    same in every shard and split: ``mask`` is null where no evaluation region is written
    (``datasets`` casts every split of a config to one schema)."""
    image = [{"name": n, "dtype": "image"} for n in IMAGE_COLUMNS]
    scalar = [{"name": n, "dtype": t} for n, t in (("key", "string"), ("dataset", "string"))]
    return [
        scalar[0],
        *image,
        scalar[1],
        {"name": "data_type", "dtype": "string"},
        {"name": "camera", "struct": features(CameraRecord)},
        {"name": "depth_scale", "dtype": "float64"},
        {"name": "params", "dtype": "string"},
        {"name": "index", "dtype": "int64"},
        {"name": "copy", "dtype": "int64"},
        {"name": "source", "struct": features(SourceRecord)},
    ]


def _arrow_type(col: dict[str, Any]) -> pa.DataType:
    if "struct" in col:
        return pa.struct([(c["name"], _arrow_type(c)) for c in col["struct"]])
    if "list" in col:
        return pa.list_(_ARROW[col["list"]])
    return _IMAGE if col["dtype"] == "image" else _ARROW[col["dtype"]]


def _hf_feature(col: dict[str, Any]) -> dict[str, Any]:
    """``datasets.Features.to_dict`` form of one column."""
    if "struct" in col:
        return {c["name"]: _hf_feature(c) for c in col["struct"]}
    if "list" in col:
        return {"feature": {"dtype": col["list"], "_type": "Value"}, "_type": "List"}
    if col["dtype"] == "image":
        return {"_type": "Image"}
    return {"dtype": col["dtype"], "_type": "Value"}


def schema() -> pa.Schema:
    """The Arrow schema of a shard, with the ``datasets`` features as its metadata."""
    cols = columns()
    hf = {"info": {"features": {c["name"]: _hf_feature(c) for c in cols}}}
    return pa.schema(
        [(c["name"], _arrow_type(c)) for c in cols],
        metadata={"huggingface": json.dumps(hf, separators=(",", ":"))},
    )


def row(fields: dict[str, bytes], image_ext: str, depth_ext: str) -> dict[str, Any]:
    """One shard row from a sample's encoded members (``png``, a depth member, ``json``,
    maybe ``mask.png``)."""
    record = Record.from_json(json.loads(fields["json"]))
    stored = record.to_json()
    out: dict[str, Any] = {
        "key": record.key,
        "image": {"bytes": fields[image_ext], "path": None},
        "depth_map": {"bytes": fields[depth_ext], "path": None},
        "dataset": record.dataset,
        "data_type": record.data_type,
        "camera": stored["camera"],
        "depth_scale": record.depth_scale,
        "params": stored["augment"]["params"],
        "index": record.augment.index,
        "copy": record.augment.copy,
        "source": stored["source"],
        "mask": {"bytes": fields["mask.png"], "path": None} if "mask.png" in fields else None,
    }
    return out


def part_of(fields: dict[str, bytes]) -> str:
    """The mixture part of a sample's encoded members ("" for a single source)."""
    return Record.from_json(json.loads(fields["json"])).dataset


def record_json(r: dict[str, Any]) -> bytes:
    """The sample's JSON record (what a tar's ``{key}.json`` holds) from a stored row."""
    augment = AugmentRecord(r["index"], r["copy"])
    record = Record(
        key=r["key"],
        source=SourceRecord(**r["source"]),
        augment=augment,
        camera=CameraRecord(**r["camera"]),
        depth_scale=r["depth_scale"],
        dataset=r["dataset"],
        data_type=r["data_type"],
    )
    out = record.to_json()
    out["augment"]["params"] = r["params"]
    return encode_json(out)
