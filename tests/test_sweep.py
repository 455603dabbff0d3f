"""Multiruns: one dataset + report per job, and the sweep page from the Hydra callback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SMALL, run_cli, shard_bytes
from PIL import Image
from test_report import local_links

# The README example, on small scenes.
README_SWEEP = [
    "augment.transforms.gamma.gamma_limit=[80,120],[50,150]",
    "augment.transforms.hsv.p=0,0.5",
]
COMMON = [*SMALL, "source.num_samples=4", "runtime.workers=1"]


def sweep(tmp_path: Path, *args: str, name: str = "sweep"):
    return run_cli("-m", *args, *COMMON, f"hydra.sweep.dir={tmp_path / name}", cwd=tmp_path)


def job_rows(page: Path) -> list[str]:
    text = page.read_text()
    return text.split('<tr class="job">')[1:]


@pytest.fixture(scope="module")
def readme_sweep(tmp_path_factory) -> tuple[Path, object]:
    tmp = tmp_path_factory.mktemp("sw")
    return tmp, sweep(tmp, *README_SWEEP)


def test_readme_sweep_writes_one_dataset_and_report_per_job(readme_sweep):
    tmp, proc = readme_sweep
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = sorted((tmp / "outputs" / "datasets" / "synthetic").iterdir())
    assert len(data) == 4  # no two jobs share an output.dir
    for root in data:
        assert "[" not in root.name and "]" not in root.name  # no glob syntax in dir names
        info = json.loads((root / "dataset_info.json").read_text())
        assert info["counts"]["written"] == 4
        assert (root / "report" / "index.html").is_file()
    assert "sweep page:" in proc.stdout


def test_sweep_page_has_one_row_per_job_with_its_overrides(readme_sweep):
    tmp, _ = readme_sweep
    page = tmp / "sweep" / "index.html"
    rows = job_rows(page)
    assert len(rows) == 4
    expected = [
        (g, h) for g in ("[80,120]", "[50,150]") for h in ("0", "0.5")
    ]  # Hydra's job order: the first swept key varies slowest
    for row, (gamma, hsv) in zip(rows, expected):
        row = row.split("</tr>")[0]
        assert f"augment.transforms.gamma.gamma_limit={gamma}" in row
        assert f"augment.transforms.hsv.p={hsv}<" in row
        assert "source.num_samples" not in row  # shared overrides are not the label
        assert ">ok<" in row
    assert all(p.is_file() for p in local_links(page))  # contact sheet, json, 4 reports
    summary = json.loads((tmp / "sweep" / "sweep.json").read_text())
    assert [j["num"] for j in summary["jobs"]] == [0, 1, 2, 3]
    assert len({j["output_dir"] for j in summary["jobs"]}) == 4
    assert all(j["rgb_mean"] and j["depth_percentiles"]["p50"] for j in summary["jobs"])


def test_contact_sheet_shows_the_same_keys_for_every_job(readme_sweep):
    tmp, _ = readme_sweep
    summary = json.loads((tmp / "sweep" / "sweep.json").read_text())
    assert summary["keys"] == [f"train/{i:06d}" for i in range(4)]
    for job in summary["jobs"]:
        manifests = (Path(job["output_dir"]) / "manifests").glob("train-*.json")
        keys = {s["key"] for p in manifests for s in json.loads(p.read_text())["samples"]}
        assert set(summary["keys"]) <= keys
    with Image.open(tmp / "sweep" / "contact_sheet.png") as im:
        im.load()
        w, h = im.size
    assert w > h > 150  # 4 rows (jobs) of 4 image | depth pairs


@pytest.mark.slow
def test_rerunning_a_sweep_resumes_every_job(readme_sweep):
    tmp, _ = readme_sweep
    data = sorted((tmp / "outputs" / "datasets" / "synthetic").iterdir())
    before = {d.name: shard_bytes(d) for d in data}
    proc = sweep(tmp, *README_SWEEP, name="again")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted((tmp / "outputs" / "datasets" / "synthetic").iterdir()) == data
    for d in data:
        info = json.loads((d / "dataset_info.json").read_text())
        assert info["counts"]["resumed_shards"] == info["counts"]["shards"] == 1
        assert shard_bytes(d) == before[d.name]
    assert len(job_rows(tmp / "again" / "index.html")) == 4


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    proc = sweep(tmp_path, "+augment.transforms.rot._target_=Rotate,NoSuchTransform")
    assert proc.returncode == 2
    rows = job_rows(tmp_path / "sweep" / "index.html")
    assert len(rows) == 2
    assert ">ok<" in rows[0] and "failed" in rows[1] and "NoSuchTransform" in rows[1]


def test_full_overrides_show_the_resolved_output_dir(tmp_path):
    proc = sweep(
        tmp_path,
        f"output.dir={tmp_path}/d${{hydra:job.num}}",
        "augment.transforms.hsv.p=0,0.5",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = (tmp_path / "sweep" / "index.html").read_text()
    block = text.split("Full overrides and output dirs</h2>")[1]
    for num in (0, 1):
        assert f"output.dir={tmp_path}/d{num} " in block
    assert "\\{" not in text and "\\:" not in text
    rows = job_rows(tmp_path / "sweep" / "index.html")
    assert all("output.dir" not in row.split("</tr>")[0] for row in rows)  # same setting
