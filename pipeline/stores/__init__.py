"""Object stores behind one interface: one ``ObjectStore`` class per store family,
stating what it offers (``base``) and doing it (conditional create and replace, a
checksummed upload, the sha256 kept for resume, the version a replace checks).

Everything that writes or reads a URL (output, sources, the lock, merge, verify, the
readers) asks ``store_for(protocol)``; nothing else branches on a protocol. To add a
family: a module with a subclass naming its ``protocols``, listed in ``FAMILIES``.
"""

from __future__ import annotations

from pipeline.stores.azure import AzureStore
from pipeline.stores.base import SHA_META, ObjectStore
from pipeline.stores.gcs import GCSStore
from pipeline.stores.s3 import S3Store

FAMILIES: tuple[type[ObjectStore], ...] = (S3Store, GCSStore, AzureStore)

__all__ = ["FAMILIES", "SHA_META", "AzureStore", "GCSStore", "ObjectStore", "S3Store", "store_for"]


def store_for(protocol: str) -> type[ObjectStore]:
    """The family serving ``protocol`` (``s3``, ``gs``, ``az``...), else the generic one."""
    protocol = protocol.lower()
    for family in FAMILIES:
        if protocol in family.protocols:
            return family
    return ObjectStore
