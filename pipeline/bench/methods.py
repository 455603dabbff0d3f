"""The methods ``make bench`` compares, each run in a child process of its own
(``python -m pipeline.bench --child SPEC``) so that its time and peak memory are its own:

- ``recipe``: the common NYU depth recipe: a ``datasets.Dataset`` with ``set_transform``
  applying an albumentations ``Compose``, iterated in one process, saved with Pillow's
  default PNG settings and ``tifffile.imwrite``;
- ``map``: ``Dataset.map(num_proc=workers)`` doing the same work and writing the same
  files with the same tools (Pillow, tifffile) at depth-pipeline's codec settings (PNG
  level 1); ``map_defaults``: the same at Pillow's default PNG settings, as users write it;
- ``stages``: the limit: depth-pipeline's own ``ShardProcessor`` (the workers' code, every
  stage: read, decode, augment, encode, write, stats, commit) run single-threaded over
  the same shards; ``workers`` times its rate is what the workers could do with nothing
  lost to start-up, scheduling or the parent;
- ``render``: the synthetic source's ``render()`` per sample.

depth-pipeline itself runs as its command (``pipeline.bench.runs``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"


def _recipe_compose() -> Any:
    """The seed recipe as a user writes it: albumentations classes from the preset YAML."""
    import albumentations as A
    from omegaconf import OmegaConf

    specs = OmegaConf.to_container(OmegaConf.load(CONF / "augment" / "seed.yaml"))["transforms"]
    transforms = []
    for spec in specs.values():
        kwargs = {k: v for k, v in spec.items() if k != "_target_"}
        transforms.append(getattr(A, spec["_target_"].rpartition(".")[2])(**kwargs))
    return A.Compose(transforms)


def _load(parquet: Path) -> Any:
    import datasets

    datasets.disable_progress_bars()
    return datasets.Dataset.from_parquet(str(parquet / "train.parquet"))


def method_recipe(parquet: Path, out: Path, workers: int) -> dict[str, Any]:
    """One process: set_transform + albumentations, Pillow default PNG, tifffile."""
    import tifffile
    from PIL import Image

    started = time.perf_counter()
    ds = _load(parquet)
    compose = _recipe_compose()

    def transform(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        outs = [
            compose(image=np.array(im.convert("RGB")), mask=np.array(dm))
            for im, dm in zip(batch["image"], batch["depth_map"])
        ]
        return {"image": [o["image"] for o in outs], "depth": [o["mask"] for o in outs]}

    ds.set_transform(transform)
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, row in enumerate(ds):
        Image.fromarray(row["image"]).save(out / f"{i:06d}.png")
        tifffile.imwrite(out / f"{i:06d}.tiff", row["depth"])
        n += 1
    return {"samples": n, "seconds": time.perf_counter() - started}


_MAP_COMPOSE: Any = None


def _map_worker(row: dict[str, Any], index: int, out: str, ours: bool) -> dict[str, Any]:
    """datasets.map body: the recipe's work, saved with the usual tools (Pillow, tifffile)
    at depth-pipeline's codec settings (PNG level, TIFF compression) or, ``ours=False``,
    at Pillow's and tifffile's defaults."""
    import tifffile
    from PIL import Image

    from pipeline.config.schema import DepthCodec, ImageCodec
    from pipeline.encode.codecs import TIFF_COMPRESSIONS

    global _MAP_COMPOSE
    if _MAP_COMPOSE is None:
        _MAP_COMPOSE = _recipe_compose()
    res = _MAP_COMPOSE(image=np.array(row["image"].convert("RGB")), mask=np.array(row["depth_map"]))
    png = {"compress_level": ImageCodec().level} if ours else {}
    Image.fromarray(res["image"]).save(Path(out, f"{index:06d}.png"), **png)
    tifffile.imwrite(
        Path(out, f"{index:06d}.tiff"),
        res["mask"],
        compression=TIFF_COMPRESSIONS[DepthCodec().compression],
    )
    return {}


def method_map(parquet: Path, out: Path, workers: int, ours: bool = True) -> dict[str, Any]:
    """Dataset.map(num_proc=workers) doing the same work at our codec settings."""
    started = time.perf_counter()
    ds = _load(parquet)
    out.mkdir(parents=True, exist_ok=True)
    ds.map(
        _map_worker,
        with_indices=True,
        num_proc=workers if workers > 1 else None,
        remove_columns=ds.column_names,
        fn_kwargs={"out": str(out), "ours": ours},
        load_from_cache_file=False,
    )
    return {"samples": len(ds), "seconds": time.perf_counter() - started}


def method_map_defaults(parquet: Path, out: Path, workers: int) -> dict[str, Any]:
    """Dataset.map(num_proc=workers) doing the same work at Pillow's default settings."""
    return method_map(parquet, out, workers, ours=False)


def method_stages(parquet: Path, out: Path, workers: int) -> dict[str, Any]:
    """The workers' own ``ShardProcessor`` over the run's shards, in one thread (OpenCV
    single-threaded, as in the workers): the per-sample cost of every stage."""
    import cv2
    from hydra import compose, initialize_config_dir

    from pipeline.config.schema import register, to_config
    from pipeline.dataset.config_record import config_hash
    from pipeline.dataset.records import StageTimes
    from pipeline.dataset.shards import Placement
    from pipeline.pool.messages import Job
    from pipeline.pool.worker import ShardProcessor
    from pipeline.sources import open_source

    cv2.setNumThreads(0)
    register()
    overrides = ["source=hub", f"source.path={parquet}", f"output.dir={out}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = to_config(compose(config_name="config", overrides=overrides))
    source = open_source(cfg.source)
    proc = ShardProcessor(Job.of(cfg, config_hash(cfg), source))
    tasks = Placement.of(cfg).plan(len(source))
    proc(tasks[0])  # warm: first-use costs are start-up, not steady state
    shutil.rmtree(out, ignore_errors=True)
    stages = StageTimes()
    started = time.perf_counter()
    for task in tasks:
        stages.merge(proc(task).timings)
    seconds = time.perf_counter() - started
    n = tasks[-1].stop
    per = {k: v / n for k, v in stages.to_json().items()}
    per["other"] = seconds / n - sum(per.values())  # stats, records, manifests, loop
    return {"samples": n, "seconds": seconds, "per_sample_s": per}


def method_render(parquet: Path, out: Path, workers: int) -> dict[str, Any]:
    """Cost of the synthetic source's ``render`` per 640x480 sample (one thread)."""
    from pipeline.sources.synthetic import render

    render(480, 640, 0, 0)
    started = time.perf_counter()
    n = 30
    for i in range(n):
        render(480, 640, 0, i)
    return {"samples": n, "seconds": time.perf_counter() - started}


METHODS = {
    "recipe": method_recipe,
    "map": method_map,
    "map_defaults": method_map_defaults,
    "stages": method_stages,
    "render": method_render,
}


def child_main(spec: dict[str, Any]) -> None:
    """Run one method (in a fresh interpreter) and write its result where told."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    out = Path(spec["out"])
    shutil.rmtree(out, ignore_errors=True)
    res = METHODS[spec["method"]](Path(spec["parquet"]), out, spec["workers"])
    Path(spec["result"]).write_text(json.dumps(res))
    shutil.rmtree(out, ignore_errors=True)
