"""The integer type of index arrays: int32 where the indices fit, which holds on any
national grid and halves their bytes (a 25 m grid has 56 M cells), else int64."""

from __future__ import annotations

import numpy as np

__all__ = ["index_type"]


def index_type(largest: int) -> np.dtype:
    """int32 for indices up to ``largest`` where they fit, else int64: the type scipy's
    sparse matrices keep for them, and the one the kernels are compiled for at install
    (:mod:`engine.solve.warmup`)."""
    return np.dtype(np.int32 if largest <= np.iinfo(np.int32).max else np.int64)
