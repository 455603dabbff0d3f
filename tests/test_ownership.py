"""Who may write ``output.dir`` and what may be deleted there: the lock between runs,
exactly what ``output.overwrite=true`` removes, the card beside a user's README, the
source check on resume, and the last resort's debug switch."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import ROOT, SMALL, make_cfg, run_cli, shard_bytes
from test_bad_input import FOLDER, ROWS, _write_folder_source
from test_reliability import assert_complete

from pipeline.cluster.merge import merge
from pipeline.dataset.lock import LOCK_DIR
from pipeline.errors import PipelineError
from pipeline.run.runner import run

# 20 shards of 2 samples, one process: long enough to be stopped half-way
LONG = ["source.num_samples=40", "output.shard_size=2", "runtime.workers=1", "report.enabled=false"]


def files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and LOCK_DIR not in p.parts
    }


def start(out: Path, *args: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "pipeline", *SMALL, *LONG, f"output.dir={out}", *args]
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def stop_when_writing(out: Path, proc: subprocess.Popen, old_hash: str | None = None) -> None:
    """SIGSTOP ``proc`` once it has written a shard of its own (a manifest whose config
    hash is not ``old_hash``): it is past claiming ``out``, holds the lock, is not done."""
    deadline = time.monotonic() + 120
    while not any(_hash_of(m) not in (None, old_hash) for m in out.glob("manifests/train-*")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGSTOP)


def _hash_of(manifest: Path) -> str | None:
    try:  # the overwriting run may be deleting it right now
        return json.loads(manifest.read_text())["config_hash"]
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="module")
def solo(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """Shard bytes of each config run alone."""
    base = tmp_path_factory.mktemp("solo")
    found = {}
    for seed in (0, 7):
        run(make_cfg(base / f"s{seed}", *LONG, f"augment.seed={seed}"))
        found[seed] = shard_bytes(base / f"s{seed}")
    return found


def test_conflicting_runs_one_is_refused_the_other_is_a_solo_run(tmp_path, solo):
    """Run A (seed 0) and run B (seed 7, overwrite) on one directory, in both orders."""
    out = tmp_path / "ds"
    a = start(out)
    stop_when_writing(out, a)
    b = run_cli(*SMALL, *LONG, f"output.dir={out}", "augment.seed=7", "output.overwrite=true")
    os.kill(a.pid, signal.SIGCONT)
    _, a_err = a.communicate(timeout=300)
    assert a.returncode == 0, a_err
    assert b.returncode == 2
    line = b.stderr.strip()
    assert "\n" not in line and "is in use by another depth-pipeline run" in line
    assert f"pid {a.pid} on host {socket.gethostname()}, shared since" in line
    assert shard_bytes(out) == solo[0]
    assert_complete(out, written=40)

    a_hash = json.loads((out / "manifests" / "config.json").read_text())["hash"]
    b = start(out, "augment.seed=7", "output.overwrite=true")  # now B first, A refused
    stop_when_writing(out, b, a_hash)
    a = run_cli(*SMALL, *LONG, f"output.dir={out}")
    os.kill(b.pid, signal.SIGCONT)
    _, b_err = b.communicate(timeout=300)
    assert b.returncode == 0, b_err
    assert a.returncode == 2
    line = a.stderr.strip()
    assert "\n" not in line and "is being replaced by another depth-pipeline run" in line
    assert f"pid {b.pid} on host {socket.gethostname()}, exclusive since" in line
    assert shard_bytes(out) == solo[7]
    info = assert_complete(out, written=40)
    assert info["seed"] == 7
    assert (
        json.loads((out / "manifests" / "config.json").read_text())["hash"] == info["config_hash"]
    )
    assert not list((out / LOCK_DIR / "holders").iterdir())


def test_identical_runs_side_by_side_are_both_consistent(tmp_path, solo):
    out = tmp_path / "ds"
    procs = [start(out), start(out)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert shard_bytes(out) == solo[0]
    assert_complete(out, written=40)


def test_a_merge_by_hand_waits_for_no_one_and_is_refused_during_an_overwrite(tmp_path):
    out = tmp_path / "ds"
    run(make_cfg(out, *LONG, "source.num_samples=4", "shard.index=0", "shard.num_shards=2"))
    fd = os.open(out / LOCK_DIR / "run.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as an overwriting run would hold it
    try:
        with pytest.raises(PipelineError, match="is being replaced by another"):
            merge(out)
    finally:
        os.close(fd)
    with pytest.raises(PipelineError, match="1 of 2 slices missing"):
        merge(out)


# ---- what overwrite deletes ------------------------------------------------------------


def test_overwrite_deletes_exactly_what_the_old_dataset_owns(tmp_path):
    out = tmp_path / "ds"
    run(
        make_cfg(
            out, *LONG, "source.num_samples=6", "report.enabled=true", "report.plots=[collage]"
        )
    )
    ours = set(files(out))
    mine = {
        "manifests/deploy.json": '{"host": "prod"}',  # not a shard manifest
        "image/mine.png": "a user's folder beside a webdataset dataset",
        "report/notes.txt": "my notes on the report",
        "slices/plan.md": "who runs what",
        "train-000001.tar.bak": "a backup",
        "notes.txt": "notes",
    }
    for rel, text in mine.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    kept = {rel: h for rel, h in files(out).items() if rel in mine}

    result = run(
        make_cfg(out, *LONG, "source.num_samples=3", "output=folder", "output.overwrite=true")
    )
    assert result.written == 3
    after = files(out)
    assert {rel: after.get(rel) for rel in mine} == kept
    gone = {rel for rel in ours if rel not in after}
    assert {rel for rel in ours if rel.endswith(".tar")} <= gone
    assert {rel for rel in ours if rel.startswith("report/")} <= gone
    assert sorted(p.name for p in (out / "report").iterdir()) == ["notes.txt"]
    assert not list(out.glob("*.tar"))
    assert len(list((out / "image" / "train").glob("*.png"))) == 3
    (out / "manifests" / "deploy.json").unlink()  # not a manifest: the checker would choke
    assert_complete(out, written=3)


def test_the_card_never_replaces_a_users_readme(tmp_path):
    out = tmp_path / "ds"
    cfg = make_cfg(out, *LONG, "source.num_samples=4")
    run(cfg)
    assert "made by depth-pipeline" in (out / "README.md").read_text()
    (out / "README.md").write_text("# my own notes about this dataset\n")
    info = out / "dataset_info.json"
    info.unlink()
    run(cfg)  # a plain resume rewrites dataset_info.json, not the user's README
    assert info.is_file()
    assert (out / "README.md").read_text() == "# my own notes about this dataset\n"
    run(make_cfg(out, *LONG, "source.num_samples=2", "output.overwrite=true"))
    assert (out / "README.md").read_text() == "# my own notes about this dataset\n"


def test_overwrite_deletes_only_files_as_written_and_names_what_it_kept(tmp_path, capfd):
    """A user's picture in report/, an edited card and a changed list file survive an
    overwrite, named in one line; the run's files go."""
    out = tmp_path / "ds"
    args = [*LONG, "source.num_samples=4", "report.enabled=true", "report.plots=[collage]"]
    run(make_cfg(out, *args, "output=filelist"))
    (out / "report" / "extra.png").write_bytes(b"my picture")
    card = (out / "README.md").read_text()
    (out / "README.md").write_text(card.replace("# RGB-D", "# My RGB-D"))
    lists = sorted(p.name for p in out.glob("*.txt"))
    assert lists, "the filelist layout publishes list files"
    (out / lists[0]).write_text("edited by hand\n")
    mine = {rel: h for rel, h in files(out).items()
            if rel in ("report/extra.png", "README.md", lists[0])}  # fmt: skip
    capfd.readouterr()
    run(make_cfg(out, *LONG, "source.num_samples=2", "output.overwrite=true"))
    err = capfd.readouterr().err
    after = files(out)
    assert {rel: after.get(rel) for rel in mine} == mine
    line = [x for x in err.splitlines() if "output.overwrite kept" in x]
    assert len(line) == 1 and "report/extra.png" in line[0] and "README.md" in line[0]
    assert lists[0] in line[0]
    assert sorted(p.name for p in (out / "report").glob("*.html")) == []  # the old page went
    assert not (out / "image").exists()  # the old format's folders went (all files as written)


