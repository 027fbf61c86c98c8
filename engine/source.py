"""The policy source every config cites, and its line references (``source = "L3057"``).

The engine's targets, rules and reservations come from one document, shipped in
``data/source/``. A reference is ``L<line>`` or ``L<first>-<last>`` with 1-based line numbers of
that text; :func:`cite` resolves one and refuses a line the document does not have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from engine.errors import RuimtepuzzelError
from engine.resources import shipped_dir

__all__ = ["SourceDocument", "Citation", "source_document", "cite", "parse_reference"]

_REFERENCE = re.compile(r"^L(\d+)(?:-L?(\d+))?$")


@dataclass(frozen=True)
class SourceDocument:
    """Title, year and publisher of the policy source, and its text line by line."""

    title: str
    year: int
    publisher: str
    path: Path
    lines: tuple[str, ...]

    def describe(self) -> dict:
        """What a manifest records of the source: enough to find and verify the same text."""
        from engine.grid.definition import file_sha256

        return {
            "title": self.title,
            "year": self.year,
            "publisher": self.publisher,
            "file": self.path.name,
            "sha256": file_sha256(self.path),
            "lines": len(self.lines),
        }


@dataclass(frozen=True)
class Citation:
    """A resolved reference: the lines it names and their text."""

    reference: str
    first: int
    last: int
    text: str


@cache
def source_document() -> SourceDocument:
    path = shipped_dir("data") / "source" / "provinciaal-startpakket-2022.txt"
    # Lines end at "\n" only, as editors and sed number them; splitlines() would also break
    # at the form feeds of the extracted pages and shift every reference after them.
    lines = tuple(path.read_text(encoding="utf-8").removesuffix("\n").split("\n"))
    return SourceDocument(
        title="Provinciaal Startpakket fysieke leefomgeving",
        year=2022,
        publisher="Rijksoverheid (Ministerie van BZK, with IenW, LNV and EZK)",
        path=path,
        lines=lines,
    )


def parse_reference(reference: str) -> tuple[int, int]:
    """The first and last line of ``"L123"`` or ``"L123-130"``; a ValueError for anything else."""
    match = _REFERENCE.match(reference.strip()) if isinstance(reference, str) else None
    if not match:
        raise ValueError(f'{reference!r} is not a line reference; write "L123" or "L123-130"')
    first = int(match[1])
    last = int(match[2]) if match[2] else first
    if last < first:
        raise ValueError(f"{reference!r}: the range ends before it starts")
    return first, last


def cite(reference: str) -> Citation:
    """The text of a line reference in the source; refuses lines the document does not have."""
    document = source_document()
    try:
        first, last = parse_reference(reference)
    except ValueError as err:
        raise RuimtepuzzelError(str(err)) from None
    if first < 1 or last > len(document.lines):
        raise RuimtepuzzelError(
            f"{reference}: {document.title} ({document.year}) has lines 1-{len(document.lines)}"
        )
    text = " ".join(" ".join(document.lines[first - 1 : last]).split())
    if not text:
        raise RuimtepuzzelError(
            f"{reference}: that line of {document.title} is empty; cite the line that says it"
        )
    return Citation(reference, first, last, text)
