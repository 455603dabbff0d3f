"""The console commands: ``depth-pipeline`` (a Hydra app that hands the config to
``runner.run``), ``depth-pipeline-report``, ``depth-pipeline-merge`` and
``depth-pipeline-verify``.

Start-up is on the user's clock: ``cli`` starts the workers' forkserver before anything
else (its imports run on another core meanwhile), and Hydra, the config schemas and the
runner are imported only after that.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pipeline.errors import shortened

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
_SWEEP_CODES: list[int] = []


def job(cfg: Any) -> dict[str, object] | None:
    """One run. In a multirun (-m) a job's failure does not stop the other jobs: the exit
    code is returned (the sweep callback records it) and ``cli`` exits with the worst.
    With ``hydra.job.chdir=true`` the run still reads and writes relative paths from the
    directory the command was started in (Hydra's job dir keeps only its logs)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from pipeline.console import console
    from pipeline.pool.trace import mark

    mark("composed")
    if HydraConfig.get().job.chdir:  # relative paths mean where the command was started
        from hydra.utils import get_original_cwd

        os.chdir(get_original_cwd())
    code, error = console.run_and_report(cfg)
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        _SWEEP_CODES.append(code)
        return {"exit_code": code, "error": error}
    if code:
        sys.exit(code)
    return None


def main() -> None:
    """Hydra's entry point around ``job`` (parses sys.argv; composes the config)."""
    import hydra

    from pipeline.config.hydra_once import compose_once
    from pipeline.config.schema import register

    register()
    if any(arg.startswith(("hydra/launcher=", "-m", "--multirun")) for arg in sys.argv[1:]):
        from pipeline.cluster.hydra_launchers import install

        install()  # hydra/launcher=slurm and slurm_local
    compose_once()
    hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")(job)()


def cli() -> None:
    """Console entry point: config mistakes become one line and exit code 2; Ctrl-C or
    SIGTERM at any moment the usual line and exit code 130 / 143."""
    from pipeline.pool import interrupts

    interrupts.install()
    try:
        _cli()
    except KeyboardInterrupt as exc:
        interrupts.exit_interrupted(exc)


def _cli() -> None:
    from pipeline.pool import forkserver
    from pipeline.pool.trace import mark

    mark("start")
    args = sys.argv[1:]
    if args in (["--help"], ["-h"]):
        from pipeline.console import console

        print(console.quick_help(Path(CONF_DIR)))
        return
    forkserver.start_early(args)
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from pipeline.console import console
    from pipeline.run import crash

    os.environ["HYDRA_FULL_ERROR"] = "1"  # let config errors reach us; we print them briefly
    crash.quiet_logging()
    try:
        main()
    except (HydraException, OmegaConfBaseException) as exc:
        print(f"error: {shortened(str(console.config_error_line(exc)))}", file=sys.stderr)
        sys.exit(2)
    except yaml.YAMLError as exc:  # a config file of the user's (--config-dir, a preset)
        print(f"error: {shortened(str(console.yaml_error_line(exc)))}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # outside the run: Hydra writing its run dir (logs, .hydra/)
        disk = crash.disk_error(exc)  # (its log file's OSError wrapped by logging.config)
        if crash.debugging() or (isinstance(exc, OSError) and disk is None):
            raise
        # else the last resort (e.g. a Hydra callback)
        line = crash.run_dir_line(disk, args) if disk is not None else crash.one_line(exc)
        print(f"error: {shortened(str(line))}", file=sys.stderr)
        sys.exit(2)
    if _SWEEP_CODES:  # a multirun: 2 if any job failed, else 3 if any skipped samples
        sys.exit(2 if 2 in _SWEEP_CODES else max(_SWEEP_CODES))


def _guarded(what: str, action: Any) -> Any:
    """``action()``; a ``PipelineError`` or an unforeseen exception becomes one line on
    stderr and exit 2 (the traceback of the latter saved, see ``run.crash``)."""
    from pipeline.errors import PipelineError
    from pipeline.pool import interrupts
    from pipeline.run import crash

    interrupts.install()
    try:
        return action()
    except KeyboardInterrupt as exc:
        interrupts.exit_interrupted(exc)
    except PipelineError as exc:
        print(f"error: {shortened(str(exc))}", file=sys.stderr)
    except Exception as exc:  # the last resort: one line, the traceback saved
        if crash.debugging():
            raise
        crash.step(what)
        print(f"error: {shortened(str(crash.one_line(exc)))}", file=sys.stderr)
    sys.exit(2)


def _local_dir(value: str, command: str) -> str:
    """``value`` if it is a local directory path; a URL is one line and exit 2."""
    from pipeline.config.urls import is_url

    if is_url(value):
        print(
            f"error: {command} works on a local dataset directory, not {value}; a dataset in "
            f"an object store is read with pipeline.read.load(url)",
            file=sys.stderr,
        )
        sys.exit(2)
    return value


def report_cli(argv: list[str] | None = None) -> None:
    """``depth-pipeline-report DIR [report.KEY=VALUE ...]``: rebuild the report of an
    existing dataset from its manifests and ``dataset_info.json``; shards untouched."""
    import argparse

    from pipeline.report.build import REPORT_DIR, rebuild

    parser = argparse.ArgumentParser(
        prog="depth-pipeline-report",
        description="Rebuild output.dir/report (index.html, stats.json, pictures, plots) of "
        "an existing dataset without rewriting its shards.",
    )
    parser.add_argument("dir", help="a dataset directory written by depth-pipeline")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="report.KEY=VALUE",
        help="report settings, e.g. report.rows=4 report.colormap=magma",
    )
    args = parser.parse_args(argv)
    args.dir = Path(_local_dir(args.dir, "depth-pipeline-report"))
    what = f"rebuilding the report of {args.dir}"
    files = _guarded(what, lambda: rebuild(args.dir, args.overrides))
    print(f"report: {args.dir / REPORT_DIR / 'index.html'} ({len(files)} files)")


def merge_cli(argv: list[str] | None = None) -> None:
    """``depth-pipeline-merge OUTPUT_DIR`` (a directory or a URL): exit 0 merged, 2
    refused (one line why)."""
    from pipeline.cluster.merge import merge

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: depth-pipeline-merge OUTPUT_DIR  (joins the slices of a sharded run)")
        sys.exit(0 if args and args[0] in ("-h", "--help") else 2)
    info = _guarded(f"merging the slices in {args[0]}", lambda: merge(args[0]))
    counts = info.counts
    print(
        f"merged {info.timings.slices} slices: {counts.written} samples "
        f"({counts.skipped} skipped) in {counts.shards} shard(s) -> {args[0]}"
    )


def verify_cli(argv: list[str] | None = None) -> None:
    """``depth-pipeline-verify DIR|URL``: every shard file against its manifest's sha256,
    the manifests and lists against ``dataset_info.json``; one line per damaged file on
    stderr and exit 2, else one line and exit 0."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(
            "usage: depth-pipeline-verify DIR|URL  (checks every shard file against its "
            "manifest, and the records against dataset_info.json)"
        )
        sys.exit(0 if args and args[0] in ("-h", "--help") else 2)
    from pipeline.dataset.verify import REPAIR, verify_dataset

    root = args[0]
    checked, problems = _guarded(f"verifying {root}", lambda: verify_dataset(root))
    for line in problems:
        print(shortened(f"error: damaged: {line}; {REPAIR}"), file=sys.stderr)
    if problems:
        sys.exit(2)
    print(f"verified {checked} files in {root}: every one matches its records")


if __name__ == "__main__":
    cli()
