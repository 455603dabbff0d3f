"""The ``depth-pipeline`` command: a Hydra app that hands the config to ``runner.run``.

Start-up is on the user's clock: ``cli`` starts the workers' forkserver before anything
else (its imports run on another core meanwhile), and Hydra, the config schemas and the
runner are imported only after that.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
_SWEEP_CODES: list[int] = []


def job(cfg: Any) -> dict[str, object] | None:
    """One run. In a multirun (-m) a job's failure does not stop the other jobs: the exit
    code is returned (the sweep callback records it) and ``cli`` exits with the worst."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from pipeline import console
    from pipeline.trace import mark

    mark("composed")
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

    from pipeline.config import register
    from pipeline.hydra_once import compose_once

    register()
    compose_once()
    hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")(job)()


def cli() -> None:
    """Console entry point: config mistakes become one line and exit code 2."""
    from pipeline import forkserver
    from pipeline.trace import mark

    mark("start")
    args = sys.argv[1:]
    if args in (["--help"], ["-h"]):
        from pipeline import console

        print(console.quick_help(Path(CONF_DIR)))
        return
    forkserver.start_early(args)
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from pipeline import console, crash

    os.environ["HYDRA_FULL_ERROR"] = "1"  # let config errors reach us; we print them briefly
    try:
        main()
    except (HydraException, OmegaConfBaseException) as exc:
        print(f"error: {console.config_error_line(exc)}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # outside the run (e.g. a Hydra callback): the last resort
        if crash.debugging():
            raise
        print(f"error: {crash.one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    if _SWEEP_CODES:  # a multirun: 2 if any job failed, else 3 if any skipped samples
        sys.exit(2 if 2 in _SWEEP_CODES else max(_SWEEP_CODES))


if __name__ == "__main__":
    cli()
