"""The config record ``output.dir/manifests/config.json``: which config (the part that
shapes the bytes), and which source, made the dataset there. Its hash is checked when read:
a record that is not this tool's marks a directory that is not a depth-pipeline dataset.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.config.schema import Config
from pipeline.dataset.owned import CONFIG_RECORD
from pipeline.dataset.writers import atomic_write
from pipeline.errors import PipelineError

TOOL = "depth-pipeline"
# output.* keys that do not shape the data
COSMETIC = ("dir", "overwrite", "storage_options", "endpoint_url", "staging_dir", "lock_stale_s")
# source.* keys (of a mixture's parts too) that say how the data is reached, not what it is
ACCESS = ("storage_options", "endpoint_url")


def data_config(cfg: Config) -> dict[str, Any]:
    """The part of the config that shapes output bytes.

    Left out: ``runtime.*``, ``report.*``, ``output.dir``/``overwrite`` (and where a URL
    is staged and reached; how a source's URL is reached), ``shard.*``
    (the slices of one dataset share its directory). Transforms keep their order
    (``augment.order``); a transform disabled with ``null`` counts as absent.
    """
    out = asdict(cfg.output)
    for cosmetic in COSMETIC:
        out.pop(cosmetic)
    augment = asdict(cfg.augment)
    augment["transforms"] = {k: v for k, v in augment["transforms"].items() if v is not None}
    augment["order"] = list(augment["transforms"])
    return {"source": _without_access(asdict(cfg.source)), "augment": augment, "output": out}


def _without_access(source: dict[str, Any]) -> dict[str, Any]:
    """A source's data config without ``ACCESS`` keys, in a mixture's parts too."""
    out = {k: v for k, v in source.items() if k not in ACCESS}
    if isinstance(out.get("parts"), dict):
        out["parts"] = {
            name: {**part, "source": _without_access(part["source"])}
            if isinstance(part, dict) and isinstance(part.get("source"), dict)
            else part
            for name, part in out["parts"].items()
        }
    return out


def _hash(data: dict[str, Any]) -> str:
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def config_hash(cfg: Config) -> str:
    return _hash(data_config(cfg))


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict) or not d:
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out |= _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every leaf where two data configs differ."""
    before, after = _flatten(old), _flatten(new)
    return [
        (k, before.get(k, "<unset>"), after.get(k, "<unset>"))
        for k in sorted(before.keys() | after.keys())
        if before.get(k) != after.get(k)
    ]


def read_record(root: Path) -> dict[str, Any] | None:
    """The config record of the dataset in ``root``, None if there is none; a record that
    is not this tool's (unparsable, or its hash does not match its config) is refused."""
    record = root / CONFIG_RECORD
    if not record.exists():
        return None
    try:
        body = json.loads(record.read_text())
        valid = (
            isinstance(body, dict)
            and body.get("tool", TOOL) == TOOL
            and isinstance(body.get("config"), dict)
            and body.get("hash") == _hash(body["config"])
        )
    except (OSError, ValueError):
        valid = False
    if not valid:
        raise PipelineError(
            f"output.dir={root}: {CONFIG_RECORD} is not a config record written by "
            f"depth-pipeline, so the directory is not treated as a dataset and nothing in it "
            f"is deleted; choose another output.dir (or move that file away yourself)"
        )
    return body


def check_record(root: Path, cfg: Config, old: dict[str, Any] | None) -> None:
    """Refuse a different config against an existing dataset, naming the keys that differ."""
    if old is None or old.get("hash") == config_hash(cfg):
        return
    differ = config_diff(old.get("config", {}), data_config(cfg))
    raise PipelineError(
        f"output.dir={root} holds a dataset made with a different config (differs in: "
        f"{shown(differ)}); use another output.dir, or output.overwrite=true to replace it"
    )


def shown(differ: list[tuple[str, Any, Any]]) -> str:
    shown = ", ".join(f"{k} ({_show(a)} -> {_show(b)})" for k, a, b in differ[:4])
    return shown + (f" and {len(differ) - 4} more" if len(differ) > 4 else "")


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def write_record(root: Path, cfg: Config, source: dict[str, Any]) -> None:
    body = {
        "tool": TOOL,
        "hash": config_hash(cfg),
        "config": data_config(cfg),
        "source": source,
    }
    atomic_write(
        root / CONFIG_RECORD, json.dumps(body, indent=2, sort_keys=True, default=str).encode()
    )
