"""Solving the allocation LP: ``solve(problem, method=...)``.

Backends:

- ``fast``: the project's exact solver (prices found on the cells with Numba, the few cells
  tied at the optimum settled by a small HiGHS LP, optimality certified by a dual bound).
- ``highs``, ``cbc``: the reference, the LP written out in PuLP.
- ``auto``: ``fast``, except for tiny problems where the reference is as quick.
"""

from __future__ import annotations

from engine.problem import Problem
from engine.solve.solution import GapWarning, InfeasibleError, Solution, WarmStartError

__all__ = ["solve", "Solution", "InfeasibleError", "GapWarning", "WarmStartError", "METHODS"]

METHODS = ("auto", "fast", "highs", "cbc")

# Below this many (cell, option) pairs PuLP + HiGHS answers in well under a second.
TINY = 2_000


def solve(problem: Problem, method: str = "auto", **options) -> Solution:
    """Solve ``problem`` to proven optimality; see DESIGN.md for the LP.

    ``options`` go to the fast backend (e.g. ``prices=`` to warm-start from the prices of a
    similar problem, ``gap_tolerance=``); with ``auto``, a warm start that falls to the
    reference is dropped. Hard targets that cannot be met raise
    ``InfeasibleError`` naming the claim, the zone and the missing hectares.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"solve() takes an engine.Problem, got {type(problem).__name__}")
    if method not in METHODS:
        raise ValueError(f"method={method!r}: choose one of {', '.join(METHODS)}")
    from engine.solve.feasibility import check_feasible

    check_feasible(problem)
    if method == "auto":
        method = "highs" if problem.n_cells * problem.n_options <= TINY else "fast"
        if method != "fast" and "prices" in options:
            from engine.solve.fast import initial_prices

            # A hint the reference has no use for, but prices of another problem are still
            # a mistake worth saying, whichever backend the size picks.
            initial_prices(problem, options.pop("prices"))
    if method == "fast":
        from engine.solve.fast import solve_fast

        return solve_fast(problem, **options)
    if options:
        raise TypeError(f"method={method!r} takes no options, got {sorted(options)}")
    from engine.solve.reference import solve_reference

    return solve_reference(problem, method)
