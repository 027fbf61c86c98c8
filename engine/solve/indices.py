"""The integer types of index arrays: of cells, int32 where the indices fit, which holds on
any national grid and halves their bytes (a 25 m grid has 56 M cells), else int64; of
options, int16 (a quarter of int64's bytes a cell)."""

from __future__ import annotations

import numpy as np

__all__ = ["index_type", "option_type"]


def index_type(largest: int) -> np.dtype:
    """int32 for indices up to ``largest`` where they fit, else int64: the type scipy's
    sparse matrices keep for them, and the one the kernels are compiled for at install
    (:mod:`engine.solve.warmup`)."""
    return np.dtype(np.int32 if largest <= np.iinfo(np.int32).max else np.int64)


def option_type(n_options: int) -> np.dtype:
    """int16 for option indices (and -1 for none) where ``n_options`` fit, else int32: the
    type of the fast solver's choices (the price pass's), and the one the kernels are
    compiled for at install."""
    return np.dtype(np.int16 if n_options <= np.iinfo(np.int16).max else np.int32)
