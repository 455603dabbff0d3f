"""One meaning of ``depth_scale`` on sources, the trainers': stored value / depth_scale =
metres (millimetre PNGs 1000, KITTI 256), and the old multiplying spelling (a value below 1
on integer depth) stopped before anything is written, with the value to write instead."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import make_cfg, read_tar, run_cli
from fixtures import folder_mm, kitti_tree
from PIL import Image

from pipeline.run.runner import run

PLAIN = ["augment=none", "runtime.progress=false", "report.enabled=false", "runtime.workers=1"]
FOLDER = ["source=folder", "source.depth_path='depth/{key}.png'"]
MEANING = "stored value / depth_scale = metres, as in the written records and Metric3D/KITTI lists"


def written_depth(out: Path) -> dict[str, np.ndarray]:
    """Every sample's written float TIFF depth, read back with tifffile."""
    got = {}
    for tar in sorted(out.glob("*.tar")):
        for key, fields in read_tar(tar).items():
            got[key] = tifffile.imread(io.BytesIO(fields["depth.tiff"]))
    return got


def test_millimetre_pngs_at_1000_and_kitti_pngs_at_256_are_written_in_metres(tmp_path):
    mm = folder_mm(tmp_path / "mine", n=2)
    run(make_cfg(tmp_path / "mm", *FOLDER, f"source.path={tmp_path / 'mine'}",
                 "source.depth_scale=1000", *PLAIN, small=False))  # fmt: skip
    got = written_depth(tmp_path / "mm")
    assert sorted(got) == sorted(mm)
    for key, (_, metres) in mm.items():  # the fixture's stored millimetres / 1000
        assert got[key].tobytes() == metres.tobytes()
        assert 0.1 < float(np.median(got[key][got[key] > 0])) < 80
    kitti = kitti_tree(tmp_path / "kitti", frames=2)
    # the preset says depth_scale: 256 (KITTI's own convention)
    run(make_cfg(tmp_path / "k", "source=kitti", f"source.path={tmp_path / 'kitti'}", *PLAIN,
                 small=False))  # fmt: skip
    got = written_depth(tmp_path / "k")
    assert sorted(got) == sorted(kitti) and len(got) == 2
    for key, (_, metres) in kitti.items():  # stored x256 PNG / 256
        assert got[key].tobytes() == metres.tobytes()


@pytest.mark.parametrize(("old", "new"), [("0.001", "1000"), ("0.00390625", "256")])
def test_the_old_multiplying_scale_on_integer_depth_stops_with_how_to_write_it(tmp_path, old, new):
    folder_mm(tmp_path / "mine", n=2)
    out = tmp_path / "out"
    args = [*FOLDER, f"source.path={tmp_path / 'mine'}", f"output.dir={out}", *PLAIN]
    # not a units heuristic: accepting the units or any drop does not let it through
    for more in ([], ["runtime.checks.units=false", "runtime.checks.max_dropped=1"]):
        proc = run_cli(*args, f"source.depth_scale={old}", *more)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            f"error: source (folder) sample room_000: source.depth_scale={old} is below 1 on "
            f"integer depth (uint16): depth_scale now divides ({MEANING}); write "
            f"source.depth_scale={new}"
        ]
        assert not out.exists()


def test_a_mixture_part_with_the_old_scale_is_named_by_its_key(tmp_path):
    folder_mm(tmp_path / "mine", n=2)
    kitti_tree(tmp_path / "kitti", frames=2)
    at = "source.parts.mm.source"
    proc = run_cli(
        "source=mix", f"+source@{at}=folder", f"{at}.path={tmp_path / 'mine'}",
        f"{at}.depth_path='depth/{{key}}.png'", f"{at}.depth_scale=0.001",
        "+source@source.parts.k.source=kitti", f"source.parts.k.source.path={tmp_path / 'kitti'}",
        f"output.dir={tmp_path / 'out'}", *PLAIN,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: source.parts.mm (folder) sample mm/room_")
    assert f"{at}.depth_scale=0.001 is below 1 on integer depth (uint16)" in line
    assert line.endswith(f"; write {at}.depth_scale=1000")
    assert not (tmp_path / "out").exists()


def metric3d(root: Path, records: list[dict]) -> dict[str, np.ndarray]:
    """A Metric3D ``list.jsonl`` over uint16 depth PNGs; the stored values by key."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(8)
    stored = {}
    for i, record in enumerate(records):
        depth = rng.integers(500, 20000, (48, 64), dtype=np.uint16)
        image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / f"r{i}.png")
        Image.fromarray(depth).save(root / f"r{i}_d.png")
        record.update(rgb=f"r{i}.png", depth=f"r{i}_d.png", cam_in=[60.0, 60.0, 31.5, 23.5])
        stored[f"r{i}"] = depth
    (root / "list.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return stored


def test_metric3d_records_divide_by_their_own_scale_else_source_depth_scale(tmp_path):
    stored = metric3d(tmp_path / "m3d", [{"depth_scale": 1000}, {}])
    listed = ["source=filelist", f"source.path={tmp_path / 'm3d' / 'list.jsonl'}"]
    run(make_cfg(tmp_path / "out", *listed, "source.depth_scale=256", *PLAIN, small=False))
    got = written_depth(tmp_path / "out")
    assert got["r0"].tobytes() == (stored["r0"] / np.float32(1000)).astype(np.float32).tobytes()
    assert got["r1"].tobytes() == (stored["r1"] / np.float32(256)).astype(np.float32).tobytes()
    # the old spelling of a list's default stops before anything is written
    proc = run_cli(*listed, "source.depth_scale=0.00390625", f"output.dir={tmp_path / 'o'}", *PLAIN)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "sample r1: source.depth_scale=0.00390625 is below 1 on integer depth" in line
    assert line.endswith("write source.depth_scale=256")
    assert not (tmp_path / "o").exists()


def test_float_depth_divides_by_a_scale_below_1_too(tmp_path):
    """Below 1 is the old spelling only on integer depth: float depth is divided as said."""
    (tmp_path / "f" / "image").mkdir(parents=True)
    (tmp_path / "f" / "depth").mkdir()
    depth = np.linspace(0.5, 4.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / "f" / "image" / "a.png")
    tifffile.imwrite(tmp_path / "f" / "depth" / "a.tiff", depth)
    run(make_cfg(tmp_path / "out", "source=folder", f"source.path={tmp_path / 'f'}",
                 "source.depth_path='depth/{key}.tiff'", "source.depth_scale=0.5", *PLAIN,
                 small=False))  # fmt: skip
    assert written_depth(tmp_path / "out")["a"].tobytes() == (depth / np.float32(0.5)).tobytes()
