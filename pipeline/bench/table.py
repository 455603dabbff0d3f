"""The benchmark's printed report: one table per input, then where depth-pipeline's time
went, start-up, the sweep and memory. Rates are samples / wall time of the whole command
(launch to exit) unless said otherwise. ``x map`` is the ratio to ``datasets.map`` at our
codec settings, ``x map0`` to ``datasets.map`` at Pillow's defaults (as users write it)."""

from __future__ import annotations

from typing import Any

WIDTH = 50
DESCRIBE = {
    "photos": "scikit-image photographs, Middlebury motorcycle depth",
    "synthetic": "the synthetic source's renders",
}


def _rate(res: dict[str, Any]) -> float:
    return res["samples"] / res.get("wall_s", res["seconds"])


def rows(data: dict[str, Any], workers: int) -> list[dict[str, Any]]:
    """The table of one input: label, seconds, rate, ratios, peak RSS."""
    limit = workers * data["stages"]["samples"] / data["stages"]["seconds"]
    base = {"recipe": _rate(data["recipe"]), "map": _rate(data["map"])}
    base["map0"] = _rate(data["map_defaults"]) if "map_defaults" in data else None
    out = []
    for label, key in (
        ("1 recipe loop (1 process, Pillow PNG, tifffile)", "recipe"),
        (f"2 datasets.map num_proc={workers}, Pillow defaults", "map_defaults"),
        (f"2 datasets.map num_proc={workers}, our settings", "map"),
        ("3 depth-pipeline, report on (what users run)", "pipeline"),
        ("3 depth-pipeline, report off", "pipeline_noreport"),
    ):
        if key not in data:
            continue
        res = data[key]
        rate = _rate(res)
        out.append(
            {
                "method": label,
                "seconds": round(res.get("wall_s", res["seconds"]), 2),
                "samples_per_s": round(rate, 1),
                "x_recipe": round(rate / base["recipe"], 2),
                "x_map": round(rate / base["map"], 2),
                "x_map0": round(rate / base["map0"], 2) if base["map0"] else None,
                "of_limit": round(rate / limit, 3),
                "peak_rss_mb": res["peak_rss_mb"],
            }
        )
    out.append(
        {
            "method": f"4 limit: {workers} x the workers' code, one thread",
            "seconds": None,
            "samples_per_s": round(limit, 1),
            "x_recipe": round(limit / base["recipe"], 2),
            "x_map": round(limit / base["map"], 2),
            "x_map0": round(limit / base["map0"], 2) if base["map0"] else None,
            "of_limit": 1.0,
            "peak_rss_mb": data["stages"]["peak_rss_mb"],
        }
    )
    return out


def breakdown(run: dict[str, Any], limit: float) -> dict[str, Any]:
    """Where one depth-pipeline run's time went (seconds from launch, and rates)."""
    tl, timings, n = run["timeline"], run["timings"], run["samples"]
    data_s = timings["data_s"]
    first = tl.get("first-sample", 0.0)
    done = tl.get("shards-done", tl.get("last-commit", first))
    drained = tl.get("drained", done)
    out = {
        "wall_s": round(run["seconds"], 2),
        "to_first_sample_s": round(first, 2),
        "data_s": data_s,
        "data_rate": round(n / data_s, 1),
        "data_of_limit": round(n / data_s / limit, 3),
        "steady_rate": round(n / (done - first), 1) if done > first else None,
        "tail_s": round(done - drained, 2),
        "report_s": timings.get("report_s"),
        "report_share": round(timings["report_s"] / timings["total_s"], 3)
        if timings.get("report_s")
        else None,
    }
    out["steady_of_limit"] = round(out["steady_rate"] / limit, 3) if out["steady_rate"] else None
    return out


def _fmt(v: Any, spec: str) -> str:
    """``v`` formatted, or a dash as wide as ``spec`` asks."""
    if v is not None:
        return format(v, spec)
    width = "".join(c for c in spec.split(".")[0] if c.isdigit())
    return format("-", f">{width}" if width else "")


