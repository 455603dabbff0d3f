"""Shared helpers: compose the real Hydra config, run the real CLI, read shards back."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"


# The loopback object-store servers (S3, GCS, Azure) and how every process of the session
# reaches them: their environment is set when object_servers is imported, here, before any
# worker process (forkserver) starts. Dummy credentials: no request leaves 127.0.0.1.
from object_servers import S3_ENDPOINT, make_bucket_on, start_s3, stop_all  # noqa: E402, F401

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
# Small scenes keep the suite fast; the crop is scaled to fit.
SMALL = [
    "source.height=96",
    "source.width=128",
    "augment.transforms.crop.height=64",
    "augment.transforms.crop.width=96",
    "runtime.progress=false",
    "report.dpi=60",
]


def make_cfg(out_dir: Path | str, *overrides: str, small: bool = True):
    """The composed config exactly as the CLI would build it (minus hydra's own keys)."""
    from pipeline.config.schema import register

    register()
    small_args = SMALL if small else []
    if any(o.startswith("source=") and o != "source=synthetic" for o in overrides):
        # only the synthetic source has a size to set: other kinds refuse the keys
        small_args = [o for o in small_args if not o.startswith("source.")]
    args = [*small_args, f"output.dir={out_dir}", *overrides]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="config", overrides=args)


def run_cli(
    *args: str, cwd: Path | None = None, timeout: int = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_tar(path: Path) -> dict[str, dict[str, bytes]]:
    """{key: {ext: bytes}} using the standard library only."""
    out: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for m in tar:
            key, _, ext = m.name.partition(".")
            out.setdefault(key, {})[ext] = tar.extractfile(m).read()
    return out


def shard_bytes(out_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(out_dir).glob("*.tar"))}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


_buckets = itertools.count()


def start_s3_server() -> str:
    """The S3-protocol server (moto) of this test process at ``S3_ENDPOINT``."""
    return start_s3()


def make_bucket(name: str) -> str:
    """``s3://name`` on the loopback server (created if absent)."""
    return make_bucket_on("s3", name)


@pytest.fixture(scope="session")
def s3_server():
    pytest.importorskip("s3fs", reason="the s3 extra: pip install -e '.[dev,s3]'")
    yield start_s3_server()
    stop_all()


@pytest.fixture
def s3(s3_server):
    """A fresh bucket on the loopback server; returns ``s3://bucket``."""
    return make_bucket(f"test-{os.getpid()}-{next(_buckets)}")


STORES = {"s3": "s3fs", "gs": "gcsfs", "az": "adlfs"}


@pytest.fixture(scope="session")
def servers():
    yield
    stop_all()


@pytest.fixture(params=sorted(STORES))
def bucket(request, servers):
    """A fresh bucket (container) on each store's loopback server in turn: ``s3://...``,
    ``gs://...``, ``az://...``."""
    pytest.importorskip(STORES[request.param], reason="pip install -e '.[dev,all-stores]'")
    return make_bucket_on(request.param, f"test-{os.getpid()}-{next(_buckets)}")
