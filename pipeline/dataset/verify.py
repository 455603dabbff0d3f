"""Checking a written dataset against what its records vouch for: every shard file against
its manifest's sha256 (``shard_files``, the check every reader makes when it first reads a
shard), and the manifests and publish-time files (``metadata.jsonl``, the trainer lists)
against the sha256 ``dataset_info.json`` records. ``depth-pipeline-verify DIR|URL`` runs it
over a whole dataset, one line per damaged file; the merge checks every slice's shards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.dataset.reader import locate
from pipeline.dataset.records import INFO_FILE, ShardManifest
from pipeline.dataset.shard_files import REPAIR, ShardFiles, digest, manifest_rel, refuse

__all__ = ["REPAIR", "check_shard", "damaged", "verify_dataset"]


def damaged(root: Path, manifest: ShardManifest) -> list[str]:
    """What is wrong with the files of one shard in ``root``, one line each."""
    return ShardFiles(root).damaged(manifest)


def check_shard(root: Path, manifest: ShardManifest) -> None:
    """Refuse, in one line, a shard whose files do not match its manifest."""
    refuse(damaged(root, manifest))


def verify_dataset(
    root: str | Path, storage_options: dict[str, Any] | None = None
) -> tuple[int, list[str]]:
    """(files checked, one line per damaged file or record) for the dataset at ``root``,
    a directory or a URL (a URL's shards are fetched one at a time and hashed)."""
    files = locate(root, storage_options, cache_shards=1)
    info = files.info()
    manifests = files.manifests([s["name"] for s in info.shards])
    checked, problems, unreadable = 0, [], set()
    for shard in info.shards:
        manifest = manifests[shard["name"]]
        if manifest is None:
            unreadable.add(manifest_rel(shard["name"]))
            problems.append(f"{files.where(manifest_rel(shard['name']))}: missing or unreadable")
            continue
        if manifest.files != shard.get("files", manifest.files):
            problems.append(
                f"{files.where(manifest_rel(shard['name']))}: lists other files than "
                f"{INFO_FILE} says"
            )
        checked += len(manifest.files)
        problems += files.check(manifest)
    for rel, expected in sorted(info.checksums.items()):
        if rel in unreadable:
            continue  # said above
        checked += 1
        try:
            data = files.read_bytes(rel)
        except FileNotFoundError:
            problems.append(f"{files.where(rel)}: missing (listed in {INFO_FILE})")
            continue
        if digest(data) != expected:
            problems.append(
                f"{files.where(rel)}: edited since the dataset was published (sha256 differs "
                f"from {INFO_FILE})"
            )
    return checked, problems
