"""source=mix: a NYU-schema parquet (dense metres, 640x480, the NYU camera) and a
KITTI-style folder (sparse 16-bit PNG x256, 375x1242, calib files) mixed 0.7 / 0.3 in
one run, read back with independent readers (tarfile, tifffile / Pillow, datasets,
webdataset)."""

from __future__ import annotations

import html
import io
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import make_cfg, read_tar, run_cli
from fixtures import hub_parquet, kitti_tree
from kitti_calib import DATES
from PIL import Image

from pipeline import read
from pipeline.errors import PipelineError
from pipeline.run.runner import run
from pipeline.sources.mix_plan import Schedule, counts

NYU_CAMERA = (518.8579, 519.4696, 325.5824, 253.7362)
KITTI_FX, KITTI_CX, KITTI_CY = DATES["2011_09_26"][:3]
SHARD = 8
TOTAL = 21


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix-sources")
    nyu = hub_parquet(root / "nyu", n=7, shape=(480, 640))
    kitti = kitti_tree(root / "kitti", shape=(375, 1242), frames=3)  # 4 frames with depth
    return root, nyu, kitti


def mix_args(root: Path, *extra: str) -> list[str]:
    return [
        "source=mix",
        "+source@source.parts.nyu.source=nyu_parquet",
        f"source.parts.nyu.source.path={root / 'nyu'}",
        "+source@source.parts.kitti.source=kitti",
        f"source.parts.kitti.source.path={root / 'kitti'}",
        "source.parts.nyu.weight=0.7",
        "source.parts.kitti.weight=0.3",
        "source.parts.kitti.data_type=lidar",
        "+augment@source.parts.nyu.augment=nyu",
        "+augment@source.parts.kitti.augment=kitti",
        f"source.num_samples={TOTAL}",
        f"output.shard_size={SHARD}",
        "runtime.workers=1",
        "report.enabled=false",
        *extra,
    ]


@pytest.fixture(scope="module")
def mixed(parts, tmp_path_factory):
    root = parts[0]
    out = tmp_path_factory.mktemp("mixed") / "wds"
    run(make_cfg(out, *mix_args(root)))
    return out


def frame_of(meta: dict, nyu: dict, kitti: dict) -> tuple[np.ndarray, tuple[float, ...]]:
    """The source frame's depth (metres) and camera a written sample was made from."""
    part, _, key = meta["source"]["key"].partition("/")
    key = re.sub(r"_r[0-9]+$", "", key)
    assert part == meta["dataset"]
    if part == "nyu":
        return nyu[key][1], NYU_CAMERA
    cx = KITTI_CX  # image_03 shares fx, cx, cy with image_02 in the calibration
    return kitti[key][1], (KITTI_FX, KITTI_FX, cx, KITTI_CY)


def through(depth: np.ndarray, h: list[float], shape: tuple[int, int]) -> np.ndarray:
    """Source depth carried by the recorded homography (a crop / flip: integer steps)."""
    m = np.array(h, dtype=np.float64).reshape(3, 3)
    inv = np.linalg.inv(m)
    v, u = np.mgrid[0 : shape[0], 0 : shape[1]]
    su = np.rint(inv[0, 0] * u + inv[0, 1] * v + inv[0, 2]).astype(int)
    sv = np.rint(inv[1, 0] * u + inv[1, 1] * v + inv[1, 2]).astype(int)
    return depth[sv, su]


def test_plan_blocks_hold_every_part_within_one():
    """Counts by largest remainder; every block within 1 of weight x block; exact totals;
    each part's samples in order (a property over many random mixtures)."""
    rng = np.random.default_rng(0)
    assert counts(10, [0.7, 0.3], [None, None]) == [7, 3]
    assert counts(10, [1.0, 1.0, 1.0], [None, None, None]) == [4, 3, 3]
    assert counts(10, [1.0, 1.0], [None, 2]) == [8, 2]
    for _ in range(200):
        p = int(rng.integers(2, 6))
        total, block = int(rng.integers(1, 2000)), int(rng.integers(1, 70))
        c = counts(total, list(rng.random(p) + 0.01), [None] * p)
        sched = Schedule(c, block)
        rows = sched.block_counts()
        assert [sum(r[i] for r in rows) for i in range(p)] == c
        for row in rows:
            for i in range(p):
                assert abs(row[i] - sum(row) * c[i] / total) < 1
        if total < 300:
            seen = [sched.at(i) for i in range(total)]
            for i in range(p):
                assert [k for q, k in seen if q == i] == list(range(c[i]))


