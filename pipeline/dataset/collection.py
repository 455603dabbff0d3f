"""Several splits in one output dir (``output.splits=true``, ``output=parquet``).

A run writes its split (``source.split``) as a complete dataset of its own in
``{output.dir}/{split}/``: its own config record, lock, resume, statistics, report and
overwrite, through the unchanged claim machinery, so writing or overwriting one split
never touches another's files. Then it composes, under a lock, the top ``README.md``
(a card whose ``configs`` list every finished split's files, ``dataset_info`` their
features and sizes) and ``dataset_info.json`` (``{"splits": {name: that split's info}}``)
from the splits' own ``dataset_info.json``: ``datasets.load_dataset(output.dir)`` gives a
``DatasetDict`` of all of them. A ``README.md`` this tool did not write is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path

from pipeline.dataset.layouts import layout_for
from pipeline.dataset.owned import CARD, CARD_MARK, CONFIG_RECORD, card_is_ours, signed_card
from pipeline.dataset.records import INFO_FILE, DatasetInfo
from pipeline.dataset.writers import atomic_write
from pipeline.encode.record import features_yaml
from pipeline.errors import PipelineError

LOCK = ".depth-pipeline/collection.lock"


def split_dir(top: str, split: str, fmt: str, url: bool) -> str:
    """Where a split's run writes (``{top}/{split}``); one line for what is not supported."""
    if fmt != "parquet":
        raise PipelineError(
            f"output.splits=true writes several splits as one Hugging Face dataset of parquet "
            f"files: use output=parquet (got output={fmt}), or one output.dir per split"
        )
    if url:
        raise PipelineError(
            "output.splits=true needs a local output.dir; write the splits locally and "
            "upload the directory (README: Hugging Face parquet)"
        )
    if not split or split.startswith(".") or "/" in split or split in ("data", "report"):
        raise PipelineError(f"source.split={split!r} cannot name a split directory; use e.g. test")
    check_top(Path(top))
    return str(Path(top) / split)


def check_top(top: Path) -> None:
    """Refuse a top dir that holds a dataset of one split (its records are not ours to
    replace with the collection's)."""
    info = top / INFO_FILE
    single = (top / CONFIG_RECORD).exists()
    if not single and info.is_file():
        with contextlib.suppress(ValueError, OSError):
            single = "splits" not in json.loads(info.read_bytes())
    if single:
        raise PipelineError(
            f"output.dir={top} holds a dataset written without output.splits; write the "
            f"splits into a new output.dir (or overwrite that dataset without output.splits)"
        )


def finished_splits(top: Path) -> dict[str, DatasetInfo]:
    """Each finished split under ``top`` written with ``output.splits``, by name."""
    found = {}
    dirs = (p for p in top.iterdir() if p.is_dir() and not p.name.startswith("."))
    for d in sorted(dirs, key=lambda p: (p.name != "train", p.name)):  # train first
        if (d / INFO_FILE).is_file():
            info = DatasetInfo.read(d)
            if info.config.get("output", {}).get("splits"):
                found[d.name] = info
    return found


@contextlib.contextmanager
def _locked(top: Path) -> Iterator[None]:
    path = top / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield


def publish_collection(top: Path) -> None:
    """The top card and ``dataset_info.json`` describing every finished split."""
    with _locked(top):
        splits = finished_splits(top)
        if not splits:
            return
        if not (top / CARD).exists() or card_is_ours(top):
            atomic_write(top / CARD, signed_card(card(top, splits)))
        record = {"splits": {name: info.to_json() for name, info in splits.items()}}
        atomic_write(top / INFO_FILE, json.dumps(record, indent=2).encode())


def card(top: Path, splits: dict[str, DatasetInfo]) -> str:
    """The top ``README.md``: a header for ``datasets`` and the hub, and one line a split."""
    from pipeline.dataset.layouts.parquet import ParquetLayout

    files, sizes, lines = [], [], []
    for name, info in splits.items():
        layout = layout_for("parquet", top / name, str(info.config["output"]["prefix"]))
        assert isinstance(layout, ParquetLayout)
        rows, nbytes = layout.split_size(info)
        files.append(f'  - split: {name}\n    path:\n    - "{name}/{layout.data_files(info)[0]}"')
        sizes.append(f"  - name: {name}\n    num_bytes: {nbytes}\n    num_examples: {rows}")
        augment = ", ".join(info.config.get("augment", {}).get("transforms", {})) or "none"
        lines.append(
            f"| {name} | {rows} | {augment} | {info.fingerprint} | [{name}/README.md]"
            f"({name}/README.md) |"
        )
    contents = ", ".join(f"{n} {i.fingerprint}" for n, i in splits.items())
    where = json.dumps(str(top.resolve()))[1:-1]
    table = "\n".join(lines)
    return (
        f"---\nconfigs:\n- config_name: default\n"
        f'  description: "depth-pipeline splits, content {contents}, in {where}"\n'
        f"  data_files:\n" + "\n".join(files) + "\n"
        f"dataset_info:\n  config_name: default\n  features:\n"
        f"{features_yaml(ParquetLayout.features(), 2)}\n  splits:\n" + "\n".join(sizes) + "\n"
        f"---\n\n# RGB-D dataset {CARD_MARK}\n\n"
        f"Splits written by separate runs, each a complete dataset in its folder (its own "
        f"card, config, manifests, statistics and report):\n\n"
        f"| split | samples | transforms | content | card |\n|---|---|---|---|---|\n{table}\n\n"
        f'```python\nimport datasets\nds = datasets.load_dataset("{top}")  # every split\n```\n'
    )
