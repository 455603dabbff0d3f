"""``make bench``: throughput of depth-pipeline against the usual ways of doing the same work.

One run builds an NYU-schema parquet once (``image`` PNG RGB + ``depth_map`` float32 TIFF,
written with ``datasets``, rendered by the synthetic source), then measures on those same
samples, each method in its own child process (so peak memory is per method):

1. ``recipe``: the common NYU depth recipe: a ``datasets.Dataset`` with ``set_transform``
   applying an albumentations ``Compose``, iterated in one process, saved with Pillow's
   default PNG settings and ``tifffile.imwrite``;
2. ``datasets.map``: ``Dataset.map(num_proc=workers)`` doing the same work and writing
   the same files with the same tools (Pillow, tifffile) at depth-pipeline's codec
   settings (PNG level, TIFF compression);
3. ``depth-pipeline`` at its default settings (which are the codec settings of 2), and at
   the recipe's PNG level 6 for reference;
4. ``limit``: the per-sample cost of each stage (decode, augment, encode, write, stats)
   measured single-threaded with our own code, divided over the workers.

It prints one table (samples/s, ratios, fraction of the limit, peak RSS of the process
tree, per-stage breakdown), times ``depth-pipeline --help``, checks that peak memory does
not grow with dataset size (10x the samples from the synthetic source) and writes
everything as JSON under ``outputs/bench/``. Absolute numbers depend on the machine and
its load (recorded); the ratios from one run are what to compare.

Longer than the usual module: it is a script (methods, child processes, the table) read
top to bottom, not a library.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
STAGES = ("decode", "augment", "encode", "write", "stats")

# ---- building the input -----------------------------------------------------------------


def _render_rows(args: tuple[int, int, int, int]) -> list[dict[str, Any]]:
    """Render samples ``start..stop`` and encode them as the NYU parquet stores them."""
    import tifffile
    from PIL import Image

    from pipeline.sources.synthetic import render

    height, width, start, stop = args
    rows = []
    for index in range(start, stop):
        image, depth = render(height, width, 0, index)
        png, tiff = io.BytesIO(), io.BytesIO()
        Image.fromarray(image).save(png, format="PNG", compress_level=1)
        tifffile.imwrite(tiff, depth)
        rows.append(
            {
                "image": {"bytes": png.getvalue(), "path": None},
                "depth_map": {"bytes": tiff.getvalue(), "path": None},
            }
        )
    return rows


def build_input(root: Path, n: int, height: int, width: int, workers: int) -> Path:
    """NYU-schema parquet (``image``/``depth_map`` Image features) written by ``datasets``."""
    import multiprocessing as mp

    import datasets

    out = root / f"input-{n}-{height}x{width}"
    if (out / "train.parquet").is_file():
        return out
    datasets.disable_progress_bars()
    step = 25
    chunks = [(height, width, s, min(s + step, n)) for s in range(0, n, step)]
    with mp.get_context("forkserver").Pool(workers) as pool:
        rows = [r for part in pool.map(_render_rows, chunks) for r in part]
    features = datasets.Features({"image": datasets.Image(), "depth_map": datasets.Image()})
    ds = datasets.Dataset.from_list(rows, features=features)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ds.to_parquet(str(tmp / "train.parquet"))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


# ---- the methods (each runs in a child process) -----------------------------------------


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


def _map_worker(row: dict[str, Any], index: int, out: str) -> dict[str, Any]:
    """datasets.map body: the recipe's work, saved with the usual tools (Pillow, tifffile)
    at depth-pipeline's codec settings (PNG level, TIFF compression)."""
    import tifffile
    from PIL import Image

    from pipeline.codecs import TIFF_COMPRESSIONS
    from pipeline.config import DepthCodec, ImageCodec

    global _MAP_COMPOSE
    if _MAP_COMPOSE is None:
        _MAP_COMPOSE = _recipe_compose()
    res = _MAP_COMPOSE(image=np.array(row["image"].convert("RGB")), mask=np.array(row["depth_map"]))
    Image.fromarray(res["image"]).save(
        Path(out, f"{index:06d}.png"), compress_level=ImageCodec().level
    )
    tifffile.imwrite(
        Path(out, f"{index:06d}.tiff"),
        res["mask"],
        compression=TIFF_COMPRESSIONS[DepthCodec().compression],
    )
    return {}


