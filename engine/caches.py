"""Where ruimtepuzzel keeps what it builds once and reads on every later run.

One folder, ``$RUIMTEPUZZEL_CACHE`` or the user's cache directory
(``platformdirs.user_cache_dir("ruimtepuzzel")``, ``~/.cache/ruimtepuzzel`` on Linux):

- ``grids/``: built grids (:mod:`engine.grid.build`);
- ``numba/``: the compiled Numba kernels (:mod:`engine.solve.warmup`). Numba's default
  keeps them in ``__pycache__`` beside the source, which in an installed package may be
  read-only or shared by users whose machines differ; here they live with the user.
  ``NUMBA_CACHE_DIR`` set by the user wins.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["cache_root", "numba_cache_dir", "use_numba_cache"]


def cache_root() -> Path:
    """``$RUIMTEPUZZEL_CACHE`` or the user's cache directory for ruimtepuzzel."""
    env = os.environ.get("RUIMTEPUZZEL_CACHE", "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("ruimtepuzzel"))


def numba_cache_dir() -> Path:
    """The folder numba caches the kernels in: ``NUMBA_CACHE_DIR``, else ``numba/`` of
    :func:`cache_root`."""
    return Path(os.environ.get("NUMBA_CACHE_DIR") or cache_root() / "numba")


def use_numba_cache() -> None:
    """Point numba's cache at :func:`numba_cache_dir`; before any kernel is decorated.

    numba reads ``NUMBA_CACHE_DIR`` once, when it is imported, and a kernel takes its cache
    folder when it is decorated: a program that imported numba before this package gets the
    setting in numba's config too."""
    folder = str(numba_cache_dir())
    os.environ["NUMBA_CACHE_DIR"] = folder
    numba = sys.modules.get("numba")
    if numba is not None and not numba.config.CACHE_DIR:
        numba.config.CACHE_DIR = folder
