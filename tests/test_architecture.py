"""The shape of the code: no import cycles, small modules, one schema per source kind,
one layout per output format, typed records that round-trip, and a fence around each
private API we rely on."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, make_cfg, run_cli

from pipeline.config.datasets import SOURCE_KINDS
from pipeline.config.schema import to_config
from pipeline.dataset.layouts import LAYOUTS
from pipeline.dataset.records import DatasetInfo, ShardManifest
from pipeline.run.runner import run

PACKAGE = ROOT / "pipeline"
MAX_LINES = 320


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the pipeline modules it imports (at module level or inside functions)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("pipeline")}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert "pipeline.cluster.merge" not in _reachable(graph, "pipeline.publish.publish")


def _package(module: str) -> str:
    """``pipeline.<pkg>`` for a module inside a sub-package; a top-level module is its own."""
    return ".".join(module.split(".")[:2])


def package_graph() -> dict[str, set[str]]:
    """``pipeline.<pkg>`` -> the other ``pipeline.<pkg>`` its modules import (at module level
    or inside functions): a cycle between packages hides from the module graph when the
    modules involved differ (augment.resample -> transforms.sparse, transforms.base ->
    augment.geometry)."""
    graph: dict[str, set[str]] = {}
    for module, deps in import_graph().items():
        edges = graph.setdefault(_package(module), set())
        edges |= {_package(d) for d in deps} - {_package(module)}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its nodes, the first repeated last), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep, [*stack, dep])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_no_package_cycles():
    """No two packages import each other, directly or around a loop, whichever modules
    the imports come from."""
    graph = package_graph()
    assert "pipeline.augment" in graph and "pipeline.encode" in graph["pipeline.sources"]
    cycle = _cycle(graph)
    assert cycle is None, "package import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_a_package_cycle():
    """The check above can fail: a loop through modules of different packages is found."""
    graph = {"pipeline.a": {"pipeline.b"}, "pipeline.b": {"pipeline.c"}, "pipeline.c": set()}
    assert _cycle(graph) is None
    graph["pipeline.c"].add("pipeline.a")
    assert _cycle(graph) == ["pipeline.a", "pipeline.b", "pipeline.c", "pipeline.a"]


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in graph[todo.pop()] - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def test_modules_are_small_or_say_why():
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert lines <= MAX_LINES or "300 lines" in doc or "longer than" in doc.lower(), (
            f"{path.relative_to(ROOT)} has {lines} lines and no reason in its docstring"
        )


def test_every_source_kind_and_output_format_has_its_yaml():
    presets = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "conf/source").glob("*")}
    kinds = {p["kind"] for p in presets.values()}
    assert kinds == set(SOURCE_KINDS)
    for name, preset in presets.items():
        assert f"/schema/source/{preset['kind']}@_here_" in preset["defaults"], name
    formats = {yaml.safe_load(p.read_text())["format"] for p in (ROOT / "conf/output").glob("*")}
    assert formats == set(LAYOUTS)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["source=nyu_mat", "source.path=X", "source.num_samples=2"], "nyu_mat source"),
        (["source.image_glob=*.png"], "synthetic source"),
        (["source=folder", "source.path=X", "source.seed=3"], "folder source"),
        (["source.kind=hub"], "source=hub"),
        (["report.plots=[collage,foo]"], "report.plots: unknown picture"),
    ],
)
def test_keys_the_chosen_source_lacks_are_refused_before_any_work(tmp_path, args, words):
    out = tmp_path / "ds"
    proc = run_cli(*args, f"output.dir={out}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_resolved_config_lists_only_the_chosen_sources_keys():
    proc = run_cli("--cfg", "job")
    source = yaml.safe_load(proc.stdout)["source"]
    assert set(source) == {"kind", "split", "limit", "depth", "num_samples", "seed"} | {
        "height",
        "width",
    }
    proc = run_cli("source=kitti", "--cfg", "job")
    assert "image_glob" in yaml.safe_load(proc.stdout)["source"]


def test_records_round_trip_through_json(tmp_path):
    out = tmp_path / "ds"
    run(make_cfg(out, "source.num_samples=5", "output.shard_size=2", "runtime.workers=1"))
    info_json = json.loads((out / "dataset_info.json").read_text())
    info = DatasetInfo.from_json(info_json)
    assert info.to_json() == info_json
    assert info.counts.written == 5 and len(info.manifests(out)) == 3
    for shard in info.shards:
        raw = json.loads((out / "manifests" / f"{shard['name']}.json").read_text())
        assert ShardManifest.from_json(raw).to_json() == raw
    # the dataset's own config converts back to the typed Config it was made with
    assert to_config(info.config).source.num_samples == 5


def test_sample_contract_carries_the_camera():
    """Sources fill ``Sample.camera``: the synthetic renderer's own, or configured constants
    (cx, cy default to the image centre, fy to fx)."""
    from pipeline.config.sources import FolderConfig, SyntheticConfig
    from pipeline.sources import finalize, open_source

    cfg = SyntheticConfig(height=48, width=64)
    sample, _ = finalize(next(open_source(cfg).iter(0, 1)), cfg)
    assert sample.camera is not None
    assert (sample.camera.cx, sample.camera.cy) == (31.5, 23.5)
    assert sample.camera.fx == pytest.approx(518.8 * 64 / 640)
    folder = FolderConfig(path="x")
    assert folder.fixed_camera(48, 64) is None
    folder.camera.fx = 100.0
    assert folder.fixed_camera(48, 64).to_json() == {
        "fx": 100.0,
        "fy": 100.0,
        "cx": 31.5,
        "cy": 23.5,
    }


def test_hydra_get_mode_fence():
    """``pipeline.config.hydra_once`` answers Hydra's internal ``Hydra.get_mode(config_name,
    overrides)`` (None = "the command line's mode"): this fails if a Hydra release renames
    it or changes its arguments; ``-m`` and plain runs then need a look (tests/test_sweep.py
    checks the modes end to end)."""
    import inspect

    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import _run_app

    from pipeline.config.hydra_once import compose_once, mode_is_the_command_lines

    compose_once()
    original = inspect.unwrap(Hydra.get_mode)  # Hydra's own, under our answer
    assert original is not Hydra.get_mode
    assert list(inspect.signature(original, follow_wrapped=False).parameters) == [
        "self",
        "config_name",
        "overrides",
    ]
    assert "mode" in inspect.signature(_run_app).parameters
    assert mode_is_the_command_lines("config", ["source.num_samples=4"])
    assert not mode_is_the_command_lines("config", ["hydra.mode=MULTIRUN"])
    assert not mode_is_the_command_lines("other", [])


# The stages in flow order; a module may import its own stage and those before it.
LAYERS = [
    ("pipeline.errors", "pipeline.sample"),
    ("pipeline.stores",),
    ("pipeline.config",),
    ("pipeline.encode",),
    ("pipeline.sources",),
    ("pipeline.augment",),
    ("pipeline.dataset", "pipeline.read"),
    ("pipeline.report",),
    ("pipeline.checks",),
    ("pipeline.pool",),
    ("pipeline.publish",),
    ("pipeline.cluster",),
    ("pipeline.run",),
    ("pipeline.console",),
    (
        "pipeline.app",
        "pipeline.__main__",
        "pipeline.torch",
        "pipeline.bench",
        "pipeline.docs",
        "pipeline",
    ),
]


def _layer(module: str) -> int:
    """The stage of ``module``; ``pipeline`` itself names only the package's ``__init__``
    (a prefix would put every unlisted package in the last stage, out of the check)."""
    for depth, prefixes in enumerate(LAYERS):
        if any(module == p or (p != "pipeline" and module.startswith(p + ".")) for p in prefixes):
            return depth
    raise AssertionError(f"{module} is in no stage of LAYERS")


def test_layers_point_one_way():
    """config -> encode -> sources -> augment -> dataset -> report -> checks -> pool ->
    publish -> cluster -> run -> console -> app: an import from a later stage into an
    earlier one fails, naming both modules."""
    back = [
        f"{module} imports {dep}"
        for module, deps in import_graph().items()
        for dep in deps
        if _layer(dep) > _layer(module)
    ]
    assert not back, "imports pointing back up the flow:\n" + "\n".join(sorted(back))


def test_top_level_holds_entry_points_and_the_contract_only():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top


def test_transform_traits_live_on_the_classes_not_in_tables_of_names():
    """Traits come from ``augment.traits``: our transforms declare them on the class, and
    no other module keeps a table of albumentations class names."""
    import albumentations as A

    from pipeline.augment import transforms
    from pipeline.augment.traits import LIBRARY, Traits, traits_of

    for name, traits in LIBRARY.items():
        cls = getattr(A, name)
        assert issubclass(cls, A.DualTransform) == traits.geometric, name
    for name in transforms.__all__:
        cls = getattr(transforms, name)
        assert isinstance(cls.__dict__.get("traits") or cls.traits, Traits), name
        assert traits_of(f"pipeline.augment.transforms.{name}") is cls.traits
    assert traits_of("pipeline.augment.transforms.CanonicalCamera").scales_depth
    assert traits_of("albumentations.Rotate").warps and traits_of("Blur") == Traits()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "traits.py":
            continue
        names = {
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        # albumentations' names, less those our own transforms share (RandomScale)
        theirs = set(LIBRARY) - set(transforms.__all__)
        assert not names & theirs, f"{path}: {sorted(names & theirs)}"


MAX_FUNCTION_LINES = 60


def test_functions_are_short_or_say_why():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                doc = (ast.get_docstring(node) or "").lower()
                if lines > MAX_FUNCTION_LINES and "longer than" not in doc:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert not long, "functions over 60 lines without a reason in their docstring:\n" + "\n".join(
        long
    )


# The files one touches to add each kind of thing, as the contributor docs list them.
RECIPES = ("source", "output format", "depth encoding", "report picture", "depth transform")


def _where_a_change_goes() -> str:
    """The "Where a change goes" list of the contributor docs (README or a docs page)."""
    pages = [ROOT / "README.md", *sorted((PACKAGE / "docs").rglob("*.md"))]
    for page in pages:
        text = page.read_text()
        if "Where a change goes:" in text:
            return text.split("Where a change goes:", 1)[1].split("\n\n`", 1)[0]
    raise AssertionError("no page says 'Where a change goes'")


def test_where_a_change_goes_names_files_and_registries_that_exist():
    """Each recipe (a source, an output format, a depth encoding, a report picture, a
    depth transform) names files that exist and registries defined where it says."""
    import importlib
    import re

    section = _where_a_change_goes()
    bullets = dict(re.findall(r"\*\*a new ([a-z ]+)\*\*:(.*?)(?=\n- \*\*|\Z)", section, re.S))
    assert set(RECIPES) <= set(bullets), sorted(bullets)
    for recipe in RECIPES:
        text = " ".join(bullets[recipe].split())
        paths = re.findall(r"`((?:pipeline|conf)/[^`]+)`", text)
        assert paths, recipe
        for path in paths:
            pattern = re.sub(r"<[a-z]+>", "*", path)
            assert list(ROOT.glob(pattern)), f"{recipe}: {path} matches nothing"
        for module, names in {
            "pipeline.dataset.layouts": ["LAYOUTS"],
            "pipeline.encode.depth": ["ENCODINGS", "DepthEncoding"],
            "pipeline.config.choices": ["OutputFormat", "DepthFormat"],
            "pipeline.report.pictures": ["Picture"],
            "pipeline.augment.traits": ["Traits"],
        }.items():
            for name in names:
                if f"`{name}`" in text:
                    assert hasattr(importlib.import_module(module), name), (recipe, name)
