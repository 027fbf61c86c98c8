"""A flag each thread sets for itself, within a block: what a thread's own work should not
do (show progress, warn of a gap) while its caller counts or answers it, without touching
the other threads' (``warnings.catch_warnings`` changes every thread's filters)."""

from __future__ import annotations

import threading
from contextlib import contextmanager

__all__ = ["ThreadFlag"]


class ThreadFlag:
    """False in every thread until the thread raises it with :meth:`within`."""

    def __init__(self):
        self._local = threading.local()

    def __bool__(self) -> bool:
        return getattr(self._local, "on", False)

    @contextmanager
    def within(self):
        """Within, the flag is raised in this thread (blocks nest)."""
        before = bool(self)
        self._local.on = True
        try:
            yield
        finally:
            self._local.on = before