def test_mixture_counts_shards_tags_and_frames(parts, mixed, capsys):
    """The Done-when case: totals and each shard within 1 of the weights, every sample
    tagged, each sample's depth and camera exactly its source frame's through its
    recorded homography; the plan in dataset_info.json and the card."""
    _, nyu, kitti = parts
    tars = sorted(mixed.glob("*.tar"))
    samples = [(t, k, m) for t in tars for k, m in read_tar(t).items()]
    assert len(samples) == TOTAL
    metas = [json.loads(m["json"]) for _, _, m in samples]
    tally = Counter(m["dataset"] for m in metas)
    assert tally == {"nyu": 15, "kitti": 6}  # 21 x 0.7 = 14.7, 21 x 0.3 = 6.3
    for tar in tars:
        shard = [json.loads(m["json"]) for m in read_tar(tar).values()]
        here = Counter(m["dataset"] for m in shard)
        for part, weight in (("nyu", 0.7), ("kitti", 0.3)):
            assert abs(here[part] - weight * len(shard)) < 1, (tar.name, here)
    assert {m["data_type"] for m in metas if m["dataset"] == "nyu"} == {"dense"}
    assert {m["data_type"] for m in metas if m["dataset"] == "kitti"} == {"lidar"}
    # 7 NYU inputs for 15 samples: every input 2x, one 3x, each repeat augmented afresh
    keys = [m["key"] for m in metas]
    assert len(set(keys)) == TOTAL and sum(k.startswith("nyu/") for k in keys) == 15
    nyu_keys = [k for k in keys if k.startswith("nyu/")]
    assert sum(k.endswith("_r1") for k in nyu_keys) == 7
    assert sum(k.endswith("_r2") for k in nyu_keys) == 1
    crops = {json.loads(m["augment"]["params"])["crop"]["crop_coords"][0] for m in metas}
    assert len(crops) > 10
    for (_, _, members), meta in zip(samples, metas):
        depth = tifffile.imread(io.BytesIO(members["depth.tiff"]))
        image = np.asarray(Image.open(io.BytesIO(members["png"])))
        assert image.shape[:2] == depth.shape
        assert depth.shape == ((416, 544) if meta["dataset"] == "nyu" else (352, 704))
        src_depth, (fx, fy, cx, cy) = frame_of(meta, nyu, kitti)
        cam = meta["camera"]
        h = cam["homography"]
        np.testing.assert_array_equal(depth, through(src_depth, h, depth.shape))
        assert cam["fx"] == pytest.approx(fx) and cam["fy"] == pytest.approx(fy)
        assert cam["cx"] == pytest.approx(h[0] * cx + h[2])
        assert cam["cy"] == pytest.approx(h[4] * cy + h[5])
    info = json.loads((mixed / "dataset_info.json").read_text())
    plan = info["source"]["plan"]
    assert plan["nyu"] == {"inputs": 7, "count": 15, "repeats": 3, "used": 7}
    assert plan["kitti"] == {"inputs": 4, "count": 6, "repeats": 2, "used": 4}
    card = (mixed / "README.md").read_text()
    assert "| nyu | 7 | 15 | 3 |" in card and "| kitti | 4 | 6 | 2 |" in card
    assert 'name: "dataset"' in card and 'name: "data_type"' in card


def test_plan_printed_and_resume_and_changed_weight(parts, mixed, tmp_path, capsys):
    """The plan is printed before the run; the same command resumes every shard
    byte-identically; a changed weight or part source is refused naming the key."""
    root = parts[0]
    before = {p.name: p.read_bytes() for p in mixed.glob("*.tar")}
    result = run(make_cfg(mixed, *mix_args(root)))
    assert result.new_shards == 0 and result.written == TOTAL
    assert {p.name: p.read_bytes() for p in mixed.glob("*.tar")} == before
    printed = capsys.readouterr().out
    assert "nyu: 15 samples (71.4%) from 7 inputs" in printed
    assert "kitti: 6 samples (28.6%) from 4 inputs" in printed
    with pytest.raises(PipelineError, match=r"source\.parts\.kitti\.weight \(0\.3 -> 0\.4\)"):
        run(make_cfg(mixed, *mix_args(root), "source.parts.kitti.weight=0.4"))
    with pytest.raises(PipelineError, match=r"source\.parts\.nyu\.source\.depth\.max"):
        run(make_cfg(mixed, *mix_args(root), "source.parts.nyu.depth.max=5"))


