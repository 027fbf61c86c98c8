"""Re-solving a neighbour of a solved problem from its optimum: only what the change can move.

A rule lifted (some cells gain or lose options) or a target moved between two zones leaves
most cells where they were: under the old optimum's prices every cell far from a tie keeps
its best option. So the repair of the fast solver (:func:`engine.solve.fast.repair`) starts
at once from those prices, with the free cells being the ones the change touched and the
ones near a tie under the old prices (each with its options near its best); everything else is fixed
at its best option. The smoothed price stage, most of a warm re-solve's time, is skipped.

Exactness does not rest on that choice of cells. Every repair round prices *all* cells, and
a fixed cell that the new prices make improving joins the free ones; the result carries the
fast solver's certificate, the dual bound of its prices over the whole problem against the
objective of its allocation. When that certificate fails (the repair did not settle within
``max_repairs`` rounds, or the gap is above ``gap_tolerance``) the problem is solved again
in full, warm-started from the same prices, and that answer is returned instead.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from engine.problem import Problem
from engine.solve.dual import dual_structure, price_cells
from engine.solve.fast import (
    TAU_FINE,
    _near_best,
    initial_prices,
    local_cells,
    local_rows,
    min_free,
    near_ties,
    repair,
    solve_fast,
    tie_window,
    value_scale,
)
from engine.solve.feasibility import check_feasible
from engine.solve.solution import GapWarning, Solution

__all__ = ["resolve_near"]

logger = logging.getLogger(__name__)


def resolve_near(
    problem: Problem,
    prices,
    before: np.ndarray | None = None,
    *,
    gap_tolerance: float = 1e-9,
    max_repairs: int = 40,
    fallback: bool = True,
) -> Solution:
    """The optimum of ``problem``, a neighbour of a problem solved with ``prices`` (per
    zoning or in row order), re-solved around those prices.

    ``before``: the solved problem's (N, O) allowed options where they differ from
    ``problem``'s (None: the same, e.g. only targets moved). The solution's
    ``timings['local']`` says how it was found: ``'restricted'`` (certified on the whole
    problem) or ``'full'`` (the full warm re-solve answered: too many cells switch, or the
    certificate failed). ``fallback=False`` returns the restricted answer whatever its
    certificate says (its ``status`` and ``gap`` tell). Hard targets that cannot be met
    raise ``InfeasibleError``, as in :func:`engine.solve`.
    """
    clock = time.perf_counter()
    # As engine.solve: unmet hard targets raise, targets a hair out of reach are moved.
    problem = check_feasible(problem)
    structure = dual_structure(problem)
    scale = value_scale(problem)
    start = initial_prices(problem, prices)
    priced = price_cells(problem, structure, start)
    window = tie_window(problem, TAU_FINE * scale)
    local = local_rows(problem)
    free = near_ties(problem, structure, priced, window, minimum=min_free(problem)).join(
        *local_cells(problem, structure, local)
    )
    switching, options = _switching(problem, structure, priced, before, window)
    if len(switching) > SWITCH_SHARE * problem.n_cells and fallback:
        return _full(problem, start, gap_tolerance, f"{len(switching)} cells switch")
    free = free.join(switching, options)
    timings = {"setup": time.perf_counter() - clock, "local_free": int(len(free.cells))}
    with warnings.catch_warnings():
        # A restricted answer that is not certified is replaced below, not reported.
        warnings.simplefilter("ignore", GapWarning)
        sol = repair(
            problem,
            structure,
            priced,
            free,
            scale,
            local=local,
            clock=time.perf_counter(),
            timings=timings,
            gap_tolerance=gap_tolerance,
            max_repairs=max_repairs,
        )
    if sol.status == "optimal" or not fallback:
        sol.timings["local"] = "restricted"
        return sol
    return _full(problem, start, gap_tolerance, sol.status)


# Beyond this share of the cells switching under the old prices, the prices must move far
# and the repair from them takes many rounds over a large LP: the smoothed price stage of the
# full re-solve gets there sooner. National 250 m, CPU restricted against full: 5 % of the
# cells switch (edge_homes_next_to_towns) 2.2 s against 6.2 s, 11 % (urban_homes_inside_towns)
# 3.5 s against 6.7 s, 22 % (new_nature_in_the_network) 14.0 s against 6.9 s.
SWITCH_SHARE = 0.15


def _switching(problem, structure, priced, before, window):
    """The cells whose best option under the old prices is another than it was (an option
    lifted beats it, or it was taken away), each with the options near its new best and its
    old best: the cells a change of rules moves, as ``(cells, options)``. A cell whose best
    stays keeps it unless the prices move, and then the repair frees it."""
    nothing = np.zeros(0, dtype=np.int64), np.zeros((0, problem.n_options), dtype=bool)
    if before is None:
        return nothing
    now = np.ones_like(before) if problem.allowed is None else problem.allowed
    changed = np.flatnonzero((before != now).any(axis=1))
    if len(changed) == 0:
        return nothing
    values = problem.value[changed].astype(np.float64)
    values += structure.adjustment(priced.prices)[structure.group[changed]]
    old = np.argmax(np.where(before[changed], values, -np.inf), axis=1)
    moves = old != priced.choice[changed]
    cells, old = changed[moves], old[moves]
    options = _near_best(problem, structure, priced.prices, cells, window)
    # The old best, where it is still allowed: the LP may keep the cell as it was.
    options[np.arange(len(cells)), old] |= now[cells, old]
    return cells, options


def _full(problem, start, gap_tolerance, reason) -> Solution:
    """The full warm re-solve, when the restricted one is not the way (``reason``)."""
    logger.info("restricted re-solve not used (%s): full warm re-solve", reason)
    full = solve_fast(problem, prices=start, gap_tolerance=gap_tolerance)
    full.timings["local"] = "full"
    full.timings["local_reason"] = reason
    return full
