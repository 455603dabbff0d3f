"""What a newcomer reads: ``--help``, config mistakes as one line naming the key (transform
arguments, wrong types, wrong choices) before any heavy import, and default dir names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, make_cfg, run_cli

from pipeline.config.choices import OutputFormat, TiffCompression
from pipeline.config.dirname import dirname
from pipeline.dataset.layouts import LAYOUTS
from pipeline.encode.codecs import TIFF_COMPRESSIONS
from pipeline.errors import PipelineError
from pipeline.run.runner import run

# ---- --help -----------------------------------------------------------------------------


def test_help_lists_the_keys_real_data_needs_and_every_output_format():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for key in (
        "source.path=",
        "source.depth_scale=",
        "source.split=",
        "source.image_glob=",
        "source.depth_path=",
        "source.unpaired=",
        "source.camera.fx=",
        "output.format=",
        "output.order=",
    ):
        assert key in proc.stdout, key
    line = next(ln for ln in proc.stdout.splitlines() if "output.format=" in ln)
    for fmt in sorted(p.stem for p in (ROOT / "conf" / "output").glob("*.yaml")):
        assert fmt in line, f"--help does not list output.format choice {fmt}"


# ---- transform arguments ------------------------------------------------------------------


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "http" not in lines[0] and "pydantic" not in lines[0], lines[0]
    return lines[0]


def cli_error(capsys, *args: str) -> str:
    """The CLI's error line for a config Hydra refuses while composing (no job starts),
    run in this process: the real entry point without an interpreter start per case."""
    from pipeline.app import cli

    argv = sys.argv
    sys.argv = ["depth-pipeline", *args]
    try:
        with pytest.raises(SystemExit) as exc:
            cli()
    finally:
        sys.argv = argv
    err = capsys.readouterr().err
    return one_error_line(subprocess.CompletedProcess(args, exc.value.code, "", err))


def run_error(tmp_path: Path, *overrides: str) -> str:
    """What the CLI prints (after ``error: ``) for a config refused when the run starts."""
    with pytest.raises(PipelineError) as exc:
        run(make_cfg(tmp_path / "ds", *overrides))
    assert not (tmp_path / "ds").exists()
    line = str(exc.value)
    assert "\n" not in line and "http" not in line and "pydantic" not in line, line
    return f"error: {line}"


@pytest.mark.parametrize(
    "override, expected",
    [
        (
            "augment.transforms.crop.hieght=416",
            "error: augment.transforms.crop.hieght: RandomCrop has no argument 'hieght' "
            "(did you mean 'height'?)",
        ),
        (  # a real argument the preset does not set: say how to add it
            "augment.transforms.crop.p=0.5",
            "error: augment.transforms.crop.p: this preset does not set RandomCrop's argument "
            "'p'; add it with +augment.transforms.crop.p=VALUE",
        ),
        (
            "augment.transforms.crp.height=416",
            "error: augment.transforms.crp: no transform named 'crp' in this preset (did you "
            "mean crop?)",
        ),
    ],
)
def test_transform_argument_typo_names_the_class_and_the_argument(
    tmp_path, capsys, override, expected
):
    out = tmp_path / "ds"
    line = cli_error(capsys, override, f"output.dir={out}")
    assert line.startswith(expected), line
    assert not out.exists()


def test_force_added_typo_gets_the_same_line(tmp_path):
    line = run_error(tmp_path, "+augment.transforms.crop.hieght=416")
    assert line == (
        "error: augment.transforms.crop.hieght: RandomCrop has no argument 'hieght' "
        "(did you mean 'height'?)"
    )


def test_typo_after_adding_a_transform_names_the_added_class(tmp_path, capsys):
    line = cli_error(
        capsys,
        "+augment.transforms.rot._target_=albumentations.Rotate",
        "augment.transforms.rot.limt=10",
        f"output.dir={tmp_path / 'ds'}",
    )
    assert "augment.transforms.rot.limt: Rotate has no argument 'limt' (did you mean 'limit'?)" in (
        line
    )


def test_argument_check_never_imports_a_module_outside_albumentations(tmp_path):
    """The error path reads the spec's ``_target_`` but imports only albumentations and
    pipeline.augment.transforms: a module elsewhere on the path stays unimported."""
    marker = tmp_path / "imported"
    (tmp_path / "evil_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Thing:\n    def __init__(self, a=1): pass\n"
    )
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", PYTHONPATH=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "+augment.transforms.x._target_=evil_mod.Thing"]
        + ["augment.transforms.x.b=2", f"output.dir={tmp_path / 'ds'}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "augment.transforms.x.b" in one_error_line(proc)
    assert not marker.exists()


# ---- wrong types and wrong choices -----------------------------------------------------------


@pytest.mark.parametrize(
    "override, expected",
    [
        (
            "augment.transforms.crop.height=abc",
            "error: augment.transforms.crop.height: RandomCrop expects int, got 'abc'",
        ),
        (
            "augment.transforms.gamma.gamma_limit=[80,100,120]",
            "error: augment.transforms.gamma.gamma_limit: RandomGamma expects "
            "tuple[float, float] | float, got [80, 100, 120]",
        ),
        (
            "augment.transforms.crop.height=0",
            "error: augment.transforms.crop.height: RandomCrop: input should be greater than "
            "or equal to 1, got 0",
        ),
    ],
)
def test_wrong_transform_argument_type_is_one_clean_line(tmp_path, override, expected):
    assert run_error(tmp_path, override) == expected


def test_wrong_schema_type_is_one_clean_line(tmp_path, capsys):
    line = cli_error(capsys, "output.shard_size=abc", f"output.dir={tmp_path / 'ds'}")
    assert line == "error: output.shard_size: expected an integer, got 'abc'"


@pytest.mark.parametrize(
    "override, choices",
    [
        ("output.format=hdf5", "webdataset, folder"),
        ("output.order=random", "spread, grouped"),
        ("output.depth.compression=jpeg", "none, zlib"),
        ("runtime.on_error=maybe", "raise, skip"),
    ],
)
def test_wrong_choice_names_the_choices(tmp_path, capsys, override, choices):
    line = cli_error(capsys, override, f"output.dir={tmp_path / 'ds'}")
    key, _, value = override.partition("=")
    assert line.startswith(f"error: {key}: {value!r} is not a choice; choose one of: {choices}")


# Runs the CLI in-process and reports whether the heavy run-time imports happened.
IMPORTS = """
import sys
from pipeline.app import cli
sys.argv = ["depth-pipeline", *sys.argv[1:]]
try:
    cli()