def test_slices_and_workers_give_the_same_bytes(parts, mixed, tmp_path):
    """A mixture run as two slices and merged, or by two worker processes, equals the
    single inline run, shard by shard."""
    root = parts[0]
    want = {p.name: p.read_bytes() for p in mixed.glob("*.tar")}
    out = tmp_path / "sliced"
    for k in (1, 0):
        run(make_cfg(out, *mix_args(root), f"shard.index={k}", "shard.num_shards=2"))
    assert {p.name: p.read_bytes() for p in out.glob("*.tar")} == want
    out = tmp_path / "pool"
    run(make_cfg(out, *mix_args(root), "runtime.workers=2"))
    assert {p.name: p.read_bytes() for p in out.glob("*.tar")} == want


@pytest.mark.parametrize("fmt", ["webdataset", "folder", "filelist"])
def test_formats_load_with_the_tag(parts, tmp_path, fmt):
    """webdataset, folder and filelist: ``datasets.load_dataset`` (fresh cache) has the
    part tag, the webdataset library has it in the JSON, Metric3D records carry it, and
    ``read.load`` selects parts."""
    import datasets

    root = parts[0]
    out = tmp_path / fmt
    run(make_cfg(out, *mix_args(root, f"output={fmt}", "source.num_samples=10")))
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf"))
    tags = ds["json"] if fmt == "webdataset" else ds
    column = [t["dataset"] for t in tags] if fmt == "webdataset" else tags["dataset"]
    assert Counter(column) == {"nyu": 7, "kitti": 3}
    assert len([m for _, _, m in read.load(out, parts=["kitti"])]) == 3
    if fmt == "webdataset":
        import webdataset as wds

        decoder = read.depth_decoder(read.depth_scale(out))
        loaded = list(wds.WebDataset(read.shards(out), shardshuffle=False).decode(decoder))
        assert Counter(s["json"]["dataset"] for s in loaded) == {"nyu": 7, "kitti": 3}
        from pipeline.torch import DepthShards  # the part tag reaches a training batch too

        assert Counter(s["dataset"] for s in DepthShards(out)) == {"nyu": 7, "kitti": 3}
    if fmt == "filelist":
        lines = (out / "train.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        assert Counter((r["dataset"], r["data_type"]) for r in records) == {
            ("nyu", "dense"): 7,
            ("kitti", "lidar"): 3,
        }


def test_parquet_parts_are_configs(parts, tmp_path):
    """output=parquet: each part's rows in data/{part}/, one datasets config per part
    (``load_dataset(out, "kitti")``) beside the whole; the one reader keeps dataset order."""
    import datasets

    out = tmp_path / "pq"
    run(make_cfg(out, *mix_args(parts[0], "output=parquet", "source.num_samples=10")))
    cache = str(tmp_path / "hf")
    whole = datasets.load_dataset(str(out), split="train", cache_dir=cache)
    assert Counter(whole["dataset"]) == {"nyu": 7, "kitti": 3}
    kitti = datasets.load_dataset(str(out), "kitti", split="train", cache_dir=cache)
    assert kitti["dataset"] == ["kitti"] * 3
    assert {p.parent.name for p in (out / "data").rglob("*.parquet")} == {"kitti", "nyu"}
    written = {m["key"]: d for _, d, m in read.load(out)}
    shards = sorted((out / "manifests").glob("train-*.json"))
    order = [s["key"] for p in shards for s in json.loads(p.read_text())["samples"]]
    assert list(written) == order  # the one reader: dataset order across the part files
    for row in kitti:
        assert np.asarray(row["depth_map"]).tobytes() == written[row["key"]].tobytes()


