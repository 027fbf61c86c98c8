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

__all__ = ["plan_area", "patch_labels", "cut_terms", "grow"]


@njit(cache=True, nogil=True)
def plan_area(choice, split, indptr, indices, data, group, area, n_groups, n_opt):
    """Hectares per (group, option) of the plan that gives every cell its option in
    ``choice`` but the ``split`` cells, which keep their fractions (CSR rows ``indptr``,
    ``indices``, ``data``): what ``kernels.allocation_parts`` and ``allocation_sums`` give
    for that plan, in the same order."""
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
def patch_labels(cells, mask, neighbours, patch):
    """4-connected patches of the cells of ``mask`` (``cells``: they, in increasing order):
    per cell its patch in ``patch`` (zeros on entry, 0 stays outside), patches numbered from
    1 in the order of their first cell. Returns the cells per patch (index 0: the cells
    outside). Only the mask's cells are visited: an option's cells are a small part of a
    national grid."""
    k = cells.shape[0]
    stack = np.empty(k, dtype=np.int64)
    sizes = np.zeros(k + 1, dtype=np.int64)
    sizes[0] = mask.shape[0] - k
    count = 0
    for i in cells:
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
    return sizes[: count + 1].copy()


@njit(cache=True, nogil=True)
def cut_terms(cells, neighbours, label):
    """The terms of a cut over ``cells`` (increasing), every other cell held at ``label``:
    per cut cell its neighbours held in and held out, and the edges between cut cells, each
    once (to the right and below), in the order of their first cell.

    A neighbour's place among ``cells`` without a map of every cell: the left and right
    ones are next to the cell in ``cells`` if they are cut, and the cells above (below) the
    cut cells increase with them, so one pointer each walks ``cells`` once. An (N,) map made
    per cut was written and faulted in whole at every cut (national 100 m, paged: 2.7 s of
    a 17 s compaction; 25 m: 449 MB a cut)."""
    k = cells.shape[0]
    for m in range(1, k):
        if cells[m] <= cells[m - 1]:
            raise ValueError("cut_terms: the cut cells must be increasing")
    fixed_in = np.zeros(k, dtype=np.int64)
    fixed_out = np.zeros(k, dtype=np.int64)
    edge_a = np.empty(2 * k, dtype=np.int64)
    edge_b = np.empty(2 * k, dtype=np.int64)
    edges = 0
    above, below = 0, 0  # the first places in ``cells`` not before the cells above, below
    for m in range(k):
        for d in range(4):
            j = neighbours[cells[m], d]
            if j < 0:
                continue
            if d == 0:
                at = m - 1
            elif d == 1:
                at = m + 1
            elif d == 2:
                above = _first_from(cells, above, j)
                at = above
            else:
                below = _first_from(cells, below, j)
                at = below
            place = at if 0 <= at < k and cells[at] == j else -1
            if place < 0:
                if label[j]:
                    fixed_in[m] += 1
                else:
                    fixed_out[m] += 1
            elif d == 1 or d == 3:  # right, below
                edge_a[edges] = m
                edge_b[edges] = place
                edges += 1
    return fixed_in, fixed_out, edge_a[:edges], edge_b[:edges]


@njit(cache=True, nogil=True, inline="always")
def _first_from(cells, at, j):
    """The first place from ``at`` in the increasing ``cells`` whose cell is not before j."""
    while at < cells.shape[0] and cells[at] < j:
        at += 1
    return at


@njit(cache=True, nogil=True, inline="always")
def _before(keys, ids, a, b):
    # Python's order of (key, id) tuples: heapq's, which the greedy growth was written with.
    return keys[a] < keys[b] or (keys[a] == keys[b] and ids[a] < ids[b])


@njit(cache=True, nogil=True)
def _heap_push(keys, ids, size, key, cell):
    """A binary min-heap of (key, cell) in ``keys[:size]``, ``ids[:size]``: add one."""
    keys[size] = key
    ids[size] = cell
    k = size
    while k > 0:
        parent = (k - 1) // 2
        if not _before(keys, ids, k, parent):
            break
        keys[k], keys[parent] = keys[parent], keys[k]
        ids[k], ids[parent] = ids[parent], ids[k]
        k = parent
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(keys, ids, size):
    """Take the smallest (key, cell) off the heap; returns it and the new size."""
    key, cell = keys[0], ids[0]
    size -= 1
    keys[0], ids[0] = keys[size], ids[size]
    k = 0
    while True:
        child = 2 * k + 1
        if child >= size:
            break
        if child + 1 < size and _before(keys, ids, child + 1, child):
            child += 1
        if not _before(keys, ids, child, k):
            break
        keys[k], keys[child] = keys[child], keys[k]
        ids[k], ids[child] = ids[child], ids[k]
        k = child
    return key, cell, size


@njit(cache=True, nogil=True, inline="always")
def _marginal(i, neighbours, label, gain, w):
    inside = 0
    outside = 0
    for d in range(4):
        j = neighbours[i, d]
        if j >= 0:
            if label[j]:
                inside += 1
            else:
                outside += 1
    return gain[i] - w * (outside - inside)


