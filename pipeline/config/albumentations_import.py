"""Import albumentations as this tool uses it: no update check over the network, and no
torch. albumentations 2.0.8 imports torch whenever it is installed, for its optional
``albumentations.pytorch`` (``with suppress(ImportError): from .pytorch import *``): that
is 1-4 s more for every process that augments (each worker of a run), in any environment
that also trains. No module here uses ``albumentations.pytorch``, so torch is hidden while
albumentations loads, exactly as if it were not installed; a process that imported torch
before (``pipeline.torch``) keeps it and albumentations sees it.

Call ``prepare()`` before the first ``import albumentations`` of a module.
"""

from __future__ import annotations

import importlib
import os
import sys


def prepare() -> None:
    """Load albumentations without its update check and without torch (once)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    if "albumentations" in sys.modules:
        return
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # type: ignore[assignment]  # import torch -> ImportError
    try:
        importlib.import_module("albumentations")
    finally:
        if hide and sys.modules.get("torch", False) is None:
            del sys.modules["torch"]
