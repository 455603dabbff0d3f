"""The report: ``build`` writes ``output.dir/report`` (index.html, stats.json, params.json
and the pictures registered in ``pictures``); ``cli`` rebuilds it for an existing dataset;
``sweep_page`` compares the jobs of a sweep."""

from __future__ import annotations

from typing import Any


def call(target: str, *args: Any) -> Any:
    """``target`` ("module:function") applied to ``args``: a drawing sent to another
    process by name, so the sender never imports the drawing module (matplotlib)."""
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(*args)
