"""Fault injection: crashes, interrupts, a full disk, a changed config and bad input.

Each test asserts what the user sees (one line, the exit code) and what is left on disk:
no temporary, no half shard, every shard under its final name matching its manifest,
nothing already written lost, and a resumed run byte-identical to a clean one.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import ROOT, SMALL, make_cfg, read_tar, shard_bytes

from pipeline.config.schema import to_config
from pipeline.dataset import claim, writers
from pipeline.dataset.layouts import folder as folder_layout
from pipeline.dataset.layouts import webdataset as tar_layout
from pipeline.errors import Interrupted, PipelineError
from pipeline.run.runner import run
from pipeline.sources import synthetic

# 5 shards of 2 samples; the report is off unless a test is about it.
DATA = ["source.num_samples=10", "output.shard_size=2", "report.enabled=false"]
# With augment=none (no crop to scale down): small scenes, inline, no report.
PLAIN = [
    "source.height=96",
    "source.width=128",
    "runtime.progress=false",
    "runtime.workers=1",
    "report.enabled=false",
]


def cli(out: Path, *args: str, fault: str | None = None, **popen: object):
    """Run ``python -m pipeline`` on the small config into ``out``."""
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    env.pop("DEPTH_PIPELINE_FAULT", None)
    if fault:
        env["DEPTH_PIPELINE_FAULT"] = fault
    argv = [sys.executable, "-m", "pipeline", *SMALL, *DATA, f"output.dir={out}", *args]
    if popen:
        return subprocess.Popen(argv, cwd=ROOT, env=env, **popen)
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def temporaries(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(f"*{writers.TMP_MARK}*"))


def assert_consistent(root: Path) -> dict[str, dict]:
    """No temporary; every shard file is complete and matches its manifest's sha256."""
    assert temporaries(root) == []
    manifests = {
        p.stem: json.loads(p.read_text())
        for p in (root / "manifests").glob("*.json")
        if p.name != "config.json"
    }
    for tar in root.glob("*.tar"):
        assert tar.stem in manifests, f"{tar.name} has no manifest"
        with tarfile.open(tar) as t:
            t.getmembers()  # a truncated tar raises here
    for name, m in manifests.items():
        for rel, digest in m["files"].items():
            assert writers.sha256_file(root / rel) == digest, f"{rel} of {name}"
    return manifests


def assert_complete(root: Path, written: int, resumed: int | None = None) -> dict:
    info = json.loads((root / "dataset_info.json").read_text())
    assert info["counts"]["written"] == written
    if resumed is not None:
        assert info["counts"]["resumed_shards"] == resumed
    assert len(assert_consistent(root)) == info["counts"]["shards"]
    return info


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    """Shard bytes of an uninterrupted run of the ``DATA`` config."""
    out = tmp_path_factory.mktemp("ref") / "ds"
    run(make_cfg(out, *DATA, "runtime.workers=1"))
    return shard_bytes(out)


