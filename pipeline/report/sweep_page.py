"""The sweep page: one contact-sheet row per job over the same sample keys, and a table of
each job's stats, written into the Hydra sweep dir after a multirun."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipeline.config.schema import ReportConfig
from pipeline.dataset.records import DatasetInfo
from pipeline.dataset.writers import atomic_write
from pipeline.errors import PipelineError
from pipeline.report import collages
from pipeline.report.build import REPORT_DIR, config_of
from pipeline.report.colors import DepthRange
from pipeline.report.page import CSS
from pipeline.report.samples import pick, read_written

PAGE = "index.html"
SHEET = "contact_sheet.png"
SUMMARY = "sweep.json"


def _resolved(override: str, config: dict[str, Any] | None) -> str:
    """An override as the job used it. Hydra records sweep overrides with interpolations
    escaped (``output.dir=d$\\{hydra\\:job.num\\}``); show the value the job resolved
    (from its dataset_info.json), else the text as it was typed."""
    if "$" not in override:
        return override
    key, sep, _ = override.partition("=")
    value: Any = config
    for part in key.lstrip("+~").split(".") if sep else ["\0"]:
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, (str, int, float, bool)):
        return f"{key}={value}"
    return re.sub(r"\\(.)", r"\1", override)


def _overrides(job: dict[str, Any]) -> list[str]:
    config = (job.get("info") or {}).get("config")
    return [_resolved(o, config) for o in job.get("overrides") or []]


def _varying(jobs: list[dict[str, Any]]) -> list[list[str]]:
    """Each job's overrides minus those every job shares (all of them for a single job),
    compared as typed (``output.dir=d${hydra:job.num}`` is one setting), shown resolved."""
    sets = [list(j.get("overrides") or []) for j in jobs]
    common = set.intersection(*(set(s) for s in sets)) if len(sets) > 1 else set()
    out = []
    for job, raw in zip(jobs, sets):
        config = (job.get("info") or {}).get("config")
        kept = [o for o in raw if o not in common] or raw
        out.append([_resolved(o, config) for o in kept])
    return out


def _load(job: dict[str, Any]) -> dict[str, Any]:
    """Attach the job's dataset info, config and manifests (or the reason they are missing)."""
    job = dict(job)
    if job.get("exit_code") not in (0, 3):
        job["problem"] = job.get("error") or f"exit code {job.get('exit_code')}"
        return job
    root = Path(job["output_dir"])
    try:
        info = DatasetInfo.read(root)
        job["cfg"] = config_of(info)
        job["manifests"] = info.manifests(root)
        job["info"] = info.to_json()
    except PipelineError as exc:
        job["problem"] = str(exc)
    return job


PART_STATS = ("samples", "rgb_mean", "rgb_std", "depth_percentiles", "invalid_fraction")


def _shown(ok: list[dict[str, Any]], keys: int) -> dict[str, list[str]]:
    """The keys every job wrote that the sheet shows: ``keys`` of them, or, for a
    mixture, ``keys`` per part ({part: keys}; {"": keys} for one source)."""
    if not ok:
        return {}
    present = set.intersection(*({s.key for m in j["manifests"] for s in m.samples} for j in ok))
    parts = list(ok[0]["info"]["stats"].get("parts") or {}) or [""]
    out = {}
    for part in parts:
        mine = [
            dataclasses.replace(m, samples=[s for s in m.samples if s.dataset == part])
            for m in ok[0]["manifests"]
        ]
        out[part] = [s.key for s in pick(mine, keys) if s.key in present]
    return out


def _sheet(
    jobs: list[dict[str, Any]],
    labels: list[list[str]],
    ok: list[dict[str, Any]],
    part: str,
    shown: list[str],
) -> bytes:
    """One row per job over the keys ``shown``, in one depth range over the jobs (a
    mixture's part: that part's range in every job)."""
    rcfg: ReportConfig = ok[0]["cfg"].report
    stats = [j["info"]["stats"] for j in ok]
    pct = [
        ((st.get("parts") or {}).get(part, st) if part else st)["depth_percentiles"] for st in stats
    ]
    unit = "canonical m" if ok[0]["info"]["encodings"]["depth"].get("canonical") else "m"
    rng = DepthRange.of(rcfg, [p.get("p1") for p in pct], [p.get("p99") for p in pct], unit)
    style = collages.Style.of(rcfg, rng)
    rows = []
    for job, label in zip(jobs, labels):
        text = "\n".join([f"job #{job.get('num')}", *(label or ["(no overrides)"])])
        if "manifests" in job:
            got = read_written(Path(job["output_dir"]), job["cfg"], job["manifests"], shown)
            cells = [collages.Cell(s.image, s.depth) if s else None for s in map(got.get, shown)]
            rows.append((text, cells))
        else:
            rows.append((text + " (failed)", [None] * len(shown)))
    whose = f"{part}: " if part else ""
    title = f"{whose}{len(jobs)} jobs, same keys, one depth range {rng.span}"
    return collages.labelled_rows(rows, shown, style, title, max_label_lines=6)


