"""Small sparse LPs through highspy, for the steps that need an exact simplex solve.

The fast solver's repair step and the feasibility test build their LPs as sparse matrices
and hand them to HiGHS in one call; going through PuLP would cost more than the solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
from scipy import sparse


def _swallow_banner() -> None:
    """HiGHS prints its banner on C-level stdout at the first Highs() of a process, before any
    option can be set (also PuLP's, and once per sweep worker): make that first one with
    file descriptor 1 on /dev/null, so stdout carries only what the CLI says."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_swallow_banner()

INF = highspy.kHighsInf


@dataclass
class LPResult:
    status: str  # 'optimal', 'infeasible', or HiGHS's own words
    x: np.ndarray
    row_dual: np.ndarray  # d objective / d row bound (minimisation convention)
    objective: float
    col_status: np.ndarray  # (columns,) int8 HighsBasisStatus where the simplex ended
    row_status: np.ndarray  # (rows,) int8


def solve_lp(
    cost: np.ndarray,
    matrix: sparse.spmatrix,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    col_lower: np.ndarray,
    col_upper: np.ndarray,
    *,
    tolerance: float = 1e-10,
    basis: tuple[np.ndarray, np.ndarray] | None = None,
) -> LPResult:
    """Minimise ``cost @ x`` s.t. ``row_lower <= matrix @ x <= row_upper``, col bounds.

    Single-threaded dual simplex without presolve, with tight tolerances: the result must
    be reproducible bit for bit and precise enough for a 1e-9 certificate. ``basis``
    (column and row statuses, as :class:`LPResult` gives them) starts the simplex there;
    HiGHS completes it to a basis if it is not one. A start is only a hint: where HiGHS
    does not settle from it (status 'unknown' on a sampled national variant's repair LP),
    the LP is solved again from scratch.
    """
    matrix = sparse.csc_matrix(matrix)
    lp = highspy.HighsLp()
    lp.num_col_ = matrix.shape[1]
    lp.num_row_ = matrix.shape[0]
    lp.col_cost_ = np.ascontiguousarray(cost, dtype=np.float64)
    lp.col_lower_ = _f64(col_lower)
    lp.col_upper_ = _f64(col_upper)
    lp.row_lower_ = _f64(row_lower)
    lp.row_upper_ = _f64(row_upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data.astype(np.float64)

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("solver", "simplex")
    h.setOptionValue("primal_feasibility_tolerance", tolerance)
    h.setOptionValue("dual_feasibility_tolerance", tolerance)
    h.setOptionValue("random_seed", 0)
    # The repair LP has thousands of columns with the same coefficients (a kind of cell
    # moving to the same option); presolve spends seconds comparing them and finds nothing
    # that the dual simplex does not handle as bounds in a fraction of that. The other LPs
    # given here (the feasibility test over classes of cells) are small and already reduced.
    h.setOptionValue("presolve", "off")
    h.passModel(lp)
    if basis is not None:
        start = highspy.HighsBasis()
        start.col_status = [_STATUS[s] for s in basis[0]]
        start.row_status = [_STATUS[s] for s in basis[1]]
        start.alien = True
        h.setBasis(start)
    h.run()
    model_status = h.getModelStatus()
    status = h.modelStatusToString(model_status).lower()
    if model_status == highspy.HighsModelStatus.kOptimal:
        status = "optimal"
    elif model_status == highspy.HighsModelStatus.kInfeasible:
        status = "infeasible"
    elif basis is not None:
        return solve_lp(
            cost, matrix, row_lower, row_upper, col_lower, col_upper, tolerance=tolerance
        )
    solution = h.getSolution()
    ended = h.getBasis()
    return LPResult(
        status=status,
        x=np.asarray(solution.col_value, dtype=np.float64),
        row_dual=np.asarray(solution.row_dual, dtype=np.float64),
        objective=float(h.getInfo().objective_function_value),
        col_status=np.array([int(s) for s in ended.col_status], dtype=np.int8),
        row_status=np.array([int(s) for s in ended.row_status], dtype=np.int8),
    )


_STATUS = {int(s): s for s in highspy.HighsBasisStatus.__members__.values()}


def _f64(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64)


def lower_bounds(values: np.ndarray) -> np.ndarray:
    """Our 'no bound' (NaN) as HiGHS's minus infinity."""
    return np.where(np.isnan(values), -INF, values)


def upper_bounds(values: np.ndarray) -> np.ndarray:
    """Our 'no bound' (NaN) as HiGHS's plus infinity."""
    return np.where(np.isnan(values), INF, values)
