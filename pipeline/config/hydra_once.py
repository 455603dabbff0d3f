"""Hydra composes the config twice per command: once only to read ``hydra.mode`` (run or
multirun, ``Hydra.get_mode``), then for the run (~0.3 s each here, most of the start-up
before the first sample). ``depth-pipeline``'s own config never sets ``hydra.mode``, so
the mode is the command line's (``-m`` or not), which is what Hydra falls back to when
``get_mode`` answers None. ``compose_once`` makes it answer None when that is certain:
our config and no ``hydra.mode`` override and no other config (``--config-*``).

``Hydra.get_mode`` is internal to Hydra: ``tests/test_architecture.py`` fences it.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

OTHER_CONFIG = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")
_patched: list[bool] = []


def mode_is_the_command_lines(config_name: str | None, overrides: list[str]) -> bool:
    """True when ``hydra.mode`` can only come from ``-m``: our config, not overridden."""
    if config_name != "config":
        return False
    if any(arg.startswith(OTHER_CONFIG) for arg in sys.argv[1:]):
        return False
    return not any("hydra.mode" in o for o in overrides)


def compose_once() -> None:
    """Answer Hydra's mode question without composing, when the answer is certain."""
    if _patched:
        return
    from hydra._internal.hydra import Hydra

    original = Hydra.get_mode

    @functools.wraps(original)
    def get_mode(self: Any, config_name: str | None, overrides: list[str]) -> Any:
        if mode_is_the_command_lines(config_name, overrides):
            return None
        return original(self, config_name, overrides)

    Hydra.get_mode = get_mode  # type: ignore[method-assign]
    _patched.append(True)