def build_sweep_page(sweep_dir: Path, jobs: list[dict[str, Any]], keys: int = 4) -> Path:
    """Write ``contact_sheet.png``, ``sweep.json`` and ``index.html`` into ``sweep_dir``.

    Longer than 60 lines: read every run of the sweep, then one row per run."""
    jobs = [_load(j) for j in jobs]
    labels = _varying(jobs)
    ok = [j for j in jobs if "manifests" in j]
    groups = _shown(ok, keys)
    shown = [k for keys_ in groups.values() for k in keys_]
    sheet_written = False
    if shown:
        sheets = [_sheet(jobs, labels, ok, part, mine) for part, mine in groups.items() if mine]
        png = sheets[0] if len(sheets) == 1 else collages.stack_pngs(sheets)
        atomic_write(sweep_dir / SHEET, png)
        sheet_written = True

    table = []
    for job, label in zip(jobs, labels):
        stats = job.get("info", {}).get("stats", {})
        counts = job.get("info", {}).get("counts", {})
        report = Path(job["output_dir"]) / REPORT_DIR / "index.html"
        table.append(
            {
                "num": job.get("num"),
                "overrides": _overrides(job),
                "overrides_as_recorded": job.get("overrides") or [],
                "varied": label,
                "output_dir": job["output_dir"],
                "status": "ok" if "info" in job else "failed",
                "problem": job.get("problem"),
                "written": counts.get("written"),
                "skipped": counts.get("skipped"),
                "rgb_mean": stats.get("rgb_mean"),
                "rgb_std": stats.get("rgb_std"),
                "depth_percentiles": stats.get("depth_percentiles"),
                "invalid_fraction": stats.get("invalid_fraction"),
                "parts": {
                    name: {k: part.get(k) for k in PART_STATS}
                    for name, part in (stats.get("parts") or {}).items()
                },
                "wall_s": job.get("info", {}).get("timings", {}).get("wall_s"),
                "report": os.path.relpath(report, sweep_dir) if report.is_file() else None,
            }
        )
    atomic_write(
        sweep_dir / SUMMARY,
        json.dumps({"keys": shown, "jobs": table}, indent=2, default=str).encode(),
    )
    atomic_write(sweep_dir / PAGE, _html(sweep_dir, table, shown, sheet_written).encode())
    return sweep_dir / PAGE


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, list):
        return "[" + ", ".join(f"{x:.{digits}f}" for x in v) + "]"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _part_row(name: str, part: dict[str, Any]) -> str:
    """A mixture's part under its job's row: the part's own numbers."""
    pct = part.get("depth_percentiles") or {}
    cells = ["", f"part {escape(name)}", "", escape(_fmt(part.get("samples"))), ""]
    cells += [escape(_fmt(part.get("rgb_mean"))), escape(_fmt(part.get("rgb_std")))]
    cells.append(escape(" / ".join(_fmt(pct.get(p), 2) for p in ("p1", "p50", "p99"))))
    cells += [escape(_fmt(part.get("invalid_fraction"), 4)), "", ""]
    return '<tr class="part">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _html(sweep_dir: Path, table: list[dict[str, Any]], keys: list[str], sheet: bool) -> str:
    """Longer than 60 lines: the sweep page's HTML in the order it appears."""
    head = [
        "job",
        "varied overrides",
        "status",
        "written",
        "skipped",
        "RGB mean (0-1)",
        "RGB std (0-1)",
        "depth p1 / p50 / p99 (m)",
        "invalid",
        "wall s",
        "report",
    ]
    rows = []
    for r in table:
        pct = r["depth_percentiles"] or {}
        link = f'<a href="{escape(quote(r["report"]))}">report</a>' if r["report"] else "—"
        status = r["status"] if not r["problem"] else f"{r['status']}: {r['problem']}"
        cells = [
            escape(str(r["num"])),
            "<code>" + "<br>".join(escape(o) for o in r["varied"]) + "</code>",
            escape(status),
            escape(_fmt(r["written"])),
            escape(_fmt(r["skipped"])),
            escape(_fmt(r["rgb_mean"])),
            escape(_fmt(r["rgb_std"])),
            escape(" / ".join(_fmt(pct.get(p), 2) for p in ("p1", "p50", "p99"))),
            escape(_fmt(r["invalid_fraction"], 4)),
            escape(_fmt(r["wall_s"], 1)),
            link,
        ]
        rows.append('<tr class="job">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        rows += [_part_row(name, part) for name, part in (r.get("parts") or {}).items()]
    all_overrides = "\n".join(
        f"#{r['num']}: {' '.join(r['overrides'])}  ->  {r['output_dir']}" for r in table
    )
    sheet_html = (
        f'<figure><a href="{SHEET}"><img src="{SHEET}" alt="contact sheet"></a>'
        f"<figcaption>one row per job (label = its varied overrides), columns = the same "
        f"keys: {escape(', '.join(keys))}; image | depth</figcaption></figure>"
        if sheet
        else "<p>No job produced samples to show.</p>"
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>depth-pipeline sweep: {escape(sweep_dir.name)}</title>",
            f"<style>{CSS}</style></head><body><main>",
            f"<h1>Sweep: {len(table)} jobs</h1>",
            f'<p class="sub">{escape(str(sweep_dir))} · <a href="{SUMMARY}">{SUMMARY}</a></p>',
            "<h2>Contact sheet</h2>",
            sheet_html,
            "<h2>Stats per job</h2>",
            '<table id="jobs"><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>",
            *rows,
            "</table>",
            "<h2>Full overrides and output dirs</h2>",
            f"<pre>{escape(all_overrides)}</pre>",
            "</main></body></html>\n",
        ]
    )
