"""``Solution``: what every backend returns, and the checks that make it trustworthy."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from engine.errors import RuimtepuzzelError
from engine.problem import Problem
from engine.thread_flag import ThreadFlag


class WarmStartError(RuimtepuzzelError):
    """Warm-start prices that do not fit the problem (other zonings, zones or claims)."""


class InfeasibleError(RuimtepuzzelError):
    """Hard targets that no allocation can meet. ``rows`` lists what cannot be placed."""

    def __init__(self, message: str, rows: list[dict] | None = None):
        super().__init__(message)
        self.rows = rows or []


class GapWarning(UserWarning):
    """The solver stopped before certifying the requested gap."""


# Per thread: whether its solves keep their GapWarning to themselves (see gaps_muted).
_gaps_muted = ThreadFlag()


def gaps_muted():
    """Within, this thread's solves warn of no gap: for a caller that reads the solution's
    status itself and answers it (a re-solve that falls back to the full solve, a variant
    that searches). Not ``warnings.catch_warnings``: that changes the filters of every
    thread, so two re-solves at a time left them changed after the analysis (the last to
    finish restores what the first had set) and hid other threads' warnings meanwhile."""
    return _gaps_muted.within()


def warn_gap(message: str, stacklevel: int = 2) -> None:
    """A :class:`GapWarning` with ``message``, unless this thread's gaps are muted."""
    if not _gaps_muted:
        warnings.warn(message, GapWarning, stacklevel=stacklevel + 1)


@dataclass
class Solution:
    objective: float  # the LP objective of DESIGN.md for ``x``
    x: np.ndarray | sparse.csr_matrix  # (N, O) fractions per cell, rows sum to 1
    choice: np.ndarray  # (N,) int, dominant option (largest fraction, lowest index on ties)
    shortfall: list[np.ndarray]  # per zoning (Z_l, K) hectares missing
    prices: list[np.ndarray]  # per zoning (Z_l, K) target duals, value per hectare
    allocated: list[np.ndarray]  # per zoning (Z_l, K) hectares delivered
    bound: float  # dual bound D(prices) >= optimum >= objective
    gap: float  # (bound - objective) / max(|bound|, |objective|, problem.units.objective)
    status: str  # 'optimal', or what else happened, in words
    method: str  # backend that produced it
    timings: dict = field(default_factory=dict)  # seconds per stage
    row_prices: np.ndarray | None = None  # prices in the problem's row order
    # engine.compactness.Clustering when the plan was clustered (x, choice, allocated and
    # shortfall are then the clustered plan's; objective, bound, gap those of the exact optimum)
    compactness: object | None = None
    # With method="auto": the backend it took and the cost estimates it took it by
    # (engine.solve.choice.estimate); None when a method was named.
    auto: dict | None = None
    # The fast backend's engine.solve.fast.RepairEnd: where its repair ended, for a
    # neighbour's re-solve to start there (engine.solve.local); None for other backends.
    repair_end: object | None = None

    def __repr__(self) -> str:
        return (
            f"Solution(status={self.status!r}, objective={self.objective:.10g}, "
            f"gap={self.gap:.2e}, method={self.method!r})"
        )


def relative_gap(problem: Problem, bound: float, objective: float) -> float:
    """``(bound - objective)`` relative to the larger of the two, and at least to one typical
    cell's worth (``problem.units.objective``): the same figure in any unit of area or value."""
    return (bound - objective) / max(abs(bound), abs(objective), problem.units.objective)


def row_scale(problem: Problem) -> np.ndarray:
    """Per target row the hectares its tolerances are relative to: its bounds, and at least
    one typical cell."""
    rows = problem.rows
    return np.maximum(
        problem.units.area, np.abs(np.nan_to_num(rows.lower)) + np.abs(np.nan_to_num(rows.upper))
    )


def allocation_totals(problem: Problem, x) -> tuple[float, np.ndarray]:
    """``sum_i a_i sum_o v[i,o] x[i,o]`` (without the penalty term) and each target row's
    supply in hectares, for a dense or sparse ``x``: one pass over the cells."""
    from engine.solve.dual import dual_structure

    value, assigned, _ = _totals(problem, x)
    return value, dual_structure(problem).supply(assigned)


