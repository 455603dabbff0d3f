"""``make bench``, the loader line: samples/s of ``DepthShards`` (through ``DepthLoader``,
batches of 8, shuffled as in training, no augmentation) over one written dataset of the
photos input (640x480, float32 TIFF depth) at ``num_workers`` 0 and 2, against a plain
loop (``tarfile`` + OpenCV PNG decode + ``tifffile``, one process), from local disk and
from the loopback S3 server (moto, in a process of its own as a real store would be),
with the time to the first batch (from building the dataset, its ``Reader.open``
included). The main process runs torch with one intra-op thread (loader workers always
do); each figure is the best of two. Two figures bound what these cores allow: 2 workers
that decode and stack in their own memory and send only the keys (a batch's trip through
shared memory left out), and the S3 server's CPU per pass beside the local pass's time.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import get_worker_info

from pipeline.bench import runs
from pipeline.bench.methods import ROOT
from pipeline.bench.store import _free_port
from pipeline.torch import DepthLoader, DepthShards, datasets

BATCH = 8


def plain(root: Path) -> int:
    """Every sample of the local tars decoded with numpy, OpenCV and tifffile."""
    import cv2
    import tifffile

    n = 0
    for path in sorted(root.glob("*.tar")):
        with tarfile.open(path) as tar:
            for member in tar:
                data = tar.extractfile(member)
                if data is None:
                    continue
                raw = data.read()
                if member.name.endswith(".png"):
                    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
                    cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
                    n += 1
                elif member.name.endswith(".depth.tiff"):
                    tifffile.imread(io.BytesIO(raw))
    return n


class KeysOnly(DepthShards):
    """Reads, checks, decodes and stacks as ``DepthShards`` does, but in a worker's own
    memory (not shared memory) and yields only the keys: how fast the workers could go on
    these cores if a batch cost nothing to send."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if get_worker_info() is not None:  # this worker process only
            datasets._stack = torch.stack
        for batch in super().__iter__():
            yield {"key": batch["key"]}


def shards(root: str, workers: int, kind: type = DepthShards, **options: Any) -> tuple[int, float]:
    """Samples read and seconds to the first batch."""
    t0 = time.perf_counter()
    data = kind(root, batch_size=BATCH, shuffle=True, **options)
    loader = DepthLoader(data, num_workers=workers)
    n, first = 0, 0.0
    for batch in loader:
        first = first or time.perf_counter() - t0
        n += len(batch["key"])
    return n, first


def timed(fn: Any, *args: Any, **kw: Any) -> dict[str, Any]:
    best: dict[str, Any] = {}
    for _ in range(2):
        t0 = time.perf_counter()
        got = fn(*args, **kw)
        seconds = time.perf_counter() - t0
        n, first = got if isinstance(got, tuple) else (got, None)
        if not best or seconds < best["seconds"]:
            best = {"samples": n, "seconds": round(seconds, 2),
                    "samples_per_s": round(n / seconds, 1), "first_batch_s": first}  # fmt: skip
    if best["first_batch_s"] is not None:
        best["first_batch_s"] = round(best["first_batch_s"], 2)
    return best


def bench(root: Path, parquet: Path, samples: int, kind: str = "photos") -> dict[str, Any]:
    """The dataset written once (``augment=none``), then each reader on it."""
    import s3fs

    local = root / "work" / "loader-dataset"
    if not (local / "dataset_info.json").is_file():
        hub = ["source=hub", f"source.path={parquet}", f"source.limit={samples}"]
        args = [*hub, "augment=none", "report.enabled=false", "runtime.progress=false"]
        cmd = [sys.executable, "-m", "pipeline", *args, f"output.dir={local}"]
        runs.measure(cmd, runs.bench_env(root), ROOT)
    torch.set_num_threads(1)
    out: dict[str, Any] = {"samples": samples, "kind": kind, "plain": timed(plain, local)}
    for workers in (0, 2):
        out[f"local_{workers}"] = timed(shards, str(local), workers)
    out["keys_only_2"] = timed(shards, str(local), 2, KeysOnly)
    port = _free_port()
    env = {**os.environ, "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(1 << 30)}  # objects in memory
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(300):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, key="bench", secret="bench")
        fs.mkdir("loader")
        fs.put(str(local), "loader/ds", recursive=True)
        options = {"storage_options": {"key": "bench", "secret": "bench"},
                   "endpoint_url": endpoint}  # fmt: skip
        before = _cpu_seconds(server.pid)
        for workers in (0, 2):
            out[f"s3_{workers}"] = timed(shards, "s3://loader/ds", workers, **options)
        out["s3_server_cpu_s"] = round(_cpu_seconds(server.pid) - before, 1)
    finally:
        server.kill()
        server.wait()
    return out


def _cpu_seconds(pid: int) -> float:
    """CPU seconds a process has used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def line(result: dict[str, Any]) -> str:
    rate = {k: v["samples_per_s"] for k, v in result.items() if isinstance(v, dict)}
    first = {k: v["first_batch_s"] for k, v in result.items() if isinstance(v, dict)}
    server = result.get("s3_server_cpu_s", 0) / 4  # two timed passes at 0 and at 2 workers
    return (
        f"loader, {result['samples']} {result['kind']} 640x480 (float TIFF), batches of {BATCH}: "
        f"plain tarfile loop {rate['plain']:.1f}/s; DepthShards local {rate['local_0']:.1f}/s "
        f"(0 workers), {rate['local_2']:.1f}/s (2 workers) = "
        f"{rate['local_2'] / rate['local_0']:.2f}x 0 workers, "
        f"{rate['local_2'] / rate['plain']:.2f}x plain; from s3 {rate['s3_0']:.1f}/s, "
        f"{rate['s3_2']:.1f}/s = {rate['s3_2'] / rate['local_2']:.0%} of local; first batch "
        f"{first['local_0']:.2f} s / {first['local_2']:.2f} s local, "
        f"{first['s3_0']:.2f} s / {first['s3_2']:.2f} s s3 (the S3 server's own CPU, on the "
        f"same cores: {server:.1f} s a pass = {server / result['local_2']['seconds']:.2f}x "
        f"a local 2-worker pass); "
        f"ceiling on these cores: 2 workers that send nothing {rate['keys_only_2']:.1f}/s "
        f"= {rate['keys_only_2'] / rate['local_0']:.2f}x 0 workers"
    )
