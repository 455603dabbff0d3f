"""Typed records of a run: shard manifests, counts, stage timings and ``dataset_info.json``.

Each record is a dataclass with ``to_json`` / ``from_json`` (and ``merge`` where records
add up), so workers, the runner, the merge of slices and the report share one
definition instead of string-keyed dicts. The JSON keeps the on-disk field names.
All records live here on purpose (one place to look), hence a little over 300 lines.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from pipeline.dataset.stats import Stats
from pipeline.encode.record import CameraRecord, Record
from pipeline.sample import InvalidPixels, Plain, Tally

MANIFEST_DIR = "manifests"
INFO_FILE = "dataset_info.json"
LIBRARIES = (
    "depth-pipeline",
    "numpy",
    "albumentations",
    "opencv-python-headless",
    "tifffile",
    "pillow",
    "hydra-core",
    "omegaconf",
    "datasets",
)


@dataclass
class StageTimes(Tally):
    """CPU seconds spent in each stage of the workers."""

    read: float = 0.0
    augment: float = 0.0
    encode: float = 0.0
    write: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in asdict(self).items()}


@dataclass
class SampleRecord(Plain):
    """A written sample's manifest entry: its ``Record`` (key, input index, copy, applied
    params, camera, source key) with the depth shape and the share of invalid pixels.
    ``camera`` is None and ``source_key`` the written key in manifests written before
    they were recorded."""

    key: str
    index: int
    copy: int
    shape: list[int]
    invalid_fraction: float
    params: dict[str, Any]
    camera: CameraRecord | None = None
    source_key: str = ""
    dataset: str = ""
    data_type: str = ""

    @classmethod
    def of(cls, record: Record, shape: list[int], invalid_fraction: float) -> SampleRecord:
        a = record.augment
        return cls(
            record.key, a.index, a.copy, shape, invalid_fraction, dict(a.params),
            record.camera, record.source.key, record.dataset, record.data_type,
        )  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleRecord:
        camera = data.get("camera")
        return cls(
            **data
            | {
                "camera": CameraRecord(**camera) if camera is not None else None,
                "source_key": data.get("source_key") or data["key"],
            }
        )


@dataclass
class Skip(Plain):
    """A sample left out with ``runtime.on_error=skip``, and why."""

    key: str
    reason: str


@dataclass
class ShardManifest:
    """``manifests/{shard}.json``: what one shard holds; its presence marks it complete."""

    shard: str
    index: int
    start: int
    stop: int
    config_hash: str
    files: dict[str, str] = field(default_factory=dict)  # path in output.dir -> sha256
    samples: list[SampleRecord] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    invalid_pixels: InvalidPixels = field(default_factory=InvalidPixels)
    stats: Stats = field(default_factory=Stats)
    members: list[str] = field(default_factory=list)  # member extensions written
    source_fingerprint: str | None = None  # Source.fingerprint of the inputs read
    part_stats: dict[str, Stats] = field(default_factory=dict)  # a mixture's, by part

    def stats_for(self, dataset: str) -> Stats:
        """Where a written sample of part ``dataset`` is accumulated: its part's stats in
        a mixture (added to ``stats`` by ``seal``), else ``stats``."""
        return self.part_stats.setdefault(dataset, Stats()) if dataset else self.stats

    def seal(self) -> None:
        """Add the parts' accumulators into the whole's (once, when the shard is done)."""
        for part in self.part_stats.values():
            self.stats.merge(part)

    def to_json(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "index": self.index,
            "start": self.start,
            "stop": self.stop,
            "config_hash": self.config_hash,
            "files": self.files,
            "samples": [s.to_json() for s in self.samples],
            "skipped": [s.to_json() for s in self.skipped],
            "invalid_pixels": self.invalid_pixels.to_json(),
            "stats": self.stats.to_json(),
            "members": self.members,
            "source_fingerprint": self.source_fingerprint,
        } | ({"part_stats": {k: v.to_json() for k, v in self.part_stats.items()}}
             if self.part_stats else {})  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardManifest:
        return cls(
            shard=data["shard"],
            index=data["index"],
            start=data["start"],
            stop=data["stop"],
            config_hash=data["config_hash"],
            files=dict(data["files"]),
            samples=[SampleRecord.from_json(s) for s in data["samples"]],
            skipped=[Skip.from_json(s) for s in data["skipped"]],
            invalid_pixels=InvalidPixels.from_json(data["invalid_pixels"]),
            stats=Stats.from_json(data["stats"]),
            members=list(data.get("members", [])),
            source_fingerprint=data.get("source_fingerprint"),
            part_stats={k: Stats.from_json(v) for k, v in data.get("part_stats", {}).items()},
        )

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode()

    @staticmethod
    def path(root: Path, shard: str) -> Path:
        return root / MANIFEST_DIR / f"{shard}.json"

    @classmethod
    def read(cls, root: Path, shard: str) -> ShardManifest | None:
        """The manifest of ``shard`` in ``root``; None if missing or unreadable."""
        try:
            return cls.from_json(json.loads(cls.path(root, shard).read_text()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass
class ShardResult:
    """What a worker returns for one shard: the manifest and the time per stage."""

    manifest: ShardManifest
    timings: StageTimes


@dataclass
class Counts(Plain):
    """Samples written and skipped (with reasons), shards written and resumed."""

    written: int = 0
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    skipped_samples: list[dict[str, str]] = field(default_factory=list)
    shards: int = 0
    resumed_shards: int = 0

    MAX_LISTED = 1000  # skipped samples listed by key

    @classmethod
    def of(cls, manifests: list[ShardManifest], resumed_shards: int = 0) -> Counts:
        skipped = [s for m in manifests for s in m.skipped]
        reasons: dict[str, int] = {}
        for s in skipped:
            reasons[s.reason] = reasons.get(s.reason, 0) + 1
        return cls(
            written=sum(len(m.samples) for m in manifests),
            skipped=len(skipped),
            skipped_reasons=reasons,
            skipped_samples=[asdict(s) for s in skipped[: cls.MAX_LISTED]],
            shards=len(manifests),
            resumed_shards=resumed_shards,
        )


@dataclass
class Timings:
    """Wall time (from the start of the run to the end of its shards), workers and stage
    CPU time of a run; ``data_s``: the seconds spent writing shards (what the progress
    display and the summary's samples/s count); report and total added at publish."""

    wall_s: float = 0.0
    workers: int = 0
    stage_cpu_s: StageTimes = field(default_factory=StageTimes)
    data_s: float | None = None
    report_s: float | None = None
    total_s: float | None = None
    slices: int | None = None
    slice_wall_s: list[float] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "wall_s": round(self.wall_s, 3),
            "workers": self.workers,
            "stage_cpu_s": self.stage_cpu_s.to_json(),
        }
        for name in ("data_s", "report_s", "total_s", "slices", "slice_wall_s"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timings:
        return cls(**{**data, "stage_cpu_s": StageTimes.from_json(data["stage_cpu_s"])})


def content_fingerprint(manifests: list[ShardManifest]) -> str:
    """A short hash of every written file's path and sha256: equal only for equal content."""
    files = sorted((rel, digest) for m in manifests for rel, digest in m.files.items())
    return hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]


