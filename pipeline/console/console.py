"""What the ``depth-pipeline`` command prints: the run summary (two lines), config mistakes
as one line naming the key, and a fast ``--help``."""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from pipeline.errors import PipelineError, shortened
from pipeline.pool import interrupts
from pipeline.run import crash

if TYPE_CHECKING:
    from pipeline.run.runner import RunResult


def run_and_report(cfg: DictConfig) -> tuple[int, str | None]:
    """Run the pipeline; print the summary or the error line; return (exit code, error)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from pipeline.run.runner import run

    overrides = OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)
    try:
        result = run(cfg, overrides=[str(o) for o in overrides])
    except PipelineError as exc:
        print(f"error: {shortened(str(exc))}", file=sys.stderr)
        return 2, str(exc)
    except KeyboardInterrupt as exc:  # Ctrl-C (130) or SIGTERM (143) during the run
        interrupts.exit_interrupted(exc)
    except Exception as exc:  # the last resort: one line, the traceback in the run's log
        if crash.debugging():
            raise
        line = crash.one_line(exc)
        print(f"error: {shortened(str(line))}", file=sys.stderr)
        return 2, line
    from pipeline.checks.drops import lines
    from pipeline.config.schema import to_config

    for line in [*summary(result, cfg.report.enabled), *lines(result.info, to_config(cfg))]:
        print(line)
    dropped = result.info.source.get("dropped_without_depth")
    if dropped:
        print(
            f"dropped {dropped} image(s) without a depth file (source.unpaired=drop; "
            f"counted in dataset_info.json: source.dropped_without_depth)"
        )
    return (3, None) if result.skipped else (0, None)


def summary(result: RunResult, report: bool) -> list[str]:
    """Two lines: what was written (and kept from an earlier run, and skipped), where; then
    where the time went: writing the shards (at the progress display's rate), the report
    and the whole run."""

    def shards(n: int) -> str:
        return f"{n} shard{'s' if n != 1 else ''}"

    what = f"wrote {result.new_written} samples ({result.new_skipped} skipped) in " + shards(
        result.new_shards
    )
    if result.kept_shards:
        kept = result.kept_samples
        what += f", kept {kept} from an earlier run in {shards(result.kept_shards)}"
        if result.skipped - result.new_skipped:
            what += f" ({result.skipped - result.new_skipped} skipped)"
    timings = result.info.timings
    data = timings.data_s or 0.0
    new = result.new_written + result.new_skipped
    when = f"data {data:.1f} s ({new / data:.1f} samples/s)" if new and data else "nothing to write"
    if report and timings.report_s is not None:
        when += f", report {timings.report_s:.1f} s"
    when += f", total {result.seconds:.1f} s"
    if report and timings.report_s is not None:
        when += f"; report: {result.out_dir}/report/index.html"
    return [f"{what} -> {result.out_dir}", when]


def config_error_line(exc: BaseException) -> str:
    """Hydra/OmegaConf config errors as one line naming the key, with a suggestion."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    from pipeline.config.schema import Config, source_kind_of, unknown_source_key

    cause = exc.__cause__ or exc
    key = getattr(cause, "full_key", None)
    first = " ".join(str(getattr(cause, "msg", None) or cause).split("\n")[0].split())
    if key and key.startswith("augment.transforms."):
        return _transform_key_line(key, getattr(cause, "parent_node", None))
    if key and isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
        parent, _, leaf = key.rpartition(".")
        owner = getattr(cause, "object_type", None)
        kind = source_kind_of(owner or type(None))
        if parent.endswith("source") and kind is not None:  # the run's or a part's source
            return unknown_source_key(parent, leaf, kind, list(OmegaConf.structured(owner)))
        root = OmegaConf.structured(Config)
        node = OmegaConf.select(root, parent) if parent else root
        known = list(node.keys()) if node is not None and hasattr(node, "keys") else []
        if not known and dataclasses.is_dataclass(owner):  # e.g. a mixture's part
            known = [f.name for f in dataclasses.fields(owner)]
        near = difflib.get_close_matches(leaf, known, n=1)
        hint = f" (did you mean {parent + '.' if parent else ''}{near[0]}?)" if near else ""
        return f"{key}: no such config key{hint}; see depth-pipeline --help"
    if key:
        return f"{key}: {_value_message(first)}"
    text = " ".join(str(exc).split("Config search path")[0].split())
    parse_errors = ("LexerNoViableAltException", "token recognition error", "mismatched input")
    if any(e in text for e in parse_errors):
        override = getattr(cause, "override", None) or getattr(exc, "override", None)
        if not isinstance(override, str):
            override = text.partition(": ")[2].split(" ^")[0].strip() or text
        key, _, value = override.partition("=")
        return (
            f"{override!r}: Hydra cannot read this value unquoted (spaces, non-ASCII or "
            f"special characters); quote it, e.g. {key}='\"{value}\"' in the shell"
        )
    if missing := re.search(
        r"In 'hydra/launcher/(\w+)': Could not load 'hydra/launcher/(\w+)'", text
    ):
        return _missing_launcher(missing[1], missing[2])
    return text


# Hydra launchers that come with an extra of pyproject.toml: plugin config -> extra, package
LAUNCHER_EXTRAS = {
    "submitit_slurm": ("slurm", "hydra-submitit-launcher"),
    "submitit_local": ("slurm", "hydra-submitit-launcher"),
    "depth_slurm": ("slurm", "hydra-submitit-launcher"),  # pipeline/cluster/slurm_launcher.py
    "depth_slurm_local": ("slurm", "hydra-submitit-launcher"),
    "joblib": ("joblib", "hydra-joblib-launcher"),
}


def yaml_error_line(exc: Exception) -> str:
    """A config file that is not valid YAML (a duplicate key, a bad indent): the file, the
    line and the problem."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{mark.name} line {mark.line + 1}" if mark is not None else "a config file"
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    return f"{where}: {problem}; fix that YAML file"


def _missing_launcher(choice: str, plugin: str) -> str:
    """``hydra/launcher=X`` whose plugin is not installed: say which extra brings it."""
    extra, package = LAUNCHER_EXTRAS.get(plugin, ("", f"of hydra/launcher/{plugin}"))
    how = f"; install it with pip install -e '.[{extra}]'" if extra else ""
    return f"hydra/launcher={choice}: the launcher plugin {package} is not installed{how}"


def _value_message(message: str) -> str:
    """OmegaConf's wrong-type and wrong-choice messages, shortened."""
    if match := re.fullmatch(r"Invalid value '(.*)', expected one of \[(.*)\]", message):
        return f"{match[1]!r} is not a choice; choose one of: {match[2]}"
    if match := re.fullmatch(r"Value '(.*)' of type '.*' could not be converted to (\w+)", message):
        expected = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false"}
        return f"expected {expected.get(match[2], match[2].lower())}, got {match[1]!r}"
    return message


def _transform_key_line(key: str, parent: object) -> str:
    """A refused ``augment.transforms.NAME[.ARG]`` override. ``parent``: the node Hydra
    had composed when it refused the key (the transform's spec, or the transforms)."""
    from omegaconf import DictConfig

    from pipeline.config.transform_args import target_class, unknown_argument

    parts = key.split(".")
    name = parts[2]
    if len(parts) == 4 and isinstance(parent, DictConfig) and "_target_" in parent:
        arg = parts[3]
        cls = target_class(str(parent.get("_target_")))
        if cls is not None:
            line = unknown_argument(name, cls, arg)
            return line or (
                f"{key}: this preset does not set {cls.__name__}'s argument {arg!r}; "
                f"add it with +{key}=VALUE"
            )
        return f"{key}: this preset does not set {arg!r}; add it with +{key}=VALUE"
    names = list(parent.keys()) if isinstance(parent, DictConfig) and len(parts) == 3 else []
    near = difflib.get_close_matches(name, [str(n) for n in names], n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    return (
        f"augment.transforms.{name}: no transform named {name!r} in this preset{hint}; add "
        f"one with +augment.transforms.{name}._target_=albumentations.X (names: --cfg job)"
    )


def quick_help(conf_dir: Path) -> str:
    """``--help`` without composing: Hydra's own rendering of ``$APP_CONFIG_GROUPS``
    deep-copies its config repository once per group (~1.3 s here); listing ``conf/``
    gives the same text in milliseconds. Same template: ``conf/hydra/help``."""
    import yaml

    help_cfg = yaml.safe_load((conf_dir / "hydra" / "help" / "depth_pipeline.yaml").read_text())
    groups = sorted(
        (str(d.relative_to(conf_dir)), sorted(f.stem for f in d.glob("*.yaml")))
        for d in conf_dir.rglob("*")
        if d.is_dir() and d.parts[len(conf_dir.parts)] != "hydra"
    )
    listing = "".join(f"{name}: {', '.join(opts)}\n" for name, opts in groups if opts)
    text = help_cfg["template"].replace("$APP_CONFIG_GROUPS", listing)
    text = text.replace("${hydra.help.header}", help_cfg["header"])
    return text.replace("${hydra.help.footer}", help_cfg["footer"])
