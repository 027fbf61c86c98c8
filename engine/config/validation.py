"""The validation layer every TOML file of the project goes through.

Configs, scenario files and grid definitions are written by hand, so each is read with
:func:`read_toml` and checked with a :class:`Validator`: a table has only the keys its schema
allows (an unknown key is a typo that would otherwise be ignored, reported with "did you
mean ..."), every value has the type and range it needs, and every error is a
:class:`ConfigError` (or a subclass of it, one per kind of file) that names the file, the key,
what is wrong and the fix.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from pathlib import Path

from engine.errors import RuimtepuzzelError

__all__ = [
    "ConfigError",
    "UnknownKeyError",
    "Origins",
    "Validator",
    "did_you_mean",
    "read_toml",
    "show_path",
]


class ConfigError(RuimtepuzzelError):
    """An error in a file a user wrote: file, key, what is wrong, and the fix."""

    def __init__(self, file, key: str, problem: str, fix: str = ""):
        self.file, self.key, self.problem, self.fix = str(file), key, problem, fix
        msg = f"{file}: {key}: {problem}"
        if fix:
            msg += f"; {fix}"
        super().__init__(msg)


class UnknownKeyError(ConfigError):
    """A key or path the schema does not have (a typo, or an entry it does not allow)."""


def did_you_mean(name: str, choices) -> str:
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'?"
    if not choices:
        return "there is nothing to choose from here"
    shown = ", ".join(sorted(choices)[:25]) + (" ..." if len(choices) > 25 else "")
    return f"choose one of: {shown}"


def show_path(path) -> str:
    """A path as a message shows it: relative to the working folder when it lies inside."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def read_toml(path: Path, key: str = "(file)", error: type[ConfigError] = ConfigError) -> dict:
    """A TOML file as a dict; a missing, unreadable or malformed file is an ``error``."""
    path = Path(path)
    if not path.is_file():
        raise error(
            path,
            key,
            "file not found",
            "check the path (relative paths are taken from the folder of the file that names them)",
        )
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise error(
            path, "(syntax)", f"not valid TOML: {err}", "fix the TOML syntax at the line shown"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(
            path, key, f"cannot be read: {err}", "check that it is a readable UTF-8 text file"
        ) from None


class Origins:
    """Which file each part of a tree came from, for messages; keys that overrides added,
    not found in any file, are shown as coming from ``overrides``. ``extended``: the files
    the run's own file extends, nearest first."""

    def __init__(self, path=None):
        self.by_prefix: dict[tuple, str] = {}
        self.added: set[tuple] = set()
        self.extended: list[Path] = []
        if path is not None:
            self.add((), path)

    def add(self, prefix: tuple, path) -> None:
        self.by_prefix[prefix] = show_path(path)

    def copy(self) -> Origins:
        out = Origins()
        out.by_prefix, out.added = dict(self.by_prefix), set(self.added)
        out.extended = list(self.extended)
        return out

    def file(self, key: tuple) -> str:
        key = tuple(key)
        if any(key[: len(a)] == a for a in self.added):
            return "overrides"
        best, n = None, -1
        for prefix, path in self.by_prefix.items():
            if key[: len(prefix)] == prefix and len(prefix) > n:
                best, n = path, len(prefix)
        return best if best is not None else "(config)"


class Validator:
    """Checks values against a schema; every error names the file and the dotted key.

    ``error`` is the class raised (:class:`ConfigError` or a subclass for another kind of
    file); unknown keys raise :class:`UnknownKeyError` when ``error`` is ConfigError itself,
    else ``error`` (whose class then already says what kind of file it is).
    """

    def __init__(self, origins: Origins, error: type[ConfigError] = ConfigError):
        self.origins = origins
        self.error = error

    @classmethod
    def of_file(cls, path, error: type[ConfigError] = ConfigError) -> Validator:
        """A validator for one file (scenario files, grid definitions)."""
        return cls(Origins(path), error)

    def err(self, key: tuple, problem: str, fix: str = "") -> ConfigError:
        return self.error(self.origins.file(key), ".".join(map(str, key)) or "(file)", problem, fix)

    def unknown(self, key: tuple, problem: str, fix: str = "") -> ConfigError:
        cls = UnknownKeyError if self.error is ConfigError else self.error
        return cls(self.origins.file(key), ".".join(map(str, key)), problem, fix)

    def table(self, node, key: tuple) -> dict:
        if not isinstance(node, dict):
            raise self.err(
                key, f"expected a table, got {_shown(node)}", "write it as [section] or { ... }"
            )
        return node

    def keys(self, node: dict, key: tuple, allowed, required=()) -> None:
        """``node`` has only ``allowed`` keys (did-you-mean for the others) and all of
        ``required``."""
        for k in node:
            if k == "__path__":
                continue
            if k not in allowed:
                raise self.unknown(key + (k,), "unknown key", did_you_mean(k, allowed))
        for k in required:
            if k not in node:
                raise self.err(key + (k,), "missing", f"add {k} = ...")

    def number(self, node, key: tuple, *, minimum=None, maximum=None) -> float:
        if isinstance(node, bool) or not isinstance(node, (int, float)) or not math.isfinite(node):
            raise self.err(key, f"expected a number, got {_shown(node)}", "write a plain number")
        if minimum is not None and node < minimum:
            raise self.err(key, f"{node} is below {minimum}", f"use a value >= {minimum}")
        if maximum is not None and node > maximum:
            raise self.err(key, f"{node} is above {maximum}", f"use a value <= {maximum}")
        return float(node)

    def integer(self, node, key: tuple, *, minimum=None, maximum=None) -> int:
        value = self.number(node, key, minimum=minimum, maximum=maximum)
        if not value.is_integer():
            raise self.err(
                key,
                f"expected a whole number, got {node!r}",
                f"use {math.floor(value)} or {math.ceil(value)}",
            )
        return int(value)

    def string(self, node, key: tuple) -> str:
        if not isinstance(node, str):
            raise self.err(key, f"expected text, got {_shown(node)}", 'write it in quotes: "..."')
        return node

    def boolean(self, node, key: tuple) -> bool:
        if not isinstance(node, bool):
            raise self.err(
                key,
                f"expected true or false, got {_shown(node)}",
                "write true or false (no quotes)",
            )
        return node

    def choice(self, node, key: tuple, choices) -> str:
        """One of a fixed set of words."""
        if not isinstance(node, str) or node not in choices:
            raise self.err(
                key,
                f"{node!r} is not one of {', '.join(map(str, choices))}",
                did_you_mean(str(node), choices),
            )
        return node

    def strings(self, node, key: tuple, *, empty: bool = True) -> list[str]:
        if (
            not isinstance(node, list)
            or not all(isinstance(s, str) for s in node)
            or (not empty and not node)
        ):
            raise self.err(key, f"expected a list of names, got {_shown(node)}", 'write ["a", "b"]')
        return list(node)

    def numbers(self, node, key: tuple, count: int | None = None) -> list[float]:
        if not isinstance(node, list) or (count is not None and len(node) != count):
            what = f"a list of {count} numbers" if count else "a list of numbers"
            raise self.err(
                key,
                f"expected {what}, got {_shown(node)}",
                f"write [{', '.join(['1.0'] * (count or 2))}]",
            )
        return [self.number(x, key + (f"[{j}]",)) for j, x in enumerate(node)]

    def source(self, node: dict, key: tuple) -> str:
        from engine.source import source_document

        if "source" not in node:
            raise self.err(
                key + ("source",),
                "missing",
                f"cite the line of {source_document().title} it comes from, e.g. "
                f'source = "L188" (data/source/)',
            )
        return self.reference(node["source"], key + ("source",))

    def reference(self, node, key: tuple) -> str:
        """A line reference into the policy source that exists there."""
        from engine.source import cite, source_document

        s = self.string(node, key)
        try:
            cite(s)
        except RuimtepuzzelError as err:
            raise self.err(
                key,
                str(err),
                f'write source = "L123", a line of {source_document().path.name} that says it',
            ) from None
        return s


def _shown(node) -> str:
    """A value as an error shows it, with its TOML type."""
    kinds = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a table",
    }
    kind = next((k for t, k in kinds.items() if type(node) is t), type(node).__name__)
    text = repr(node)
    return f"{kind} {text[:60] + '...' if len(text) > 60 else text}"
