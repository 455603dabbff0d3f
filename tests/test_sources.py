"""Every real source on a small fixture in its real on-disk format, written here:
parquet and save_to_disk dirs written by ``datasets`` (NYU schema), webdataset tars
(ours and hand-made), KITTI-style uint16 PNG folders, an HDF5 file laid out like the
official NYU .mat. Checked through ``run(make_cfg(...))`` / the CLI and the written shards."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import tifffile
from conftest import make_cfg, read_tar, run_cli, shard_bytes
from kitti_calib import write_calib
from PIL import Image

from pipeline.errors import PipelineError, SampleError
from pipeline.run.runner import run

H, W = 12, 16
PLAIN = ["augment=none", "runtime.progress=false", "report.enabled=false", "runtime.workers=1"]


def cfg(out: Path, *overrides: str):
    return make_cfg(out, *PLAIN, *overrides, small=False)


def samples_of(out: Path) -> dict[str, dict[str, bytes]]:
    return {k: v for t in sorted(out.glob("*.tar")) for k, v in read_tar(t).items()}


def png_rgb(data: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))


def tiff(data: bytes) -> np.ndarray:
    return tifffile.imread(io.BytesIO(data))


def rgbd(rng: np.random.Generator, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    images = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(n)]
    depths = [rng.uniform(0.5, 9.0, (H, W)).astype(np.float32) for _ in range(n)]
    return images, depths


def assert_clean_failure(out: Path) -> None:
    """A failed run leaves no shard, no temporary and no dataset_info.json."""
    if out.exists():
        assert not list(out.glob("*.tar")), "a shard was published"
        assert not list(out.rglob("*.tmp-*")), "a temporary was left behind"
        assert not (out / "dataset_info.json").exists()


# ---- hub: parquet, data_files, save_to_disk, streaming, errors -------------------------


@pytest.fixture(scope="module")
def nyu_copy(tmp_path_factory) -> tuple[Path, list[np.ndarray], list[np.ndarray]]:
    """A local copy in the sayakpaul/nyu_depth_v2 schema, written by ``datasets``:
    ``image`` PNG RGB, ``depth_map`` float32 TIFF, parquet files per split."""
    import datasets

    rng = np.random.default_rng(0)
    images, depths = rgbd(rng, 5)
    depths[1][0, :4] = [np.nan, np.inf, -1.0, 12.0]  # invalid: nonfinite, negative, > max
    depths[1][1, 0] = 0.0
    features = datasets.Features({"image": datasets.Image(), "depth_map": datasets.Image()})
    root = tmp_path_factory.mktemp("nyu_parquet")
    (root / "data").mkdir()
    train = datasets.Dataset.from_dict({"image": images, "depth_map": depths}, features=features)
    train.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    val = datasets.Dataset.from_dict(
        {"image": images[:2], "depth_map": depths[:2]}, features=features
    )
    val.to_parquet(str(root / "data" / "validation-00000-of-00001.parquet"))
    datasets.DatasetDict({"train": train, "validation": val}).save_to_disk(
        str(root.parent / "nyu_saved")
    )
    return root, images, depths


def test_parquet_depth_column_is_really_float32_tiff(nyu_copy):
    import pyarrow.parquet as pq

    root, _, depths = nyu_copy
    table = pq.read_table(root / "data" / "train-00000-of-00001.parquet")
    cell = table.column("depth_map")[0].as_py()
    assert cell["bytes"][:4] == b"II*\x00"
    assert tifffile.imread(io.BytesIO(cell["bytes"])).dtype == np.float32
    assert table.column("image")[0].as_py()["bytes"][:4] == b"\x89PNG"


def test_nyu_preset_reads_local_parquet_copy_exactly(nyu_copy, tmp_path):
    root, images, depths = nyu_copy
    out = tmp_path / "out"
    result = run(
        cfg(out, "source=nyu_parquet", f"source.path={root}", f"source.cache_dir={tmp_path}/c")
    )
    got = samples_of(out)
    assert list(got) == [f"train/{i:06d}" for i in range(5)]
    for i in range(5):
        fields = got[f"train/{i:06d}"]
        assert np.array_equal(png_rgb(fields["png"]), images[i])
        depth = tiff(fields["depth.tiff"])
        assert depth.dtype == np.float32 and depth.shape == (H, W)
        want = depths[i].copy()
        want[~np.isfinite(want) | (want < 0) | (want > 10.0)] = 0
        assert depth.tobytes() == want.tobytes()
    info = result.info.to_json()
    assert info["invalid_pixels"] == {
        "zero": 1,
        "nonfinite": 2,
        "negative": 1,
        "out_of_range": 1,
        "png16_too_far": 0,
        "png16_too_near": 0,
    }
    src = info["source"]
    assert src["kind"] == "hub" and src["local"] and src["num_rows"] == 5
    assert src["revision"] is None and src["fingerprint"]  # the preset's hub revision is moot
    assert src["data_files"][0].endswith("train-00000-of-00001.parquet")
    assert json.loads((out / "dataset_info.json").read_text())["source"] == json.loads(
        json.dumps(src)
    )


def test_local_parquet_row_groups_and_files_are_read_in_place(tmp_path):
    """Several files of several row groups, shards cutting across both: every row once,
    in order, exactly; no Arrow cache copy of the split is made."""
    import datasets

    rng = np.random.default_rng(3)
    images, depths = rgbd(rng, 7)
    features = datasets.Features({"image": datasets.Image(), "depth_map": datasets.Image()})
    root = tmp_path / "pq"
    root.mkdir()
    for part, rows in enumerate((slice(0, 4), slice(4, 7))):
        ds = datasets.Dataset.from_dict(
            {"image": images[rows], "depth_map": depths[rows]}, features=features
        )
        ds.to_parquet(str(root / f"train-{part:05d}-of-00002.parquet"), batch_size=3)
    out, cache = tmp_path / "out", tmp_path / "cache"
    result = run(
        cfg(
            out,
            "source=nyu_parquet",
            f"source.path={root}",
            f"source.cache_dir={cache}",
            "output.shard_size=2",
            "runtime.workers=2",
        )
    )
    got = samples_of(out)
    assert list(got) == [f"train/{i:06d}" for i in range(7)]
    for i in range(7):
        assert np.array_equal(png_rgb(got[f"train/{i:06d}"]["png"]), images[i])
        assert tiff(got[f"train/{i:06d}"]["depth.tiff"]).tobytes() == depths[i].tobytes()
    assert result.info.to_json()["source"]["fingerprint"]
    assert not any(p.suffix == ".arrow" for p in cache.rglob("*"))


def test_hub_split_limit_and_data_files_glob(nyu_copy, tmp_path):
    root, images, _ = nyu_copy
    cache = f"source.cache_dir={tmp_path}/c"
    run(cfg(tmp_path / "v", "source=hub", f"source.path={root}", "source.split=validation", cache))
    assert list(samples_of(tmp_path / "v")) == ["validation/000000", "validation/000001"]
    run(
        cfg(
            tmp_path / "g",
            "source=hub",
            f"source.path={root}",
            "source.data_files=data/train-*.parquet",
            "source.limit=3",
            cache,
        )
    )
    got = samples_of(tmp_path / "g")
    assert list(got) == [f"train/{i:06d}" for i in range(3)]
    assert np.array_equal(png_rgb(got["train/000002"]["png"]), images[2])


def test_hub_save_to_disk_and_streaming_give_the_same_bytes(nyu_copy, tmp_path):
    root, _, _ = nyu_copy
    run(
        cfg(
            tmp_path / "pq",
            "source=nyu_parquet",
            f"source.path={root}",
            f"source.cache_dir={tmp_path}",
        )
    )
    run(cfg(tmp_path / "sd", "source=nyu_parquet", f"source.path={root.parent / 'nyu_saved'}"))
    run(cfg(tmp_path / "st", "source=nyu_parquet", f"source.path={root}", "source.streaming=true"))
    assert len(shard_bytes(tmp_path / "pq")) == 1
    assert shard_bytes(tmp_path / "st") == shard_bytes(tmp_path / "pq")
    # save_to_disk: same pixels; only the recorded source location differs.
    saved, reference = samples_of(tmp_path / "sd"), samples_of(tmp_path / "pq")
    assert list(saved) == list(reference)
    for key, fields in saved.items():
        assert fields["png"] == reference[key]["png"]
        assert fields["depth.tiff"] == reference[key]["depth.tiff"]
        assert "nyu_saved" in json.loads(fields["json"])["source"]["location"]


def test_hub_workers_reopen_the_source(nyu_copy, tmp_path):
    root, _, _ = nyu_copy
    common = ["source=nyu_parquet", f"source.path={root}", f"source.cache_dir={tmp_path}/c"]
    run(cfg(tmp_path / "one", *common, "output.shard_size=2"))
    run(cfg(tmp_path / "two", *common, "output.shard_size=2", "runtime.workers=2"))
    assert len(shard_bytes(tmp_path / "one")) == 3
    assert shard_bytes(tmp_path / "one") == shard_bytes(tmp_path / "two")


def test_hub_unknown_column_and_split_are_one_line(nyu_copy, tmp_path):
    root, _, _ = nyu_copy
    common = ["source=hub", f"source.path={root}", f"source.cache_dir={tmp_path}/c"]
    with pytest.raises(PipelineError, match=r"source.columns: depth .*columns: image, depth_map"):
        run(cfg(tmp_path / "a", *common, "source.columns.depth=depth"))
    with pytest.raises(PipelineError, match=r"source.split=test .*splits: train, validation"):
        run(cfg(tmp_path / "b", *common, "source.split=test"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_hub_unreachable_is_one_line_exit_2_no_output(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no cached copy
    out = tmp_path / "offline"
    proc = run_cli("source=nyu", f"output.dir={out}")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "sayakpaul/nyu_depth_v2" in lines[0] and "cannot reach the Hugging Face Hub" in lines[0]
    assert "data/train-*.tar" in lines[0]  # source=nyu: the repo's archives, not parquet
    assert "source.path" in lines[0] and "local copy" in lines[0]
    assert not out.exists()


def test_cli_script_based_repo_says_what_to_do(tmp_path):
    repo = tmp_path / "nyu_depth_v2"
    repo.mkdir()
    (repo / "nyu_depth_v2.py").write_text("import datasets\n")  # a loading script
    out = tmp_path / "script"
    proc = run_cli("source=hub", f"source.path={repo}", f"output.dir={out}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "loading script" in lines[0] and "source.revision=refs/convert/parquet" in lines[0]
    assert not out.exists()


def test_hub_corrupt_cell_is_a_sample_error_naming_the_row(tmp_path):
    import datasets

    images, depths = rgbd(np.random.default_rng(3), 3)
    features = datasets.Features({"image": datasets.Image(), "depth_map": datasets.Image()})
    ds = datasets.Dataset.from_dict({"image": images, "depth_map": depths}, features=features)
    ds = ds.cast_column("depth_map", datasets.Image(decode=False))
    rows = ds.to_dict()
    rows["depth_map"][1] = {"bytes": b"II*\x00garbage", "path": None}
    bad = datasets.Dataset.from_dict(rows, features=ds.features)
    bad.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(SampleError, match=r"sample train/000001: .*bad\[train\]\[1\]\.depth_map"):
        run(cfg(tmp_path / "o", "source=hub", f"source.path={tmp_path / 'bad'}"))
    assert_clean_failure(tmp_path / "o")
    result = run(
        cfg(tmp_path / "s", "source=hub", f"source.path={tmp_path}/bad", "runtime.on_error=skip")
    )
    assert result.written == 2 and result.skipped == 1
    assert list(samples_of(tmp_path / "s")) == ["train/000000", "train/000002"]
    assert result.info.to_json()["counts"]["skipped_samples"][0]["key"] == "train/000001"


# ---- webdataset ------------------------------------------------------------------------


def test_webdataset_feeds_this_tools_output_back_in(tmp_path):
    first = tmp_path / "first"
    run(
        make_cfg(
            first,
            *PLAIN,
            "source.height=24",
            "source.width=32",
            "source.num_samples=5",
            "output.shard_size=2",
            small=False,
        )
    )
    again = tmp_path / "again"
    result = run(cfg(again, "source=webdataset", f"source.path={first}", "output.shard_size=2"))
    a, b = samples_of(first), samples_of(again)
    assert list(b) == list(a) == [f"train/{i:06d}" for i in range(5)]
    for key in a:
        assert b[key]["png"] == a[key]["png"] and b[key]["depth.tiff"] == a[key]["depth.tiff"]
    assert result.info.to_json()["source"]["num_shards"] == 3
    assert result.info.to_json()["source"]["num_samples"] == 5


def test_crop_larger_than_a_webdataset_sources_images_is_refused_before_the_run(tmp_path):
    """The webdataset source does not know its image size: the first sample tells."""
    first = tmp_path / "first"
    run(
        make_cfg(
            first,
            *PLAIN,
            "source.height=24",
            "source.width=32",
            "source.num_samples=2",
            small=False,
        )
    )
    again = tmp_path / "again"
    with pytest.raises(PipelineError) as exc:
        run(
            make_cfg(
                again,
                "source=webdataset",
                f"source.path={first}",
                "runtime.progress=false",
                "report.enabled=false",
                small=False,
            )
        )
    assert "augment.transforms.crop" in str(exc.value) and "24x32" in str(exc.value)
    assert not again.exists()


def _tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _png(arr: np.ndarray) -> bytes:
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    return cv2.imencode(".png", arr)[1].tobytes()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_webdataset_from_other_tools_png16_npy_jpg_and_dotted_keys(tmp_path, rng):
    images, _ = rgbd(rng, 3)
    mm = rng.integers(0, 10000, (H, W), dtype=np.uint16)
    metres = rng.uniform(1, 3, (H, W)).astype(np.float32)
    _tar(
        tmp_path / "b.tar",
        [
            ("scene.2/f0.jpg", cv2.imencode(".jpg", images[2])[1].tobytes()),
            ("scene.2/f0.depth.npy", _npy(mm)),
        ],
    )
    _tar(
        tmp_path / "a.tar",
        [
            ("scene.1/f0.png", _png(images[0])),
            ("scene.1/f0.depth.png", _png(mm)),
            ("scene.1/f0.cls", b"3"),
            ("scene.1/f1.png", _png(images[1])),
            ("scene.1/f1.depth.tiff", _tiff(metres)),
        ],
    )
    out = tmp_path / "out"
    # the metre TIFF / 1000 on purpose (the scale applies to every member): accepted
    scaled = ("source.depth_scale=1000", "runtime.checks.units=false")
    run(cfg(out, "source=webdataset", f"source.path={tmp_path}/*.tar", *scaled))
    got = samples_of(out)
    assert list(got) == ["scene_1/f0", "scene_1/f1", "scene_2/f0"]
    assert np.array_equal(png_rgb(got["scene_1/f0"]["png"]), images[0])
    want = mm.astype(np.float32) / np.float32(1000)
    assert tiff(got["scene_1/f0"]["depth.tiff"]).tobytes() == want.tobytes()
    assert tiff(got["scene_1/f1"]["depth.tiff"]).tobytes() == (metres / np.float32(1000)).tobytes()
    assert tiff(got["scene_2/f0"]["depth.tiff"]).tobytes() == want.tobytes()
    assert png_rgb(got["scene_2/f0"]["png"]).shape == (H, W, 3)


def _tiff(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr)
    return buf.getvalue()


def test_webdataset_missing_member_and_corrupt_png(tmp_path, rng):
    images, depths = rgbd(rng, 3)
    _tar(
        tmp_path / "x.tar",
        [
            ("k0.png", _png(images[0])),
            ("k0.depth.tiff", _tiff(depths[0])),
            ("k1.png", _png(images[1])),  # no depth
            ("k2.png", b"\x89PNG not really"),
            ("k2.depth.tiff", _tiff(depths[2])),
        ],
    )
    with pytest.raises(SampleError, match=r"sample k1: x.tar:k1: no depth member .*has png"):
        run(cfg(tmp_path / "o", "source=webdataset", f"source.path={tmp_path}/x.tar"))
    assert_clean_failure(tmp_path / "o")
    result = run(
        cfg(
            tmp_path / "s",
            "source=webdataset",
            f"source.path={tmp_path}/x.tar",
            "runtime.on_error=skip",
        )
    )
    assert list(samples_of(tmp_path / "s")) == ["k0"]
    reasons = {s["key"]: s["reason"] for s in result.info.to_json()["counts"]["skipped_samples"]}
    assert "cannot decode" in reasons["k2"] and "x.tar:k2.png" in reasons["k2"]


# ---- folders: KITTI and generic --------------------------------------------------------


def _kitti(root: Path, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Raw frames for two drives; ground truth (uint16 PNG, m x 256, 0 = none) for some;
    the day's camera calibration."""
    truth: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    write_calib(root, "2011_09_26")
    for drive in ("2011_09_26_drive_0002_sync", "2011_09_26_drive_0001_sync"):
        for cam in ("image_02", "image_03"):
            raw = root / "2011_09_26" / drive / cam / "data"
            raw.mkdir(parents=True)
            gt = root / "data_depth_annotated/train" / drive / "proj_depth/groundtruth" / cam
            gt.mkdir(parents=True)
            for frame in range(3):
                name = f"{frame:010d}.png"
                image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
                cv2.imwrite(str(raw / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                if frame == 0:
                    continue  # no ground truth for this frame: dropped
                depth = rng.integers(0, 80 * 256, (H, W), dtype=np.uint16)
                depth[0, :3] = 0  # no measurement
                cv2.imwrite(str(gt / name), depth)
                truth[f"2011_09_26/{drive}/{cam}/data/{frame:010d}"] = (image, depth)
    return truth


def test_kitti_preset_reads_uint16_png_over_256(tmp_path, rng):
    truth = _kitti(tmp_path / "kitti", rng)
    out = tmp_path / "out"
    result = run(cfg(out, "source=kitti", f"source.path={tmp_path}/kitti"))
    got = samples_of(out)
    assert list(got) == sorted(truth) and len(got) == 8
    for key, (image, raw) in truth.items():
        assert np.array_equal(png_rgb(got[key]["png"]), image)
        depth = tiff(got[key]["depth.tiff"])
        assert depth.dtype == np.float32
        want = raw.astype(np.float32) * np.float32(1 / 256)
        assert depth.tobytes() == want.tobytes()
        assert (depth[0, :3] == 0).all()
    src = result.info.to_json()["source"]
    assert src["kind"] == "folder" and src["dropped_without_depth"] == 4
    assert len(src["file_list_sha256"]) == 64
    assert result.info.to_json()["invalid_pixels"]["zero"] >= 8 * 3


def test_folder_reads_this_tools_folder_output_back(tmp_path):
    first = tmp_path / "first"
    small = ["source.height=24", "source.width=32", "source.num_samples=3"]
    run(make_cfg(first, *PLAIN, *small, "output=folder", small=False))
    result = run(cfg(tmp_path / "again", "source=folder", f"source.path={first}"))
    got = samples_of(tmp_path / "again")
    assert list(got) == [f"train/{i:06d}" for i in range(3)]
    for key in got:
        want = tifffile.imread(first / "depth" / f"{key}.tiff")
        assert tiff(got[key]["depth.tiff"]).tobytes() == want.tobytes()
        assert got[key]["png"] == (first / "image" / f"{key}.png").read_bytes()
    assert result.info.to_json()["source"]["num_samples"] == 3


def test_folder_mm_png16_npy_and_masks_with_sanitized_keys(tmp_path, rng):
    root = tmp_path / "data"
    (root / "rgb" / "room.a").mkdir(parents=True)
    mm = rng.integers(1, 5000, (H, W), dtype=np.uint16)
    mask = np.ones((H, W), np.uint8) * 255
    mask[:2] = 0
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    for stem in ("b.1", "a"):
        cv2.imwrite(str(root / "rgb" / "room.a" / f"{stem}.png"), image[..., ::-1])
        cv2.imwrite(str(root / "rgb" / "room.a" / f"{stem}_depth.png"), mm)
        cv2.imwrite(str(root / "rgb" / "room.a" / f"{stem}_valid.png"), mask)
    overrides = [
        "source=folder",
        f"source.path={root}",
        "source.image_glob=rgb/**/*.png",
        "source.image_regex='^(?P<key>.+/[^_/]+)\\.png$'",
        "source.depth_path='{dir}/{stem}_depth.png'",  # Hydra needs braces quoted
        "source.mask_path='{dir}/{stem}_valid.png'",
        "source.depth_scale=1000",
    ]
    run(cfg(tmp_path / "o", *overrides))
    got = samples_of(tmp_path / "o")
    assert list(got) == ["rgb/room_a/a", "rgb/room_a/b_1"]
    want = mm.astype(np.float32) / np.float32(1000)
    want[:2] = 0
    assert tiff(got["rgb/room_a/b_1"]["depth.tiff"]).tobytes() == want.tobytes()

    np.save(root / "rgb" / "room.a" / "a_depth.npy", want)
    overrides[4] = "source.depth_path='{dir}/{stem}_depth.npy'"
    overrides[6] = "source.depth_scale=1.0"
    run(cfg(tmp_path / "n", *overrides[:5], "source.unpaired=drop"))
    got = samples_of(tmp_path / "n")
    assert list(got) == ["rgb/room_a/a"]
    assert tiff(got["rgb/room_a/a"]["depth.tiff"]).tobytes() == want.tobytes()


def test_folder_size_mismatch_and_missing_depth_name_key_and_file(tmp_path, rng):
    root = tmp_path / "data"
    (root / "image").mkdir(parents=True)
    (root / "depth").mkdir()
    for i, shape in enumerate([(H, W), (H, W + 2), (H, W)]):
        image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "image" / f"{i}.png"), image)
        if i != 2:
            tifffile.imwrite(root / "depth" / f"{i}.tiff", np.ones(shape, np.float32))
    with pytest.raises(SampleError, match=r"sample 1: image is 16x12 but depth is 18x12.*1\.png"):
        run(cfg(tmp_path / "o", "source=folder", f"source.path={root}"))
    assert_clean_failure(tmp_path / "o")
    result = run(
        cfg(tmp_path / "s", "source=folder", f"source.path={root}", "runtime.on_error=skip")
    )
    assert list(samples_of(tmp_path / "s")) == ["0"]
    reasons = {s["key"]: s["reason"] for s in result.info.to_json()["counts"]["skipped_samples"]}
    assert "must match" in reasons["1"]
    assert "cannot read" in reasons["2"] and str(root / "depth" / "2.tiff") in reasons["2"]