@pytest.mark.parametrize("mode", ["depth", "resize"])
def test_canonical_camera(parts, tmp_path, mode):
    """``source.canonical.focal=1000``: every sample has fx = 1000; in depth mode its
    depth is the source's x 1000 / fx, in resize mode the image is resized instead."""
    root, nyu, kitti = parts
    out = tmp_path / mode
    extra = ["source.canonical.focal=1000", f"source.canonical.mode={mode}", "output=folder"]
    run(make_cfg(out, *mix_args(root, *extra, "source.num_samples=6")))
    loaded = list(read.load(out))
    assert {m["dataset"] for _, _, m in loaded} == {"nyu", "kitti"}
    for _, depth, meta in loaded:
        cam = meta["camera"]
        src_depth, (fx, _, _, _) = frame_of(meta, nyu, kitti)
        ratio = meta["augment"]["params"]["canonical"]["ratio"]
        if mode == "depth":
            assert cam["fx"] == pytest.approx(1000.0)
            assert ratio == pytest.approx(1000.0 / fx)
            h = cam["homography"]
            expected = through(src_depth, h, depth.shape) * np.float32(ratio)
            np.testing.assert_allclose(depth, expected, rtol=1e-6)
        else:
            assert (cam["fx"] + cam["fy"]) / 2 == pytest.approx(1000.0, rel=1e-2)
            assert depth.max() <= src_depth.max()  # depth kept, only resampled


def test_bad_mixtures_are_one_line(parts, tmp_path):
    root = parts[0]
    with pytest.raises(PipelineError, match=r"source\.parts\.kitti\.weight must be > 0"):
        run(make_cfg(tmp_path / "a", *mix_args(root, "source.parts.kitti.weight=-1")))
    with pytest.raises(PipelineError, match=r"source\.parts\.nyu\.source\.colour"):
        run(make_cfg(tmp_path / "b", *mix_args(root, "+source.parts.nyu.source.colour=1")))
    with pytest.raises(PipelineError, match=r"source\.parts\.kitti: .*crop"):
        args = mix_args(root, "source.parts.kitti.augment.transforms.crop.height=400")
        run(make_cfg(tmp_path / "c", *args))
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").glob("*.tar"))


def test_report_per_part_matches_the_parts_alone(parts, tmp_path):
    """Each input once, no augmentation: the mixture's per-part statistics are those of
    each part written alone; the report draws each part in its own colour range."""
    root = parts[0]
    plain = ["augment=none", "runtime.workers=1", "output.shard_size=4"]
    out = tmp_path / "mix"
    args = [a for a in mix_args(root) if "weight" not in a and "augment@" not in a]
    args = [a for a in args if not a.startswith(("source.num_samples", "report.", "output."))]
    run(make_cfg(out, *args, *plain, "report.plots=[parts,collage]", small=False))
    mixed = json.loads((out / "report" / "stats.json").read_text())["parts"]
    assert {k: v["samples"] for k, v in mixed.items()} == {"nyu": 7, "kitti": 4}
    for name, preset in (("nyu", "nyu_parquet"), ("kitti", "kitti")):
        alone = tmp_path / name
        single = [f"source={preset}", f"source.path={root / name}", "report.plots=[collage]"]
        run(make_cfg(alone, *single, *plain, small=False))
        own = json.loads((alone / "report" / "stats.json").read_text())
        for key in ("depth_min", "depth_max", "depth_percentiles", "rgb_mean", "invalid_fraction"):
            assert mixed[name][key] == own[key], (name, key)
    page = (out / "report" / "index.html").read_text()
    assert "Parts of the mixture" in page and "parts.png" in page
    picture = np.asarray(Image.open(out / "report" / "parts.png"))
    assert picture.ndim == 3 and picture.shape[0] > 200


def test_png16_scale_fits_every_part(parts, tmp_path):
    """16-bit PNG depth of a mixture with a KITTI part: x256 by default (its far points
    fit); a range set for the whole mixture instead of per part is refused."""
    root = parts[0]
    out = tmp_path / "png16"
    run(make_cfg(out, *mix_args(root, "output=filelist", "source.num_samples=6")))
    assert read.depth_scale(out) == 256.0
    with pytest.raises(PipelineError, match=r"source\.depth\.min/max: a mixture's ranges"):
        run(make_cfg(tmp_path / "x", *mix_args(root, "source.depth.max=10")))


