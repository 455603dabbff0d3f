"""What makes an output directory self-describing: the config lock, ``dataset_info.json``
and the ``README.md`` dataset card that ``datasets.load_dataset(dir)`` understands."""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.resume import CARD_MARK
from pipeline.writers import TMP_NAME, atomic_write, tmp_path

LOCK_FILE = "manifests/config.json"  # resume.MANIFEST_DIR / resume.LOCK_NAME
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


COSMETIC = ("dir", "overwrite")  # output.* keys that do not shape the data


def data_config(cfg: Config) -> dict[str, Any]:
    """The part of the config that shapes output bytes.

    Left out: ``runtime.*``, ``report.*``, ``output.dir``/``overwrite`` and ``shard.*``
    (the slices of one dataset share its directory). Transforms keep their order
    (``augment.order``); a transform disabled with ``null`` counts as absent.
    """
    out = asdict(cfg.output)
    for cosmetic in COSMETIC:
        out.pop(cosmetic)
    augment = asdict(cfg.augment)
    augment["transforms"] = {k: v for k, v in augment["transforms"].items() if v is not None}
    augment["order"] = list(augment["transforms"])
    return {"source": asdict(cfg.source), "augment": augment, "output": out}


def config_hash(cfg: Config) -> str:
    blob = json.dumps(data_config(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


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


def read_lock(root: Path) -> dict[str, Any] | None:
    """The config lock of the dataset in ``root``, or None if there is none."""
    lock = root / LOCK_FILE
    if not lock.exists():
        return None
    try:
        body = json.loads(lock.read_text())
        assert isinstance(body, dict) and "hash" in body
    except (OSError, ValueError, AssertionError):
        raise PipelineError(
            f"{lock} is unreadable; use output.overwrite=true to replace the dataset in {root}"
        ) from None
    return body


def check_lock(root: Path, cfg: Config) -> bool:
    """Refuse a different config against an existing dataset; return True if one exists."""
    old = read_lock(root)
    if old is None:
        return False
    if old.get("hash") == config_hash(cfg):
        return True
    differ = config_diff(old.get("config", {}), data_config(cfg))
    shown = ", ".join(f"{k} ({_show(a)} -> {_show(b)})" for k, a, b in differ[:4]) + (
        f" and {len(differ) - 4} more" if len(differ) > 4 else ""
    )
    raise PipelineError(
        f"output.dir={root} holds a dataset made with a different config (differs in: "
        f"{shown}); use another output.dir, or output.overwrite=true to replace it"
    )


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


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
# RGB-D dataset {CARD_MARK}

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
    """Create ``root`` and prove a file can be written there, or say which dir and why."""
    probe = tmp_path(root / ".write-probe")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
        raise PipelineError(
            f"output.dir={root} is not writable ({exc.strerror}); choose another output.dir"
        ) from None


def check_ours(root: Path) -> None:
    """Refuse to write into a non-empty directory that holds no dataset of this tool."""
    if (root / LOCK_FILE).exists() or not root.is_dir():
        return
    foreign = [
        p.name
        for p in root.iterdir()
        if not p.name.startswith(".") and p.name != "manifests" and not TMP_NAME.match(p.name)
    ]
    if foreign:
        raise PipelineError(
            f"output.dir={root} is not empty ({', '.join(sorted(foreign)[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}) and holds no depth-pipeline dataset; "
            f"choose a new or empty output.dir"
        )
