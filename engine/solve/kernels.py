"""Numba kernels: the per-cell passes of the fast solver.

Every pass works over fixed blocks of ``BLOCK`` cells and adds the blocks' partial sums in
block order. The block size does not depend on the number of threads, so every result is
the same bit for bit on one core or many.

Conventions shared by the kernels:

- ``adj[g, o]`` is what the prices add to option o in a cell of group g:
  ``sum_k c[o, k] * price(g, k)``; the adjusted value of option o in cell i is
  ``value[i, o] + adj[group[i], o]``.
- ``allowed`` is an (N, O) bool array, or a (1, 1) array when every option is allowed
  (``has_allowed`` False) so that the kernels need one signature.
- ``area`` is an (N,) array, or a (1,) array for a uniform area.
- Ties are broken towards the lowest option index (strict ``>`` when scanning options).

Each kernel is compiled twice, serial and parallel, and the cell count picks one: thread
start-up costs more than a small pass, and on a busy machine (a sweep's workers) threads
that wait for each other cost far more. The two builds are two functions with their own
names (``_best_options_serial``, ``_best_options_parallel``): numba's on-disk cache keys a
function by its name and source, not by its flags, so two builds of one function would
share a cache entry and whichever was compiled first would serve both (numba issue #6845).
Their threads wait passively between passes (``OMP_WAIT_POLICY``, set in ``engine.solve``).
"""

from __future__ import annotations

import types

import numpy as np
from numba import njit, prange

BLOCK = 1 << 15


@njit(cache=True)
def n_blocks(n):
    return (n + BLOCK - 1) // BLOCK


@njit(cache=True)
def _ordered_sum(parts):
    # A plain loop in a non-parallel function: numba never turns it into a parallel
    # reduction, so the order of addition is fixed.
    total = 0.0
    for p in parts:
        total += p
    return total


@njit(cache=True, inline="always")
def _area(area, i):
    return area[0] if area.shape[0] == 1 else area[i]


def _best_options(value, allowed, has_allowed, group, area, adj):
    """Per cell the best option under the prices, its margin over the runner-up, and the
    area-weighted sum of best adjusted values per block (the dual bound's main term).

    ``margin`` is +inf for a cell with a single allowed option.
    """
    n, n_opt = value.shape
    nb = n_blocks(n)
    choice = np.empty(n, dtype=np.int16)
    margin = np.empty(n, dtype=np.float64)
    block_sum = np.zeros(nb, dtype=np.float64)
    for b in prange(nb):
        start = b * BLOCK
        stop = min(n, start + BLOCK)
        acc = 0.0
        for i in range(start, stop):
            g = group[i]
            best = -np.inf
            second = -np.inf
            arg = -1
            for o in range(n_opt):
                if has_allowed and not allowed[i, o]:
                    continue
                u = value[i, o] + adj[g, o]
                if u > best:
                    second = best
                    best = u
                    arg = o
                elif u > second:
                    second = u
            choice[i] = arg
            margin[i] = best - second
            acc += _area(area, i) * best
        block_sum[b] = acc
    return choice, margin, _ordered_sum(block_sum)


@njit(cache=True, nogil=True, inline="always")
def near_best_into(value, allowed, has_allowed, i, adj_row, window, u, options):
    """Into ``options``: the allowed options of cell ``i`` whose adjusted value (into ``u``,
    -inf where not allowed) is within ``window`` of its best."""
    n_opt = value.shape[1]
    best = -np.inf
    for o in range(n_opt):
        if has_allowed and not allowed[i, o]:
            u[o] = -np.inf
            continue
        u[o] = np.float64(value[i, o]) + adj_row[o]
        if u[o] > best:
            best = u[o]
    limit = best - window
    for o in range(n_opt):
        options[o] = np.isfinite(u[o]) and u[o] >= limit


def _near_best(cells, window, value, allowed, has_allowed, group, adj):
    """(M, O) bool: per given cell the allowed options within its ``window`` of its best
    adjusted value (``window`` one for all, or one a cell, as ``area``)."""
    m, n_opt = cells.shape[0], value.shape[1]
    options = np.empty((m, n_opt), dtype=np.bool_)
    for b in prange(n_blocks(m)):
        u = np.empty(n_opt, dtype=np.float64)
        for j in range(b * BLOCK, min(m, (b + 1) * BLOCK)):
            i = cells[j]
            w = _area(window, j)
            near_best_into(value, allowed, has_allowed, i, adj[group[i]], w, u, options[j])
    return options


