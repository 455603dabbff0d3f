"""Orchestration only: plan -> claim output.dir -> execute the shards -> publish.

Each step is a call into its own module: ``claim`` (config record, resume, overwrite),
``pool`` (workers, signals, progress), ``publish`` (card, report, dataset_info.json) or,
for one slice of a sliced run, ``merge.write_slice``.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from omegaconf import DictConfig

from pipeline.checks import checks, units
from pipeline.cluster.merge import check_slice_options, write_failed, write_slice
from pipeline.cluster.slices import slice_name
from pipeline.config import paths, urls
from pipeline.config.mixture import canonical_focal, part_outputs
from pipeline.config.schema import Config, to_config
from pipeline.dataset import claim, staging, store
from pipeline.dataset.collection import publish_collection, split_dir
from pipeline.dataset.config_record import config_hash
from pipeline.dataset.layouts import Layout, layout_for
from pipeline.dataset.records import DatasetInfo, ShardManifest, ShardResult, StageTimes, Timings
from pipeline.dataset.shards import Placement, Plan, Remaining
from pipeline.encode.codecs import encodings
from pipeline.errors import Interrupted, PipelineError, SampleError
from pipeline.pool import pool
from pipeline.pool.cpus import available_cpus
from pipeline.pool.trace import mark
from pipeline.run.crash import step
from pipeline.run.progress import progress_bar
from pipeline.sources import Source, open_source


@dataclass
class RunResult:
    """What a run produced; ``info`` is the content of ``dataset_info.json``. ``written``,
    ``skipped`` and ``shards`` count the whole dataset; ``new`` the samples (written or
    skipped) of the shards this run wrote, the rest were kept from an earlier run."""

    out_dir: Path | str  # a URL output.dir as given
    written: int
    skipped: int
    shards: int
    seconds: float
    info: DatasetInfo
    new_written: int = 0
    new_skipped: int = 0
    new_shards: int = 0

    @property
    def kept_samples(self) -> int:
        return self.written - self.new_written

    @property
    def kept_shards(self) -> int:
        return self.shards - self.new_shards


@dataclass
class Execution:
    """The shards of one run as they are written: the run's config and hash, the source,
    the output layout and how many workers; the plan, the shards kept from an earlier run
    (``done``) and the results of those written now (``fresh``, appended as they finish)."""

    config: Config
    config_hash: str
    source: Source
    layout: Layout
    workers: int
    tasks: Plan
    done: dict[str, ShardManifest]
    fresh: list[ShardResult] = field(default_factory=list)
    todo: Remaining = field(init=False)  # the shards of the plan not done

    def __post_init__(self) -> None:
        self.todo = Remaining(self.tasks, self.done)


def prepare(cfg: Config) -> tuple[Source, int]:
    """Values, source, its distance from output.dir (what can fail before touching it,
    with ``pool.check_first``: the transforms, crop sizes and the sample contract after
    augmenting the first sample). Returns the source and the number of inputs to use."""
    step("checking the config")
    checks.validate(cfg)
    check_slice_options(cfg)
    where = getattr(cfg.source, "path", None)
    if isinstance(where, str) and urls.is_url(where) and urls.is_url(cfg.output.dir):
        urls.check_apart(cfg.output.dir, where)
    step(f"opening the source ({cfg.source.kind}{f' at {where}' if where else ''})")
    source = open_source(cfg.source)
    for line in source.describe():
        print(line, flush=True)
    root = store.local_root(cfg.output)
    layout_for(cfg.output.format, root, cfg.output.prefix).check(cfg.output)
    if not store.is_url(cfg.output.dir):
        paths.check_apart(root, source.paths())
    else:
        for url in source.urls():
            urls.check_apart(cfg.output.dir, url)
    n_inputs = len(source)
    if cfg.source.limit is not None:
        n_inputs = min(n_inputs, cfg.source.limit)
    if n_inputs == 0:
        if cfg.source.limit == 0:
            raise PipelineError("source.limit=0 selects no samples; raise or drop source.limit")
        path = source.identity().get("path")
        where = f" at source.path={path}" if path else ""
        named = {"synthetic": "source.num_samples", "mix": "source.num_samples and the parts"}
        keys = named.get(cfg.source.kind, "source.path")
        raise PipelineError(
            f"source ({cfg.source.kind}){where} has no samples; check {keys} and source.split"
        )
    return source, n_inputs


def _target(config: Config) -> store.Remote | None:
    """Resolve ``output.dir``: a local path (``~`` expanded), or a URL whose filesystem
    must be installed, with its staging directory set for the workers."""
    urls.storage_options(config.output.storage_options, "output.storage_options")
    remote = store.remote_of(config.output)
    if remote is None:
        config.output.dir = str(paths.output_dir(store.local_path(config.output.dir)))
        return None
    remote.fs  # noqa: B018  (one line now if nothing here serves the URL)
    part = slice_name(config.shard.index, config.shard.num_shards) if _sliced(config) else ""
    config.output.staging_dir = str(staging.directory(remote, config.output.staging_dir, part))
    return remote


def _split_of(config: Config) -> Path | None:
    """With ``output.splits``: the run writes ``{output.dir}/{split}`` (``collection``);
    the dataset's top dir, else None."""
    if not config.output.splits:
        return None
    top = config.output.dir
    fmt, url = str(config.output.format), store.is_url(top)
    config.output.dir = split_dir(top, config.source.split, fmt, url)
    return Path(store.local_path(top))


def _sliced(config: Config) -> bool:
    return config.shard.num_shards > 1


