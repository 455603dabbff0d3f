"""The public metric-depth datasets as presets (``source=<name> augment=none``): tiny trees
in each dataset's own layout (``public_trees``) read back from the written tars with the
standard library and tifffile: depth equal to the known planar depth in metres (exact for
integer encodings, float32 rounding for conversions), the known camera, keys keeping
scene and frame; missing files and wrong layouts are one line naming the file expected."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import make_cfg, read_tar, run_cli
from public_trees import (
    cityscapes_tree,
    diode_tree,
    hypersim_tree,
    scannet_tree,
    sunrgbd_tree,
    vkitti2_tree,
)

from pipeline.run.runner import run

PLAIN = ["augment=none", "runtime.progress=false", "report.enabled=false", "runtime.workers=1"]


def written(out: Path) -> dict[str, tuple[np.ndarray, dict, tuple[int, ...]]]:
    """{key: (depth, json record, image shape)} from the tars."""
    import cv2

    found = {}
    for tar in sorted(out.glob("*.tar")):
        for key, fields in read_tar(tar).items():
            depth = tifffile.imread(io.BytesIO(fields["depth.tiff"]))
            image = cv2.imdecode(np.frombuffer(fields["png"], np.uint8), cv2.IMREAD_COLOR)
            found[key] = (depth, json.loads(fields["json"]), image.shape)
    return found


def check(out: Path, truth: dict, exact: bool) -> None:
    got = written(out)
    assert sorted(got) == sorted(truth)
    for key, want in truth.items():
        depth, record, shape = got[key]
        assert depth.dtype == np.float32 and shape[:2] == want.image_shape
        if exact:
            assert np.array_equal(depth, want.depth), key
        else:
            assert np.allclose(depth, want.depth, rtol=2e-7, atol=0), key
            assert np.array_equal(depth == 0, want.depth == 0), key
        camera = record["camera"]
        values = [camera[k] for k in ("fx", "fy", "cx", "cy")]
        assert camera["approximate"] is want.approximate, key
        if want.approximate:  # a tilted image plane: the pinhole fit's focal lengths
            assert np.allclose(values[:2], want.camera[:2], rtol=0.02), key
        else:
            assert np.allclose(values, want.camera, rtol=1e-9), key


def go(out: Path, *overrides: str) -> None:
    run(make_cfg(out, *PLAIN, *overrides, small=False))


@pytest.mark.parametrize("tilt", [False, True], ids=["standard", "tilt-shift"])
def test_hypersim_distance_becomes_planar_depth_along_each_scenes_rays(tmp_path, tilt):
    truth = hypersim_tree(tmp_path / "hs", seed=1, tilt_scene=tilt)
    go(tmp_path / "out", "source=hypersim", f"source.path={tmp_path}/hs")
    check(tmp_path / "out", truth, exact=False)
    info = json.loads((tmp_path / "out/dataset_info.json").read_text())
    assert info["source"]["camera_csv"] == (
        str(tmp_path / "hs/metadata_camera_parameters.csv") if tilt else None
    )


def test_hypersim_without_the_camera_file_says_tilt_shift_scenes_are_approximate(tmp_path):
    hypersim_tree(tmp_path / "hs", seed=1, tilt_scene=False)
    proc = run_cli(
        "source=hypersim", f"source.path={tmp_path}/hs", *PLAIN, f"output.dir={tmp_path}/o"
    )
    assert proc.returncode == 0, proc.stderr
    assert "tilt-shift scenes are then approximate" in proc.stdout + proc.stderr


def test_hypersim_split_csv_picks_the_authors_partition(tmp_path):
    truth = hypersim_tree(tmp_path / "hs", seed=1, tilt_scene=False)
    rows = [
        "scene_name,camera_name,frame_id,included_in_public_release,exclude_reason,"
        "split_partition_name"
    ]
    rows += [
        "ai_001_001,cam_00,0,True,,train",
        "ai_001_001,cam_00,1,True,,val",
        "ai_001_002,cam_00,0,False,bad,train",
        "ai_001_002,cam_00,1,True,,train",
    ]
    (tmp_path / "split.csv").write_text("\n".join(rows) + "\n")
    go(
        tmp_path / "out",
        "source=hypersim",
        f"source.path={tmp_path}/hs",
        f"source.split_csv={tmp_path}/split.csv",
    )
    keep = ["ai_001_001/cam_00/0000", "ai_001_002/cam_00/0001"]
    check(tmp_path / "out", {k: truth[k] for k in keep}, exact=False)


def test_vkitti2_centimetres_sky_and_per_frame_cameras_from_separate_roots(tmp_path):
    truth = vkitti2_tree(tmp_path / "rgb", tmp_path / "depth", tmp_path / "text", seed=2)
    go(
        tmp_path / "out",
        "source=vkitti2",
        f"source.path={tmp_path}/rgb",
        f"source.depth_root={tmp_path}/depth",
        f"source.text_root={tmp_path}/text",
    )
    check(tmp_path / "out", truth, exact=True)


def test_diode_metres_and_the_validity_mask(tmp_path):
    truth = diode_tree(tmp_path / "diode", seed=3)
    go(tmp_path / "out", "source=diode", f"source.path={tmp_path}/diode", "source.split=val")
    check(tmp_path / "out", truth, exact=True)
    go(
        tmp_path / "in",
        "source=diode",
        f"source.path={tmp_path}/diode",
        "source.split=val",
        "source.scene_type=indoors",
    )
    assert list(written(tmp_path / "in")) == [k for k in truth if "/indoors/" in k]


def test_sunrgbd_depth_is_unrotated_by_three_bits_then_millimetres(tmp_path):
    truth = sunrgbd_tree(tmp_path / "sun", seed=4)
    go(tmp_path / "out", "source=sunrgbd", f"source.path={tmp_path}/sun")
    check(tmp_path / "out", truth, exact=True)


def test_sunrgbd_official_split_from_the_toolboxs_allsplit_mat(tmp_path):
    import scipy.io

    truth = sunrgbd_tree(tmp_path / "sun", seed=4)
    cells = np.empty((1, 1), dtype=object)
    cells[0, 0] = "/n/fs/sun3d/data/SUNRGBD/xtion/sun3ddata/x/y/z/"
    other = np.empty((1, 1), dtype=object)
    other[0, 0] = "/n/fs/sun3d/data/SUNRGBD/kv1/NYUdata/NYU0001"
    scipy.io.savemat(tmp_path / "allsplit.mat", {"alltrain": other, "alltest": cells})
    go(
        tmp_path / "out",
        "source=sunrgbd",
        f"source.path={tmp_path}/sun",
        f"source.splits={tmp_path}/allsplit.mat",
        "source.split=test",
    )
    check(tmp_path / "out", {"xtion/sun3ddata/x/y/z": truth["xtion/sun3ddata/x/y/z"]}, exact=True)


def test_cityscapes_depth_from_disparity_baseline_and_focal(tmp_path):
    truth = cityscapes_tree(tmp_path / "cs", seed=5)
    go(tmp_path / "out", "source=cityscapes", f"source.path={tmp_path}/cs", "source.split=val")
    check(tmp_path / "out", truth, exact=False)


def test_scannet_image_resized_to_the_depth_map_and_the_camera_follows(tmp_path):
    truth = scannet_tree(tmp_path / "sn", seed=6)
    go(tmp_path / "out", "source=scannet", f"source.path={tmp_path}/sn")
    check(tmp_path / "out", truth, exact=True)
    (tmp_path / "train.txt").write_text("scene0001_01\n")
    go(
        tmp_path / "one",
        "source=scannet",
        f"source.path={tmp_path}/sn",
        f"source.scenes={tmp_path}/train.txt",
    )
    assert sorted(written(tmp_path / "one")) == ["scene0001_01/000000", "scene0001_01/000010"]


def test_hypersim_and_vkitti2_as_mixture_parts(tmp_path):
    hs = hypersim_tree(tmp_path / "hs", seed=1, tilt_scene=True)
    vk = vkitti2_tree(tmp_path / "vk", tmp_path / "vk", tmp_path / "vk", seed=2)
    go(
        tmp_path / "out",
        "source=mix",
        "+source@source.parts.hypersim.source=hypersim",
        f"source.parts.hypersim.source.path={tmp_path}/hs",
        "+source@source.parts.vkitti2.source=vkitti2",
        f"source.parts.vkitti2.source.path={tmp_path}/vk",
    )
    got = written(tmp_path / "out")
    assert sorted(k.split("/", 1)[1] for k in got) == sorted([*hs, *vk])
    assert {r["dataset"] for _, r, _ in got.values()} == {"hypersim", "vkitti2"}


@pytest.mark.parametrize(
    ("name", "build", "remove", "words"),
    [
        (
            "hypersim",
            lambda p: hypersim_tree(p, 1, False),
            "ai_001_001/images/scene_cam_00_geometry_hdf5/frame.0000.depth_meters.hdf5",
            "expected frame.0000.depth_meters.hdf5 at ",
        ),
        (
            "vkitti2",
            lambda p: vkitti2_tree(p, p, p, 2),
            "Scene01/clone/intrinsic.txt",
            "expected intrinsic.txt at ",
        ),
        (
            "cityscapes",
            lambda p: cityscapes_tree(p, 5),
            "camera/val/aachen/aachen_000000_000019_camera.json",
            "expected aachen_000000_000019_camera.json at ",
        ),
        ("scannet", lambda p: scannet_tree(p, 6), "scene0000_00/depth/0.png", "expected 0.png at "),
    ],
)
def test_a_missing_file_is_one_line_naming_it_and_where(tmp_path, name, build, remove, words):
    build(tmp_path / "d")
    (tmp_path / "d" / remove).unlink()
    extra = ["source.split=val"] if name == "cityscapes" else []
    proc = run_cli(
        f"source={name}", f"source.path={tmp_path}/d", *extra, *PLAIN, f"output.dir={tmp_path}/o"
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert words + str(tmp_path / "d" / remove) in lines[0]
    assert not (tmp_path / "o").exists()


def test_a_tree_in_another_layout_names_the_layout_expected(tmp_path):
    (tmp_path / "d" / "images").mkdir(parents=True)
    proc = run_cli("source=diode", f"source.path={tmp_path}/d", *PLAIN, f"output.dir={tmp_path}/o")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "no DIODE frame under source.path=" in lines[0]
    assert "_depth_mask.npy" in lines[0]
