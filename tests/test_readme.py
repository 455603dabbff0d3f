"""Every code block of README.md and of every docs page (``pipeline/docs/pages/``), run as a
reader would run it (``readme_session.py``; "the README" below is that whole text, README
first, then the pages in the site's order).

Each shell command runs as written, in one scratch working directory shared by the
whole README (``outputs/`` lands there), in README order of need: a command reading
``outputs/datasets/demo`` first runs the command that writes it. What is appended, so
that the README costs seconds: ``source.num_samples=4`` on the synthetic source (unless
the command sets it) and ``report.enabled=false`` (unless the check needs the report;
neither changes anything else). Paths to the reader's own data (``/data/...``,
``/shared/...``) become small datasets in the real layouts and frame sizes under the
scratch dir. A command or block unknown to the tables below runs with the generic
checks (exit 0, the datasets it says it wrote read back); ``NOT_RUN`` lists, with the
reason, what cannot run here as written, and checks what can be checked. A block that
is neither shell nor Python must be classified in ``BLOCKS``."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import fixtures
import numpy as np
import public_trees
import pytest
import yaml
from conftest import ROOT, make_bucket
from kitti_calib import DATES
from PIL import Image
from readme_session import (
    README,
    Item,
    Outcome,
    call,
    locked,
    make,
    parse,
    shell_words,
    strip_comment,
    written,
)

from pipeline import read

ITEMS = parse(README.read_text())
NYU = (480, 640)  # NYU Depth v2 frames
KITTI = (375, 1242)  # KITTI raw frames
DEFAULT_DIR = "outputs/datasets/synthetic/default"  # `make run`'s dataset
S3_URL = re.compile(r"s3://([a-z0-9-]+)/")  # a bucket on the loopback S3 server (conftest)


# ---- checks of what the README says each command does -----------------------------------


def samples(o: Outcome, n: int | None = None) -> list:
    (out,) = o.written()
    got = written(out)
    assert n is None or len(got) == n
    return got


def check_help(s: Session, outs: list[Outcome]) -> None:
    text = outs[0].out
    for words in ("Config groups", "source: ", "synthetic", "kitti", "source.path=", "output.dir="):
        assert words in text


def check_cfg_job(s: Session, outs: list[Outcome]) -> None:
    """The resolved config; its augmentation is the recipe the README names."""
    cfg = yaml.safe_load(outs[0].out)
    assert {"source", "augment", "output", "report", "runtime", "shard"} <= set(cfg)
    transforms = cfg["augment"]["transforms"]
    recipe = [t["_target_"].removeprefix("albumentations.") for t in transforms.values()]
    recipe[1] += f" {transforms['crop']['height']}x{transforms['crop']['width']}"
    assert recipe[1] == "RandomCrop 448x576"
    assert ", ".join(recipe) in " ".join(README.read_text().split())


def check_crop_416(s: Session, outs: list[Outcome]) -> None:
    assert {x.image.shape for x in samples(outs[0])} == {(416, 576, 3)}


def check_no_hsv(s: Session, outs: list[Outcome]) -> None:
    assert all(list(x.params) == ["flip", "crop", "brightness", "gamma"] for x in samples(outs[0]))


def check_rotate_last(s: Session, outs: list[Outcome]) -> None:
    got = samples(outs[0])
    assert all(list(x.params)[-1] == "rot" for x in got)
    matrices = [np.array(x.params["rot"]["matrix"]) for x in got if x.params["rot"]]
    angles = [np.degrees(np.arctan2(m[1, 0], m[0, 0])) for m in matrices]
    assert angles and all(abs(a) <= 10 + 1e-6 for a in angles)


def check_rotate_before_crop(s: Session, outs: list[Outcome]) -> None:
    assert all(list(x.params)[:3] == ["flip", "rot", "crop"] for x in samples(outs[0]))


def check_no_augment(s: Session, outs: list[Outcome]) -> None:
    got = samples(outs[0], 4)
    assert all(x.params == {} and x.image.shape == (480, 640, 3) for x in got)


def copies_order(grouped: bool) -> Callable[[Session, list[Outcome]], None]:
    """``{key}_c0 ...``: each input's copies side by side (grouped), or every input's copy
    0, then every input's copy 1 ... (spread)."""

    def check(s: Session, outs: list[Outcome]) -> None:
        keys = [x.key for x in samples(outs[0], 16)]
        inputs, copies = [f"train/{i:06d}" for i in range(4)], range(4)
        if grouped:
            assert keys == [f"{k}_c{c}" for k in inputs for c in copies]
        else:
            assert keys == [f"{k}_c{c}" for c in copies for k in inputs]

    return check


def check_folder(s: Session, outs: list[Outcome]) -> None:
    (out,) = outs[0].written()
    for sub in ("image", "depth", "meta"):
        assert len(list((out / sub).rglob("*.*"))) == 4
    assert all(x.member.endswith(".tiff") for x in samples(outs[0], 4))


def check_filelist(s: Session, outs: list[Outcome]) -> None:
    (out,) = outs[0].written()
    lines = (out / "train_files_with_gt.txt").read_text().splitlines()
    assert len(lines) == 4 and all(len(line.split()) == 3 for line in lines)
    files = json.loads((out / "train.json").read_text())["files"]
    assert [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()] == files
    assert all(
        x.member.endswith(".png") and x.meta["depth_scale"] == 1000 for x in samples(outs[0])
    )
    lists_read_with_the_stated_scale(out, stated_list_scales()[0])


def stated_list_scales() -> tuple[float, float]:
    """The depth scales the Outputs page tells a trainer to read the file lists with: an
    NYU-style dataset's, and one with a KITTI source or part."""
    text = " ".join((ROOT / "pipeline/docs/pages/outputs.md").read_text().split())
    m = re.search(r"(\d+) for NYU-style millimetres, (\d+) once a KITTI source or part", text)
    assert m, "the Outputs page no longer states the file lists' depth scales"
    return float(m[1]), float(m[2])


def lists_read_with_the_stated_scale(out: Path, scale: float) -> None:
    """The BTS list and the Metric3D records of ``out``, read as a trainer told ``scale``
    reads them (PNG / scale), give every written sample's depth in metres."""
    by_key = {x.key: x for x in written(out)}
    rows = [x.split() for x in (out / "train_files_with_gt.txt").read_text().splitlines()]
    records = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert len(rows) == len(records) == len(by_key) and {r["depth_scale"] for r in records} == {
        scale
    }
    for rgb, gt, _focal in rows:
        (x,) = [x for k, x in by_key.items() if rgb.endswith(f"{k}.png")]
        depth = np.asarray(Image.open(out / "depth" / gt), dtype=np.float32) / scale
        assert np.abs(depth - x.depth).max() <= 0.5 / scale + 1e-6 and depth.max() > 0.3


def check_png16(s: Session, outs: list[Outcome]) -> None:
    got = samples(outs[0], 4)
    assert all(x.member == "depth.png" and x.meta["depth_scale"] == 1000 for x in got)


def check_parquet(s: Session, outs: list[Outcome]) -> None:
    (out,) = outs[0].written()
    assert [p.name for p in (out / "data").glob("*.parquet")] == ["train-00000-of-00001.parquet"]
    assert len(samples(outs[0], 4)) == 4


def check_publish(s: Session, item: Item) -> None:
    """Not run (a token and the network): valid Python publishing the README's own dir."""
    compile(item.text, f"README.md:{item.line}", "exec")
    assert "upload_folder(" in item.text and "outputs/datasets/demo_hf" in item.text


