"""The ``depth-pipeline`` command: a Hydra app that hands the config to ``runner.run``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from pipeline.config import register  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402

register()
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from pipeline.runner import run

    try:
        result = run(cfg, overrides=list(HydraConfig.get().overrides.task))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(
            "interrupted: finished shards are kept; re-run the same command to resume",
            file=sys.stderr,
        )
        sys.exit(130)
    rate = result.written / result.seconds if result.seconds else 0.0
    print(
        f"wrote {result.written} samples ({result.skipped} skipped) in {result.shards} "
        f"shard(s) in {result.seconds:.1f} s, {rate:.1f} samples/s -> {result.out_dir}"
    )
    if cfg.report.enabled:
        print(f"report: {result.out_dir / 'report'}")
    if result.skipped:
        sys.exit(3)


if __name__ == "__main__":
    main()
