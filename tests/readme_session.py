"""Running the documentation's code as a reader would: README.md and every page of the
docs site (``pipeline/docs/pages/``, in the order of ``mkdocs.yml``'s nav) read as one
text, its fenced blocks and inline commands found by parsing the Markdown; each shell
line's words as bash makes them (quotes, ``\\`` continuations, comments, redirections),
then the program run in a scratch working directory (``outputs/`` lands there, never in
the repo).

``depth-pipeline``, ``depth-pipeline-report`` and ``depth-pipeline-merge`` run their real
entry points in this process (an interpreter start per command would cost ~2 s each);
``make`` runs as a subprocess in a copy of the Makefile next to this venv."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
import yaml
from conftest import ROOT, read_tar
from PIL import Image

DOCS_DIR = ROOT / "pipeline" / "docs"
# Commands run in a scratch dir: the processes they start (workers, make, SLURM-local
# jobs) import this checkout's package, not whichever one the venv's install points at.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)


class Docs:
    """README.md and the docs pages as one text (README first, then the pages in the
    order of the site's nav: a page may read what an earlier one wrote), knowing which
    file each line of it came from."""

    def __init__(self) -> None:
        nav = yaml.safe_load((DOCS_DIR / "mkdocs.yml").read_text())["nav"]
        pages = [DOCS_DIR / "pages" / next(iter(entry.values())) for entry in nav]
        self.files = [ROOT / "README.md", *pages]

    def read_text(self) -> str:
        texts = [f.read_text() for f in self.files]
        return "".join(x if x.endswith("\n") else x + "\n" for x in texts)

    def where(self, line: int) -> str:
        """``file:line`` of line ``line`` (1-based) of the whole text."""
        for f in self.files:
            n = len(f.read_text().splitlines()) or 1
            if line <= n:
                return f"{f.relative_to(ROOT)}:{line}"
            line -= n
        return f"(end):{line}"


README = Docs()
PROGRAMS = ("depth-pipeline", "depth-pipeline-report", "depth-pipeline-merge", "make", "pip")
COMMAND = re.compile(rf"^({'|'.join(PROGRAMS)})( |$)")


@dataclass(frozen=True)
class Item:
    """A fenced block (``lang``: bash, python, json, "" ...) or one shell command of a
    bash block or of an inline code span (``lang`` = "command")."""

    line: int
    lang: str
    text: str
    section: str

    @property
    def key(self) -> str:
        """What the test tables are keyed by: a command without its comment; a block's
        first line."""
        if self.lang == "command":
            return " ".join(strip_comment(self.text).split())
        return self.text.splitlines()[0] if self.text else ""

    @property
    def id(self) -> str:
        return f"{README.where(self.line).removeprefix('pipeline/docs/')}:{self.key[:60]}"


def strip_comment(line: str) -> str:
    """The line without a trailing shell comment (a ``#`` starting an unquoted word)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def parse(text: str) -> list[Item]:
    """Fenced blocks, the commands of bash blocks and inline commands, in README order."""
    items: list[Item] = []
    fences = list(re.finditer(r"^```(\w*)\n(.*?)^```[ \t]*$", text, re.S | re.M))
    prose = text
    for m in reversed(fences):  # blank the blocks out (keeping line numbers) for headings
        prose = prose[: m.start()] + "\n" * m.group(0).count("\n") + prose[m.end() :]
    headings = [(prose[: m.start()].count("\n") + 1, m.group(1)) for m in _headings(prose)]

    def section(line: int) -> str:
        return ([title for at, title in headings if at < line] or [""])[-1]

    for m in fences:
        line = text[: m.start()].count("\n") + 1
        lang, body = m.group(1), m.group(2)
        if lang != "bash":
            items.append(Item(line, lang, body, section(line)))
            continue
        pending, start = "", 0
        for offset, raw in enumerate(body.splitlines(), start=line + 1):
            if not pending:
                start = offset
            if raw.endswith("\\"):
                pending += raw[:-1]
                continue
            command, pending = (pending + raw).strip(), ""
            if command and not command.startswith("#"):
                items.append(Item(start, "command", command, section(start)))
    for m in re.finditer(r"`([^`\n]+)`", prose):
        if COMMAND.match(m.group(1)) and " " in m.group(1):
            line = prose[: m.start()].count("\n") + 1
            items.append(Item(line, "command", m.group(1), section(line)))
    return sorted(items, key=lambda i: (i.line, i.lang != "command"))


def _headings(prose: str):
    return re.finditer(r"^#{1,6} (.+)$", prose, re.M)


def shell_words(line: str, cwd: Path) -> list[str]:
    """The words bash passes to the program for ``line`` (quotes removed, variables and
    globs expanded, redirections applied); an AssertionError with bash's message if
    bash cannot run the line as written."""
    prelude = 'argv() { printf "%s\\0" "$@"; }\n' + "".join(
        f'{p}() {{ argv {p} "$@"; }}\n' for p in PROGRAMS
    )
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", prelude + line],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd)},
    )
    assert proc.returncode == 0 and proc.stdout, f"bash cannot run {line!r}: {proc.stderr}"
    return proc.stdout.split("\0")[:-1]


@dataclass
class Outcome:
    argv: list[str]
    code: int
    out: str
    err: str
    home: Path = field(repr=False)

    def written(self) -> list[Path]:
        """The datasets the command says it wrote (``wrote ... -> DIR``)."""
        dirs = re.findall(r"^wrote \d+ samples .* -> (.+)$", self.out, re.M)
        return [self.home / d for d in dirs]

    def to_json(self) -> dict:
        return {"argv": self.argv, "code": self.code, "out": self.out, "err": self.err}

    @classmethod
    def from_json(cls, data: dict, home: Path) -> Outcome:
        return cls(data["argv"], data["code"], data["out"], data["err"], home)

    def error_line(self) -> str:
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, f"want one line on stderr, got: {self.err}"
        return lines[0]


@contextlib.contextmanager
def locked(path: Path, timeout: float = 600) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` + ".lock", across the test processes (a test
    that waits longer than ``timeout`` seconds fails rather than hang)."""
    deadline = time.monotonic() + timeout
    with open(f"{path}.lock", "w") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, f"waited {timeout} s for {path}.lock"
                time.sleep(0.05)
        yield


def entry_point(program: str) -> Callable[[], None]:
    if program == "depth-pipeline":
        from pipeline import app

        app._SWEEP_CODES.clear()  # a module-level record of the last multirun's exit codes
        return app.cli
    from pipeline import app

    return app.report_cli if program == "depth-pipeline-report" else app.merge_cli


def call(argv: list[str], home: Path, env: dict[str, str] | None = None) -> Outcome:
    """``argv`` through the program's console entry point, in this process, in ``home``;
    environment, cwd, logging and argv restored afterwards."""
    old_argv, old_env, old_cwd = sys.argv, dict(os.environ), os.getcwd()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        os.chdir(home)
        os.environ.update(env or {})
        sys.argv = argv
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                entry_point(argv[0])()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
        for handler in root.handlers[:]:  # Hydra configured logging for this run
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)
    return Outcome(argv, code, out.getvalue(), err.getvalue(), home)


MAKE_VARS = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")


def make(args: list[str], home: Path) -> Outcome:
    """``make ARGS`` in ``home``: a copy of the Makefile whose ``.venv`` is this venv (its
    install stamp kept newer than ``pyproject.toml``, so nothing is reinstalled)."""
    venv = Path(sys.prefix)
    with locked(home / ".make-setup"):
        if not (home / "Makefile").exists():
            shutil.copy(ROOT / "pyproject.toml", home / "pyproject.toml")
            os.utime(home / "pyproject.toml", (0, 0))
            (home / ".venv").symlink_to(venv, target_is_directory=True)
            shutil.copy(ROOT / "Makefile", home / "Makefile")
    assert (venv / ".installed").exists(), f"{venv} was not made by `make install`"
    # as a user types it: not a sub-make of the `make test` this suite may run under
    # (its MAKELEVEL would add "Entering directory" lines to the output)
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARS}
    env["NO_ALBUMENTATIONS_UPDATE"] = "1"
    proc = subprocess.run(["make", *args], cwd=home, capture_output=True, text=True, env=env)
    return Outcome(["make", *args], proc.returncode, proc.stdout, proc.stderr, home)


# ---- reading a written dataset back with independent readers ------------------------


@dataclass
class Written:
    key: str
    image: np.ndarray  # uint8 HxWx3
    depth: np.ndarray  # float32 metres
    meta: dict
    member: str  # the depth member or file name

    @property
    def params(self) -> dict:
        """The applied parameters, ``{transform: params or None}`` in applied order."""
        return json.loads(self.meta["augment"]["params"])


def written(root: Path) -> list[Written]:
    """Every sample of a finished dataset, read with tarfile / Pillow / tifffile / numpy / json:
    webdataset shards in shard and member order, folders in key order."""
    info = json.loads((root / "dataset_info.json").read_text())
    if info["config"]["output"]["format"] == "webdataset":
        members = {k: v for shard in sorted(root.glob("*.tar")) for k, v in read_tar(shard).items()}
        return [
            _sample(k, m["png"], _depth_member(m), json.loads(m["json"]))
            for k, m in members.items()
        ]
    if info["config"]["output"]["format"] == "parquet":  # pyarrow rows; the record as stored
        import pyarrow.parquet as pq

        rows = [
            r for f in sorted(root.glob("data/*.parquet")) for r in pq.read_table(f).to_pylist()
        ]
        return [_sample(r["key"], r["image"]["bytes"], _depth_cell(r), _meta(r)) for r in rows]
    out = []
    for meta_path in sorted((root / "meta").rglob("*.json")):
        meta = json.loads(meta_path.read_text())
        (image,) = (root / "image").glob(f"{meta['key']}.*")
        (depth,) = (root / "depth").glob(f"{meta['key']}.*")
        out.append(_sample(meta["key"], image.read_bytes(), (depth.name, depth.read_bytes()), meta))
    return out


def _depth_cell(row: dict) -> tuple[str, bytes]:
    data = row["depth_map"]["bytes"]
    return ("depth.png" if data[:4] == b"\x89PNG" else "depth.tiff"), data


def _meta(row: dict) -> dict:
    """A parquet row's typed columns as the JSON record a tar holds."""
    augment = {"index": row["index"], "copy": row["copy"], "params": row["params"]}
    keys = ("key", "source", "camera", "depth_scale", "dataset", "data_type")
    return {"augment": augment, **{k: row[k] for k in keys}}


def _depth_member(members: dict[str, bytes]) -> tuple[str, bytes]:
    (name,) = [n for n in members if n.startswith("depth.")]
    return name, members[name]


def _sample(key: str, image: bytes, depth: tuple[str, bytes], meta: dict) -> Written:
    name, data = depth
    if name.endswith((".tiff", ".tif")):
        metres = tifffile.imread(io.BytesIO(data))
    elif name.endswith(".npy"):
        metres = np.load(io.BytesIO(data), allow_pickle=False)
        assert metres.dtype == np.float32, name
    else:
        stored = np.asarray(Image.open(io.BytesIO(data)))
        assert stored.dtype == np.uint16, name
        metres = stored.astype(np.float32) / np.float32(meta["depth_scale"])
    rgb = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
    return Written(key, rgb, metres, meta, name)