def check_gamma_sweep(s: Session, outs: list[Outcome]) -> None:
    by_p = {re.search(r"gamma\.p-([\d.]+)", str(d)).group(1): d for d in outs[0].written()}
    assert sorted(by_p) == ["0", "0.5", "1"]
    assert all(x.params["gamma"] is None for x in written(by_p["0"]))
    assert all(x.params["gamma"] is not None for x in written(by_p["1"]))


def check_report(colormap: str | None = None, invalid: str | None = None):
    def check(s: Session, outs: list[Outcome]) -> None:
        out = outs[0]
        dataset = s.home / out.argv[1]
        page = dataset / "report" / "index.html"
        assert out.out.startswith(f"report: {out.argv[1]}/report/index.html")
        html = page.read_text()
        if colormap:
            assert colormap in html
        if invalid:  # the invalid (depth 0) pixels of the collage in that colour
            assert invalid in html
            rgb = tuple(int(invalid[i : i + 2], 16) for i in (1, 3, 5))
            collage = np.asarray(Image.open(dataset / "report" / "collage.png").convert("RGB"))
            assert (collage == rgb).all(axis=-1).sum() > 100

    return check


def check_gamma_limit_sweep(s: Session, outs: list[Outcome]) -> None:
    out = outs[0]
    dirs = out.written()
    assert len(dirs) == 4 and all(re.fullmatch(r"[A-Za-z0-9._-]+", d.name) for d in dirs)
    for d in dirs:
        ((lo, hi),) = [(lo, hi) for lo, hi in ((80, 120), (50, 150)) if f"{lo}-{hi}" in d.name]
        gammas = [x.params["gamma"]["gamma"] for x in written(d) if x.params["gamma"]]
        assert all(lo / 100 <= g <= hi / 100 for g in gammas)
    (page,) = re.findall(r"^sweep page: (.+)$", out.out, re.M)
    table = json.loads((s.home / page).with_name("sweep.json").read_text())["jobs"]
    assert len(table) == 4 and all(j["status"] == "ok" and j["written"] == 4 for j in table)


def check_canonical_camera(s: Session, outs: list[Outcome]) -> None:
    assert {x.meta["camera"]["fx"] for x in samples(outs[0], 4)} == {1000.0}


def check_random_scale(s: Session, outs: list[Outcome]) -> None:
    assert all(list(x.params)[:3] == ["flip", "scale", "crop"] for x in samples(outs[0], 4))


def check_make_run(s: Session, outs: list[Outcome]) -> None:
    """`make run` prints where the dataset and the report went: the default dataset."""
    lines = outs[0].out.splitlines()
    assert any(
        re.fullmatch(rf"wrote 64 samples \(0 skipped\) .* -> {DEFAULT_DIR}", x) for x in lines
    )
    assert lines[-1].endswith(f"; report: {DEFAULT_DIR}/report/index.html")
    assert (s.home / DEFAULT_DIR / "report" / "index.html").is_file()


def check_make_help(s: Session, outs: list[Outcome]) -> None:
    listed = re.findall(r"^  make (\S+)", outs[0].out, re.M)
    wanted = {"run", "test", "test-fast", "test-all", "lint", "format", "bench", "docs", "clean"}
    assert wanted <= set(listed)


def check_slices(s: Session, outs: list[Outcome]) -> None:
    (root,) = {d for o in outs for d in o.written()}
    assert sorted(p.name for p in (root / "slices").iterdir()) == [
        "slice-00000-of-00064.json",  # no SLURM_ARRAY_TASK_ID: the default, 0
        "slice-00017-of-00064.json",
    ]
    assert not (root / "dataset_info.json").exists()  # not merged: 62 slices to go


def check_slices_in_the_bucket(s: Session, outs: list[Outcome]) -> None:
    """Two slices and the merge job's dataset_info.json, read back from the bucket."""
    url = "s3://my-bucket/nyu_sliced"
    assert f"merged 2 slices into {url}/dataset_info.json" in outs[0].out.splitlines()
    assert len(list(read.load(url))) == 4


def expected_output(command: str) -> list[str]:
    """The output a README block shows in comments after ``command`` (``#   `` lines
    continue the one before)."""
    lines = README.read_text().splitlines()
    at = next(i for i, x in enumerate(lines) if " ".join(x.split()) == command)
    shown: list[str] = []
    for x in lines[at + 1 :]:
        if not x.startswith("# "):
            break
        if x.startswith("#   "):
            shown[-1] += " " + x[4:]
        else:
            shown.append(x[2:])
    return shown


def shape_of(line: str, home: Path) -> str:
    """A merge line with its numbers and lists of slices or indices abstracted."""
    line = line.replace(str(home), "")
    line = re.sub(r"slice-\d+-of-\d+(, slice-\d+-of-\d+)*( \.\.\.)?", "SLICES", line)
    line = re.sub(r"shard\.index=[\d,]+", "shard.index=LIST", line)
    return re.sub(r"\d+", "N", line)


def check_merge_refused(s: Session, outs: list[Outcome]) -> None:
    """Slices missing: the one line the README shows (here 62 missing, not 2)."""
    (merged, refused) = expected_output(MERGE)
    assert merged.startswith("merged ") and refused.startswith("or, exit code 2: error: ")
    line = outs[0].error_line()
    assert line.startswith("error: 62 of 64 slices missing: slice-00001-of-00064, ")
    assert shape_of(line, s.home) == shape_of(refused.removeprefix("or, exit code 2: "), s.home)


def check_error_lines(s: Session, item: Item) -> None:
    """Each line is what the command prints for that mistake (``KEY=VALUE``: the value the
    line quotes, else 1), exit code 2, nothing written."""
    for line in item.text.splitlines():
        key, _, message = line.removeprefix("error: ").partition(": ")
        quoted = re.search(r"'([^']*)' is not a choice|got '([^']*)'", message)
        value = next(g for g in quoted.groups() if g is not None) if quoted else "1"
        o = s.call(["depth-pipeline", f"{key}={value}", "output.dir=outputs/datasets/mistake"])
        assert (o.code, o.error_line()) == (2, line)
        assert not (s.home / "outputs/datasets/mistake").exists()


def summary_shape(line: str) -> str:
    """A run's summary line with its numbers and dataset directory abstracted."""
    line = re.sub(r"(-> |report: )\S+?(/report/index\.html)?$", r"\1DIR\2", line)
    return re.sub(r"\d+(\.\d+)?", "N", line)


def check_summary(s: Session, item: Item) -> None:
    """The two lines that end a run, as a run prints them (its own numbers)."""
    o = s.call(["depth-pipeline", "output.dir=outputs/datasets/summary"])
    assert o.code == 0, o.err
    got = [summary_shape(x) for x in o.out.strip().splitlines()[-2:]]
    assert got == [summary_shape(x) for x in item.text.strip().splitlines()]


def check_camera_json(s: Session, item: Item) -> None:
    """The README's sample camera is one a default run writes, keys and values."""
    shown = json.loads("{" + item.text + "}")["camera"]
    s.ensure(DEFAULT_DIR)
    cameras = [x.meta["camera"] for x in written(s.home / DEFAULT_DIR)]
    assert all(set(c) == set(shown) for c in cameras)
    assert shown in cameras


