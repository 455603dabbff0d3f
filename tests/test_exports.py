"""Every output loads where depth trainers read it. Each format (webdataset, folder,
filelist) x source (synthetic, hub parquet, nyu_mat, fastdepth tars, a BTS file list) x
augmentation (none, the seed recipe, a rarely-firing Rotate) is read back four ways:
``pipeline.read.load``, independent readers (tarfile, Pillow, tifffile) on the files,
``datasets.load_dataset`` with a fresh cache, and the webdataset library with the
documented decoder. A representative subset runs by default, the rest with ``-m slow``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fixtures
import numpy as np
import pytest
import tifffile
from conftest import make_cfg, read_tar, run_cli
from PIL import Image

from pipeline import read
from pipeline.encode import record as metadata
from pipeline.run.runner import run

COMMON = ["output.shard_size=3", "runtime.workers=1", "report.enabled=false"]
AUGMENT = {
    "none": ["augment=none"],
    "seed": [],
    # p=0.05: with augment.seed=42 it fires on sample 5 only, after the 5 rows datasets
    # infers a schema from (checked below)
    "rare": [
        "+augment.transforms.rot._target_=albumentations.Rotate",
        "+augment.transforms.rot.p=0.05",
        "augment.seed=42",
    ],
}
FORMATS = {"webdataset": [], "folder": ["output=folder"], "filelist": ["output=filelist"]}
DEFAULT = {
    ("webdataset", "synthetic", "rare"),
    ("webdataset", "fastdepth", "none"),
    ("folder", "hub", "seed"),
    ("folder", "filelist", "rare"),
    ("filelist", "nyu_mat", "none"),
    ("filelist", "synthetic", "seed"),
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, tuple[list[str], fixtures.Samples]]:
    """Per source kind: the overrides that select it, and its samples by key."""
    from pipeline.sources.synthetic import render

    root = tmp_path_factory.mktemp("sources")
    hub = fixtures.hub_parquet(root / "hub")
    mat = fixtures.nyu_mat(root / "nyu_depth_v2_labeled.mat")
    tree = fixtures.fastdepth_tree(root / "nyudepthv2")
    fixtures.sayakpaul_tars(root / "nyudepthv2", root / "hf" / "data")
    bts = fixtures.bts_list(root / "bts")
    synthetic = {f"train/{i:06d}": render(fixtures.H, fixtures.W, 0, i) for i in range(7)}
    return {
        "synthetic": (["source.num_samples=7"], synthetic),
        "hub": (
            ["source=nyu_parquet", f"source.path={root / 'hub'}", f"source.cache_dir={root}/c"],
            hub,
        ),
        "nyu_mat": (["source=nyu_mat", f"source.path={root / 'nyu_depth_v2_labeled.mat'}"], mat),
        "fastdepth": (
            ["source=fastdepth", f"source.path={root / 'hf' / 'data'}"],
            {k: v for k, v in tree.items() if k.startswith("train/")},
        ),
        "filelist": (
            ["source=filelist", f"source.path={root / 'bts' / 'train_files_with_gt.txt'}"],
            bts,
        ),
    }


def on_disk(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    """Every written sample decoded with the standard library, Pillow and tifffile only."""
    members = {k: v for tar in sorted(root.glob("*.tar")) for k, v in read_tar(tar).items()}
    for meta in sorted((root / "meta").rglob("*.json")) if (root / "meta").is_dir() else []:
        key = meta.relative_to(root / "meta").with_suffix("").as_posix()
        members[key] = {"json": meta.read_bytes()}
        for sub, ext in (("image", "png"), ("image", "jpg"), ("depth", "tiff")):
            if (f := root / sub / f"{key}.{ext}").is_file():
                members[key][ext if sub == "image" else "depth.tiff"] = f.read_bytes()
        if (f := root / "depth" / f"{key}.png").is_file():
            members[key]["depth.png"] = f.read_bytes()
    out = {}
    for key, m in members.items():
        record = json.loads(m["json"])
        image = np.asarray(Image.open(io.BytesIO(m.get("png") or m["jpg"])).convert("RGB"))
        if "depth.tiff" in m:
            depth = tifffile.imread(io.BytesIO(m["depth.tiff"]))
        else:
            stored = np.asarray(Image.open(io.BytesIO(m["depth.png"])))
            depth = stored.astype(np.float32) / np.float32(record["depth_scale"])
        out[key] = (image, depth, record)
    return out


def hf_rows(root: Path, cache: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The dataset through ``datasets.load_dataset`` (a fresh cache), by key."""
    import datasets

    ds = datasets.load_dataset(str(root), split="train", cache_dir=str(cache))
    out = {}
    for row in ds:
        record = row.get("json") or row  # webdataset: a json column; folders: flat columns
        image = np.asarray(row.get("png") or row.get("jpg") or row["image"])
        pil = row.get("depth.tiff") or row.get("depth.png") or row["depth"]
        depth = np.asarray(pil)
        if depth.dtype != np.float32:  # 16-bit PNG
            depth = depth.astype(np.float32) / np.float32(record["depth_scale"])
        out[record["key"]] = (image, depth)
    return out


