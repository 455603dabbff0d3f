"""``make bench``: throughput of ``output.dir`` in each object store, to the loopback
server the tests use (moto for ``s3://``, gcp-storage-emulator for ``gs://``, azurite for
``az://``, each reached over HTTP by its client as the real store is) next to the same run
to local disk; a store whose client or server is not installed is left out. Same command,
same samples; each measured three times, alternating, the best kept (the machine is
shared). The rate is the run's data phase (``dataset_info.json`` ``timings.data_s``:
shards filled, uploaded and recorded).
It includes two fixed costs of a URL output that a longer run spreads thinner: each
worker's first connection and client (its first upload takes ~1 s instead of ~0.4 s)
and the last shards' uploads, which no filling overlaps (~0.5 s). Measured on a quiet
machine: 72% of local at 200 samples, 88% at 600 (the default).

The server runs on the same two cores as the run, in Python: it receives, copies and
MD5-hashes every byte (~0.2 CPU-s per 43 MB shard, measured). It keeps objects in memory
(``MOTO_S3_DEFAULT_KEY_BUFFER_SIZE``): by default moto spills every object over 5 MB to a
temporary file through Python, ~0.15 CPU-s more per shard, a cost of the mock, not of a
store, nor of the tool, that would otherwise be charged to the run."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.bench import runs

# the environment key that says a store's loopback server is up; what each server is
STORES = {
    "s3": "AWS_ENDPOINT_URL",
    "gs": "STORAGE_EMULATOR_HOST",
    "az": "AZURE_STORAGE_CONNECTION_STRING",
}
NAMES = {"s3": "moto, S3", "gs": "gcp-storage-emulator, GCS", "az": "azurite, Azure Blob"}


AZURITE = Path(__file__).resolve().parents[2] / ".stores/node_modules/.bin/azurite-blob"
AZURE_KEY = (  # azurite's well-known development account key
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _servers(stack: contextlib.ExitStack) -> dict[str, str]:
    """Start each loopback server whose client is installed; their environment."""
    env: dict[str, str] = {}
    with contextlib.suppress(ImportError):
        import s3fs  # noqa: F401
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        os.environ["MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"] = str(1 << 30)  # read at each PutObject
        port = _free_port()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
        moto.start()
        stack.callback(moto.stop)
        env.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_DEFAULT_REGION="us-east-1",
                   AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # fmt: skip
    with contextlib.suppress(ImportError):
        import gcsfs  # noqa: F401
        from gcp_storage_emulator.server import create_server

        logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
        port = _free_port()
        gcs = create_server("127.0.0.1", port, in_memory=True)
        gcs.start()
        stack.callback(gcs.stop)
        env["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    if AZURITE.exists():
        port, data = _free_port(), stack.enter_context(tempfile.TemporaryDirectory())
        proc = subprocess.Popen(
            [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
             data, "--silent", "--skipApiVersionCheck", "--loose"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        stack.callback(proc.kill)
        env["AZURE_STORAGE_CONNECTION_STRING"] = (
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
        for _ in range(300):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.1)
    return env


def bench(root: Path, samples: int, workers: int) -> dict[str, Any]:
    """Local disk against each loopback store: samples/s and wall seconds of each."""
    from pipeline.config.urls import filesystem

    common = [
        f"source.num_samples={samples}",
        "report.enabled=false",
        f"runtime.workers={workers}",
        "runtime.progress=false",
    ]
    best: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        server_env = _servers(stack)
        os.environ.update(server_env)  # this process makes the buckets and reads back
        env = runs.bench_env(root, **server_env)
        stores = [p for p, key in STORES.items() if key in server_env]
        for protocol in stores:
            filesystem(f"{protocol}://bench").mkdir("bench")
        for attempt in range(3):
            for where in ("local", *stores):
                if where == "local":
                    target = str(root / "work" / f"store-local-{attempt}")
                else:
                    target = f"{where}://bench/ds-{attempt}"
                res = runs.measure(runs.command(*common, f"output.dir={target}"), env, root)
                info = f"{target}/dataset_info.json"
                text = Path(info).read_text() if where == "local" else filesystem(
                    info, {"skip_instance_cache": True}).cat_file(info)  # fmt: skip
                data_s = json.loads(text)["timings"]["data_s"]
                got = {"wall_s": round(res["seconds"], 2), "data_s": data_s,
                       "samples_per_s": round(samples / data_s, 1)}  # fmt: skip
                if where not in best or got["samples_per_s"] > best[where]["samples_per_s"]:
                    best[where] = got
    ratios = {
        f"{p}_of_local": round(best[p]["samples_per_s"] / best["local"]["samples_per_s"], 3)
        for p in best
        if p != "local"
    }
    return {"samples": samples, "workers": workers, **best, **ratios}


def line(result: dict[str, Any]) -> str:
    """One line per store: its rate against local disk's."""
    local = result["local"]
    out = []
    for protocol, name in NAMES.items():
        if protocol not in result:
            continue
        got = result[protocol]
        out.append(
            f"output to {protocol}:// ({name}) vs local disk, {result['samples']} synthetic "
            f"samples, {result['workers']} workers: local {local['samples_per_s']:.1f} "
            f"samples/s ({local['wall_s']:.1f} s), {protocol} {got['samples_per_s']:.1f} "
            f"samples/s ({got['wall_s']:.1f} s) = {result[f'{protocol}_of_local']:.0%} of local"
        )
    return "\n".join(out)
