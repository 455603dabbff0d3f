"""Publishing a finished dataset: the ``README.md`` card, the report and, last,
``dataset_info.json`` (its presence means "finished"). Used by a plain run and by the
merge of sliced runs alike."""

from __future__ import annotations

import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from pipeline.augment.regions import region_bits
from pipeline.config.schema import Config
from pipeline.dataset import store
from pipeline.dataset.claim import CARD, CARD_MARK, card_is_ours
from pipeline.dataset.layouts import Layout, layout_for
from pipeline.dataset.owned import record_published, signed_card
from pipeline.dataset.records import INFO_FILE, DatasetInfo, ShardManifest
from pipeline.dataset.writers import atomic_write, sha256_file, write_error
from pipeline.encode.depth import from_info
from pipeline.pool.faults import fault_point
from pipeline.pool.trace import mark
from pipeline.sources import Source


def publish(
    root: Path,
    cfg: Config,
    manifests: list[ShardManifest],
    info: DatasetInfo,
    started: float | None = None,
    source: Source | None = None,
    executor: Executor | None = None,
) -> None:
    """The layout's extra files, the card, the report, then ``dataset_info.json``;
    ``started`` (perf_counter) sets total_s; ``source``: the run's opened source, which
    the report reads its before/after samples from (None: it opens one itself);
    ``executor``: where the report's plots are drawn (the run's worker pool)."""
    layout = layout_for(cfg.output.format, root, cfg.output.prefix)
    try:
        with store.fetched(cfg.output, root, layout.publish_reads(manifests)):
            layout.write_extra(manifests, info)
        written = [root / rel for rel in layout.extra_files()]
        info.checksums = vouched(root, [ShardManifest.path(root, m.shard) for m in manifests])
        info.checksums |= vouched(root, written)
        write_card(root, cfg, layout, info, _regions(manifests))
        fault_point("report")
        if cfg.report.enabled:
            from pipeline.report.build import build_report

            report_started = time.perf_counter()
            mark("report")
            written += build_report(
                root, cfg, manifests, info, source=source, run_started=started, executor=executor
            )
            info.timings.report_s = round(time.perf_counter() - report_started, 3)
            mark("reported")
        if started is not None:
            info.timings.total_s = round(time.perf_counter() - started, 3)
        record_published(root, written)  # what an overwrite may delete (as written)
        atomic_write(root / INFO_FILE, info.encode())
    except OSError as exc:
        if exc.filename and not str(exc.filename).startswith(str(root)):
            raise  # not a write into output.dir (e.g. the report re-reading the source)
        raise write_error(exc, "the dataset card, report or dataset_info.json", root) from None


def vouched(root: Path, paths: list[Path]) -> dict[str, str]:
    """``{path relative to root: sha256}`` of these written records (checked by verify)."""
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in paths if p.is_file()}


def mixture_lines(source: dict[str, Any]) -> str:
    """The card's table of a mixture's plan (``source=mix``), else nothing."""
    plan = source.get("plan") if source.get("kind") == "mix" else None
    if not plan:
        return ""
    rows = "".join(
        f"| {name} | {p['inputs']} | {p['count']} | {p['repeats']} |\n" for name, p in plan.items()
    )
    return (
        "\nA mixture: each sample's `dataset` is its part, `data_type` its kind of depth.\n\n"
        f"| part | inputs | samples | repeats |\n|---|---|---|---|\n{rows}"
    )


def _regions(manifests: list[ShardManifest]) -> dict[str, int]:
    """{region transform: its bit in mask.png} when a run writes several regions."""
    for m in manifests:
        for s in m.samples:
            return region_bits(s.params or {})
    return {}


def _regions_line(regions: dict[str, int]) -> str:
    if not regions:
        return ""
    bits = ", ".join(f"{name} = bit {bit}" for name, bit in regions.items())
    return (
        f"- evaluation regions in mask.png, one bit each: {bits} (inside a region: "
        f"mask & bit != 0; 0 = outside every region)\n"
    )


def write_card(
    root: Path,
    cfg: Config,
    layout: Layout,
    info: DatasetInfo,
    regions: dict[str, int] | None = None,
) -> bool:
    """A ``README.md`` dataset card whose YAML header lets ``datasets.load_dataset(dir)``
    read the shards. A ``README.md`` this tool did not write is left alone (False).
    ``regions``: the bit of each evaluation region in ``mask.png`` (several regions)."""
    if (root / CARD).exists() and not card_is_ours(root):
        return False
    stats, split = info.stats, cfg.source.split
    header = layout.card_header(split, info)
    where = cfg.output.dir  # a URL output.dir as given, not its staging directory
    loading = f"""
```python
from pipeline import read                    # image uint8 HxWx3, depth float32 metres
for image, depth, meta in read.load("{where}"):
    ...
```
"""
    if header:
        loading += f"""
```python
import datasets
ds = datasets.load_dataset("{where}", split="{split}")
```
"""
    regions_line = _regions_line(regions or {})
    meaning = info.encodings["depth"].get("canonical", {}).get("meaning")
    canonical, unit = (f"; **{meaning}**", "canonical m") if meaning else ("", "m")
    if scales := info.encodings["depth"].get("part_scales"):  # filelist: a scale per part
        each = ", ".join(f"{name} {scale:g}" for name, scale in scales.items())
        canonical = f"; **each part at its own depth_scale: {each}**{canonical}"
    text = f"""{header}
# RGB-D dataset {CARD_MARK}

{layout.describe(info)}
{mixture_lines(info.source)}
- samples: {info.counts.written} written, {info.counts.skipped} skipped
- image size (HxW): {info.image_size}
- depth: {from_info(info.encodings["depth"]).summary()}{canonical}
- RGB mean / std (0-1): {stats.get("rgb_mean")} / {stats.get("rgb_std")}
- depth range over valid pixels ({unit}): {stats.get("depth_min")} .. {stats.get("depth_max")}
{regions_line}- config hash: {info.config_hash}; content fingerprint: {info.fingerprint}; full
  provenance in `{INFO_FILE}`, per-shard manifests (keys, sha256, applied params) in
  `manifests/`, report in `report/index.html`.
{loading}"""
    atomic_write(root / CARD, signed_card(text))
    return True
