"""What a run prints besides its result: no library chatter on stdout or in app.log, and a
progress display that reads well in a log file and on an odd terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest
from conftest import ROOT, SMALL

RUN = [*[a for a in SMALL if a != "runtime.progress=false"], "report.enabled=false"]


def cli(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env, text=True, **kw
    )


def test_hydra_job_logging_keeps_matplotlib_info_off_stdout(tmp_path, capsys):
    """The composed job_logging config, applied as Hydra applies it, swallows matplotlib's
    INFO lines (e.g. 'generated new fontManager') and lets warnings through."""
    import logging
    import logging.config

    from conftest import make_cfg
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    make_cfg(tmp_path)  # registers the schemas
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True)
    job_logging = OmegaConf.to_container(cfg.hydra.job_logging, resolve=False)
    job_logging["handlers"].pop("file", None)
    job_logging["root"]["handlers"] = ["console"]
    logging.config.dictConfig(job_logging)
    try:
        logging.getLogger("matplotlib.font_manager").info("generated new fontManager")
        logging.getLogger("matplotlib").warning("a real warning")
        logging.getLogger("pipeline").info("our own info")
    finally:
        logging.config.dictConfig({"version": 1, "incremental": False})
    out = capsys.readouterr().out
    assert "fontManager" not in out
    assert "a real warning" in out and "our own info" in out


@pytest.mark.slow
def test_no_matplotlib_log_line_on_stdout_or_in_app_log_with_a_fresh_font_cache(tmp_path):
    run_dir = tmp_path / "run"
    proc = cli(
        *[a for a in RUN if a != "report.enabled=false"],
        "source.num_samples=4",
        f"output.dir={tmp_path / 'ds'}",
        f"hydra.run.dir={run_dir}",
        env={"MPLCONFIGDIR": str(tmp_path / "mpl")},  # empty: matplotlib rebuilds its cache
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "mpl").glob("fontlist*.json")), "the font cache was not rebuilt"
    assert "[matplotlib" not in proc.stdout and "fontManager" not in proc.stdout, proc.stdout
    logs = "".join(p.read_text() for p in run_dir.glob("*.log"))
    assert "[matplotlib" not in logs and "fontManager" not in logs
    assert proc.stdout.startswith("wrote 4 samples")


def test_progress_in_a_log_file_is_whole_lines_and_100_percent_once(tmp_path):
    log = tmp_path / "run.log"
    with log.open("w") as err:
        proc = cli(
            *RUN,
            "source.num_samples=12",
            "output.shard_size=4",
            "runtime.workers=1",
            f"output.dir={tmp_path / 'ds'}",
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert proc.returncode == 0
    text = log.read_text()
    assert "\r" not in text
    done = [line for line in text.splitlines() if "12/12" in line]
    assert len(done) == 1, text
    assert re.fullmatch(
        r"depth-pipeline: 12/12 samples \(100%\) in [0-9.]+ s, [0-9.]+ samples/s", done[0]
    )


def run_in_pty(columns: int, *args: str) -> str:
    """The CLI's terminal output, run under a pseudo-terminal ``columns`` wide (a fresh
    pty reports 0 columns, as some CI runners and ``docker exec -t`` do)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    env.pop("COLUMNS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        cwd=ROOT,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    return b"".join(chunks).decode("utf-8", "replace")


def frames(output: str) -> list[str]:
    return [f.strip() for f in re.split(r"[\r\n]+", output) if f.startswith("depth-pipeline:")]


@pytest.mark.parametrize("columns", [0, pytest.param(100, marks=pytest.mark.slow)])
def test_progress_bar_on_a_terminal_keeps_its_bar_and_one_rate(tmp_path, columns):
    out = run_in_pty(
        columns,
        *RUN,
        "source.num_samples=24",
        "output.shard_size=4",
        "runtime.workers=2",
        f"output.dir={tmp_path / 'ds'}",
    )
    shown = frames(out)
    last = shown[-1]
    assert "24/24" in last and last.endswith("sample/s]"), last  # not cut off
    bar = re.search(r"\|(.*)\|", last)
    assert bar and len(bar.group(1)) >= 10, last  # a bar, not one character
    # one rate per frame (the speed itself is make bench's business, not a test's)
    assert all(len(re.findall(r"[0-9.]+sample/s", f)) == 1 for f in shown if "24/24" in f)