def check_python(s: Session, item: Item, namespace: dict, printed: str) -> None:
    """``image`` and ``depth``, where a block sets them, are a sample of the dataset it
    names: the same pixels, depth in float32 metres (16-bit PNG within half a step)."""
    named = re.findall(r"outputs/datasets/\w+", item.text)
    if S3_DATASET in item.text:  # read from the bucket: the same run on local disk
        named = [TWIN]
        local_twin(s)
    if "image" in namespace and "depth" in namespace:
        image, depth = namespace["image"], namespace["depth"]
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert depth.dtype == np.float32 and depth.shape == image.shape[:2]
        got = written(s.home / named[0])
        scale = got[0].meta["depth_scale"]
        tolerance = 0.0 if scale == 1.0 else 0.5 / scale + 1e-6
        assert any(
            np.array_equal(image, x.image) and np.abs(depth - x.depth).max() <= tolerance
            for x in got
        )
        assert 0.3 < float(depth.max()) < 30.0  # metres, not stored values
    extra = PYTHON.get(item.key)
    if extra:
        extra(s, namespace, printed)


def check_read_load(s: Session, namespace: dict, printed: str) -> None:
    """One line per sample: key, fx, the parameters as a dict; then the Reader's line:
    the number of samples and the first key."""
    keys = [x.key for x in written(s.home / "outputs/datasets/demo_lists")]
    *lines, last = printed.splitlines()
    assert [x.split()[0] for x in lines] == keys
    assert all(" {'flip': " in x for x in lines)
    assert last.split()[:2] == [str(len(keys)), keys[0]]


def check_meta(s: Session, namespace: dict, printed: str) -> None:
    assert {"key", "source", "augment", "camera", "depth_scale"} <= set(namespace["meta"])


def check_cam_in(s: Session, namespace: dict, printed: str) -> None:
    f = namespace["f"]
    (x,) = [
        x
        for x in written(s.home / "outputs/datasets/demo_lists")
        if f["rgb"].endswith(f"{x.key}.png")
    ]
    camera = x.meta["camera"]
    assert [namespace[k] for k in ("fx", "fy", "cx", "cy")] == [
        camera[k] for k in ("fx", "fy", "cx", "cy")
    ]


def check_part_lists(s: Session, namespace: dict, printed: str) -> None:
    """The last line of the last part's list, read with that part's scale, is the
    written sample's depth (decoded with its record's scale) within 0.5 / scale."""
    scale, gt, depth = namespace["scale"], namespace["gt"], namespace["depth"]
    (x,) = [x for x in written(s.home / "outputs/datasets/canonical") if gt.startswith(x.key)]
    assert scale == x.meta["depth_scale"] == 256.0 and x.meta["dataset"] == "kitti"
    assert np.abs(depth - x.depth).max() <= 0.5 / scale + 1e-6


def check_training_loop(s: Session, namespace: dict, printed: str) -> None:
    """The loop ran to its end: the last batch is the recipe's crop, the loss a number."""
    batch, loss = namespace["batch"], namespace["loss"]
    assert tuple(batch["image"].shape[1:]) == (3, 448, 576)
    assert batch["depth"].shape[1] == 1 and np.isfinite(loss.item())
    assert namespace["data"].epoch == 1


def check_nk_from_bucket(s: Session, namespace: dict, printed: str) -> None:
    """Stopped after 2 batches and resumed: the batches of an uninterrupted run, each of
    one part, that part's preset crop (BTS NYU 416x544, KITTI 352x704)."""
    from pipeline.torch import DepthLoader

    whole = list(DepthLoader(namespace["nk"](), num_workers=0))
    assert namespace["seen"] == [b["key"] for b in whole] and len(whole) == 4
    crops = {"nyu": (416, 544), "kitti": (352, 704)}
    for b in whole:
        (part,) = set(b["dataset"])
        assert tuple(b["image"].shape[2:]) == crops[part]
    assert float(namespace["loss"]) >= 0


# ---- mixtures -------------------------------------------------------------------------

NK = [
    "depth-pipeline",
    "source=nyu_kitti",
    "source.parts.nyu.source.path=/data/nyu_depth_v2",
    "source.parts.kitti.source.path=/data/kitti",
    "source.num_samples=12",
]


def check_nk(s: Session, outs: list[Outcome]) -> None:
    """NYU and KITTI 1:1, each part in its own crop, every sample tagged."""
    got = samples(outs[0], 12)
    parts = {x.meta["dataset"]: set() for x in got}
    for x in got:
        parts[x.meta["dataset"]].add((x.image.shape[:2], x.meta["data_type"]))
    assert parts == {"nyu": {((416, 544), "dense")}, "kitti": {((352, 704), "lidar")}}


def check_nk_plan(s: Session, item: Item) -> None:
    """The plan the NK command prints before its run."""
    s.data()
    argv = [s.substitute(w) for w in NK]
    o = s.call([*argv, "output.dir=outputs/datasets/nk_plan", "report.enabled=false"])
    assert o.code == 0, o.err
    assert item.text.strip().splitlines() == o.out.strip().splitlines()[:3]


def check_nk_yaml(s: Session, item: Item) -> None:
    """The YAML shown is the preset's (its comments aside)."""
    assert yaml.safe_load(item.text) == yaml.safe_load(
        (ROOT / "conf/source/nyu_kitti.yaml").read_text()
    )


def check_canonical_mix(s: Session, outs: list[Outcome]) -> None:
    """0.7 / 0.3, fx = 1000 for every sample, the tag in Metric3D's records."""
    (out,) = outs[0].written()
    records = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert sorted(r["dataset"] for r in records) == ["kitti"] * 3 + ["nyu"] * 7
    assert {r["cam_in"][0] for r in records} == {1000.0}
    assert {r["dataset"]: r["depth_scale"] for r in records} == {"nyu": 1000.0, "kitti": 256.0}
    lines = {p: (out / f"train_{p}_files_with_gt.txt").read_text() for p in ("nyu", "kitti")}
    assert lines["nyu"].count("\n") == 7 and lines["kitti"].count("\n") == 3


# ---- the reader's own data: small datasets in the real layouts and frame sizes -----------


def user_data(home: Path) -> dict[str, list[str]]:
    """``/data/...`` of the README's Sources commands, under ``home/data``: the keys each
    source must give, by fixture."""
    data = home / "data"
    truth = {
        "fastdepth": fixtures.fastdepth_tree(data / "nyudepthv2", shape=NYU),
        "nyu_mat": fixtures.nyu_mat(data / "nyu_depth_v2_labeled.mat", n=5, shape=NYU),
        "kitti": fixtures.kitti_tree(data / "kitti", shape=KITTI),
        "nyu_parquet": fixtures.hub_parquet(data / "nyu_depth_v2", n=3, shape=NYU),
        "folder": fixtures.folder_mm(data / "mine", n=3, shape=NYU),
        "filelist": fixtures.bts_list(data / "nyu" / "sync", n=4, shape=NYU),
    }
    fixtures.splits_mat(data / "splits.mat", train=[0, 2, 3], test=[1, 4])
    (data / "bts").mkdir()  # BTS ships its lists apart from the images
    (data / "nyu/sync/train_files_with_gt.txt").rename(
        data / "bts/nyudepthv2_train_files_with_gt.txt"
    )
    fixtures.sayakpaul_tars(data / "nyudepthv2", data / "nyu_archives")
    return {name: sorted(samples) for name, samples in truth.items()}


def from_source(kind: str, size: tuple[int, int] = (448, 576), split: str = ""):
    """The run read every sample of the fixture (of ``split``), cropped, in metres."""

    def check(s: Session, outs: list[Outcome]) -> None:
        want = [k for k in s.data()[kind] if k.startswith(split)]
        got = samples(outs[0])
        assert sorted(x.key for x in got) == want
        assert {x.image.shape[:2] for x in got} == {size}
        assert all(0.3 < float(x.depth.max()) < 10 for x in got)  # metres, not mm or x256

    return check