def versions() -> dict[str, str | None]:
    """Python and library versions that shape the output bytes."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def part_summaries(manifests: list[ShardManifest]) -> dict[str, Any]:
    """``{"parts": {part: its sample count and stats summary}}`` of a mixture, else {}."""
    parts: dict[str, Stats] = {}
    samples: dict[str, int] = {}
    for m in manifests:
        for name, stats in m.part_stats.items():
            parts.setdefault(name, Stats()).merge(stats)
        for s in m.samples:
            samples[s.dataset] = samples.get(s.dataset, 0) + 1
    if not parts:
        return {}
    return {"parts": {k: {"samples": samples.get(k, 0), **v.summary()} for k, v in parts.items()}}


@dataclass(kw_only=True)
class DatasetInfo:
    """``dataset_info.json``: provenance, counts, stats and timings of a finished dataset."""

    tool: str = "depth-pipeline"
    versions: dict[str, str | None] = field(default_factory=versions)
    config_hash: str
    config: dict[str, Any]
    overrides: list[str]
    source: dict[str, Any]
    seed: int
    counts: Counts
    invalid_pixels: InvalidPixels
    image_size: Any
    encodings: dict[str, Any]
    shards: list[dict[str, Any]]
    stats: dict[str, Any]
    timings: Timings
    # sha256 over every written file's sha256: identifies the content (the card's cache id)
    fingerprint: str = ""
    # sha256 of the records the dataset vouches for beyond the shards: each shard manifest
    # and the publish-time files (metadata.jsonl, trainer lists); checked by verify
    checksums: dict[str, str] = field(default_factory=dict)

    RECORDS: ClassVar[dict[str, Any]] = {
        "counts": Counts,
        "invalid_pixels": InvalidPixels,
        "timings": Timings,
    }

    @classmethod
    def build(
        cls,
        config_hash: str,
        config: dict[str, Any],
        source: dict[str, Any],
        manifests: list[ShardManifest],
        overrides: list[str],
        encodings: dict[str, Any],
        timings: Timings,
        resumed_shards: int = 0,
    ) -> DatasetInfo:
        """Sum the shard manifests into the dataset's record (``config`` is the plain
        resolved config, as ``dataclasses.asdict`` gives it)."""
        stats, invalid = Stats(), InvalidPixels()
        for m in manifests:
            stats.merge(m.stats)
            invalid.merge(m.invalid_pixels)
        shapes = sorted({tuple(s.shape) for m in manifests for s in m.samples})
        return cls(
            config_hash=config_hash,
            config=config,
            overrides=overrides,
            source=source,
            seed=config["augment"]["seed"],
            counts=Counts.of(manifests, resumed_shards),
            invalid_pixels=invalid,
            image_size=list(shapes[0]) if len(shapes) == 1 else [list(s) for s in shapes],
            encodings=encodings | {"members": sorted({e for m in manifests for e in m.members})},
            shards=[
                {"name": m.shard, "files": m.files, "samples": len(m.samples)} for m in manifests
            ],
            stats=stats.summary() | part_summaries(manifests),
            timings=timings,
            fingerprint=content_fingerprint(manifests),
        )

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return out | {name: out[name].to_json() for name in self.RECORDS}

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), indent=2, default=str).encode()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DatasetInfo:
        known = {f.name for f in fields(cls)}
        plain = {k: v for k, v in data.items() if k in known}
        return cls(**plain | {k: r.from_json(data[k]) for k, r in cls.RECORDS.items()})

    @classmethod
    def read(cls, root: Path) -> DatasetInfo:
        """``root/dataset_info.json``; a one-line ``PipelineError`` if absent or invalid."""
        from pipeline.errors import PipelineError

        path = root / INFO_FILE
        try:
            return cls.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise PipelineError(
                f"{root} has no {INFO_FILE}: not a finished depth-pipeline output dir "
                f"(a run writes it last; re-run the pipeline to finish it)"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PipelineError(f"{path}: not a valid {INFO_FILE} ({exc})") from None

    def manifests(self, root: Path) -> list[ShardManifest]:
        """The shard manifests this dataset lists, in shard order."""
        from pipeline.errors import PipelineError

        out = []
        for shard in self.shards:
            manifest = ShardManifest.read(root, shard["name"])
            if manifest is None:
                raise PipelineError(
                    f"{ShardManifest.path(root, shard['name'])}: missing or unreadable shard "
                    f"manifest; re-run the pipeline with the same config to repair the dataset"
                )
            out.append(manifest)
        return sorted(out, key=lambda m: m.index)