def totals_by_group(problem: Problem, x) -> tuple[np.ndarray, np.ndarray]:
    """(G, O) the hectares of each option and (G,) the value realised in each group of cells
    (``problem.groups``), for a dense or sparse ``x``: what every zone's figures follow from,
    in one pass over the cells."""
    _, assigned, value = _totals(problem, x)
    return assigned, value


def _totals(problem: Problem, x) -> tuple[float, np.ndarray, np.ndarray]:
    from engine.solve import kernels
    from engine.solve.dual import dual_structure

    x = sparse.csr_matrix(x)
    structure = dual_structure(problem)
    data = np.asarray(x.data, dtype=np.float64)  # no copy of the float64 shares
    area = structure.area
    parts = []
    # Slices of whole blocks of cells, whose partials are those of one pass: the pages of
    # paged values (engine.paging) go after each slice.
    step = _TOTALS_BLOCKS * kernels.BLOCK
    for lo in range(0, problem.n_cells, step):
        hi = min(lo + step, problem.n_cells)
        entries = slice(x.indptr[lo], x.indptr[hi])
        parts.append(
            kernels.allocation_parts(
                problem.value[lo:hi],
                x.indptr[lo : hi + 1] - x.indptr[lo],
                x.indices[entries],
                data[entries],
                structure.group[lo:hi],
                area if len(area) == 1 else area[lo:hi],
                structure.n_groups,
            )
        )
        problem.release_cells(slice(lo, hi))
    value, assigned, by_group = kernels.allocation_sums(
        *(np.concatenate(part) for part in zip(*parts))
    )
    return float(value), assigned, by_group


# Blocks of cells per slice of the allocation's totals.
_TOTALS_BLOCKS = 64


def dominant_option(x) -> np.ndarray:
    if sparse.issparse(x):
        x = sparse.csr_matrix(x)
        return np.asarray(x.argmax(axis=1)).ravel().astype(np.int64)
    return np.argmax(x, axis=1).astype(np.int64)


def build_solution(
    problem: Problem,
    x,
    row_prices: np.ndarray,
    bound: float,
    *,
    method: str,
    choice: np.ndarray | None = None,
    status: str = "optimal",
    timings: dict | None = None,
    gap_tolerance: float = 1e-9,
    feasibility_tolerance: float = 1e-6,
) -> Solution:
    """Evaluate ``x`` against the problem and wrap it with its certificate.

    The objective, the shortfall and the gap are computed here from ``x`` itself, the same
    way for every backend, so that backends are compared on equal terms.
    """
    value, supply = allocation_totals(problem, x)
    rows = problem.rows
    shortfall = np.where(rows.has_lower, np.maximum(rows.lower - supply, 0.0), 0.0)
    scale = row_scale(problem)
    over = np.where(rows.has_upper, supply - rows.upper, -np.inf)
    if np.any(over > feasibility_tolerance * scale):
        r = int(np.argmax(over / scale))
        status = (
            f"infeasible allocation: {problem.describe_row(r)} exceeds its upper bound "
            f"by {over[r]:.6g} ha"
        )
    if problem.elastic:
        penalty = problem.shortfall_penalty[rows.claim]
        objective = value - float(np.sum(penalty * shortfall))
    else:
        objective = value
        if np.any(shortfall > feasibility_tolerance * scale):
            r = int(np.argmax(shortfall / scale))
            status = (
                f"infeasible allocation: {problem.describe_row(r)} misses its target by "
                f"{shortfall[r]:.6g} ha"
            )
        shortfall = np.zeros_like(shortfall)
    gap = relative_gap(problem, bound, objective)
    if status == "optimal" and gap > gap_tolerance:
        status = f"not certified: gap {gap:.2e} above {gap_tolerance:.0e}"
    if status != "optimal":
        warn_gap(f"{method}: {status}", stacklevel=3)
    return Solution(
        objective=objective,
        x=x,
        choice=dominant_option(x) if choice is None else choice,
        shortfall=problem.per_zoning(shortfall),
        prices=problem.per_zoning(row_prices),
        allocated=problem.per_zoning(supply),
        bound=float(bound),
        gap=float(gap),
        status=status,
        method=method,
        timings=dict(timings or {}),
        row_prices=np.asarray(row_prices, dtype=np.float64),
    )
