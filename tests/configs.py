"""A copy of the shipped national config in a test's folder, with text replaced or added."""

from __future__ import annotations

from pathlib import Path

from engine.resources import shipped_dir


def national_copy(folder: Path, extra: str = "", replace: dict[str, str] | None = None) -> Path:
    """``national.toml`` in ``folder`` reading the shipped pieces by absolute path."""
    configs = shipped_dir("configs")
    text = (configs / "national.toml").read_text()
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    for piece in ("claims", "rules", "suitability"):
        text = text.replace(f'"{piece}.toml"', f'"{configs / piece}.toml"')
    text = text.replace('"provinces/', f'"{configs / "provinces"}/')
    path = folder / "national.toml"
    path.write_text(text + "\n" + extra)
    return path
