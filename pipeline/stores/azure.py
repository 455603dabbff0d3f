"""Azure Blob Storage through adlfs (``az://container/prefix``, ``abfs://``).

Conditional create and replace are ``Put Blob`` with ``If-None-Match: *`` / ``If-Match``
on the ETag (HTTP 409/412 otherwise), through the async client adlfs holds. A shard goes
up with its MD5 as ``Content-MD5`` (``validate_content``), which the store checks before
the blob exists, and as the blob's content MD5; its sha256 as metadata for resume.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, ClassVar

from pipeline.stores.base import SHA_META, ObjectStore


class AzureStore(ObjectStore):
    family: ClassVar[str] = "Azure Blob Storage"
    protocols: ClassVar[tuple[str, ...]] = ("az", "abfs", "abfss")
    package: ClassVar[str] = "adlfs"
    extra: ClassVar[str] = "azure"
    endpoint: ClassVar[str] = "BlobEndpoint in AZURE_STORAGE_CONNECTION_STRING"
    credentials: ClassVar[str] = (
        "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_NAME/_KEY, azure-identity"
    )
    conditional_create: ClassVar[bool] = True
    conditional_replace: ClassVar[bool] = True
    server_checksum: ClassVar[bool] = True
    resume_by_checksum: ClassVar[bool] = True

    @classmethod
    def options(cls, opts: dict[str, Any], endpoint: str | None) -> dict[str, Any]:
        for name in ("azure", "adlfs"):  # a line per HTTP request at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        return super().options(opts, endpoint)

    def _call(self, path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``method`` of the blob client of ``path``, run on adlfs's event loop."""
        from fsspec.asyn import sync

        container, blob = self.fs.split_path(path)[:2]

        async def go() -> Any:
            client = self.fs.service_client.get_blob_client(container, blob)
            async with client:
                return await getattr(client, method)(*args, **kwargs)

        try:
            return sync(self.fs.loop, go)
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            if status in (409, 412):
                raise FileExistsError(path) from None
            if status == 404:
                raise FileNotFoundError(path) from None
            raise
        finally:
            self.fs.invalidate_cache(path)

    def create(self, path: str, body: bytes) -> str | None:
        return self._call(path, "upload_blob", body, overwrite=False)["etag"]

    def replace(self, path: str, body: bytes, version: str | None) -> str | None:
        from azure.core import MatchConditions

        out = self._call(
            path, "upload_blob", body, overwrite=True, etag=version or '"none"',
            match_condition=MatchConditions.IfNotModified,
        )  # fmt: skip
        return out["etag"]

    def delete_if(self, path: str, version: str | None) -> None:
        from azure.core import MatchConditions

        cond = {"etag": version, "match_condition": MatchConditions.IfNotModified}
        self._call(path, "delete_blob", **(cond if version else {}))

    def upload(self, local: Path, path: str, sha256: str | None = None) -> None:
        if not sha256:
            self.fs.put_file(str(local), path)
            return
        from azure.storage.blob import ContentSettings

        md5 = hashlib.md5()
        with open(local, "rb") as body:
            for block in iter(lambda: body.read(1 << 20), b""):
                md5.update(block)
        with open(local, "rb") as body:
            self._call(
                path, "upload_blob", body, overwrite=True, validate_content=True,
                metadata={SHA_META: sha256, "is_directory": "false"},
                content_settings=ContentSettings(content_md5=md5.digest()),
            )  # fmt: skip

    def sha256_of(self, path: str) -> str | None:
        try:
            props = self._call(path, "get_blob_properties")
        except FileNotFoundError:
            return None
        return (props.metadata or {}).get(SHA_META)

    def version(self, info: dict[str, Any]) -> str | None:
        return info.get("etag") or super().version(info)
