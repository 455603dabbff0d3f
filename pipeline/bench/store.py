"""``make bench``: throughput of ``output.dir=s3://...`` to an S3-protocol server on the
loopback (moto, the server the tests use; s3fs talks to it over HTTP as to AWS) next to
the same run to local disk. Same command, same samples; each measured three times,
alternating, the best kept (the machine is shared). The rate is the run's data phase
(``dataset_info.json`` ``timings.data_s``: shards filled, uploaded and recorded).
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

import json
import os
import socket
from pathlib import Path
from typing import Any

from pipeline.bench import runs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench(root: Path, samples: int, workers: int) -> dict[str, Any]:
    """Local disk against the loopback S3 server: samples/s and wall seconds of each."""
    import logging

    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ["MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"] = str(1 << 30)  # read at each PutObject
    endpoint = f"http://127.0.0.1:{_free_port()}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(endpoint.rsplit(":", 1)[1]))
    server.start()
    creds = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    env = runs.bench_env(root, AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1", **creds)
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, key="bench", secret="bench")
    fs.mkdir("bench")
    common = [
        f"source.num_samples={samples}",
        "report.enabled=false",
        f"runtime.workers={workers}",
        "runtime.progress=false",
    ]
    best: dict[str, dict[str, Any]] = {}
    try:
        for attempt in range(3):
            for where in ("local", "s3"):
                if where == "local":
                    out = root / "work" / f"store-local-{attempt}"
                    target, read = str(out), (lambda o=out: (o / "dataset_info.json").read_text())
                else:
                    url = f"s3://bench/ds-{attempt}"
                    target, read = url, (lambda u=url: fs.cat_file(f"{u}/dataset_info.json"))
                res = runs.measure(runs.command(*common, f"output.dir={target}"), env, root)
                data_s = json.loads(read())["timings"]["data_s"]
                got = {"wall_s": round(res["seconds"], 2), "data_s": data_s,
                       "samples_per_s": round(samples / data_s, 1)}  # fmt: skip
                if where not in best or got["samples_per_s"] > best[where]["samples_per_s"]:
                    best[where] = got
    finally:
        server.stop()
    ratio = best["s3"]["samples_per_s"] / best["local"]["samples_per_s"]
    return {"samples": samples, "workers": workers, **best, "s3_of_local": round(ratio, 3)}


def line(result: dict[str, Any]) -> str:
    local, s3 = result["local"], result["s3"]
    return (
        f"output to s3:// (loopback S3 server) vs local disk, {result['samples']} synthetic "
        f"samples, {result['workers']} workers: local {local['samples_per_s']:.1f} samples/s "
        f"({local['wall_s']:.1f} s), s3 {s3['samples_per_s']:.1f} samples/s "
        f"({s3['wall_s']:.1f} s) = {result['s3_of_local']:.0%} of local"
    )
