"""Downloading a dataset repo's own files (not its parquet conversion) with
``huggingface_hub``: the archives behind ``source=nyu`` (``sayakpaul/nyu_depth_v2``'s
``data/train-0000NN.tar``). ``snapshot_download`` fetches only the files matching the
pattern, at the pinned revision, into the Hugging Face cache (``HF_HOME``, or
``source.cache_dir``); an interrupted download resumes where it stopped, and a later run
finds the files there without the network. Every failure is one line."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.config.sources import FastdepthConfig
from pipeline.errors import PipelineError

_LOCAL_HINT = "or point source.path at a local copy (the FastDepth folder of .h5 files or its tars)"


def download(cfg: FastdepthConfig, subdir: str) -> tuple[str, dict[str, object]]:
    """The local glob of the split's archives after downloading what is missing, and the
    provenance (repo, revision, resolved commit, pattern) for ``identity``."""
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    from huggingface_hub import snapshot_download

    pattern = cfg.files.format(subdir=subdir)
    try:
        folder = snapshot_download(
            repo_id=cfg.repo,
            repo_type="dataset",
            revision=cfg.revision,
            allow_patterns=[pattern],
            cache_dir=cfg.cache_dir,
        )
    except Exception as exc:  # huggingface_hub raises many types, some only by name
        raise _explain(exc, cfg, pattern) from None
    found = sorted(Path(folder).glob(pattern))
    if not found:
        raise PipelineError(
            f"source.repo={cfg.repo} (revision {cfg.revision or 'main'}) has no files "
            f"matching source.files={pattern}; check source.files and source.split"
        )
    provenance = {
        "repo": cfg.repo,
        "revision": cfg.revision,
        "resolved_revision": Path(folder).name,
        "files_pattern": pattern,
        "downloaded_to": folder,
    }
    return str(Path(folder) / pattern), provenance


def _explain(exc: BaseException, cfg: FastdepthConfig, pattern: str) -> PipelineError:
    """One line: offline, unknown repo or revision, an incomplete cached copy, or else."""
    kind = type(exc).__name__
    text = " ".join(str(exc).split())
    repo = f"source.repo={cfg.repo}"
    if kind == "IncompleteSnapshotError":
        return PipelineError(
            f"{repo}: the cached download of {pattern} is incomplete and the Hugging Face "
            f"Hub cannot be reached; run again where it is reachable to finish it (it "
            f"resumes), {_LOCAL_HINT}"
        )
    if kind in ("RepositoryNotFoundError", "GatedRepoError"):
        return PipelineError(f"{repo}: no such (or no accessible) dataset repo on the hub")
    if kind == "RevisionNotFoundError":
        return PipelineError(f"source.revision={cfg.revision}: not found in {cfg.repo}")
    if (
        kind in ("LocalEntryNotFoundError", "OfflineModeIsEnabled")
        or isinstance(exc, (ConnectionError, TimeoutError))
        or "connect" in text.lower()
    ):
        return PipelineError(
            f"{repo}: cannot reach the Hugging Face Hub (offline, HF_HUB_OFFLINE=1 or no "
            f"network) and {pattern} is not in the cache; run once where the hub is "
            f"reachable, {_LOCAL_HINT}"
        )
    if isinstance(exc, OSError):
        return PipelineError(f"{repo}: cannot store the download ({exc.strerror or text})")
    return PipelineError(f"{repo}: download failed ({kind}: {text[:300]})")
