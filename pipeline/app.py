"""The ``depth-pipeline`` command: a Hydra app that hands the config to ``runner.run``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from pipeline.config import register  # noqa: E402
from pipeline.errors import Interrupted, PipelineError  # noqa: E402

register()
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> dict[str, object] | None:
    """One run. In a multirun (-m) a job's failure does not stop the other jobs: the exit
    code is returned (the sweep callback records it) and ``cli`` exits with the worst."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    code, error = _run(cfg)
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        _SWEEP_CODES.append(code)
        return {"exit_code": code, "error": error}
    if code:
        sys.exit(code)
    return None


_SWEEP_CODES: list[int] = []


def _run(cfg: DictConfig) -> tuple[int, str | None]:
    """Run the pipeline; return (exit code, error line) and print the summary."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from pipeline.runner import run

    overrides = OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)
    try:
        result = run(cfg, overrides=[str(o) for o in overrides])
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2, str(exc)
    except Interrupted as exc:  # Ctrl-C (130) or SIGTERM (143) during the run
        print(str(exc), file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print(Interrupted(), file=sys.stderr)
        sys.exit(130)
    rate = result.written / result.seconds if result.seconds else 0.0
    print(
        f"wrote {result.written} samples ({result.skipped} skipped) in {result.shards} "
        f"shard(s) in {result.seconds:.1f} s, {rate:.1f} samples/s -> {result.out_dir}"
    )
    resumed = result.info["counts"].get("resumed_shards", 0)
    if resumed:
        print(f"resumed: {resumed} of {result.shards} shard(s) were already complete and kept")
    if cfg.report.enabled:
        print(f"report: {result.out_dir / 'report' / 'index.html'}")
    return (3, None) if result.skipped else (0, None)


def _one_line(exc: BaseException) -> str:
    """Hydra/OmegaConf config errors as one line naming the key, with a suggestion."""
    import difflib

    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    cause = exc.__cause__ or exc
    key = getattr(cause, "full_key", None)
    first = " ".join(str(getattr(cause, "msg", None) or cause).split("\n")[0].split())
    if key and key.startswith("augment.transforms."):
        name = key.split(".")[2]
        return (
            f"{key}: no transform named {name!r} in this preset; add one with "
            f"+augment.transforms.{name}._target_=albumentations.X (names: --cfg job)"
        )
    if key and isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
        parent, _, leaf = key.rpartition(".")
        schema = OmegaConf.structured(__import__("pipeline.config").config.Config)
        node = OmegaConf.select(schema, parent) if parent else schema
        known = list(node.keys()) if node is not None and hasattr(node, "keys") else []
        near = difflib.get_close_matches(leaf, known, n=1)
        hint = f" (did you mean {parent + '.' if parent else ''}{near[0]}?)" if near else ""
        return f"{key}: no such config key{hint}; see depth-pipeline --help"
    if key:
        return f"{key}: {first}"
    return " ".join(str(exc).split("Config search path")[0].split())


def _quick_help() -> str:
    """``--help`` without composing: Hydra's own rendering of ``$APP_CONFIG_GROUPS``
    deep-copies its config repository once per group (~1.3 s here); listing ``conf/``
    gives the same text in milliseconds. Same template: ``conf/hydra/help``."""
    import yaml

    help_cfg = yaml.safe_load(
        (Path(CONF_DIR) / "hydra" / "help" / "depth_pipeline.yaml").read_text()
    )
    groups = sorted(
        (str(d.relative_to(CONF_DIR)), sorted(f.stem for f in d.glob("*.yaml")))
        for d in Path(CONF_DIR).rglob("*")
        if d.is_dir() and d.parts[len(Path(CONF_DIR).parts)] != "hydra"
    )
    listing = "".join(f"{name}: {', '.join(opts)}\n" for name, opts in groups if opts)
    text = help_cfg["template"].replace("$APP_CONFIG_GROUPS", listing)
    text = text.replace("${hydra.help.header}", help_cfg["header"])
    return text.replace("${hydra.help.footer}", help_cfg["footer"])


def cli() -> None:
    """Console entry point: config mistakes become one line and exit code 2."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if sys.argv[1:] in (["--help"], ["-h"]):
        print(_quick_help())
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let config errors reach us; we print them briefly
    try:
        main()
    except (HydraException, OmegaConfBaseException) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    if _SWEEP_CODES:  # a multirun: 2 if any job failed, else 3 if any skipped samples
        worst = 2 if 2 in _SWEEP_CODES else max(_SWEEP_CODES)
        sys.exit(worst)


if __name__ == "__main__":
    cli()