def test_cli_folder_wrong_channels_is_one_line_exit_2(tmp_path, rng):
    root = tmp_path / "data"
    (root / "image").mkdir(parents=True)
    (root / "depth").mkdir()
    cv2.imwrite(str(root / "image" / "g.png"), rng.integers(0, 256, (H, W), dtype=np.uint8))
    tifffile.imwrite(root / "depth" / "g.tiff", np.ones((H, W), np.float32))
    out = tmp_path / "o"
    proc = run_cli("source=folder", f"source.path={root}", *PLAIN, f"output.dir={out}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "sample g: image shape is (12, 16)" in lines[0] and "g.png" in lines[0]
    assert_clean_failure(out)


# ---- the official NYU .mat (HDF5, transposed) -------------------------------------------


@pytest.fixture(scope="module")
def nyu_mat(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """Laid out like nyu_depth_v2_labeled.mat as h5py sees it: images (N, 3, W, H) uint8,
    depths (N, W, H) float32 (MATLAB's column-major order)."""
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (4, H, W, 3), dtype=np.uint8)
    depths = rng.uniform(0.7, 9.5, (4, H, W)).astype(np.float32)
    path = tmp_path_factory.mktemp("nyu_mat") / "nyu_depth_v2_labeled.mat"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images.transpose(0, 3, 2, 1), chunks=(1, 3, W, H))
        f.create_dataset("depths", data=depths.transpose(0, 2, 1), chunks=(1, W, H))
        f.create_dataset("rawDepths", data=np.zeros((4, W, H), np.float32))
        f.create_group("#refs#")
    return path, images, depths


