"""The reference backends: the allocation LP written out in PuLP, solved by HiGHS or CBC.

Slow by design and simple to read: every fast path is checked against these. Variables
exist only for allowed (cell, option) pairs.
"""

from __future__ import annotations

import time

import numpy as np
import pulp

from engine.problem import Problem
from engine.solve.dual import dual_structure, price_cells
from engine.solve.solution import InfeasibleError, Solution, build_solution

SOLVERS = {
    "highs": lambda: pulp.HiGHS(msg=False, threads=1),
    "cbc": lambda: pulp.PULP_CBC_CMD(msg=False, threads=1),
}
PI_SIGN = {"highs": 1.0, "cbc": -1.0}


def solve_reference(problem: Problem, method: str = "highs") -> Solution:
    if method not in SOLVERS:
        raise ValueError(f"method={method!r}: the reference backends are {sorted(SOLVERS)}")
    t0 = time.perf_counter()
    lp, x_vars, target_cons = _build(problem)
    t1 = time.perf_counter()
    lp.solve(SOLVERS[method]())
    t2 = time.perf_counter()
    status = pulp.LpStatus[lp.status]
    if status == "Infeasible":
        raise InfeasibleError(
            f"{method}: the hard targets cannot all be met (the solver reports the LP "
            f"infeasible); run method='fast' for which claim and zone"
        )
    if status != "Optimal":
        raise RuntimeError(f"{method}: the solver ended with status {status!r}")

    x = np.zeros((problem.n_cells, problem.n_options))
    for (i, o), var in x_vars.items():
        x[i, o] = var.value() or 0.0
    x = np.clip(x, 0.0, None)
    x /= x.sum(axis=1, keepdims=True)

    # A target's price is what one more hectare costs: -d objective / d bound. PuLP passes
    # on each solver's own sign for a maximisation: CBC's pi is d objective / d rhs, HiGHS's
    # is its negative (checked against the dual bound in the tests).
    sign = PI_SIGN[method]
    prices = np.zeros(len(problem.rows))
    for r, cons in target_cons.items():
        prices[r] = sum(sign * (c.pi or 0.0) for c in cons)
    structure = dual_structure(problem)
    bound = price_cells(problem, structure, prices).bound
    return build_solution(
        problem,
        x,
        prices,
        bound,
        method=method,
        timings={"build": t1 - t0, "solve": t2 - t1, "total": time.perf_counter() - t0},
    )


def _build(problem: Problem):
    lp = pulp.LpProblem("allocation", pulp.LpMaximize)
    area = problem.area_of()
    allowed = (
        problem.allowed
        if problem.allowed is not None
        else np.ones((problem.n_cells, problem.n_options), dtype=bool)
    )
    x_vars = {}
    objective = []
    for i, o in zip(*np.nonzero(allowed)):
        var = lp.add_variable(f"x_{i}_{o}", lowBound=0)
        x_vars[(int(i), int(o))] = var
        objective.append((var, float(area[i] * problem.value[i, o])))

    for i in range(problem.n_cells):
        lp += (
            pulp.lpSum(x_vars[(i, o)] for o in np.flatnonzero(allowed[i])) == 1,
            f"cell_{i}",
        )

    rows = problem.rows
    target_cons = {}
    for r in range(len(rows)):
        l, z, k = rows.zoning[r], rows.zone[r], rows.claim[r]
        cells = np.flatnonzero(problem.zones[l] == z)
        terms = [
            (x_vars[(int(i), int(o))], float(area[i] * problem.contribution[o, k]))
            for i in cells
            for o in np.flatnonzero(allowed[i] & (problem.contribution[:, k] > 0))
        ]
        supply = pulp.LpAffineExpression(terms)
        cons = []
        if rows.has_lower[r]:
            if problem.elastic:
                s = lp.add_variable(f"s_{r}", lowBound=0)
                objective.append((s, -float(problem.shortfall_penalty[k])))
                c = supply + s >= float(rows.lower[r])
            else:
                c = supply >= float(rows.lower[r])
            lp += c, f"lower_{r}"
            cons.append(lp.get_constraint_by_name(f"lower_{r}"))
        if rows.has_upper[r]:
            lp += supply <= float(rows.upper[r]), f"upper_{r}"
            cons.append(lp.get_constraint_by_name(f"upper_{r}"))
        target_cons[r] = cons
    lp.setObjective(pulp.LpAffineExpression(objective))
    return lp, x_vars, target_cons
