"""Compact plans: the exact allocation clustered into patches, and what that gives up.

The allocation LP decides cell by cell, so where options tie it spreads them. A planner asks
for parks, neighbourhoods and business estates: for some options a boundary penalty (value
lost per km of edge between the option and its surroundings) and a minimum patch size.

Method, per option with a :class:`PatchRule` (in the order given), starting from the exact
unclustered optimum ``solution`` and its shadow prices:

1. **Price-parametric cut.** Each cell may switch between the option and its best *neutral*
   option (one that delivers no claim: keep). Under the exact prices the value advantage of
   the option in cell ``i`` is ``gain_i = a_i (v[i,o] + sum_k c[o,k] price(i,k)) - a_i
   v[i,neutral]``. Cells in another new use are left as they are. For one option against the
   rest at fixed prices, maximising ``sum gain_i y_i - edge_cost * (edges with y_i != y_j)``
   over binary ``y`` on the 4-neighbourhood is a minimum cut, solved exactly (PyMaxflow).
2. **Targets exactly as before.** The cells the exact optimum splits between options (at
   most about as many as there are binding target rows) keep their fractions and take no
   part. Within every cell group (cells in the same zone of every zoning, which share their
   prices) where a target row of the option binds, the option keeps exactly as many whole
   cells as the exact optimum gives it there (:func:`target_counts`): a price offset ``lam``
   per group is searched until the cut takes that many (the cut's set grows with ``lam``;
   Newton steps on the cut value, each cut over the cells not yet settled by the cuts
   before, :func:`_counted_cut`), and the last few cells are added greedily at the best
   marginal value, boundary included.
   Only the option and neutral options trade cells, so every such group delivers to every
   target row exactly what the exact optimum delivers: no rounding, and shortfalls add up
   over the provinces as they do in the exact optimum.
3. **Minimum patch size.** Patches (4-connected) of fewer cells than the minimum are
   returned to their neutral option, and the cells are placed again by growing the other
   patches of the same group at the best marginal value. A group whose option has fewer
   cells than one patch needs keeps one patch below the minimum (reported, never hidden).

4. **Cells no neutral option may take.** A single cell of an option where the rules allow no
   neutral option (reserved land: water storage with or without nature) cannot trade with
   keep. It swaps with a cell of the same group in its runner-up option (the allowed new use
   of highest value there) that lies next to a patch of the option: both options keep their
   count in every group, so every target row receives exactly the same (the swap's value
   change is part of the value given up). Of the candidates the best value change is taken.
5. **Single cells that can join a neighbour.** A single cell still left (typically reserved
   land where the swap of step 4 finds no partner) takes the option of a neighbouring patch
   when that option delivers at least as much of every claim (water storage joins the water
   storage with nature around it): no target row receives less, and a row that would pass an
   upper bound undoes the joins of that pair of options. Where no neighbour's option may
   take the cell, the cell takes a neighbour into its own option instead, if that
   neighbour is neutral (keep) or its patch keeps its minimum, and no target row receives
   less than in the exact optimum.

The unclustered optimum is an upper bound of the clustered plan's objective (the plan is a
feasible point of the same LP), so ``exact objective - plan objective`` is the value given up,
always >= 0.
Deterministic: fixed orders everywhere, ties to the lower cell index.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import cached_property

import maxflow
import numpy as np
from scipy import sparse

from engine import progress
from engine.errors import RuimtepuzzelError
from engine.paging import cell_slices
from engine.problem import Problem
from engine.solve.indices import index_type, option_type
from engine.solve.solution import Solution, allocation_totals

__all__ = [
    "Geometry",
    "PatchRule",
    "Compaction",
    "compact",
    "boundary_cost",
    "neighbour_counts",
    "grid_neighbours",
    "positions_among",
    "target_counts",
    "split_cells",
    "plan_x",
]

logger = logging.getLogger(__name__)

# Cuts at most in the search of a group's price offset. Each Newton step settles at least
# one cell, the guesses are as many as GUESS_MARGINS, and a search needs few (at most 19 in
# a national run, 7 of them guesses); 50 halvings reach the last bit.
SEARCH_CUTS = 50
# The count search's guesses (``_counted_cut``), in edge costs above the offset at which the
# need-th best cell would go in on its own, the next one after a guess that took too few:
# from the margin itself, then doubling from a sixteenth. Replayed from their graphs with
# the same cells: national 25 m, the 24 slowest searches 406 s against 522 s of Newton steps
# alone (524 s with guesses from half an edge cost); 100 m, all 152, 7.9 s against 10.5 s.
GUESS_MARGINS = (0.0, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0)
# Cells per slice of the neighbour table's build (:attr:`Geometry.neighbours`).
_NEIGHBOUR_SLICE = 1 << 22


@dataclass(frozen=True)
class Geometry:
    """Where the cells of a problem lie: ``flat[i]`` is cell i's position in a row-major grid of
    ``shape``; ``cell_km`` the side of a cell in km."""

    shape: tuple[int, int]
    flat: np.ndarray
    cell_km: float

    def __post_init__(self):
        flat = np.asarray(self.flat)
        if flat.ndim != 1 or (len(flat) and (flat.min() < 0 or flat.max() >= np.prod(self.shape))):
            raise RuimtepuzzelError(
                f"geometry: cell positions must index a grid of shape {self.shape}"
            )
        if len(flat) > 1 and np.any(np.diff(flat) <= 0):
            raise RuimtepuzzelError("geometry: cell positions must be increasing (row-major)")
        if not self.cell_km > 0:
            raise RuimtepuzzelError(f"geometry: cell_km = {self.cell_km}, expected > 0")

    @property
    def n_cells(self) -> int:
        return len(self.flat)

    @cached_property
    def neighbours(self) -> np.ndarray:
        """(N, 4) the cells left, right, above and below each cell, -1 where there is none
        (outside the grid or outside the cells of the problem: the sea, abroad)."""
        # int32 where the cells fit (any national grid): half the bytes a cell, and one
        # padded grid of cell numbers instead of an index, its padded copy and the four
        # columns stacked (120 bytes a cell at 100 m before, 38 now). The cells' places in
        # the padded grid slice by slice: for all cells at once they were 8 bytes a cell,
        # with as many again for each temporary (the write stage's peak at 25 m).
        ny, nx = self.shape
        kind = index_type(self.n_cells)
        padded = np.full((ny + 2) * (nx + 2), -1, dtype=kind)
        n, step = self.n_cells, _NEIGHBOUR_SLICE
        slices = [slice(lo, min(lo + step, n)) for lo in range(0, n, step)]
        for part in slices:
            padded[self._padded_places(part)] = np.arange(part.start, part.stop, dtype=kind)
        out = np.empty((self.n_cells, 4), dtype=kind)
        for part in slices:
            at = self._padded_places(part)
            for j, step in enumerate((-1, 1, -(nx + 2), nx + 2)):  # left, right, above, below
                out[part, j] = padded[at + step]
        return out

    def neighbours_of(self, cells: np.ndarray) -> np.ndarray:
        """:attr:`neighbours` of ``cells`` (cell indices) alone, looked up for them: an
        option's figures at 25 m without the whole grid's table (16 bytes a cell)."""
        return grid_neighbours(self.shape, self.flat, cells)

    def _padded_places(self, part: slice) -> np.ndarray:
        """The ``part`` of the cells' places in the grid padded by one cell on every side."""
        nx = self.shape[1]
        rows, cols = np.divmod(np.asarray(self.flat[part], dtype=np.int64), nx)
        return (rows + 1) * (nx + 2) + (cols + 1)

    def raster(self, values: np.ndarray, fill=0) -> np.ndarray:
        """Per-cell ``values`` as a grid of ``shape`` (``fill`` elsewhere)."""
        out = np.full(int(np.prod(self.shape)), fill, dtype=np.asarray(values).dtype)
        out[self.flat] = values
        return out.reshape(self.shape)