def test_typos_inside_a_part_and_the_drop_note_name_the_part(parts, tmp_path):
    """A misspelt part key or part source key gets "did you mean" with its full key; the
    summary's drop note names the part's range key, not the mixture's 0..inf."""
    root = parts[0]
    for typo, near in (
        ("source.parts.kitti.wieght=0.3", "source.parts.kitti.weight"),
        ("source.parts.kitti.source.pth=x", "source.parts.kitti.source.path"),
        ("+source.parts.nyu.source.pth=x", "source.parts.nyu.source.path"),
    ):
        proc = run_cli(*mix_args(root, typo), f"output.dir={tmp_path / 'typo'}")
        assert proc.returncode == 2, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert f"did you mean {near}?" in line, line
    args = mix_args(root, "source.parts.kitti.depth.max=5", "source.num_samples=6")
    proc = run_cli(*args, f"output.dir={tmp_path / 'drop'}", "runtime.progress=false")
    assert proc.returncode == 0, proc.stderr
    (note,) = [s for s in proc.stdout.splitlines() if s.startswith("note:")]
    assert "source.parts.kitti.depth.min/max = 0..5 m zeroed" in note, note
    assert "source.parts.kitti.depth.min/max if" in note and "source.depth." not in note


def test_trainer_lists_per_part_read_back_with_their_scale(parts, tmp_path):
    """``output=filelist``: each part written at its own integer scale (NYU 1000, KITTI
    256), one BTS / ZoeDepth list per part and no pooled one; every line of every list,
    read with its part's scale (and every Metric3D record with its own), gives the
    sample's depth (the float32 TIFF of the same run) within 0.5 / scale."""
    root = parts[0]
    common = mix_args(root, "source.num_samples=10", "source.canonical.focal=1000")
    lists, truth = tmp_path / "lists", tmp_path / "truth"
    run(make_cfg(lists, *common, "output=filelist"))
    run(make_cfg(truth, *common, "output=folder"))
    exact = {
        key.rpartition(".")[0]: tifffile.imread(path)
        for path in (truth / "depth").rglob("*.tiff")
        if (key := str(path.relative_to(truth / "depth")))
    }
    info = json.loads((lists / "dataset_info.json").read_text())
    scales = info["encodings"]["depth"]["part_scales"]
    assert scales == {"nyu": 1000.0, "kitti": 256.0}
    assert not (lists / "train_files_with_gt.txt").exists()  # one scale per line: none
    seen = Counter()
    for part, scale in scales.items():
        name = f"train_{part}_files_with_gt.txt"
        assert name in (lists / "README.md").read_text()
        for line in (lists / name).read_text().splitlines():
            rgb, gt, focal = line.split()
            assert gt.startswith(f"{part}/") and float(focal) == pytest.approx(1000.0)
            png = np.asarray(Image.open(lists / "depth" / gt), dtype=np.float32) / scale
            want = exact[gt.rpartition(".")[0]]
            assert np.abs(png - want).max() <= 0.5 / scale + 1e-6, (gt, scale)
            seen[part] += 1
    assert seen == {"nyu": 7, "kitti": 3}
    for line in (lists / "train.jsonl").read_text().splitlines():
        r = json.loads(line)
        assert r["depth_scale"] == scales[r["dataset"]]
        png = np.asarray(Image.open(lists / r["depth"]), dtype=np.float32) / r["depth_scale"]
        want = exact[r["depth"].partition("/")[2].rpartition(".")[0]]
        assert np.abs(png - want).max() <= 0.5 / r["depth_scale"] + 1e-6, r["depth"]


