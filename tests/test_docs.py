"""The documentation: the configuration reference is the schema's (every key the CLI's
``--cfg job`` prints, regenerated or the test fails), the site builds strictly, the
report links each picture to its entry, and the pages agree with each other on
depth_scale, readers of URLs and the trainer lists (the lists themselves are read back
with the scale the Outputs page states by ``tests/test_readme.py``)."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, make_cfg, run_cli
from omegaconf import OmegaConf
from readme_session import README, parse

from pipeline.config.sources import SOURCE_SCHEMAS, SyntheticConfig
from pipeline.docs import reference

PAGES = ROOT / "pipeline" / "docs" / "pages"
CONF = ROOT / "conf"


def documented() -> set[str]:
    """The keys of the reference page's tables."""
    return set(re.findall(r"^\| `([^`]+)` \|", reference.PAGE.read_text(), re.M))


def undocumented(cfg: dict, keys: set[str], prefix: str = "") -> set[str]:
    """Keys of a printed config missing from ``keys``: a mixture's parts read as
    ``source.parts.NAME.*`` (their ``source`` as any kind's ``source.*``); below a
    documented key (a mapping such as ``augment.transforms``) nothing more is asked."""
    missing = set()
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        generic = re.sub(r"^source\.parts\.[^.]+\.source\.", "source.", key)
        generic = re.sub(r"^source\.parts\.[^.]+(?=\.|$)", "source.parts.NAME", generic)
        part_source = generic == "source.parts.NAME.source"
        if (generic in keys or part_source) and not (part_source and isinstance(v, dict)):
            continue
        if isinstance(v, dict) and v:
            missing |= undocumented(v, keys, key + ".")
        elif generic not in keys:
            missing.add(key)
    return missing


def test_the_reference_page_is_the_one_the_schemas_generate():
    assert reference.main(["--check"]) == 0, "run: python -m pipeline.docs.reference"


def test_a_key_added_to_a_schema_makes_the_page_stale(monkeypatch, capsys):
    @dataclasses.dataclass
    class Bigger(SyntheticConfig):
        brand_new: int = 7  # a key added without regenerating the page

    monkeypatch.setitem(SOURCE_SCHEMAS, "synthetic", Bigger)
    assert "| `source.brand_new` | `int` | `7` |  | a key added without" in reference.render()
    assert reference.main(["--check"]) == 1
    assert "is stale; run python -m pipeline.docs.reference" in capsys.readouterr().err


def test_every_key_cfg_job_prints_is_in_the_reference(tmp_path):
    """The CLI's ``--cfg job``, then every source preset composed as the CLI composes it."""
    keys = documented()
    out = run_cli("--cfg", "job")
    assert out.returncode == 0, out.stderr
    assert not undocumented(yaml.safe_load(out.stdout), keys)
    for preset in sorted(p.stem for p in (CONF / "source").glob("*.yaml")):
        cfg = OmegaConf.to_container(make_cfg(tmp_path / "x", f"source={preset}"))
        assert not undocumented(cfg, keys), preset


def test_every_key_has_a_type_a_default_and_a_line_of_help():
    rows = [r for r in reference.PAGE.read_text().splitlines() if r.startswith("| `")]
    table = [r for r in rows if r.count(" | ") >= 4]
    assert len(table) > 100
    for row in table:
        key, type_, default, _choices, help_ = re.split(r"(?<!\\)\|", row)[1:-1]
        assert key.strip("` ") and type_.strip("` ") and default.strip("` "), row
        assert help_.strip(), row


def test_the_reference_states_choices_of_enum_keys():
    text = reference.PAGE.read_text()
    assert re.search(r"\| `output\.format` \| `str` \| `'webdataset'` \| webdataset, folder", text)


