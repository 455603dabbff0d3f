"""What makes runs and sweeps fast, checked by behaviour (never by a time limit): the
worker pool serves the jobs of one process, spread copies read each input once, the parent
never imports the workers' libraries, the summary and the progress display tell the same
truth, and the run's timeline (``make bench``) records every process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import fixtures
import pytest
from conftest import ROOT, make_cfg, read_tar, run_cli, shard_bytes

from pipeline.checks.units import FIRST
from pipeline.pool import pool, trace
from pipeline.run.runner import run
from pipeline.sources.synthetic import SyntheticSource


def test_runs_of_one_process_share_the_worker_pool_and_bytes_do_not_change(tmp_path):
    """Two runs (the jobs of a sweep) in one process use the same worker processes; each
    run's own config reaches them (different transforms, different bytes), and the bytes
    equal those of a run without any pool."""
    pids = []
    for name, extra in (("a", []), ("b", ["augment.transforms.gamma.p=0"])):
        run(make_cfg(tmp_path / name, "source.num_samples=8", "output.shard_size=2",
                     "runtime.workers=2", "report.enabled=false", *extra))  # fmt: skip
        pids.append([p.pid for p in pool.current().procs])
        run(make_cfg(tmp_path / f"{name}1", "source.num_samples=8", "output.shard_size=2",
                     "runtime.workers=1", "report.enabled=false", *extra))  # fmt: skip
        assert shard_bytes(tmp_path / name) == shard_bytes(tmp_path / f"{name}1")
    assert pids[0] == pids[1]
    assert shard_bytes(tmp_path / "a") != shard_bytes(tmp_path / "b")


def test_a_pool_that_outlives_a_chdir_writes_relative_paths_where_the_run_says(
    tmp_path, monkeypatch
):
    """The pool serves later runs of the process (Hydra's ``hydra.job.chdir``, a notebook
    that changes directory): a relative output.dir means the run's working directory."""
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        run(make_cfg(Path("ds"), "source.num_samples=8", "output.shard_size=2",
                     "runtime.workers=2", "report.plots=[params]"))  # fmt: skip
        here = tmp_path / name / "ds"
        assert len(list(here.glob("*.tar"))) == 4 and (here / "dataset_info.json").is_file()
        assert (here / "report" / "params.png").is_file()
    assert not (tmp_path / "first" / "ds" / "ds").exists()


@pytest.mark.parametrize("inputs", [40, 48])
def test_spread_copies_read_each_input_once_and_match_the_grouped_samples(
    tmp_path, monkeypatch, inputs
):
    """``augment.copies=3`` with ``output.order=spread``: the shards of different copies
    that share inputs are filled together, so an input is read at most twice (once when
    the shard size divides the inputs) instead of three times; every written sample is
    byte for byte the sample of the same key in the ``grouped`` layout."""
    reads: dict[int, int] = {}
    original = SyntheticSource.iter

    def counting(self, start, stop):
        for index in range(start, min(stop, len(self))):
            reads[index] = reads.get(index, 0) + 1
        return original(self, start, stop)

    monkeypatch.setattr(SyntheticSource, "iter", counting)
    common = [f"source.num_samples={inputs}", "output.shard_size=16", "augment.copies=3",
              "runtime.workers=1", "report.enabled=false"]  # fmt: skip
    run(make_cfg(tmp_path / "spread", *common))
    # input 0: also the first-sample check; the first FIRST inputs: the units check
    counts = [n - (i == 0) - (i < FIRST) for i, n in reads.items()]
    assert len(counts) == inputs and min(counts) == 1
    assert max(counts) == (1 if inputs % 16 == 0 else 2)
    assert sum(counts) < 2 * inputs
    run(make_cfg(tmp_path / "grouped", *common, "output.order=grouped"))
    spread, grouped = _samples(tmp_path / "spread"), _samples(tmp_path / "grouped")
    assert spread == grouped and len(spread) == 3 * inputs
    order = list(spread)
    assert order[:2] == ["train/000000_c0", "train/000001_c0"]
    assert order[inputs] == "train/000000_c1"