def config(out: Path, source: str, overrides: list[str], aug: str, extra: list[str]):
    """The test config: small synthetic scenes and the crop that fits the fixtures."""
    if aug != "none":
        return make_cfg(out, *COMMON, *overrides, *AUGMENT[aug], *extra)
    small = ["runtime.progress=false"]
    if source == "synthetic":
        small += [f"source.height={fixtures.H}", f"source.width={fixtures.W}"]
    return make_cfg(out, *small, *COMMON, *overrides, *AUGMENT[aug], *extra, small=False)


def cases():
    for fmt in FORMATS:
        for source in ("synthetic", "hub", "nyu_mat", "fastdepth", "filelist"):
            for aug in AUGMENT:
                marks = [] if (fmt, source, aug) in DEFAULT else [pytest.mark.slow]
                yield pytest.param(fmt, source, aug, marks=marks, id=f"{fmt}-{source}-{aug}")


@pytest.mark.parametrize(("fmt", "source", "aug"), list(cases()))
def test_every_format_source_and_augmentation_loads_everywhere(sources, tmp_path, fmt, source, aug):
    overrides, expected = sources[source]
    out = tmp_path / "ds"
    run(config(out, source, overrides, aug, FORMATS[fmt]))
    disk = on_disk(out)
    assert sorted(disk) == sorted(expected)
    scale = read.depth_scale(out)
    assert scale == (1.0 if fmt != "filelist" else 1000.0)

    # pipeline.read: the same arrays as the independent readers, in manifest order
    loaded = list(read.load(out))
    assert [m["augment"]["index"] for _, _, m in loaded] == list(range(len(expected)))
    for image, depth, meta in loaded:
        want_image, want_depth, record = disk[meta["key"]]
        assert image.dtype == np.uint8 and image.shape == want_image.shape
        assert depth.dtype == np.float32 and depth.shape == want_image.shape[:2]
        assert np.array_equal(image, want_image)
        assert depth.tobytes() == want_depth.tobytes()
        assert meta["augment"]["params"] == json.loads(record["augment"]["params"])

    # the stable schema: the same keys in every record; params one JSON string
    records = sorted((r for _, _, r in disk.values()), key=lambda r: r["augment"]["index"])
    shapes = {json.dumps(_shape(r)) for r in records}
    assert len(shapes) == 1, shapes
    # ... and exactly the schema the card declares (datasets drops undeclared keys)
    assert _shape(records[0]) == _declared(metadata.RECORD_FEATURES)
    assert all(isinstance(r["augment"]["params"], str) for r in records)
    assert set(records[0]["camera"]) >= {"fx", "fy", "cx", "cy"}
    if aug == "rare":  # the case that broke load_dataset: null first, an object later
        fired = [json.loads(r["augment"]["params"])["rot"] is not None for r in records]
        assert fired[:5] == [False] * 5 and fired[5]

    if aug == "none":  # what we wrote is the source (png16: within 0.5 / scale)
        for key, (image, depth) in expected.items():
            got_image, got_depth, _ = disk[key]
            assert np.array_equal(got_image, image)
            if scale == 1.0:
                assert got_depth.tobytes() == depth.tobytes()
            else:
                assert np.array_equal(got_depth == 0, depth == 0)
                assert np.abs(got_depth - depth).max() <= 0.5 / scale + 1e-6

    rows = hf_rows(out, tmp_path / "hf-cache")
    assert sorted(rows) == sorted(disk)
    for key, (image, depth) in rows.items():
        assert np.array_equal(image, disk[key][0])
        assert depth.tobytes() == disk[key][1].tobytes()

    if fmt == "webdataset":
        import webdataset as wds

        decoder = read.depth_decoder(scale)
        stream = wds.WebDataset(read.shards(out), shardshuffle=False).decode(decoder, "rgb8")
        streamed = {s["__key__"]: s for s in stream}
        assert sorted(streamed) == sorted(disk)
        for key, s in streamed.items():
            depth = s["depth.tiff"]
            assert depth.dtype == np.float32 and depth.tobytes() == disk[key][1].tobytes()
            assert np.array_equal(s["png"], disk[key][0])