_MAP_COMPOSE: Any = None


def method_map(parquet: Path, out: Path, workers: int) -> dict[str, Any]:
    """Dataset.map(num_proc=workers) doing the same work at our codec settings."""
    started = time.perf_counter()
    ds = _load(parquet)
    out.mkdir(parents=True, exist_ok=True)
    ds.map(
        _map_worker,
        with_indices=True,
        num_proc=workers if workers > 1 else None,
        remove_columns=ds.column_names,
        fn_kwargs={"out": str(out)},
        load_from_cache_file=False,
    )
    return {"samples": len(ds), "seconds": time.perf_counter() - started}


def method_pipeline(
    parquet: Path | None, out: Path, workers: int, extra: list[str]
) -> dict[str, Any]:
    """depth-pipeline's runner on the parquet (or the synthetic source when ``parquet`` is None)."""
    from hydra import compose, initialize_config_dir

    from pipeline.config import register
    from pipeline.runner import run

    register()
    overrides = [
        *(["source=hub", f"source.path={parquet}"] if parquet is not None else []),
        f"output.dir={out}",
        f"runtime.workers={workers}",
        "runtime.progress=false",
        "report.enabled=false",
        "output.overwrite=true",
        *extra,
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    started = time.perf_counter()
    result = run(cfg)
    return {
        "samples": result.written,
        "seconds": time.perf_counter() - started,
        "source": result.info.source.get("kind"),
        "stage_cpu_s": result.info.timings.stage_cpu_s.to_json(),
    }


def method_stages(parquet: Path, out: Path, workers: int) -> dict[str, Any]:
    """Per-sample cost of each stage with the workers' own stage functions, one thread."""
    import cv2
    from hydra import compose, initialize_config_dir

    from pipeline import codecs, metadata
    from pipeline.augment import Augmenter
    from pipeline.config import register, to_config
    from pipeline.layouts import layout_for
    from pipeline.sample import camera_json
    from pipeline.sources import finalize, open_source
    from pipeline.stats import Stats

    cv2.setNumThreads(0)
    register()
    overrides = ["source=hub", f"source.path={parquet}", f"output.dir={out}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = to_config(compose(config_name="config", overrides=overrides))
    source = open_source(cfg.source)
    augment = Augmenter(cfg.augment)
    out.mkdir(parents=True, exist_ok=True)
    stats = Stats()
    total = {s: 0.0 for s in STAGES}
    n = len(source)
    writer = layout_for(cfg.output.format, out, "stages").writer("stages-000000")
    it = source.iter(0, n)
    for index in range(n):
        t0 = time.perf_counter()
        sample, _ = finalize(next(it), cfg.source)
        t1 = time.perf_counter()
        res = augment(sample, index, 0)
        t2 = time.perf_counter()
        camera = camera_json(res.camera, res.homography)
        record = metadata.record(res, sample.key, index, 0, camera, 1.0)
        fields = codecs.encode_sample(res, cfg.output, record).fields
        t3 = time.perf_counter()
        writer.add(sample.key, fields)
        t4 = time.perf_counter()
        stats.add_source(sample.image)
        stats.add_output(res.image, res.depth)
        t5 = time.perf_counter()
        for name, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            total[name] += dt
    t0 = time.perf_counter()
    writer.commit()
    total["write"] += time.perf_counter() - t0
    per = {k: v / n for k, v in total.items()}
    return {"samples": n, "seconds": sum(total.values()), "per_sample_s": per}


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
    "stages": method_stages,
    "render": method_render,
}


# ---- the parent: children, memory sampling, the table -----------------------------------


def _tree_rss(root_pid: int) -> int:
    """Resident bytes of ``root_pid`` and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_child(name: str, spec: dict[str, Any], result_file: Path) -> dict[str, Any]:
    """Run one method in a fresh interpreter; sample its process tree's RSS meanwhile."""
    env = dict(
        os.environ,
        NO_ALBUMENTATIONS_UPDATE="1",
        HF_DATASETS_CACHE=str(Path(spec["root"]) / "hf-cache"),
        HF_HUB_OFFLINE="1",
    )
    cmd = [sys.executable, "-m", "pipeline.bench", "--child", json.dumps(spec)]
    result_file.unlink(missing_ok=True)
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.05)
    if proc.returncode != 0:
        raise SystemExit(f"bench: method {name} failed (exit {proc.returncode})")
    out = json.loads(result_file.read_text())
    out["peak_rss_mb"] = round(peak / 2**20, 1)
    return out


