"""The slices of a sliced run, as recorded: their records (``slices/``), the checks that
they belong together and are complete, and the merged ``dataset_info.json`` they make.
Where the records are read from (a directory, a URL's staging mirror) and what is
written is ``merge.py``'s and ``merge_remote.py``'s."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.config.schema import Config, to_config
from pipeline.dataset.config_record import config_diff
from pipeline.dataset.owned import SLICE_DIR
from pipeline.dataset.records import DatasetInfo, ShardManifest, StageTimes
from pipeline.dataset.verify import damaged
from pipeline.errors import PipelineError


def slice_name(index: int, num_shards: int) -> str:
    return f"slice-{index:05d}-of-{num_shards:05d}"


def load_slices(root: Path) -> list[dict[str, Any]]:
    files = sorted((root / SLICE_DIR).glob("slice-*.json"))
    if not files:
        raise PipelineError(
            f"{root} has no {SLICE_DIR}/slice-*.json: it was not written by sliced runs "
            f"(shard.num_shards > 1), or the path is wrong"
        )
    return [json.loads(f.read_text()) for f in files]


def failed_name(index: int, num_shards: int) -> str:
    """The record of a slice job that stopped on an error (its first line, for merge)."""
    return f"failed-{index:05d}-of-{num_shards:05d}.json"


def _first_error(root: Path, missing: list[int], n: int) -> str:
    """ "; slice-K failed: <its error>" for the first missing slice that recorded one."""
    for k in missing:
        try:
            error = json.loads((root / SLICE_DIR / failed_name(k, n)).read_text())["error"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        return f"; {slice_name(k, n)} failed: {error}"
    return ""


def _check(slices: list[dict[str, Any]], root: Path) -> int:
    """Same config and slice count everywhere, none missing; returns num_shards."""
    first = slices[0]
    name0 = slice_name(first["slice"], first["num_shards"])
    for s in slices[1:]:
        name = slice_name(s["slice"], s["num_shards"])
        if s["num_shards"] != first["num_shards"]:
            raise PipelineError(
                f"slices disagree on shard.num_shards: {name0} vs {name}; "
                f"remove the stale ones from slices/"
            )
        if s["config_hash"] != first["config_hash"]:
            differ = [k for k, _, _ in config_diff(first["data_config"], s["data_config"])]
            raise PipelineError(
                f"slices were made with different configs: {name} differs from {name0} in "
                f"{', '.join(differ[:6]) or 'the config hash'}; re-run it with the same config"
            )
    n = first["num_shards"]
    missing = sorted(set(range(n)) - {s["slice"] for s in slices})
    if missing:
        names = ", ".join(slice_name(i, n) for i in missing[:8]) + (
            " ..." if len(missing) > 8 else ""
        )
        raise PipelineError(
            f"{len(missing)} of {n} slices missing: {names}{_first_error(root, missing, n)}; "
            f"run those jobs (shard.index={','.join(map(str, missing[:8]))} "
            f"shard.num_shards={n}) and merge again"
        )
    return n


Damaged = Callable[[Path, ShardManifest], list[str]]  # a shard's problems, one line each


def _manifests(root: Path, s: dict[str, Any], check: Damaged = damaged) -> list[ShardManifest]:
    """The manifests of one slice's shards, each with its files as written (sha256)."""
    out = []
    for name in s["shards"]:
        manifest = ShardManifest.read(root, name)
        if manifest is None:
            raise PipelineError(
                f"{slice_name(s['slice'], s['num_shards'])}: shard manifest "
                f"{ShardManifest.path(root, name)} is missing or unreadable; re-run that slice"
            )
        problems = check(root, manifest)
        if problems:
            raise PipelineError(
                f"{slice_name(s['slice'], s['num_shards'])}: {problems[0]}; re-run that slice "
                f"(its intact shards are kept, the damaged one is written again)"
            )
        out.append(manifest)
    return out


def merged(
    root: Path, out_dir: str, check: Damaged = damaged
) -> tuple[Config, list[ShardManifest], DatasetInfo]:
    """The config, manifests and ``dataset_info.json`` of the slices recorded in ``root``
    (``out_dir``: the dataset's ``output.dir``); ``check``: a shard's problems."""
    slices = sorted(load_slices(root), key=lambda s: s["slice"])
    _check(slices, root)
    manifests = [m for s in slices for m in _manifests(root, s, check)]
    infos = [DatasetInfo.from_json(s["info"]) for s in slices]
    first = infos[0]
    cfg = to_config({**first.config, "shard": {"index": 0, "num_shards": 1}})
    cfg.output.dir = out_dir
    stage = StageTimes()
    for i in infos:
        stage.merge(i.timings.stage_cpu_s)
    timings = first.timings
    timings.wall_s = max(i.timings.wall_s for i in infos)
    timings.workers = max(i.timings.workers for i in infos)
    timings.stage_cpu_s = stage
    timings.slices = len(slices)
    timings.slice_wall_s = [i.timings.wall_s for i in infos]
    info = DatasetInfo.build(
        first.config_hash,
        asdict(cfg) | {"shard": {"index": 0, "num_shards": len(slices)}},
        first.source,
        manifests,
        [o for o in first.overrides if not o.startswith("shard.")],
        first.encodings,
        timings,
        resumed_shards=sum(i.counts.resumed_shards for i in infos),
    )
    return cfg, manifests, info
