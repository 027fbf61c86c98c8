"""Re-solving a neighbour of a solved problem from its optimum: only what the change can move.

A rule lifted (some cells gain or lose options) or a target moved between two zones leaves
most cells where they were: under the old optimum's prices every cell far from a tie keeps
its best option. So the fast solver repairs straight from those prices, as it does the
praatkaart's variants (:func:`engine.solve.fast.solve_fast` with ``search=False``), starting
where the solved problem's repair ended (its last LP's free cells and HiGHS's basis there,
:class:`engine.solve.fast.RepairEnd`) with the cells the change moves joined; everything else
is fixed at its best option. The smoothed price stage, most of a warm re-solve's time, is
skipped, and HiGHS starts its first LP a few pivots from its optimum. A moved target
switches no cell under the old prices: the cells of its zone nearest to giving or taking its
hectares (the zone's supply of the claim as its price moves) join instead, given the targets
before the move.

Exactness does not rest on that choice of cells. Every repair round prices *all* cells, and
a fixed cell that the new prices make improving joins the free ones; the result carries the
fast solver's certificate, the dual bound of its prices over the whole problem against the
objective of its allocation. When that certificate fails (the repair did not settle within
``max_repairs`` rounds, or the gap is above ``gap_tolerance``), or the repair frees more
cells than :meth:`engine.solve.fast.Near.free_limit` allows (its LPs would cost more than a
full re-solve's), the problem is solved again in full, warm-started from the same prices
(its aggregated LP from the solved problem's), and that answer is returned instead.
"""

from __future__ import annotations

import logging

from engine.problem import Problem
from engine.solve.fast import Near, initial_prices, solve_fast
from engine.solve.feasibility import check_feasible
from engine.solve.solution import Solution, gaps_muted

__all__ = ["resolve_near"]

logger = logging.getLogger(__name__)


def resolve_near(
    problem: Problem,
    prices,
    before=None,
    *,
    end=None,
    targets=None,
    changed=None,
    gap_tolerance: float = 1e-9,
    max_repairs: int = 40,
    fallback: bool = True,
    tested: bool = False,
) -> Solution:
    """The optimum of ``problem``, a neighbour of a problem solved with ``prices`` (per
    zoning or in row order), re-solved around those prices.

    ``before``: the solved problem's (N, O) allowed options where they differ from
    ``problem``'s (None: the same, e.g. only targets moved); ``end``: its solution's
    ``repair_end`` (None: the repair starts from the cells near a tie); ``targets``: the
    solved problem's (lower, upper) per zoning where they differ from ``problem``'s (None:
    the same), whose moved hectares free the cells nearest to giving or taking them;
    ``changed``: the cells whose options differ between ``before`` and ``problem``, where
    the caller knows them (None: found by comparing every cell's). The solution's
    ``timings['local']`` says how it was found: ``'restricted'`` (certified on the whole
    problem) or ``'full'`` (the full warm re-solve answered: too many cells switch, the
    repair freed more cells than the full re-solve's LPs hold, or the certificate failed;
    ``timings['local_reason']`` says which). ``fallback=False`` returns the restricted
    answer whatever its certificate says (its ``status`` and ``gap`` tell). Hard targets
    that cannot be met raise ``InfeasibleError``, as in :func:`engine.solve`; ``tested=True``
    skips that test where the caller knows it would pass ``problem`` unchanged (a
    relaxation, with the same targets, of a problem that passed it so: every allocation of
    that one is one of this).
    """
    if not tested:
        # As engine.solve: unmet hard targets raise, targets a hair out of reach are moved.
        problem = check_feasible(problem)
    start = initial_prices(problem, prices)
    near = Near(
        before,
        end,
        targets,
        changed=changed,
        switch_share=None if fallback else 1.0,
        limit_growth=fallback,
    )
    with gaps_muted():
        # A restricted answer that is not certified is replaced below, not reported.
        sol = solve_fast(
            problem,
            prices=start,
            search=False,
            near=near,
            gap_tolerance=gap_tolerance,
            max_repairs=max_repairs,
        )
    if "search_reason" in sol.timings:
        logger.debug("restricted re-solve not used (%s): searched", sol.timings["search_reason"])
        return _answered_in_full(sol, sol.timings["search_reason"])
    if sol.status == "optimal" or not fallback:
        sol.timings["local"] = "restricted"
        return sol
    return _full(problem, start, near, gap_tolerance, sol.timings.get("stopped", sol.status))


def _full(problem, start, near, gap_tolerance, reason) -> Solution:
    """The full warm re-solve, when the restricted one is not the way (``reason``): its
    aggregated LP starts where the solved problem's ended (``near.end``)."""
    logger.debug("restricted re-solve not used (%s): full warm re-solve", reason)
    return _answered_in_full(
        solve_fast(problem, prices=start, near=near, gap_tolerance=gap_tolerance), reason
    )


def _answered_in_full(sol: Solution, reason: str) -> Solution:
    sol.timings["local"] = "full"
    sol.timings["local_reason"] = reason
    return sol