def _declared(columns: list[dict]) -> dict:
    """The key structure a ``datasets`` YAML feature list declares."""
    return {
        c["name"]: _declared(c["struct"]) if "struct" in c else None
        for c in sorted(columns, key=lambda c: c["name"])
    }


def _shape(obj):
    """The key structure of a JSON value (types of leaves left out: null or float)."""
    if isinstance(obj, dict):
        return {k: _shape(v) for k, v in sorted(obj.items())}
    return None


# ---- the datasets cache: one entry per content ------------------------------------------


def test_same_named_and_rewritten_datasets_load_their_own_rows_through_one_cache(tmp_path):
    """datasets caches a local dataset by directory name and patterns: the card's content
    fingerprint keeps same-named and rewritten datasets apart."""
    import datasets

    cache = tmp_path / "shared-cache"
    plain = ["augment=none", *COMMON, "source.height=48", "source.width=64"]
    a, b = tmp_path / "synthetic" / "default", tmp_path / "hub" / "default"
    run(make_cfg(a, *plain, "source.num_samples=4", small=False))
    run(make_cfg(b, *plain, "source.num_samples=6", "source.seed=1", small=False))

    def keys_and_first_depth(root: Path) -> tuple[int, bytes]:
        ds = datasets.load_dataset(str(root), split="train", cache_dir=str(cache))
        return len(ds), np.asarray(ds[0]["depth.tiff"]).tobytes()

    def first_written(root: Path) -> bytes:
        return next(read.load(root))[1].tobytes()

    assert keys_and_first_depth(a) == (4, first_written(a))
    assert keys_and_first_depth(b) == (6, first_written(b))
    before = first_written(a)
    rewrite = ["source.num_samples=4", "source.seed=2", "output.overwrite=true"]
    run(make_cfg(a, *plain, *rewrite, small=False))  # same name, same size, new content
    assert first_written(a) != before
    assert keys_and_first_depth(a) == (4, first_written(a))


# ---- trainer file lists --------------------------------------------------------------


@pytest.fixture(scope="module")
def lists_and_tiff(tmp_path_factory) -> tuple[Path, Path]:
    """The same augmented dataset as trainer file lists and as float TIFF shards."""
    root = tmp_path_factory.mktemp("lists")
    common = [*COMMON, "source.num_samples=6", "+augment.transforms.rot._target_=Rotate"]
    run(make_cfg(root / "lists", *common, "output=filelist"))
    run(make_cfg(root / "tiff", *common))
    return root / "lists", root / "tiff"


