"""What goes wrong opening a Hugging Face dataset, as one line saying what to do: the hub
unreachable, a loading-script repo, an unknown repo, revision or split, a partial parquet
conversion."""

from __future__ import annotations

from pipeline.config.sources import HubConfig
from pipeline.errors import PipelineError

_LOCAL_HINT = "point source.path at a local copy (a parquet directory or a save_to_disk dir)"


def refuse_partial(files: list[str], cfg: HubConfig) -> None:
    """The hub's automatic parquet conversion of a large dataset covers only its first
    rows and says so in the directory name (``default/partial-train/``): refuse it rather
    than silently writing a fraction of the data."""
    partial = next((f for f in files if "/partial-" in f.replace("\\", "/")), None)
    if partial is not None:
        raise PipelineError(
            f"source.path={cfg.path} split {cfg.split}: this parquet conversion is partial "
            f"({partial.split('/partial-')[0].rpartition('/')[2]}/partial-{cfg.split}: only "
            f"its first rows); read the complete data instead: source=nyu for NYU Depth v2's "
            f"archives, or the dataset's own files via a complete local copy (source.path)"
        )


def explain(exc: BaseException, cfg: HubConfig) -> PipelineError:
    """One line for what went wrong opening ``source.path`` and what to do about it."""
    import datasets

    text = " ".join(str(exc).split())
    kind = type(exc).__name__
    where = f"source.path={cfg.path}"
    if "scripts are no longer supported" in text:
        return PipelineError(
            f"{where} needs a loading script, which datasets {datasets.__version__} refuses; "
            f"use its parquet conversion (source.revision=refs/convert/parquet) or {_LOCAL_HINT}"
        )
    if (
        isinstance(exc, ConnectionError)
        or "Couldn't reach" in text
        or kind in ("LocalEntryNotFoundError", "OfflineModeIsEnabled")
    ):
        return PipelineError(
            f"{where}: cannot reach the Hugging Face Hub (offline, HF_HUB_OFFLINE=1 or no "
            f"network) and no cached copy; {_LOCAL_HINT}, or run where the hub is reachable"
        )
    if kind in ("DatasetNotFoundError", "RepositoryNotFoundError", "GatedRepoError"):
        return PipelineError(
            f"{where}: no such local directory, and no such (or no accessible) dataset on "
            f"the hub; check the path or repo id"
        )
    if kind == "RevisionNotFoundError" or "Revision" in text and "not" in text:
        return PipelineError(f"source.revision={cfg.revision}: not found in {cfg.path}")
    if isinstance(exc, FileNotFoundError) or kind == "EmptyDatasetError":
        return PipelineError(
            f"{where}: no data files found ({text[:200]}); check source.path / source.data_files"
        )
    if kind == "ValueError" and "split" in text.lower():
        return PipelineError(f"source.split={cfg.split}: {text[:300]}")
    return PipelineError(f"{where}: cannot load the dataset ({kind}: {text[:300]})")