def _samples(root: Path) -> dict[str, dict[str, bytes]]:
    """{key: members} of every shard, in written order."""
    return {k: v for p in sorted(root.glob("*.tar")) for k, v in read_tar(p).items()}


@pytest.mark.parametrize("kind", ["synthetic", "parquet"])
def test_the_parent_of_a_pooled_run_imports_neither_albumentations_nor_datasets(tmp_path, kind):
    """The first-sample checks run in a worker: the parent composes, plans, claims and
    waits; a local parquet directory opens without ``datasets``. (Start-up is on the
    user's clock; the workers import these once.)"""
    source = ["source.num_samples=8", "source.height=96", "source.width=128"]
    if kind == "parquet":
        fixtures.hub_parquet(tmp_path / "nyu", n=8)
        source = ["source=hub", f"source.path={tmp_path / 'nyu'}"]
    code = f"""
import sys
sys.argv = ["depth-pipeline", "output.dir={tmp_path / "ds"}", *{source!r},
            "output.shard_size=2", "runtime.workers=2", "runtime.progress=false",
            "report.enabled=false",
            "augment.transforms.crop.height=64", "augment.transforms.crop.width=96"]
from pipeline.app import cli
try:
    cli()
finally:
    print(sorted(m for m in ("albumentations", "datasets", "matplotlib") if m in sys.modules))
"""
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert len(list((tmp_path / "ds").glob("*.tar"))) == 4


PLAIN = {
    "one file per split": ["train.parquet", "test.parquet"],
    "hub shards": ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"],
    "hub data/ folder": ["data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"],
    "data/ folder": ["data/train.parquet", "data/validation.parquet"],
}
NOT_PLAIN = {
    "a card (may declare configs)": ["README.md", "train.parquet"],
    "a split keyword datasets maps": ["training.parquet"],
    "other names": ["train.parquet", "extra.parquet"],
    "data/ beside files": ["data/train.parquet", "test.parquet"],
    "two namings (datasets takes one)": ["data/train-00000-of-00001.parquet", "data/test.parquet"],
}


@pytest.mark.parametrize("layout", [*PLAIN, *NOT_PLAIN])
def test_plain_parquet_directories_resolve_as_datasets_does(tmp_path, layout):
    """Split files found without importing ``datasets`` are the ones it resolves; any
    other layout is left to it (None)."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.sources.parquet import plain_split_files

    root = tmp_path / "d"
    for name in {**PLAIN, **NOT_PLAIN}[layout]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".parquet"):
            pq.write_table(pa.table({"v": [1]}), root / name)
        else:
            (root / name).write_text("---\nlicense: mit\n---\n")
    if layout in NOT_PLAIN:
        assert plain_split_files(root, "train") is None
        return
    resolved = datasets.load_dataset_builder(str(root)).config.data_files
    for split in ("train", "test", "validation"):
        want = [str(f) for f in resolved[split]] if split in resolved else None
        assert plain_split_files(root, split) == want, split


def test_summary_counts_kept_shards_and_matches_the_progress_display(tmp_path):
    """A resumed run says what it wrote and what it kept; its summary's data time is the
    record's, and the progress display closes with one plain line."""
    out = tmp_path / "ds"
    args = ["source.num_samples=6", "output.shard_size=2", "runtime.workers=2",
            f"output.dir={out}", "report.enabled=false"]  # fmt: skip
    from conftest import SMALL

    small = [a for a in SMALL if a != "runtime.progress=false"]
    first = run_cli(*small, *args)
    assert first.returncode == 0, first.stderr
    (out / "manifests" / "train-000001.json").unlink()
    (out / "dataset_info.json").unlink()
    again = run_cli(*small, *args)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.strip().splitlines()
    assert lines[0] == (
        f"wrote 2 samples (0 skipped) in 1 shard, kept 4 from an earlier run in 2 shards -> {out}"
    )
    data_s = json.loads((out / "dataset_info.json").read_text())["timings"]["data_s"]
    # stderr is a pipe here: the display prints plain lines, the last one at the end
    # (its numbers come from the unrounded clock: comparing them with the record's rounded
    # seconds is a timing assertion, which belongs in make bench)
    last = again.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"depth-pipeline: 6/6 samples \(100%\) in [0-9.]+ s, [0-9.]+ samples/s", last
    )
    assert lines[1].startswith(f"data {data_s:.1f} s ({2 / data_s:.1f} samples/s), total ")