def child_main(spec: dict[str, Any]) -> None:
    name = spec["method"]
    parquet = Path(spec["parquet"]) if spec.get("parquet") else None
    out = Path(spec["out"])
    shutil.rmtree(out, ignore_errors=True)
    if name == "pipeline":
        res = method_pipeline(parquet, out, spec["workers"], spec.get("extra", []))
    else:
        assert parquet is not None
        res = METHODS[name](parquet, out, spec["workers"])
    Path(spec["result"]).write_text(json.dumps(res))
    shutil.rmtree(out, ignore_errors=True)


def time_help(runs: int = 5) -> dict[str, float]:
    """Wall time of ``depth-pipeline --help`` (interpreter start + imports + Hydra)."""
    exe = Path(sys.executable).with_name("depth-pipeline")
    cmd = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "pipeline", "--help"]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return {"min_s": round(min(times), 3), "median_s": round(sorted(times)[runs // 2], 3)}


def _row(label: str, res: dict[str, Any], base: dict[str, float]) -> dict[str, Any]:
    rate = res["samples"] / res["seconds"]
    return {
        "method": label,
        "samples": res["samples"],
        "seconds": round(res["seconds"], 2),
        "samples_per_s": round(rate, 2),
        "x_recipe": round(rate / base["recipe"], 2) if base.get("recipe") else None,
        "x_map": round(rate / base["map"], 2) if base.get("map") else None,
        "of_limit": round(rate / base["limit"], 3) if base.get("limit") else None,
        "peak_rss_mb": res.get("peak_rss_mb"),
    }


def _print_table(rows: list[dict[str, Any]], stages: dict[str, float], extra: list[str]) -> None:
    head = (
        f"{'method':<48}{'samples/s':>10}{'x recipe':>10}{'x map':>8}{'of limit':>10}"
        f"{'peak RSS':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        fmt = lambda v, spec: format(v, spec) if v is not None else "-"  # noqa: E731
        print(
            f"{r['method']:<48}{r['samples_per_s']:>10.1f}{fmt(r['x_recipe'], '>10.2f')}"
            f"{fmt(r['x_map'], '>8.2f')}{fmt(r['of_limit'], '>10.0%')}"
            f"{fmt(r['peak_rss_mb'], '>8.0f')} MB"
        )
    total = sum(stages.values())
    print("\nper-sample stage cost, one thread, our code (ms):")
    print(
        "  "
        + "  ".join(f"{k} {v * 1000:.1f}" for k, v in stages.items())
        + f"  = {total * 1000:.1f}"
    )
    for line in extra:
        print(line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--samples", type=int, default=300, help="samples in the parquet input")
    parser.add_argument("--workers", type=int, default=0, help="processes; 0 = all cores")
    parser.add_argument(
        "--scale", type=int, default=10, help="memory check at this many x samples (0 = skip)"
    )
    parser.add_argument(
        "--scale-samples", type=int, default=100, help="synthetic samples of the small memory run"
    )
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return

    root = Path(args.out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    from pipeline.runner import available_cpus

    workers = args.workers or available_cpus()
    load_before = os.getloadavg()
    print(
        f"bench: {args.samples} samples {args.width}x{args.height}, {workers} workers, "
        f"load average {load_before[0]:.2f}",
        flush=True,
    )
    t0 = time.perf_counter()
    parquet = build_input(root, args.samples, args.height, args.width, workers)
    print(f"input: {parquet} ({time.perf_counter() - t0:.1f} s)", flush=True)

    def child(name: str, method: str, **kw: Any) -> dict[str, Any]:
        spec = {
            "method": method,
            "parquet": str(parquet),
            "out": str(root / "work" / name),
            "workers": workers,
            "root": str(root),
            "result": str(root / "work" / f"{name}.result.json"),
            **kw,
        }
        print(f"  {name} ...", end="", flush=True)
        res = run_child(name, spec, Path(spec["result"]))
        print(
            f" {res['samples'] / res['seconds']:.1f} samples/s, peak {res['peak_rss_mb']:.0f} MB",
            flush=True,
        )
        return res

    # Shards are the unit of work: a real dataset has thousands, this small input would have
    # two at the default shard_size=100, and one slow worker would leave a core idle at
    # the end. Ten shards per worker keep both busy (bytes per sample are unchanged).
    shard_size = max(args.samples // (10 * workers), 1)
    shards = f"output.shard_size={shard_size}"
    results = {
        "recipe": child("recipe", "recipe"),
        "map": child("map", "map"),
        "pipeline": child("pipeline", "pipeline", extra=[shards]),
        "pipeline_l6": child("pipeline_l6", "pipeline", extra=[shards, "output.image.level=6"]),
        "stages": child("stages", "stages"),
        "render": child("render", "render"),
    }
    per_stage = results["stages"]["per_sample_s"]
    limit = workers / sum(per_stage.values())
    base = {
        "recipe": results["recipe"]["samples"] / results["recipe"]["seconds"],
        "map": results["map"]["samples"] / results["map"]["seconds"],
        "limit": limit,
    }
    source = results["pipeline"].get("source")
    rows = [
        _row("1 recipe loop (1 process, Pillow PNG, tifffile)", results["recipe"], base),
        _row(f"2 datasets.map num_proc={workers}, our settings", results["map"], base),
        _row(f"3 depth-pipeline, defaults, shard_size={shard_size}", results["pipeline"], base),
        _row("3 depth-pipeline, PNG level 6 (recipe's)", results["pipeline_l6"], base),
        {
            "method": f"4 limit: {workers} x one-thread stage cost",
            "samples": results["stages"]["samples"],
            "seconds": None,
            "samples_per_s": round(limit, 2),
            "x_recipe": round(limit / base["recipe"], 2),
            "x_map": round(limit / base["map"], 2),
            "of_limit": 1.0,
            "peak_rss_mb": results["stages"]["peak_rss_mb"],
        },
    ]
    extra = []
    render_ms = results["render"]["seconds"] / results["render"]["samples"] * 1000
    extra.append(f"synthetic source render(): {render_ms:.1f} ms/sample (640x480, one thread)")

    scale = None
    if args.scale:
        n_small = args.scale_samples
        shard = f"output.shard_size={max(n_small // (2 * workers), 1)}"  # all workers busy
        small = child(
            "scale_1x", "pipeline", parquet=None, extra=[f"source.num_samples={n_small}", shard]
        )
        big = child(
            "scale_nx",
            "pipeline",
            parquet=None,
            extra=[f"source.num_samples={n_small * args.scale}", shard],
        )
        ratio = big["peak_rss_mb"] / small["peak_rss_mb"]
        scale = {
            "samples": [n_small, n_small * args.scale],
            "peak_rss_mb": [small["peak_rss_mb"], big["peak_rss_mb"]],
            "ratio": round(ratio, 3),
            "samples_per_s": [
                round(small["samples"] / small["seconds"], 2),
                round(big["samples"] / big["seconds"], 2),
            ],
        }
        extra.append(
            f"memory vs size (synthetic source): peak RSS {small['peak_rss_mb']:.0f} MB at "
            f"{n_small} samples, {big['peak_rss_mb']:.0f} MB at {n_small * args.scale} "
            f"({ratio:.2f}x; target <= 1.2x)"
        )
    helps = time_help()
    extra.append(f"startup: depth-pipeline --help {helps['median_s']:.2f} s median (target < 1 s)")
    load_after = os.getloadavg()
    extra.append(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}")

    print()
    _print_table(rows, per_stage, extra)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "samples": args.samples,
        "size": [args.height, args.width],
        "workers": workers,
        "rows": rows,
        "stage_ms": {k: round(v * 1000, 3) for k, v in per_stage.items()},
        "pipeline_stage_cpu_s": results["pipeline"].get("stage_cpu_s"),
        "pipeline_source": source,
        "render_ms": round(render_ms, 2),
        "scale": scale,
        "help_startup_s": helps,
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"bench-{stamp}.json", "latest.json"):
        (root / name).write_text(json.dumps(report, indent=2))
    shutil.rmtree(root / "work", ignore_errors=True)
    print(f"\nwrote {root / f'bench-{stamp}.json'}")


if __name__ == "__main__":
    main()
