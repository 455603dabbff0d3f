"""``output=parquet``: the hub's own schema (``image`` PNG, ``depth_map`` float32 TIFF as
``datasets.Image``, typed columns) under ``data/{split}-NNNNN-of-NNNNN.parquet``, read back
by ``datasets`` (fresh cache), pyarrow, huggingface_hub's card parser, the one reader and
the hub source; byte-deterministic across workers and a kill -9."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, SMALL, make_cfg, read_tar, run_cli
from PIL import Image

from pipeline import read
from pipeline.run.runner import run

DATA = ["source.num_samples=10", "output.shard_size=4", "report.enabled=false"]


def parquet_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "data").glob("*.parquet"))}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, Path]:
    """The same augmented config written as parquet (2 workers) and as webdataset."""
    base = tmp_path_factory.mktemp("parquet")
    pq_out, tar_out = base / "pq", base / "tar"
    run(make_cfg(pq_out, *DATA, "output=parquet", "runtime.workers=2"))
    run(make_cfg(tar_out, *DATA, "output=webdataset", "runtime.workers=1"))
    return pq_out, tar_out


def test_files_are_named_like_the_hub_and_carry_the_features(written):
    out, _ = written
    names = sorted(parquet_bytes(out))
    assert names == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    schema = pq.read_schema(out / "data" / names[0])
    assert b'"image":{"_type":"Image"}' in schema.metadata[b"huggingface"]
    assert set(schema.names) >= {"image", "depth_map", "key", "camera", "params", "dataset"}
    assert schema.field("camera").type.get_field_index("homography") >= 0


def test_load_dataset_gives_the_hub_schema_bit_exact_against_webdataset(written, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    out, tar_out = written
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    assert isinstance(ds, datasets.DatasetDict) and list(ds) == ["train"]
    card = DatasetCard.load(out / "README.md")  # the hub's own parser
    splits = {s["name"]: s["num_examples"] for s in card.data.dataset_info["splits"]}
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in (out / "data").glob("*.parquet"))
    assert splits == {"train": len(ds["train"])} == {"train": rows} == {"train": 10}
    assert card.data.configs[0]["data_files"][0]["split"] == "train"

    tars = {}
    for p in sorted(tar_out.glob("*.tar")):
        tars |= read_tar(p)
    for row in ds["train"]:
        image, depth = row["image"], row["depth_map"]
        assert (image.format, image.mode, depth.format, depth.mode) == ("PNG", "RGB", "TIFF", "F")
        members = tars[row["key"]]
        ref_image = np.asarray(Image.open(io.BytesIO(members["png"])))
        ref_depth = np.asarray(Image.open(io.BytesIO(members["depth.tiff"])))
        assert np.array_equal(np.asarray(image), ref_image)
        assert np.asarray(depth).tobytes() == ref_depth.tobytes()
        assert isinstance(row["camera"]["fx"], float) and len(row["camera"]["homography"]) == 9


def test_the_one_reader_reads_parquet_like_webdataset(written):
    out, tar_out = written
    got, ref = list(read.load(out)), list(read.load(tar_out))
    assert len(got) == len(ref) == 10
    for (image, depth, meta), (ref_image, ref_depth, ref_meta) in zip(got, ref, strict=True):
        assert image.tobytes() == ref_image.tobytes()
        assert depth.tobytes() == ref_depth.tobytes()
        assert meta == ref_meta


def test_the_guides_own_code_runs_unchanged(written, tmp_path):
    import albumentations as A
    import datasets

    out, _ = written
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf"))
    example = ds[0]
    depth_map = np.array(example["depth_map"])
    assert depth_map.dtype == np.float32 and depth_map.ndim == 2
    transform = A.Compose(
        [A.HorizontalFlip(p=1.0), A.RandomBrightnessContrast(p=0.5)],
        additional_targets={"depth": "mask"},
    )

    def apply(batch):
        out = [
            transform(image=np.array(i), depth=np.array(d))
            for i, d in zip(batch["image"], batch["depth_map"], strict=True)
        ]
        return {"image": [o["image"] for o in out], "depth": [o["depth"] for o in out]}

    ds.set_transform(apply)
    flipped = ds[0]["depth"]
    assert np.array_equal(np.asarray(flipped), depth_map[:, ::-1])


def test_kill9_then_resume_is_byte_identical(written, tmp_path):
    reference = parquet_bytes(written[0])
    out = tmp_path / "ds"
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", DEPTH_PIPELINE_FAULT="sample-written@6")
    argv = [sys.executable, "-m", "pipeline", *SMALL, *DATA, "output=parquet"]
    argv += [f"output.dir={out}", "runtime.workers=1"]
    killed = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert len(parquet_bytes(out)) == 1  # the first shard; the second was half written
    resumed = run_cli(*SMALL, *DATA, "output=parquet", f"output.dir={out}", "runtime.workers=1")
    assert resumed.returncode == 0, resumed.stderr
    assert parquet_bytes(out) == reference
    assert not list(out.rglob("*.tmp-*"))


def test_hub_source_reads_a_parquet_output_back(written, tmp_path):
    out, _ = written
    again = tmp_path / "again"
    proc = run_cli(
        "source=hub", f"source.path={out}", "augment=none", f"output.dir={again}",
        "runtime.progress=false", "report.enabled=false",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = {m["key"]: (i, d) for i, d, m in read.load(again)}
    for image, depth, meta in read.load(out):
        g = got[meta["key"]]
        assert g[0].tobytes() == image.tobytes() and g[1].tobytes() == depth.tobytes()


def test_npy_depth_is_refused_in_one_line(tmp_path):
    proc = run_cli(*SMALL, *DATA, "output=parquet", "output.depth.format=npy",
                   f"output.dir={tmp_path / 'x'}")  # fmt: skip
    assert proc.returncode == 2
    assert "depth_map" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_torch_reader_and_verify_read_parquet(written, tmp_path):
    pytest.importorskip("torch")
    from pipeline.torch.datasets import DepthDataset

    out, _ = written
    ref = list(read.load(out))
    ds = DepthDataset(out)
    assert len(ds) == 10
    depth = ds[3]["depth"].numpy()[0]
    assert depth.tobytes() == ref[3][1].tobytes()
    verified = subprocess.run(
        [sys.executable, "-c", "from pipeline.app import verify_cli; verify_cli()", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)  # the module's dataset stays intact for the other tests
    (copy / "data" / "train-00001-of-00003.parquet").write_bytes(b"PAR1")
    damaged = subprocess.run(
        [sys.executable, "-c", "from pipeline.app import verify_cli; verify_cli()", str(copy)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (
        damaged.returncode != 0
        and "train-00001-of-00003.parquet" in damaged.stderr + damaged.stdout
    )
