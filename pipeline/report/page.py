"""``index.html``: one page (inline CSS, no scripts, no network). The pictures are files
beside it, linked by relative path (copy the whole ``report/`` folder), or embedded as
``data:`` URIs with ``report.embed=true`` (one file to share)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pipeline.encode.depth import from_info

# the docs page that explains every picture (pipeline/docs/pages/report.md)
DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "pages" / "report.md"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
  color:#1d1d1f;background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:28px 0 8px;
  border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin:0 0 12px;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px}.card span{color:#666;font-size:12px}
.card.warn b{color:#b00020}
table{border-collapse:collapse;background:#fff;margin:6px 0 10px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;font-size:13px}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#fff;border:1px solid #ddd;padding:10px;overflow:auto;max-height:480px}
figure{margin:10px 0 18px}figure img{max-width:100%;height:auto;border:1px solid #ddd;
  background:#fff}figcaption{color:#555;font-size:12px;margin-top:3px}
.verdict{padding:6px 10px;border-left:4px solid #888;background:#fff}
.verdict.bad{border-color:#b00020}.verdict.ok{border-color:#2e7d32}
nav a{margin-right:12px}
"""


def _table(rows: list[list[Any]], head: list[str] | None = None) -> str:
    def cell(v: Any, tag: str) -> str:
        cls = ' class="num"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
        text = f"{v:.4g}" if isinstance(v, float) else str(v)
        return f"<{tag}{cls}>{escape(text)}</{tag}>"

    out = ["<table>"]
    if head:
        out.append("<tr>" + "".join(cell(h, "th") for h in head) + "</tr>")
    out += ["<tr>" + "".join(cell(v, "td") for v in row) + "</tr>" for row in rows]
    return "\n".join(out) + "</table>"


def _card(label: str, value: Any, warn: bool = False) -> str:
    return (
        f'<div class="card{" warn" if warn else ""}"><b>{escape(str(value))}</b>'
        f"<span>{escape(label)}</span></div>"
    )


def doc_link(name: str) -> str:
    """Where the docs explain picture ``name``: its entry on the report page, as that
    page's source in the installed package (a ``file://`` URI: offline, and reachable
    whatever ``output.dir`` is, which a relative link is not)."""
    return f"{DOCS_PAGE.as_uri()}#picture-{name}"


def _figure(name: str, src: str, caption: str) -> str:
    """A picture with its caption and a link to the docs explaining it; a file is also a
    link to itself (full size)."""
    img = f'<img src="{escape(src)}" alt="{escape(caption)}" loading="lazy">'
    if not src.startswith("data:"):
        img = f'<a href="{escape(src)}">{img}</a>'
    doc = f' <a class="doc" href="{escape(doc_link(name))}">(what this shows)</a>'
    return (
        f'<figure id="{escape(name)}">{img}<figcaption>{escape(caption)}{doc}</figcaption></figure>'
    )


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _fmt(values: list[float] | None, digits: int = 4) -> str:
    return "—" if values is None else "[" + ", ".join(f"{v:.{digits}f}" for v in values) + "]"


@dataclass
class PageData:
    """What the page shows. ``info``: dataset_info.json's content (with this report's
    timings); ``config``: the config this report was drawn with (report.* overrides of a
    rebuild included); ``figures``: section title -> (name, src, caption); ``rebuilt_with``:
    the overrides of ``depth-pipeline-report`` (None: written by the run)."""

    title: str
    info: dict[str, Any]
    config: dict[str, Any]
    stats: dict[str, Any]
    figures: dict[str, list[tuple[str, str, str]]]
    params: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    rebuilt_with: list[str] | None = None
    worst_picture: str | None = None


def _rebuilt(data: PageData) -> list[str]:
    if data.rebuilt_with is None:
        return []
    what = " ".join(data.rebuilt_with) or "the recorded settings"
    return [
        f'<p class="verdict">Report rebuilt by <code>depth-pipeline-report</code> with '
        f"{escape(what)}: the pictures and the config below use these settings; counts, "
        f"stats and the run's timings are as recorded in dataset_info.json.</p>"
    ]