def _lock_name(config: Config) -> str:
    """The lock object of a URL output: the dataset's, or one slice's (slices write side
    by side; ``depth-pipeline-merge`` takes the dataset's)."""
    if _sliced(config):
        return store.slice_lock(config.shard.index, config.shard.num_shards)
    return store.LOCK_FILE


def run(cfg: DictConfig | Config, overrides: list[str] | None = None) -> RunResult:
    """Load -> augment -> save into ``output.dir``; returns counts and the dataset info.

    Longer than 60 lines: the run's steps in order (plan, claim, execute, publish), read
    top to bottom."""
    started = time.perf_counter()
    mark("run")
    config = to_config(cfg)
    top = _split_of(config)
    remote = _target(config)
    if config.runtime.workers != 1:
        pool.pool_context()  # warm up the workers' server while the source is opened
    source, n_inputs = prepare(config)
    step("checking the depth of the first samples")
    units.check_first(config, source, n_inputs)
    tasks = Placement.of(config).plan(n_inputs)
    workers = config.runtime.workers or available_cpus()
    step("augmenting the first sample")
    pool.check_first(config, config_hash(config), tasks, workers, source)
    mark("prepared")
    root = store.local_root(config.output)
    layout = layout_for(config.output.format, root, config.output.prefix)
    done: dict[str, ShardManifest] = {}
    fresh: list[ShardResult] = []
    with pool.sigterm_interrupts():
        try:
            step(f"claiming output.dir={config.output.dir}")
            with (
                staging.staged(remote, root, _lock_name(config)) as mirror,
                claim.claimed(root, config, layout, tasks, source, mirror.has) as held,
            ):
                mirror.claimed()
                done = held.done
                step("writing the shards")
                mark("writing")
                try:
                    data_s = _execute(
                        Execution(
                            config, held.config_hash, source, layout, workers, tasks, done, fresh
                        )
                    )
                except PipelineError as exc:
                    if _sliced(config):  # the merge names it, not only "slice K missing"
                        write_failed(root, config, str(exc))
                        mirror.published()
                    raise
                mark("shards-done")
                manifests = sorted([*done.values(), *(r.manifest for r in fresh)], key=_index)
                stage = StageTimes()
                for r in fresh:
                    stage.merge(r.timings)
                timings = Timings(time.perf_counter() - started, workers, stage, round(data_s, 3))
                info = DatasetInfo.build(
                    held.config_hash,
                    asdict(config),
                    source.identity(),
                    manifests,
                    overrides or [],
                    encodings(
                        config.output,
                        part_outputs(config.output, config.source),
                        canonical_focal(config),
                    ),
                    timings,
                    resumed_shards=len(done),
                )
                step("writing the card, the report and dataset_info.json")
                if _sliced(config):  # dataset_info.json comes from merging slices
                    write_slice(root, config, info, [t.name for t in tasks])
                    mirror.published()  # a URL's slice record
                else:
                    from pipeline.publish.publish import publish

                    running = pool.current()
                    executor = running.executor() if running is not None else None
                    publish(root, config, manifests, info, started, source, executor)
                    mirror.published()
                    if top is not None:
                        publish_collection(top)
        except KeyboardInterrupt as exc:
            raise _interrupted(exc, len(done) + len(fresh), len(tasks)) from None
    counts = info.counts
    mark("end")
    elapsed = time.perf_counter() - started
    new_written = sum(len(r.manifest.samples) for r in fresh)
    new_skipped = sum(len(r.manifest.skipped) for r in fresh)
    return RunResult(
        Path(config.output.dir) if remote is None else remote.url,
        counts.written,
        counts.skipped,
        len(manifests),
        elapsed,
        info,
        new_written,
        new_skipped,
        len(fresh),
    )


def _index(m: ShardManifest) -> int:
    return m.index


def _execute(work: Execution) -> float:
    """Run the shards still to do with one progress bar; return the seconds it ran (the
    display's own time). On any failure, no worker outlives the call, no temporary is
    left and the error is one line."""
    cfg, todo, fresh = work.config, work.todo, work.fresh
    kept = sum(m.stop - m.start for m in work.done.values())
    bar = progress_bar(work.tasks.samples, cfg.runtime.progress, initial=kept)
    try:
        then = None
        if cfg.report.enabled:  # made ready by whoever is idle while the last shards finish
            then = pool.Then(("pipeline.report.plots",), partial(_warm_report, cfg))
        pool.execute(cfg, work.config_hash, todo, work.workers, bar, fresh.append, work.source,
                     then)  # fmt: skip
        bar.close()
        return bar.seconds()
    except BaseException as exc:
        root = store.local_root(cfg.output)
        claim.clean_temporaries(root, work.layout, todo)
        claim.drop_unrecorded(root, work.layout, todo)
        if isinstance(exc, SampleError):
            raise SampleError(
                exc.key,
                f"{exc.reason}; fix or remove this sample, or set runtime.on_error=skip to "
                f"skip and record bad samples",
            ) from None
        if isinstance(exc, BrokenProcessPool):
            raise PipelineError(
                f"a worker process died (killed by the OS: out of memory, or a crash) after "
                f"{len(fresh)} of {len(todo)} shard(s); the finished shards are kept: "
                f"re-run the same command to resume (with fewer runtime.workers if memory "
                f"is short)"
            ) from None
        raise
    finally:
        bar.close()


def _warm_report(cfg: Config) -> None:
    from pipeline.report.build import warm

    warm(cfg)


def _interrupted(exc: KeyboardInterrupt, finished: int, total: int) -> Interrupted:
    signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    if finished == total:
        detail = "all shards are finished; re-run the same command to write the report"
    else:
        detail = (
            f"{finished} of {total} shard(s) are finished and kept; re-run the same command "
            f"to resume"
        )
    return Interrupted(signum, detail)
