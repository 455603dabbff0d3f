"""The loopback object-store servers of a test session, one of each per test process:
S3 (moto), Google Cloud Storage (gcp-storage-emulator) and Azure Blob (azurite, from
npm, installed on first use into ``.stores/`` at the repository root, gitignored).

Each is reached the way a user's environment reaches the real store: ``AWS_ENDPOINT_URL``,
``STORAGE_EMULATOR_HOST``, ``AZURE_STORAGE_CONNECTION_STRING`` are set when this module is
imported, before any worker process starts, so workers and CLI subprocesses inherit them.

The GCS emulator does not implement generation preconditions (``ifGenerationMatch``);
``_preconditions`` adds them to its object insert and delete handlers as GCS documents
them (HTTP 412 when the object's generation differs, 0 meaning "absent"), so the tests
exercise the same requests a real bucket answers.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from http import HTTPStatus
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AZURITE = "azurite@3.37.0"
AZURITE_HOME = ROOT / ".stores"
AZURE_ACCOUNT = "devstoreaccount1"  # azurite's well-known development account and key
AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


S3_ENDPOINT = f"http://127.0.0.1:{free_port()}"
GCS_ENDPOINT = f"http://127.0.0.1:{free_port()}"
AZURE_PORT = free_port()
os.environ.update(
    AWS_ENDPOINT_URL=S3_ENDPOINT,
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    STORAGE_EMULATOR_HOST=GCS_ENDPOINT,
    AZURE_STORAGE_CONNECTION_STRING=(
        f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};AccountKey={AZURE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{AZURE_PORT}/{AZURE_ACCOUNT};"
    ),
)
os.environ.pop("AWS_PROFILE", None)

_running: dict[str, object] = {}


def start_s3() -> str:
    if "s3" not in _running:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        port = int(S3_ENDPOINT.rsplit(":", 1)[1])
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        _running["s3"] = server
    return S3_ENDPOINT


def start_gcs() -> str:
    if "gs" not in _running:
        from gcp_storage_emulator.server import create_server

        logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
        _preconditions()
        port = int(GCS_ENDPOINT.rsplit(":", 1)[1])
        server = create_server("127.0.0.1", port, in_memory=True)
        server.start()
        _running["gs"] = server
    return GCS_ENDPOINT


def _preconditions() -> None:
    """``ifGenerationMatch`` on the emulator's insert and delete (see the module doc)."""
    from gcp_storage_emulator import server
    from gcp_storage_emulator.exceptions import NotFound
    from gcp_storage_emulator.handlers import objects

    def guarded(handler):
        def handle(request, response, storage, *args, **kwargs):
            want = request.query.get("ifGenerationMatch")
            if want:
                bucket = request.params["bucket_name"]
                name = request.params.get("object_id") or (
                    request.query["name"][0]
                    if "name" in request.query
                    else request.data["meta"].get("name")
                )
                try:
                    have = storage.get_file_obj(bucket, name)["generation"]
                except NotFound:
                    have = "0"
                if str(have) != want[0]:
                    response.status = HTTPStatus.PRECONDITION_FAILED
                    response.json({"error": {"code": 412, "message": "conditionNotMet"}})
                    return None
            return handler(request, response, storage, *args, **kwargs)

        handle.guarded = True
        return handle

    for _, methods in server.HANDLERS:
        for method, handler in list(methods.items()):
            if handler in (objects.insert, objects.delete):
                methods[method] = guarded(handler)


def start_azure() -> str:
    """azurite's blob service on ``AZURE_PORT`` (installed first if it is not yet)."""
    if "az" not in _running:
        exe = install_azurite()
        data = tempfile.mkdtemp(prefix="azurite-")
        proc = subprocess.Popen(
            [str(exe), "--blobHost", "127.0.0.1", "--blobPort", str(AZURE_PORT),
             "--location", data, "--silent", "--skipApiVersionCheck", "--loose"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _running["az"] = proc
        _running["az-data"] = data
        for _ in range(300):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", AZURE_PORT)):
                break
            time.sleep(0.1)
    return f"az://(port {AZURE_PORT})"


def install_azurite() -> Path:
    """``.stores/node_modules/.bin/azurite-blob``, installed from npm once (the Makefile's
    ``make test`` does the same before the tests; a lock keeps parallel workers to one)."""
    exe = AZURITE_HOME / "node_modules" / ".bin" / "azurite-blob"
    AZURITE_HOME.mkdir(exist_ok=True)
    with open(AZURITE_HOME / ".install-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not exe.exists():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("azurite needs node and npm (apt-get install nodejs npm)")
            subprocess.run(
                [npm, "install", "--prefix", str(AZURITE_HOME), "--no-audit", "--no-fund",
                 "--silent", AZURITE],
                check=True, timeout=600,
            )  # fmt: skip
    return exe


def stop_all() -> None:
    for name, thing in list(_running.items()):
        if name == "az":
            thing.kill()
            thing.wait()
        elif name == "az-data":
            shutil.rmtree(thing, ignore_errors=True)
        else:
            thing.stop()
        del _running[name]


def make_bucket_on(protocol: str, name: str) -> str:
    """``protocol://name`` on the loopback server of that store (created if absent)."""
    {"s3": start_s3, "gs": start_gcs, "az": start_azure}[protocol]()
    from pipeline.config.urls import filesystem

    fs = filesystem(f"{protocol}://{name}", {"skip_instance_cache": True})
    if not fs.exists(name):
        fs.mkdir(name)
    return f"{protocol}://{name}"
