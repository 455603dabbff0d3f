"""The per-dataset report: files decode, the page's links resolve, stats.json agrees with
numpy on the written shards, and depth-pipeline-report rebuilds it without touching data."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import tifffile
from conftest import ROOT, make_cfg, read_tar
from PIL import Image

from pipeline.dataset.owned import PUBLISHED
from pipeline.dataset.records import SampleRecord
from pipeline.dataset.stats import DEPTH_RELATIVE_BIN
from pipeline.dataset.writers import sha256_file
from pipeline.report.independence import independence
from pipeline.report.page import DOCS_PAGE
from pipeline.report.params import param_table
from pipeline.run.runner import run

PICTURES = (
    "collage.png",
    "before_after.png",
    "depth_hist.png",
    "invalid_fraction.png",
    "rgb_hist.png",
    "params.png",
    "param_corr.png",
    "most_invalid.png",
)


class Links(HTMLParser):
    """Every href/src on a page, and whether it parsed to the end."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [v for k, v in attrs if k in ("href", "src") and v]


def local_links(page: Path) -> list[Path]:
    """Parse ``page``; every link must be local (no network): a relative path to a file,
    or the docs page explaining a picture, in the installed package (``file://``)."""
    parser = Links()
    parser.feed(page.read_text())
    parser.close()
    assert "html" in parser.tags and "body" in parser.tags
    out = []
    for link in parser.links:
        url = urlparse(link)
        if url.scheme == "file":
            assert Path(unquote(url.path)) == DOCS_PAGE, f"a file:// link elsewhere: {link}"
            out.append(DOCS_PAGE)
            continue
        assert not url.scheme and not url.netloc, f"non-local link {link}"
        out.append((page.parent / unquote(url.path)).resolve())
    return out


def read_all(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    out = {}
    for tar in sorted(root.glob("*.tar")):
        for key, f in read_tar(tar).items():
            image = np.array(Image.open(io.BytesIO(f["png"])))
            depth = tifffile.imread(io.BytesIO(f["depth.tiff"]))
            out[key] = (image, depth, json.loads(f["json"]))
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rep") / "ds"
    run(
        make_cfg(out, "source.num_samples=10", "output.shard_size=4", "runtime.workers=1"),
        overrides=["source.num_samples=10", "output.shard_size=4"],
    )
    return out


def test_report_pictures_decode_to_sensible_sizes(dataset):
    report = dataset / "report"
    for name in PICTURES:
        with Image.open(report / name) as im:
            im.load()  # decodes every row, not just the header
            w, h = im.size
            assert 200 <= w <= 5000 and 150 <= h <= 5000, (name, im.size)
    with Image.open(report / "collage.png") as im:
        assert im.size[0] > im.size[1]  # 3x3 cells of image | depth pairs are wide
    assert not (report / "copies.png").exists()  # augment.copies = 1


def test_index_html_parses_and_every_link_resolves(dataset):
    page = dataset / "report" / "index.html"
    links = local_links(page)
    assert links, "the page links its pictures"
    missing = [str(p) for p in links if not p.is_file()]
    assert not missing
    text = page.read_text()
    for name in PICTURES:
        assert f'src="{name}"' in text
    assert "source.num_samples=10" in text  # the overrides
    assert "samples written" in text and "RandomCrop" in text  # counts, config
    assert "http://" not in text and "https://" not in text


def test_stats_json_matches_numpy_on_the_written_shards(dataset):
    stats = json.loads((dataset / "report" / "stats.json").read_text())
    samples = read_all(dataset)
    assert stats["samples"] == len(samples) == 10
    images = np.concatenate([s[0].reshape(-1, 3) for s in samples.values()]).astype(np.float64)
    depth = np.concatenate([s[1].ravel() for s in samples.values()])
    valid = depth[depth > 0]
    np.testing.assert_allclose(stats["rgb_mean"], images.mean(0) / 255, atol=2e-6)
    np.testing.assert_allclose(stats["rgb_std"], images.std(0) / 255, atol=2e-6)
    assert stats["depth_min"] == float(valid.min())
    assert stats["depth_max"] == float(valid.max())
    for name, value in stats["depth_percentiles"].items():
        expected = np.percentile(valid, float(name[1:]))
        assert abs(value - expected) <= DEPTH_RELATIVE_BIN * expected, (name, value, expected)
    assert math.isclose(stats["invalid_fraction"], 1 - valid.size / depth.size, abs_tol=1e-12)
    worst = max(samples, key=lambda k: (samples[k][1] == 0).mean())
    assert stats["worst_samples"][0]["key"] == worst
    info = json.loads((dataset / "dataset_info.json").read_text())
    assert info["stats"]["rgb_mean"] == stats["rgb_mean"]
    assert info["timings"]["report_s"] > 0


def test_params_table_matches_the_json_members(dataset):
    doc = json.loads((dataset / "report" / "params.json").read_text())
    assert {"crop.x_min", "crop.y_min", "brightness.alpha", "gamma.gamma"} <= set(doc["columns"])
    assert doc["dropped"]["crop.x_max"] == "follows crop.x_min"  # fixed-width crop
    members = read_all(dataset)
    # the JSON member holds the applied params as one JSON string (a stable schema)
    params = [json.loads(m[2]["augment"]["params"]) for m in members.values()]
    x = np.array([p["crop"]["crop_coords"][0] for p in params])
    y = np.array([p["crop"]["crop_coords"][1] for p in params])
    i, j = doc["columns"].index("crop.x_min"), doc["columns"].index("crop.y_min")
    assert doc["correlation"][i][j] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-4)