def children(pid: int) -> list[int]:
    """All descendants of ``pid`` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in map(int, kids):
            found += [kid, *children(kid)]
    return found


def running(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def wait_gone(pids: list[int], patience: float = 60.0) -> list[int]:
    deadline = time.monotonic() + patience  # a safety net against a hang, not a speed test
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running(pids)


def wait_for_manifest(out: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not list((out / "manifests").glob("train-*.json")):
        assert proc.poll() is None, "the run ended before its first shard"
        assert time.monotonic() < deadline
        time.sleep(0.02)


# ---- kill -9 and resume ----------------------------------------------------------------


@pytest.mark.parametrize(
    "fault, finished",
    [
        ("sample-written@3", 1),  # mid-shard: the second shard is half written
        pytest.param("shard-done@2", 2, marks=pytest.mark.slow),  # between shards
        pytest.param("report@1", 5, marks=pytest.mark.slow),  # shards done, report not
    ],
)
def test_kill9_then_resume_is_byte_identical(tmp_path, reference, fault, finished):
    out = tmp_path / "ds"
    args = ["runtime.workers=1", "report.enabled=true"]
    killed = cli(out, *args, fault=fault)
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "dataset_info.json").exists()
    before = shard_bytes(out)
    assert len(before) == finished
    assert all(reference[name] == data for name, data in before.items())

    resumed = cli(out, *args)
    assert resumed.returncode == 0, resumed.stderr
    assert shard_bytes(out) == reference
    assert_complete(out, written=10, resumed=finished)
    assert (out / "report" / "collage.png").is_file()


def test_worker_killed_by_the_os_fails_with_one_line_then_resumes(tmp_path, reference):
    out = tmp_path / "ds"
    proc = cli(out, "runtime.workers=2", fault="sample-written@3")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "worker process died" in lines[0], proc.stderr
    assert "re-run the same command" in lines[0]
    kept = assert_consistent(out)
    assert all(reference[n] == d for n, d in shard_bytes(out).items()) and len(kept) < 5

    again = cli(out, "runtime.workers=2")
    assert again.returncode == 0, again.stderr
    assert shard_bytes(out) == reference
    assert_complete(out, written=10, resumed=len(kept))


@pytest.mark.slow
def test_kill9_of_the_parent_leaves_no_worker_behind(tmp_path, reference):
    out = tmp_path / "ds"
    log = open(tmp_path / "log", "w")
    proc = cli(out, "runtime.workers=2", "source.num_samples=40", stdout=log, stderr=log)
    wait_for_manifest(out, proc)
    workers = children(proc.pid)
    proc.kill()
    proc.wait()
    assert wait_gone(workers) == []

    again = cli(out, "runtime.workers=2", "source.num_samples=40")
    assert again.returncode == 0, again.stderr
    # samples depend only on their index: the first 5 shards are the reference run's
    assert {k: v for k, v in shard_bytes(out).items() if k in reference} == reference
    assert_complete(out, written=40)


@pytest.mark.parametrize(
    "sig, code, workers",
    [
        (signal.SIGINT, 130, 2),
        pytest.param(signal.SIGINT, 130, 1, marks=pytest.mark.slow),
        pytest.param(signal.SIGTERM, 143, 2, marks=pytest.mark.slow),
    ],
)
def test_interrupt_stops_promptly_and_cleanly(tmp_path, reference, sig, code, workers):
    """Ctrl-C reaches the whole foreground process group; SIGTERM only the parent."""
    out = tmp_path / "ds"
    errors = tmp_path / "stderr"
    many = [f"runtime.workers={workers}", "source.num_samples=40"]
    with open(errors, "w") as err:
        proc = cli(out, *many, start_new_session=True, stderr=err)
        wait_for_manifest(out, proc)
        workers_pids = children(proc.pid)
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        assert proc.wait(timeout=120) == code
    lines = errors.read_text().strip().splitlines()
    assert len(lines) == 1, lines
    assert (
        lines[0].startswith(f"interrupted by {sig.name}") and "re-run the same command" in lines[0]
    )
    assert wait_gone(workers_pids) == []
    assert_consistent(out)

    again = cli(out, *many)
    assert again.returncode == 0, again.stderr
    assert {k: v for k, v in shard_bytes(out).items() if k in reference} == reference
    assert_complete(out, written=40)


@pytest.mark.parametrize(
    "moment",
    [
        "start",
        "run",
        "writing",
        *(pytest.param(m, marks=pytest.mark.slow) for m in ("composed", "prepared")),
    ],
)
def test_ctrl_c_at_every_moment_is_the_usual_line_and_130(tmp_path, moment):
    """SIGINT to the process group when the run reaches ``moment`` (its trace says so):
    during the imports, the composing, the checks and the first sample, the writing. Exit
    130 and one line, whatever the moment; no worker left; nothing looks finished. A
    billion samples: the plan is lazy, the run starts at once."""
    out, trace = tmp_path / "ds", tmp_path / "trace.txt"
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", DEPTH_PIPELINE_TRACE=str(trace))
    run_dir = f"hydra.run.dir={tmp_path / 'run'}"
    argv = [sys.executable, "-m", "pipeline", *SMALL, "source.num_samples=1000000000",
            "runtime.workers=2", f"output.dir={out}", run_dir]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120  # a safety net against a hang, not a speed test
    while proc.poll() is None and time.monotonic() < deadline:
        if trace.exists() and f" {moment} " in trace.read_text():
            break
        time.sleep(0.005)
    pids = children(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted by SIGINT"), err
    assert wait_gone(pids) == []
    assert not (out / "dataset_info.json").exists()
    if out.exists():
        assert temporaries(out) == []


def test_a_progress_bar_a_ctrl_c_left_half_made_is_collected_quietly(monkeypatch):
    """A SIGINT between tqdm's ``__new__`` and our ``__init__`` leaves a bar without its
    clock; collecting it must not print "Exception ignored in ... tqdm.__del__" under the
    one interrupted line (found by CI at the ``writing`` moment above)."""
    import gc

    from pipeline.run.progress import progress_bar

    cls = type(progress_bar(10, enabled=False))
    ignored: list = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)
    half = cls.__new__(cls)
    del half
    gc.collect()
    assert [str(u.exc_value) for u in ignored] == []


def test_folder_output_interrupted_mid_shard_resumes_identically(tmp_path, monkeypatch):
    """Folder shards commit file by file: an aborted shard takes its files back."""
    ref, out = tmp_path / "ref", tmp_path / "ds"
    run(make_cfg(ref, *DATA, "output=folder", "runtime.workers=1"))
    cfg = make_cfg(out, *DATA, "output=folder", "runtime.workers=1")
    real_add, calls = folder_layout.FolderShardWriter.add, []

    def add(self, key, fields):
        calls.append(key)
        if len(calls) == 6:  # the second sample of the third shard
            raise KeyboardInterrupt
        return real_add(self, key, fields)

    monkeypatch.setattr(folder_layout.FolderShardWriter, "add", add)
    with pytest.raises(Interrupted, match="2 of 5 shard\\(s\\) are finished and kept; re-run"):
        run(cfg)
    assert sorted(p.name for p in (out / "image" / "train").iterdir()) == [
        f"{i:06d}.png" for i in range(4)
    ]
    assert_consistent(out)
    monkeypatch.undo()
    assert run(cfg).info.counts.resumed_shards == 2

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for sub in ("image", "depth", "meta")
            for p in (root / sub).rglob("*")
            if p.is_file()
        }

    assert files(out) == files(ref) and len(files(ref)) == 30


# ---- resume checks the bytes, not just the names ---------------------------------------


def test_resume_redoes_a_shard_whose_bytes_or_manifest_changed(tmp_path, reference):
    out = tmp_path / "ds"
    cfg = make_cfg(out, *DATA, "runtime.workers=1")
    run(cfg)
    tar = out / "train-000001.tar"
    data = bytearray(tar.read_bytes())
    data[-2000] ^= 0xFF  # same size, one flipped byte
    tar.write_bytes(bytes(data))
    (out / "manifests" / "train-000003.json").unlink()
    (out / "train-000004.tar").unlink()
    result = run(cfg)
    assert result.info.counts.resumed_shards == 2
    assert shard_bytes(out) == reference


def test_dead_runs_temporaries_go_live_ones_and_user_files_stay(tmp_path):
    out = tmp_path / "ds"
    cfg = make_cfg(out, *DATA, "runtime.workers=1", "shard.index=0", "shard.num_shards=2")
    run(cfg)  # this job owns shards 0..1 of 5
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    files = {
        f"train-000001.tar.tmp-{host}-{dead.pid}": False,  # a dead run's
        f"manifests/train-000000.json.tmp-{host}-{dead.pid}": False,
        f"dataset_info.json.tmp-{host}-{os.getppid()}": True,  # a live writer's (locked)
        f"train-000000.tar.tmp-{host}-{os.getppid()}": False,  # a reused pid: nobody writes it
        "train-000000.tar.tmp-elsewhere-12": False,  # our shard, from a preempted host
        "train-000004.tar.tmp-elsewhere-12": True,  # another job's shard, maybe live
        "notes.tmp-keep": True,  # not a name this tool makes
        "elsewhere/x.tar.tmp-vm-1": True,  # not a place this tool writes
    }
    for rel in files:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(b"partial")
    live = writers.open_temporary(out / f"dataset_info.json.tmp-{host}-{os.getppid()}")
    try:
        run(cfg)
    finally:
        live.close()
    assert {rel: (out / rel).exists() for rel in files} == files


# ---- the config guard ------------------------------------------------------------------


def test_different_config_is_refused_naming_the_keys(tmp_path):
    out = tmp_path / "ds"
    run(make_cfg(out, *DATA, "runtime.workers=1"))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(PipelineError) as exc:
        run(make_cfg(out, *DATA, "augment.transforms.crop.height=40", "augment.seed=7"))
    msg = str(exc.value)
    assert "augment.transforms.crop.height (64 -> 40)" in msg and "augment.seed (0 -> 7)" in msg
    assert "output.overwrite=true" in msg and "\n" not in msg
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_cosmetic_keys_and_slices_share_the_dataset(tmp_path, reference):
    out = tmp_path / "ds"
    run(make_cfg(out, *DATA, "runtime.workers=1", "shard.index=1", "shard.num_shards=2"))
    result = run(
        make_cfg(
            out,
            *DATA,
            "runtime.workers=2",
            "runtime.on_error=skip",
            "runtime.progress=true",
            "report.rows=2",
            "shard.index=0",
            "shard.num_shards=2",
        )
    )
    assert result.shards == 2
    assert shard_bytes(out) == reference
    assert_consistent(out)


def test_transform_order_and_disabled_transforms_in_the_hash(tmp_path):
    base = to_config(make_cfg(tmp_path, *DATA))
    names = list(base.augment.transforms)
    swapped = to_config(make_cfg(tmp_path, *DATA))
    swapped.augment.transforms = {n: base.augment.transforms[n] for n in reversed(names)}
    assert claim.config_hash(swapped) != claim.config_hash(base)
    nulled = to_config(make_cfg(tmp_path, *DATA, "augment.transforms.hsv=null"))
    dropped = to_config(make_cfg(tmp_path, *DATA, "~augment.transforms.hsv"))
    assert claim.config_hash(nulled) == claim.config_hash(dropped)
    cosmetic = to_config(
        make_cfg(tmp_path / "x", *DATA, "runtime.workers=3", "shard.num_shards=4", "report.dpi=9")
    )
    assert claim.config_hash(cosmetic) == claim.config_hash(base)


def test_overwrite_replaces_the_dataset_and_deletes_only_its_files(tmp_path):
    out = tmp_path / "ds"
    run(make_cfg(out, *DATA, "runtime.workers=1", "output.prefix=old", "report.enabled=true"))
    (out / "notes.txt").write_text("mine")
    (out / "manifests" / "keep.txt").write_text("mine too")
    result = run(
        make_cfg(out, "source.num_samples=3", "output.overwrite=true", "report.enabled=false")
    )
    assert result.written == 3
    assert sorted(p.name for p in out.glob("*.tar")) == ["train-000000.tar"]
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "manifests" / "keep.txt").exists()
    assert not (out / "report").exists()
    assert_complete(out, written=3)
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["config"]["output"]["prefix"] == "train"


def test_a_foreign_non_empty_directory_is_refused(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    for extra in ([], ["output.overwrite=true"]):
        with pytest.raises(PipelineError, match="not empty .*README.md.* no depth-pipeline"):
            run(make_cfg(out, *DATA, *extra))
    assert [p.name for p in out.iterdir()] == ["README.md"]
    assert (out / "README.md").read_text() == "my notes"


# ---- a full disk, an unwritable directory ----------------------------------------------


def test_full_disk_while_writing_a_shard_leaves_no_partial_file(tmp_path, monkeypatch, reference):
    out = tmp_path / "ds"
    cfg = make_cfg(out, *DATA, "runtime.workers=1")
    real_write = tar_layout._HashingFile.write
    written = {"bytes": 0}

    def filling_up(self, data):
        written["bytes"] += len(data)
        if written["bytes"] > 200_000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data)

    monkeypatch.setattr(tar_layout._HashingFile, "write", filling_up)
    with pytest.raises(PipelineError) as exc:
        run(cfg)
    msg = str(exc.value)
    assert msg.startswith("no space left") and "train-0000" in msg and "re-run" in msg
    kept = assert_consistent(out)
    assert 0 < len(kept) < 5
    assert all(reference[n] == d for n, d in shard_bytes(out).items())

    monkeypatch.undo()
    run(cfg)
    assert shard_bytes(out) == reference


def test_full_disk_while_writing_dataset_info(tmp_path, monkeypatch, reference):
    out = tmp_path / "ds"
    real_fsync = os.fsync

    def fsync(fd):  # where a full disk often shows up (NFS, delayed allocation)
        if os.readlink(f"/proc/self/fd/{fd}").rpartition("/")[2].startswith("dataset_info"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(PipelineError, match="no space left .*dataset_info.json"):
        run(make_cfg(out, *DATA, "runtime.workers=1"))
    assert not (out / "dataset_info.json").exists()
    assert_consistent(out)
    monkeypatch.undo()
    assert run(make_cfg(out, *DATA, "runtime.workers=1")).info.counts.resumed_shards == 5
    assert shard_bytes(out) == reference


@pytest.fixture
def tiny_disk(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt)])
    if ok.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.slow
def test_full_disk_for_real_on_a_tiny_tmpfs(tiny_disk, reference):
    out = tiny_disk / "ds"
    proc = cli(out, "runtime.workers=2")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no space left"), proc.stderr
    assert_consistent(out)
    assert all(reference[n] == d for n, d in shard_bytes(out).items())


def test_unwritable_output_dir_is_one_line_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = cli(blocker / "ds")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: output.dir={blocker / 'ds'} is not writable (Not a directory); "
        f"choose another output.dir"
    ]


def test_read_only_output_dir(tmp_path):
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(PipelineError, match="not writable \\(Read-only file system\\)"):
            run(make_cfg(mnt / "ds", *DATA))
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ---- bad samples -----------------------------------------------------------------------

BAD = {
    "size mismatch": (lambda im, d: (im, d[:-4]), "but depth is"),
    "image dtype": (lambda im, d: (im.astype(np.float32), d), "image dtype is float32"),
    "gray image": (lambda im, d: (im[..., 0], d), "expected HxWx3 RGB"),
    "RGBA image": (lambda im, d: (np.dstack([im, im[..., :1]]), d), "expected HxWx3 RGB"),
    "depth channels": (lambda im, d: (im, np.dstack([d, d])), "depth shape is"),
    "depth dtype": (lambda im, d: (im, d.astype(np.complex64)), "depth dtype is complex64"),
    "small image": (lambda im, d: (im[:50, :50], d[:50, :50]), "augmentation failed"),
}


def break_sample(monkeypatch, index: int, how) -> None:
    real = synthetic.render

    def render(height, width, seed, i):
        image, depth = real(height, width, seed, i)
        return how(image, depth) if i == index else (image, depth)

    monkeypatch.setattr(synthetic, "render", render)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_sample_fails_with_one_line_keeping_earlier_shards(tmp_path, monkeypatch, case):
    how, words = BAD[case]
    break_sample(monkeypatch, 5, how)
    out = tmp_path / "ds"
    with pytest.raises(PipelineError) as exc:
        run(make_cfg(out, *DATA, "runtime.workers=1"))
    msg = str(exc.value)
    assert msg.startswith("sample train/000005: ") and words in msg, msg
    assert "runtime.on_error=skip" in msg and "\n" not in msg
    kept = assert_consistent(out)
    assert sorted(kept) == ["train-000000", "train-000001"]  # the shards before sample 5
    assert not (out / "dataset_info.json").exists()


@pytest.mark.parametrize("case", ["size mismatch", "small image"])
def test_bad_sample_is_skipped_and_recorded(tmp_path, monkeypatch, case):
    how, words = BAD[case]
    break_sample(monkeypatch, 5, how)
    out = tmp_path / "ds"
    result = run(make_cfg(out, *DATA, "runtime.workers=1", "runtime.on_error=skip"))
    assert (result.written, result.skipped) == (9, 1)
    info = assert_complete(out, written=9)
    assert info["counts"]["skipped"] == 1
    assert info["counts"]["skipped_samples"][0]["key"] == "train/000005"
    (reason,) = info["counts"]["skipped_reasons"]
    assert words in reason
    assert "train/000005" not in read_tar(out / "train-000002.tar")


def test_nan_and_inf_depth_become_zero_and_are_counted(tmp_path, monkeypatch):
    def poison(image, depth):
        depth = depth.copy()
        depth[:3, :5] = np.nan
        depth[10, :7] = np.inf
        depth[11, :2] = -np.inf
        return image, depth

    break_sample(monkeypatch, 1, poison)
    out = tmp_path / "ds"
    result = run(make_cfg(out, "augment=none", "source.num_samples=2", *PLAIN, small=False))
    assert (result.written, result.skipped) == (2, 0)
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["invalid_pixels"]["nonfinite"] == 15 + 7 + 2
    raw = read_tar(out / "train-000000.tar")["train/000001"]["depth.tiff"]
    depth = tifffile.imread(io.BytesIO(raw))
    assert np.isfinite(depth).all()
    assert (depth[:3, :5] == 0).all() and (depth[10, :7] == 0).all()


def test_empty_source_and_zero_limit_are_one_line_without_output(tmp_path):
    out = tmp_path / "ds"
    with pytest.raises(PipelineError, match="has no samples"):
        run(make_cfg(out, "source.num_samples=0"))
    with pytest.raises(PipelineError, match="source.limit=0 selects no samples"):
        run(make_cfg(out, "source.limit=0"))
    assert not out.exists()


SCRIPT = """
import sys
import numpy as np
from pipeline.sources import synthetic
real = synthetic.render
def render(h, w, seed, i):
    image, depth = real(h, w, seed, i)
    return (image, depth[:-1]) if i == 3 else (image, depth)
