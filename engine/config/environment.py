"""The ``RUIMTEPUZZEL_*`` environment settings, checked at start, before any work.

A setting is read where it is used (the analysis level in :mod:`engine.analysis.outputs`, the
grid cache in :mod:`engine.grid.build`); :func:`check_environment` checks them all up front,
so that a typo (``RUIMTEPUZZEL_ANALYSIS=fulll``) stops a run before its first stage, not
after the outputs are written, and an unknown ``RUIMTEPUZZEL_*`` variable is named.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.config.validation import did_you_mean
from engine.errors import RuimtepuzzelError

__all__ = ["SETTINGS", "ANALYSIS_LEVELS", "SettingError", "check_environment"]

ANALYSIS_LEVELS = ("full", "quick", "off")

#: Every environment variable the engine reads, with what it takes.
SETTINGS = {
    "RUIMTEPUZZEL_ANALYSIS": "the analysis level of a run: full, quick or off",
    "RUIMTEPUZZEL_CACHE": "a folder for the grid cache (created if missing)",
}


class SettingError(RuimtepuzzelError):
    """An environment setting that cannot be used: the variable, its value and the fix."""

    def __init__(self, name: str, value: str, problem: str, fix: str):
        self.name, self.value = name, value
        super().__init__(f"environment {name}={value!r}: {problem}; {fix}")


def check_environment(environ=None) -> None:
    """Raise :class:`SettingError` for the first ``RUIMTEPUZZEL_*`` variable that is unknown
    or has a value the engine cannot use."""
    environ = os.environ if environ is None else environ
    for name in sorted(k for k in environ if k.startswith("RUIMTEPUZZEL_")):
        value = environ[name]
        if name not in SETTINGS:
            raise SettingError(
                name,
                value,
                "the engine reads no such setting",
                f"{did_you_mean(name, SETTINGS)} (unset it: unset {name})",
            )
        _CHECKS[name](name, value)


def _analysis(name: str, value: str) -> None:
    level = value.strip().lower()
    if level and level not in ANALYSIS_LEVELS:
        raise SettingError(
            name,
            value,
            f"not one of {', '.join(ANALYSIS_LEVELS)}",
            did_you_mean(level, ANALYSIS_LEVELS),
        )


def _cache(name: str, value: str) -> None:
    if not value.strip():
        return  # empty: the user's cache folder
    folder = Path(value).expanduser()
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise SettingError(
            name,
            value,
            f"{existing} is a file, not a folder",
            "point it at a folder (it is created if missing)",
        )
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise SettingError(
            name, value, f"{existing} is not writable", "point it at a folder you may write to"
        )


_CHECKS = {"RUIMTEPUZZEL_ANALYSIS": _analysis, "RUIMTEPUZZEL_CACHE": _cache}
