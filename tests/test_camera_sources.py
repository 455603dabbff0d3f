"""Every source fills the camera, and every output carries it: KITTI's per-date
calibration in the official layout, the NYU presets' official camera, a webdataset
``.json`` (this tool's own or a plain one), hub columns, a folder's camera files; the
written ``.json``, the manifests, a ``datasets`` column and the report."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import make_cfg, read_tar
from kitti_calib import DATES, write_calib

from pipeline.config.schema import to_config
from pipeline.errors import SampleError
from pipeline.run.runner import run
from pipeline.sources.synthetic import camera as renderer_camera

PLAIN = ["augment=none", "runtime.progress=false", "report.enabled=false", "runtime.workers=1"]
H, W = 12, 16


def cfg(out: Path, *overrides: str):
    return make_cfg(out, *PLAIN, *overrides, small=False)


def cameras_of(out: Path) -> dict[str, dict[str, object]]:
    """{key: camera object} from the written tars' .json members (standard library)."""
    found = {}
    for tar in sorted(out.glob("*.tar")):
        for key, fields in read_tar(tar).items():
            found[key] = json.loads(fields["json"])["camera"]
    return found


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


def tiff(depth: np.ndarray) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, depth)
    return buf.getvalue()


# ---- KITTI --------------------------------------------------------------------------