@njit(cache=True, nogil=True)
def _take(i, neighbours, label, gain, w, candidate, current, keys, ids, size):
    """Cell i joins the option; its candidate neighbours' marginals rise: push them again."""
    label[i] = True
    candidate[i] = False
    for d in range(4):
        j = neighbours[i, d]
        if j >= 0 and candidate[j]:
            m = _marginal(j, neighbours, label, gain, w)
            current[j] = m
            size = _heap_push(keys, ids, size, -m, j)
    return size


@njit(cache=True, nogil=True)
def _seed_patch(seed, size, neighbours, gain, candidate):
    """Up to ``size`` candidate cells from ``seed`` outwards, each the best advantage next
    to the ones before (ties to the lower cell index)."""
    patch = np.empty(size, dtype=np.int64)
    patch[0] = seed
    taken = 1
    inside = {seed}
    keys = np.empty(4 * size, dtype=np.float64)
    ids = np.empty(4 * size, dtype=np.int64)
    ring = 0
    while taken < size:
        last = patch[taken - 1]
        for d in range(4):
            j = np.int64(neighbours[last, d])
            if j >= 0 and candidate[j] and j not in inside:
                ring = _heap_push(keys, ids, ring, -gain[j], j)
        while ring > 0 and ids[0] in inside:
            _, _, ring = _heap_pop(keys, ids, ring)
        if ring == 0:
            break
        _, j, ring = _heap_pop(keys, ids, ring)
        inside.add(j)
        patch[taken] = j
        taken += 1
    return patch[:taken]


@njit(cache=True, nogil=True)
def _best_seed(candidate, room, size, gain):
    """The candidate of the highest advantage with room for a patch of ``size`` cells
    around it (any candidate if none has); -1 if none is left."""
    best, best_roomy = -1, -1
    for i in range(candidate.shape[0]):
        if not candidate[i]:
            continue
        if best < 0 or gain[i] > gain[best]:
            best = i
        if room[i] >= size and (best_roomy < 0 or gain[i] > gain[best_roomy]):
            best_roomy = i
    return best_roomy if best_roomy >= 0 else best


@njit(cache=True, nogil=True)
def grow(candidates, count, frontier_only, label, neighbours, gain, w, min_cells):
    """Switch ``count`` of the ``candidates`` into the option (``label``, in place), one at
    a time, each the best marginal value given the ones before (its advantage ``gain`` less
    ``w`` per side to a cell out of the option, plus ``w`` per side to one in). With
    ``frontier_only`` only cells next to the option are taken while there are any; where
    none is left a new patch starts at the best candidate with room and grows to
    ``min_cells`` before any other cell is taken. Returns how many were placed."""
    n = label.shape[0]
    candidate = np.zeros(n, dtype=np.bool_)
    for i in candidates:
        candidate[i] = True
    start = candidates
    if frontier_only:
        touches = np.zeros(candidates.shape[0], dtype=np.bool_)
        for m in range(candidates.shape[0]):
            for d in range(4):
                j = neighbours[candidates[m], d]
                if j >= 0 and label[j]:
                    touches[m] = True
        start = candidates[touches]
    start_marginal = np.empty(start.shape[0], dtype=np.float64)
    for m in range(start.shape[0]):
        start_marginal[m] = _marginal(start[m], neighbours, label, gain, w)
    if start.shape[0] > count:
        # A marginal only rises as cells are taken (an edge less to pay, one more saved), so
        # the ``count`` best at the start are taken before any other start cell: only they
        # (and their ties) need a place in the heap.
        rank = start.shape[0] - count
        kth = np.partition(start_marginal, rank)[rank]
        best = start_marginal >= kth
        start, start_marginal = start[best], start_marginal[best]
    # The marginal each cell last entered the heap with: older entries are stale.
    current = np.empty(n, dtype=np.float64)
    keys = np.empty(start.shape[0] + 4 * count, dtype=np.float64)
    ids = np.empty(start.shape[0] + 4 * count, dtype=np.int64)
    size = 0
    for m in range(start.shape[0]):
        current[start[m]] = start_marginal[m]
        size = _heap_push(keys, ids, size, -start_marginal[m], start[m])
    room = np.empty(0, dtype=np.int64)  # per cell its region of candidates, once needed
    added = 0
    while added < count:
        if size == 0:
            if room.shape[0] == 0:
                patch = np.zeros(n, dtype=np.int64)
                sizes = patch_labels(np.flatnonzero(candidate), candidate, neighbours, patch)
                room = sizes[patch]
            seed = _best_seed(candidate, room, min(min_cells, count - added), gain)
            if seed < 0:
                break
            # The new patch grows to the minimum before any other cell is taken: else the
            # next cell may go to a better frontier elsewhere and leave the seed alone.
            for i in _seed_patch(seed, min(min_cells, count - added), neighbours, gain, candidate):
                size = _take(i, neighbours, label, gain, w, candidate, current, keys, ids, size)
                added += 1
            continue
        key, i, size = _heap_pop(keys, ids, size)
        if not candidate[i] or current[i] != -key:
            continue
        size = _take(i, neighbours, label, gain, w, candidate, current, keys, ids, size)
        added += 1
    return added
