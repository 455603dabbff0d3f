"""Shards checked against their manifests: every listed file present, its sha256 the one
recorded. ``pipeline.read`` checks each shard before reading it, the merge every slice's
shards, a resumed run the shards it keeps (``claim.finished``), and
``depth-pipeline-verify DIR`` a whole dataset, one line per damaged file.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.dataset.owned import inside
from pipeline.dataset.records import INFO_FILE, DatasetInfo, ShardManifest
from pipeline.dataset.writers import sha256_file
from pipeline.errors import PipelineError

REPAIR = "re-run the command that wrote it (the damaged shards are written again)"


def damaged(root: Path, manifest: ShardManifest) -> list[str]:
    """What is wrong with the files of one shard, one line each ([] if nothing)."""
    problems = []
    for rel, digest in sorted(manifest.files.items()):
        path = inside(root, rel)
        if path is None:
            problems.append(f"{rel}: shard {manifest.shard}'s manifest points outside {root}")
        elif not path.is_file():
            problems.append(f"{path}: missing (listed in shard {manifest.shard}'s manifest)")
        elif sha256_file(path) != digest:
            problems.append(
                f"{path}: its bytes changed since shard {manifest.shard} was written "
                f"(sha256 differs from its manifest)"
            )
    return problems


def check_shard(root: Path, manifest: ShardManifest) -> None:
    """Refuse, in one line, a shard whose files do not match its manifest."""
    problems = damaged(root, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PipelineError(f"damaged dataset: {problems[0]}{more}; {REPAIR}")


def verify_dataset(root: Path) -> tuple[int, list[str]]:
    """(files checked, one line per damaged file or record) for the dataset in ``root``."""
    if not (root / INFO_FILE).is_file():
        raise PipelineError(
            f"{root} holds no finished depth-pipeline dataset (no {INFO_FILE}); give the "
            f"output.dir of a finished run"
        )
    info = DatasetInfo.read(root)
    checked, problems = 0, []
    for shard in info.shards:
        manifest = ShardManifest.read(root, shard["name"])
        if manifest is None:
            problems.append(f"{ShardManifest.path(root, shard['name'])}: missing or unreadable")
            continue
        if manifest.files != shard.get("files", manifest.files):
            problems.append(
                f"{ShardManifest.path(root, shard['name'])}: lists other files than "
                f"{INFO_FILE} says"
            )
        checked += len(manifest.files)
        problems += damaged(root, manifest)
    return checked, problems
