"""What makes an output directory self-describing: the config lock, ``dataset_info.json``
and the ``README.md`` dataset card that ``datasets.load_dataset(dir)`` understands."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.writers import atomic_write

LOCK_FILE = "manifests/config.json"
LIBRARIES = (
    "depth-pipeline",
    "numpy",
    "albumentations",
    "opencv-python-headless",
    "tifffile",
    "pillow",
    "hydra-core",
    "omegaconf",
    "datasets",
)


def data_config(cfg: Config) -> dict[str, Any]:
    """The part of the config that shapes output bytes (not workers, report, paths)."""
    out = asdict(cfg.output)
    for cosmetic in ("dir", "overwrite"):
        out.pop(cosmetic)
    return {"source": asdict(cfg.source), "augment": asdict(cfg.augment), "output": out}


def config_hash(cfg: Config) -> str:
    blob = json.dumps(data_config(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out |= _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def check_lock(root: Path, cfg: Config) -> bool:
    """Refuse a different config against an existing dataset; return True if one exists."""
    lock = root / LOCK_FILE
    if not lock.exists():
        return False
    old = json.loads(lock.read_text())
    if old.get("hash") == config_hash(cfg):
        return True
    before, after = _flatten(old.get("config", {})), _flatten(data_config(cfg))
    differ = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    shown = ", ".join(differ[:6]) + (" ..." if len(differ) > 6 else "")
    raise PipelineError(
        f"{root} holds a dataset made with a different config (differs in: {shown}); "
        f"use another output.dir, or output.overwrite=true to replace it"
    )


def write_lock(root: Path, cfg: Config) -> None:
    body = {"hash": config_hash(cfg), "config": data_config(cfg)}
    atomic_write(root / LOCK_FILE, json.dumps(body, indent=2, sort_keys=True, default=str).encode())


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_card(root: Path, cfg: Config, info: dict[str, Any]) -> None:
    """A dataset card whose YAML header lets ``datasets.load_dataset(dir)`` read the shards."""
    prefix = cfg.output.prefix
    if cfg.output.format == "webdataset":
        files = f"{prefix}-*.tar"
        layout = (
            f"Webdataset tar shards `{prefix}-NNNNNN.tar`; each sample has members "
            f"`{{key}}.png` (RGB uint8), `{{key}}.depth.tiff` (float32 metres, 0 = invalid) "
            f"and `{{key}}.json` (source and applied augmentation parameters)."
        )
        header = (
            f"---\nconfigs:\n- config_name: default\n  data_files:\n"
            f'  - split: {cfg.source.split}\n    path: "{files}"\n---\n'
        )
    else:
        layout = (
            "Folders `image/{key}.png` (RGB uint8), `depth/{key}.tiff` (float32 metres, "
            "0 = invalid) and `meta/{key}.json`."
        )
        header = ""
    stats = info.get("stats", {})
    text = f"""{header}
# RGB-D dataset made by depth-pipeline

{layout}

- samples: {info["counts"]["written"]} written, {info["counts"]["skipped"]} skipped
- image size (HxW): {info.get("image_size")}
- RGB mean / std (0-1): {stats.get("rgb_mean")} / {stats.get("rgb_std")}
- depth range over valid pixels (m): {stats.get("depth_min")} .. {stats.get("depth_max")}
- config hash: {info["config_hash"]}; full provenance in `dataset_info.json`, per-shard
  manifests (keys, sha256, applied params) in `manifests/`, report in `report/index.html`.

```python
import datasets
ds = datasets.load_dataset("{root}", split="{cfg.source.split}")
```
"""
    atomic_write(root / "README.md", text.encode())


def check_writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PipelineError(
            f"output.dir={root} is not writable ({exc.strerror}); choose another output.dir"
        ) from None
