"""One object per depth encoding (``pipeline.encode.depth``), and ``output.depth.format=npy``
written through it: float32 ``.npy`` that numpy, the webdataset library's default
``.decode()``, ``datasets`` and ``pipeline.read`` read back bit-exactly, in every layout."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_cfg, read_tar

from pipeline import read
from pipeline.config.choices import DepthFormat
from pipeline.config.schema import DepthCodec
from pipeline.encode import depth as encodings
from pipeline.errors import PipelineError
from pipeline.run.runner import run

COMMON = ["source.num_samples=5", "output.shard_size=2", "runtime.workers=1"]
COMMON += ["report.enabled=false"]
LAYOUTS = {"webdataset": [], "folder": ["output=folder"], "filelist": ["output=filelist"]}


def _depth() -> np.ndarray:
    rng = np.random.default_rng(0)
    d = rng.uniform(0.5, 10.0, size=(24, 32)).astype(np.float32)
    d[3:6, 4:9] = 0.0
    d[0, 0] = np.nextafter(np.float32(1.0), np.float32(2.0))  # one ulp above 1
    return d


@pytest.mark.parametrize("fmt", [f.value for f in DepthFormat])
def test_every_depth_format_has_an_encoding_that_round_trips_through_its_info(fmt):
    enc = encodings.ENCODINGS[fmt](DepthCodec(scale=1000.0))
    written = enc.encode(_depth())
    assert enc.decode(written.data).tobytes() == written.depth.tobytes()
    again = encodings.from_info(json.loads(json.dumps(enc.info())))
    assert type(again) is type(enc) and again.scale == enc.scale
    assert again.ext == enc.info()["ext"] and enc.summary() and enc.words()


def test_npy_is_exact_deterministic_and_plain_numpy():
    depth = _depth()
    enc = encodings.ENCODINGS["npy"]()
    data = enc.encode(depth).data
    assert data == enc.encode(depth.copy()).data
    loaded = np.load(io.BytesIO(data), allow_pickle=False)
    assert loaded.dtype == np.float32 and loaded.tobytes() == depth.tobytes()
    with pytest.raises(ValueError, match=r"cannot decode \.npy"):
        enc.decode(data[:20])


def _written(root: Path) -> dict[str, np.ndarray]:
    """Every depth member on disk, by key, through numpy only."""
    out = {}
    for tar in sorted(root.glob("*.tar")):
        for key, members in read_tar(tar).items():
            out[key] = np.load(io.BytesIO(members["depth.npy"]), allow_pickle=False)
    for meta in sorted((root / "meta").rglob("*.json")) if (root / "meta").is_dir() else []:
        key = meta.relative_to(root / "meta").with_suffix("").as_posix()
        out[key] = np.load(root / "depth" / f"{key}.npy", allow_pickle=False)
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Per layout: the same run as float TIFF and as npy."""
    root = tmp_path_factory.mktemp("enc")
    out = {}
    for layout, overrides in LAYOUTS.items():
        tiff, npy = root / f"{layout}-tiff", root / f"{layout}-npy"
        if layout != "filelist":  # the trainer lists refuse float TIFF
            run(make_cfg(tiff, *COMMON, *overrides))
        run(make_cfg(npy, *COMMON, *overrides, "output.depth.format=npy"))
        out[layout] = (tiff, npy)
    return out


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_npy_output_reads_back_bit_exact_through_numpy_and_pipeline_read(written, layout):
    tiff, npy = written[layout]
    on_disk = _written(npy)
    assert len(on_disk) == 5
    loaded = {m["key"]: d for _, d, m in read.load(npy)}
    assert sorted(loaded) == sorted(on_disk)
    for key, depth in loaded.items():
        assert on_disk[key].dtype == np.float32 and depth.tobytes() == on_disk[key].tobytes()
    if layout != "filelist":  # float32 both ways: the same metres as the TIFF run
        as_tiff = {m["key"]: d for _, d, m in read.load(tiff)}
        assert all(as_tiff[k].tobytes() == d.tobytes() for k, d in loaded.items())
    info = json.loads((npy / "dataset_info.json").read_text())
    assert info["encodings"]["depth"]["ext"] == "depth.npy"
    assert read.depth_scale(npy) == 1.0
    assert "float32 .npy" in (npy / "README.md").read_text()


def test_npy_reads_through_webdataset_default_decode_with_no_handler(written):
    import webdataset as wds

    npy = written["webdataset"][1]
    on_disk = _written(npy)
    stream = wds.WebDataset(read.shards(npy), shardshuffle=False).decode()
    got = {s["__key__"]: s["depth.npy"] for s in stream}
    assert len(got) == 5
    for key, depth in got.items():
        assert depth.dtype == np.float32 and depth.tobytes() == on_disk[key].tobytes()


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_npy_output_loads_through_datasets(written, layout, tmp_path):
    """Tar shards: the card declares the member a float32 HxW list; folders: the depth file
    is listed by path (``depth_file``: the image-folder loader reads images only)."""
    import datasets

    npy = written[layout][1]
    on_disk = _written(npy)
    ds = datasets.load_dataset(str(npy), split="train", cache_dir=str(tmp_path / "cache"))
    got = {}
    for row in ds:
        if layout == "webdataset":
            got[row["json"]["key"]] = np.asarray(row["depth.npy"], dtype=np.float32)
        else:
            got[row["key"]] = np.load(npy / row["depth_file"], allow_pickle=False)
    assert sorted(got) == sorted(on_disk)
    for key, depth in got.items():
        assert depth.tobytes() == on_disk[key].tobytes()


def test_npy_webdataset_output_is_a_source_again(written, tmp_path):
    npy = written["webdataset"][1]
    out = tmp_path / "again"
    wds = ["source=webdataset", f"source.path={npy}", "augment=none", "runtime.progress=false"]
    run(make_cfg(out, *wds, *COMMON[1:], small=False))
    first = {m["source"]["key"]: d for _, d, m in read.load(npy)}
    again = {m["source"]["key"]: d for _, d, m in read.load(out)}
    assert sorted(again) == sorted(first)
    assert all(again[k].tobytes() == first[k].tobytes() for k in first)


def test_file_lists_refuse_an_encoding_trainers_do_not_read(tmp_path):
    with pytest.raises(PipelineError, match="output=filelist writes 16-bit PNG depth"):
        run(make_cfg(tmp_path, *COMMON, "output=filelist", "output.depth.format=tiff"))
