"""The one base class of every error the engine reports to a user as theirs to fix.

A ``RuimtepuzzelError`` says what is wrong, where (file, key, layer) and how to fix it; the
CLI prints it as one line. It is a ``ValueError`` so that callers that catch bad input as
``ValueError`` keep working. Programming errors are never wrapped in it.
"""

from __future__ import annotations

__all__ = ["RuimtepuzzelError"]


class RuimtepuzzelError(ValueError):
    """Bad input or an unmet precondition, with a message a user can act on."""