def test_file_lists_read_the_way_bts_zoedepth_and_metric3d_do(lists_and_tiff):
    lists, tiff = lists_and_tiff
    reference = {m["key"]: (image, depth, m) for image, depth, m in read.load(tiff)}
    lines = (lists / "train_files_with_gt.txt").read_text().splitlines()
    assert len(lines) == len(reference) == 6
    for line, (key, (want_image, want_depth, meta)) in zip(lines, reference.items()):
        rgb_rel, depth_rel, focal = line.split()  # BTS: data_path / gt_path + focal
        image = np.asarray(Image.open(lists / "image" / rgb_rel))
        depth = np.asarray(Image.open(lists / "depth" / depth_rel)) / 1000.0
        assert rgb_rel == f"{key}.png" and np.array_equal(image, want_image)
        valid = want_depth > 0
        assert np.array_equal(depth > 0, valid)
        assert np.abs(depth[valid] - want_depth[valid]).max() <= 0.0005 + 1e-7
        assert float(focal) == meta["camera"]["fx"] and float(focal) > 0
    files = json.loads((lists / "train.json").read_text())["files"]  # Metric3D
    jsonl = [json.loads(x) for x in (lists / "train.jsonl").read_text().splitlines()]
    assert files == jsonl and len(files) == 6
    for f, (want_image, want_depth, meta) in zip(files, reference.values()):
        depth = np.asarray(Image.open(lists / f["depth"]), dtype=np.float32) / f["depth_scale"]
        assert np.abs(depth - want_depth).max() <= 0.0005 + 1e-7
        assert np.array_equal(np.asarray(Image.open(lists / f["rgb"])), want_image)
        fx, fy, cx, cy = f["cam_in"]
        assert (fx, fy) == (meta["camera"]["fx"], meta["camera"]["fy"])
        h, w = want_depth.shape  # a principal point the augmentation did not track: the centre
        assert cx == (meta["camera"]["cx"] if meta["camera"]["cx"] is not None else (w - 1) / 2)
        assert cy == (meta["camera"]["cy"] if meta["camera"]["cy"] is not None else (h - 1) / 2)
    info = json.loads((lists / "dataset_info.json").read_text())
    assert info["encodings"]["depth"]["depth_scale"] == 1000.0
    assert "depth_scale = 1000" in (lists / "README.md").read_text()


def test_filelist_source_reproduces_the_filelist_output(lists_and_tiff, tmp_path):
    lists, _ = lists_and_tiff
    again = tmp_path / "again"
    run(
        make_cfg(
            again,
            "source=filelist",
            f"source.path={lists / 'train_files_with_gt.txt'}",
            f"source.image_root={lists / 'image'}",
            f"source.depth_root={lists / 'depth'}",
            "augment=none",
            "output=filelist",
            *COMMON,
            small=False,
        )
    )
    for sub in ("image", "depth"):
        first = {p.relative_to(lists): p.read_bytes() for p in (lists / sub).rglob("*.png")}
        second = {p.relative_to(again): p.read_bytes() for p in (again / sub).rglob("*.png")}
        assert len(first) == 6 and first == second
    name = "train_files_with_gt.txt"
    assert (again / name).read_text() == (lists / name).read_text()


# ---- 16-bit PNG depth ---------------------------------------------------------------