def _worst(stats: dict[str, Any], picture: str | None) -> list[str]:
    worst = [w for w in stats.get("worst_samples") or [] if w["invalid_fraction"] > 0]
    if not worst:
        return []
    rows = []
    for w in worst:
        key = escape(w["key"])
        cell = f'<a href="{escape(picture)}">{key}</a>' if picture else key
        rows.append(f'<tr><td>{cell}</td><td class="num">{w["invalid_fraction"]:.4f}</td></tr>')
    return [
        "<h2>Most invalid samples</h2>",
        "<p>Each key opens the picture of these samples as written and in the source.</p>"
        if picture
        else "",
        "<table><tr><th>key</th><th>invalid fraction</th></tr>",
        *rows,
        "</table>",
    ]


def _part_table(by_part: dict[str, Any]) -> list[str]:
    """A mixture's parts side by side: samples and statistics over each part's range."""
    if not by_part:
        return []
    rows = []
    for name, st in by_part.items():
        pct = st.get("depth_percentiles") or {}
        rows.append(
            [
                name,
                st.get("samples", 0),
                f"{_num(st.get('depth_min'))} / {_num(st.get('depth_max'))}",
                f"{pct.get('p1')} / {pct.get('p50')} / {pct.get('p99')}",
                f"{st.get('invalid_fraction', 0.0):.4f}",
                _fmt(st.get("rgb_mean")),
            ]
        )
    head = ["part", "samples", "depth min / max (m)", "p1 / p50 / p99 (m)", "invalid", "RGB mean"]
    return ["<h2>Parts of the mixture</h2>", _table(rows, head)]


