"""A transform's arguments checked against its class, as one line naming the key.

Used twice: by ``augment`` when it builds the transforms, and by ``console`` when Hydra
refuses ``augment.transforms.NAME.ARG=...`` because the preset does not set ``ARG`` (the
spec Hydra had composed so far comes with the error). Only albumentations and
``pipeline.augment.transforms`` targets are imported here, never an arbitrary module.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import types
import typing
from collections.abc import Mapping
from typing import Any

# arguments every albumentations transform takes besides its own, and the spec keys that
# place a transform in the list (transform_plan.PLACEMENT)
COMMON = ("p", "strict")
PLACEMENT = ("before", "after")
TRUSTED = ("albumentations", "pipeline.augment.transforms")


def target_class(target: str) -> type | None:
    """The class ``_target_`` names, if it is in albumentations (``albumentations.X`` or a
    bare ``X``) or ``pipeline.augment.transforms``; None otherwise or when it does not exist."""
    module_name, _, attr = str(target).rpartition(".")
    module_name = module_name or "albumentations"
    if module_name not in TRUSTED:
        return None
    from pipeline.config import albumentations_import

    albumentations_import.prepare()
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return None
    return obj if isinstance(obj, type) else None


def arguments(cls: type) -> list[str] | None:
    """The keyword arguments ``cls`` accepts (None: any, it takes ``**kwargs``)."""
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    names = [p.name for p in params if p.name != "self" and p.kind is not p.VAR_POSITIONAL]
    return [*names, *(c for c in COMMON if c not in names)]


def unknown_argument(name: str, cls: type, arg: str) -> str | None:
    """The error line for ``augment.transforms.<name>.<arg>`` if ``cls`` has no such
    argument, else None."""
    known = arguments(cls)
    if known is None or arg in known or arg in PLACEMENT:
        return None
    known = [*known, *PLACEMENT]
    near = difflib.get_close_matches(arg, known, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else f"; its arguments: {', '.join(known)}"
    return f"augment.transforms.{name}.{arg}: {cls.__name__} has no argument {arg!r}{hint}"


def check_spec(name: str, cls: type, spec: Mapping[str, Any]) -> str | None:
    """The error line for the first argument of ``spec`` that ``cls`` lacks, else None."""
    for arg in spec:
        if arg != "_target_" and (line := unknown_argument(name, cls, str(arg))):
            return line
    return None


def validation_line(name: str, cls: type, exc: BaseException) -> str | None:
    """A pydantic ``ValidationError`` (albumentations 2 checks arguments with an
    ``InitSchema``) as one line: the key, the expected type and the value given; None if
    ``exc`` is not one."""
    from pydantic import ValidationError

    cause = exc if isinstance(exc, ValidationError) else exc.__cause__
    if not isinstance(cause, ValidationError) or not cause.errors():
        return None
    error = cause.errors()[0]
    schema = getattr(cls, "InitSchema", None)
    fields = getattr(schema, "model_fields", {})
    loc = [str(part) for part in error.get("loc", ())]
    field = loc[0] if loc and loc[0] in fields else None
    key = f"augment.transforms.{name}" + (f".{field}" if field else "")
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    got = f", got {error['input']!r}" if "input" in error and field else ""
    kind = str(error.get("type", ""))
    if field and (kind.endswith(("_type", "_parsing")) or len(cause.errors()) > 1):
        expected = _type_name(fields[field].annotation)
        return f"{key}: {cls.__name__} expects {expected}{got}"
    return f"{key}: {cls.__name__}: {message[:1].lower()}{message[1:]}{got}"


def _type_name(annotation: Any) -> str:
    """``int``, ``tuple[float, float] | float``, ``Literal['a', 'b']`` ... for messages."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("NoneType", "None")
