"""README "Reading the output", executed: its commands write the datasets (on small
scenes), then every Python block runs as written and must leave ``image`` (uint8 HxWx3)
and ``depth`` (float32 metres) equal to a sample of the dataset it names (16-bit PNG
depth within half a step of its scale)."""

from __future__ import annotations

import re
import shlex

import numpy as np
import pytest
from conftest import ROOT, make_cfg

from pipeline import read
from pipeline.runner import run


def section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"### {title}\n")
    end = re.compile(r"^##+ ", re.M).search(text, start + 4)  # the next heading
    return text[start : end.start() if end else len(text)]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def datasets_dir(tmp_path_factory):
    """The README's commands, run as written plus small-scene overrides, in a fresh dir."""
    where = tmp_path_factory.mktemp("readme")
    (commands,) = blocks(section("Reading the output"), "bash")
    lines = [x for x in commands.splitlines() if x.startswith("depth-pipeline ")]
    assert len(lines) == 3
    for line in lines:
        args = shlex.split(line.split("#")[0])[1:]
        out = next(a.split("=", 1)[1] for a in args if a.startswith("output.dir="))
        args = [a for a in args if not a.startswith("output.dir=")]
        small = ["source.num_samples=4", "output.shard_size=3", "report.enabled=false"]
        run(make_cfg(where / out, *args, *small))
    return where


PY_BLOCKS = blocks(section("Reading the output"), "python")


@pytest.mark.parametrize("code", PY_BLOCKS, ids=[f"block{i}" for i in range(len(PY_BLOCKS))])
def test_readme_reading_blocks_run_and_give_float_metres(datasets_dir, monkeypatch, code):
    monkeypatch.chdir(datasets_dir)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    image, depth = namespace["image"], namespace["depth"]
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert depth.dtype == np.float32 and depth.shape == image.shape[:2]
    name = re.search(r"outputs/datasets/\w+", code).group(0)
    scale = read.depth_scale(name)
    matches = [
        (np.array_equal(image, want_image), np.abs(depth - want_depth).max())
        for want_image, want_depth, _ in read.load(name)
    ]
    assert any(
        same and err <= (0.0 if scale == 1.0 else 0.5 / scale + 1e-6) for same, err in matches
    )
    if scale != 1.0:  # the block divided by the scale: metres, not stored values
        assert 0.3 < float(depth.max()) < 30.0


def test_readme_names_a_command_per_trainer_format():
    text = section("Reading the output")
    for words in ("for BTS / AdaBins / ZoeDepth", "for Metric3D", "for webdataset / Hugging Face"):
        assert words in text
    assert len(PY_BLOCKS) >= 6