def _kitti(root: Path, rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """Two recording days, both cameras, the official layout; returns (key, date, cam)."""
    keys = []
    for date in DATES:
        write_calib(root, date)
        drive = f"{date}_drive_0001_sync"
        for cam in ("image_02", "image_03"):
            raw = root / date / drive / cam / "data"
            gt = root / "data_depth_annotated/train" / drive / "proj_depth/groundtruth" / cam
            raw.mkdir(parents=True)
            gt.mkdir(parents=True)
            for frame in (5, 6):
                name = f"{frame:010d}.png"
                cv2.imwrite(str(raw / name), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
                cv2.imwrite(str(gt / name), rng.integers(1, 80 * 256, (H, W), dtype=np.uint16))
                keys.append((f"{date}/{drive}/{cam}/data/{frame:010d}", date, cam))
    return keys


def test_kitti_preset_reads_each_days_calibration(tmp_path, rng):
    keys = _kitti(tmp_path / "kitti", rng)
    out = tmp_path / "out"
    run(cfg(out, "source=kitti", f"source.path={tmp_path}/kitti"))
    got = cameras_of(out)
    assert sorted(got) == sorted(k for k, _, _ in keys)
    for key, date, _cam in keys:
        f, cx, cy = DATES[date][:3]  # P_rect_02 and P_rect_03 share K; their t differs
        assert got[key] == {
            "fx": f,
            "fy": f,
            "cx": cx,
            "cy": cy,
            "approximate": False,
            "homography": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        }
    assert {got[k]["fx"] for k, _, _ in keys} == {721.5377, 707.0912}


def test_kitti_with_the_benchmark_crop_moves_the_principal_point(tmp_path, rng):
    root = tmp_path / "kitti"
    _kitti(root, rng)
    out = tmp_path / "out"
    run(
        cfg(
            out,
            "source=kitti",
            f"source.path={root}",
            "+augment.transforms.kb._target_=pipeline.augment.transforms.KBCrop",
            "+augment.transforms.kb.height=8",
            "+augment.transforms.kb.width=10",
        )
    )
    top, left = H - 8, int((W - 10) / 2)
    for key, camera in cameras_of(out).items():
        f, cx, cy = DATES[key.split("/")[0]][:3]
        assert (camera["cx"], camera["cy"]) == (cx - left, cy - top)


def test_missing_or_bad_calibration_is_a_sample_error_naming_the_file(tmp_path, rng):
    root = tmp_path / "kitti"
    _kitti(root, rng)
    (root / "2011_09_30" / "calib_cam_to_cam.txt").unlink()
    with pytest.raises(SampleError, match="2011_09_30/calib_cam_to_cam.txt"):
        run(cfg(tmp_path / "out", "source=kitti", f"source.path={root}"))
    (root / "2011_09_30" / "calib_cam_to_cam.txt").write_text("P_rect_02: 1 2 3\n")
    with pytest.raises(SampleError, match="3 numbers"):
        run(cfg(tmp_path / "out2", "source=kitti", f"source.path={root}"))
    # without calibration files at all: source.camera_path=null, the camera is unknown
    out = tmp_path / "out3"
    run(cfg(out, "source=kitti", f"source.path={root}", "source.camera_path=null"))
    assert {c["fx"] for c in cameras_of(out).values()} == {None}


# ---- NYU presets, synthetic, constants ------------------------------------------------


@pytest.mark.parametrize("preset", ["nyu", "nyu_mat"])
def test_nyu_presets_carry_the_official_camera(tmp_path, preset):
    config = to_config(cfg(tmp_path, f"source={preset}", "source.path=x"))
    camera = config.source.fixed_camera(480, 640)
    assert camera.to_json() == {"fx": 518.8579, "fy": 519.4696, "cx": 325.5824, "cy": 253.7362}


def test_synthetic_camera_and_constants_are_written(tmp_path):
    out = tmp_path / "out"
    run(cfg(out, "source.height=24", "source.width=32", "source.num_samples=2"))
    want = renderer_camera(24, 32)
    assert all(c["fx"] == want.fx and c["cx"] == 15.5 for c in cameras_of(out).values())


# ---- webdataset ---------------------------------------------------------------------


def _tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_webdataset_reads_the_camera_of_its_json(tmp_path, rng):
    image, depth = rng.integers(0, 256, (H, W, 3), dtype=np.uint8), np.ones((H, W), np.float32)
    own = {"key": "a", "camera": {"fx": 50.0, "fy": 51.0, "cx": 7.0, "cy": 5.0, "homography": None}}
    members = [
        ("a.png", png(image)),
        ("a.depth.tiff", tiff(depth)),
        ("a.json", json.dumps(own).encode()),
        ("b.png", png(image)),
        ("b.depth.tiff", tiff(depth)),
        ("b.json", json.dumps({"fx": 40.0}).encode()),  # a plain object: centre, fy = fx
        ("c.png", png(image)),
        ("c.depth.tiff", tiff(depth)),  # no .json: unknown
        ("d.png", png(image)),
        ("d.depth.tiff", tiff(depth)),
        ("d.json", json.dumps({"cam_in": [30.0, 31.0, 8.0, 6.0]}).encode()),  # Metric3D
        ("e.png", png(image)),
        ("e.depth.tiff", tiff(depth)),
        ("e.json", json.dumps({"camera": {"fx": "wide"}}).encode()),  # unreadable
        ("f.png", png(image)),
        ("f.depth.tiff", tiff(depth)),
        ("f.json", json.dumps([1, 2, 3]).encode()),  # someone else's annotation: no camera
    ]
    _tar(tmp_path / "in.tar", members)
    out = tmp_path / "out"
    result = run(
        cfg(out, "source=webdataset", f"source.path={tmp_path}/in.tar", "runtime.on_error=skip")
    )
    got = {k: [c[n] for n in ("fx", "fy", "cx", "cy")] for k, c in cameras_of(out).items()}
    assert got == {
        "a": [50.0, 51.0, 7.0, 5.0],
        "b": [40.0, 40.0, 7.5, 5.5],
        "c": [None] * 4,
        "d": [30.0, 31.0, 8.0, 6.0],
        "f": [None] * 4,
    }
    (skip,) = result.info.to_json()["counts"]["skipped_samples"]
    assert skip["key"] == "e" and "in.tar:e.json" in skip["reason"]


def test_this_tools_output_fed_back_keeps_its_tracked_camera(tmp_path):
    first = tmp_path / "first"
    run(
        make_cfg(
            first,
            *PLAIN[1:],
            "source.height=48",
            "source.width=64",
            "source.num_samples=3",
            "augment=none",
            "+augment.transforms.crop._target_=albumentations.Crop",
            "+augment.transforms.crop.x_min=10",
            "+augment.transforms.crop.y_min=4",
            "+augment.transforms.crop.x_max=60",
            "+augment.transforms.crop.y_max=40",
            small=False,
        )
    )
    written = cameras_of(first)
    assert {c["cx"] for c in written.values()} == {31.5 - 10}
    again = tmp_path / "again"
    run(cfg(again, "source=webdataset", f"source.path={first}"))
    fed = cameras_of(again)
    assert [fed[k]["fx"] for k in sorted(fed)] == [written[k]["fx"] for k in sorted(written)]
    assert {c["cx"] for c in fed.values()} == {21.5} and {c["cy"] for c in fed.values()} == {19.5}


# ---- hub ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "extra", "want"),
    [
        ("focal", {"focal": [60.0, 61.0]}, [[60.0, 60.0, 7.5, 5.5], [61.0, 61.0, 7.5, 5.5]]),
        (
            "fx,fy,cx,cy",
            {"fx": [60.0, 61.0], "fy": [62.0, 63.0], "cx": [7.0, 7.1], "cy": [5.0, 5.1]},
            [[60.0, 62.0, 7.0, 5.0], [61.0, 63.0, 7.1, 5.1]],
        ),
        (
            "K",
            {"K": [[[60.0, 0, 7.0], [0, 62.0, 5.0], [0, 0, 1]]] * 2},
            [[60.0, 62.0, 7.0, 5.0]] * 2,
        ),
    ],
)
def test_hub_reads_camera_columns(tmp_path, rng, columns, extra, want):
    import datasets

    images = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(2)]
    depths = [np.full((H, W), 2.0, np.float32) for _ in range(2)]
    data = {"image": [png(i) for i in images], "depth_map": [tiff(d) for d in depths], **extra}
    root = tmp_path / "hub"
    root.mkdir()
    datasets.Dataset.from_dict(data).to_parquet(str(root / "train.parquet"))
    out = tmp_path / "out"
    run(cfg(out, "source=hub", f"source.path={root}", f"source.columns.camera='{columns}'"))
    got = cameras_of(out)
    assert [[got[k][n] for n in ("fx", "fy", "cx", "cy")] for k in sorted(got)] == want