def _left_out(cells, options, value, allowed, has_allowed, group, adj, tolerance):
    """Per given cell (with the ``options`` an LP had): whether its best adjusted value
    beats every one of those by more than ``tolerance``, and its best option (the first of
    equals)."""
    m, n_opt = cells.shape[0], value.shape[1]
    beats = np.zeros(m, dtype=np.bool_)
    best_option = np.zeros(m, dtype=np.int64)
    for b in prange(n_blocks(m)):
        for j in range(b * BLOCK, min(m, (b + 1) * BLOCK)):
            i = cells[j]
            g = group[i]
            best, arg, taken = -np.inf, 0, -np.inf
            for o in range(n_opt):
                u = -np.inf
                if not has_allowed or allowed[i, o]:
                    u = np.float64(value[i, o]) + adj[g, o]
                if u > best:
                    best, arg = u, o
                if options[j, o] and u > taken:
                    taken = u
            if best > taken + tolerance:
                beats[j] = True
                best_option[j] = arg
    return beats, best_option


def _smoothed_dual_terms(value, allowed, has_allowed, group, area, adj, tau, n_groups):
    """The entropy-smoothed dual over the given cells.

    Returns ``F = sum_i a_i * tau * log sum_o exp(u[i,o] / tau)`` and
    ``S[g, o] = sum_(i in g) a_i * softmax(u[i] / tau)[o]``, the soft assignment whose
    contributions are the gradient of F in the prices.
    """
    n, n_opt = value.shape
    nb = n_blocks(n)
    f_part = np.zeros(nb, dtype=np.float64)
    s_part = np.zeros((nb, n_groups, n_opt), dtype=np.float64)
    inv_tau = 1.0 / tau
    for b in prange(nb):
        start = b * BLOCK
        stop = min(n, start + BLOCK)
        u = np.empty(n_opt, dtype=np.float64)
        acc = 0.0
        for i in range(start, stop):
            g = group[i]
            top = -np.inf
            for o in range(n_opt):
                if has_allowed and not allowed[i, o]:
                    u[o] = -np.inf
                    continue
                u[o] = value[i, o] + adj[g, o]
                if u[o] > top:
                    top = u[o]
            z = 0.0
            for o in range(n_opt):
                scaled = (u[o] - top) * inv_tau
                # exp(-40) is below a double's precision next to the best option's 1:
                # skipping it saves most of the exponentials of a cell near a tie.
                if scaled < -40.0:
                    u[o] = 0.0
                else:
                    u[o] = np.exp(scaled)
                    z += u[o]
            a = _area(area, i)
            acc += a * (top + tau * np.log(z))
            w = a / z
            for o in range(n_opt):
                if u[o] != 0.0:
                    s_part[b, g, o] += w * u[o]
        f_part[b] = acc
    s = np.zeros((n_groups, n_opt), dtype=np.float64)
    for b in range(nb):
        s += s_part[b]
    return _ordered_sum(f_part), s


def _assigned_area(choice, selected, group, area, n_groups, n_opt):
    """``A[g, o]``: hectares of the selected cells in group g that take option o, and the
    area-weighted value they realise is computed separately (see ``assigned_value``)."""
    n = choice.shape[0]
    nb = n_blocks(n)
    part = np.zeros((nb, n_groups, n_opt), dtype=np.float64)
    for b in prange(nb):
        start = b * BLOCK
        stop = min(n, start + BLOCK)
        for i in range(start, stop):
            if selected[i]:
                part[b, group[i], choice[i]] += _area(area, i)
    out = np.zeros((n_groups, n_opt), dtype=np.float64)
    for b in range(nb):
        out += part[b]
    return out


def _assigned_value(value, choice, selected, area):
    """``sum_i a_i v[i, choice[i]]`` over the selected cells."""
    n = choice.shape[0]
    nb = n_blocks(n)
    part = np.zeros(nb, dtype=np.float64)
    for b in prange(nb):
        start = b * BLOCK
        stop = min(n, start + BLOCK)
        acc = 0.0
        for i in range(start, stop):
            if selected[i]:
                acc += _area(area, i) * value[i, choice[i]]
        part[b] = acc
    return _ordered_sum(part)


def _allocation_parts(value, indptr, indices, data, group, area, n_groups):
    """For an allocation in CSR form, per block of cells: ``sum_i a_i sum_o v[i,o] x[i,o]``,
    the hectares per (group, option), from which every target row's supply follows, and the
    value per group (what each zone realises, without a per-cell array). Their sums over the
    blocks, in block order, are :func:`allocation_sums`'s: the cells may come in slices of
    whole blocks, each slice's partials the same."""
    n, n_opt = value.shape
    nb = n_blocks(n)
    obj_part = np.zeros(nb, dtype=np.float64)
    area_part = np.zeros((nb, n_groups, n_opt), dtype=np.float64)
    value_part = np.zeros((nb, n_groups), dtype=np.float64)
    for b in prange(nb):
        start = b * BLOCK
        stop = min(n, start + BLOCK)
        acc = 0.0
        for i in range(start, stop):
            a = _area(area, i)
            g = group[i]
            for j in range(indptr[i], indptr[i + 1]):
                o = indices[j]
                v = a * value[i, o] * data[j]
                acc += v
                value_part[b, g] += v
                area_part[b, g, o] += a * data[j]
        obj_part[b] = acc
    return obj_part, area_part, value_part


