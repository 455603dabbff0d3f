"""What the parent and its worker processes send each other besides shard tasks and
results (``pipeline.pool.pool`` sends, ``pipeline.pool.serve`` answers): a run's ``Job`` and errors
with the worker's traceback. Light on purpose: the parent imports it without the
workers' heavy libraries."""

from __future__ import annotations

import os
import pickle
import traceback
from dataclasses import dataclass, field

from pipeline.config.schema import AugmentConfig, Config, OutputConfig
from pipeline.config.sources import SourceConfig
from pipeline.dataset.shards import Placement
from pipeline.sources import Source


@dataclass(frozen=True)
class Job:
    """What a worker needs for one run: the config sections of its stages (source,
    augmentation, output), the placement of samples in shards, ``runtime.on_error``, the
    run's config hash, when cheap to pickle the parent's opened source (else each worker
    opens its own), and the parent's working directory (relative paths in the config are
    relative to it; a worker outlives a ``chdir``)."""

    source_cfg: SourceConfig
    augment: AugmentConfig
    output: OutputConfig
    placement: Placement
    on_error: str
    config_hash: str
    source: Source | None = None
    cwd: str = field(default_factory=os.getcwd)
    plausible: bool = True  # the depth ceiling (runtime.checks.units=false: values as they are)

    @classmethod
    def of(cls, cfg: Config, config_hash: str, source: Source | None = None) -> Job:
        on_error = str(getattr(cfg.runtime.on_error, "value", cfg.runtime.on_error))
        return cls(cfg.source, cfg.augment, cfg.output, Placement.of(cfg), on_error,
                   config_hash, source, plausible=cfg.runtime.checks.units)  # fmt: skip


class RemoteTraceback(Exception):
    """The worker's traceback, attached as ``__cause__`` of an error it sent."""

    def __str__(self) -> str:
        return str(self.args[0])


def pack_error(exc: BaseException) -> tuple[BaseException, str]:
    """An exception and its traceback text, picklable (else a RuntimeError saying what)."""
    text = "".join(traceback.format_exception(exc))
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc, text


def unpack_error(exc: BaseException, text: str) -> BaseException:
    """The exception a worker sent, with its traceback as the cause (shown in logs)."""
    exc.__cause__ = RemoteTraceback(f'\n"""\n{text}"""')
    return exc
