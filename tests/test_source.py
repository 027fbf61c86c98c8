"""Every line reference in the shipped configs resolves, and says the figure it is cited for."""

from __future__ import annotations

import itertools
import re
import tomllib

import pytest

from engine.errors import RuimtepuzzelError
from engine.resources import shipped_dir
from engine.source import cite, parse_reference, source_document
from tests.configs import national_copy

# The municipal split's targets are shares of the figure their line gives (their sum is
# checked in tests/test_gemeenten_config.py); the rest of that file is national.toml's.
CONFIG_FILES = sorted(
    p for p in shipped_dir("configs").rglob("*.toml") if p.name != "national-gemeenten.toml"
)

# Dutch figures: 900.000, 40.571, 7.000, 5%, 0,5; thousands separated by dots.
_NUMBER = re.compile(r"\d{1,3}(?:\.\d{3})+(?!\d)|\d+(?:,\d+)?")


def _figures(text: str) -> set[float]:
    return {float(m.replace(".", "").replace(",", ".")) for m in _NUMBER.findall(text)}


def _cited(tree, path=()):
    """(key path, table) of every table in a TOML tree that cites a source line."""
    if isinstance(tree, dict):
        if isinstance(tree.get("source"), str) and tree["source"].startswith("L"):
            yield path, tree
        for key, value in tree.items():
            yield from _cited(value, path + (key,))


def _all_citations():
    for file in CONFIG_FILES:
        with file.open("rb") as fh:
            for key, table in _cited(tomllib.load(fh)):
                yield pytest.param(table, id=f"{file.stem}:{'.'.join(key)}")


def test_the_source_document_is_shipped_with_its_title_and_publisher():
    doc = source_document()
    assert doc.title == "Provinciaal Startpakket fysieke leefomgeving"
    assert doc.year == 2022 and "Rijksoverheid" in doc.publisher
    assert len(doc.lines) == 12898
    assert "900.000 woningen" in cite("L3057").text


@pytest.mark.parametrize("table", list(_all_citations()))
def test_every_reference_resolves_and_mentions_its_figure(table):
    citation = cite(table["source"])
    parts = table.get("sum_of", [])
    for bound in ("lower", "upper", "value"):
        figure = table.get(bound)
        if isinstance(figure, bool) or not isinstance(figure, int | float):
            continue  # a target given by an assumption's name cites that assumption
        if parts:
            # One figure of each cited part, and they add up to the target.
            options = [_figures(cite(ref).text) for ref in parts]
            sums = {sum(combo) for combo in itertools.product(*options)}
            assert figure in sums, f"{parts} do not add up to {figure}: {options}"
            continue
        said = _figures(citation.text)
        if table.get("unit") == "fraction":
            said |= {f / 100 for f in said}  # "5% tot 10%" for a share of 0.05
        assert figure in said, (
            f"{table['source']} does not mention {figure}: {citation.text!r}; cite the line "
            f"that gives the figure"
        )


def test_a_reference_outside_the_document_is_refused():
    last = len(source_document().lines)
    with pytest.raises(RuimtepuzzelError, match=f"lines 1-{last}"):
        cite(f"L{last + 1}")
    with pytest.raises(RuimtepuzzelError, match="not a line reference"):
        cite("page 12")
    with pytest.raises(RuimtepuzzelError, match="empty"):
        cite("L3")  # a blank line in the extracted text


def test_ranges_read_every_line():
    assert parse_reference("L1423-1428") == (1423, 1428)
    assert parse_reference("L1423-L1428") == (1423, 1428)
    assert cite("L1423-1428").text.count(" ") > cite("L1423").text.count(" ")
    with pytest.raises(ValueError, match="ends before"):
        parse_reference("L20-10")


def test_a_config_citing_a_missing_line_is_refused(tmp_path):
    from engine.config import ConfigError, load_config

    broken = national_copy(tmp_path, replace={'source = "L3057"': 'source = "L99999"'})
    with pytest.raises(ConfigError, match="L99999.*lines 1-12898"):
        load_config(broken)
