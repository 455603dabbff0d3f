"""Merging the slices of a run written to a URL ``output.dir`` (``s3://...``).

Each slice of a sliced run to a URL takes its own lock object
(``.depth-pipeline/lock-slice-KKKKK-of-NNNNN.json``, a conditional create: two jobs of
one slice are refused, the slices write side by side), uploads its shards and manifests
and then ``slices/slice-KKKKK-of-NNNNN.json``; it never merges by itself. ``merge_url``
(``depth-pipeline-merge s3://...``, the merge job of ``hydra/launcher=slurm``, the
multirun's ``MergeCallback``) takes the dataset's lock object, mirrors the records into a
staging directory, checks every slice and every shard object (its sha256, kept as S3
metadata at upload, against the manifest), and uploads the card, the report and
``dataset_info.json`` last, as a run to a URL does.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.cluster.slices import merged
from pipeline.config.urls import is_url
from pipeline.dataset import staging
from pipeline.dataset.owned import SLICE_DIR
from pipeline.dataset.records import DatasetInfo, ShardManifest
from pipeline.dataset.store import Remote
from pipeline.errors import PipelineError


def merge_url(url: str) -> DatasetInfo:
    """Merge the slices recorded under ``url``; return the merged info."""
    from pipeline.publish.publish import publish

    assert is_url(url)
    remote = Remote(url)
    remote.fs  # noqa: B018  (one line now if nothing here serves the URL)
    root = staging.directory(remote, None, "merge")
    with staging.staged(remote, root) as mirror:
        mirror.claimed()  # nothing to delete: drops the placeholders of the objects
        if not (root / SLICE_DIR).is_dir():
            raise PipelineError(
                f"{url} has no {SLICE_DIR}/slice-*.json: it was not written by sliced runs "
                f"(shard.num_shards > 1), or the URL is wrong"
            )

        def damaged(_: Path, manifest: ShardManifest) -> list[str]:
            return [
                f"{remote.path(rel)}: missing, or not the bytes of shard {manifest.shard}'s "
                f"manifest (sha256)"
                for rel, digest in sorted(manifest.files.items())
                if not remote.matches(rel, digest)
            ]

        cfg, manifests, info = merged(root, url, damaged)
        cfg.output.staging_dir = str(root)
        publish(root, cfg, manifests, info)
        mirror.published()
    return info
