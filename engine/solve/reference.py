"""The reference backends: the allocation LP written out in PuLP, solved by HiGHS or CBC.

Slow by design and simple to read: every fast path is checked against these. Variables
exist only for allowed (cell, option) pairs. The model is written in the problem's typical
units (``Problem.units``: cells and value differences), so that the solvers' absolute
tolerances mean the same whatever the units of area and value.
"""

from __future__ import annotations

import time

import numpy as np
import pulp

from engine.errors import RuimtepuzzelError
from engine.problem import Problem
from engine.solve.dual import dual_structure, price_cells
from engine.solve.feasibility import unmet
from engine.solve.solution import Solution, build_solution

SOLVERS = {
    # Tolerances as tight as the fast solver's repair LP: the reference is the yardstick of a
    # 1e-9 certificate, and HiGHS's default 1e-7 is not.
    "highs": lambda: pulp.HiGHS(
        msg=False,
        threads=1,
        primal_feasibility_tolerance=1e-10,
        dual_feasibility_tolerance=1e-10,
    ),
    "cbc": lambda: pulp.PULP_CBC_CMD(msg=False, threads=1),
}
PI_SIGN = {"highs": 1.0, "cbc": -1.0}


def solve_reference(
    problem: Problem, method: str = "highs", *, gap_tolerance: float = 1e-9
) -> Solution:
    if method not in SOLVERS:
        raise RuimtepuzzelError(f"method={method!r}: the reference backends are {sorted(SOLVERS)}")
    t0 = time.perf_counter()
    lp, x_vars, target_cons = _build(problem)
    t1 = time.perf_counter()
    lp.solve(SOLVERS[method]())
    t2 = time.perf_counter()
    status = pulp.LpStatus[lp.status]
    if status == "Infeasible":
        raise unmet(problem, method)
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
    sign = PI_SIGN[method] * problem.units.value
    prices = np.zeros(len(problem.rows))
    for r, cons in target_cons.items():
        prices[r] = sum(sign * (c.pi or 0.0) for c in cons)
    # The prices the bound is computed with (a dual a hair on the wrong side of zero, as a
    # solver's tolerances allow, is put back on its side): the certificate is the solution's.
    priced = price_cells(problem, dual_structure(problem), prices)
    return build_solution(
        problem,
        x,
        priced.prices,
        priced.bound,
        method=method,
        gap_tolerance=gap_tolerance,
        timings={"build": t1 - t0, "solve": t2 - t1, "total": time.perf_counter() - t0},
    )


def _build(problem: Problem):
    lp = pulp.LpProblem("allocation", pulp.LpMaximize)
    units = problem.units
    area = problem.area_of() / units.area
    allowed = (
        problem.allowed
        if problem.allowed is not None
        else np.ones((problem.n_cells, problem.n_options), dtype=bool)
    )
    value = problem.value.astype(np.float64) / units.value
    # Each cell's x sums to 1, so a constant per cell changes no allocation: taking off the
    # cell's best value leaves the differences that decide, at full precision. (The
    # objective is evaluated from x afterwards, never read from the solver.)
    value -= np.where(allowed, value, -np.inf).max(axis=1, keepdims=True)
    x_vars = {}
    objective = []
    for i, o in zip(*np.nonzero(allowed)):
        var = lp.add_variable(f"x_{i}_{o}", lowBound=0)
        x_vars[(int(i), int(o))] = var
        objective.append((var, float(area[i] * value[i, o])))

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
                objective.append((s, -float(problem.shortfall_penalty[k] / units.value)))
                c = supply + s >= float(rows.lower[r] / units.area)
            else:
                c = supply >= float(rows.lower[r] / units.area)
            lp += c, f"lower_{r}"
            cons.append(lp.get_constraint_by_name(f"lower_{r}"))
        if rows.has_upper[r]:
            lp += supply <= float(rows.upper[r] / units.area), f"upper_{r}"
            cons.append(lp.get_constraint_by_name(f"upper_{r}"))
        target_cons[r] = cons
    lp.setObjective(pulp.LpAffineExpression(objective))
    return lp, x_vars, target_cons
