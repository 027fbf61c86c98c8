"""The label tables: one per language, the same keys, every shipped name labelled, and
numbers written the reader's way."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import i18n
from engine.config import load_config
from engine.errors import RuimtepuzzelError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_both_tables_hold_the_same_keys():
    nl, en = i18n.get("nl").table, i18n.get("en").table
    assert set(nl) == set(en) == set(i18n.GROUPS)
    for group in i18n.GROUPS:
        assert set(nl[group]) == set(en[group]), group


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_shipped_claim_option_and_rule_has_a_label(lang):
    table = i18n.get(lang).table
    config = load_config(CONFIGS / "national.toml")
    assert set(config.claims) <= set(table["claims"])
    assert set(config.options) <= set(table["options"])
    assert {r.id for r in config.rules} <= set(table["rules"])
    assert set(config.assumptions) <= set(table["assumptions"])
    assert {r.kind for r in config.rules} <= set(table["rule_kinds"])


@pytest.mark.parametrize(
    "x, lang, decimals, text",
    [
        (1234.5, "nl", 1, "1.234,5"),
        (1234.5, "en", 1, "1,234.5"),
        (917193, "nl", None, "917.193"),
        (17.5, "nl", None, "17,5"),
        (-0.0004, "nl", 2, "0,00"),
        (-0.4, "nl", 0, "0"),
        (-1.38, "nl", None, "-1,38"),
        (None, "nl", None, "–"),
        (float("nan"), "en", 2, "–"),
    ],
)
def test_numbers_the_readers_way_and_never_minus_zero(x, lang, decimals, text):
    assert i18n.format_number(x, lang, decimals) == text


def test_quantities_in_real_units():
    t = i18n.get("nl")
    assert t.quantity(83_500, "homes") == "83.500 woningen"
    assert t.quantity(17.5, "TWh") == "17,5 TWh"
    assert t.quantity(1, "homes") == "1 woning"
    assert i18n.get("en").quantity(2_383.5, "ha") == "2,384 ha"


def test_an_unknown_language_is_a_clear_error():
    with pytest.raises(RuimtepuzzelError, match="--lang fr: use one of nl, en"):
        i18n.get("fr")
    assert i18n.get().lang == "nl"
