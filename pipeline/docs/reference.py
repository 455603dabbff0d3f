"""The configuration reference page, generated from the schemas in ``pipeline/config/``.

Every key of every group (``source`` once per source kind, a mixture's parts too) with
its type, default, choices and one line of help: the field's own comment (on its line,
or the comment block right above it), else the sentence of its class docstring that
names it, else the first sentence of that docstring. ``python -m pipeline.docs.reference``
rewrites ``pipeline/docs/pages/reference.md``; ``--check`` exits 1 when the page is stale
(``tests/test_docs.py`` runs the same check)."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from pipeline.config.schema import Config
from pipeline.config.sources import SOURCE_SCHEMAS, PartConfig

PAGE = Path(__file__).parent / "pages" / "reference.md"
CONF = Path(__file__).parents[2] / "conf"
FIELD = re.compile(r"^\s+(\w+):\s*[^=]+(?:=.*?)?(?:#\s*(?:type: ignore\[\w+\]\s*)?(.*))?$")


@dataclasses.dataclass(frozen=True)
class Key:
    """One row of the reference: a dotted key and what the schema says about it."""

    name: str
    type: str
    default: str
    choices: str
    help: str


def comments(cls: type) -> dict[str, str]:
    """Field name -> its comment in the class source (same line, else the block above)."""
    found: dict[str, str] = {}
    block: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            block.append(stripped.lstrip("# "))
            continue
        m = FIELD.match(line)
        if m and not stripped.startswith(("def ", "@", "return")):
            text = (m.group(2) or "").strip() or " ".join(block)
            if text and m.group(1) not in found:
                found[m.group(1)] = text
        block = []
    return found


def sentences(doc: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.;])\s+(?=[A-Za-z`(])", " ".join(doc.split())) if s]


def help_for(cls: type, name: str) -> str:
    """The one line of help for field ``name`` of ``cls``: from the classes that declare
    it, most specific first (a comment, then a docstring sentence naming it), else the
    first sentence of the docstring of the class that introduced it."""
    declaring = [c for c in cls.__mro__ if name in getattr(c, "__annotations__", {})]
    for c in declaring:
        if name in comments(c):
            return comments(c)[name]
    for c in declaring:
        doc = sentences(inspect.getdoc(c) or "")
        named = [s for s in doc if f"``{name}``" in s or f"``{name} " in s]
        if named:
            return named[0]
    return (sentences(inspect.getdoc(declaring[-1]) or "") or [""])[0]


def type_name(hint: Any) -> str:
    """A type as a reader writes it: ``int``, ``float | None``, ``dict[str, Any]``."""
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "str"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(hint))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(hint))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if hint is type(None):
        return "None"
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


def enum_of(hint: Any) -> type[enum.Enum] | None:
    for h in (hint, *typing.get_args(hint)):
        if isinstance(h, type) and issubclass(h, enum.Enum):
            return h
    return None


def default_of(f: dataclasses.Field) -> str:
    if f.default is MISSING or (
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ):
        return "(required)"
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if isinstance(value, enum.Enum):
        value = value.value
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def keys(cls: type, prefix: str) -> list[Key]:
    """Every key under ``prefix`` of dataclass ``cls``, nested dataclasses flattened."""
    hints = typing.get_type_hints(cls)
    rows: list[Key] = []
    for f in dataclasses.fields(cls):
        hint, name = hints[f.name], f"{prefix}.{f.name}"
        if dataclasses.is_dataclass(hint):
            rows += keys(hint, name)
            continue
        choices = enum_of(hint)
        rows.append(
            Key(
                name=name,
                type=type_name(hint),
                default=default_of(f),
                choices=", ".join(c.value for c in choices) if choices else "",
                help=help_for(cls, f.name),
            )
        )
    return rows


def groups() -> list[tuple[str, str, list[Key]]]:
    """(title, one paragraph, keys) per group: each source kind, then the other groups."""
    out = []
    for kind, schema in SOURCE_SCHEMAS.items():
        intro = " ".join((inspect.getdoc(schema) or "").split())
        out.append((f"source (kind {kind})", intro, keys(schema, "source")))
        if kind == "mix":
            intro = " ".join((inspect.getdoc(PartConfig) or "").split())
            parts = keys(PartConfig, "source.parts.NAME")
            out.append(("source.parts.NAME (a mixture's part)", intro, parts))
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if f.name == "source":
            continue
        schema = hints[f.name]
        out.append((f.name, " ".join((inspect.getdoc(schema) or "").split()), keys(schema, f.name)))
    return out


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def presets() -> list[str]:
    """The options of each config group under ``conf/`` (``group=option``)."""
    lines = ["| group | options |", "|---|---|"]
    for group in sorted(p for p in CONF.rglob("*") if p.is_dir() and any(p.glob("*.yaml"))):
        options = ", ".join(f"`{p.stem}`" for p in sorted(group.glob("*.yaml")))
        lines.append(f"| `{group.relative_to(CONF).as_posix()}` | {options} |")
    return lines


def render() -> str:
    """The whole page."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the schemas in `pipeline/config/` by `python -m pipeline.docs.reference`",
        "(`make docs` runs it; a test fails when this page is stale). Set any key on the",
        "command line as `key=value`; pick a preset of a group as `group=option`.",
        "",
        "## Groups and their options",
        "",
        *presets(),
    ]
    for title, intro, rows in groups():
        lines += ["", f"## {title}", "", cell(intro), ""]
        lines += ["| key | type | default | choices | help |", "|---|---|---|---|---|"]
        for k in rows:
            name = k.name
            fields = (f"`{name}`", f"`{k.type}`", f"`{k.default}`", k.choices, k.help)
            lines.append("| " + " | ".join(cell(x) for x in fields) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Write the page, or with ``--check`` say whether it is current (exit 1 if not)."""
    text = render()
    if "--check" in argv:
        if PAGE.read_text() != text:
            print(f"error: {PAGE} is stale; run python -m pipeline.docs.reference", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