def test_an_interrupted_overwrite_leaves_no_finished_marker(tmp_path, monkeypatch):
    """The finished marker goes first: killed while deleting, the directory does not look
    like a finished dataset, and the next overwrite finishes the job."""
    from pipeline import read
    from pipeline.dataset import owned

    out = tmp_path / "ds"
    run(make_cfg(out, *LONG, "source.num_samples=6"))
    real = owned.ShardManifest.read
    calls = []

    def killed(root, shard):
        calls.append(shard)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if killed while deleting the third shard
        return real(root, shard)

    monkeypatch.setattr(owned.ShardManifest, "read", staticmethod(killed))
    with pytest.raises(KeyboardInterrupt):
        run(make_cfg(out, *LONG, "source.num_samples=6", "augment.seed=3", "output.overwrite=true"))
    monkeypatch.setattr(owned.ShardManifest, "read", staticmethod(real))
    assert not (out / "dataset_info.json").exists()
    with pytest.raises(PipelineError):
        list(read.load(out))
    run(make_cfg(out, *LONG, "source.num_samples=6", "augment.seed=3", "output.overwrite=true"))
    assert_complete(out, written=6)


# ---- the source check on resume --------------------------------------------------------


def test_a_fixed_bad_file_redoes_only_its_shard_a_changed_good_one_is_refused(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    _write_folder_source(src)
    args = [a.format(src=src) for a in FOLDER]
    good = tifffile.imread(src / "depth" / "f3.tiff")
    (src / "depth" / "f3.tiff").write_bytes(b"II*\x00broken")
    with pytest.raises(PipelineError, match="sample f3"):
        run(make_cfg(out, *args, small=False))
    tifffile.imwrite(src / "depth" / "f3.tiff", good)
    result = run(make_cfg(out, *args, small=False))  # shard 0 kept, shard 1 redone
    assert (result.written, result.info.counts.resumed_shards) == (4, 1)
    record = json.loads((out / "manifests" / "config.json").read_text())
    assert record["source"] == result.info.source and record["tool"] == "depth-pipeline"

    tifffile.imwrite(src / "depth" / "f0.tiff", np.ones_like(good))
    with pytest.raises(PipelineError, match="the source changed") as exc:
        run(make_cfg(out, *args, small=False))
    assert "1 finished shard(s)" in str(exc.value) and "train-000000" in str(exc.value)
    assert "output.overwrite=true" in str(exc.value)
    rebuilt = run(make_cfg(out, *args, "output.overwrite=true", small=False))
    assert rebuilt.info.counts.resumed_shards == 0
    assert_complete(out, written=4)


# ---- the last resort -------------------------------------------------------------------


def test_debug_env_shows_the_traceback(tmp_path, monkeypatch):
    from pipeline import app

    def boom(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("pipeline.encode.codecs.encode_sample", boom)
    monkeypatch.setenv("DEPTH_PIPELINE_DEBUG", "1")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    argv = [*SMALL, "source.num_samples=2", "runtime.workers=1", "report.enabled=false"]
    monkeypatch.setattr(
        sys, "argv", ["depth-pipeline", *argv, f"output.dir={tmp_path / 'o'}",
                      f"hydra.run.dir={tmp_path / 'run'}"]
    )  # fmt: skip
    with pytest.raises(ZeroDivisionError, match="a bug"):
        app.cli()


@pytest.mark.parametrize(
    "row",
    [
        "prefix escapes",
        pytest.param("Normalize makes float images", marks=pytest.mark.slow),
        pytest.param("colormap", marks=pytest.mark.slow),
    ],
)
def test_rows_behave_the_same_through_a_real_process(row, tmp_path):
    """The table runs the command in-process; a real process gives the same answer."""
    case = next(r for r in ROWS if r.id == row)
    paths = {k: str(tmp_path / k) for k in ("src", "done", "user", "out", "root")}
    proc = run_cli(*[a.format(**paths) for a in case.args], f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and case.words in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()