def render(data: PageData) -> str:
    """The whole page as a string.

    Longer than 60 lines: the page's HTML sections in the order they appear."""
    title, info, stats, figures = data.title, data.info, data.stats, data.figures
    params, notes, links = data.params, data.notes, data.links
    counts = info.get("counts", {})
    invalid = info.get("invalid_pixels", {})
    pct = stats.get("depth_percentiles", {})
    overrides = info.get("overrides") or []
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">config hash <code>{escape(str(info.get("config_hash")))}</code> · '
        f"seed {escape(str(info.get('seed')))} · depth-pipeline "
        f"{escape(str(info.get('versions', {}).get('depth-pipeline')))}</p>",
        "<nav>" + "".join(f'<a href="{escape(h)}">{escape(t)}</a>' for t, h in links) + "</nav>",
        '<div class="cards">',
        _card("samples written", counts.get("written", 0)),
        _card("samples skipped", counts.get("skipped", 0), warn=bool(counts.get("skipped"))),
        _card("shards", counts.get("shards", 0)),
        _card("invalid depth pixels", f"{stats.get('invalid_fraction', 0.0):.2%}"),
        _card("image size (HxW)", "x".join(map(str, info.get("image_size") or [])) or "—"),
        _card("processing wall time", f"{info.get('timings', {}).get('wall_s', 0):.1f} s"),
        "</div>",
        *_rebuilt(data),
        "<h2>Overrides</h2>",
        "<pre>"
        + escape("\n".join(overrides) if overrides else "(none: preset defaults)")
        + "</pre>",
    ]
    for note in notes:
        parts.append(f'<p class="verdict">{escape(note)}</p>')
    parts.append('<h2>Statistics (<a href="stats.json">stats.json</a>)</h2>')
    parts.append(
        _table(
            [
                ["RGB mean (0-1)", _fmt(stats.get("rgb_mean"))],
                ["RGB std (0-1)", _fmt(stats.get("rgb_std"))],
                [
                    "RGB mean / std (0-255)",
                    f"{_fmt(stats.get('rgb_mean_uint8'), 2)} / "
                    f"{_fmt(stats.get('rgb_std_uint8'), 2)}",
                ],
                [
                    "depth min / max (m)",
                    f"{_num(stats.get('depth_min'))} / {_num(stats.get('depth_max'))}",
                ],
                ["depth percentiles (m)", ", ".join(f"{k} {v}" for k, v in pct.items())],
                ["invalid fraction (all pixels)", f"{stats.get('invalid_fraction', 0.0):.4f}"],
                [
                    "depth encoding",
                    from_info(info.get("encodings", {}).get("depth", {})).summary(),
                ],
                [
                    "invalid fraction per sample (mean, median, p95, max)",
                    ", ".join(
                        f"{k} {v:.4f}" for k, v in (stats.get("invalid_per_sample") or {}).items()
                    ),
                ],
            ]
        )
    )
    parts.append(
        "<p>Normalize with <code>mean="
        + escape(_fmt(stats.get("rgb_mean")))
        + ", std="
        + escape(_fmt(stats.get("rgb_std")))
        + "</code> (images scaled to 0-1). Percentiles are read from a log-spaced "
        f"histogram whose bins are {stats.get('depth_histogram_relative_bin', 0):.2%} of "
        "their depth wide.</p>"
    )
    parts += _part_table(stats.get("parts") or {})
    for section, items in figures.items():
        if items:
            parts.append(f"<h2>{escape(section)}</h2>")
            parts += [_figure(name, src, caption) for name, src, caption in items]
    parts.append("<h2>Are the augmentation draws independent?</h2>")
    indep = params.get("independence", {})
    verdict = indep.get("verdict", "no parameters recorded")
    parts.append(f'<p class="verdict {indep.get("status", "")}">{escape(verdict)}</p>')
    top = indep.get("top", [])
    if top:
        parts.append(
            _table(
                [[p["a"], p["b"], p["r"], p["n"], p.get("p_adjusted", "—")] for p in top],
                ["parameter", "parameter", "Pearson r", "samples", "p (all pairs)"],
            )
        )
        parts.append(
            f"<p>{escape(str(indep.get('method', '')))}; flagged at p &le; "
            f"{indep.get('alpha')}.</p>"
        )
    if params.get("dropped"):
        parts.append(
            "<p>Not plotted: "
            + escape(", ".join(f"{k} ({v})" for k, v in params["dropped"].items()))
            + "</p>"
        )
    parts += _worst(stats, data.worst_picture)
    parts.append("<h2>Counts</h2>")
    rows = [["written", counts.get("written", 0)], ["skipped", counts.get("skipped", 0)]]
    rows += [[f"skipped: {r}", n] for r, n in (counts.get("skipped_reasons") or {}).items()]
    rows += [
        ["shards", counts.get("shards", 0)],
        ["resumed shards", counts.get("resumed_shards", 0)],
    ]
    rows += [[f"invalid source pixels: {k}", v] for k, v in invalid.items()]
    parts.append(_table(rows))
    skipped = counts.get("skipped_samples") or []
    if skipped:
        parts.append(_table([[s["key"], s["reason"]] for s in skipped[:50]], ["key", "reason"]))
    parts.append("<h2>Timings</h2>")
    timings = info.get("timings", {})
    trows = [[k, v] for k, v in timings.items() if not isinstance(v, dict)]
    trows += [[f"cpu s: {k}", v] for k, v in (timings.get("stage_cpu_s") or {}).items()]
    parts.append(_table(trows))
    parts.append("<h2>Config</h2>")
    config_yaml = OmegaConf.to_yaml(OmegaConf.create(data.config))
    parts.append(
        "<details open><summary>resolved config (as used for this report)</summary>"
        f"<pre>{escape(config_yaml)}</pre></details>"
    )
    parts.append(
        "<details><summary>source and versions</summary><pre>"
        + escape(
            json.dumps(
                {"source": info.get("source"), "versions": info.get("versions")},
                indent=2,
                default=str,
            )
        )
        + "</pre></details>"
    )
    parts.append("</main></body></html>\n")
    return "\n".join(parts)
