"""Join the slices of a run spread over many jobs into one dataset.

A job with ``shard.num_shards > 1`` processes its contiguous slice of the output shards
and writes ``slices/slice-KKKKK-of-NNNNN.json`` (its config hash, shard names and slice
summary) instead of ``dataset_info.json``. ``merge`` checks that every slice is there and
that all were made with the same config, then writes the ``dataset_info.json`` and dataset
card an unsliced run would have written. It runs:

- automatically at the end of each sliced job, when that job finds all slices present;
- at the end of a multirun (``MergeCallback``, a Hydra callback), unless the dataset is
  already merged from the slices as they are now (the last slice job did it);
- as a job of its own, after the array of slice jobs (``hydra/launcher=slurm``,
  ``run/slurm_launcher.py``): then it is the only merge (slice jobs and callback leave it);
- by hand: ``depth-pipeline-merge OUTPUT_DIR``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.config.schema import Config, to_config
from pipeline.dataset.config_record import config_diff, data_config
from pipeline.dataset.lock import holding
from pipeline.dataset.owned import SLICE_DIR
from pipeline.dataset.records import DatasetInfo, ShardManifest, StageTimes
from pipeline.dataset.verify import damaged
from pipeline.dataset.writers import atomic_write
from pipeline.errors import PipelineError

_DEFERRED: list[bool] = []  # set in a slice job whose merge is a job of its own


def defer_to_merge_job() -> None:
    """This process is a slice job of a sweep whose merge is submitted as its own job:
    ``write_slice`` only records the slice."""
    _DEFERRED.append(True)


def slice_name(index: int, num_shards: int) -> str:
    return f"slice-{index:05d}-of-{num_shards:05d}"


def check_slice_options(cfg: Config) -> None:
    """Options that cannot work when many jobs share one ``output.dir``."""
    if cfg.shard.num_shards > 1 and cfg.output.overwrite:
        raise PipelineError(
            "output.overwrite=true cannot be combined with shard.num_shards>1 (each job would "
            "delete the others' shards); empty output.dir once before starting the jobs"
        )


def write_slice(root: Path, cfg: Config, info: DatasetInfo, shard_names: list[str]) -> bool:
    """Record this job's slice; merge if it was the last one missing. True if merged."""
    k, n = cfg.shard.index, cfg.shard.num_shards
    body = {
        "slice": k,
        "num_shards": n,
        "config_hash": info.config_hash,
        "data_config": data_config(cfg),
        "shards": shard_names,
        "info": info.to_json(),
    }
    path = root / SLICE_DIR / f"{slice_name(k, n)}.json"
    atomic_write(path, json.dumps(body, indent=2, default=str).encode())
    if _DEFERRED:
        return False
    try:
        merge(root)
    except PipelineError:
        return False  # other slices still running (or missing): merged later
    return True


def _load_slices(root: Path) -> list[dict[str, Any]]:
    files = sorted((root / SLICE_DIR).glob("slice-*.json"))
    if not files:
        raise PipelineError(
            f"{root} has no {SLICE_DIR}/slice-*.json: it was not written by sliced runs "
            f"(shard.num_shards > 1), or the path is wrong"
        )
    return [json.loads(f.read_text()) for f in files]


def _check(slices: list[dict[str, Any]]) -> int:
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
            f"{len(missing)} of {n} slices missing: {names}; run those jobs "
            f"(shard.index={','.join(map(str, missing[:8]))} shard.num_shards={n}) and merge again"
        )
    return n


def _manifests(root: Path, s: dict[str, Any]) -> list[ShardManifest]:
    """The manifests of one slice's shards, each with its files as written (sha256)."""
    out = []
    for name in s["shards"]:
        manifest = ShardManifest.read(root, name)
        if manifest is None:
            raise PipelineError(
                f"{slice_name(s['slice'], s['num_shards'])}: shard manifest "
                f"{ShardManifest.path(root, name)} is missing or unreadable; re-run that slice"
            )
        problems = damaged(root, manifest)
        if problems:
            raise PipelineError(
                f"{slice_name(s['slice'], s['num_shards'])}: {problems[0]}; re-run that slice "
                f"(its intact shards are kept, the damaged one is written again)"
            )
        out.append(manifest)
    return out


def merge(root: Path | str) -> DatasetInfo:
    """Write the merged ``dataset_info.json``, card and report; return the info. Holds
    the lock on ``root`` shared: refused while an overwrite replaces the dataset."""
    root = Path(root)
    _load_slices(root)  # refuse a directory without slices before locking it
    with holding(root):
        return _merge(root)


def _merge(root: Path) -> DatasetInfo:
    from pipeline.run.publish import publish

    slices = sorted(_load_slices(root), key=lambda s: s["slice"])
    _check(slices)
    manifests = [m for s in slices for m in _manifests(root, s)]
    infos = [DatasetInfo.from_json(s["info"]) for s in slices]
    first = infos[0]
    cfg = to_config({**first.config, "shard": {"index": 0, "num_shards": 1}})
    cfg.output.dir = str(root)
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
    publish(root, cfg, manifests, info)
    return info


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - hydra is a dependency; keep the module importable
    Callback = object  # type: ignore[assignment,misc]


class MergeCallback(Callback):  # type: ignore[misc]
    """At the end of a multirun, merge every sliced ``output.dir`` its jobs wrote.

    Jobs run in this process (basic launcher) are recorded in ``on_job_end``; an explicit
    ``output.dir`` in the sweep config is merged too (jobs on other machines). A dataset
    already merged from its slices as they are (``merged_already``: the last slice job
    did it) is not merged again; a launcher that submits the merge as a job of its own
    (``MERGES_SLICES``, ``hydra/launcher=slurm``) is left to do it.
    """

    def __init__(self) -> None:
        self.dirs: set[str] = set()

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        cfg = getattr(job_return, "cfg", None) or config
        try:
            if int(cfg.shard.num_shards) > 1:
                self.dirs.add(str(cfg.output.dir))
        except Exception:  # a job whose config cannot be resolved: nothing to merge
            return

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        from omegaconf import OmegaConf

        if _launcher_merges(config):
            return
        explicit = OmegaConf.to_container(config.output, resolve=False).get("dir")
        if explicit and "${" not in str(explicit) and (Path(str(explicit)) / SLICE_DIR).is_dir():
            self.dirs.add(str(explicit))
        for d in sorted(self.dirs):
            try:
                if merged_already(Path(d)):
                    n = len(list((Path(d) / SLICE_DIR).glob("slice-*.json")))
                    print(f"merged {n} slices into {d}/dataset_info.json (by the last slice job)")
                    continue
                info = merge(d)
                print(f"merged {info.timings.slices} slices into {d}/dataset_info.json")
            except PipelineError as exc:
                print(f"merge: {exc}", file=sys.stderr)


def merged_already(root: Path) -> bool:
    """``dataset_info.json`` was written after every slice record now there."""
    from pipeline.dataset.records import INFO_FILE

    info = root / INFO_FILE
    records = list((root / SLICE_DIR).glob("slice-*.json"))
    if not info.is_file() or not records:
        return False
    return info.stat().st_mtime_ns >= max(r.stat().st_mtime_ns for r in records)


def _launcher_merges(config: Any) -> bool:
    """The sweep's launcher submits the merge as a job of its own."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    target = OmegaConf.select(config, "hydra.launcher._target_", default=None)
    try:
        return bool(target) and bool(getattr(get_class(str(target)), "MERGES_SLICES", False))
    except Exception:  # a launcher that cannot be imported here merges nothing
        return False