finally:
    print("heavy imports:", sorted(m for m in ("albumentations", "pipeline.run.runner", "cv2")
                                   if m in sys.modules))
"""


def test_wrong_choice_fails_while_composing_before_heavy_imports(tmp_path):
    """A wrong choice costs what a key typo costs: it is refused while Hydra composes,
    before albumentations, OpenCV and the runner are imported (~0.6 s instead of ~2-3 s)."""
    out = tmp_path / "ds"
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTS, "runtime.on_error=maybe", f"output.dir={out}"],
        cwd=ROOT,
        env=dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1"),
        capture_output=True,
        text=True,
    )
    assert "'maybe' is not a choice" in one_error_line(proc)
    assert "heavy imports: []" in proc.stdout
    assert not out.exists()


def test_choices_match_the_layouts_and_codecs_they_select():
    """Every output format and TIFF compression the code knows is a choice, and back."""
    assert {f.value for f in OutputFormat} == set(LAYOUTS)
    assert {c.value for c in TiffCompression} == set(TIFF_COMPRESSIONS)


# ---- default output dir names -------------------------------------------------------------

SAFE = re.compile(r"[A-Za-z0-9._-]+")
OVERRIDE_SETS = [
    "",
    "augment.copies=4",
    "augment.copies=4,source.num_samples=24",
    "augment.copies=4_source.num_samples=24",
    "augment.copies=4,source.num_samples=240",
    'source.depth_path="depth_{key}.png",source.depth_scale=0.001,source.path=/tmp/x y',
    "source.depth_path='depth_{key}.png',source.depth_scale=0.001,source.path=/tmp/x y",
    "source.depth_path=depth_{key}.png,source.depth_scale=0.001,source.path=/tmp/x_y",
    "augment.transforms.gamma.gamma_limit=[80,120],augment.transforms.hsv.p=0",
    "augment.transforms.gamma.gamma_limit=[80,120],augment.transforms.hsv.p=0.5",
    "augment.transforms.gamma.gamma_limit=[50,150],augment.transforms.hsv.p=0",
    "augment.transforms.gamma.gamma_limit=80-120,augment.transforms.hsv.p=0",
    "~augment.transforms.hsv",
    "augment.transforms.hsv=null",
    "+augment.transforms.rot._target_=albumentations.Rotate,+augment.transforms.rot.limit=10",
    "++augment.transforms.rot._target_=albumentations.Rotate,augment.transforms.rot.limit=10",
    "augment.transforms.rot.limit=-10",
    "augment.transforms.rot.limit=10",
    "a-1=b",
    "a=1-b",
    "source.path=/data/" + "x" * 150,
    "source.path=/data/" + "x" * 149 + "y",
    "shard.size=~home",
]


def test_default_dir_names_are_shell_safe_stable_and_distinct():
    names = [dirname(o) for o in OVERRIDE_SETS]
    for overrides, name in zip(OVERRIDE_SETS, names):
        assert SAFE.fullmatch(name), (overrides, name)
        assert len(name) <= 120 and not name.startswith(("-", ".")), name
        assert dirname(overrides) == name  # the same overrides -> the same dir (resume)
    assert len(set(names)) == len(names), "two override sets share a dir"
    assert names[0] == "default"
    assert names[2] == "augment.copies-4_source.num_samples-24"  # plain ones stay readable


def test_shortened_sweep_names_keep_the_swept_value():
    """A sweep over a deep key beside long paths: the names must be shortened, and what
    survives is each job's value (the keys' common prefix and the paths' heads go)."""
    common = (
        "source.canonical.focal=1000,source.num_samples=20000,"
        "source.parts.kitti.augment.transforms.brightness.brightness_limit={},"
        "source.parts.kitti.source.path=/data/sets/kitti/raw_data_2011,"
        "source.parts.nyu.source.path=/data/sets/nyu_depth_v2/parquet_train"
    )
    names = [dirname(common.format(v)) for v in ("0.0", "0.2", "0.5")]
    for name, value in zip(names, ("0.0", "0.2", "0.5")):
        assert len(name) <= 120 and SAFE.fullmatch(name), name
        assert f"brightness_limit-{value}_" in name, name
        assert "kitti.source.path-" in name and "nyu.source.path-" in name, name
    assert len({n.split("--")[0] for n in names}) == 3  # not only the hash differs


def test_cli_default_output_dir_for_a_folder_source_is_shell_safe(tmp_path):
    args = [
        "source=folder",
        f"source.path={tmp_path}/my data",
        'source.depth_path="depth/{key}.png"',
        "source.depth_scale=1000",
        "~augment.transforms.hsv",
        "augment.transforms.gamma.gamma_limit=[80,120]",
    ]
    proc = run_cli("--cfg", "job", "--resolve", "-p", "output.dir", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.strip()
    assert out.startswith("outputs/datasets/folder/")
    assert re.fullmatch(r"[A-Za-z0-9._/-]+", out), out
    # readable: a long name loses the keys' common prefix (source.), not the values
    assert "depth_scale-1000" in out and "gamma_limit-80-120" in out