def test_every_page_of_the_site_is_in_its_nav_and_the_nav_names_pages_that_exist():
    nav = yaml.safe_load((PAGES.parent / "mkdocs.yml").read_text())["nav"]
    listed = {next(iter(e.values())) for e in nav}
    assert listed == {p.name for p in PAGES.glob("*.md")}


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="the docs extra")
def test_the_site_builds_strictly_and_fails_on_a_broken_link(tmp_path):
    def build(config: Path) -> subprocess.CompletedProcess:
        site = tmp_path / "site"
        # no -q: mkdocs 1.6 does not count warnings it was told to keep quiet about
        argv = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)]
        return subprocess.run([*argv, "-d", str(site)], capture_output=True, text=True)

    ok = build(PAGES.parent / "mkdocs.yml")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "site" / "reference.html").is_file()
    broken = tmp_path / "docs"
    (broken / "pages").mkdir(parents=True)
    for page in PAGES.glob("*.md"):
        (broken / "pages" / page.name).write_text(page.read_text())
    with (broken / "pages" / "index.md").open("a") as f:
        f.write("\n[gone](no-such-page.md)\n")
    (broken / "mkdocs.yml").write_text((PAGES.parent / "mkdocs.yml").read_text())
    failed = build(broken / "mkdocs.yml")
    assert failed.returncode != 0 and "no-such-page.md" in failed.stderr


def test_the_report_links_each_picture_to_its_entry_on_the_report_page(tmp_path):
    from pipeline.report.page import DOCS_PAGE
    from pipeline.report.pictures import PICTURES

    out = tmp_path / "ds"
    assert run_cli(f"output.dir={out}", "source.num_samples=4").returncode == 0
    html = (out / "report" / "index.html").read_text()
    shown = re.findall(r'<figure id="([\w-]+)">', html)
    assert "collage" in shown and "depth_hist" in shown
    page = DOCS_PAGE.read_text()
    for name in shown:
        assert f'href="{DOCS_PAGE.as_uri()}#picture-{name}"' in html, name
    for name in PICTURES:
        assert f'<a id="picture-{name}"></a>' in page, name


# ---- the pages agree with each other ------------------------------------------------


def docs_lines() -> list[tuple[str, str]]:
    """(file:line, text) of README and every page but the changelog (which keeps what
    the tool was)."""
    out = []
    for i, line in enumerate(README.read_text().splitlines(), start=1):
        where = README.where(i)
        if not where.startswith("pipeline/docs/pages/changelog.md"):
            out.append((where, line))
    return out


def test_depth_scale_divides_on_every_page():
    """Every depth_scale the pages set or state is a divisor >= 1 (stored / scale =
    metres), except inside the refusal message quoted for the old multiplying values;
    no page says the scale multiplies."""
    wrong = []
    for where, line in docs_lines():
        for value in re.findall(r"depth_scale\W{1,3}(\d+(?:\.\d+)?)\b", line):
            if float(value) < 1 and "is below 1" not in line:
                wrong.append(f"{where}: {line.strip()}")
        if re.search(r"depth_scale[^.;]*\bmultipl", line):
            wrong.append(f"{where}: {line.strip()}")
    assert not wrong, "\n".join(wrong)


def test_no_example_reads_depth_with_a_scale_of_its_own():
    """Python examples take the scale from the dataset (its records, the card,
    ``read.depth_scale``), never a literal: a KITTI part makes it 256, not 1000."""
    literal = re.compile(r"depth\b.*[/*]\s*\d+(\.\d+)?\b")
    blocks = [i for i in parse(README.read_text()) if i.lang == "python"]
    assert len(blocks) > 10
    for item in blocks:
        for line in item.text.splitlines():
            code = line.split("#")[0]
            assert not literal.search(code), f"{README.where(item.line)}: {line}"


def test_pages_that_say_a_reader_reads_any_output_say_it_reads_urls_too():
    """ "Any output" / "any format" claims sit in a paragraph that also says URLs are read,
    and no page says the readers take local paths only."""
    text = README.read_text()
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        if re.search(r"reads? any (output|format)|any format, local", flat):
            assert "URL" in flat, flat[:200]
        assert not re.search(r"URLs? (are|is) not read|local (paths|directories) only", flat)


def test_the_documented_kitti_and_nyu_scales_are_the_presets():
    """The 256 and 1000 the pages give for KITTI and millimetre PNGs are the presets'."""
    kitti = yaml.safe_load((CONF / "source" / "kitti.yaml").read_text())
    assert kitti["depth_scale"] == 256
    text = " ".join(README.read_text().split())
    assert "256 for KITTI" in text and "1000 for millimetre PNGs" in text
