"""Solving the allocation LP: ``solve(problem, method=...)``.

Backends:

- ``fast``: the project's exact solver (prices found on the cells with Numba, the few cells
  tied at the optimum settled by a small HiGHS LP, optimality certified by a dual bound).
- ``highs``, ``cbc``: the reference, the LP written out in PuLP.
- ``auto``: whichever of ``fast`` and ``highs`` a cost estimate says is cheaper
  (:mod:`engine.solve.choice`): ``fast`` but for tiny problems; the estimate and the choice
  are logged and kept in ``Solution.auto``.
"""

from __future__ import annotations

import os

# OpenMP threads that spin while they wait for work (libgomp's default) take the cores from
# everything else on a busy machine: on a loaded 2-core box a national solve took 6-10 s with
# the parallel kernels against 2 s serially; waiting passively, as long as serially. A
# parallel pass lasts milliseconds, so waking a thread costs nothing measurable. libgomp reads
# this when numba first loads it, which is after ``import engine`` (this package is imported
# there); a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from engine.errors import RuimtepuzzelError  # noqa: E402
from engine.problem import Problem  # noqa: E402
from engine.solve.solution import (  # noqa: E402
    GapWarning,
    InfeasibleError,
    Solution,
    WarmStartError,
)

__all__ = ["solve", "Solution", "InfeasibleError", "GapWarning", "WarmStartError", "METHODS"]

METHODS = ("auto", "fast", "highs", "cbc")

# The options each backend takes. ``auto`` takes all of them: it honours what the chosen
# backend can use (a gap tolerance), checks a warm start either way, and ignores the rest.
OPTIONS = {
    "fast": ("prices", "gap_tolerance", "max_repairs", "search", "chunk_cells", "client"),
    "highs": ("gap_tolerance",),
    "cbc": ("gap_tolerance",),
}


def solve(problem: Problem, method: str = "auto", **options) -> Solution:
    """Solve ``problem`` to proven optimality; see DESIGN.md for the LP.

    ``options``: ``prices=`` warm-starts the fast backend from the prices of a similar
    problem, ``search=False`` repairs straight from those prices (no price search),
    ``max_repairs=`` caps its repair rounds, ``chunk_cells=`` runs its price stage over chunks
    of that many cells, on the workers of ``client=`` (a Dask client) if given;
    ``gap_tolerance=`` (every backend) is the relative gap below which a result counts as
    optimal. With ``auto``, a warm start the
    reference will not use is still checked, and ``max_repairs`` does not apply to it. Hard
    targets that cannot be met raise ``InfeasibleError`` naming the claim, the zone and the
    missing hectares.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"solve() takes an engine.Problem, got {type(problem).__name__}")
    if method not in METHODS:
        raise RuimtepuzzelError(f"method={method!r}: choose one of {', '.join(METHODS)}")
    takes = sorted(set().union(*OPTIONS.values())) if method == "auto" else OPTIONS[method]
    refused = sorted(set(options) - set(takes))
    if refused:
        raise TypeError(f"method={method!r} takes the options {list(takes)}, not {refused}")
    from engine.solve.feasibility import check_feasible

    # Targets the test passed within its tolerance but the land cannot meet exactly come back
    # moved onto what it can: every backend then solves an LP that has a solution.
    problem = check_feasible(problem)
    chosen = None
    if method == "auto":
        from engine.solve.choice import choose

        chosen = choose(problem)
        method = chosen["method"]
        if method != "fast":
            if "prices" in options:
                from engine.solve.fast import initial_prices

                # A hint the reference has no use for, but prices of another problem are still
                # a mistake worth saying, whichever backend the size picks.
                initial_prices(problem, options.pop("prices"))
            for fast_only in ("max_repairs", "search", "chunk_cells", "client"):
                options.pop(fast_only, None)
    if method == "fast":
        from engine.solve.fast import solve_fast

        solution = solve_fast(problem, **options)
    else:
        from engine.solve.reference import solve_reference

        solution = solve_reference(problem, method, **options)
    solution.auto = chosen
    return solution