def grid_neighbours(shape: tuple[int, int], flat: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """(len(cells), 4) the cells left, right, above and below ``cells`` (indices into the
    ascending grid positions ``flat``), -1 where there is none among them; int32 where the
    indices fit, as :attr:`Geometry.neighbours`."""
    nx = shape[1]
    at = flat[cells]
    col = at % nx
    around = np.stack([at - 1, at + 1, at - nx, at + nx], axis=1)
    pos = np.clip(np.searchsorted(flat, around), 0, len(flat) - 1)
    found = flat[pos] == around
    found[:, 0] &= col > 0
    found[:, 1] &= col < nx - 1
    return np.where(found, pos, -1).astype(index_type(len(flat)), copy=False)


def positions_among(cells: np.ndarray, around: np.ndarray) -> np.ndarray:
    """``around`` (cell indices, -1 for none) as positions in ``cells``, -1 where not among
    them: a neighbour table of a set of cells over the set alone; int32 where they fit (the
    type the kernels are compiled for at install, :mod:`engine.solve.warmup`)."""
    kind = index_type(len(cells))
    if len(cells) == 0:
        return np.full(np.shape(around), -1, dtype=kind)
    if np.all(cells[1:] > cells[:-1]):  # ascending, as an option's cells: no sort
        at = np.clip(np.searchsorted(cells, around), 0, len(cells) - 1)
    else:
        sorter = np.argsort(cells, kind="stable")
        at = sorter[np.clip(np.searchsorted(cells, around, sorter=sorter), 0, len(cells) - 1)]
    return np.where((around >= 0) & (cells[at] == around), at, -1).astype(kind, copy=False)


@dataclass(frozen=True)
class PatchRule:
    """Compactness of one option: ``edge_cost`` is the objective's value lost per cell side
    between the option and anything else (the boundary penalty per km times ``cell_km``);
    ``min_cells`` the smallest patch, in cells (1: none)."""

    option: int
    min_cells: int = 1
    edge_cost: float = 0.0

    def __post_init__(self):
        if self.min_cells < 1:
            raise RuimtepuzzelError(f"patch rule of option {self.option}: min_cells must be >= 1")
        if not (np.isfinite(self.edge_cost) and self.edge_cost >= 0):
            raise RuimtepuzzelError(
                f"patch rule of option {self.option}: edge_cost = {self.edge_cost}, expected a "
                f"finite value >= 0"
            )


@dataclass
class Compaction:
    """The clustered plan and how it came about."""

    choice: np.ndarray  # (N,) the clustered plan: the dominant option per cell
    before: np.ndarray  # (N,) the unclustered plan (the exact optimum's dominant options)
    x: sparse.csr_matrix  # (N, O) the clustered plan: whole cells, the split ones as before
    changed_by: np.ndarray  # (N,) int: the rule whose step changed the cell, -1 unchanged
    rules: tuple[PatchRule, ...]
    offsets: dict = field(default_factory=dict)  # (option, group) -> price offset lam
    timings: dict = field(default_factory=dict)


def compact(
    problem: Problem, solution: Solution, geometry: Geometry, rules: list[PatchRule]
) -> Compaction:
    """Cluster the plan of ``solution`` (the exact optimum of ``problem``) under ``rules``;
    every other option that delivers a claim is placed the same way (a rule without penalty
    or minimum: the cut at the exact prices)."""
    if np.ndim(problem.area) and np.ptp(problem.area) > 0:
        raise RuimtepuzzelError(
            "compactness: the cells differ in area; patches are counted in cells of one size"
        )
    if geometry.n_cells != problem.n_cells:
        raise RuimtepuzzelError(
            f"geometry: {geometry.n_cells} cells, the problem has {problem.n_cells}"
        )
    seen = [r.option for r in rules]
    if len(set(seen)) != len(seen) or any(not 0 <= o < problem.n_options for o in seen):
        raise RuimtepuzzelError(
            f"patch rules: options {seen}; each must be an option index < {problem.n_options}, "
            f"and appear once"
        )
    neutral = _neutral_options(problem)
    if neutral.size and any(r.option in neutral for r in rules):
        raise RuimtepuzzelError(
            "patch rules: an option that delivers no claim (keep) is what other options "
            "cluster against; give it no rule"
        )
    # The plans in the fast solver's option type (int16), not int64: four of them and the
    # rule that changed each cell live through the stage (national 25 m: 1.7 GB less).
    choice = np.array(solution.choice, dtype=option_type(problem.n_options))
    exact_x = sparse.csr_matrix(solution.x)
    split = split_cells(exact_x)
    given = {r.option: r for r in rules}
    rules = [given.get(int(o), PatchRule(int(o))) for o in _new_uses(problem)]
    changed_by = np.full(problem.n_cells, -1, dtype=option_type(len(rules) + 1))
    result = Compaction(choice, choice.copy(), exact_x, changed_by, tuple(rules))
    if neutral.size == 0:
        return result
    best_neutral, neutral_value = _best_neutral(problem, neutral)
    is_neutral = np.zeros(problem.n_options, dtype=bool)
    is_neutral[neutral] = True
    price = _group_prices(problem, solution.prices)
    group = problem.groups.group
    members = _members(group, problem.groups.count)
    exact = _Exact(problem, exact_x, split)
    for index, rule in enumerate(rules):
        clock = time.perf_counter()
        target = target_counts(problem, result.before, rule.option)
        counted = _binding_groups(problem, solution, rule.option)
        while True:
            state = _OptionState(
                problem,
                geometry,
                rule,
                choice,
                target.copy(),
                price,
                neutral_value,
                is_neutral,
                members,
            )
            state.free &= ~split
            for g in state.groups_with_cells(counted):
                if counted[g]:
                    result.offsets[(rule.option, int(g))] = _cut_group(state, g)
                else:
                    _cut_free(state, g)
            _enforce_min_patch(state)
            trial = _apply(choice, state, best_neutral)
            short = exact.rows_off(trial, rule.option)
            more = _groups_of_rows(problem, short) & ~counted
            if not more.any():
                break
            # A free count left a row short of what the exact optimum gives it (or over an
            # upper bound): count the groups of those rows as well, and start again.
            counted |= more
        # The option's advantages and labels go before the next option's are made, and
        # before the steps after the last one (national 25 m: 0.7 GB).
        del state
        changed = trial != choice
        choice[:] = trial
        result.changed_by[changed] = index
        result.timings[problem.option_names[rule.option]] = time.perf_counter() - clock
        progress.advance(index + 1, len(rules), "uses compacted")
        logger.debug(
            "compact %s: %d cells moved, %d groups",
            problem.option_names[rule.option],
            int(changed.sum()),
            len(np.unique(group[changed])),
        )
    swapped = _swap_stuck(problem, geometry, choice, split, is_neutral, rules, members)
    result.changed_by[swapped] = len(rules)
    joined = _join_neighbours(problem, geometry, choice, exact, is_neutral, rules)
    result.changed_by[joined] = len(rules)
    result.x = plan_x(choice, exact_x, split)
    return result


def _swap_stuck(problem, geometry, choice, split, is_neutral, rules, members) -> np.ndarray:
    """Step 4 of the module docstring, in place on ``choice``; returns the cells swapped."""
    nbr = geometry.neighbours
    allowed = problem.allowed
    if allowed is None:  # keep is allowed everywhere: nothing is stuck
        return np.zeros(problem.n_cells, dtype=bool)
    value = problem.value
    group = problem.groups.group
    swapped = np.zeros(problem.n_cells, dtype=bool)

    def beside(cells, option, but=-1):
        """Per cell of ``cells``, its neighbours (other than ``but``) in ``option``."""
        around = nbr[cells]
        ok = (around >= 0) & (around != but)
        return np.sum(ok & (choice[np.where(ok, around, 0)] == option), axis=-1)

    for rule in rules:
        o = rule.option
        if rule.min_cells < 2:
            continue
        patch, sizes = patch_sizes(geometry, choice == o)
        single = np.flatnonzero((choice == o) & (sizes == 1)[patch] & ~split)
        # Whether a neutral option is allowed, of the single cells only: of every cell it
        # read all of the (paged) allowed options at the compaction's peak (national 25 m).
        stuck = single[~allowed[single][:, is_neutral].any(axis=1)]
        problem.release_cells()
        for s in stuck:
            others = np.flatnonzero(allowed[s] & ~is_neutral)
            others = others[others != o]
            if len(others) == 0:
                continue
            r = int(others[np.argmax(value[s, others])])
            # t: the group's cells of r that may take o, next to another patch of o, whose
            # r-neighbours each keep another r-neighbour; s must then touch r (not only t).
            cells = members[group[s]]
            t_ok = (choice[cells] == r) & allowed[cells, o] & ~split[cells] & ~swapped[cells]
            t_ok &= beside(cells, o, but=s) > 0
            candidates = cells[t_ok]
            if len(candidates) == 0:
                continue
            around = nbr[candidates]
            theirs = (around >= 0) & (choice[np.where(around >= 0, around, 0)] == r)
            r_count = beside(np.where(theirs, around, 0), r)
            s_theirs = [j for j in nbr[s] if j >= 0 and choice[j] == r]
            s_touch = len(s_theirs) - np.isin(candidates, s_theirs)
            fine = (s_touch > 0) & np.all(~theirs | (r_count >= 2), axis=1)
            if not fine.any():
                continue
            keep_ok = candidates[fine]
            change = (
                value[keep_ok, o].astype(np.float64)
                - value[keep_ok, r]
                + float(value[s, r])
                - float(value[s, o])
            )
            t = int(keep_ok[np.argmax(change)])
            choice[s], choice[t] = r, o
            swapped[[s, t]] = True
    # Paged values (``--memory``, :mod:`engine.paging`): the pages the swaps read go back.
    problem.release_cells()
    return swapped


class _Exact:
    """The exact optimum as the plan is held to it: the cells it splits (they stay as they
    are) and what it supplies to every target row; and what a trial plan supplies, found in
    one pass over the cells without building the plan's allocation (the compaction tries
    many plans, each a few cells apart)."""

    def __init__(self, problem: Problem, x: sparse.csr_matrix, split: np.ndarray):
        from engine.solve.dual import dual_structure

        self.problem = problem
        self.split = split
        self.supply = allocation_totals(problem, x)[1]
        self._structure = dual_structure(problem)
        self._kept = _split_rows(x, split)

    def plan_supply(self, choice: np.ndarray) -> np.ndarray:
        """Per target row what ``plan_x(choice, x, split)`` supplies: the same bits as
        ``allocation_totals`` of that plan."""
        from engine.solve.compact_kernels import plan_area

        kept, structure = self._kept, self._structure
        assigned = plan_area(
            choice,
            self.split,
            kept.indptr,
            kept.indices,
            kept.data.astype(np.float64),
            structure.group,
            structure.area,
            structure.n_groups,
            self.problem.n_options,
        )
        return structure.supply(assigned)

    def rows_off(self, choice: np.ndarray, options) -> np.ndarray:
        """The rows of ``options``' claims the plan ``choice`` leaves off (_rows_off)."""
        return _rows_off(self.problem, self.plan_supply(choice), self.supply, options)

    def switch_if_kept(self, choice: np.ndarray, cells, option: int, options) -> bool:
        """Give ``cells`` ``option`` in the plan ``choice`` (in place) if it then leaves no
        row of ``options``' claims off; else leave ``choice`` as it was. Returns whether
        they switched. (In place: a copy of the whole plan per trial cost more than the
        trial's pass over the cells.)"""
        before = np.array(choice[cells], copy=True)
        choice[cells] = option
        if len(self.rows_off(choice, options)):
            choice[cells] = before
            return False
        return True


def _join_neighbours(problem, geometry, choice, exact: _Exact, is_neutral, rules) -> np.ndarray:
    """Step 5 of the module docstring, in place on ``choice``; returns the cells that joined."""
    split = exact.split
    nbr = geometry.neighbours
    valid = nbr >= 0
    allowed = problem.allowed
    value = problem.value
    c = problem.contribution
    joined = np.zeros(problem.n_cells, dtype=bool)
    for rule in rules:
        o = rule.option
        if rule.min_cells < 2:
            continue
        patch, sizes = patch_sizes(geometry, choice == o)
        singles = np.flatnonzero((choice == o) & (sizes == 1)[patch] & ~split)
        by_pair: dict[int, list[int]] = {}
        for s in singles:
            around = np.unique(choice[nbr[s][valid[s]]])
            ok = [
                int(r)
                for r in around
                if r != o
                and not is_neutral[r]
                and (allowed is None or allowed[s, r])
                and np.all(c[r] >= c[o])
            ]
            if ok:
                r = max(ok, key=lambda r: (value[s, r], -r))
                by_pair.setdefault(r, []).append(int(s))
        for r, cells in sorted(by_pair.items()):
            if exact.switch_if_kept(choice, cells, r, [r]):
                joined[cells] = True
        joined |= _pull_neighbour(problem, geometry, choice, exact, rules, o, is_neutral)
    return joined


def _pull_neighbour(problem, geometry, choice, exact: _Exact, rules, o, is_neutral) -> np.ndarray:
    """The rest of step 5: a single cell of ``o`` that could join no neighbour takes one
    neighbour into its option instead (a neutral cell, or a cell whose own patch keeps its
    minimum), the cheapest first, when every target row still receives what the exact
    optimum gives it."""
    split = exact.split
    nbr = geometry.neighbours
    minimum = {r.option: r.min_cells for r in rules}
    pulled = np.zeros(problem.n_cells, dtype=bool)
    patches: dict[int, tuple] = {}  # option -> its patches, until a pull changes them

    def patch_of(r: int, t: int) -> int:
        if r not in patches:
            patches[r] = patch_sizes(geometry, choice == r)
        patch, sizes = patches[r]
        return int(sizes[patch[t]])

    own, own_sizes = patch_sizes(geometry, choice == o)
    for s in np.flatnonzero((choice == o) & (own_sizes[own] == 1) & ~split):
        candidates = []
        for t in nbr[s][nbr[s] >= 0]:
            r = int(choice[t])
            if r == o or split[t] or (problem.allowed is not None and not problem.allowed[t, o]):
                continue
            if not is_neutral[r]:
                if r not in minimum:
                    continue
                around = [j for j in nbr[t] if j >= 0 and choice[j] == r]
                # t leaves its patch whole: its other cells keep a neighbour and the minimum.
                if patch_of(r, t) - 1 < minimum[r] or any(
                    sum(1 for q in nbr[j] if q >= 0 and choice[q] == r and q != t) == 0
                    for j in around
                ):
                    continue
            candidates.append((problem.value[t, r] - problem.value[t, o], int(t), r))
        for _, t, r in sorted(candidates):
            if not exact.switch_if_kept(choice, t, o, [r, o]):
                continue
            pulled[t] = True
            patches.pop(r, None)
            break
    return pulled


def _members(group: np.ndarray, count: int) -> list[np.ndarray]:
    """The cells of every group, in increasing order."""
    order = np.argsort(group, kind="stable").astype(index_type(len(group)), copy=False)
    return np.split(order, np.cumsum(np.bincount(group, minlength=count))[:-1])


def split_cells(x) -> np.ndarray:
    """(N,) the cells an allocation splits between options (no option takes all of it)."""
    return sparse.csr_matrix(x).max(axis=1).toarray().ravel() < 1.0


def plan_x(choice: np.ndarray, exact_x: sparse.csr_matrix, split: np.ndarray) -> sparse.csr_matrix:
    """(N, O) the plan: the whole cells of ``choice``, the ``split`` cells as in ``exact_x``
    (their nonzero entries), in canonical form.

    Laid out directly: the sum of a one-hot matrix and the split rows, as sparse matrices,
    held four matrices of the grid's size at once (the compaction's peak at 25 m)."""
    n, n_options = exact_x.shape
    kept = _split_rows(exact_x, split)
    lengths = np.where(split, np.diff(kept.indptr), 1)
    kind = index_type(max(int(lengths.sum()), n_options))
    indptr = np.zeros(n + 1, dtype=kind)
    np.cumsum(lengths, out=indptr[1:])
    del lengths
    indices = np.empty(int(indptr[-1]), dtype=kind)
    data = np.empty(int(indptr[-1]))
    whole = ~split
    at = indptr[:-1][whole]
    indices[at] = choice[whole]
    data[at] = 1.0
    del at, whole
    rows = np.flatnonzero(split)
    counts = np.diff(kept.indptr)[rows]
    to = np.repeat(indptr[rows] - kept.indptr[rows], counts) + np.arange(kept.nnz)
    indices[to] = kept.indices
    data[to] = kept.data
    out = sparse.csr_matrix((data, indices, indptr), shape=(n, n_options))
    out.sort_indices()
    return out


def _split_rows(x: sparse.csr_matrix, split: np.ndarray) -> sparse.csr_matrix:
    """The rows of ``x`` of the ``split`` cells (their nonzero entries), every other row
    empty: selected entry by entry, not by a product with a diagonal (two copies of ``x``)."""
    x = sparse.csr_matrix(x)
    keep = np.repeat(split, np.diff(x.indptr)) & (x.data != 0)
    kind = index_type(max(int(keep.sum()), x.shape[1]))
    before = np.zeros(x.nnz + 1, dtype=kind)  # kept entries before each entry
    np.cumsum(keep, out=before[1:])
    indptr = before[x.indptr]
    del before
    return sparse.csr_matrix((x.data[keep], x.indices[keep], indptr), shape=x.shape)


def target_counts(problem: Problem, choice: np.ndarray, option: int) -> np.ndarray:
    """(G,) cells of ``option`` per cell group in the exact optimum's plan ``choice`` (split
    cells by their dominant option: they stay as they are, so the whole cells of the option
    are held exactly)."""
    return np.bincount(problem.groups.group[choice == option], minlength=problem.groups.count)


def _new_uses(problem: Problem) -> np.ndarray:
    return np.flatnonzero(np.any(problem.contribution > 0, axis=1))


def boundary_cost(geometry: Geometry, plan, rules: list[PatchRule]) -> float:
    """The boundary penalty of a plan (one option per cell (N,), or an allocation (N, O)):
    per rule, its edge cost times ``sum |x[i,o] - x[j,o]|`` over the pairs of neighbouring
    cells, for whole cells the sides between the option and the other cells."""
    nbr = geometry.neighbours[:, [1, 3]]  # each pair once: right and lower neighbour
    a, d = np.nonzero(nbr >= 0)
    b = nbr[a, d]
    total = 0.0
    for r in rules:
        if np.ndim(plan) == 1:
            column = (np.asarray(plan) == r.option).astype(np.float64)
        else:
            column = sparse.csc_matrix(plan)[:, r.option].toarray().ravel()
        total += r.edge_cost * float(np.abs(column[a] - column[b]).sum())
    return total


def _neutral_options(problem: Problem) -> np.ndarray:
    """The options that deliver no claim: trading cells with them changes no target row."""
    return np.flatnonzero(~np.any(problem.contribution > 0, axis=1))


def _best_neutral(problem: Problem, neutral: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell the best allowed neutral option (-1 if none) and its value a_i v[i,n]
    (-inf if none). Ties to the lower option index, as everywhere."""
    best = np.empty(problem.n_cells, dtype=option_type(problem.n_options))
    best_value = np.empty(problem.n_cells)
    # Slice by slice: the neutral options' values of all cells at once, as float64 with
    # their mask and pick, were 5 GB at national 25 m, the compaction's peak then.
    for part in cell_slices(problem.n_cells, _NEIGHBOUR_SLICE):
        value = problem.value[part, neutral].astype(np.float64)
        if problem.allowed is not None:
            value = np.where(problem.allowed[part, neutral], value, -np.inf)
        pick = np.argmax(value, axis=1)
        part_value = value[np.arange(len(value)), pick]
        best[part] = np.where(np.isfinite(part_value), neutral[pick], -1)
        best_value[part] = part_value * _area(problem, part)
        # Paged values (``--memory``, :mod:`engine.paging`): a slice's pages at a time
        # resident, not the grid's (national 25 m: 4 GB of them).
        problem.release_cells(part)
    return best, best_value


def _area(problem: Problem, part: slice):
    """The hectares of a slice of cells: the scalar itself where all cells have it (the
    same products, without a grid-sized array of it)."""
    return problem.area if np.ndim(problem.area) == 0 else problem.area[part]


def _group_prices(problem: Problem, prices: list) -> np.ndarray:
    """(G, K): the price of every claim in every cell group, summed over the zonings."""
    groups = problem.groups
    out = np.zeros((groups.count, problem.n_claims))
    for l in range(problem.n_zonings):
        out += np.asarray(prices[l], dtype=np.float64)[groups.zones[:, l]]
    return out


class _OptionState:
    """One option's labels (in the option or not) while its rule is applied."""

    def __init__(
        self, problem, geometry, rule, choice, target, price, neutral_value, is_neutral, members
    ):
        o = rule.option
        self.rule = rule
        self.geometry = geometry
        self.nbr = geometry.neighbours
        self.group = problem.groups.group
        self.members = members
        option_price = price @ problem.contribution[o]
        # -inf where no neutral option is allowed. Slice by slice (no grid-sized float64
        # temporaries), the same operations on every cell.
        self.gain = np.empty(problem.n_cells)
        allowed = np.ones(problem.n_cells, dtype=bool)
        for part in cell_slices(problem.n_cells, _NEIGHBOUR_SLICE):
            own = _area(problem, part) * (
                problem.value[part, o].astype(np.float64) + option_price[self.group[part]]
            )
            self.gain[part] = own - neutral_value[part]
            if problem.allowed is not None:
                allowed[part] = problem.allowed[part, o]
            # Paged values (``--memory``): one slice's pages resident at a time. Let go at
            # the end, all of the values' pages were (national 25 m: 4.5 GB, the peak).
            problem.release_cells(part)
        self.label = choice == o
        # Cells that may trade between the option and a neutral one; the rest keep theirs.
        self.free = allowed & np.isfinite(neutral_value) & (self.label | is_neutral[choice])
        self.target = target

    def groups_with_cells(self, counted: np.ndarray) -> np.ndarray:
        """The groups where the option has cells now or is to have them, or may have them
        (a free count)."""
        present = np.bincount(self.group[self.label], minlength=len(self.target))
        free = np.bincount(self.group[self.free], minlength=len(self.target))
        return np.flatnonzero((self.target > 0) | (present > 0) | (~counted & (free > 0)))

    def count(self, g: int) -> int:
        return int(np.count_nonzero(self.label[self.members[g]]))

    def free_cells(self, g: int) -> np.ndarray:
        """Group g's free cells, in increasing order."""
        cells = self.members[g]
        return cells[self.free[cells]]


def _cut_group(state: _OptionState, g: int) -> float:
    """Set the labels of group g's free cells: the minimum cut at the price offset that gives
    the group its target count of cells, completed greedily. Returns the offset."""
    w = state.rule.edge_cost
    cells = state.free_cells(g)
    if len(cells) == 0:
        return 0.0
    # A cell whose advantage exceeds 4 edge costs plus any offset tried takes the same side in
    # every cut (persistency), so only the band near the margin enters the graph.
    fixed_count = state.count(g) - int(np.count_nonzero(state.label[cells]))
    need = int(state.target[g]) - fixed_count
    band = _band(state.gain[cells], w, need)
    inside = cells[state.gain[cells] > band]
    state.label[cells] = False
    state.label[inside] = True
    cut_cells = cells[np.abs(state.gain[cells]) <= band]
    need -= len(inside)
    if need <= 0:
        return 0.0
    if len(cut_cells) == 0:
        _grow(state, cells[~state.label[cells]], need, frontier_only=False)
        return 0.0
    reach = band + 4 * w + _tolerance(state.gain[cut_cells])
    low_labels, low = _counted_cut(_CutGraph.of(state, cut_cells), need, reach)
    state.label[cut_cells] = low_labels
    # The rest at the best marginal value, from all free cells: the count may need cells
    # below the band (rounding up), and at a jump of the cut several tie at once.
    _grow(state, cells[~state.label[cells]], need - int(low_labels.sum()), frontier_only=False)
    return low


def _counted_cut(graph: _CutGraph, need: int, reach: float) -> tuple[np.ndarray, float]:
    """The largest minimum cut of ``graph`` over the offsets in (-reach, reach) that takes at
    most ``need`` cells (all out at -reach, all in at +reach), and its offset: the cut that
    takes ``need`` cells where one does, else the one just below the offset where the cut
    jumps past ``need``. Where the minimum cut at that offset is unique, the cut a bisection
    over the offset finds; where cells tie, a minimum cut there, not always the same."""
    low, high = -reach, reach
    if need >= graph.n:
        return np.ones(graph.n, dtype=bool), high
    # The cut's set grows with the offset (the largest minimum cut is nested), so the cells
    # in at ``low`` are in at every offset tried after it and those out at ``high`` are out:
    # each cut is over the cells still open between the two, the others held.
    low_labels = np.zeros(graph.n, dtype=bool)
    taken_low = 0
    open_ = np.arange(graph.n)
    # Until a cut takes more than the count, the offset is guessed from the advantages: the
    # search needs few of its cells (1-3 % of a band at 25 m), and a cut near the margin
    # costs a fraction of one through the middle of the band, where the flow crosses whole
    # patches (national 25 m: 0.4-1.2 s against 0.9-7 s over the same band). A guess that
    # takes too few takes them for good, and the next guess reaches further.
    guesses = list(GUESS_MARGINS)
    for _ in range(SEARCH_CUTS):
        mid = _margin_offset(graph, need - taken_low, guesses[0]) if guesses else None
        if mid is None or not low < mid < high:
            guesses, mid = [], graph.balance()
        if not low < mid < high:
            # All open cells out and all in cost the same at an end of the bracket (they
            # took none of them at ``low`` and all at ``high``): the jump is there.
            if mid >= high:
                low = high
            break
        labels = graph.solve(mid)
        k = int(labels.sum())
        if not guesses and k in (0, graph.n):
            # At the balance one of all out and all in is a minimum cut where they cost the
            # same: no set in between is ever better, the cut jumps from all out to all in at
            # ``mid`` (it returns either, as rounding falls).
            low = mid
            break
        if taken_low + k <= need:
            low = mid
            low_labels[open_[labels]] = True
            taken_low += k
            if taken_low == need:
                break
            keep = ~labels
            guesses = guesses[1:]
        else:
            high = mid
            keep = labels
            # The open cells are now those of this cut: Newton steps over them (the next
            # offset is where all open cells in and all out cost the same, a step on the
            # concave cut value: the cut there takes some of them, or it jumps from none to
            # all).
            guesses = []
        if 0 < k < graph.n:
            graph = graph.restrict(keep, labels)
            open_ = open_[keep]
    return low_labels, float(low)


def _margin_offset(graph: _CutGraph, need: int, margin: float) -> float:
    """The offset at which ``need`` of the cells would go in each on its own (its advantage
    against its held neighbours), raised by ``margin`` edge costs for the open neighbours a
    cell leaves out (with ``need`` 0, of the best cell)."""
    alone = graph.gain - graph.w * (graph.fixed_out - graph.fixed_in)
    rank = graph.n - max(need, 1)
    return -float(np.partition(alone, rank)[rank]) + margin * graph.w


def _cut_free(state: _OptionState, g: int):
    """Set the labels of group g's free cells by the minimum cut at the exact prices, with no
    count: where no target row of the option binds, its cells are worth their own value.
    The count it reaches is the group's target for the minimum patch step."""
    w = state.rule.edge_cost
    cells = state.free_cells(g)
    gain = state.gain[cells]
    # Beyond 4 edge costs a cell's side is the same in every cut (persistency).
    reach = 4.0 * w + _tolerance(gain)
    state.label[cells] = gain > reach
    cut_cells = cells[np.abs(gain) <= reach]
    if len(cut_cells) and w > 0:
        state.label[cut_cells] = _CutGraph.of(state, cut_cells).solve(0.0)
    state.target[g] = state.count(g)


def _binding_groups(problem: Problem, solution: Solution, option: int) -> np.ndarray:
    """(G,) whether a target row over the group, of a claim the option serves, has a price:
    there the option's count is held (a free count could pass or miss a binding target)."""
    groups = problem.groups
    index = problem.row_index()
    prices = np.asarray(solution.row_prices)
    served = np.flatnonzero(problem.contribution[option] > 0)
    out = np.zeros(groups.count, dtype=bool)
    for l in range(problem.n_zonings):
        rows = index[l][groups.zones[:, l]][:, served]  # (G, claims served)
        priced = (rows >= 0) & (np.abs(prices[np.maximum(rows, 0)]) > 0)
        out |= priced.any(axis=1)
    return out


def _apply(choice: np.ndarray, state: _OptionState, best_neutral: np.ndarray) -> np.ndarray:
    """``choice`` with the option's labels: cells in take it, cells out take their best
    neutral option."""
    o = state.rule.option
    out = choice.copy()
    was = choice == o
    out[state.label & ~was] = o
    leave = was & ~state.label
    out[leave] = best_neutral[leave]
    return out


def _rows_off(problem: Problem, supply: np.ndarray, exact: np.ndarray, option) -> np.ndarray:
    """Rows of the claims of ``option`` (one or several) that a plan supplying ``supply``
    leaves short of both their target and the exact optimum's supply, or over both their
    upper bound and that supply."""
    rows = problem.rows
    tol = 1e-6 * problem.units.area
    served = (problem.contribution[np.atleast_1d(option)][:, rows.claim] > 0).any(axis=0)
    short = rows.has_lower & (supply < np.fmin(rows.lower, exact) - tol)
    over = rows.has_upper & (supply > np.fmax(rows.upper, exact) + tol)
    return np.flatnonzero(served & (short | over))


def _groups_of_rows(problem: Problem, rows_idx: np.ndarray) -> np.ndarray:
    groups = problem.groups
    out = np.zeros(groups.count, dtype=bool)
    rows = problem.rows
    for r in rows_idx:
        out |= groups.zones[:, rows.zoning[r]] == rows.zone[r]
    return out


def _band(gain: np.ndarray, w: float, need: int) -> float:
    """The half-width of the advantages that enter the cut: wide enough that the cells above
    it are in every cut of the bracket, and no more cells than the target above it."""
    band = 8.0 * w + 2.0 * _tolerance(gain)
    if need >= len(gain):
        return band
    # The (need + 1)-th largest advantage: a partition finds it without sorting the group.
    rank = len(gain) - 1 - max(need, 0)
    next_best = np.partition(gain, rank)[rank]
    if next_best > band:
        # More cells clear the band than the group may have (prices not quite exact): widen
        # it to include them, so the cut decides.
        band = float(next_best) + _tolerance(gain)
    return band


def _tolerance(gain: np.ndarray) -> float:
    finite = gain[np.isfinite(gain)]
    scale = float(np.max(np.abs(finite))) if finite.size else 1.0
    return 1e-9 * max(scale, 1e-300)


@dataclass
class _CutGraph:
    """A cut over some cells, every other cell's label fixed: per cell its advantage and its
    edges to fixed neighbours in and out of the option (unary terms), and the edges between
    the cells (pairwise terms), each of cost ``w``."""

    gain: np.ndarray
    fixed_in: np.ndarray
    fixed_out: np.ndarray
    edge_a: np.ndarray
    edge_b: np.ndarray
    w: float

    @property
    def n(self) -> int:
        return len(self.gain)

    @classmethod
    def of(cls, state: _OptionState, cells: np.ndarray) -> _CutGraph:
        """The cut over ``cells``, the other cells at their labels in ``state``."""
        from engine.solve.compact_kernels import cut_terms

        fixed_in, fixed_out, edge_a, edge_b = cut_terms(
            np.asarray(cells, dtype=np.int64), state.nbr, state.label
        )
        return cls(state.gain[cells], fixed_in, fixed_out, edge_a, edge_b, state.rule.edge_cost)

    def restrict(self, keep: np.ndarray, labels: np.ndarray) -> _CutGraph:
        """The cut over the cells in ``keep``, the others held at ``labels``."""
        k = int(keep.sum())
        local = np.full(self.n, -1, dtype=np.int64)
        local[keep] = np.arange(k)
        a, b = self.edge_a, self.edge_b
        keep_a, keep_b = keep[a], keep[b]
        # An edge to a cell now held becomes a unary term of its open end.
        a_alone, b_alone = keep_a & ~keep_b, keep_b & ~keep_a

        def count(mask_a, mask_b):
            ends = np.concatenate([local[a[mask_a]], local[b[mask_b]]])
            return np.bincount(ends, minlength=k)

        both = keep_a & keep_b
        return _CutGraph(
            self.gain[keep],
            self.fixed_in[keep] + count(a_alone & labels[b], b_alone & labels[a]),
            self.fixed_out[keep] + count(a_alone & ~labels[b], b_alone & ~labels[a]),
            local[a[both]],
            local[b[both]],
            self.w,
        )

    def balance(self) -> float:
        """The offset at which all cells in and all out cost the same (no edge between them
        is cut in either)."""
        w = self.w
        return float(np.sum(w * self.fixed_out - self.gain) - w * np.sum(self.fixed_in)) / self.n

    def solve(self, offset: float) -> np.ndarray:
        """Labels (True: in the option) of the minimum cut with the advantage raised by
        ``offset``; of the minimum cuts the one with the most cells in."""
        graph = maxflow.Graph[float](self.n, len(self.edge_a))
        nodes = graph.add_nodes(self.n)
        # Cost of staying out: an edge to every fixed neighbour in the option; of going in:
        # an edge to every fixed neighbour out of it, less the advantage.
        cost_out = self.w * self.fixed_in
        diff = (self.w * self.fixed_out - self.gain - offset) - cost_out
        # The source side is "in": cutting a node's source link puts it out, at cost_out.
        graph.add_grid_tedges(nodes, np.maximum(-diff, 0.0), np.maximum(diff, 0.0))
        if len(self.edge_a) and self.w > 0:
            caps = np.full(len(self.edge_a), self.w)
            graph.add_edges(self.edge_a, self.edge_b, caps, caps)
        graph.maxflow()
        return ~graph.get_grid_segments(nodes)


def _grow(state: _OptionState, candidates: np.ndarray, count: int, *, frontier_only: bool):
    """Switch ``count`` of the ``candidates`` into the option, one at a time, each the best
    marginal value given the ones before (boundary included). With ``frontier_only`` only
    cells next to the option are taken while there are any, else the best candidate starts a
    new patch (``compact_kernels.grow``)."""
    from engine.solve.compact_kernels import grow

    if count <= 0:
        return
    added = grow(
        np.asarray(candidates, dtype=np.int64),
        count,
        frontier_only,
        state.label,
        state.nbr,
        state.gain,
        float(state.rule.edge_cost),
        state.rule.min_cells,
    )
    if added < count:
        logger.warning(
            "compact: option %d placed %d of %d cells (no free cell left in the group)",
            state.rule.option,
            added,
            count,
        )


def patch_sizes(geometry: Geometry, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4-connected patches of the cells in ``mask``: (patch of every cell, 0 outside; cells
    per patch, index 0 the cells outside). Patches are numbered by their first cell in
    row-major order, as a raster labelling does."""
    from engine.solve.compact_kernels import patch_labels

    mask = np.asarray(mask, dtype=bool)
    # NumPy's zeros are pages the system zeroes when first touched: the few an option's
    # cells lie on, not the whole grid's.
    patch = np.zeros(geometry.n_cells, dtype=np.int64)
    sizes = patch_labels(np.flatnonzero(mask), mask, geometry.neighbours, patch)
    return patch, sizes


def _enforce_min_patch(state: _OptionState):
    """Return patches below the minimum to neutral and regrow the groups' other patches."""
    m = state.rule.min_cells
    if m <= 1:
        return
    patch, sizes = patch_sizes(state.geometry, state.label)
    small = state.label & (sizes < m)[patch] & state.free
    if not small.any():
        return
    state.label[small] = False
    for g in np.unique(state.group[small]):
        deficit = int(state.target[g]) - state.count(g)
        pool = state.free_cells(g)
        pool = pool[~state.label[pool]]
        _grow(state, pool, deficit, frontier_only=True)


def neighbour_counts(geometry: Geometry, mask: np.ndarray) -> np.ndarray:
    """Per cell in ``mask``: its 4-neighbours (cells of the problem) outside ``mask``."""
    nbr = geometry.neighbours
    valid = nbr >= 0
    out = valid & ~mask[np.where(valid, nbr, 0)]
    return np.where(mask, out.sum(axis=1), 0)