def test_report_draws_every_part_in_its_own_range(parts, tmp_path):
    """Augment per part, canonical focal 1000: every data picture is drawn per part, each
    part in its own colour range (its p1-p99 from stats.json); before/after holds both
    parts; most-invalid is measured against each part's typical fraction; the depth is
    labelled canonical; the independence verdict is not DEPENDENT."""
    from pipeline.config.schema import to_config
    from pipeline.dataset.records import DatasetInfo
    from pipeline.report import part_pictures
    from pipeline.report.build import dataset_stats
    from pipeline.report.context import Context
    from pipeline.report.params import param_table, part_tables

    root = parts[0]
    out = tmp_path / "mix"
    cfg = make_cfg(out, *mix_args(root, "source.canonical.focal=1000", "report.enabled=true"))
    run(cfg)
    report = out / "report"
    stats = json.loads((report / "stats.json").read_text())["parts"]
    verdict = json.loads((report / "params.json").read_text())["independence"]
    assert verdict["status"] != "bad" and "DEPENDENT" not in verdict["verdict"], verdict
    page = html.unescape((report / "index.html").read_text())
    assert "canonical depth, not metres" in page and "each part's own" in page
    info = DatasetInfo.read(out)
    assert info.encodings["depth"]["canonical"]["focal"] == 1000.0
    assert "canonical depth, not metres" in (out / "README.md").read_text()
    for name in ("collage", "before_after", "depth_hist", "params", "camera", "parts"):
        assert (report / f"{name}.png").stat().st_size > 0, name
    manifests = info.manifests(out)
    samples = [s for m in manifests for s in m.samples]
    summary = dataset_stats(manifests)[1]
    typed = to_config(cfg)
    ctx = Context(out, typed, manifests, info, summary, None, param_table(samples), None)  # type: ignore[arg-type]
    ctx.part_tables = part_tables(samples, typed)
    fn, (grids,) = part_pictures.collage(ctx)
    assert [g[4].split(":")[0] for g in grids] == ["nyu", "kitti"]
    for _, keys, _, style, title in grids:
        part = title.split(":")[0]
        assert all(k.startswith(f"{part}/") for k in keys)
        pct = stats[part]["depth_percentiles"]
        assert (style.range.vmin, style.range.vmax) == (pct["p1"], pct["p99"])
        assert style.range.unit == "canonical m"
    fn, (calls,) = part_pictures.before_after(ctx)
    drawn = {label.split(":")[0]: args for label, _, args in calls}
    assert set(drawn) == {"nyu", "kitti"}
    for part, (rows, _, style, _) in drawn.items():
        assert rows and all(label.startswith(f"{part}/") for label, _ in rows)
        assert style.range.vmax == stats[part]["depth_percentiles"]["p99"]
    typical = ctx.typical_invalid
    for s in ctx.worst:
        assert s.invalid_fraction > typical[s.dataset]
    fn, (hists, unit, _) = part_pictures.depth_hist(ctx)
    assert [h[0] for h in hists] == ["nyu", "kitti"] and unit == "canonical m"
    fn, (calls,) = part_pictures.params(ctx)
    assert [c[0].split(":")[0] for c in calls] == ["nyu", "kitti"]


def test_sweep_page_of_mixtures_is_per_part(parts, tmp_path):
    """A sweep over a KITTI-part setting: the contact sheet has a block per part (each in
    that part's range over the jobs), the stats table a row per part under each job."""
    from pipeline.report.sweep_page import build_sweep_page

    root = parts[0]
    jobs = []
    for num, limit in enumerate(("0.0", "0.5")):
        override = f"source.parts.kitti.augment.transforms.brightness.brightness_limit={limit}"
        out = tmp_path / f"job{num}"
        run(make_cfg(out, *mix_args(root, "source.num_samples=10", override)))
        jobs.append({"num": num, "overrides": [override], "output_dir": str(out),
                     "exit_code": 0, "error": None})  # fmt: skip
    build_sweep_page(tmp_path, jobs, keys=2)
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert {k.partition("/")[0] for k in summary["keys"]} == {"nyu", "kitti"}
    for job in summary["jobs"]:
        own = json.loads((Path(job["output_dir"]) / "dataset_info.json").read_text())
        assert (
            job["parts"]["kitti"]["depth_percentiles"]
            == (own["stats"]["parts"]["kitti"]["depth_percentiles"])
        )
        assert set(job["parts"]) == {"nyu", "kitti"}
    page = html.unescape((tmp_path / "index.html").read_text())
    assert page.count('<tr class="part">') == 4 and "part kitti" in page
    sheet = np.asarray(Image.open(tmp_path / "contact_sheet.png"))
    assert sheet.shape[0] > 2 * 200  # two blocks (one per part) of two job rows each
