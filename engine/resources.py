"""Where the files the project ships live: configs, grid definitions, demo data, the source text.

In a source checkout (and an editable install) they are the folders ``configs/``, ``grids/``
and ``data/`` beside the package; an installed wheel carries the same folders inside the
package (``pyproject.toml`` maps them there). Nothing the engine ships lies outside these.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import RuimtepuzzelError

__all__ = ["SHIPPED", "shipped_dir", "find_config", "shipped_configs"]

_PACKAGE = Path(__file__).resolve().parent

#: The folders shipped with the engine.
SHIPPED = ("configs", "grids", "data")


def shipped_dir(kind: str) -> Path:
    """The folder of one kind of shipped file (``configs``, ``grids`` or ``data``)."""
    if kind not in SHIPPED:
        raise ValueError(f"no shipped folder {kind!r}; there are {SHIPPED}")
    for candidate in (_PACKAGE / kind, _PACKAGE.parent / kind):  # wheel, then checkout
        if candidate.is_dir():
            return candidate
    raise RuimtepuzzelError(
        f"the shipped folder {kind!r} is missing beside {_PACKAGE}; the installation is "
        f"incomplete: reinstall ruimtepuzzel (pip install .) from a full checkout"
    )


def shipped_configs() -> dict[str, Path]:
    """The shipped configs by name: ``national`` and one per province (``utrecht``, ...)."""
    root = shipped_dir("configs")
    found = {p.stem: p for p in sorted((root / "provinces").glob("*.toml"))}
    # Shared pieces (claims, rules, suitability) are read by the runnable configs, not run.
    found.update({p.stem: p for p in sorted(root.glob("*.toml")) if _is_runnable(p)})
    return found


def _is_runnable(path: Path, _seen: tuple[Path, ...] = ()) -> bool:
    """A run's own file: it has a [run] table or extends a file that is runnable. A file
    that does not parse is listed: running it gives the parser's message."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True
    parent = data.get("extends")
    if "run" in data or not isinstance(parent, str):
        return "run" in data
    parent_path = (path.parent / parent).resolve()
    return (
        parent_path not in _seen
        and parent_path.is_file()
        and _is_runnable(parent_path, (*_seen, path.resolve()))
    )


def find_config(name_or_path: str | os.PathLike) -> Path:
    """A config file: an existing path as given, else a shipped config by name."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    if candidate.suffix == ".toml" or len(candidate.parts) > 1:
        raise RuimtepuzzelError(
            f"config {str(name_or_path)!r} does not exist; give the path of a config file "
            f"or the name of a shipped one ({', '.join(shipped_configs())})"
        )
    configs = shipped_configs()
    if str(name_or_path) in configs:
        return configs[str(name_or_path)]
    raise RuimtepuzzelError(
        f"no config named {str(name_or_path)!r}: the shipped configs are "
        f"{', '.join(configs)}; or give the path of a config file"
    )
