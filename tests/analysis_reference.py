"""The rule costs' price bound as numpy gave it before the kernels
(:func:`engine.analysis.rule_costs.new_option_gains`): the tests' reference for its bits and
the benchmarks' peer."""

from __future__ import annotations

import numpy as np


def numpy_price_bound(problem, base, relaxation, structure, adj, best_u):
    """The bound as numpy gave it before the kernels, whose bits the report kept."""
    new = relaxation.rows & ~base[relaxation.cells]
    some = new.any(axis=1)
    cells, new = relaxation.cells[some], new[some]
    if len(cells) == 0:
        return 0.0, np.zeros(problem.n_claims), 0
    u = problem.value[cells].astype(np.float64) + adj[structure.group[cells]]
    u[~new] = -np.inf
    gain_cell = np.maximum(u.max(axis=1) - best_u[cells], 0.0) * problem.area_of(cells)
    gaining = gain_cell > 0
    u, best_gaining = u[gaining], best_u[cells[gaining]]
    area = problem.area_of(cells[gaining])
    per_claim = np.zeros(problem.n_claims)
    for k in range(problem.n_claims):
        opts = problem.contribution[:, k] > 0
        if opts.any():
            uk = np.where(opts[None, :], u, -np.inf).max(axis=1)
            per_claim[k] = float(np.sum(np.maximum(uk - best_gaining, 0.0) * area))
    return float(gain_cell.sum()), per_claim, int(new.sum())
