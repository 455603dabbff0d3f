"""``depth-pipeline-report DIR [report.KEY=VALUE ...]``: rebuild the report of an existing
dataset from its manifests and ``dataset_info.json``; the shards are not touched."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from pipeline.errors import PipelineError
    from pipeline.report.build import REPORT_DIR, rebuild

    parser = argparse.ArgumentParser(
        prog="depth-pipeline-report",
        description="Rebuild output.dir/report (index.html, stats.json, pictures, plots) of "
        "an existing dataset without rewriting its shards.",
    )
    parser.add_argument("dir", type=Path, help="a dataset directory written by depth-pipeline")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="report.KEY=VALUE",
        help="report settings, e.g. report.rows=4 report.colormap=magma",
    )
    args = parser.parse_args(argv)
    try:
        files = rebuild(args.dir, args.overrides)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the last resort: one line, the traceback saved
        from pipeline import crash

        if crash.debugging():
            raise
        crash.step(f"rebuilding the report of {args.dir}")
        print(f"error: {crash.one_line(exc)}", file=sys.stderr)
        return 2
    print(f"report: {args.dir / REPORT_DIR / 'index.html'} ({len(files)} files)")
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
