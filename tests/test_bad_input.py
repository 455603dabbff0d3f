"""The bad-input / fault table: one row per way a user (or the world) can get it wrong.

Every row runs the real command (``pipeline.app.cli``, in this process so that the table
stays fast; ``test_rows_behave_the_same_through_a_real_process`` checks that this changes
nothing) in a world of its own: a source folder, a finished dataset, a folder of user
files. Each row asserts exit code 2, exactly one line on stderr with the expected words,
no traceback anywhere, and that no byte of the input, of the user files or of the finished
dataset changed (every file's sha256, and the set of files and folders, before and after).
Rows marked ``early`` must also stop before creating ``output.dir``.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from conftest import ROOT, SMALL, make_cfg
from PIL import Image

from pipeline.run.runner import run

H, W = 96, 128
COMMON = ["runtime.workers=1", "runtime.progress=false", "report.enabled=false"]
# the synthetic source, small: 4 samples in 2 shards
SYN = [*SMALL, "source.num_samples=4", "output.shard_size=2", *COMMON]
CROP = ["augment.transforms.crop.height=64", "augment.transforms.crop.width=96"]
FOLDER = ["source=folder", "source.path={src}", *CROP, "output.shard_size=2", *COMMON]
WDS = ["source=webdataset", "source.path={done}", "augment=none", *COMMON]
TAR = ["source=webdataset", "source.path={src}/x.tar", *CROP, "output.shard_size=2", *COMMON]
HUB = ["source=hub", *CROP, *COMMON, "output.dir={out}", "source.cache_dir={root}/run/cache"]
# a mixture of one part, the folder source
MIX = ["source=mix", "+source@source.parts.a.source=folder", "source.parts.a.source.path={src}",
       *CROP, "output.shard_size=2", *COMMON]  # fmt: skip
FASTDEPTH = ["source=fastdepth", "source.path={src}/fd", *CROP, "output.shard_size=2", *COMMON]
# the lists name the folder's float TIFF depth, already in metres
LIST = ["source=filelist", "source.path={src}/list.txt", "source.depth_scale=1", *CROP,
        "output.shard_size=2", *COMMON]  # fmt: skip
M3D = [*LIST[:1], "source.depth_scale=1", *CROP, *COMMON, "source.path={src}/list.json"]


@dataclass
class World:
    """A row's own directory: ``src`` (a folder source), ``done`` (a finished dataset of
    the ``SYN`` config), ``user`` (somebody's files) and ``out`` (not there yet)."""

    root: Path
    holders: list[subprocess.Popen] = field(default_factory=list)

    @property
    def paths(self) -> dict[str, Path]:
        return {n: self.root / n for n in ("src", "done", "user", "out")} | {"root": self.root}


@dataclass
class Row:
    id: str
    args: list[str]
    words: str
    setup: Callable[[World, pytest.MonkeyPatch], None] | None = None
    early: bool = True  # refused before output.dir is created
    check: Callable[[World, str], None] | None = None
    entry: str = "cli"  # the console entry in pipeline.app (verify_cli, merge_cli ...)


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file and a marker for every folder under ``root``, except the
    row's own output dir and Hydra's run dir."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in ("out", "run", "mods"):
            continue
        if path.is_symlink():
            found[rel] = f"link -> {os.readlink(path)}"
        elif path.is_dir():
            found[rel] = "dir"
        elif not path.is_file():  # a FIFO, a socket: never opened
            found[rel] = f"special {path.stat().st_mode:o}"
        else:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# ---- the world -------------------------------------------------------------------------


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _write_folder_source(root: Path, n: int = 4) -> None:
    rng = np.random.default_rng(11)
    for sub in ("image", "depth"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        (root / "image" / f"f{i}.png").write_bytes(
            _png(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        )
        tifffile.imwrite(root / "depth" / f"f{i}.tiff", rng.uniform(0.5, 8, (H, W)).astype("f4"))


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("templates")
    _write_folder_source(base / "src")
    run(make_cfg(base / "done", *SYN))
    user = base / "user"
    (user / "sub").mkdir(parents=True)
    (user / "notes.txt").write_text("my notes")
    (user / "sub" / "data.bin").write_bytes(bytes(range(256)))
    return base


@pytest.fixture
def world(templates, tmp_path) -> World:
    for name in ("src", "done", "user"):
        shutil.copytree(templates / name, tmp_path / name, symlinks=True)
    w = World(tmp_path)
    yield w
    for proc in w.holders:
        proc.kill()
        proc.wait()


def cli(world: World, monkeypatch: pytest.MonkeyPatch, capfd, args: list[str], entry: str = "cli"):
    """``depth-pipeline ARGS`` (or another console entry) in this process: (exit code,
    stdout, stderr)."""
    from pipeline import app

    run_dir = world.root / "run"
    argv = [*args, f"hydra.run.dir={run_dir}"] if entry == "cli" else args
    monkeypatch.setattr(sys, "argv", [entry, *argv])
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # cli() sets it; restored after the test
    capfd.readouterr()
    root_logger = logging.getLogger()
    handlers, level = root_logger.handlers[:], root_logger.level
    try:
        getattr(app, entry)()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:  # Hydra configured logging for this run: leave none of it to later tests
        for handler in root_logger.handlers[:]:
            if handler not in handlers:
                root_logger.removeHandler(handler)
                handler.close()
        root_logger.setLevel(level)
    out, err = capfd.readouterr()
    return code, out, err


# ---- setups ----------------------------------------------------------------------------


def _symlink_to_src(w: World, mp: pytest.MonkeyPatch) -> None:
    (w.root / "link").symlink_to(w.root / "src", target_is_directory=True)


def _user_manifests(w: World, mp: pytest.MonkeyPatch) -> None:
    (w.root / "out" / "manifests").mkdir(parents=True)
    (w.root / "out" / "manifests" / "deploy.json").write_text('{"host": "prod"}')


def _damaged_record(w: World, mp: pytest.MonkeyPatch) -> None:
    (w.root / "done" / "manifests" / "config.json").write_text("not json {")


def _forged_record(w: World, mp: pytest.MonkeyPatch) -> None:
    path = w.root / "done" / "manifests" / "config.json"
    body = json.loads(path.read_text())
    body["config"]["augment"]["seed"] = 99  # the hash no longer matches the config
    path.write_text(json.dumps(body))


def _home_is_user(w: World, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("HOME", str(w.root / "user"))


def _side_effect_module(w: World, mp: pytest.MonkeyPatch) -> None:
    mods = w.root / "mods"
    mods.mkdir()
    marker = w.root / "mods" / "imported"
    (mods / "dp_probe_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nclass Boom:\n    pass\n"
    )
    mp.syspath_prepend(str(mods))


def _not_imported(w: World, err: str) -> None:
    assert not (w.root / "mods" / "imported").exists()
    assert "dp_probe_module" not in sys.modules


def _unsafe_key(w: World, mp: pytest.MonkeyPatch) -> None:
    from pipeline.sources import synthetic

    real = synthetic.SyntheticSource.read

    def read(self, index):
        s = real(self, index)
        return type(s)("../../escape", s.image, s.depth, s.origin, s.camera)

    mp.setattr(synthetic.SyntheticSource, "read", read)


def _nothing_escaped(w: World, err: str) -> None:
    assert not list(w.root.rglob("escape*"))
    assert not list(w.root.parent.glob("escape*"))


def _parquet_without_depth_in_second_file(w: World, mp: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pqdir = w.root / "src" / "pq"
    pqdir.mkdir()
    image = _png(np.zeros((H, W, 3), np.uint8))
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.ones((H, W), np.float32))
    pq.write_table(
        pa.table({"image": [image], "depth_map": [buf.getvalue()]}),
        pqdir / "train-00000-of-00002.parquet",
    )
    pq.write_table(pa.table({"image": [image]}), pqdir / "train-00001-of-00002.parquet")


def _not_parquet(w: World, mp: pytest.MonkeyPatch) -> None:
    pqdir = w.root / "src" / "pq"
    pqdir.mkdir()
    (pqdir / "train-00000-of-00001.parquet").write_bytes(b"PAR1 but not really" * 10)


def _bomb(w: World, mp: pytest.MonkeyPatch) -> None:
    """A small PNG whose header declares 20000 x 20000 pixels (the first image)."""
    import zlib

    width = height = 20000
    row = b"\x00" + bytes(width * 3)
    data = zlib.compress(row * 50, 9)  # a valid start; the decoder would allocate 1.2 GB

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    (w.root / "src" / "image" / "a_bomb.png").write_bytes(png)
    tifffile.imwrite(w.root / "src" / "depth" / "a_bomb.tiff", np.ones((4, 4), np.float32))


def _not_a_file_kind(name: str, data: bytes) -> Callable[[World, pytest.MonkeyPatch], None]:
    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        (w.root / "src" / name).write_bytes(data)

    return setup


def _holder(exclusive: bool) -> Callable[[World, pytest.MonkeyPatch], None]:
    """Another process holds the lock of ``done`` (shared or exclusive) and waits."""

    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        code = (
            "import sys, time; from pathlib import Path; "
            "from pipeline.dataset.lock import RunLock; "
            f"RunLock.acquire(Path({str(w.root / 'done')!r}), {exclusive}); "
            "print('held', flush=True); time.sleep(120)"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        w.holders.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"

    return setup


def _names_holder(w: World, err: str) -> None:
    pid = w.holders[0].pid
    assert f"pid {pid} on host {socket.gethostname()}" in err


def _run_then_change(source: str) -> Callable[[World, pytest.MonkeyPatch], None]:
    """Finish a dataset in ``out`` from the row's source, then change one source file."""

    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        p = {k: str(v) for k, v in w.paths.items()}
        if source == "fastdepth":
            _fastdepth_source(w, mp)
        if source == "filelist":
            _bts_list("500")(w, mp)
        if source in ("folder", "filelist", "mix"):
            args = {"folder": FOLDER, "filelist": LIST, "mix": MIX}[source]
            run(make_cfg(w.root / "out", *[a.format(**p) for a in args], small=False))
            depth = w.root / "src" / "depth" / "f3.tiff"
            stat = depth.stat()  # same size, same bytes but for the values: 2 m everywhere
            tifffile.imwrite(depth, np.full((H, W), 2.0, np.float32))
            assert depth.stat().st_size == stat.st_size
        elif source == "fastdepth":
            run(make_cfg(w.root / "out", *[a.format(**p) for a in FASTDEPTH], small=False))
            frame = w.root / "src" / "fd" / "train" / "s" / "f3.h5"
            with h5py.File(frame, "r+") as f:  # rewritten in place at the same size
                f["depth"][...] = 3.0
        else:
            run(make_cfg(w.root / "out", *[a.format(**p) for a in WDS], small=False))
            tar = w.root / "done" / "train-000001.tar"
            os.utime(tar, ns=(tar.stat().st_atime_ns, tar.stat().st_mtime_ns + 10**9))

    return setup


def _fastdepth_source(w: World, mp: pytest.MonkeyPatch) -> None:
    """``src/fd/train/s/f{i}.h5``: four FastDepth frames (rgb (3, H, W), depth metres)."""
    rng = np.random.default_rng(5)
    (w.root / "src" / "fd" / "train" / "s").mkdir(parents=True)
    for i in range(4):
        with h5py.File(w.root / "src" / "fd" / "train" / "s" / f"f{i}.h5", "w") as f:
            f.create_dataset("rgb", data=rng.integers(0, 256, (3, H, W), dtype=np.uint8))
            f.create_dataset("depth", data=np.full((H, W), 2.0, np.float32))


def _linked_image_dir(rel: str = "image") -> Callable[[World, pytest.MonkeyPatch], None]:
    """A finished ``output=folder`` dataset in ``out`` whose ``rel`` folder (``image/``, or
    ``image/train/`` below it) a user moved to another disk (``user/disk``) and linked
    back; a same-named file of theirs there."""

    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        run(make_cfg(w.root / "out", *SYN, "output=folder", small=False))
        moved = w.root / "user" / "disk" / rel
        moved.parent.mkdir(parents=True)
        shutil.move(w.root / "out" / rel, moved)
        (w.root / "out" / rel).symlink_to(moved, target_is_directory=True)
        (moved / "mine.png").write_bytes(b"the user's")

    return setup


def _run_dir_on_full_disk(w: World, mp: pytest.MonkeyPatch) -> None:
    """Hydra's run dir on a full disk: its files lead to /dev/full (every write: ENOSPC)."""
    (w.root / "run" / ".hydra").mkdir(parents=True)
    for name in (".hydra/config.yaml", "app.log", "cli.log", "__main__.log"):
        (w.root / "run" / name).symlink_to("/dev/full")


def _run_log_forbidden(w: World, mp: pytest.MonkeyPatch) -> None:
    """Hydra's log file in the run dir cannot be opened, as in a folder this user may not
    write (root may: opening it fails as the kernel would say; logging.config wraps that
    PermissionError in a ValueError)."""

    def refuse(self: logging.FileHandler):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), self.baseFilename)

    mp.setattr(logging.FileHandler, "_open", refuse)


def _full_disk(w: World, mp: pytest.MonkeyPatch) -> None:
    """Every fsync fails as on a full disk (what a disk full before the run looks like)."""

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    mp.setattr(os, "fsync", full)


def _metric3d(records: str, name: str = "list.json") -> Callable[[World, pytest.MonkeyPatch], None]:
    """``src/<name>``: Metric3D records over the folder's files (``records`` as written)."""

    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        (w.root / "src" / name).write_text(records)

    return setup


def _duplicate_key_preset(w: World, mp: pytest.MonkeyPatch) -> None:
    """``user/conf/source/mymix.yaml``: a mixture preset with a key given twice."""
    (w.root / "user" / "conf" / "source").mkdir(parents=True)
    text = "defaults:\n  - mix\n  - _self_\nnum_samples: 4\nnum_samples: 5\n"
    (w.root / "user" / "conf" / "source" / "mymix.yaml").write_text(text)


def _two_page_depth(w: World, mp: pytest.MonkeyPatch) -> None:
    """``src/depth/f0.tiff`` as a stack of two H x W pages."""
    page = np.full((H, W), 2.0, np.float32)
    tifffile.imwrite(w.root / "src" / "depth" / "f0.tiff", np.stack([page, page]))


def _unlistable_images(w: World, mp: pytest.MonkeyPatch) -> None:
    """``src/image`` cannot be listed (mode 000 for a user other than root: the tests may
    run as root, who lists anything, so listing it fails as the kernel would say)."""
    real, image = os.scandir, str(w.root / "src" / "image")

    def scandir(path=".", *args):
        if os.fspath(path) == image:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), image)
        return real(path, *args)

    mp.setattr(os, "scandir", scandir)


def _names(rel: str) -> Callable[[World, str], None]:
    """The line names the file ``rel`` of the row's world by its full path (``rel`` may end
    with what follows the name in the line)."""

    def check(w: World, err: str) -> None:
        assert f"{w.root / rel}" in err, err

    return check


def _short_line(w: World, err: str) -> None:
    assert len(err.strip()) < 600 and "[...]" in err, len(err)


def _read_only_done(w: World, mp: pytest.MonkeyPatch) -> None:
    """``done`` on a read-only disk (root writes anywhere: the lock's first write fails
    as the kernel would say)."""
    from pipeline.dataset.lock import RunLock

    def read_only(root: Path, *args, **kwargs):
        path = str(root / ".depth-pipeline" / "run.lock")
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    mp.setattr(RunLock, "acquire", staticmethod(read_only))


def _raises_in(
    target: str, exc: type[BaseException]
) -> Callable[[World, pytest.MonkeyPatch], None]:
    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        def boom(*args, **kwargs):
            raise exc("something nobody foresaw")

        mp.setattr(target, boom)

    return setup


def _traceback_in_log(w: World, err: str) -> None:
    log = err.split("the full traceback is in ")[1].split(" (")[0]
    assert Path(log).is_file() and Path(log).parent == w.root / "run"
    assert "Traceback (most recent call last)" in Path(log).read_text()


def _inputs_in_done(w: World, mp: pytest.MonkeyPatch) -> None:
    """The folder source's files, copied into the finished dataset ``done`` (``d/``)."""
    (w.root / "done" / "d").mkdir()
    for f in sorted((w.root / "src" / "depth").iterdir()):
        shutil.copy(f, w.root / "done" / "d" / f.name)
    for f in sorted((w.root / "src" / "image").iterdir()):
        shutil.copy(f, w.root / "done" / "d" / f.name)


def _list_into_done(absolute: bool) -> Callable[[World, pytest.MonkeyPatch], None]:
    """A BTS list in ``src`` naming files inside ``done`` (absolute, or through ``..``)."""

    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        _inputs_in_done(w, mp)
        d = w.root / "done" / "d" if absolute else Path("../done/d")
        lines = [f"{d}/f{i}.png {d}/f{i}.tiff 500" for i in range(4)]
        (w.root / "src" / "list.txt").write_text("\n".join(lines) + "\n")

    return setup


def _image_link_into_done(w: World, mp: pytest.MonkeyPatch) -> None:
    _inputs_in_done(w, mp)
    (w.root / "src" / "image" / "f9.png").symlink_to(w.root / "done" / "d" / "f0.png")
    shutil.copy(w.root / "src" / "depth" / "f0.tiff", w.root / "src" / "depth" / "f9.tiff")


def _depth_dir_link_into_done(w: World, mp: pytest.MonkeyPatch) -> None:
    _inputs_in_done(w, mp)
    shutil.rmtree(w.root / "src" / "depth")
    (w.root / "src" / "depth").symlink_to(w.root / "done" / "d", target_is_directory=True)


def _first_sample(name: str, make: Callable[[Path], None], which: str = "image"):
    """Sample ``a_x`` (sorted first) whose image or depth file is made by ``make(path)``;
    the other file of the pair is a good one."""

    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        src = w.root / "src"
        good = {"image": src / "image" / "f0.png", "depth": src / "depth" / "f0.tiff"}
        for kind, ext in (("image", "png"), ("depth", "tiff")):
            target = src / kind / f"a_x.{name if kind == which else ext}"
            if kind == which:
                make(target)
            else:
                shutil.copy(good[kind], target)

    return setup


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _link_to(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


def _tiff_bomb(path: Path) -> None:
    """A tiny TIFF whose header declares 30000 x 30000 float32 pixels (3.6 GB)."""
    import struct

    entries = [(256, 4, 1, 30000), (257, 4, 1, 30000), (258, 3, 1, 32), (259, 3, 1, 1),
               (262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, 30000),
               (279, 4, 1, 30000 * 30000 * 4), (339, 3, 1, 3)]  # fmt: skip
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack("<HHII", tag, typ, count, value)
    data = b"II*\x00" + struct.pack("<I", 16) + bytes(8) + ifd + struct.pack("<I", 0)
    path.write_bytes(data)


def _npy_bomb(path: Path) -> None:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (30000, 30000), }"
    header += " " * (118 - len(header)) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())


