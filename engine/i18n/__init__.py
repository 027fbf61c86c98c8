"""The words a planner reads: one table of labels per language (``nl.py``, ``en.py``).

Code names (claim, option and rule ids) stay in JSON keys and in the code; every page, map
legend and closing line of the CLI takes its words from here::

    from engine import i18n

    t = i18n.get("nl")
    t.claim("housing")                 # 'woningbouw'
    t.quantity(83_500, "homes")        # '83.500 woningen'
    t.text("verdict_short", ...)       # a sentence with its placeholders filled
    i18n.format_number(-0.0004, "nl", 2)  # '0,00' (never '-0,00')

Dutch is the default (DESIGN.md: users read Dutch); ``--lang en`` on request. A name without
a label (an option a province config adds) falls back to its code name with spaces, so a page
never fails on it; the tests check that every shipped name has a label in both tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from engine.errors import RuimtepuzzelError

__all__ = ["LANGUAGES", "DEFAULT", "Labels", "get", "format_number", "check_language"]

LANGUAGES = ("nl", "en")
DEFAULT = "nl"

# The groups of names each table holds (the tests check both tables hold the same keys).
GROUPS = (
    "claims",
    "options",
    "units",
    "unit_singular",
    "rules",
    "rule_kinds",
    "verdicts",
    "zonings",
    "conflict_classes",
    "land_cover",
    "provenance",
    "layers",
    "assumptions",
    "status",
    "sections",
    "sweep",
    "app",
    "text",
)


def check_language(lang: str | None) -> str:
    """``lang`` if it is one of LANGUAGES (None: the default), else a clear error."""
    if lang is None:
        return DEFAULT
    if lang not in LANGUAGES:
        raise RuimtepuzzelError(f"--lang {lang}: use one of {', '.join(LANGUAGES)}")
    return lang


def _separators(lang: str) -> tuple[str, str]:
    """(thousands, decimal) separators."""
    return (".", ",") if lang == "nl" else (",", ".")


def _default_decimals(x: float) -> int:
    """Sensible rounding: whole numbers from 100 up, one decimal from 10, two below."""
    a = abs(x)
    if a >= 100:
        return 0
    if a >= 10:
        return 1
    return 2


def format_number(x, lang: str = DEFAULT, decimals: int | None = None) -> str:
    """``x`` written the way a reader of ``lang`` writes it: '1.234,5' in Dutch, '1,234.5' in
    English; None and NaN as '–'; a value that rounds to zero without its sign (never '-0')."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    d = _default_decimals(x) if decimals is None else decimals
    text = f"{abs(x):,.{d}f}"
    # -0.0004 rounds to 0: no sign then.
    negative = x < 0 and float(text.replace(",", "")) != 0
    thousands, point = _separators(lang)
    text = text.replace(",", "\0").replace(".", point).replace("\0", thousands)
    return ("-" if negative else "") + text


@dataclass(frozen=True)
class Labels:
    """One language's table with the lookups the pages need."""

    lang: str
    table: dict

    def _name(self, group: str, name: str) -> str:
        return self.table[group].get(name) or str(name).replace("_", " ")

    def claim(self, name: str) -> str:
        return self._name("claims", name)

    def option(self, name: str) -> str:
        return self._name("options", name)

    def rule(self, rule_id: str) -> str:
        # Province rules carry their province: "einstein_telescope_no_wind (limburg)".
        base, _, rest = str(rule_id).partition(" (")
        label = self._name("rules", base)
        return f"{label} ({rest}" if rest else label

    def unit(self, unit: str | None, count: float | None = None) -> str:
        unit = unit or "ha"
        if count is not None and abs(count) == 1 and unit in self.table["unit_singular"]:
            return self.table["unit_singular"][unit]
        return self._name("units", unit)

    def group(self, group: str, name: str) -> str:
        """The label of ``name`` in any group (verdicts, zonings, land_cover, ...)."""
        return self._name(group, name)

    def text(self, key: str, **values) -> str:
        """A sentence of the table with its placeholders filled."""
        return self.table["text"][key].format(**values)

    def number(self, x, decimals: int | None = None) -> str:
        return format_number(x, self.lang, decimals)

    def quantity(self, x, unit: str | None, decimals: int | None = None) -> str:
        """'83.500 woningen', '17,5 TWh', '1.200 ha'; TWh with one decimal at least."""
        if x is None:
            return "–"
        if decimals is None and unit == "TWh" and abs(x) < 100:
            decimals = 2 if abs(x) < 1 else 1
        if decimals is None and unit == "homes":
            decimals = 0
        return f"{self.number(x, decimals)} {self.unit(unit, x)}"

    def percent(self, share, decimals: int = 0) -> str:
        if share is None:
            return "–"
        return f"{self.number(100 * share, decimals)}%"


@cache
def get(lang: str | None = None) -> Labels:
    """The labels of ``lang`` (default Dutch); an unknown language is a clear error."""
    lang = check_language(lang)
    if lang == "nl":
        from engine.i18n.nl import TABLE
    else:
        from engine.i18n.en import TABLE
    return Labels(lang, TABLE)