def test_independence_check_flags_shared_random_streams(rng):
    def samples(shared: bool) -> list[SampleRecord]:
        out = []
        for i in range(200):
            a = float(rng.uniform(0.8, 1.2))
            g = a if shared else float(rng.uniform(0.8, 1.2))
            params = {"brightness": {"alpha": a}, "gamma": {"gamma": g}}
            out.append(SampleRecord(str(i), i, 0, [4, 4], 0.0, params))
        return out

    for shared, status in ((True, "bad"), (False, "ok")):
        verdict = independence(param_table(samples(shared)))
        assert verdict["status"] == status, verdict["verdict"]


def test_copies_are_shown_side_by_side(tmp_path):
    run(make_cfg(tmp_path / "c", "source.num_samples=3", "augment.copies=3", "runtime.workers=1"))
    report = tmp_path / "c" / "report"
    with Image.open(report / "copies.png") as im:
        im.load()
        assert im.size[0] > 400
    assert 'src="copies.png"' in (report / "index.html").read_text()


def run_report(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    return subprocess.run(
        [sys.executable, "-c", "from pipeline.app import report_cli; report_cli()", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_report_command_rebuilds_without_touching_the_data(dataset, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)

    def data(root: Path) -> dict[Path, bytes]:  # all but the report and its record
        return {
            p.relative_to(root): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and "report" not in p.parts and p.name != PUBLISHED
        }

    before = data(copy)
    old_stats = (copy / "report" / "stats.json").read_bytes()
    shutil.rmtree(copy / "report")
    proc = run_report(str(copy), "report.rows=2")
    assert proc.returncode == 0, proc.stderr
    assert "index.html" in proc.stdout
    assert data(copy) == before  # shards, manifests, dataset_info.json untouched
    recorded = json.loads((copy / PUBLISHED).read_text())["files"]  # the rebuilt files
    assert recorded["report/index.html"] == sha256_file(copy / "report" / "index.html")
    assert (copy / "report" / "stats.json").read_bytes() == old_stats
    assert all(p.is_file() for p in local_links(copy / "report" / "index.html"))
    with (
        Image.open(copy / "report" / "collage.png") as small,
        Image.open(dataset / "report" / "collage.png") as big,
    ):
        assert small.size[1] < big.size[1]  # report.rows=2 took effect


def test_report_command_on_a_non_dataset_fails_in_one_line(tmp_path, dataset):
    proc = run_report(str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "dataset_info.json" in lines[0]
    proc = run_report(str(dataset), "augment.seed=3")  # would not describe the data
    assert proc.returncode == 2
    assert "only report.KEY=VALUE" in proc.stderr and "Traceback" not in proc.stderr


def test_report_command_refuses_while_an_overwrite_holds_the_dataset(tmp_path, dataset):
    """A rebuild takes the dataset's lock shared, like a run: an overwrite (exclusive)
    in progress makes it stop in one line naming the holder; nothing is written."""
    import shutil

    from pipeline.dataset.lock import RunLock

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    page = (copy / "report" / "index.html").read_bytes()
    lock = RunLock.acquire(copy, exclusive=True)
    try:
        proc = run_report(str(copy), "report.rows=2")
    finally:
        lock.release()
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {os.getpid()}" in lines[0], proc.stderr
    assert (copy / "report" / "index.html").read_bytes() == page


def test_report_command_bad_settings_and_broken_shards_are_one_line(tmp_path, dataset):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    page = (copy / "report" / "index.html").read_bytes()
    proc = run_report(str(copy), "report.colormap=nope")
    assert proc.returncode == 2 and "report.colormap='nope'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert (copy / "report" / "index.html").read_bytes() == page
    for tar in copy.glob("*.tar"):  # damaged after the run: unforeseen input
        tar.write_bytes(tar.read_bytes()[:700])
    proc = run_report(str(copy))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    # a damaged shard is named, with what to do (the one reader's message, not a bug)
    assert "train-000000.tar" in lines[0] and "depth-pipeline-verify" in lines[0]


def timings_on_page(page: Path) -> dict[str, float]:
    """The Timings table of index.html as {name: seconds}."""
    section = page.read_text().split("<h2>Timings</h2>")[1].split("</table>")[0]
    cells = [c.split("</td>")[0] for c in section.split("<td")[1:]]
    cells = [c.split(">", 1)[1] for c in cells]
    return {k: float(v) for k, v in zip(cells[::2], cells[1::2]) if not k.startswith("cpu")}


def test_a_rebuilt_report_shows_its_own_settings_and_consistent_timings(dataset, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    page = copy / "report" / "index.html"
    run_times = timings_on_page(page)
    assert 0 < run_times["report_s"] <= run_times["total_s"]
    assert "colormap: viridis" in page.read_text()
    proc = run_report(str(copy), "report.colormap=magma", "report.invalid_color=black")
    assert proc.returncode == 2 and "report.invalid_color=black" in proc.stderr  # magma's low end
    proc = run_report(str(copy), "report.colormap=magma")
    assert proc.returncode == 0, proc.stderr
    text = page.read_text()
    assert "colormap: magma" in text and "colormap: viridis" not in text
    assert "rebuilt by <code>depth-pipeline-report</code> with report.colormap=magma" in text
    times = timings_on_page(page)
    info = json.loads((copy / "dataset_info.json").read_text())["timings"]
    # the page shows the record's numbers as the record has them (4 significant digits)
    assert times["report_s"] == float(f"{info['report_s']:.4g}")
    assert times["total_s"] == float(f"{info['total_s']:.4g}")
    assert info["report_s"] <= info["total_s"]
    assert times["report_rebuilt_s"] > 0  # the rebuild's own time, beside the run's


def test_run_timings_report_within_total(dataset):
    timings = json.loads((dataset / "dataset_info.json").read_text())["timings"]
    assert 0 < timings["report_s"] <= timings["total_s"]
    assert timings["wall_s"] <= timings["total_s"]


def test_most_invalid_samples_link_to_their_picture(dataset):
    report = dataset / "report"
    stats = json.loads((report / "stats.json").read_text())
    text = (report / "index.html").read_text()
    worst = [w["key"] for w in stats["worst_samples"] if w["invalid_fraction"] > 0]
    assert worst
    for key in worst:
        assert f'<a href="most_invalid.png">{key}</a>' in text
    with Image.open(report / "most_invalid.png") as im:
        im.load()
        assert im.size[1] > 100 * len(worst)  # one row (image | depth, twice) per sample
    per_sample = stats["invalid_per_sample"]
    samples = read_all(dataset)
    fractions = np.array([(s[1] == 0).mean() for s in samples.values()])
    assert per_sample["max"] == pytest.approx(fractions.max(), abs=1e-6)
    assert per_sample["p50"] == pytest.approx(np.median(fractions), abs=1e-6)


def test_embedded_pictures_make_one_file(tmp_path):
    out = tmp_path / "e"
    run(make_cfg(out, "source.num_samples=3", "runtime.workers=1", "report.embed=true"))
    text = (out / "report" / "index.html").read_text()
    sources = [v for v in local_or_data(text) if v.startswith("data:image/png;base64,")]
    assert len(sources) >= 5
    import base64

    for src in sources:
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            im.load()
    assert 'src="collage.png"' not in text
    if 'id="most_invalid"' in text:  # the most-invalid keys link inside the one file
        assert 'href="#most_invalid"' in text and 'href="most_invalid.png"' not in text


def local_or_data(text: str) -> list[str]:
    parser = Links()
    parser.feed(text)
    return parser.links