def public_trees_of(root: Path) -> dict:
    """Hypersim (a tilt-shift scene, its camera CSV) and Virtual KITTI 2 under ``root``:
    the README's ``/data/hypersim`` and ``/data/vkitti2``; {part: {key: Truth}}."""
    vk = root / "vkitti2"
    return {
        "hypersim": public_trees.hypersim_tree(root / "hypersim", seed=1, tilt_scene=True),
        "vkitti2": public_trees.vkitti2_tree(vk, vk, vk, seed=2),
    }


def public_data(s: Session) -> None:
    s.data()
    with locked(s.home / ".runs" / "public_data"):
        if not (s.home / "data" / "hypersim").exists():
            public_trees_of(s.home / "data")


def check_da_metric(s: Session, outs: list[Outcome]) -> None:
    """Both parts, 4 frames each: planar depth in metres and each frame's camera."""
    truth = public_trees_of(s.home / "truth-da")  # the same seeds: the same values
    got = samples(outs[0], 8)
    for x in got:
        part = x.meta["dataset"]
        want = truth[part][x.key.removeprefix(f"{part}/")]
        assert np.allclose(x.depth, want.depth, rtol=2e-7, atol=0)
        camera = [x.meta["camera"][k] for k in ("fx", "fy", "cx", "cy")]
        assert x.meta["camera"]["approximate"] is want.approximate
        n = 2 if want.approximate else 4  # a tilted scene: the fit's focal lengths
        assert np.allclose(camera[:n], want.camera[:n], rtol=0.02 if want.approximate else 1e-9)
    assert sorted(x.meta["dataset"] for x in got) == ["hypersim"] * 4 + ["vkitti2"] * 4


def check_nyu_mat(s: Session, outs: list[Outcome]) -> None:
    # the official split: source.split=train is trainNdxs (frames 0, 2, 3 of the file)
    assert [x.key for x in samples(outs[0])] == ["train/000000", "train/000002", "train/000003"]


def check_filelist_source(s: Session, outs: list[Outcome]) -> None:
    from_source("filelist")(s, outs)
    info = json.loads((outs[0].written()[0] / "dataset_info.json").read_text())
    assert info["source"]["dropped_without_depth"] == 1  # the list's `None` line
    assert {x.meta["camera"]["fx"] for x in samples(outs[0])} == {518.8579}  # its focal


def check_kitti(s: Session, outs: list[Outcome]) -> None:
    from_source("kitti", size=(352, 1216))(s, outs)
    f = DATES["2011_09_26"][0]  # P_rect_02 / P_rect_03 of the day
    assert {x.meta["camera"]["fx"] for x in samples(outs[0])} == {f}


def check_folder_in_s3(s: Session, outs: list[Outcome]) -> None:
    """The reader's folder, uploaded to the bucket (``upload_mine``), read as from disk:
    every key of the fixture, metres, each sample's location the object's URL."""
    got = list(read.load("s3://my-bucket/mine_aug"))
    assert sorted(m["key"] for _, _, m in got) == s.data()["folder"]
    assert all(0.3 < float(depth.max()) < 10 for _, depth, _ in got)
    assert all(m["source"]["location"].startswith("s3://lab-data/mine/image/") for *_, m in got)


def upload_mine(s: Session) -> None:
    """``/data/mine`` (the Sources section's folder) copied to ``s3://lab-data/mine``."""
    import s3fs

    s.data()
    fs = s3fs.S3FileSystem(skip_instance_cache=True)  # the loopback server (conftest)
    for path in sorted(p for p in (s.home / "data" / "mine").rglob("*") if p.is_file()):
        rel = path.relative_to(s.home / "data" / "mine").as_posix()
        fs.put_file(str(path), f"lab-data/mine/{rel}")


def check_webdataset_fed_back(s: Session, outs: list[Outcome]) -> None:
    made = [x.key for x in written(s.home / DEFAULT_DIR)]
    assert [x.key for x in samples(outs[0])] == made[:4]  # keys kept


def nyu_from_the_hub(s: Session, item: Item, argv: list[str]) -> None:
    """Offline without a cached copy: one line. With the pinned commit's archives in the
    Hugging Face cache (what a first, online run leaves there): the run reads them."""
    import huggingface_hub.constants as hub

    s.data()
    cache = s.home / "hf" / "hub"
    revision = yaml.safe_load((ROOT / "conf/source/nyu.yaml").read_text())["revision"]
    with _patched(hub, HF_HUB_OFFLINE=True, HF_HUB_CACHE=str(cache)):
        o = s.call(argv)
        line = o.error_line()
        assert o.code == 2 and "cannot reach the Hugging Face Hub" in line
        assert "source.path" in line and not (s.home / "outputs/datasets/nyu").exists()
        snapshot = cache / "datasets--sayakpaul--nyu_depth_v2" / "snapshots" / revision / "data"
        snapshot.mkdir(parents=True)
        for tar in (s.home / "data" / "nyu_archives").glob("*.tar"):
            (snapshot / tar.name).symlink_to(tar)
        o = s.call([*argv, "report.enabled=false"])
    assert o.code == 0, o.err
    from_source("fastdepth", split="train/")(s, [o])


def hub_offline(s: Session, item: Item, argv: list[str]) -> None:
    """A repo of the reader's on the hub: offline, one line naming it and the way out."""
    import datasets.config
    import huggingface_hub.constants as hub

    with (
        _patched(hub, HF_HUB_OFFLINE=True, HF_HUB_CACHE=str(s.home / "hf-empty")),
        _patched(datasets.config, HF_HUB_OFFLINE=True),
    ):
        o = s.call(argv)
    line = o.error_line()
    assert o.code == 2 and "source.path=user/repo" in line and "local copy" in line


