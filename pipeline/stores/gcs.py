"""Google Cloud Storage through gcsfs.

Conditional create and replace are generation preconditions (``ifGenerationMatch=0`` to
create, the generation read to replace or delete; HTTP 412 otherwise). A shard goes up in
one multipart request whose object resource carries its MD5 and CRC32C, which the store
checks before the object exists, and its sha256 as metadata for resume.

gcsfs >= 2026.8 wraps every filesystem in an "extended" one that first asks each bucket
its type over gRPC (60 s per bucket against an emulator, then a fallback):
``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` (read when gcsfs is imported) turns that off
unless the user set it: it is set when this module is imported, before gcsfs is.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from pipeline.stores.base import SHA_META, ObjectStore

ONE_REQUEST = 64 << 20  # larger shards go up resumably, checked by gcsfs (MD5) after
PROBE_SWITCH = "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"
os.environ.setdefault(PROBE_SWITCH, "false")  # before any import of gcsfs (the forkserver's)


class GCSStore(ObjectStore):
    family: ClassVar[str] = "Google Cloud Storage"
    protocols: ClassVar[tuple[str, ...]] = ("gs", "gcs")
    package: ClassVar[str] = "gcsfs"
    extra: ClassVar[str] = "gcs"
    endpoint: ClassVar[str] = "output.endpoint_url or STORAGE_EMULATOR_HOST"
    credentials: ClassVar[str] = "GOOGLE_APPLICATION_CREDENTIALS, gcloud login, metadata server"
    conditional_create: ClassVar[bool] = True
    conditional_replace: ClassVar[bool] = True
    server_checksum: ClassVar[bool] = True
    resume_by_checksum: ClassVar[bool] = True

    @classmethod
    def options(cls, opts: dict[str, Any], endpoint: str | None) -> dict[str, Any]:
        if endpoint and "endpoint_url" not in opts:
            opts["endpoint_url"] = endpoint
        if endpoint or os.environ.get("STORAGE_EMULATOR_HOST"):
            opts.setdefault("token", "anon")  # an emulator: no Google credentials to look up
        return super().options(opts, endpoint)

    def _upload(self, path: str, body: bytes, meta: dict[str, Any], **cond: Any) -> str:
        """One multipart insert of ``body`` with the object resource ``meta``."""
        bucket, key, _ = self.fs.split_path(path)
        resource = json.dumps({"name": key, **meta})
        data = (
            b"--==0==\nContent-Type: application/json; charset=UTF-8\n\n"
            + resource.encode()
            + b"\n--==0==\nContent-Type: application/octet-stream\n\n"
            + body
            + b"\n--==0==--"
        )
        out = self.fs.call(
            "POST", f"{self.fs._location}/upload/storage/v1/b/{quote(bucket)}/o",
            uploadType="multipart", headers={"Content-Type": 'multipart/related; boundary="==0=="'},
            data=data, json_out=True, **cond,
        )  # fmt: skip
        self.fs.invalidate_cache(path)
        return str(out["generation"])

    def create(self, path: str, body: bytes) -> str | None:
        return self._upload(path, body, {}, ifGenerationMatch="0")

    def replace(self, path: str, body: bytes, version: str | None) -> str | None:
        return self._upload(path, body, {}, ifGenerationMatch=version or "0")

    def delete_if(self, path: str, version: str | None) -> None:
        bucket, key, _ = self.fs.split_path(path)
        cond = {"ifGenerationMatch": version} if version else {}
        self.fs.call("DELETE", "b/{}/o/{}", bucket, key, **cond)
        self.fs.invalidate_cache(path)

    def upload(self, local: Path, path: str, sha256: str | None = None) -> None:
        if not sha256 or local.stat().st_size >= ONE_REQUEST:
            meta = {"metadata": {SHA_META: sha256}} if sha256 else None
            self.fs.put_file(str(local), path, metadata=meta and meta["metadata"],
                             consistency="md5")  # fmt: skip
            return
        body = local.read_bytes()
        meta = {"md5Hash": _b64(hashlib.md5(body).digest()), "metadata": {SHA_META: sha256}}
        with contextlib.suppress(ImportError):  # google-crc32c comes with gcsfs
            import google_crc32c

            meta["crc32c"] = _b64(google_crc32c.Checksum(body).digest())
        self._upload(path, body, meta)

    def sha256_of(self, path: str) -> str | None:
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        return (info.get("metadata") or {}).get(SHA_META)

    def version(self, info: dict[str, Any]) -> str | None:
        generation = info.get("generation")
        return str(generation) if generation else super().version(info)


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()
