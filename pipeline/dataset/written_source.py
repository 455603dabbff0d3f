"""An earlier output of this tool fed back in (``source=webdataset source.path=<output.dir>``,
a directory or a URL holding its ``dataset_info.json``), read through the one reader
(``dataset.reader``) whatever its format: depth in metres from each record's
``depth_scale``, sha256 checked per shard, and each sample's mixture part (``dataset``,
``data_type``), camera and applied params kept, so re-processing a mixture keeps its
tags and a chain of runs keeps its record. It lives with the reader it wraps (a source
that reads this tool's own format comes after the dataset stage in the flow).
"""

from __future__ import annotations

from collections.abc import Iterator

from pipeline.config import urls
from pipeline.config.sources import WebdatasetConfig
from pipeline.dataset.reader import Reader
from pipeline.dataset.records import INFO_FILE
from pipeline.dataset.shard_files import manifest_rel
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Origin, Sample
from pipeline.sources import Source


class WrittenSource(Source):
    """The samples of a finished depth-pipeline dataset, in its order, keys as written."""

    def __init__(self, cfg: WebdatasetConfig, reader: Reader) -> None:
        if cfg.depth_scale != 1.0:
            raise PipelineError(
                f"source.path={cfg.path} is a depth-pipeline dataset: its records give each "
                f"depth file's scale; drop source.depth_scale={cfg.depth_scale:g}"
            )
        self.cfg, self.reader = cfg, reader

    def __len__(self) -> int:
        return len(self.reader)

    def identity(self) -> dict[str, object]:
        info, manifests = self.reader.info, self.reader.manifests
        assert info is not None
        records = [INFO_FILE, *(manifest_rel(m.shard) for m in manifests)]
        return {
            "kind": "webdataset",
            "path": self.cfg.path,
            "written_by": info.tool,
            "format": info.config["output"]["format"],
            "num_shards": len(manifests),
            "num_samples": len(self.reader),
            "content": info.fingerprint,  # every written file's sha256, as recorded
            # every file read, by size and time (ETag): a file rewritten after the
            # dataset was finished is a changed source, even before a shard is read
            "fingerprint": self.reader.files.stamps(
                records + [rel for m in manifests for rel in m.files]
            ),
        }

    def iter(self, start: int, stop: int) -> Iterator[Sample | SampleError]:
        where = self.reader.files.root
        for s in self.reader.stream(start, min(stop, len(self.reader))):
            origin = Origin("webdataset", f"{where}:{s.key}", s.dataset, s.data_type)
            yield Sample(s.key, s.image, s.depth, origin, s.camera, s.params)

    def for_workers(self) -> Source | None:
        return self  # the records are read; each worker reads (and checks) its shards


def open_webdataset(cfg: WebdatasetConfig) -> Source:
    """``source=webdataset``: an earlier output of this tool through the one reader, any
    other tars through ``WebdatasetSource``."""
    from pipeline.dataset.reader import locate
    from pipeline.sources.webdataset import TAR_SUFFIXES, WebdatasetSource

    if urls.is_url(cfg.path):  # before the store is asked (it would name output.dir)
        urls.check_segments(cfg.path, "source.path")
    if cfg.path and not cfg.path.endswith(TAR_SUFFIXES) and "*" not in cfg.path:
        options = urls.storage_options(cfg.storage_options, "source.storage_options")
        files = locate(cfg.path, options, endpoint_url=cfg.endpoint_url)
        try:
            files.read_bytes(INFO_FILE)
        except OSError:  # no dataset_info.json: tars of another kind (or unfinished)
            return WebdatasetSource(cfg)
        return WrittenSource(cfg, Reader.open(cfg.path, options, endpoint_url=cfg.endpoint_url))
    return WebdatasetSource(cfg)