@contextlib.contextmanager
def aws_profile(home: Path):
    """The reader's AWS profile ``lab`` (README blocks pass ``{"profile": "lab"}``): its
    config and credentials files, as ``aws configure --profile lab`` writes them; the
    endpoint stays the loopback server's ``AWS_ENDPOINT_URL`` (conftest)."""
    aws = home / "aws"
    aws.mkdir(exist_ok=True)
    (aws / "config").write_text("[profile lab]\nregion = us-east-1\n")
    (aws / "credentials").write_text(
        "[lab]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    names = {"AWS_CONFIG_FILE": "config", "AWS_SHARED_CREDENTIALS_FILE": "credentials"}
    old = {k: os.environ.get(k) for k in names}
    os.environ.update({k: str(aws / v) for k, v in names.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _patched(module, **values):
    old = {k: getattr(module, k) for k in values}
    for k, v in values.items():
        setattr(module, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(module, k, v)


# ---- what cannot run here as written ------------------------------------------------------


def dry_run(last_line: str):
    """``make -n``: the target exists and runs ``last_line`` (the arguments passed on)."""

    def how(s: Session, item: Item, argv: list[str]) -> None:
        o = make(["-n", *argv[1:]], s.home)
        assert o.code == 0 and o.out.strip().splitlines()[-1] == last_line, o.out + o.err

    return how


def extra_of(extra: str, package: str, *more: tuple[str, str]):
    """``pip install -e '.[EXTRA,...]'``: each extra is in ``pyproject.toml`` (what a fresh
    clone installs) and installs its package (``more``: further (extra, package) pairs)."""

    def how(s: Session, item: Item, argv: list[str]) -> None:
        pairs = [(extra, package), *more]
        assert argv[1:] == ["install", "-e", f".[{','.join(e for e, _ in pairs)}]"]
        text = (ROOT / "pyproject.toml").read_text()
        for name, pkg in pairs:  # `name = [...]` under [project.optional-dependencies]
            listed = re.search(rf"^{name} = \[(.*?)\]", text, re.M | re.S)
            assert listed and f'"{pkg}' in listed.group(1), name

    return how


def slurm_recipe(s: Session, item: Item, argv: list[str]) -> None:
    """The SLURM recipe: here (no SLURM) as written, the one line; then on the local twin
    (``hydra/launcher=slurm_local``, jobs as local processes, the merge job included) with
    4 slices instead of 64: the tars of one unsliced run, byte for byte."""
    launcher("slurm", "hydra_plugins.hydra_submitit_launcher", SLURM_KEYS)(s, item, argv)
    if shutil.which("sbatch") is None:
        o = s.call(argv)
        assert o.code == 2 and o.error_line().startswith(
            "error: hydra/launcher=slurm: SLURM is not available on this machine"
        )
    out = s.home / "shared/datasets/nyu_aug_slurm_local"
    local = [
        {
            "hydra/launcher=slurm": "hydra/launcher=slurm_local",
            "shard.num_shards=64": "shard.num_shards=4",
            "shard.index=range(0,64)": "shard.index=range(0,4)",
        }.get(a, a)
        for a in argv
    ]
    local = [a if not a.startswith("output.dir=") else f"output.dir={out}" for a in local]
    local += ["source.num_samples=8", "output.shard_size=2", "runtime.workers=1"]
    local += small(local, Spec())
    o = s.call(local)
    assert o.code == 0, o.err
    assert f"merged 4 slices into {out}/dataset_info.json" in o.out.splitlines()
    assert re.search(r"^submitted 4 slice job\(s\): local job array \d+$", o.out, re.M)
    whole = s.home / "shared/datasets/nyu_aug_unsliced"
    one = [a for a in local[2:] if not a.startswith(("output.dir=", "shard.", "hydra/"))]
    assert s.call(["depth-pipeline", f"output.dir={whole}", *one]).code == 0
    tars = sorted(whole.glob("*.tar"))
    assert len(tars) == 4
    assert [t.read_bytes() for t in tars] == [(out / t.name).read_bytes() for t in tars]
    assert sorted(out.glob("*.tar")) == [out / t.name for t in tars]


SLURM_KEYS = ("cpus_per_task", "mem_gb", "timeout_min", "partition", "array_parallelism", "wait")


def launcher(extra: str, plugin: str, keys: tuple[str, ...] = ()):
    """A Hydra launcher from an extra: without the extra, one line saying how to install
    it; with it, the launcher's config composes (``--cfg hydra``). ``keys``: the settings
    the README names, present in ``conf/hydra/launcher/``."""

    def how(s: Session, item: Item, argv: list[str]) -> None:
        choice = next(a for a in argv if a.startswith("hydra/launcher="))
        yaml_keys = yaml.safe_load((ROOT / f"conf/hydra/launcher/{choice[15:]}.yaml").read_text())
        assert set(keys) <= set(yaml_keys)
        if importlib.util.find_spec("hydra_plugins") is None or not importlib.util.find_spec(
            plugin
        ):
            o = s.call(argv)
            assert o.code == 2 and f"pip install -e '.[{extra}]'" in o.error_line()
            return
        o = s.call(["depth-pipeline", choice, "--cfg", "hydra"])
        assert o.code == 0 and set(keys) <= set(yaml.safe_load(o.out)["hydra"]["launcher"])

    return how


def bench_output(s: Session, item: Item) -> None:
    """Figures `make bench` printed on the development machine; the command is checked
    (dry run) with the inline `make bench` commands."""
    assert "samples/s" in item.text and "make bench" in README.read_text()


# ---- the tables ----------------------------------------------------------------------


@dataclass
class Spec:
    check: Callable | None = None  # (session, outcomes): what the README says it does
    report: bool = False  # keep the report (else report.enabled=false is appended)
    extra: tuple[str, ...] = ()  # overrides for a small run
    envs: tuple[dict[str, str], ...] = ({},)  # one run per environment
    code: int = 0
    before: Callable | None = None  # (session): what the reader has done before (data)
    not_run: str = ""  # why it cannot run here as written ...
    how: Callable | None = None  # ... and (session, item, argv): what is checked instead


SLICED = (
    "depth-pipeline output.dir=/shared/datasets/nyu_aug shard.num_shards=64 "
    "'shard.index=${oc.env:SLURM_ARRAY_TASK_ID,0}'"
)
MERGE = "depth-pipeline-merge /shared/datasets/nyu_aug"
COMMANDS: dict[str, Spec] = {
    "make run": Spec(check_make_run),
    "depth-pipeline source=folder source.path=s3://lab-data/mine 'source.depth_path=\"depth/"
    "{key}.png\"' source.depth_scale=1000 output.dir=s3://my-bucket/mine_aug": Spec(
        check_folder_in_s3, before=upload_mine
    ),
    "make help": Spec(check_make_help),
    "depth-pipeline source=folder source.path=/data/mine 'source.depth_path=\"depth/{key}.png\"' "
    "source.depth_scale=1000 output.dir=outputs/datasets/mine_aug": Spec(from_source("folder")),
    "depth-pipeline --help": Spec(check_help),
    "depth-pipeline --cfg job": Spec(check_cfg_job),
    "depth-pipeline augment.transforms.crop.height=416": Spec(check_crop_416),
    "depth-pipeline '~augment.transforms.hsv'": Spec(check_no_hsv),
    "depth-pipeline +augment.transforms.rot._target_=albumentations.Rotate "
    "+augment.transforms.rot.limit=10": Spec(check_rotate_last),
    "depth-pipeline +augment.transforms.rot._target_=albumentations.Rotate "
    "+augment.transforms.rot.limit=10 +augment.transforms.rot.before=crop": Spec(
        check_rotate_before_crop
    ),
    "depth-pipeline augment=none": Spec(check_no_augment),
    "depth-pipeline augment.copies=4": Spec(copies_order(grouped=False)),
    "depth-pipeline augment.copies=4 output.order=grouped": Spec(copies_order(grouped=True)),
    "depth-pipeline output=folder": Spec(check_folder),
    "depth-pipeline output=filelist": Spec(check_filelist),
    "depth-pipeline output.depth.format=png16": Spec(check_png16),
    "depth-pipeline output=parquet output.dir=outputs/datasets/demo_hf": Spec(check_parquet),
    "depth-pipeline -m augment.transforms.gamma.p=0,0.5,1": Spec(check_gamma_sweep),
    "depth-pipeline-report outputs/datasets/demo": Spec(check_report()),
    "depth-pipeline-report outputs/datasets/demo report.rows=4 report.colormap=magma": Spec(
        check_report(colormap="magma")
    ),
    "depth-pipeline-report outputs/datasets/demo 'report.invalid_color=\"#ff00ff\"'": Spec(
        check_report(invalid="#ff00ff")
    ),
    "depth-pipeline -m 'augment.transforms.gamma.gamma_limit=[80,120],[50,150]' "
    "augment.transforms.hsv.p=0,0.5": Spec(check_gamma_limit_sweep),
    "depth-pipeline source=fastdepth source.path=/data/nyudepthv2": Spec(
        from_source("fastdepth", split="train/")
    ),
    "depth-pipeline source=nyu_mat source.path=/data/nyu_depth_v2_labeled.mat "
    "source.splits=/data/splits.mat": Spec(check_nyu_mat),
    "depth-pipeline source=filelist source.path=/data/bts/nyudepthv2_train_files_with_gt.txt "
    "source.image_root=/data/nyu/sync source.depth_root=/data/nyu/sync": Spec(
        check_filelist_source
    ),
    "depth-pipeline source=kitti source.path=/data/kitti augment.transforms.crop.height=352 "
    "augment.transforms.crop.width=1216": Spec(check_kitti),
    "depth-pipeline source=nyu_parquet source.path=/data/nyu_depth_v2": Spec(
        from_source("nyu_parquet")
    ),
    f"depth-pipeline source=webdataset source.path={DEFAULT_DIR}": Spec(
        check_webdataset_fed_back, extra=("source.limit=4",)
    ),
    "depth-pipeline source=folder source.path=/data/mine 'source.depth_path=\"depth/{key}.png\"' "
    "source.depth_scale=1000": Spec(from_source("folder")),
    "depth-pipeline +augment.transforms.canon._target_=pipeline.augment.transforms.CanonicalCamera "
    "+augment.transforms.canon.mode=depth +augment.transforms.canon.focal=1000": Spec(
        check_canonical_camera
    ),
    " ".join([*NK, "output.dir=outputs/datasets/nk"]): Spec(check_nk),
    "depth-pipeline source=mix +source@source.parts.nyu.source=nyu_parquet "
    "source.parts.nyu.source.path=/data/nyu_depth_v2 +augment@source.parts.nyu.augment=nyu "
    "source.parts.nyu.weight=0.7 +source@source.parts.kitti.source=kitti "
    "source.parts.kitti.source.path=/data/kitti +augment@source.parts.kitti.augment=kitti "
    "source.parts.kitti.weight=0.3 source.parts.kitti.data_type=lidar source.num_samples=10 "
    "source.canonical.focal=1000 output=filelist output.dir=outputs/datasets/canonical": Spec(
        check_canonical_mix
    ),
    "depth-pipeline +augment.transforms.scale._target_=pipeline.augment.transforms.RandomScale "
    "+augment.transforms.scale.mode=divide_depth +augment.transforms.scale.before=crop": Spec(
        check_random_scale
    ),
    "depth-pipeline source=mix +source@source.parts.hypersim.source=hypersim "
    "source.parts.hypersim.source.path=/data/hypersim +source@source.parts.vkitti2.source=vkitti2 "
    "source.parts.vkitti2.source.path=/data/vkitti2 source.parts.hypersim.weight=1 "
    "source.parts.vkitti2.weight=1 source.num_samples=8 augment=none "
    "output.dir=outputs/datasets/da_metric": Spec(check_da_metric, before=public_data),
    # one slice per task, 64 shards of one sample: slice 0 (no SLURM_ARRAY_TASK_ID) and 17
    SLICED: Spec(
        check_slices,
        extra=("source.num_samples=64", "output.shard_size=1"),
        envs=({}, {"SLURM_ARRAY_TASK_ID": "17"}),
    ),
    MERGE: Spec(check_merge_refused, code=2),
    "depth-pipeline -m hydra/launcher=slurm_local output.dir=s3://my-bucket/nyu_sliced "
    "shard.num_shards=2 'shard.index=range(0,2)'": Spec(
        check_slices_in_the_bucket, extra=("output.shard_size=1", "runtime.workers=1")
    ),
}


def bench(args: str = "") -> Spec:
    """``make bench [ARGS=...]``: checked as the command make would run."""
    return Spec(
        not_run="minutes of measurement, on a machine of its own (README Benchmark)",
        how=dry_run(f".venv/bin/python -m pipeline.bench {args}".rstrip()),
    )


NOT_RUN: dict[str, Spec] = {
    "make test": Spec(
        not_run="it would run this test suite inside itself",
        how=dry_run(".venv/bin/pytest -n 2 -q -rs"),
    ),
    "make run ARGS='source.num_samples=24'": Spec(
        not_run="the `make run` above runs the same target for real",
        how=dry_run(".venv/bin/depth-pipeline source.num_samples=24"),
    ),
    "make bench": bench(),
    "make bench ARGS='--samples 3000 --inputs photos --scale 0'": bench(
        "--samples 3000 --inputs photos --scale 0"
    ),
    "make bench ARGS='--samples 300 --inputs photos'": bench("--samples 300 --inputs photos"),
    "make bench ARGS='--only-store'": bench("--only-store"),
    "depth-pipeline source=nyu": Spec(
        not_run="downloads ~32 GB from the Hugging Face Hub: run offline, without and with "
        "the pinned commit's archives (fixtures) in the cache",
        how=nyu_from_the_hub,
    ),
    "depth-pipeline source=hub source.path=user/repo source.revision=COMMIT "
    "source.columns.depth=depth": Spec(
        not_run="a repo of the reader's on the Hugging Face Hub: run offline", how=hub_offline
    ),
    "pip install -e '.[s3,torch]'": Spec(
        not_run="installs from a package index into this venv",
        how=extra_of("s3", "s3fs", ("torch", "torch")),
    ),
    "make lint": Spec(
        not_run="the linter over this repository, not a scratch dir (CI runs it)",
        how=dry_run(".venv/bin/ruff format --check pipeline tests"),
    ),
    "make docs": Spec(
        not_run="it regenerates the reference page inside the package (tests/test_docs.py "
        "checks the page and builds the site)",
        how=dry_run(
            "NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict -f pipeline/docs/mkdocs.yml"
        ),
    ),
    "pip install -e '.[slurm]'": Spec(
        not_run="installs from a package index into this venv",
        how=extra_of("slurm", "hydra-submitit-launcher"),
    ),
    "pip install -e '.[torch]'": Spec(
        not_run="installs from a package index into this venv (make test installs it)",
        how=extra_of("torch", "torch"),
    ),
    "pip install -e '.[s3]'": Spec(
        not_run="installs from a package index into this venv",
        how=extra_of("s3", "s3fs"),
    ),
    "pip install -e '.[joblib]'": Spec(
        not_run="installs from a package index into this venv",
        how=extra_of("joblib", "hydra-joblib-launcher"),
    ),
    "depth-pipeline -m hydra/launcher=slurm output.dir=/shared/datasets/nyu_aug "
    "shard.num_shards=64 'shard.index=range(0,64)'": Spec(
        not_run="submits a SLURM job array and a merge job (SLURM): run on the local twin",
        how=slurm_recipe,
    ),
    "depth-pipeline -m hydra/launcher=local shard.num_shards=4 'shard.index=range(0,4)'": Spec(
        not_run="needs the joblib extra, not installed by `make install`",
        how=launcher("joblib", "hydra_plugins.hydra_joblib_launcher", ("n_jobs",)),
    ),
}
PRODUCES = {"make run": DEFAULT_DIR}  # datasets a command writes without naming them
# Blocks that are neither shell nor Python, by (section, language): what checks them.
BLOCKS: dict[tuple[str, str], Callable] = {
    ("A short tour", ""): check_error_lines,
    ("Where things go", ""): check_summary,
    ("Cameras", "json"): check_camera_json,
    ("Benchmark", ""): bench_output,
    ("Mixtures", ""): check_nk_plan,
    ("Mixtures", "yaml"): check_nk_yaml,
    ("Hugging Face parquet", "py"): check_publish,
}


def check_read_s3(s: Session, namespace: dict, printed: str) -> None:
    """The samples read from the bucket: the keys of the run, images and float metres."""
    lines = printed.splitlines()
    assert [x.split()[0] for x in lines] == [f"train/{i:06d}" for i in range(4)]
    assert all(x.endswith("(448, 576, 3) float32") for x in lines)  # the recipe's crop


S3_DATASET = "s3://my-bucket/nyu_aug"  # the README's run to the bucket ...
TWIN = "outputs/datasets/s3_twin"  # ... and the same run on local disk


def local_twin(s: Session) -> Path:
    """The README's ``output.dir=s3://my-bucket/nyu_aug`` run written to local disk (the
    same appended overrides): what reading the bucket back must give, value for value."""
    root = s.home / TWIN
    with locked(s.home / ".runs" / "s3_twin"):
        if not (root / "dataset_info.json").exists():
            argv = ["depth-pipeline", f"output.dir={TWIN}"]
            o = s.call(argv + small(argv, Spec()))
            assert o.code == 0, o.err
    return root


def same_as_twin(s: Session, got: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    """``(key, image, depth)`` read from the bucket equal the local run's, every sample."""
    want = written(local_twin(s))
    assert [k for k, _, _ in got] == [x.key for x in want]
    for (_, image, depth), x in zip(got, want):
        assert np.array_equal(image, x.image) and image.dtype == np.uint8
        assert depth.dtype == np.float32 and np.array_equal(depth, x.depth)


def check_wds_s3(s: Session, namespace: dict, printed: str) -> None:
    """webdataset over the tars' URLs (the block's own handler, decoder and URLs): every
    sample equals the local run's."""
    wds, urls = namespace["wds"], namespace["urls"]
    assert urls and all(u.startswith(f"{S3_DATASET}/") and u.endswith(".tar") for u in urls)
    pipeline = wds.WebDataset(urls, shardshuffle=False).decode(namespace["decoder"], "rgb8")
    same_as_twin(s, [(x["__key__"], x["png"], x["depth.tiff"]) for x in pipeline])


def check_hf_s3(s: Session, namespace: dict, printed: str) -> None:
    """``datasets`` over the tars in the bucket, with the block's storage_options (a profile
    the test's AWS config defines): every row equals the local run's."""
    ds = namespace["ds"]
    rows = [(r["__key__"], np.array(r["png"]), np.array(r["depth.tiff"])) for r in ds]
    same_as_twin(s, rows)
    assert all(r["json"]["key"] == r["__key__"] for r in ds)


# Extra checks of Python blocks, by first line; every Python block runs (check_python).
PYTHON: dict[str, Callable] = {
    "from pipeline import read  # the dataset in the bucket, shard by shard": (check_read_s3),
    "import fsspec, webdataset as wds  # the tars in the bucket, streamed through s3fs": (
        check_wds_s3
    ),
    "import datasets, numpy as np  # the tars in the bucket, with a profile": (check_hf_s3),
    "from pipeline import read  # image uint8 HxWx3, depth float32 metres "
    "(0 = invalid)": check_read_load,
    "import datasets, numpy as np": check_meta,
    "import json": check_cam_in,
    "import json  # a mixture's BTS lists: one per part, own scale": check_part_lists,
    "import torch": check_training_loop,
    "import torch  # NK from the bucket, resumed": check_nk_from_bucket,
}


# ---- the session: one working directory for the whole README ------------------------


class Session:
    """The scratch working directory, shared by the test processes of one run (``-n 2``):
    each command runs once, under a lock, and its outcome (or failure) is recorded in
    ``.runs/`` for the tests that need it afterwards, whichever process they run in."""

    def __init__(self, home: Path) -> None:
        self.home = home
        (home / ".runs").mkdir(parents=True, exist_ok=True)

    def data(self) -> dict[str, list[str]]:
        keys = self.home / "data" / "keys.json"
        with locked(self.home / ".runs" / "data"):
            if not keys.exists():
                built = user_data(self.home)
                keys.write_text(json.dumps(built))
        return json.loads(keys.read_text())

    def call(self, argv: list[str], env: dict[str, str] | None = None) -> Outcome:
        if any(f"{self.home}/data/" in a for a in argv):
            self.data()
        return call(argv, self.home, env)

    def ensure(self, path: str, before: int = 1 << 30) -> None:
        """Run the last README command before line ``before`` that writes ``path``."""
        writers = [
            i
            for i in ITEMS
            if i.lang == "command" and i.line < before and path in writes(i) and not spec(i).not_run
        ]
        assert writers, f"no README command before line {before} writes {path}"
        self.run(writers[-1])

    def run(self, item: Item) -> list[Outcome]:
        for path in sorted(mentioned(item) - writes(item)):  # first: no lock held meanwhile
            self.ensure(path, item.line)
        name = hashlib.sha256(f"{item.lang} {item.key}".encode()).hexdigest()[:16]
        if S3_URL.search(item.text):  # each test process has its own loopback S3 server
            name += f"-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
            for bucket in set(S3_URL.findall(item.text)):
                make_bucket(bucket)
        record = self.home / ".runs" / f"{name}.json"
        # sweeps one at a time: two started in the same second would share a sweep dir
        sweep = " -m " in f" {item.text} "
        serial = locked(self.home / ".runs" / "multirun") if sweep else contextlib.nullcontext()
        with locked(self.home / ".runs" / name), serial:
            if record.exists():
                done = json.loads(record.read_text())
                assert "failed" not in done, f"{README.where(item.line)}: {done['failed']}"
                return [Outcome.from_json(o, self.home) for o in done["outcomes"]]
            try:
                outs = self._run(item)
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"[:3000]
                record.write_text(json.dumps({"failed": text}))
                raise
            record.write_text(json.dumps({"outcomes": [o.to_json() for o in outs]}))
        return outs

    def _run(self, item: Item) -> list[Outcome]:
        if item.lang == "python":
            return self._python(item)
        the = spec(item)
        argv = [self.substitute(w) for w in shell_words(item.text, self.home)]
        if the.not_run:
            the.how(self, item, argv)
            return []
        assert argv[0] != "pip", f"line {item.line}: a pip command must be in NOT_RUN"
        if the.before:
            the.before(self)
        if argv[0] == "make":
            outs = [make(argv[1:], self.home)]
        else:
            outs = [self.call(argv + small(argv, the), env) for env in the.envs]
        for o in outs:
            assert o.code == the.code, f"{item.text}\n-> exit {o.code}\n{o.err}"
            if o.code == 0:
                generic(o)
        if the.check:
            the.check(self, outs)
        return outs

    def substitute(self, word: str) -> str:
        """The reader's ``/data/...`` and ``/shared/...`` become fixtures in the scratch dir."""
        return re.sub(r"(^|=)/(data|shared)/", rf"\g<1>{self.home}/\g<2>/", word)

    def _python(self, item: Item) -> list[Outcome]:
        import datasets.config

        namespace: dict = {}
        out = io.StringIO()
        cwd = os.getcwd()
        try:
            os.chdir(self.home)
            with (
                contextlib.redirect_stdout(out),
                _patched(datasets.config, HF_DATASETS_CACHE=str(self.home / "hf-datasets")),
                aws_profile(self.home) if S3_URL.search(item.text) else contextlib.nullcontext(),
            ):
                exec(compile(item.text, README.where(item.line), "exec"), namespace)
            check_python(self, item, namespace, out.getvalue())
        finally:
            os.chdir(cwd)
        return []


def spec(item: Item) -> Spec:
    return COMMANDS.get(item.key) or NOT_RUN.get(item.key) or Spec()


def writes(item: Item) -> set[str]:
    if item.lang != "command":
        return set()
    named = re.findall(r"output\.dir=(\S+)", strip_comment(item.text))
    return {*named, *([PRODUCES[item.key]] if item.key in PRODUCES else [])}


def mentioned(item: Item) -> set[str]:
    text = strip_comment(item.text) if item.lang == "command" else item.text
    found = r"(?:outputs/datasets|/shared/datasets|s3://my-bucket)/[\w.-]+(?:/[\w.-]+)*"
    return set(re.findall(found, text))


def small(argv: list[str], the: Spec) -> list[str]:
    """Overrides appended to a ``depth-pipeline`` run that change nothing but its size."""
    if argv[0] != "depth-pipeline" or any(a.startswith("--") for a in argv):
        return []
    given = {a.lstrip("+~").split("=")[0] for a in argv[1:]}
    synthetic = not any(a.startswith("source=") for a in argv) or "source=synthetic" in argv
    wanted = [
        *the.extra,
        *([] if the.report else ["report.enabled=false"]),
        *(["source.num_samples=4"] if synthetic else []),
    ]
    out = []
    for override in wanted:
        key = override.split("=")[0]
        if key not in given:
            out.append(override)
            given.add(key)
    return out


def generic(o: Outcome) -> None:
    """Every dataset a successful run says it wrote is there, with that many samples."""
    if o.argv[0] != "depth-pipeline":
        return
    for n, d in re.findall(r"^wrote (\d+) samples .* -> (.+)$", o.out, re.M):
        if d.startswith("s3://"):  # read back from the bucket by the tool's own reader
            assert len(list(read.load(d))) == int(n) > 0
            continue
        root = o.home / d
        if any(a.startswith("shard.num_shards=") for a in o.argv):
            assert (root / "slices").is_dir()
        else:
            assert len(written(root)) == int(n) > 0
    if "-m" in o.argv:
        (page,) = re.findall(r"^sweep page: (.+)$", o.out, re.M)
        assert (o.home / page).is_file()


# ---- the tests --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def session(tmp_path_factory) -> Session:
    """One scratch dir for the whole README, shared by the workers of ``-n 2``."""
    base = tmp_path_factory.getbasetemp()
    return Session((base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "readme")


RUN = [i for i in ITEMS if i.lang in ("command", "python")]
OTHER = [i for i in ITEMS if i.lang not in ("command", "python", "bash")]


@pytest.mark.parametrize("item", RUN, ids=[i.id for i in RUN])
def test_readme_command_or_python_block_runs_as_written(session, item):
    session.run(item)


@pytest.mark.parametrize("item", OTHER, ids=[i.id for i in OTHER])
def test_readme_output_blocks_are_what_the_tool_prints(session, item):
    check = BLOCKS.get((item.section, item.lang))
    assert check, f"{README.where(item.line)}: an unclassified {item.lang or 'text'} block"
    check(session, item)


def test_the_tables_name_only_what_the_readme_has():
    """A command changed in the README must not leave its check behind unused."""
    keys = {i.key for i in ITEMS}
    assert set(COMMANDS) | set(NOT_RUN) | set(PYTHON) <= keys
    assert set(BLOCKS) <= {(i.section, i.lang) for i in OTHER}
    assert not set(COMMANDS) & set(NOT_RUN)
    for key, the in NOT_RUN.items():
        assert the.not_run and the.how, key


def test_files_the_readme_names_exist():
    for path in re.findall(r"`((?:pipeline|conf|tests)/[\w./-]*)`", README.read_text()):
        assert (ROOT / path).exists(), path


def test_reading_the_output_has_a_command_and_a_reader_per_trainer_format():
    reading = [i for i in ITEMS if i.section == "Reading the output"]
    text = (ROOT / "pipeline/docs/pages/outputs.md").read_text().split("## Reading the output")[1]
    for words in ("for BTS / AdaBins / ZoeDepth", "for Metric3D", "for webdataset / Hugging Face"):
        assert words in text
    assert sum(i.lang == "python" for i in reading) >= 6


@pytest.mark.slow
def test_sliced_runs_merge_as_the_readme_shows(tmp_path):
    """All 64 slices of the README's sbatch command but two: the merge prints the README's
    error line exactly; with those two, the README's merge line."""
    s = Session(tmp_path / "readme")
    (sliced,) = [i for i in ITEMS if i.key == SLICED]
    argv = [s.substitute(w) for w in shell_words(sliced.text, s.home)]
    argv += small(argv, COMMANDS[SLICED])
    merge = [s.substitute(w) for w in shell_words(MERGE, s.home)]
    merged, refused = expected_output(MERGE)
    for k in [k for k in range(64) if k not in (17, 41)] + [17, 41]:
        if k == 17:
            o = s.call(merge)
            assert o.code == 2
            assert o.error_line().replace(str(s.home), "") == refused.split("exit code 2: ")[1]
        assert s.call(argv, {"SLURM_ARRAY_TASK_ID": str(k)}).code == 0
    assert (s.home / "shared/datasets/nyu_aug/dataset_info.json").exists()  # the last merged
    o = s.call(merge)
    assert o.code == 0 and shape_of(o.out.strip(), s.home) == shape_of(merged, s.home)
    assert o.out.startswith("merged 64 slices: 64 samples (0 skipped) in 64 shard(s) -> ")


NOT_KEYS = {
    "source.num_sample": "the typo of the README's error example",
    "source.dropped_without_depth": "a field of dataset_info.json",
    "source.plan": "a mixture's plan in dataset_info.json",
}


def test_config_keys_the_readme_names_exist():
    """Every ``source.X`` / ``output.X`` ... the README mentions is a key of the schemas (of
    some source kind for ``source.*``): no renamed or removed key left behind."""
    from omegaconf import DictConfig, OmegaConf

    from pipeline.config.datasets import SOURCE_KINDS
    from pipeline.config.schema import Config
    from pipeline.config.sources import PartConfig

    groups = "source|augment|output|report|runtime|shard"
    named = re.findall(rf"(?<![\w./-])((?:{groups})(?:\.[a-z][a-z0-9_]*)+)", README.read_text())
    schemas = [OmegaConf.structured(Config)] + [
        OmegaConf.create({"source": OmegaConf.structured(s)}) for s in SOURCE_KINDS.values()
    ]

    def has(node: object, key: str) -> bool:
        for part in key.split("."):
            if not isinstance(node, DictConfig) or part not in node:
                return False
            node = node[part]
        return True

    def known(key: str) -> bool:
        part = re.fullmatch(r"source\.parts\.[a-z][a-z0-9_]*\.(.+)", key)  # a mixture's part
        if part and part.group(1).startswith("source."):
            return any(has(s, part.group(1)) for s in schemas[1:])
        if part:
            return has(OmegaConf.structured(PartConfig), part.group(1))
        return any(has(s, key) for s in schemas)

    unknown = {
        k for k in named if not k.startswith("augment.transforms.") and not k.endswith(".md")
    }
    unknown -= NOT_KEYS.keys()  # (a key ending in .md is a link to a docs page)
    assert not {k for k in unknown if not known(k)}


def test_where_things_go_dir_names_are_the_ones_the_tool_makes(session):
    """The README's two examples of default ``output.dir`` names (a plain one; one with a
    path: spelled out, ``--`` and a hash)."""
    text = " ".join(README.read_text().split())
    plain = re.search(r"\(`(augment\.copies=4 source\.num_samples=24)` → `([\w.-]+)`\)", text)
    hashed = re.search(r"e\.g\. `(source\.depth_scale-1000_source\.path-_data_mine--\w+)`", text)
    for overrides, name in (
        (plain[1].split(), f"synthetic/{plain[2]}"),
        (
            ["source=folder", "source.path=/data/mine", "source.depth_scale=1000"],
            f"folder/{hashed[1]}",
        ),
    ):
        o = session.call(["depth-pipeline", *overrides, "--cfg", "job", "--resolve"])
        assert yaml.safe_load(o.out)["output"]["dir"] == f"outputs/datasets/{name}"
