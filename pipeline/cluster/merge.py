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
  ``slurm_launcher.py``): then it is the only merge (slice jobs and callback leave it);
- by hand: ``depth-pipeline-merge OUTPUT_DIR``.

A URL ``output.dir`` (``s3://...``): its slices never merge by themselves; ``merge(url)``
is ``merge_remote.merge_url``. The records and the merged info: ``slices.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pipeline.cluster.slices import failed_name, load_slices, merged, slice_name
from pipeline.config.schema import Config
from pipeline.config.urls import is_url
from pipeline.dataset.config_record import data_config
from pipeline.dataset.lock import holding
from pipeline.dataset.owned import SLICE_DIR
from pipeline.dataset.records import DatasetInfo
from pipeline.dataset.writers import atomic_write
from pipeline.errors import PipelineError

_DEFERRED: list[bool] = []  # set in a slice job whose merge is a job of its own


def defer_to_merge_job() -> None:
    """This process is a slice job of a sweep whose merge is submitted as its own job:
    ``write_slice`` only records the slice."""
    _DEFERRED.append(True)


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
    (root / SLICE_DIR / failed_name(k, n)).unlink(missing_ok=True)
    if _DEFERRED or is_url(cfg.output.dir):  # a URL's slices: merged by depth-pipeline-merge
        return False
    try:
        merge(root)
    except PipelineError:
        return False  # other slices still running (or missing): merged later
    return True


def write_failed(root: Path, cfg: Config, error: str) -> None:
    """Record why this slice job stopped (``slices/failed-K-of-N.json``): the merge that
    finds the slice missing names that error instead of only the slice."""
    k, n = cfg.shard.index, cfg.shard.num_shards
    body = {"slice": k, "num_shards": n, "error": error}
    atomic_write(root / SLICE_DIR / failed_name(k, n), json.dumps(body).encode())


def merge(root: Path | str) -> DatasetInfo:
    """Write the merged ``dataset_info.json``, card and report; return the info. Holds
    the lock on ``root`` shared: refused while an overwrite replaces the dataset. A URL
    ``root``: ``merge_remote.merge_url``."""
    if is_url(str(root)):
        from pipeline.cluster.merge_remote import merge_url

        return merge_url(str(root))
    root = Path(root)
    load_slices(root)  # refuse a directory without slices before locking it
    with holding(root):
        from pipeline.publish.publish import publish

        cfg, manifests, info = merged(root, str(root))
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
                if not is_url(d) and merged_already(Path(d)):
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
    from hydra.core.plugins import Plugins
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    target = OmegaConf.select(config, "hydra.launcher._target_", default=None)
    try:  # Hydra's plugin table holds ours (``hydra_launchers.install``)
        cls = Plugins.instance().class_name_to_class.get(str(target)) or get_class(str(target))
        return bool(target) and bool(getattr(cls, "MERGES_SLICES", False))
    except Exception:  # a launcher that cannot be imported here merges nothing
        return False
