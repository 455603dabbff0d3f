"""Is the Hugging Face Hub reachable? Asked once, quickly, before ``datasets`` is: with no
network, huggingface_hub retries each request five times with back-off (about 25 s of
warnings) before failing. Unreachable, the hub source opens in offline mode (a cached copy
still loads) and fails in one line without one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

PROBE_S = 3.0  # a TCP connect (with its name lookup) that takes longer is no network


def endpoint() -> str:
    """The hub's address as this process would use it."""
    env = os.environ.get("HF_ENDPOINT")
    if env:
        return env.rstrip("/")
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def reachable(url: str, timeout: float = PROBE_S) -> bool:
    """True if a TCP connection to ``url``'s host and port opens within ``timeout``
    (the name lookup included: run in a thread, as ``getaddrinfo`` has no timeout)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def offline_already() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE") or ""
    return value.upper() in ("1", "ON", "YES", "TRUE")


@contextlib.contextmanager
def offline_unless_reachable() -> Iterator[bool]:
    """Offline mode for ``datasets`` and huggingface_hub meanwhile when the hub cannot be
    reached; yields whether it was."""
    if not offline_already() and reachable(endpoint()):
        yield True
        return  # (HF_HUB_OFFLINE set after the import is honoured too)
    import datasets.config
    from huggingface_hub import constants

    saved = (constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield False
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved
