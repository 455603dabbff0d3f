"""``output.order``: where the copies of one input go. ``spread`` (default) puts them in
different shards when there are more inputs than a shard holds; ``grouped`` side by side.
Both deterministic, resumable and independent of the worker count."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import make_cfg, read_tar, shard_bytes

from pipeline.run.runner import run

PLAIN = ["runtime.progress=false", "report.enabled=false"]


def shards(out: Path) -> list[list[str]]:
    """The keys of each shard, in shard and member order."""
    return [list(read_tar(t)) for t in sorted(out.glob("*.tar"))]


def input_of(key: str) -> str:
    return key.rsplit("_c", 1)[0]


@pytest.mark.parametrize("inputs, copies, size", [(10, 3, 4), (9, 2, 8), (7, 4, 7)])
def test_spread_puts_no_two_copies_of_an_input_in_one_shard(tmp_path, inputs, copies, size):
    out = tmp_path / "s"
    args = [f"source.num_samples={inputs}", f"augment.copies={copies}"]
    run(make_cfg(out, *PLAIN, *args, f"output.shard_size={size}", "runtime.workers=1"))
    keys = shards(out)
    everything = [k for shard in keys for k in shard]
    wanted = {f"train/{i:06d}_c{c}" for i in range(inputs) for c in range(copies)}
    assert sorted(everything) == sorted(wanted)  # each copy exactly once, keys unchanged
    for shard in keys:
        doubles = [k for k, n in Counter(map(input_of, shard)).items() if n > 1]
        assert not doubles, f"copies of {doubles} share a shard: {shard}"
    # the manifests say which input and copy each key is (the report finds copies by them)
    for m in sorted((out / "manifests").glob("train-*.json")):
        for s in json.loads(m.read_text())["samples"]:
            assert s["key"] == f"train/{s['index']:06d}_c{s['copy']}"


def test_grouped_keeps_copies_side_by_side(tmp_path):
    out = tmp_path / "g"
    args = ["source.num_samples=5", "augment.copies=3", "output.shard_size=6"]
    run(make_cfg(out, *PLAIN, *args, "output.order=grouped", "runtime.workers=1"))
    flat = [k for shard in shards(out) for k in shard]
    assert flat == [f"train/{i:06d}_c{c}" for i in range(5) for c in range(3)]


def test_spread_bytes_do_not_depend_on_workers_or_resumption(tmp_path):
    args = [*PLAIN, "source.num_samples=9", "augment.copies=3", "output.shard_size=4"]
    one, two = tmp_path / "one", tmp_path / "two"
    run(make_cfg(one, *args, "runtime.workers=1"))
    run(make_cfg(two, *args, "runtime.workers=2"))
    assert shard_bytes(one) == shard_bytes(two)
    # a lost shard is redone byte-identically, the others are kept
    (two / "train-000003.tar").unlink()
    result = run(make_cfg(two, *args, "runtime.workers=2"))
    assert result.info.counts.resumed_shards == len(shard_bytes(one)) - 1
    assert shard_bytes(one) == shard_bytes(two)


def test_changing_the_order_is_a_changed_config(tmp_path):
    out = tmp_path / "o"
    args = [*PLAIN, "source.num_samples=4", "augment.copies=2", "runtime.workers=1"]
    run(make_cfg(out, *args))
    from pipeline.errors import PipelineError

    with pytest.raises(PipelineError, match="output.order"):
        run(make_cfg(out, *args, "output.order=grouped"))


def test_report_shows_copies_of_one_input_with_spread_order(tmp_path):
    out = tmp_path / "r"
    args = ["source.num_samples=6", "augment.copies=2", "output.shard_size=4"]
    run(make_cfg(out, "runtime.progress=false", *args, "report.plots=[copies]"))
    assert (out / "report" / "copies.png").is_file()


def test_a_bad_input_is_skipped_once_per_copy_in_the_shard_of_each_copy(tmp_path, rng):
    import cv2
    import tifffile

    src = tmp_path / "src"
    for d in ("image", "depth"):
        (src / d).mkdir(parents=True)
    for i in range(5):
        image = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        cv2.imwrite(str(src / "image" / f"{i}.png"), image)
        tifffile.imwrite(src / "depth" / f"{i}.tiff", np.full((12, 16), 2.0, np.float32))
    (src / "image" / "3.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    args = ["source=folder", f"source.path={src}", "augment=none", "augment.copies=2"]
    result = run(
        make_cfg(out, *PLAIN, *args, "output.shard_size=2", "runtime.on_error=skip", small=False)
    )
    assert (result.written, result.skipped) == (8, 2)
    where = [
        json.loads(m.read_text())["shard"]
        for m in sorted((out / "manifests").glob("train-*.json"))
        if json.loads(m.read_text())["skipped"]
    ]
    assert len(where) == 2  # copy 0 and copy 1 of input 3 sit in different shards