synthetic.render = render
from pipeline.app import cli
sys.argv = ["depth-pipeline", *sys.argv[1:]]
cli()
"""


def test_cli_exit_code_3_when_samples_were_skipped_2_when_not(tmp_path):
    def go(out, *args):
        argv = [*SMALL, *DATA, f"output.dir={out}", "runtime.workers=1", *args]
        return subprocess.run(
            [sys.executable, "-c", SCRIPT, *argv], cwd=ROOT, capture_output=True, text=True
        )

    skipped = go(tmp_path / "skip", "runtime.on_error=skip")
    assert skipped.returncode == 3, skipped.stderr
    assert "wrote 9 samples (1 skipped)" in skipped.stdout
    raised = go(tmp_path / "raise")
    assert raised.returncode == 2
    assert raised.stderr.strip().splitlines() == [
        "error: sample train/000003: image is 128x96 but depth is 128x95 (WxH); they must "
        "match; fix or remove this sample, or set runtime.on_error=skip to skip and record "
        "bad samples"
    ]


@pytest.mark.parametrize(
    "override, words",
    [
        ("+augment.transforms.flip.always_apply=true", "augment.transforms.flip"),  # a warning
        pytest.param(
            "runtime.on_error=maybe",
            "runtime.on_error: 'maybe' is not a choice; choose one of: raise, skip",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "runtime.worker=2",
            "runtime.worker: no such config key (did you mean runtime.workers?)",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_config_mistakes_are_one_line_before_any_work(tmp_path, override, words):
    out = tmp_path / "ds"
    proc = cli(out, override)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert not out.exists()


# ---- corrupt files in a real source (needs source=webdataset from issue 4) -------------


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_corrupt_png_tiff_and_missing_depth_in_a_webdataset_source(tmp_path, on_error):
    src = tmp_path / "src"
    run(make_cfg(src, "augment=none", "source.num_samples=4", *PLAIN, small=False))
    members = read_tar(src / "train-000000.tar")
    (src / "train-000000.tar").unlink()
    members["train/000001"]["png"] = members["train/000001"]["png"][:200]  # truncated
    members["train/000002"]["depth.tiff"] = b"II*\x00garbage"  # corrupt
    del members["train/000003"]["depth.tiff"]  # missing
    bad = tar_layout.TarShardWriter(src, "train-000000")
    for key, fields in members.items():
        bad.add(key, fields)
    bad.commit()
    args = [
        "source=webdataset",
        f"source.path={src}",
        "augment=none",
        *[o for o in PLAIN if not o.startswith("source.")],  # a webdataset has no size keys
    ]
    # still a finished dataset of this tool: read through the one reader, whose records
    # vouch for other bytes: the damaged shard is refused whole, named
    with pytest.raises(PipelineError, match=r"train-000000.tar: its bytes changed"):
        run(make_cfg(tmp_path / "refused", *args, small=False))
    (src / "dataset_info.json").unlink()  # now plain tars: each bad sample is named

    out = tmp_path / "ds"
    cfg = make_cfg(
        out,
        "source=webdataset",
        f"source.path={src}",
        "augment=none",
        f"runtime.on_error={on_error}",
        *[o for o in PLAIN if not o.startswith("source.")],  # a webdataset has no size keys
        small=False,
    )
    if on_error == "raise":
        with pytest.raises(PipelineError, match="000001") as exc:
            run(cfg)
        assert "\n" not in str(exc.value)
        assert temporaries(out) == []
    else:
        result = run(cfg)
        assert (result.written, result.skipped) == (1, 3)
        info = assert_complete(out, written=1)
        keys = sorted(s["key"] for s in info["counts"]["skipped_samples"])
        assert [k[-6:] for k in keys] == ["000001", "000002", "000003"]


def test_a_ctrl_c_while_the_workers_forkserver_starts_is_not_lost():
    """The forkserver starts with SIGINT ignored (so it never prints a traceback of its
    own); a Ctrl-C in that window must still reach the command, not be dropped (it was:
    the run went on, a CI run's Ctrl-C-at-start case timed out)."""
    code = (
        "import os, signal\n"
        "from multiprocessing import forkserver as mp_forkserver\n"
        "from pipeline.pool import forkserver\n"
        "real = mp_forkserver.ensure_running\n"
        "def ensure_running():\n"
        "    os.kill(os.getpid(), signal.SIGINT)  # inside the window\n"
        "    real()\n"
        "mp_forkserver.ensure_running = ensure_running\n"
        "try:\n"
        "    forkserver.context()\n"
        "except KeyboardInterrupt:\n"
        "    print('noticed')\n"
    )
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.stdout.strip() == "noticed", proc.stdout + proc.stderr