def print_report(report: dict[str, Any]) -> None:
    """The benchmark's printed tables, in the order make bench shows them.

    Longer than 60 lines: one print block per measured table, read top to bottom."""
    workers = report["workers"]
    for kind, data in report["inputs"].items():
        table = rows(data, workers)
        limit = table[-1]["samples_per_s"]
        data["rows"] = table
        data["breakdown"] = breakdown(data["pipeline"], limit)
        n = data["stages"]["samples"]
        h, w = report["size"]
        print(f"{kind}: {n} samples {w}x{h} ({DESCRIBE.get(kind, kind)}), {workers} workers")
        head = (
            f"{'method':<{WIDTH}}{'seconds':>8}{'samples/s':>10}{'x recipe':>9}{'x map':>7}"
            f"{'x map0':>7}{'of limit':>9}{'peak RSS':>10}"
        )
        print(head)
        print("-" * len(head))
        for r in table:
            print(
                f"{r['method']:<{WIDTH}}{_fmt(r['seconds'], '>8.1f')}{r['samples_per_s']:>10.1f}"
                f"{r['x_recipe']:>9.2f}{r['x_map']:>7.2f}{_fmt(r['x_map0'], '>7.2f')}"
                f"{r['of_limit']:>9.0%}"
                f"{_fmt(r['peak_rss_mb'], '>7.0f')} MB"
            )
        b = data["breakdown"]
        print(
            f"depth-pipeline (report on), {b['wall_s']:.1f} s: first sample at "
            f"{b['to_first_sample_s']:.2f} s; data {b['data_s']:.1f} s at {b['data_rate']:.1f} "
            f"samples/s = {b['data_of_limit']:.0%} of the limit (first sample to last shard: "
            f"{_fmt(b['steady_rate'], '.1f')}/s = {_fmt(b['steady_of_limit'], '.0%')}); last "
            f"shards alone {b['tail_s']:.2f} s; report {b['report_s']:.2f} s "
            f"({_fmt(b['report_share'], '.0%')} of the run)"
        )
        per = data["stages"]["per_sample_s"]
        total = sum(per.values())
        print(
            "per-sample cost, one thread, the workers' code (ms): "
            + "  ".join(f"{k} {v * 1000:.1f}" for k, v in per.items())
            + f"  = {total * 1000:.1f}\n"
        )
    mix = report.get("mixture")
    if mix:
        ratio = mix["mixture_per_s"] / max(mix["parts_alone_per_s"], 1e-9)
        alone = ", ".join(f"{k} {v:.1f}" for k, v in mix["alone"].items())
        print(
            f"mixture of {' + '.join(mix['parts'])} ({mix['samples']} samples, each input "
            f"once): {mix['mixture_per_s']:.1f} samples/s vs {mix['parts_alone_per_s']:.1f} "
            f"for its parts written alone ({alone}) = {ratio:.0%}\n"
        )
    render = report["render"]
    per_render = render["seconds"] / render["samples"] * 1000
    print(f"synthetic source render(): {per_render:.1f} ms/sample")
    for kind, s in report["startup"].items():
        tl = s["timeline"]
        print(
            f"start-up to the first sample written ({kind}): {s['median_s']:.2f} s median of "
            f"{len(s['first_sample_s'])} (config composed at {tl.get('composed', 0):.2f} s, "
            f"checks done at {tl.get('prepared', 0):.2f} s)"
        )
    print(f"depth-pipeline --help: {report['help']['median_s']:.2f} s median")
    sw = report["sweep"]
    print(f"sweep (README: {sw['jobs']} jobs x 64 samples, reports on): {sw['seconds']:.1f} s")
    if report.get("scale"):
        (n1, a), (n2, b) = sorted(report["scale"].items(), key=lambda kv: int(kv[0]))
        print(
            f"memory vs size (synthetic): peak RSS {a['peak_rss_mb']:.0f} MB at {n1} samples, "
            f"{b['peak_rss_mb']:.0f} MB at {n2} ({b['peak_rss_mb'] / a['peak_rss_mb']:.2f}x)"
        )
    m = report["machine"]
    print(f"load average before/after: {m['loadavg_before'][0]:.2f} / {m['loadavg_after'][0]:.2f}")
