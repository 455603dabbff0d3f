"""``make bench``: depth-pipeline against the usual ways of doing the same work, on real
photographs and on synthetic renders, in one run; then start-up, a sweep and memory.

For each input (``pipeline.bench.inputs``: NYU-schema parquet, 640x480) every method runs
in a fresh process on the same samples (``pipeline.bench.methods``): the recipe loop,
``datasets.map``, depth-pipeline as users run it (report on, and off) and the limit (the
workers' own code, one thread, times the workers). Times are wall times of the whole
command, launch to exit. depth-pipeline's own timeline says where its time went: start-up
to the first sample, the data phase (its rate is what the progress display shows), the
tail after the first worker ran out of work, the report. Then the TIFF depth compressions
(``pipeline.bench.tiff``: size, encode and decode times in each reader).

The table goes to stdout, everything to ``outputs/bench/latest.json``. Absolute numbers
depend on the machine and its load (recorded with them); compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.bench import inputs, runs, tiff
from pipeline.bench.methods import ROOT, child_main
from pipeline.bench.table import print_report


def run_method(root: Path, parquet: Path, name: str, method: str, workers: int) -> dict[str, Any]:
    """``method`` in a fresh interpreter: wall time (launch to exit), its own time, peak RSS."""
    result = root / "work" / f"{name}.result.json"
    result.unlink(missing_ok=True)
    spec = {
        "method": method,
        "parquet": str(parquet),
        "out": str(root / "work" / name),
        "workers": workers,
        "result": str(result),
    }
    cmd = [sys.executable, "-m", "pipeline.bench", "--child", json.dumps(spec)]
    res = runs.measure(cmd, runs.bench_env(root), ROOT)
    return {**json.loads(result.read_text()), "wall_s": res["seconds"], **_rss(res)}


def _rss(res: dict[str, Any]) -> dict[str, Any]:
    return {"peak_rss_mb": res["peak_rss_mb"]}


def bench_input(root: Path, kind: str, args: argparse.Namespace, workers: int) -> dict[str, Any]:
    """Every method on one input."""
    t0 = time.perf_counter()
    parquet = inputs.build(kind, root, args.samples, args.height, args.width, workers)
    print(f"{kind}: {parquet} ({time.perf_counter() - t0:.1f} s)", flush=True)
    out: dict[str, Any] = {"parquet": str(parquet)}

    def say(name: str, res: dict[str, Any]) -> None:
        seconds = res.get("wall_s", res.get("seconds"))
        print(f"  {name}: {seconds:.1f} s, peak {res['peak_rss_mb']:.0f} MB", flush=True)

    for method in ("recipe", "map", "map_defaults", "stages"):
        out[method] = run_method(root, parquet, f"{kind}-{method}", method, workers)
        say(method, out[method])
    hub = ["source=hub", f"source.path={parquet}", f"runtime.workers={workers}"]
    out["pipeline"] = runs.pipeline_run(root, f"{kind}-pipeline", hub)
    say("depth-pipeline", out["pipeline"])
    out["pipeline_noreport"] = runs.pipeline_run(
        root, f"{kind}-noreport", [*hub, "report.enabled=false"]
    )
    say("depth-pipeline, report off", out["pipeline_noreport"])
    return out


def loader_line(root: Path, args: argparse.Namespace, workers: int) -> str:
    """The torch loader line (``pipeline.bench.loader``) on the photos input."""
    from pipeline.bench import loader

    kind = "photos" if inputs.has_photos() else "synthetic"
    parquet = inputs.build(kind, root, args.loader_samples, args.height, args.width, workers)
    load = os.getloadavg()[0]
    return (
        f"{loader.line(loader.bench(root, parquet, args.loader_samples, kind))} (load {load:.2f})"
    )


def main(argv: list[str] | None = None) -> None:
    """Longer than 60 lines: the benchmark's steps in the order they run and print."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__)
    parser.add_argument("--samples", type=int, default=600, help="samples per input")
    parser.add_argument("--workers", type=int, default=0, help="processes; 0 = all cores")
    parser.add_argument(
        "--inputs", default="photos,synthetic", help="comma-separated: photos, synthetic"
    )
    parser.add_argument(
        "--scale", type=int, default=10, help="memory check at this many x samples (0 = skip)"
    )
    parser.add_argument(
        "--store-samples",
        type=int,
        default=600,  # as many as the other comparisons: a run's fixed costs weigh less
        help="output to each loopback object-store server vs local disk, samples (0 = skip)",
    )
    parser.add_argument("--only-store", action="store_true", help="only that comparison")
    parser.add_argument(
        "--loader-samples", type=int, default=600, help="the torch loader line, samples (0 = skip)"
    )
    parser.add_argument("--only-loader", action="store_true", help="only the loader line")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return
    kinds = [k.strip() for k in args.inputs.split(",") if k.strip()]
    if "photos" in kinds and not inputs.has_photos() and not args.only_store:
        raise SystemExit(
            "bench: the photographs come from scikit-image: pip install -e '.[bench]' "
            "(make bench does it)"
        )
    root = Path(args.out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    from pipeline.pool.cpus import available_cpus

    workers = args.workers or available_cpus()
    if args.only_loader:
        print(loader_line(root, args, workers))
        shutil.rmtree(root / "work", ignore_errors=True)
        return
    if args.only_store:
        from pipeline.bench import store

        print(store.line(store.bench(root, args.store_samples, workers)))
        shutil.rmtree(root / "work", ignore_errors=True)
        return
    load_before = os.getloadavg()
    print(
        f"bench: {args.samples} samples {args.width}x{args.height} per input ({', '.join(kinds)}),"
        f" {workers} workers, load average {load_before[0]:.2f}",
        flush=True,
    )
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "samples": args.samples,
        "size": [args.height, args.width],
        "workers": workers,
        "inputs": {k: bench_input(root, k, args, workers) for k in kinds},
    }
    report["render"] = run_method(root, Path(report["inputs"][kinds[0]]["parquet"]), "render",
                                  "render", 1)  # fmt: skip
    if len(kinds) > 1:
        print("mixture ...", flush=True)
        parquets = {k: report["inputs"][k]["parquet"] for k in kinds}
        report["mixture"] = runs.mixture(root, parquets, args.samples, workers)
    print("start-up ...", flush=True)
    report["startup"] = {"synthetic": runs.startup(root, [])}
    if "photos" in kinds:
        photos = report["inputs"]["photos"]["parquet"]
        report["startup"]["photos"] = runs.startup(root, ["source=hub", f"source.path={photos}"])
    report["help"] = runs.help_time()
    print("sweep ...", flush=True)
    report["sweep"] = runs.sweep(root)
    if args.scale:
        print("memory vs size ...", flush=True)
        small, big = 100, 100 * args.scale
        shard = f"output.shard_size={max(small // (2 * workers), 1)}"  # all workers busy
        report["scale"] = {
            n: runs.pipeline_run(root, f"scale-{n}", [f"source.num_samples={n}", shard])
            for n in (small, big)
        }
    if args.store_samples:
        from pipeline.bench import store

        print("output to the loopback object-store servers ...", flush=True)
        report["store"] = store.bench(root, args.store_samples, workers)
    if args.loader_samples:
        print("loader ...", flush=True)
        report["loader_line"] = loader_line(root, args, workers)
    print("tiff depth codecs ...", flush=True)
    report["tiff"] = tiff.measure()
    report["machine"]["loadavg_before"] = load_before
    report["machine"]["loadavg_after"] = os.getloadavg()
    print()
    print_report(report)
    if "store" in report:
        from pipeline.bench import store

        print(store.line(report["store"]))
    if "loader_line" in report:
        print(report["loader_line"])
    tiff.print_table(report["tiff"])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"bench-{stamp}.json", "latest.json"):
        (root / name).write_text(json.dumps(report, indent=2, default=str))
    shutil.rmtree(root / "work", ignore_errors=True)
    print(f"\nwrote {root / f'bench-{stamp}.json'}")


if __name__ == "__main__":
    main()