def _jpeg_bomb(path: Path) -> None:
    """A JPEG whose frame header declares 60000 x 60000 pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2
    path.write_bytes(bytes(data))


def _tar_source(extra: Callable[[tarfile.TarFile, bytes, bytes], None]):
    """``src/x.tar``: samples f0, f1 (image + float TIFF depth), then ``extra(tar, png,
    tiff)`` adds the odd members, then f2."""

    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        src = w.root / "src"
        png = (src / "image" / "f0.png").read_bytes()
        tiff = (src / "depth" / "f0.tiff").read_bytes()

        def add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))

        with tarfile.open(src / "x.tar", "w") as tf:
            for key in ("f0", "f1"):
                add(tf, f"{key}.png", png)
                add(tf, f"{key}.depth.tiff", tiff)
            extra(tf, png, tiff)
            add(tf, "f2.png", png)
            add(tf, "f2.depth.tiff", tiff)

    return setup


def _truncated_tar(w: World, mp: pytest.MonkeyPatch) -> None:
    """``src/x.tar`` cut short in its second sample (a download that stopped)."""
    _tar_source(_member("g.png"))(w, mp)
    tar = w.root / "src" / "x.tar"
    tar.write_bytes(tar.read_bytes()[:30000])


def _member(name: str, what: str = "png") -> Callable[[tarfile.TarFile, bytes, bytes], None]:
    def extra(tf: tarfile.TarFile, png: bytes, tiff: bytes) -> None:
        data = png if what == "png" else tiff
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))

    return extra


def _pair(key: str) -> Callable[[tarfile.TarFile, bytes, bytes], None]:
    def extra(tf: tarfile.TarFile, png: bytes, tiff: bytes) -> None:
        _member(f"{key}.png")(tf, png, tiff)
        _member(f"{key}.depth.tiff", "tiff")(tf, png, tiff)

    return extra


def _link_member(tf: tarfile.TarFile, png: bytes, tiff: bytes) -> None:
    info = tarfile.TarInfo("g.png")
    info.type, info.linkname = tarfile.SYMTYPE, "f0.png"
    tf.addfile(info)
    _member("g.depth.tiff", "tiff")(tf, png, tiff)


def _bts_list(focal: str) -> Callable[[World, pytest.MonkeyPatch], None]:
    """``src/list.txt``: the four folder samples with focal ``focal`` on the third."""

    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        lines = [f"image/f{i}.png depth/f{i}.tiff {focal if i == 2 else 500}" for i in range(4)]
        (w.root / "src" / "list.txt").write_text("\n".join(lines) + "\n")

    return setup


def _flip_in_done(member: str) -> Callable[[World, pytest.MonkeyPatch], None]:
    """One byte flipped in the data of the first member of ``done``'s first tar whose name
    ends with ``member``."""

    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        tar = sorted((w.root / "done").glob("*.tar"))[0]
        with tarfile.open(tar) as tf:
            info = next(m for m in tf.getmembers() if m.name.endswith(member))
        data = bytearray(tar.read_bytes())
        data[info.offset_data + info.size // 2] ^= 0x01
        tar.write_bytes(bytes(data))

    return setup


def _damage_done(how: str) -> Callable[[World, pytest.MonkeyPatch], None]:
    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        done = w.root / "done"
        if how == "tar gone":
            sorted(done.glob("*.tar"))[-1].unlink()
        elif how == "tar truncated":
            tar = sorted(done.glob("*.tar"))[0]
            tar.write_bytes(tar.read_bytes()[:1000])
        elif how == "manifest gone":
            sorted((done / "manifests").glob("train-*.json"))[0].unlink()
        elif how == "info gone":
            (done / "dataset_info.json").unlink()

    return setup


def _edited_in_lists(what: str) -> Callable[[World, pytest.MonkeyPatch], None]:
    """A finished ``output=filelist`` dataset in ``lists`` (manifests, metadata, trainer
    lists), then one sample's record in a manifest (``manifest``) or one line of the BTS
    list (``list``) edited by hand."""

    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        lists = w.root / "lists"
        run(make_cfg(lists, *SYN, "output=filelist", small=False))
        if what == "manifest":
            path = lists / "manifests" / "train-000000.json"
            body = json.loads(path.read_text())
            body["samples"][0]["camera"]["cx"] += 1.0
            path.write_text(json.dumps(body))
        else:
            path = lists / "train_files_with_gt.txt"
            first, rest = path.read_text().split("\n", 1)
            path.write_text(first.rsplit(" ", 1)[0] + " 999\n" + rest)

    return setup


def _failed_slice(w: World, mp: pytest.MonkeyPatch) -> None:
    """Slice 0 of 2 of the folder source finished in ``sliced``; slice 1 stopped by a
    sample whose depth is not a TIFF (as its job would have)."""
    from pipeline.errors import PipelineError

    (w.root / "src" / "depth" / "f3.tiff").write_bytes(b"not a tiff")
    p = {k: str(v) for k, v in w.paths.items()}
    args = [a.format(**p) for a in FOLDER] + ["shard.num_shards=2"]
    run(make_cfg(w.root / "sliced", *args, "shard.index=0", small=False))
    with pytest.raises(PipelineError, match="f3"):
        run(make_cfg(w.root / "sliced", *args, "shard.index=1", small=False))


def _far_depth(w: World, mp: pytest.MonkeyPatch) -> None:
    """1e17 m in 10% of the pixels of sample f1's depth."""
    path = w.root / "src" / "depth" / "f1.tiff"
    far = tifffile.imread(path)
    far[: H // 10] = 1e17
    tifffile.imwrite(path, far)


def _read_only_out(w: World, mp: pytest.MonkeyPatch) -> None:
    """``out`` on a read-only disk (root writes anywhere: creating it fails as the kernel
    would say)."""
    real, out = Path.mkdir, w.root / "out"

    def mkdir(self: Path, *args, **kwargs) -> None:
        if self == out:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real(self, *args, **kwargs)

    mp.setattr(Path, "mkdir", mkdir)


def _camera_files(bad: str) -> Callable[[World, pytest.MonkeyPatch], None]:
    """``src/cam/f{i}.json``: each sample's camera; f1's holds ``bad`` as written."""

    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        (w.root / "src" / "cam").mkdir()
        for i in range(4):
            good = '{"fx": 500, "fy": 500, "cx": 60, "cy": 45}'
            (w.root / "src" / "cam" / f"f{i}.json").write_text(bad if i == 1 else good)

    return setup


def _env(**values: str) -> Callable[[World, pytest.MonkeyPatch], None]:
    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        for name, value in values.items():
            mp.setenv(name, value)

    return setup


def _list_text(name: str, text: str | bytes) -> Callable[[World, pytest.MonkeyPatch], None]:
    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        data = text.encode() if isinstance(text, str) else text
        (w.root / "src" / name).write_bytes(data)

    return setup


def _turned_depth(w: World, mp: pytest.MonkeyPatch) -> None:
    tifffile.imwrite(w.root / "src" / "depth" / "f0.tiff", np.ones((W, H), np.float32))


# ---- the table -------------------------------------------------------------------------

OUT = "output.dir={out}"
ROWS = [
    # the input, user files and finished datasets are never deleted, replaced or mixed
    Row("out=folder source, overwrite", [*FOLDER, "output.dir={src}", "output.overwrite=true"],
        "is the source"),
    Row("out=webdataset source fed back in, overwrite",
        [*WDS, "output.dir={done}", "output.overwrite=true"], "is the source"),
    Row("out inside the source", [*FOLDER, "output.dir={src}/image/new"], "is inside the source"),
    Row("out contains the source", [*FOLDER, "output.dir={root}"], "contains the source"),
    Row("out is a symlink to the source", [*FOLDER, "output.dir={root}/link"], "is the source",
        _symlink_to_src),
    Row("only a user's manifests/, overwrite", [*SYN, OUT, "output.overwrite=true"],
        "not empty (manifests)", _user_manifests, early=False),
    Row("only a user's manifests/", [*SYN, OUT], "not empty (manifests)", _user_manifests,
        early=False),
    Row("foreign directory, overwrite", [*SYN, "output.dir={user}", "output.overwrite=true"],
        "holds no depth-pipeline dataset"),
    Row("damaged config record, overwrite", [*SYN, "output.dir={done}", "output.overwrite=true"],
        "is not a config record written by depth-pipeline", _damaged_record),
    Row("forged config record, overwrite", [*SYN, "output.dir={done}", "output.overwrite=true"],
        "is not a config record written by depth-pipeline", _forged_record),
    Row("another config on a finished dataset", [*SYN, "output.dir={done}", "augment.seed=7"],
        "differs in: augment.seed (0 -> 7)"),
    Row("output.dir=~ is the user's home", [*SYN, "output.dir='~'"],
        "holds no depth-pipeline dataset", _home_is_user),
    Row("output.dir=~nosuchuser", [*SYN, "output.dir='~no_such_user_xyz/ds'"], "cannot expand '~'"),
    Row("output.dir empty", [*SYN, "output.dir=''"], "output.dir is empty"),
    Row("source changed since the run (folder)", [*FOLDER, OUT], "the source changed",
        _run_then_change("folder"), early=False),
    Row("source changed since the run (webdataset)", [*WDS, OUT], "the source changed",
        _run_then_change("webdataset"), early=False),
    *(Row(f"output.lock_stale_s={v}", [*SYN, OUT, f"output.lock_stale_s={v}"],
          f"output.lock_stale_s={v} must be finite and >= 30 s") for v in ("0", "-5", "nan")),
    Row("a URL output.dir with '..'", [*SYN, "output.dir=s3://bkt/../x"],
        "output.dir=s3://bkt/../x: a URL path with '..'"),
    Row("a URL source with '..'", [*WDS, OUT, "source.path=s3://bkt/a/../b.tar"],
        "source.path=s3://bkt/a/../b.tar: a URL path with '..'"),
    Row("a URL source folder with '..'", [*WDS, OUT, "source.path=s3://bkt/a/../ds"],
        "source.path=s3://bkt/a/../ds: a URL path with '..'"),
    Row("Hydra's run dir on a full disk", [*SYN, OUT], "No space left on device); free space",
        _run_dir_on_full_disk),
    Row("Hydra's run dir not writable", [*SYN, OUT], "Permission denied); make it writable",
        _run_log_forbidden),
    Row("output.dir on a disk full at start", [*SYN, OUT], "no space left for output.dir=",
        _full_disk, early=False),
    Row("output.dir on a read-only disk", [*SYN, OUT],
        "is not writable (Read-only file system); choose another output.dir", _read_only_out),
    Row("Metric3D cam_in of 3 numbers", [*M3D, OUT], "record 1: cam_in=[500, 500, 40] must be",
        _metric3d('{"files": [{"rgb": "image/f0.png", "depth": "depth/f0.tiff", '
                  '"cam_in": [500, 500, 40]}]}')),
    Row("Metric3D record not an object", [*M3D, OUT], "list.json record 2: not a Metric3D",
        _metric3d('{"files": [{"rgb": "image/f0.png", "depth": "depth/f0.tiff"}, [1, 2]]}')),
    Row("Metric3D files not a list", [*M3D, OUT], "list.json record: not a Metric3D",
        _metric3d('{"files": 7}')),
    Row("Metric3D rgb not a path", [*M3D, OUT], "record 1: not a Metric3D",
        _metric3d('{"files": [{"rgb": 5, "depth": "depth/f0.tiff"}]}')),
    Row("Metric3D JSON lines with a broken line",
        [*M3D[:-1], "source.path={src}/list.jsonl", OUT], "list.jsonl line 2: not a Metric3D",
        _metric3d('{"rgb": "image/f0.png", "depth": "depth/f0.tiff"}\n{"rgb": \n', "list.jsonl")),
    Row("a camera file that is not JSON", [*FOLDER, OUT, "source.camera_path='cam/{{stem}}.json'"],
        "sample f1: camera file ", _camera_files('{"fx": 500, "fy": '), early=False,
        check=_names("src/cam/f1.json:")),
    Row("a camera file with a word for fx", [*FOLDER, OUT,
        "source.camera_path='cam/{{stem}}.json'"], "fx, fy, cx, cy must be numbers, got 'abc'",
        _camera_files('{"fx": "abc"}'), early=False),
    Row("a mixture preset with a duplicate key", ["--config-dir", "{user}/conf", "source=mymix",
        OUT, *COMMON], "mymix.yaml line 5: found duplicate key num_samples",
        _duplicate_key_preset),
    Row("a 2-page TIFF as depth", [*FOLDER, OUT], "f0.tiff: a TIFF of 2 pages (a stack)",
        _two_page_depth, early=False),
    Row("depth of 1e17 m in 10% of a sample", [*FOLDER, OUT],
        "sample f1: 1152 pixel(s) of depth beyond 1000 m (largest 1e+17 m)", _far_depth,
        early=False),
    Row("an image folder that cannot be listed", [*FOLDER, OUT],
        "image (Permission denied): its files would be left out", _unlistable_images),
    Row("a 4,400-character output.dir", [*SYN, "output.dir={root}/" + "d/" * 2200], "[...]",
        early=False, check=_short_line),
    Row("depth-pipeline-report on a read-only dataset", ["{done}"],
        "run.lock (Read-only file system) while rebuilding the report", _read_only_done,
        early=False, entry="report_cli"),
    Row("overwrite through a linked image/ folder", [*SYN, OUT, "output=folder",
        "output.overwrite=true", "augment.seed=3"], "image/ is a link to", _linked_image_dir(),
        early=False),
    Row("overwrite through a linked image/train/ folder", [*SYN, OUT, "output=folder",
        "output.overwrite=true", "augment.seed=3"], "image/train/ is a link to",
        _linked_image_dir("image/train"), early=False),
    Row("resume through a linked image/train/ folder", [*SYN, OUT, "output=folder"],
        "image/train/ is a link to", _linked_image_dir("image/train"), early=False),
    Row("a mixture part with both weight and count", [*MIX, OUT, "source.parts.a.weight=1",
        "source.parts.a.count=2"], "source.parts.a: both weight=1 and count=2"),
    Row("parts' counts short of source.num_samples", [*MIX, OUT, "source.parts.a.count=2",
        "source.num_samples=4"], "counts add up to 2, not source.num_samples=4"),
    *(Row(f"a depth file rewritten since the run ({kind})", [*args, OUT], "the source changed",
          _run_then_change(kind), early=False)
      for kind, args in (("filelist", LIST), ("mix", MIX), ("fastdepth", FASTDEPTH))),
    Row("exclusive holder: an overwrite is running", [*SYN, "output.dir={done}"],
        "is being replaced by another depth-pipeline run", _holder(True), False, _names_holder),
    Row("shared holder: overwrite must wait", [*SYN, "output.dir={done}", "output.overwrite=true"],
        "is in use by another depth-pipeline run", _holder(False), False, _names_holder),
    # every file any source reads is input (resolved), checked before anything is deleted
    Row("depth template into a finished dataset, overwrite", [*FOLDER,
        "source.depth_path='../done/d/{{stem}}.tiff'", "output.dir={done}",
        "output.overwrite=true"], "contains the source", _inputs_in_done),
    Row("depth template by absolute path into output.dir", [*FOLDER,
        "source.depth_path='{done}/d/{{stem}}.tiff'", "output.dir={done}"],
        "contains the source", _inputs_in_done),
    Row("mask template into output.dir, overwrite", [*FOLDER,
        "source.mask_path='../done/d/{{stem}}.png'", "output.dir={done}",
        "output.overwrite=true"], "contains the source", _inputs_in_done),
    Row("image symlinked into output.dir, overwrite", [*FOLDER, "output.dir={done}",
        "output.overwrite=true"], "contains the source", _image_link_into_done),
    Row("depth folder symlinked into output.dir, overwrite", [*FOLDER, "output.dir={done}",
        "output.overwrite=true"], "contains the source", _depth_dir_link_into_done),
    Row("BTS list with absolute paths into output.dir, overwrite", ["source=filelist",
        "source.path={src}/list.txt", *CROP, *COMMON, "output.dir={done}",
        "output.overwrite=true"], "contains the source", _list_into_done(True)),
    Row("BTS list with ../ paths into output.dir, overwrite", ["source=filelist",
        "source.path={src}/list.txt", *CROP, *COMMON, "output.dir={done}",
        "output.overwrite=true"], "climbs out of source.image_root", _list_into_done(False)),
    Row("BTS list into output.dir, new output", ["source=filelist",
        "source.path={src}/list.txt", *CROP, *COMMON, "output.dir={done}/d"],
        "contains the source", _list_into_done(True)),
    # every path built from config or data stays inside output.dir
    Row("split escapes", [*SYN, OUT, "source.split=../user"], "source.split='../user'"),
    Row("split absolute", [*SYN, OUT, "source.split=/tmp/abs"], "source.split='/tmp/abs'"),
    Row("prefix escapes", [*SYN, OUT, "output.prefix=../user"], "output.prefix='../user'"),
    Row("prefix with a separator", [*SYN, OUT, "output.prefix=a/b"], "output.prefix='a/b'"),
    Row("prefix hidden", [*SYN, OUT, "output.prefix=.hidden"], "output.prefix='.hidden'"),
    Row("prefix glob", [*SYN, OUT, "output.prefix=tr*in"], "output.prefix='tr*in'"),
    Row("sample key escapes", [*SYN, OUT], "sample key '../../escape' is not safe", _unsafe_key,
        False, _nothing_escaped),
    # every value is checked before the first sample
    Row("num_samples<0", [*SYN, OUT, "source.num_samples=-1"], "source.num_samples must be >= 0"),
    Row("source seed<0", [*SYN, OUT, "source.seed=-1"], "source.seed must be >= 0"),
    Row("augment seed<0", [*SYN, OUT, "augment.seed=-1"], "augment.seed must be >= 0"),
    Row("copies=0", [*SYN, OUT, "augment.copies=0"], "augment.copies must be >= 1"),
    Row("shard_size=0", [*SYN, OUT, "output.shard_size=0"], "output.shard_size must be > 0"),
    Row("png level", [*SYN, OUT, "output.image.level=12"], "output.image.level must be 0..9"),
    Row("tiff compression", [*SYN, OUT, "output.depth.compression=gzip"],
        "output.depth.compression: 'gzip' is not a choice"),
    Row("tiff predictor", [*SYN, OUT, "output.depth.predictor=5"], "output.depth.predictor"),
    Row("tiff level", [*SYN, OUT, "output.depth.level=-1"], "output.depth.level must be >= 0"),
    Row("format", [*SYN, OUT, "output.format=zip"], "output.format: 'zip' is not a choice"),
    Row("on_error", [*SYN, OUT, "runtime.on_error=maybe"], "runtime.on_error: 'maybe' is not"),
    Row("max_in_flight", [*SYN, OUT, "runtime.max_in_flight=-1"], "runtime.max_in_flight"),
    Row("slice index", [*SYN, OUT, "shard.index=3", "shard.num_shards=2"], "shard.index must"),
    Row("depth min<0", [*SYN, OUT, "source.depth.min=-1"], "source.depth.min must be >= 0"),
    Row("depth max<=min", [*SYN, OUT, "source.depth.max=0"], "source.depth.max must be >"),
    Row("limit<0", [*SYN, OUT, "source.limit=-3"], "source.limit must be >= 0"),
    Row("tiny synthetic", [*SYN, OUT, "source.height=8"], "source.height and source.width"),
    Row("colormap", [*SYN, OUT, "report.enabled=true", "report.colormap=nope"],
        "report.colormap='nope' is not a matplotlib colormap"),
    Row("invalid colour", [*SYN, OUT, "report.enabled=true", "report.invalid_color=notacolor"],
        "report.invalid_color='notacolor' is not a colour"),
    Row("picture name", [*SYN, OUT, "report.enabled=true", "report.plots=[foo]"],
        "report.plots: unknown picture(s) ['foo']"),
    Row("report rows", [*SYN, OUT, "report.enabled=true", "report.rows=0"], "report.rows"),
    Row("report dpi", [*SYN, OUT, "report.enabled=true", "report.dpi=0"], "report.dpi"),
    Row("report depth range", [*SYN, OUT, "report.enabled=true", "report.depth_min=5",
        "report.depth_max=1"], "report.depth_min must be below report.depth_max"),
    Row("depth_scale=0", [*FOLDER, OUT, "source.depth_scale=0"], "source.depth_scale must be"),
    Row("camera fx<0", [*FOLDER, OUT, "source.camera.fx=-5"], "source.camera.fx"),
    Row("unpaired", [*FOLDER, OUT, "source.unpaired=maybe"], "source.unpaired must be"),
    Row("image_regex", [*FOLDER, OUT, "source.image_regex='('"], "source.image_regex"),
    # transforms: only albumentations (and ours), and the sample contract after them
    Row("_target_ with import side effects", [*SYN, OUT,
        "+augment.transforms.x._target_=dp_probe_module.Boom"],
        "outside albumentations and pipeline.augment.transforms", _side_effect_module, True,
        _not_imported),
    Row("_target_ os.system", [*SYN, OUT, "+augment.transforms.x._target_=os.system"],
        "outside albumentations and pipeline.augment.transforms"),
    Row("_target_ at the old place", [*SYN, OUT,
        "+augment.transforms.x._target_=pipeline.transforms.KBCrop"],
        "use pipeline.augment.transforms.KBCrop"),
    Row("_target_ typo", [*SYN, OUT, "+augment.transforms.x._target_=albumentations.Flipp"],
        "is not an albumentations transform"),
    Row("Normalize makes float images", [*SYN, OUT,
        "+augment.transforms.norm._target_=albumentations.Normalize"],
        "augment.transforms.norm (Normalize) turns the image into float32"),
    Row("ToGray to one channel", [*SYN, OUT,
        "+augment.transforms.gray._target_=albumentations.ToGray",
        "+augment.transforms.gray.num_output_channels=1"],
        "augment.transforms.gray (ToGray) turns the image into shape"),
    Row("transform argument", [*SYN, OUT, "augment.transforms.flip.p=2"],
        "augment.transforms.flip.p: HorizontalFlip: input should be less than or equal to 1"),
    Row("crop larger than the images", [*SYN, OUT, "augment.transforms.crop.height=500"],
        "is larger than the 96x128 input"),
    Row("fill_mask", [*SYN, OUT, "+augment.transforms.rot._target_=albumentations.Rotate",
        "+augment.transforms.rot.fill_mask=5"], "fill_mask must be 0"),
    # opening a source
    Row("parquet file without the depth column", ["source=hub", "source.path={src}/pq",
        *CROP, *COMMON, OUT, "source.cache_dir={root}/run/cache"],
        "source.columns: depth_map not in", _parquet_without_depth_in_second_file),
    Row("not a parquet file", ["source=hub", "source.path={src}/pq", *CROP, *COMMON, OUT,
        "source.cache_dir={root}/run/cache"], "this is not a parquet file", _not_parquet),
    Row("decompression bomb as first image", [*FOLDER, OUT], "a decompression bomb", _bomb,
        early=False),
    Row("missing source path", [*FOLDER[:1], "source.path={root}/nope", *FOLDER[2:], OUT],
        "is not a directory"),
    Row("webdataset file that is no tar", ["source=webdataset", "source.path={src}/x.tar",
        "augment=none", *COMMON, OUT], "is not a readable tar file",
        _not_a_file_kind("x.tar", b"hello")),
    Row("webdataset tar cut short", [*TAR, OUT],
        "x.tar is not a readable tar file (unexpected end of data); re-create or re-download",
        _truncated_tar),
    Row("nyu_mat file that is no HDF5", ["source=nyu_mat", "source.path={src}/x.mat",
        "augment=none", *COMMON, OUT], "is not an HDF5", _not_a_file_kind("x.mat", b"hello")),
    # a file that is not a regular file, or declares too many pixels: refused per sample
    Row("image is a FIFO", [*FOLDER, OUT], "sample a_x", _first_sample("png", _fifo), early=False),
    Row("depth is a FIFO", [*FOLDER, OUT], "a FIFO", _first_sample("tiff", _fifo, "depth"),
        early=False),
    Row("depth links to /dev/zero", [*FOLDER, OUT], "a character device",
        _first_sample("tiff", _link_to("/dev/zero"), "depth"), early=False),
    Row("image links to /dev/urandom", [*FOLDER, OUT], "a character device",
        _first_sample("png", _link_to("/dev/urandom")), early=False),
    Row("image is a socket", [*FOLDER, OUT], "a socket", _first_sample("png", _socket),
        early=False),
    Row("image is a broken link", [*FOLDER, OUT], "sample a_x",
        _first_sample("png", _link_to("/nonexistent/x.png")), early=False),
    Row("image links to a directory", [*FOLDER, OUT], "sample a_x",
        _first_sample("png", _link_to("../depth")), early=False),
    Row("TIFF depth declaring 30000x30000", [*FOLDER, OUT], "the TIFF is 30000x30000 pixels",
        _first_sample("tiff", _tiff_bomb, "depth"), early=False),
    Row("NPY depth declaring 30000x30000", [*FOLDER, OUT, "source.depth_path='depth/{{stem}}.npy'"],
        "a decompression bomb", _first_sample("npy", _npy_bomb, "depth"), early=False),
    Row("JPEG image declaring 60000x60000", [*FOLDER, OUT, "source.image_glob='image/*.*'"],
        "a decompression bomb", _first_sample("jpg", _jpeg_bomb), early=False),
    # whatever a source sees is a sample: written, or failing by name (counted when skipped)
    Row("tar sample whose key starts with __", [*TAR, OUT], "'__b'", _tar_source(_pair("__b")),
        early=False),
    Row("tar sample in a __ folder", [*TAR, OUT], "'__d/b'", _tar_source(_pair("__d/b")),
        early=False),
    Row("tar member without an extension", [*TAR, OUT], "no image member",
        _tar_source(_member("README")), early=False),
    Row("tar image member that is a link", [*TAR, OUT], "a link or special member",
        _tar_source(_link_member), early=False),
    Row("tar sample with only a depth", [*TAR, OUT], "no image member",
        _tar_source(_member("h.depth.tiff", "tiff")), early=False),
    Row("tar members of one key not next to each other", [*TAR, OUT],
        "the members of key 'f0' are not next to each other in", _tar_source(_member("f0.x.png")),
        check=_names("src/x.tar (")),
    # a bad value in one sample is that sample's error, never the run's
    Row("NaN focal in a BTS list", [*LIST, OUT], "camera fx=nan", _bts_list("nan"), early=False),
    Row("inf focal in a BTS list", [*LIST, OUT], "camera fx=inf", _bts_list("inf"), early=False),
    Row("zero focal in a BTS list", [*LIST, OUT], "focal lengths must be finite and > 0",
        _bts_list("0"), early=False),
    Row("negative focal in a BTS list", [*LIST, OUT], "camera fx=-5.0", _bts_list("-5"),
        early=False),
    # shards are checked against their manifests' sha256: one line per damaged file
    Row("verify: a byte flipped in a depth member", ["{done}"], "its bytes changed",
        _flip_in_done("depth.tiff"), entry="verify_cli"),
    Row("verify: a byte flipped in an image member", ["{done}"], "sha256 differs",
        _flip_in_done(".png"), entry="verify_cli"),
    Row("verify: a byte flipped in a record member", ["{done}"], "train-000000.tar",
        _flip_in_done(".json"), entry="verify_cli"),
    Row("verify: a shard file gone", ["{done}"], "train-000001.tar: missing",
        _damage_done("tar gone"), entry="verify_cli"),
    Row("verify: a shard file truncated", ["{done}"], "its bytes changed",
        _damage_done("tar truncated"), entry="verify_cli"),
    Row("verify: a manifest gone", ["{done}"], "missing or unreadable",
        _damage_done("manifest gone"), entry="verify_cli"),
    Row("verify: not a finished dataset", ["{done}"], "holds no finished depth-pipeline",
        _damage_done("info gone"), entry="verify_cli"),
    Row("verify: a user's folder", ["{user}"], "holds no finished depth-pipeline",
        entry="verify_cli"),
    Row("verify: no such directory", ["{root}/nope"], "holds no finished depth-pipeline",
        entry="verify_cli"),
    Row("merge: not a sliced run", ["{done}"], "it was not written by sliced runs",
        entry="merge_cli"),
    Row("merge: a slice stopped by a bad sample", ["{root}/sliced"],
        "slice-00001-of-00002 failed: sample f3: ", _failed_slice, entry="merge_cli"),
    Row("verify: a sample's record edited in a manifest", ["{root}/lists"],
        "manifests/train-000000.json: edited since the dataset was published",
        _edited_in_lists("manifest"), entry="verify_cli"),
    Row("verify: a trainer list edited", ["{root}/lists"],
        "train_files_with_gt.txt: edited since the dataset was published",
        _edited_in_lists("list"), entry="verify_cli"),
    # no network: one line at once (no retries), whatever says so
    Row("hub repo, the hub's port closed", [*HUB, "source.path=nobody/no_such_dataset"],
        "cannot reach the Hugging Face Hub", _env(HF_ENDPOINT="http://127.0.0.1:9")),
    Row("hub repo, HF_HUB_OFFLINE=1", [*HUB, "source.path=nobody/no_such_dataset"],
        "cannot reach the Hugging Face Hub", _env(HF_HUB_OFFLINE="1")),
    Row("hub repo, an endpoint that is no URL", [*HUB, "source.path=nobody/no_such_dataset"],
        "cannot reach the Hugging Face Hub", _env(HF_ENDPOINT="not-a-url")),
    # one clear line for each way a list, a tar or an override is not what it seems
    Row("../ path in a BTS list", [*LIST, OUT], "climbs out of source.image_root with '..'",
        _list_text("list.txt", "image/f0.png depth/f0.tiff 500\n../o/o.png depth/f1.tiff 5\n")),
    Row("../ depth path in a BTS list", [*LIST, OUT], "line 1: 'depth/../../d.tiff' climbs out",
        _list_text("list.txt", "image/f0.png depth/../../d.tiff 500\n")),
    Row("bad .jsonl line names its number", [*LIST[:1], "source.path={src}/l.jsonl", *LIST[2:],
        OUT], "line 3: not a Metric3D record", _list_text("l.jsonl",
        '{"rgb": "image/f0.png", "depth": "depth/f0.tiff"}\n\n{"rgb": "image/f1.png"\n')),
    Row("jsonl line that is no object", [*LIST[:1], "source.path={src}/l.jsonl", *LIST[2:],
        OUT], "line 2: not a Metric3D record", _list_text("l.jsonl",
        '{"rgb": "image/f0.png", "depth": "depth/f0.tiff"}\n[1, 2]\n')),
    Row("shard.num_shards=0", [*SYN, OUT, "shard.num_shards=0"], "shard.num_shards must be >= 1"),
    Row("shard.num_shards<0", [*SYN, OUT, "shard.num_shards=-2"], "shard.num_shards must be >= 1"),
    Row("a nested compose (OneOf)", [*SYN, OUT,
        "+augment.transforms.x._target_=albumentations.OneOf"], "OneOf is a compose of transforms"),
    Row("a nested compose (Sequential)", [*SYN, OUT,
        "+augment.transforms.x._target_=albumentations.Sequential"], "does not support"),
    Row("non-ASCII path unquoted", [*SYN, "output.dir={root}/d\u00e9j\u00e0"], "quote it"),
    Row("a path with a bracket unquoted", [*SYN, "output.dir={root}/a[b"], "quote it"),
    Row("depth turned by 90 degrees (EXIF)", [*FOLDER, OUT], "an EXIF orientation tag",
        _turned_depth, early=False),
    # the last resort: one line naming the step and where the traceback went
    Row("unexpected error while writing", [*SYN, OUT],
        "unexpected ZeroDivisionError while writing the shards",
        _raises_in("pipeline.encode.codecs.encode_sample", ZeroDivisionError), False,
        _traceback_in_log),
    Row("unexpected error while opening the source", [*SYN, OUT],
        "unexpected KeyError while opening the source (synthetic)",
        _raises_in("pipeline.sources.synthetic.SyntheticSource.__len__", KeyError), True,
        _traceback_in_log),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row: Row, world: World, monkeypatch, capfd):
    if row.setup is not None:
        row.setup(world, monkeypatch)
    before = snapshot(world.root)
    args = [a.format(**{k: str(v) for k, v in world.paths.items()}) for a in row.args]
    code, out, err = cli(world, monkeypatch, capfd, args, row.entry)
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert row.words in lines[0], err
    assert "Traceback" not in out + err
    assert snapshot(world.root) == before
    if row.early:
        assert not (world.root / "out").exists()
    assert not (ROOT / "~").exists()
    if row.check is not None:
        row.check(world, err)


SKIPPED = [
    ("tar key __b", TAR, _tar_source(_pair("__b")), "__b", 4),
    ("tar member README", TAR, _tar_source(_member("README")), "README", 4),
    ("tar link member", TAR, _tar_source(_link_member), "g", 4),
    ("NaN focal", LIST, _bts_list("nan"), "image/f2", 4),
    ("broken image link", FOLDER, _first_sample("png", _link_to("/nonexistent/x.png")), "a_x", 5),
    ("FIFO depth", FOLDER, _first_sample("tiff", _fifo, "depth"), "a_x", 5),
]


@pytest.mark.parametrize("args, setup, key, seen", [s[1:] for s in SKIPPED],
                         ids=[s[0] for s in SKIPPED])  # fmt: skip
def test_every_input_is_written_or_counted(args, setup, key, seen, world, monkeypatch, capfd):
    """With ``runtime.on_error=skip`` the bad sample is counted, with its reason, in the
    summary and ``dataset_info.json``; the run finishes, and so does its re-run."""
    setup(world, monkeypatch)
    p = {k: str(v) for k, v in world.paths.items()}
    argv = [a.format(**p) for a in [*args, OUT, "runtime.on_error=skip"]]
    code, out, err = cli(world, monkeypatch, capfd, argv)
    assert code == 3, (out, err)
    assert out.splitlines()[0].startswith(f"wrote {seen - 1} samples (1 skipped)"), out
    info = json.loads((world.root / "out" / "dataset_info.json").read_text())
    counts = info["counts"]
    assert counts["written"] + counts["skipped"] == seen
    assert [s["key"] for s in counts["skipped_samples"]] == [key]
    again = cli(world, monkeypatch, capfd, argv)
    assert again[0] == 3 and "kept" in again[1], again


def test_far_depth_values_are_flagged_and_accepted_with_depth_max(world, monkeypatch, capfd):
    """A depth of 1e17 m (or float32's largest) is a value, not a crash; in 10% of one
    sample's pixels it is flagged by the plausible ceiling (1000 m) naming the sample and
    ``source.depth.max``, which accepts the values when they are real."""
    path = world.root / "src" / "depth" / "f1.tiff"
    far = tifffile.imread(path)
    far[: H // 10] = 1e17  # 10% of one sample's pixels
    far[0, :4] = np.finfo(np.float32).max
    tifffile.imwrite(path, far)
    p = {k: str(v) for k, v in world.paths.items()}
    argv = [a.format(**p) for a in [*FOLDER, OUT]]
    code, out, err = cli(world, monkeypatch, capfd, argv)
    assert code == 2 and len(err.strip().splitlines()) == 1, (out, err)
    assert "sample f1: " in err and "beyond 1000 m (largest 3.4e+38 m)" in err, err
    assert "source.depth.max=3.4e+38" in err
    accept = ["source.depth.max=3.4e38", "output.overwrite=true"]
    code, out, err = cli(world, monkeypatch, capfd, [*argv, *accept])
    assert code == 0, (out, err)
    info = json.loads((world.root / "out" / "dataset_info.json").read_text())
    assert info["counts"]["written"] == 4  # (the crop may cut the far rows out)


def test_no_network_is_one_line_through_a_real_process(tmp_path):
    """Item 12 with the network really absent for huggingface_hub (its endpoint a closed
    port, read at its import): no retry warnings, one line, exit 2."""
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", HF_ENDPOINT="http://127.0.0.1:9",
               HF_HOME=str(tmp_path / "hf"))  # fmt: skip
    env.pop("HF_HUB_OFFLINE", None)
    out, run_dir = f"output.dir={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'run'}"
    argv = [sys.executable, "-m", "pipeline", "source=hub", "source.path=nobody/no_such_dataset",
            *COMMON, out, run_dir]  # fmt: skip
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Hugging Face Hub" in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_hydra_job_chdir_reads_and_writes_where_the_command_started(world):
    """Item 10: with ``hydra.job.chdir=true``, relative ``source.path`` and ``output.dir``
    mean the directory the command was started in (so the summary's path is the real one);
    the same command again resumes."""
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    argv = [sys.executable, "-m", "pipeline", "source=folder", "source.path=src", *CROP,
            "output.shard_size=2", *COMMON, "output.dir=rel/out", "hydra.job.chdir=true",
            "hydra.run.dir=run/job"]  # fmt: skip
    first = subprocess.run(argv, cwd=world.root, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    out = world.root / "rel" / "out"
    assert first.stdout.splitlines()[0].endswith("-> rel/out"), first.stdout  # as given
    assert (out / "dataset_info.json").is_file()
    assert not (world.root / "run" / "job" / "rel").exists()
    again = subprocess.run(argv, cwd=world.root, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "kept 4 from an earlier run in 2 shards -> rel/out" in again.stdout


def test_a_bom_list_and_a_gzip_tar_named_tar_are_read(world, monkeypatch, capfd):
    """Item 11: a UTF-8 BOM at the start of a list is accepted; a gzip-compressed tar named
    ``.tar`` is read as what it is."""
    import gzip

    src, p = world.root / "src", {k: str(v) for k, v in world.paths.items()}
    lines = "".join(f"image/f{i}.png depth/f{i}.tiff 500\n" for i in range(4))
    (src / "list.txt").write_bytes(b"\xef\xbb\xbf" + lines.encode())
    code, out, err = cli(world, monkeypatch, capfd, [a.format(**p) for a in [*LIST, OUT]])
    assert code == 0 and out.startswith("wrote 4 samples (0 skipped)"), (out, err)
    tar = sorted((world.root / "done").glob("*.tar"))[0]
    (src / "z.tar").write_bytes(gzip.compress(tar.read_bytes()))
    args = ["source=webdataset", "source.path={src}/z.tar", "augment=none", *COMMON,
            "output.dir={root}/out2"]  # fmt: skip
    code, out, err = cli(world, monkeypatch, capfd, [a.format(**p) for a in args])
    assert code == 0 and out.startswith("wrote 2 samples (0 skipped)"), (out, err)
