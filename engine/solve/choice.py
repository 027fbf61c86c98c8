"""Which backend ``solve(method="auto")`` takes: the one a cost estimate says is cheaper.

Both estimates are CPU seconds on the 2-core dev machine, from the figures of
``benchmarks/test_rows.py`` and ``test_solve.py`` (benchmarks/README.md, "Issue 15: targets at
any level"). HiGHS through PuLP costs about the same per allowed (cell, option) pair whatever
the targets: 2,000 to 20,000 cells x 8 options with 60 to 8,000 rows took 0.5 to 8 s, 30-50 us
a pair, most of it PuLP writing the model. The fast solver costs a start-up, a bounded number
of passes over the pairs (prices), and the repair LP over the cells of small zones, which
HiGHS solves without cell rows (20,000 cells all in 4,000 zones: a third of HiGHS's time).
What a problem makes the estimate pick is logged and kept in ``Solution.auto``.
"""

from __future__ import annotations

import logging

import numpy as np

from engine.problem import Problem

log = logging.getLogger(__name__)

HIGHS_PER_PAIR = 3e-5
FAST_START = 0.04
FAST_PER_PAIR = 2e-7  # about a hundred passes of ~2 ns a pair, the price stage's budget
FAST_LP_PER_PAIR = 1e-5  # the repair LP over small zones' cells, per pair


def allowed_pairs(problem: Problem, cells: np.ndarray | None = None) -> int:
    """Allowed (cell, option) pairs, of all cells or of ``cells``."""
    if problem.allowed is None:
        n = problem.n_cells if cells is None else len(cells)
        return n * problem.n_options
    allowed = problem.allowed if cells is None else problem.allowed[cells]
    return int(np.count_nonzero(allowed))


def estimate(problem: Problem) -> dict:
    """Estimated CPU seconds of each backend, and the one ``auto`` takes."""
    from engine.solve.dual import dual_structure
    from engine.solve.fast import local_cells, local_rows

    local = local_rows(problem)
    pairs = allowed_pairs(problem)
    local_pairs = 0
    if local.any():
        cells, _ = local_cells(problem, dual_structure(problem), local)
        local_pairs = allowed_pairs(problem, cells)
    fast = FAST_START + FAST_PER_PAIR * pairs + FAST_LP_PER_PAIR * local_pairs
    highs = HIGHS_PER_PAIR * pairs
    chosen = "fast" if fast <= highs else "highs"
    return {
        "method": chosen,
        "fast_estimate_s": fast,
        "highs_estimate_s": highs,
        "pairs": pairs,
        "local_rows": int(local.sum()),
        "local_pairs": local_pairs,
    }


def choose(problem: Problem) -> dict:
    """:func:`estimate`, logged (at debug level: report.json and the manifest record it)."""
    chosen = estimate(problem)
    log.debug(
        "auto: %s (estimated %.3g s fast, %.3g s HiGHS; %d pairs, %d rows over small zones)",
        chosen["method"],
        chosen["fast_estimate_s"],
        chosen["highs_estimate_s"],
        chosen["pairs"],
        chosen["local_rows"],
    )
    return chosen
