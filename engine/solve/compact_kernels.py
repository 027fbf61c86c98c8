"""Numba kernels of :mod:`engine.solve.compact`: the passes over every cell that the
compaction repeats for each trial plan, each patch count and each cut.

Each gives what the NumPy/SciPy code it replaced gave, to the last bit and in the same
order (tests/test_compact.py holds them to it on random grids). Sums follow
:mod:`engine.solve.kernels` (blocks of ``BLOCK`` cells in cell order, the blocks added in
order), so a figure here is the same bit for bit as the solver's figure of the same plan: a
trial plan is held to the exact optimum's supply with no rounding of its own.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.solve.kernels import BLOCK

__all__ = ["plan_area", "patch_labels", "cut_terms"]


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


@njit(cache=True, nogil=True)
def patch_labels(mask, neighbours):
    """4-connected patches of the cells in ``mask``: per cell its patch (0 outside), patches
    numbered from 1 in the order of their first cell; and the cells per patch (index 0: the
    cells outside)."""
    n = mask.shape[0]
    patch = np.zeros(n, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    # Room for one patch a cell; numpy's zeroed pages cost nothing until a patch is counted.
    sizes = np.zeros(n + 1, dtype=np.int64)
    count = 0
    for i in range(n):
        if not mask[i]:
            sizes[0] += 1
            continue
        if patch[i] != 0:
            continue
        count += 1
        patch[i] = count
        stack[0] = i
        top = 1
        while top > 0:
            top -= 1
            c = stack[top]
            sizes[count] += 1
            for d in range(4):
                j = neighbours[c, d]
                if j >= 0 and mask[j] and patch[j] == 0:
                    patch[j] = count
                    stack[top] = j
                    top += 1
    return patch, sizes[: count + 1].copy()


@njit(cache=True, nogil=True)
def cut_terms(cells, neighbours, label):
    """The terms of a cut over ``cells``, every other cell held at ``label``:
    per cut cell its neighbours held in and held out, and the edges between cut cells, each
    once (to the right and below), in the order of their first cell."""
    k = cells.shape[0]
    local = np.full(neighbours.shape[0], -1, dtype=np.int64)
    for m in range(k):
        local[cells[m]] = m
    fixed_in = np.zeros(k, dtype=np.int64)
    fixed_out = np.zeros(k, dtype=np.int64)
    edge_a = np.empty(2 * k, dtype=np.int64)
    edge_b = np.empty(2 * k, dtype=np.int64)
    edges = 0
    for m in range(k):
        for d in range(4):
            j = neighbours[cells[m], d]
            if j < 0:
                continue
            if local[j] < 0:
                if label[j]:
                    fixed_in[m] += 1
                else:
                    fixed_out[m] += 1
            elif d == 1 or d == 3:  # right, below
                edge_a[edges] = m
                edge_b[edges] = local[j]
                edges += 1
    return fixed_in, fixed_out, edge_a[:edges], edge_b[:edges]