@pytest.fixture(scope="module")
def far_and_near(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A folder source whose float depth has a pixel beyond 65.535 m and one at 0.4 mm."""
    root = tmp_path_factory.mktemp("farnear")
    (root / "image").mkdir()
    (root / "depth").mkdir()
    image, depth = fixtures.rgbd(5, 1)[0]
    depth[0, 0], depth[0, 1] = 70.0, 0.0004
    Image.fromarray(image).save(root / "image" / "a.png")
    tifffile.imwrite(root / "depth" / "a.tiff", depth)
    return root, depth


@pytest.mark.parametrize(("scale", "far", "near"), [(None, 1, 1), (100, 0, 1)])
def test_png16_rounds_to_nearest_counts_what_it_cannot_hold_and_records_the_scale(
    far_and_near, tmp_path, scale, far, near
):
    root, depth = far_and_near
    out = tmp_path / "png16"
    extra = [] if scale is None else [f"output.depth.scale={scale}"]
    overrides = ["source=folder", f"source.path={root}", "augment=none", "output=folder"]
    run(make_cfg(out, *overrides, "output.depth.format=png16", *extra, *COMMON, small=False))
    scale = scale or 1000
    stored = np.asarray(Image.open(out / "depth" / "a.png"))
    assert stored.dtype == np.uint16
    lost = np.zeros(depth.shape, bool)
    lost[0, 0], lost[0, 1] = bool(far), bool(near)
    assert np.array_equal(stored == 0, (depth == 0) | lost)
    keep = ~lost & (depth > 0)
    assert np.array_equal(stored[keep], np.floor(depth[keep].astype(np.float64) * scale + 0.5))
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["invalid_pixels"]["png16_too_far"] == far
    assert info["invalid_pixels"]["png16_too_near"] == near
    assert info["encodings"]["depth"]["depth_scale"] == scale
    assert json.loads((out / "meta" / "a.json").read_text())["depth_scale"] == scale
    assert f"depth_scale = {scale:g}" in (out / "README.md").read_text()
    _, back, _ = next(read.load(out))
    assert np.abs(back[keep] - depth[keep]).max() <= 0.5 / scale + 1e-6


def test_png16_scale_defaults_to_the_sources_integer_scale(tmp_path):
    from pipeline.config.schema import to_config

    def scale(*overrides: str) -> float | None:
        cfg = make_cfg(tmp_path, *overrides, "output.depth.format=png16", small=False)
        return to_config(cfg).output.depth.scale

    assert scale() == 1000.0
    assert scale("source=kitti", "source.path=x") == 256.0  # KITTI x256
    assert scale("source=filelist", "source.path=x.txt") == 1000.0  # NYU millimetres
    assert scale("source=kitti", "source.path=x", "output.depth.scale=100") == 100.0


def test_report_states_the_quantisation(tmp_path):
    out = tmp_path / "r"
    run(
        make_cfg(out, "source.num_samples=2", "output.depth.format=png16", "report.plots=[collage]")
    )
    page = (out / "report" / "index.html").read_text()
    assert "quantisation error at most 0.0005 m" in page


def test_file_lists_without_a_focal_length_are_refused_before_the_run(far_and_near, tmp_path):
    from pipeline.errors import PipelineError

    root, _ = far_and_near
    folder = ["source=folder", f"source.path={root}", *COMMON]
    out = tmp_path / "no-camera"
    proc = run_cli(*folder, "augment=none", "output=filelist", f"output.dir={out}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "source.camera.fx=" in lines[0], proc.stderr
    assert not out.exists()
    camera = [*folder, "source.camera.fx=500", "output=filelist"]
    resize = [
        "augment=none",
        "+augment.transforms.r._target_=Resize",
        "+augment.transforms.r.height=48",
    ]
    # the camera follows a resize (issue 13): the list's focal is the resized image's fx
    scaled = make_cfg(
        tmp_path / "resize", *camera, *resize, "+augment.transforms.r.width=64", small=False
    )
    run(scaled)
    line = (tmp_path / "resize" / "train_files_with_gt.txt").read_text().split()
    assert float(line[2]) == pytest.approx(500 * 64 / fixtures.W)
    with pytest.raises(PipelineError, match="output=filelist writes 16-bit PNG depth"):
        run(
            make_cfg(
                tmp_path / "tiff", *camera, "augment=none", "output.depth.format=tiff", small=False
            )
        )
    run(make_cfg(tmp_path / "ok", *camera, "augment=none", small=False))
    assert (tmp_path / "ok" / "train_files_with_gt.txt").read_text() == "a.png a.png 500.0\n"


def test_split_names_datasets_refuses_are_refused_before_the_run(tmp_path):
    from pipeline.errors import PipelineError

    for split in ("all", "train-2"):
        with pytest.raises(PipelineError, match=f"source.split={split} is not a valid split"):
            run(make_cfg(tmp_path / split, f"source.split={split}", *COMMON))
        assert not (tmp_path / split).exists()


def test_jpeg_images_in_file_lists(tmp_path):
    out = tmp_path / "jpg"
    run(
        make_cfg(
            out,
            "source.num_samples=3",
            "output=filelist",
            "output.image.format=jpg",
            "output.image.quality=90",
            *COMMON,
        )
    )
    lines = (out / "train_files_with_gt.txt").read_text().splitlines()
    assert [x.split()[0] for x in lines] == [f"train/{i:06d}.jpg" for i in range(3)]
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["encodings"]["image"] == {
        "ext": "jpg",
        "dtype": "uint8",
        "channels": "RGB",
        "jpeg_quality": 90,
    }
    for image, _, meta in read.load(out):
        jpeg = Image.open(out / "image" / f"{meta['key']}.jpg")
        assert jpeg.format == "JPEG"  # decoders may differ by a level in rare pixels
        assert np.abs(np.asarray(jpeg).astype(int) - image).max() <= 2
    assert len(hf_rows(out, tmp_path / "cache")) == 3


def test_folder_dataset_rewritten_elsewhere_loads_from_its_own_files(tmp_path):
    """Image-folder rows in the datasets cache point at files by path: the same content in
    a same-named dir elsewhere (the first one deleted) must not reuse those rows."""
    import shutil

    import datasets

    cache = tmp_path / "shared-cache"
    plain = ["augment=none", "output=folder", *COMMON, "source.height=48", "source.width=64"]
    for parent in ("first", "second"):
        out = tmp_path / parent / "default"
        run(make_cfg(out, *plain, "source.num_samples=3", small=False))
        ds = datasets.load_dataset(str(out), split="train", cache_dir=str(cache))
        assert np.asarray(ds[2]["depth"]).tobytes() == list(read.load(out))[2][1].tobytes()
        shutil.rmtree(tmp_path / parent)


def test_file_lists_of_merged_slices_resume_and_overwrite(lists_and_tiff, tmp_path):
    """The lists are written when the dataset is published (also by the merge of slices),
    from the manifests; a resumed run rewrites them identically; overwrite removes them."""
    lists, _ = lists_and_tiff
    out = tmp_path / "sliced"
    common = [*COMMON, "source.num_samples=6", "+augment.transforms.rot._target_=Rotate"]
    for k in (1, 0):
        run(make_cfg(out, *common, "output=filelist", f"shard.index={k}", "shard.num_shards=2"))
    names = ("train_files_with_gt.txt", "train.jsonl", "train.json", "metadata.jsonl")
    for name in names:
        assert (out / name).read_bytes() == (lists / name).read_bytes(), name
    (out / "train.jsonl").unlink()
    (out / "dataset_info.json").unlink()
    run(make_cfg(out, *common, "output=filelist"))  # resumes every shard, publishes again
    assert (out / "train.jsonl").read_bytes() == (lists / "train.jsonl").read_bytes()
    (out / "notes.txt").write_text("mine")
    run(make_cfg(out, *COMMON, "source.num_samples=2", "output.overwrite=true"))
    left = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # the lock
    assert not list(out.glob("slices/*"))  # the old slice records went with the old dataset
    left = [name for name in left if name != "slices"]
    assert left == ["README.md", "dataset_info.json", "manifests", "notes.txt", "train-000000.tar"]
