"""Commands timed from the outside, as users run them: each in a process of its own,
wall time from launch to exit, peak memory of its process tree (``/proc``), and the run's
own timeline (``DEPTH_PIPELINE_TRACE``, ``pipeline.pool.trace``) to say where the time went."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.pool import trace

ROOT = Path(__file__).resolve().parents[2]


def tree_rss(root_pid: int) -> int:
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


def measure(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run ``cmd``; its wall time (launch to exit), start wall clock and peak RSS."""
    started_wall, t0 = time.time(), time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.05)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(
            f"bench: {' '.join(cmd[:4])} ... failed (exit {proc.returncode}): "
            f"{err.decode()[-2000:]}"
        )
    return {
        "seconds": seconds,
        "launched": started_wall,
        "peak_rss_mb": round(peak / 2**20, 1),
        "stdout": out.decode(),
    }


def bench_env(root: Path, **extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        NO_ALBUMENTATIONS_UPDATE="1",
        HF_DATASETS_CACHE=str(root / "hf-cache"),
        HF_HUB_OFFLINE="1",
        **extra,
    )


def command(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("depth-pipeline")
    return [str(exe), *args] if exe.exists() else [sys.executable, "-m", "pipeline", *args]


def pipeline_run(root: Path, name: str, args: list[str]) -> dict[str, Any]:
    """``depth-pipeline ARGS`` into a fresh dir: wall time, dataset_info timings and the
    timeline's landmarks (seconds from launch)."""
    out = root / "work" / name
    shutil.rmtree(out, ignore_errors=True)
    tr = root / "work" / f"{name}.trace"
    tr.unlink(missing_ok=True)
    cmd = command(*args, f"output.dir={out}", "runtime.progress=false")
    res = measure(cmd, bench_env(root, **{trace.ENV: str(tr)}), root)
    info = json.loads((out / "dataset_info.json").read_text())
    res.update(
        samples=info["counts"]["written"],
        timings=info["timings"],
        timeline=timeline(trace.read(str(tr)), res["launched"]),
    )
    shutil.rmtree(out, ignore_errors=True)
    return res


def timeline(events: list[tuple[float, int, str, str]], launched: float) -> dict[str, Any]:
    """Landmarks of one run, in seconds from launch: the first sample written, the data
    phase (first sample to the last shard committed), its tail (from the first worker left
    without work), the report, the end; and the steady rate in between."""
    first: dict[str, float] = {}
    for t, _, event, _ in events:
        first.setdefault(event, t - launched)
    last_commit = max((t - launched for t, _, e, _ in events if e == "committed"), default=None)
    out = {
        k: round(first[k], 3)
        for k in ("composed", "run", "prepared", "writing", "first-sample", "drained", "report")
        if k in first
    }
    for k in ("shards-done", "reported", "end"):
        times = [t - launched for t, _, e, _ in events if e == k]
        if times:
            out[k] = round(max(times), 3)
    if last_commit is not None:
        out["last-commit"] = round(last_commit, 3)
    return out


def startup(root: Path, args: list[str], runs: int = 3) -> dict[str, Any]:
    """Launch to the first sample written (median of ``runs``), with the landmarks."""
    results = []
    for i in range(runs):
        res = pipeline_run(root, f"startup-{i}", [*args, "report.enabled=false"])
        results.append(res)
    results.sort(key=lambda r: r["timeline"].get("first-sample", 1e9))
    mid = results[len(results) // 2]
    return {
        "first_sample_s": [r["timeline"].get("first-sample") for r in results],
        "median_s": mid["timeline"].get("first-sample"),
        "timeline": mid["timeline"],
    }


def sweep(root: Path) -> dict[str, Any]:
    """The README's sweep (4 jobs x 64 synthetic samples, reports on), as users type it."""
    work = root / "work" / "sweep"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cmd = command(
        "-m",
        "augment.transforms.gamma.gamma_limit=[80,120],[50,150]",
        "augment.transforms.hsv.p=0,0.5",
        f"hydra.sweep.dir={work / 'sweep'}",
        "runtime.progress=false",
    )
    res = measure(cmd, bench_env(root), work)  # the default output.dir lands under work/
    jobs = [json.loads(p.read_text()) for p in (work / "sweep").glob("*/depth_pipeline_job.json")]
    shutil.rmtree(work, ignore_errors=True)
    return {
        "seconds": round(res["seconds"], 2),
        "jobs": len(jobs),
        "peak_rss_mb": res["peak_rss_mb"],
    }


def help_time(runs: int = 5) -> dict[str, float]:
    """Wall time of ``depth-pipeline --help``."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(command("--help"), capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return {"min_s": round(min(times), 3), "median_s": round(sorted(times)[runs // 2], 3)}


def mixture(root: Path, parquets: dict[str, str], samples: int, workers: int) -> dict[str, Any]:
    """A mixture of the inputs (``samples`` // 2 of each, each input once, report off)
    against the same parts written alone: samples/s of the data phase (``data_s``), so
    that the second alone run's start-up does not count against the parts."""
    half = max(samples // 2, 1)
    (root / "work").mkdir(parents=True, exist_ok=True)
    common = [f"runtime.workers={workers}", "report.enabled=false"]
    alone = {
        name: pipeline_run(
            root,
            f"part-{name}",
            ["source=hub", f"source.path={path}", f"source.limit={half}", *common],  # fmt: skip
        )
        for name, path in parquets.items()
    }
    parts = ["source=mix"]
    for name, path in parquets.items():
        parts += [
            f"+source@source.parts.{name}.source=hub",
            f"source.parts.{name}.source.path={path}",
            f"source.parts.{name}.source.limit={half}",
        ]
    mixed = pipeline_run(root, "mixture", [*parts, *common])

    def rate(res: dict[str, Any]) -> float:
        return res["samples"] / max(res["timings"]["data_s"] or res["seconds"], 1e-9)

    total = sum(r["samples"] for r in alone.values())
    data_s = sum(r["timings"]["data_s"] or r["seconds"] for r in alone.values())
    return {
        "parts": list(parquets),
        "samples": mixed["samples"],
        "mixture_per_s": round(rate(mixed), 2),
        "parts_alone_per_s": round(total / max(data_s, 1e-9), 2),
        "alone": {k: round(rate(r), 2) for k, r in alone.items()},
        "peak_rss_mb": mixed["peak_rss_mb"],
    }
