"""Numba kernels of :mod:`engine.solve.compact`: the passes over every cell that the
compaction repeats for each trial plan.

Sums follow :mod:`engine.solve.kernels` (blocks of ``BLOCK`` cells in cell order, the blocks
added in order), so a figure here is the same bit for bit as the solver's figure of the same
plan: a trial plan is held to the exact optimum's supply with no rounding of its own.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.solve.kernels import BLOCK

__all__ = ["plan_area"]


@njit(cache=True, nogil=True)
def plan_area(choice, split, indptr, indices, data, group, area, n_groups, n_opt):
    """Hectares per (group, option) of the plan that gives every cell its option in
    ``choice`` but the ``split`` cells, which keep their fractions (CSR rows ``indptr``,
    ``indices``, ``data``): what ``kernels.allocation_totals`` sums for that plan, in the
    same order."""
    n = choice.shape[0]
    out = np.zeros((n_groups, n_opt), dtype=np.float64)
    part = np.zeros((n_groups, n_opt), dtype=np.float64)
    for start in range(0, n, BLOCK):
        part[:] = 0.0
        for i in range(start, min(n, start + BLOCK)):
            a = area[0] if area.shape[0] == 1 else area[i]
            g = group[i]
            if split[i]:
                for j in range(indptr[i], indptr[i + 1]):
                    part[g, indices[j]] += a * data[j]
            else:
                part[g, choice[i]] += a * 1.0
        out += part
    return out
