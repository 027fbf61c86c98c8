"""Scarcity: the shadow price of every target row, per cell the price of each claim, regret.

- :func:`shadow_price_table`: one row per target (zoning x zone x claim) with its price (value
  per ha of the claim: what one more hectare of target would cost, DESIGN.md sign convention).
- :func:`cell_prices`: ``price(i, k)``, the sum of the prices of every zoning's row of claim k
  over the zones that hold cell i: the scarcity maps (a band per claim).
- :func:`regret`: per cell the value lost versus its best allowed option,
  ``max_(o allowed) v[i,o] - sum_o v[i,o] x[i,o]`` per hectare (>= 0): what the targets cost
  that cell.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from engine.problem import Problem
from engine.solve.dual import dual_structure
from engine.solve.solution import allocation_totals

__all__ = ["shadow_price_table", "cell_prices", "group_prices", "regret"]


def shadow_price_table(problem: Problem, sol) -> list[dict]:
    rows = problem.rows
    prices = np.asarray(sol.row_prices, dtype=np.float64)
    # The report's own totals (one pass over the cells): the same hectares as its targets.
    _, supply = allocation_totals(problem, sol.x)
    out = []
    for r in range(len(rows)):
        l, z, k = int(rows.zoning[r]), int(rows.zone[r]), int(rows.claim[r])
        lo, hi = rows.lower[r], rows.upper[r]
        out.append({
            "zoning": problem.zoning_names[l], "zone": problem.zone_names[l][z],
            "claim": problem.claim_names[k],
            "lower_ha": None if np.isnan(lo) else float(lo),
            "upper_ha": None if np.isnan(hi) else float(hi),
            "allocated_ha": float(supply[r]), "shadow_price": float(prices[r]),
            "binds": "lower" if prices[r] > 0 else ("upper" if prices[r] < 0 else None),
        })  # fmt: skip
    return out


def group_prices(problem: Problem, row_prices, structure=None) -> np.ndarray:
    """(G, K): the price of each claim in each cell group (summed over the zonings)."""
    structure = structure or dual_structure(problem)
    return structure.claim_prices(np.asarray(row_prices, dtype=np.float64))


def cell_prices(problem: Problem, sol) -> np.ndarray:
    """(N, K) float32: the price of each claim in each cell."""
    gp = group_prices(problem, sol.row_prices)
    return gp.astype(np.float32)[problem.groups.group]


def realised_value(problem: Problem, x) -> np.ndarray:
    """(N,) ``sum_o v[i,o] x[i,o]`` per hectare."""
    if sparse.issparse(x):
        return np.asarray(sparse.csr_matrix(x).multiply(problem.value).sum(axis=1)).ravel()
    return np.einsum("io,io->i", np.asarray(x, dtype=np.float64), problem.value)


def best_value(problem: Problem) -> np.ndarray:
    """(N,) the best allowed unadjusted value per cell (what it would take with no targets)."""
    v = problem.value
    if problem.allowed is None:
        return v.max(axis=1).astype(np.float64)
    out = np.empty(problem.n_cells)
    step = 1 << 18
    for s in range(0, problem.n_cells, step):
        sl = slice(s, s + step)
        out[sl] = np.where(problem.allowed[sl], v[sl], -np.inf).max(axis=1)
    return out


def regret(problem: Problem, sol) -> np.ndarray:
    """(N,) float64 value lost per hectare versus the cell's best allowed option (>= 0)."""
    return np.maximum(best_value(problem) - realised_value(problem, sol.x), 0.0)