def test_the_trace_records_every_process_of_a_run(tmp_path, monkeypatch):
    """``DEPTH_PIPELINE_TRACE``: the parent's steps and each worker's first sample, fills
    and commits, in one file (``make bench`` reads where the time went from it)."""
    path = tmp_path / "trace.txt"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            f"output.dir={tmp_path / 'ds'}",
            "source.num_samples=8",
            "output.shard_size=2",
            "runtime.workers=2",
            "runtime.progress=false",
            "source.height=96",
            "source.width=128",
            "augment.transforms.crop.height=64",
            "augment.transforms.crop.width=96",
            "report.dpi=60",
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", **{trace.ENV: str(path)}),
    )
    assert proc.returncode == 0, proc.stderr
    events = trace.read(str(path))
    names = [e for _, _, e, _ in events]
    for event in ("start", "composed", "run", "prepared", "writing", "first-sample",
                  "drained", "shards-done", "report", "reported", "end"):  # fmt: skip
        assert event in names, event
    assert names.index("prepared") < names.index("first-sample") < names.index("shards-done")
    committed = sorted(d for _, _, e, d in events if e == "committed")
    assert committed == [f"train-{i:06d}" for i in range(4)]
    parent = events[0][1]
    assert {pid for _, pid, e, _ in events if e == "committed"} - {parent}  # in workers


def test_parquet_fingerprint_is_the_same_in_every_process(tmp_path):
    """The source check on resume compares fingerprints made by different processes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.sources.parquet import ParquetRows

    f = tmp_path / "train.parquet"
    pq.write_table(pa.table({"image": [b"x", b"y"], "depth_map": [b"1", b"2"]}), f)
    here = ParquetRows([str(f)]).fingerprint
    code = (
        "from pipeline.sources.parquet import ParquetRows; "
        f"print(ParquetRows([{str(f)!r}]).fingerprint)"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == here


def test_parquet_rows_any_range_streams_the_right_rows(tmp_path):
    """Rows are streamed in batches from any start inside any row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.sources.parquet import ParquetRows

    files = []
    for i in range(2):
        f = tmp_path / f"part{i}.parquet"
        pq.write_table(pa.table({"v": list(range(i * 50, i * 50 + 50))}), f, row_group_size=13)
        files.append(str(f))
    rows = ParquetRows(files)
    for start, stop in [(0, 100), (5, 6), (12, 27), (40, 61), (99, 100), (90, 120)]:
        got = list(rows.rows(start, stop, ["v"]))
        assert got == [(i, {"v": i}) for i in range(start, min(stop, 100))]


def test_parquet_rows_unmap_the_file_once_read(tmp_path):
    """A worker reads the file memory-mapped, but keeps no mapping between shards: its
    resident memory must not grow with every page of a multi-GB file it has read (SLURM
    counts mapped pages towards a job's memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.sources.parquet import ParquetRows

    f = tmp_path / "train.parquet"
    pq.write_table(pa.table({"v": list(range(100))}), f, row_group_size=10)
    rows = ParquetRows([str(f)])

    def mapped() -> bool:
        return str(f) in Path("/proc/self/maps").read_text()

    it = rows.rows(0, 100, ["v"])
    next(it)
    assert mapped()  # read through a memory map while the shard is read
    assert [i for i, _ in it] == list(range(1, 100))
    assert not mapped()