# ---- folder -------------------------------------------------------------------------


def test_folder_reads_a_json_camera_file_per_sample(tmp_path, rng):
    root = tmp_path / "data"
    for sub in ("image", "depth", "cam"):
        (root / sub).mkdir(parents=True)
    for i, camera in enumerate(({"fx": 20.0, "cx": 3.0}, [21.0, 22.0, 4.0, 5.0])):
        cv2.imwrite(str(root / "image" / f"s{i}.png"), rng.integers(0, 256, (H, W, 3), np.uint8))
        (root / "depth" / f"s{i}.tiff").write_bytes(tiff(np.ones((H, W), np.float32)))
        (root / "cam" / f"s{i}.json").write_text(json.dumps(camera))
    out = tmp_path / "out"
    run(cfg(out, "source=folder", f"source.path={root}", 'source.camera_path="cam/{key}.json"'))
    got = cameras_of(out)
    assert [got["s0"][n] for n in ("fx", "fy", "cx", "cy")] == [20.0, 20.0, 3.0, 5.5]
    assert [got["s1"][n] for n in ("fx", "fy", "cx", "cy")] == [21.0, 22.0, 4.0, 5.0]


# ---- outputs: datasets column, manifests, report ---------------------------------------


def test_camera_is_a_datasets_column_and_the_report_shows_and_warns(tmp_path):
    import datasets

    out = tmp_path / "out"
    run(
        make_cfg(
            out,
            "source.num_samples=6",
            "runtime.workers=1",
            "+augment.transforms.rrc._target_=albumentations.RandomResizedCrop",
            "+augment.transforms.rrc.size=[40,60]",
            "+augment.transforms.rrc.before=crop",
            "augment.transforms.crop.height=32",
            "augment.transforms.crop.width=48",
            "report.plots=[camera]",
        )
    )
    written = cameras_of(out)
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert len(ds) == 6
    for row in ds:
        camera, want = row["json"]["camera"], written[row["__key__"]]
        assert camera == want  # float64 through Arrow: the same numbers
        assert len(camera["homography"]) == 9 and camera["approximate"] is False
    manifest = json.loads(next((out / "manifests").glob("*.json")).read_text())
    assert manifest["samples"][0]["camera"] == written[manifest["samples"][0]["key"]]
    assert (out / "report" / "camera.png").stat().st_size > 1000
    page = (out / "report" / "index.html").read_text()
    assert "rescaled non-uniformly" in page and "focal lengths (fx" in page