def test_nyu_mat_reads_transposed_hdf5(nyu_mat, tmp_path):
    path, images, depths = nyu_mat
    out = tmp_path / "out"
    result = run(cfg(out, "source=nyu_mat", f"source.path={path}", "output.shard_size=3"))
    got = samples_of(out)
    assert [t.name for t in sorted(out.glob("*.tar"))] == ["train-000000.tar", "train-000001.tar"]
    assert list(got) == [f"train/{i:06d}" for i in range(4)]
    for i in range(4):
        fields = got[f"train/{i:06d}"]
        assert np.array_equal(png_rgb(fields["png"]), images[i])
        assert tiff(fields["depth.tiff"]).tobytes() == depths[i].tobytes()
    src = result.info.to_json()["source"]
    assert src["kind"] == "nyu_mat" and src["num_samples"] == 4 and src["fingerprint"]


def test_nyu_mat_size_check_refuses_a_too_large_crop_before_the_run(nyu_mat, tmp_path):
    path, _, _ = nyu_mat
    out = tmp_path / "crop"
    proc = run_cli("source=nyu_mat", f"source.path={path}", f"output.dir={out}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "larger than the 12x16 input" in lines[0]
    assert not out.exists()


def test_nyu_mat_wrong_dataset_name_and_not_hdf5(nyu_mat, tmp_path):
    path, _, _ = nyu_mat
    with pytest.raises(PipelineError, match=r"no dataset 'depth'.*depths, images, rawDepths"):
        run(
            cfg(
                tmp_path / "a",
                "source=nyu_mat",
                f"source.path={path}",
                "source.columns.depth=depth",
            )
        )
    fake = tmp_path / "fake.mat"
    fake.write_bytes(b"MATLAB 5.0 MAT-file")
    with pytest.raises(PipelineError, match=r"not an HDF5 \(MATLAB v7.3\) file"):
        run(cfg(tmp_path / "b", "source=nyu_mat", f"source.path={fake}"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_missing_path_is_one_line(tmp_path):
    out = tmp_path / "nopath"
    proc = run_cli("source=kitti", f"output.dir={out}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "source.path" in lines[0]
    assert not out.exists()


def test_png16_output_fed_back_reads_as_metres(tmp_path):
    """Our png16 tars carry depth_scale in each .json: fed back in as a webdataset
    source they give metres without source.depth_scale (an explicit setting is refused:
    the records say each file's scale)."""
    plain = ["augment=none", "runtime.progress=false", "report.enabled=false"]
    first = tmp_path / "png16"
    size = ["source.height=96", "source.width=128", "source.num_samples=3"]
    run(make_cfg(first, *size, *plain, "output.depth.format=png16", small=False))
    again = tmp_path / "again"
    run(make_cfg(again, "source=webdataset", f"source.path={first}", *plain, small=False))
    stored = read_tar(first / "train-000000.tar")
    rewritten = read_tar(again / "train-000000.tar")
    assert sorted(rewritten) == sorted(stored)
    for key, fields in stored.items():
        mm = np.asarray(Image.open(io.BytesIO(fields["depth.png"])))
        assert mm.dtype == np.uint16 and mm.max() > 1000  # millimetres as written
        want = (mm.astype(np.float32) / np.float32(1000)).astype(np.float32)
        assert tiff(rewritten[key]["depth.tiff"]).tobytes() == want.tobytes()
    explicit = tmp_path / "explicit"
    overrides = ["source=webdataset", f"source.path={first}", *plain]
    with pytest.raises(PipelineError, match="drop source.depth_scale"):
        run(make_cfg(explicit, *overrides, "source.depth_scale=500", small=False))
    assert not explicit.exists()
