"""The folder source as a newcomer meets it: other image formats (WebP, BMP ...) are
read, a glob or regex that finds nothing says what it looked for and where, and frames
dropped for lack of a depth file are said in the run's summary."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from conftest import make_cfg, read_tar, run_cli
from PIL import Image

from pipeline.errors import PipelineError
from pipeline.run.runner import run

H, W = 12, 16
PLAIN = ["augment=none", "runtime.progress=false", "report.enabled=false", "runtime.workers=1"]


def folder(root: Path, images: dict[str, np.ndarray], depth_for: list[str]) -> None:
    """``image/<name>`` (any extension, RGB arrays) and ``depth/<stem>.tiff`` for some."""
    for d in ("image", "depth"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for name, rgb in images.items():
        lossless = {"lossless": True} if name.endswith(".webp") else {}
        Image.fromarray(rgb).save(root / "image" / name, **lossless)
    for stem in depth_for:
        depth = np.full((H, W), 1.5, np.float32)
        tifffile.imwrite(root / "depth" / f"{stem}.tiff", depth)


def test_webp_bmp_and_other_image_formats_are_read_pixel_exact(tmp_path, rng):
    images = {
        f"{stem}.{ext}": rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        for stem, ext in [("a", "webp"), ("b", "bmp"), ("c", "ppm"), ("d", "png")]
    }
    folder(tmp_path / "src", images, ["a", "b", "c", "d"])
    out = tmp_path / "out"
    args = ["source=folder", f"source.path={tmp_path / 'src'}", "source.image_glob=image/*"]
    result = run(make_cfg(out, *PLAIN, *args, small=False))
    assert (result.written, result.skipped) == (4, 0)
    got = read_tar(out / "train-000000.tar")
    for name, rgb in images.items():
        png = got[name.rsplit(".", 1)[0]]["png"]
        assert np.array_equal(np.array(Image.open(io.BytesIO(png)).convert("RGB")), rgb), name


def test_a_glob_matching_nothing_names_the_glob_the_dir_and_what_is_there(tmp_path, rng):
    images = {"a.jpg": rng.integers(0, 256, (H, W, 3), dtype=np.uint8)}
    folder(tmp_path / "src", images, ["a"])
    out = tmp_path / "out"
    with pytest.raises(PipelineError) as exc:
        run(make_cfg(out, *PLAIN, "source=folder", f"source.path={tmp_path / 'src'}", small=False))
    line = str(exc.value)
    assert line.startswith("source.image_glob='image/**/*.png' matches no file"), line
    assert f"source.path={tmp_path / 'src'}" in line and "1 .jpg (e.g. image/a.jpg)" in line
    assert "num_samples" not in line and "\n" not in line
    assert not out.exists()


@pytest.mark.parametrize(
    "override, words",
    [
        ("source.image_regex=zzz", "source.image_regex='zzz' matches none of the 2 image(s)"),
        ("source.unpaired=drop", "none of the 2 image(s)"),
        ("source.image_glob=depth/*", "source.image_glob='depth/*' matches 1 file(s)"),
    ],
)
def test_nothing_left_to_read_says_why(tmp_path, rng, override, words):
    images = {n: rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for n in ("a.png", "b.png")}
    folder(tmp_path / "src", images, [])
    (tmp_path / "src" / "depth" / "notes.txt").write_text("not an image")
    args = ["source=folder", f"source.path={tmp_path / 'src'}", override]
    with pytest.raises(PipelineError) as exc:
        run(make_cfg(tmp_path / "out", *PLAIN, *args, small=False))
    assert words in str(exc.value) and "\n" not in str(exc.value)
    if override == "source.unpaired=drop":
        assert "source.depth_path='depth/{key}.tiff' (e.g. 'depth/a.tiff' does not exist)" in (
            str(exc.value)
        )


def test_dropped_images_are_said_in_the_summary(tmp_path, rng):
    images = {f"{i}.png": rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for i in range(4)}
    folder(tmp_path / "src", images, ["0", "2"])
    out = tmp_path / "out"
    proc = run_cli(
        "source=folder",
        f"source.path={tmp_path / 'src'}",
        "source.unpaired=drop",
        f"output.dir={out}",
        *PLAIN,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("wrote 2 samples")
    assert "dropped 2 image(s) without a depth file (source.unpaired=drop" in lines[2]


def test_an_opencv_written_bmp_comes_back_as_the_rgb_meant(tmp_path, rng):
    """OpenCV-written BMP frames (BGR on disk) come back as the RGB that was meant."""
    src = tmp_path / "src"
    (src / "image").mkdir(parents=True)
    (src / "depth").mkdir()
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    cv2.imwrite(str(src / "image" / "x.bmp"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    tifffile.imwrite(src / "depth" / "x.tiff", np.ones((H, W), np.float32))
    out = tmp_path / "out"
    args = ["source=folder", f"source.path={src}", "source.image_glob=image/*.bmp"]
    run(make_cfg(out, *PLAIN, *args, small=False))
    png = read_tar(out / "train-000000.tar")["x"]["png"]
    assert np.array_equal(np.array(Image.open(io.BytesIO(png))), rgb)