@njit(cache=True)
def allocation_sums(obj_part, area_part, value_part):
    """The partials of :func:`_allocation_parts` added up in block order: the objective's
    value term, the hectares per (group, option), the value per group."""
    assigned = np.zeros(area_part.shape[1:], dtype=np.float64)
    by_group = np.zeros(value_part.shape[1], dtype=np.float64)
    for b in range(area_part.shape[0]):
        assigned += area_part[b]
        by_group += value_part[b]
    return _ordered_sum(obj_part), assigned, by_group


@njit(cache=True, nogil=True)
def joined_free(cells, options, more_cells, more_options, order):
    """The free cells ``cells`` (ascending, each once) with ``options`` (M, O), joined by
    ``more_cells`` with ``more_options`` taken in ``order`` (ascending cells, any repeated):
    every cell once, ascending, with the options any of its rows has. One merge, O(M + m):
    sorting the M + m rows again and or-reducing them at every repair round was 5 % of the
    analysis's re-solves (national 100 m)."""
    n, m, n_opt = cells.shape[0], order.shape[0], options.shape[1]
    out_cells = np.empty(n + m, dtype=np.int64)
    out_options = np.zeros((n + m, n_opt), dtype=np.bool_)
    i = j = 0
    k = -1
    while i < n or j < m:
        if j == m or (i < n and cells[i] <= more_cells[order[j]]):
            cell, row, source = cells[i], i, options
            i += 1
        else:
            cell, row, source = more_cells[order[j]], order[j], more_options
            j += 1
        if k < 0 or out_cells[k] != cell:
            k += 1
            out_cells[k] = cell
        for o in range(n_opt):
            if source[row, o]:
                out_options[k, o] = True
    if k + 1 == n + m:
        return out_cells, out_options
    # Not views of the larger buffers: the free cells may outlive the repair (its end).
    return out_cells[: k + 1].copy(), out_options[: k + 1].copy()


# Below this many cells a pass runs on one thread (read at every call, so a test can force
# either build on any problem).
PARALLEL_CELLS = 200_000


def _build(function, variant: str, **flags):
    """``function`` compiled under its own name ``<name>_<variant>``: its own cache entry."""
    clone = types.FunctionType(
        function.__code__,
        function.__globals__,
        f"{function.__name__}_{variant}",
        function.__defaults__,
        function.__closure__,
    )
    clone.__qualname__ = f"{function.__qualname__}_{variant}"
    clone.__doc__ = function.__doc__
    # nogil: the kernels touch no Python object, and a thread that compiles the next kernel
    # (engine.solve.warmup) works while they run.
    return njit(cache=True, nogil=True, **flags)(clone)


class _BySize:
    """A kernel in its serial and its parallel build; the cell count of the first argument
    picks one once the parallel build is ready.

    Both builds give the same result bit for bit, so a large pass runs on the serial build
    until the parallel one is loaded from numba's cache or compiled (``parallel_ready``, set
    by :mod:`engine.solve.warmup`, which the first such pass starts in a thread): the first
    run on a machine does not wait for parallel builds it can do without."""

    def __init__(self, function):
        self.serial = _build(function, "serial")
        self.parallel = _build(function, "parallel", parallel=True)
        self.parallel_ready = False
        self.__name__ = function.__name__.lstrip("_")
        self.__doc__ = function.__doc__

    def __call__(self, *args):
        if args[0].shape[0] < PARALLEL_CELLS:
            return self.serial(*args)
        if not self.parallel_ready:
            from engine.solve import warmup

            warmup.in_background()
            return self.serial(*args)
        return self.parallel(*args)

    def __repr__(self) -> str:
        return f"<kernel {self.__name__}: serial and parallel builds>"


best_options = _BySize(_best_options)
smoothed_dual_terms = _BySize(_smoothed_dual_terms)
assigned_area = _BySize(_assigned_area)
assigned_value = _BySize(_assigned_value)
allocation_parts = _BySize(_allocation_parts)
near_best = _BySize(_near_best)
left_out = _BySize(_left_out)
SOLVER_KERNELS = (
    best_options,
    smoothed_dual_terms,
    assigned_area,
    assigned_value,
    allocation_parts,
    near_best,
    left_out,
)
