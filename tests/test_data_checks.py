"""Nothing silently wrong: a wrong depth unit stops the run with the fix, a rule that zeroes
most of the depth stops it before writing (and a smaller share is said in the summary),
percentiles hold far beyond 80 m, and a non-physical camera or depth scale is refused
per sample naming its key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import make_cfg, run_cli
from fixtures import bts_list, folder_mm
from PIL import Image

from pipeline.run.runner import run

PLAIN = ["augment=none", "runtime.progress=false", "report.enabled=false", "runtime.workers=1"]
H, W = 48, 64


def float_folder(root: Path, depths: list[np.ndarray]) -> None:
    """``image/s{i}.png`` + ``depth/s{i}.tiff`` (float32 metres) for each depth map."""
    (root / "image").mkdir(parents=True)
    (root / "depth").mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i, depth in enumerate(depths):
        image = rng.integers(0, 256, (*depth.shape, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "image" / f"s{i}.png")
        tifffile.imwrite(root / "depth" / f"s{i}.tiff", depth.astype(np.float32))


def folder_args(src: Path, out: Path, *more: str) -> list[str]:
    return ["source=folder", f"source.path={src}", f"output.dir={out}", *PLAIN, *more]


# ---- 1. units ----------------------------------------------------------------------------


def test_millimetre_folder_read_as_metres_stops_with_the_fix(tmp_path):
    folder_mm(tmp_path / "mine", n=3)
    args = folder_args(tmp_path / "mine", tmp_path / "out", 'source.depth_path="depth/{key}.png"')
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "source (folder) sample room_000" in lines[0]
    assert "looks like millimetres: set source.depth_scale=1000" in lines[0]
    assert "runtime.checks.units=false" in lines[0]
    assert not (tmp_path / "out").exists()
    # the fix passes, and the documented key accepts the values as they are
    assert run_cli(*args, "source.depth_scale=1000").returncode == 0
    accepted = run_cli(*args[:2], f"output.dir={tmp_path / 'out2'}", *args[3:],
                       "runtime.checks.units=false")  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr


def test_indoor_range_with_millimetre_values_names_the_unit(tmp_path):
    depth = np.full((H, W), 2500.0, np.float32)  # 2.5 m written as millimetres in a TIFF
    float_folder(tmp_path / "src", [depth])
    cfg = make_cfg(tmp_path / "out", *folder_args(tmp_path / "src", tmp_path / "out")[:2],
                   *PLAIN, "source.depth.max=10", small=False)  # fmt: skip
    from pipeline.errors import PipelineError

    with pytest.raises(PipelineError, match="looks like millimetres"):
        run(cfg)


# ---- 2. no silent drops ------------------------------------------------------------------


def test_png16_overflow_stops_before_writing_with_the_share_and_the_key(tmp_path):
    depth = np.random.default_rng(0).uniform(1.0, 9.0, (100, 100)).astype(np.float32)
    depth.ravel()[:700] = 0.0  # 7% without a measurement: 93% of the pixels are measured
    float_folder(tmp_path / "src", [depth, depth])
    args = folder_args(
        tmp_path / "src", tmp_path / "out", "output.depth.format=png16", "output.depth.scale=1e9"
    )
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "93%" in proc.stderr and "output.depth.scale" in proc.stderr, proc.stderr
    assert "sample s0" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_small_drop_is_said_in_the_summary_with_the_key(tmp_path):
    depth = np.random.default_rng(1).uniform(1.0, 9.0, (H, W)).astype(np.float32)
    float_folder(tmp_path / "src", [depth, depth])
    far = (depth > 8.0).mean()  # 12.5% beyond the range
    proc = run_cli(*folder_args(tmp_path / "src", tmp_path / "out", "source.depth.max=8"))
    assert proc.returncode == 0, proc.stderr
    (line,) = [s for s in proc.stdout.splitlines() if s.startswith("note:")]
    assert "source.depth.min/max" in line and f"{far:.1%}" in line, (line, far)
    quiet = run_cli(*folder_args(tmp_path / "src", tmp_path / "out2"))
    assert "note:" not in quiet.stdout


# ---- 3. stats over the real range --------------------------------------------------------


def test_percentiles_of_far_depth_match_numpy(tmp_path):
    rng = np.random.default_rng(2)
    depths = [rng.uniform(15.0, 145.0, (H, W)).astype(np.float32) for _ in range(4)]
    float_folder(tmp_path / "src", depths)
    run(make_cfg(tmp_path / "out", *folder_args(tmp_path / "src", tmp_path / "out"), small=False))
    stats = json.loads((tmp_path / "out" / "dataset_info.json").read_text())["stats"]
    valid = np.concatenate([d.ravel() for d in depths])
    for name in ("p1", "p50", "p99"):
        expected = np.percentile(valid, float(name[1:]))
        got = stats["depth_percentiles"][name]
        assert abs(got - expected) <= 0.005 * expected, (name, got, expected)
    assert stats["depth_max"] == float(valid.max())


def test_depth_stats_merge_exactly_across_shards():
    from pipeline.dataset.stats import Stats

    rng = np.random.default_rng(3)
    image = np.zeros((100, 100, 3), np.uint8)
    parts = [np.exp(rng.uniform(-6.0, 9.0, (100, 100))).astype(np.float32) for _ in range(3)]
    whole, merged = Stats(), Stats()
    for depth in parts:
        whole.add_output(image, depth)
        one = Stats()
        one.add_output(image, depth)
        merged.merge(Stats.from_json(json.loads(json.dumps(one.to_json()))))
    assert whole.summary() == merged.summary()
    valid = np.concatenate([p.ravel() for p in parts])
    for name, got in whole.summary()["depth_percentiles"].items():
        expected = np.percentile(valid, float(name[1:]))
        assert abs(got - expected) <= 0.005 * expected, (name, got, expected)


# ---- 4. cameras and scales per sample ----------------------------------------------------


def test_zero_focal_is_refused_naming_the_sample_and_skipped_with_a_reason(tmp_path):
    bts_list(tmp_path / "nyu", n=3, focal=0.0)
    args = [
        "source=filelist",
        f"source.path={tmp_path / 'nyu' / 'train_files_with_gt.txt'}",
        f"output.dir={tmp_path / 'out'}",
        *PLAIN,
    ]
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "scene_0000/rgb_00000" in proc.stderr and "fx=0" in proc.stderr, proc.stderr
    skipped = run_cli(*args, "runtime.on_error=skip")
    assert skipped.returncode == 3, skipped.stderr
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert info["counts"]["written"] == 0 and info["counts"]["skipped"] == 3
    assert all("focal lengths must be" in r for r in info["counts"]["skipped_reasons"])


@pytest.mark.parametrize(
    ("cam_in", "scale", "says"),
    [
        ([500.0, 500.0, 31.5, 23.5], 0.0, "depth_scale 0"),
        ([500.0, float("nan"), 31.5, 23.5], 1000.0, "fy=nan"),
        ([500.0, 500.0, float("inf"), 23.5], 1000.0, "cx=inf"),
    ],
)
def test_metric3d_record_with_non_physical_values_is_refused(tmp_path, cam_in, scale, says):
    root = tmp_path / "m3d"
    root.mkdir()
    rng = np.random.default_rng(4)
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / "a.png")
    Image.fromarray(np.full((H, W), 2000, np.uint16)).save(root / "a_d.png")
    record = {"rgb": "a.png", "depth": "a_d.png", "cam_in": cam_in, "depth_scale": scale}
    (root / "list.jsonl").write_text(json.dumps(record) + "\n")
    args = ["source=filelist", f"source.path={root / 'list.jsonl'}"]
    from pipeline.errors import SampleError

    with pytest.raises(SampleError, match=says) as err:
        run(make_cfg(tmp_path / "out", *args, *PLAIN, small=False))
    assert err.value.key == "a"


# ---- 7. TIFF compressions every reader reads ---------------------------------------------


@pytest.mark.parametrize("compression", ["none", "zlib", "deflate", "lzw"])
def test_every_offered_tiff_compression_reads_back_in_opencv_pillow_and_tifffile(
    tmp_path, compression
):
    import io

    import cv2
    from conftest import read_tar

    out = tmp_path / "out"
    run(make_cfg(out, f"output.depth.compression={compression}", "output.depth.predictor=3"
                 if compression != "none" else "output.depth.predictor=1", "source.num_samples=2",
                 "report.enabled=false", "runtime.workers=1"))  # fmt: skip
    (tar,) = out.glob("*.tar")
    members = read_tar(tar)
    assert members
    for fields in members.values():
        data = fields["depth.tiff"]
        want = tifffile.imread(io.BytesIO(data))
        assert want.dtype == np.float32 and (want > 0).any()
        pil = np.asarray(Image.open(io.BytesIO(data)))
        ocv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert pil.tobytes() == want.tobytes() and ocv.tobytes() == want.tobytes()


def test_zstd_is_refused_naming_the_reader_that_cannot_read_it(tmp_path):
    proc = run_cli(f"output.dir={tmp_path / 'out'}", "output.depth.compression=zstd", *PLAIN)
    assert proc.returncode == 2
    assert "OpenCV cannot read" in proc.stderr and "zlib" in proc.stderr, proc.stderr


# ---- 6. rotation readable ----------------------------------------------------------------


def test_rotate_angle_is_recorded_as_a_number_and_drawn_in_params_png(tmp_path):
    from conftest import read_tar

    out = tmp_path / "out"
    rot = ["+augment.transforms.rot._target_=albumentations.Rotate",
           "+augment.transforms.rot.limit=30", "+augment.transforms.rot.p=1"]  # fmt: skip
    run(make_cfg(out, *rot, "source.num_samples=6", "runtime.workers=1", "report.plots=[params]"))
    angles = []
    for tar in sorted(out.glob("*.tar")):
        for fields in read_tar(tar).values():
            params = json.loads(json.loads(fields["json"])["augment"]["params"])
            readout = params["rot"]["affine"]
            assert abs(readout["scale_x"] - 1) < 1e-6 and abs(readout["shear"]) < 1e-6
            assert abs(readout["tx"]) < 1 and abs(readout["ty"]) < 1
            angles.append(readout["angle"])
    assert len(angles) == 6 and all(-30 <= a <= 30 for a in angles) and np.ptp(angles) > 1
    columns = json.loads((out / "report" / "params.json").read_text())["columns"]
    assert "rot.affine.angle" in columns, columns
    assert (out / "report" / "params.png").stat().st_size > 0


def test_affine_readout_of_albumentations_affine_matches_its_arguments():
    import albumentations as A

    from pipeline.augment.readout import affine_readout

    def readout(**kwargs):
        t = A.Affine(p=1, **kwargs)
        A.Compose([t])(image=np.zeros((48, 64, 3), np.uint8))
        return affine_readout(t.params["matrix"], t.params["shape"])

    got = readout(rotate=(20, 20), scale=(1.5, 1.5), translate_px={"x": (7, 7), "y": (-3, -3)})
    assert abs(abs(got["angle"]) - 20) < 0.01 and abs(got["scale_x"] - 1.5) < 1e-3
    assert abs(got["shear"]) < 1e-3
    assert abs(got["tx"] - 7) < 0.6 and abs(got["ty"] + 3) < 0.6
    sheared = readout(shear={"x": (10, 10), "y": (0, 0)})
    assert abs(abs(sheared["shear"]) - 10) < 0.01 and abs(sheared["angle"]) < 1e-6


# ---- 8. sparse-safe resampling -----------------------------------------------------------


def _scaled_run(tmp_path: Path, depth: np.ndarray, scale: float) -> np.ndarray:
    """``depth`` through RandomScale(scale) in a run; the written depth."""
    from conftest import read_tar

    float_folder(tmp_path / "src", [depth])
    out = tmp_path / "out"
    zoom = ["+augment.transforms.zoom._target_=pipeline.augment.transforms.RandomScale",
            "+augment.transforms.zoom.mode=scale_camera",
            f"+augment.transforms.zoom.scale_limit=[{scale},{scale}]"]  # fmt: skip
    run(make_cfg(out, *folder_args(tmp_path / "src", out), *zoom, small=False))
    (tar,) = out.glob("*.tar")
    (fields,) = read_tar(tar).values()
    return tifffile.imread(__import__("io").BytesIO(fields["depth.tiff"]))


def _kitti_like(shape=(352, 1216), share=0.06, seed=7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    depth = np.zeros(shape, np.float32)
    hit = rng.random(shape) < share
    depth[hit] = rng.uniform(2.0, 80.0, int(hit.sum()))
    return depth


def test_half_size_lidar_keeps_a_point_in_every_occupied_target_pixel(tmp_path):
    depth = _kitti_like()
    got = _scaled_run(tmp_path, depth, 0.5)
    assert got.shape == (176, 608)
    ys, xs = np.nonzero(depth)
    occupied = {
        (int(y), int(x)) for y, x in zip(np.floor((ys + 0.5) * 0.5), np.floor((xs + 0.5) * 0.5))
    }
    assert abs(np.count_nonzero(got) - len(occupied)) <= 0.01 * len(occupied)
    assert set(np.unique(got[got > 0])) <= set(np.unique(depth[depth > 0]))  # no blending


def test_upscaled_lidar_invents_no_points(tmp_path):
    depth = _kitti_like((60, 200), share=0.1)
    got = _scaled_run(tmp_path, depth, 2.0)
    assert got.shape == (120, 400)
    assert np.count_nonzero(got) == np.count_nonzero(depth)
    assert sorted(got[got > 0]) == sorted(depth[depth > 0])


def test_dense_depth_keeps_the_nearest_resize_bytes(tmp_path):
    import cv2

    depth = np.random.default_rng(8).uniform(1.0, 9.0, (60, 80)).astype(np.float32)
    got = _scaled_run(tmp_path, depth, 0.5)
    want = cv2.resize(depth, (40, 30), interpolation=cv2.INTER_NEAREST_EXACT)
    assert got.tobytes() == want.tobytes()


# ---- 5. several evaluation regions stay several ------------------------------------------


def test_eigen_and_garg_give_two_named_masks_recorded_in_json_and_card(tmp_path):
    import io

    from conftest import read_tar

    from pipeline.augment.transforms.base import REGIONS

    depth = np.random.default_rng(9).uniform(2.0, 60.0, (75, 250)).astype(np.float32)
    float_folder(tmp_path / "src", [depth])
    out = tmp_path / "out"
    regions = [
        "+augment.transforms.eigen._target_=pipeline.augment.transforms.EigenCrop",
        "+augment.transforms.eigen.dataset=kitti",
        "+augment.transforms.garg._target_=pipeline.augment.transforms.GargCrop",
    ]
    run(make_cfg(out, *folder_args(tmp_path / "src", out), *regions, small=False))
    (tar,) = out.glob("*.tar")
    (fields,) = read_tar(tar).values()
    mask = np.asarray(Image.open(io.BytesIO(fields["mask.png"])))
    params = json.loads(json.loads(fields["json"])["augment"]["params"])
    bits = {name: params[name]["mask_bit"] for name in ("eigen", "garg")}
    assert bits == {"eigen": 1, "garg": 2}
    for name, region in (("eigen", "eigen_kitti"), ("garg", "garg")):
        top, bottom, left, right = REGIONS[region]
        want = np.zeros(depth.shape, bool)
        want[int(top * 75) : int(bottom * 75), int(left * 250) : int(right * 250)] = True
        assert np.array_equal((mask & bits[name]) != 0, want), name
    assert not mask[0].any()  # above both regions: 0
    card = (out / "README.md").read_text()
    assert "eigen = bit 1" in card and "garg = bit 2" in card


def test_one_region_keeps_its_255_mask(tmp_path):
    import io

    from conftest import read_tar

    depth = np.random.default_rng(9).uniform(2.0, 60.0, (75, 250)).astype(np.float32)
    float_folder(tmp_path / "src", [depth])
    out = tmp_path / "out"
    region = ["+augment.transforms.garg._target_=pipeline.augment.transforms.GargCrop"]
    run(make_cfg(out, *folder_args(tmp_path / "src", out), *region, small=False))
    (tar,) = out.glob("*.tar")
    (fields,) = read_tar(tar).values()
    mask = np.asarray(Image.open(io.BytesIO(fields["mask.png"])))
    assert set(np.unique(mask)) == {0, 255}
    assert "mask_bit" not in json.loads(json.loads(fields["json"])["augment"]["params"])["garg"]


# ---- 9. the report -----------------------------------------------------------------------


def test_report_says_sparse_points_are_enlarged(tmp_path):
    float_folder(tmp_path / "src", [_kitti_like((60, 200), share=0.1)])
    out = tmp_path / "out"
    args = folder_args(tmp_path / "src", out)
    args = [a for a in args if a != "report.enabled=false"]
    run(make_cfg(out, *args, "report.plots=[collage]", small=False))
    page = (out / "report" / "index.html").read_text()
    assert "enlarged" in page and "its own depth range" in page


def test_report_draws_each_evaluation_region_in_its_own_colour(tmp_path):
    depth = np.random.default_rng(9).uniform(2.0, 60.0, (75, 250)).astype(np.float32)
    float_folder(tmp_path / "src", [depth, depth[::-1].copy()])
    out = tmp_path / "out"
    args = [a for a in folder_args(tmp_path / "src", out) if a != "report.enabled=false"]
    regions = [
        "+augment.transforms.eigen._target_=pipeline.augment.transforms.EigenCrop",
        "+augment.transforms.eigen.dataset=kitti",
        "+augment.transforms.garg._target_=pipeline.augment.transforms.GargCrop",
    ]
    run(make_cfg(out, *args, *regions, "report.plots=[regions]", small=False))
    picture = out / "report" / "regions.png"
    pixels = np.asarray(Image.open(picture).convert("RGB")).reshape(-1, 3)
    from pipeline.report.collages import REGION_COLORS

    colours = {tuple(int(v) for v in c) for c in np.unique(pixels, axis=0)}
    assert REGION_COLORS["red"] in colours and REGION_COLORS["blue"] in colours  # outlines
    page = (out / "report" / "index.html").read_text()
    assert "regions.png" in page
    assert "eigen (red, bit 1)" in page and "garg (blue, bit 2)" in page


def test_no_regions_picture_without_a_mask(tmp_path):
    float_folder(tmp_path / "src", [np.full((40, 60), 3.0, np.float32)])
    out = tmp_path / "out"
    args = [a for a in folder_args(tmp_path / "src", out) if a != "report.enabled=false"]
    run(make_cfg(out, *args, "report.plots=[regions,collage]", small=False))
    assert (out / "report" / "collage.png").exists()
    assert not (out / "report" / "regions.png").exists()
    assert "regions.png" not in (out / "report" / "index.html").read_text()


def test_regions_picture_reads_the_folder_layout_mask_too(tmp_path):
    depth = np.random.default_rng(9).uniform(2.0, 60.0, (75, 250)).astype(np.float32)
    float_folder(tmp_path / "src", [depth])
    out = tmp_path / "out"
    args = [a for a in folder_args(tmp_path / "src", out) if a != "report.enabled=false"]
    region = [
        "+augment.transforms.garg._target_=pipeline.augment.transforms.GargCrop",
        "output=folder",
    ]
    run(make_cfg(out, *args, *region, "report.plots=[regions]", small=False))
    assert (out / "mask" / "s0.png").exists()
    assert (out / "report" / "regions.png").exists()
    assert "garg (red, bit 255)" in (out / "report" / "index.html").read_text()
