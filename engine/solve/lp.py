"""Small sparse LPs through highspy, for the steps that need an exact simplex solve.

The fast solver's repair step and the feasibility test build their LPs as sparse matrices
and hand them to HiGHS in one call; going through PuLP would cost more than the solve.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import highspy
import numpy as np
from scipy import sparse

from engine.paging import trim_heap


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


log = logging.getLogger(__name__)

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
    devex: bool = False,
) -> LPResult:
    """Minimise ``cost @ x`` s.t. ``row_lower <= matrix @ x <= row_upper``, col bounds.

    Single-threaded dual simplex without presolve, with tight tolerances: the result must
    be reproducible bit for bit and precise enough for a 1e-9 certificate. ``basis``
    (column and row statuses, as :class:`LPResult` gives them) starts the simplex there;
    HiGHS completes it to a basis if it is not one. A start is only a hint: where HiGHS
    does not settle from it (status 'unknown' on a sampled national variant's repair LP),
    the LP is solved again from scratch.

    ``devex`` prices the dual simplex by devex weights rather than HiGHS's choice (dual
    steepest edge), for a start far from a basis: the exact steepest-edge weights of such a
    start cost more than the iterations they save (the first repair LP from the
    aggregated optimum, national 100 m: rank deficient by 11,934 of 25,043 rows; 4.4 s CPU
    with steepest edge, 0.8 s with devex, same objective). Either choice is deterministic.
    """
    matrix = sparse.csc_matrix(matrix)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("solver", "simplex")
    h.setOptionValue("primal_feasibility_tolerance", tolerance)
    h.setOptionValue("dual_feasibility_tolerance", tolerance)
    h.setOptionValue("random_seed", 0)
    if devex:
        h.setOptionValue("simplex_dual_edge_weight_strategy", _DEVEX)
    # The repair LP has thousands of columns with the same coefficients (a kind of cell
    # moving to the same option); presolve spends seconds comparing them and finds nothing
    # that the dual simplex does not handle as bounds in a fraction of that. The other LPs
    # given here (the feasibility test over classes of cells) are small and already reduced.
    h.setOptionValue("presolve", "off")
    # The arrays themselves, not a HighsLp: its fields copy each array once more on the way.
    passed = h.passModel(
        matrix.shape[1],
        matrix.shape[0],
        matrix.nnz,
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        _f64(cost),
        _f64(col_lower),
        _f64(col_upper),
        _f64(row_lower),
        _f64(row_upper),
        matrix.indptr.astype(np.int32),
        matrix.indices.astype(np.int32),
        _f64(matrix.data),
        np.zeros(matrix.shape[1], dtype=np.int32),  # every column continuous
    )
    # A warning (an entry below HiGHS's small-matrix-value dropped, a bound taken for
    # infinite) leaves an LP HiGHS solves: only an error stops here.
    if passed == highspy.HighsStatus.kError:
        raise ValueError(f"HiGHS refused the LP: {passed}")
    if basis is not None:
        start = highspy.HighsBasis()
        # highspy takes a basis as a list of its enum members only: a lookup of the numbers
        # in one numpy take, where a Python loop over them was 44 ms at 562,141 columns.
        start.col_status = _members(basis[0])
        start.row_status = _members(basis[1])
        start.alien = True
        h.setBasis(start)
    clock = time.perf_counter()
    h.run()
    model_status = h.getModelStatus()
    status = h.modelStatusToString(model_status).lower()
    # What a slow run's LPs cost (--verbose): their size, start, iterations and time.
    log.debug(
        "LP %d rows x %d columns from %s: %s after %d iterations, %.1f s",
        matrix.shape[0],
        matrix.shape[1],
        "scratch" if basis is None else ("a start, devex" if devex else "a start"),
        status,
        h.getInfo().simplex_iteration_count,
        time.perf_counter() - clock,
    )
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
    result = LPResult(
        status=status,
        x=np.asarray(solution.col_value, dtype=np.float64),
        row_dual=np.asarray(solution.row_dual, dtype=np.float64),
        objective=float(h.getInfo().objective_function_value),
        col_status=_numbers(ended.col_status),
        row_status=_numbers(ended.row_status),
    )
    del h, solution, ended
    if matrix.shape[1] >= TRIM_COLUMNS:
        trim_heap()  # HiGHS's memory back to the system, not kept under the next arrays
    return result


# Columns from which an LP's memory is handed back to the system after it (HiGHS holds
# about a kilobyte a column; a trim walks the heap, about 10 ms with 2 GB of it, which the
# analysis's many small re-solves need not pay).
TRIM_COLUMNS = 100_000


_STATUSES = list(highspy.HighsBasisStatus.__members__.values())
_MEMBER = np.empty(max(int(s) for s in _STATUSES) + 1, dtype=object)
_MEMBER[[int(s) for s in _STATUSES]] = _STATUSES

_DEVEX = 1  # HiGHS's simplex_dual_edge_weight_strategy


def _members(numbers: np.ndarray) -> list:
    numbers = np.asarray(numbers)
    if numbers.size and (numbers.min() < 0 or numbers.max() >= len(_MEMBER)):
        raise ValueError(f"a basis status outside HiGHS's 0..{len(_MEMBER) - 1}")
    return _MEMBER[numbers].tolist()


def _numbers(statuses: list) -> np.ndarray:
    # .value reads the member's number without int()'s conversion protocol: 70 ms instead of
    # 107 ms at 562,141 columns (the list itself, made by highspy, costs 220 ms more).
    return np.fromiter((s.value for s in statuses), dtype=np.int8, count=len(statuses))


def _f64(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64)


def lower_bounds(values: np.ndarray) -> np.ndarray:
    """Our 'no bound' (NaN) as HiGHS's minus infinity."""
    return np.where(np.isnan(values), -INF, values)


def upper_bounds(values: np.ndarray) -> np.ndarray:
    """Our 'no bound' (NaN) as HiGHS's plus infinity."""
    return np.where(np.isnan(values), INF, values)
