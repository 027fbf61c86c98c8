"""Conflict per cell under the optimal prices.

Under the optimal prices every cell takes the option with the highest *adjusted* value
``value[i, o] + adj[group[i], o]`` (``engine.solve.dual``). Where the runner-up is close, the
claims behind the close options compete for the cell: a small change in a target or a value
would move it. Per cell:

- ``best``, ``second``: the best and second-best allowed option (``second`` = -1 when a cell has
  a single allowed option);
- ``margin``: best minus second adjusted value (+inf with a single option);
- ``n_options``: allowed options whose adjusted value is within ``threshold`` of the best;
- ``n_claims``: distinct claims those options deliver (``keep`` delivers none);
- ``klass``: the conflict class (``CLASSES``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.problem import Problem
from engine.solve import kernels
from engine.solve.dual import dual_structure

__all__ = ["CellConflict", "cell_conflict", "contested_pairs", "CLASSES"]

# Conflict classes (codes of conflict.tif; 255 is nodata).
CLASSES = {
    1: ("clear", "one option is clearly best", "#f0f0f0"),
    2: ("claim vs current use", "one claim competes with keeping the current use", "#fdd49e"),
    3: ("two claims", "two claims compete for the cell", "#fc8d59"),
    4: ("three or more claims", "three or more claims compete for the cell", "#b30000"),
}

CHUNK = 1 << 18


@dataclass
class CellConflict:
    best: np.ndarray  # (N,) int16
    second: np.ndarray  # (N,) int16, -1 with a single allowed option
    margin: np.ndarray  # (N,) float64, +inf with a single allowed option
    n_options: np.ndarray  # (N,) int8, options within the threshold (the best included)
    n_claims: np.ndarray  # (N,) int8, distinct claims those options deliver
    claims_close: np.ndarray  # (N,) int64 bit set of those claims (bit k = claim k)
    klass: np.ndarray  # (N,) uint8, see CLASSES
    threshold: float


def _row_prices(sol) -> np.ndarray:
    if getattr(sol, "row_prices", None) is not None:
        return np.asarray(sol.row_prices, dtype=np.float64)
    raise ValueError("the solution has no row_prices; solve with engine.solve()")


def cell_conflict(problem: Problem, sol, threshold: float = 0.05) -> CellConflict:
    """Best, runner-up, margin and the competing claims of every cell (chunked over cells).

    ``threshold``: adjusted-value difference (value units per ha) under which an option counts
    as competing with the best one.
    """
    if problem.n_claims > 62:
        raise ValueError("cell_conflict: at most 62 claims (claim sets are 64-bit masks)")
    prices = _row_prices(sol)
    structure = dual_structure(problem)
    adj = structure.adjustment(prices)
    best, margin, _ = kernels.best_options(
        problem.value,
        structure.allowed,
        structure.has_allowed,
        structure.group,
        structure.area,
        adj,
    )
    n = problem.n_cells
    second = np.full(n, -1, dtype=np.int16)
    n_opt = np.zeros(n, dtype=np.int8)
    n_claims = np.zeros(n, dtype=np.int8)
    bits = np.zeros(n, dtype=np.int64)
    serves = problem.contribution > 0  # (O, K)
    option_bits = (
        (serves * (np.int64(1) << np.arange(problem.n_claims, dtype=np.int64)))
        .sum(axis=1)
        .astype(np.int64)
    )
    for start in range(0, n, CHUNK):
        sl = slice(start, min(n, start + CHUNK))
        u = problem.value[sl].astype(np.float64) + adj[structure.group[sl]]
        if problem.allowed is not None:
            u[~problem.allowed[sl]] = -np.inf
        b = best[sl].astype(np.int64)
        rows = np.arange(len(b))
        top = u[rows, b]
        masked = u.copy()
        masked[rows, b] = -np.inf
        sec = np.argmax(masked, axis=1)
        has_second = np.isfinite(masked[rows, sec])
        second[sl] = np.where(has_second, sec, -1)
        close = u >= (top - threshold)[:, None]
        n_opt[sl] = close.sum(axis=1)
        cb = np.bitwise_or.reduce(np.where(close, option_bits[None, :], 0), axis=1)
        bits[sl] = cb
        n_claims[sl] = _popcount(cb)
    # One close option (even a combination serving several claims) is no conflict.
    multi = n_opt >= 2
    klass = np.ones(n, dtype=np.uint8)
    klass[multi & (n_claims <= 1)] = 2
    klass[multi & (n_claims == 2)] = 3
    klass[multi & (n_claims >= 3)] = 4
    return CellConflict(
        best.astype(np.int16), second, margin, n_opt, n_claims, bits, klass, float(threshold)
    )


def _popcount(bits: np.ndarray) -> np.ndarray:
    out = np.zeros(len(bits), dtype=np.int8)
    b = bits.copy()
    while b.any():
        out += (b & 1).astype(np.int8)
        b >>= 1
    return out


def contested_pairs(
    problem: Problem, conflict: CellConflict, zoning: int | str | None = None, min_ha: float = 0.0
) -> list[dict]:
    """Hectares contested by each pair of claims per zone of a zoning (default: 'province',
    else the last zoning): cells with two or more close options among which both claims are
    delivered."""
    l = _zoning_index(problem, zoning)
    area = problem.area_of()
    zone = problem.zones[l]
    out = []
    K = problem.n_claims
    for k1 in range(K):
        has1 = ((conflict.claims_close >> k1) & 1 == 1) & (conflict.n_options >= 2)
        if not has1.any():
            continue
        for k2 in range(k1 + 1, K):
            both = has1 & ((conflict.claims_close >> k2) & 1 == 1)
            if not both.any():
                continue
            ha = np.bincount(zone[both], weights=area[both], minlength=problem.n_zones[l])
            for z in np.flatnonzero(ha > min_ha):
                out.append(
                    {
                        "zoning": problem.zoning_names[l],
                        "zone": problem.zone_names[l][z],
                        "claim_a": problem.claim_names[k1],
                        "claim_b": problem.claim_names[k2],
                        "contested_ha": float(ha[z]),
                    }
                )
    out.sort(key=lambda r: -r["contested_ha"])
    return out


def _zoning_index(problem: Problem, zoning) -> int:
    if zoning is None:
        return (
            problem.zoning_names.index("province")
            if "province" in problem.zoning_names
            else problem.n_zonings - 1
        )
    if isinstance(zoning, str):
        return problem.zoning_names.index(zoning)
    return int(zoning)


def conflict_summary(problem: Problem, conflict: CellConflict) -> dict:
    area = problem.area_of()
    by_class = np.bincount(conflict.klass, weights=area, minlength=5)
    return {
        "threshold": conflict.threshold,
        "classes": [
            {"code": c, "name": n, "description": d, "colour": col, "area_ha": float(by_class[c])}
            for c, (n, d, col) in CLASSES.items()
        ],
    }