def test_report_warns_when_a_source_without_camera_is_rescaled(tmp_path, rng):
    root = tmp_path / "data"
    (root / "image").mkdir(parents=True)
    (root / "depth").mkdir()
    for i in range(3):
        cv2.imwrite(str(root / "image" / f"s{i}.png"), rng.integers(0, 256, (24, 32, 3), np.uint8))
        (root / "depth" / f"s{i}.tiff").write_bytes(tiff(np.ones((24, 32), np.float32)))
    out = tmp_path / "out"
    run(
        make_cfg(
            out,
            "source=folder",
            f"source.path={root}",
            "augment=none",
            "runtime.workers=1",
            "runtime.progress=false",
            "+augment.transforms.half._target_=albumentations.Resize",
            "+augment.transforms.half.height=12",
            "+augment.transforms.half.width=16",
            small=False,
        )
    )
    page = (out / "report" / "index.html").read_text()
    assert "3 of 3 samples were rescaled (x 0.50-0.50) but the source has no camera" in page
    assert all(c["fx"] is None for c in cameras_of(out).values())


@pytest.mark.parametrize("fmt", ["webdataset", "folder"])
def test_evaluation_region_is_written_as_a_mask_member(tmp_path, fmt):
    from PIL import Image

    out = tmp_path / "out"
    run(
        make_cfg(
            out,
            "source.num_samples=2",
            "source.height=48",
            "source.width=64",
            "augment=none",
            f"output={fmt}",
            "runtime.workers=1",
            "report.enabled=false",
            "+augment.transforms.eigen._target_=pipeline.augment.transforms.EigenCrop",
            "+augment.transforms.eigen.dataset=nyu",
            small=False,
        )
    )
    want = np.zeros((48, 64), bool)
    want[int(45 / 480 * 48) : int(471 / 480 * 48), int(41 / 640 * 64) : int(601 / 640 * 64)] = True
    if fmt == "folder":
        masks = [np.array(Image.open(p)) for p in sorted((out / "mask" / "train").glob("*.png"))]
    else:
        fields = read_tar(out / "train-000000.tar")
        masks = [np.array(Image.open(io.BytesIO(f["mask.png"]))) for f in fields.values()]
    assert len(masks) == 2
    assert all(np.array_equal(m == 255, want) and set(np.unique(m)) == {0, 255} for m in masks)


def test_strict_camera_refusal_is_one_line_before_any_work(tmp_path):
    from conftest import run_cli

    out = tmp_path / "out"
    proc = run_cli(
        f"output.dir={out}",
        "augment.camera=strict",
        "+augment.transforms.rot._target_=albumentations.Rotate",
        "+augment.transforms.rot.limit=10",
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "augment.camera=strict" in lines[0]
    assert "augment.transforms.rot" in lines[0] and not out.exists()
