"""The exact yardstick of compact plans on small problems: a MILP solved by HiGHS (PuLP).

The model is the allocation LP of :mod:`engine.solve.reference` with

- binary cells: ``x[i,o]`` in {0, 1} (every cell takes exactly one option), but for the
  cells ``keep`` names: those are fixed at the fractions given (the cells the exact optimum
  splits between options, which :func:`engine.solve.compact.compact` leaves as they are);
- the boundary penalty exactly: per rule and 4-neighbour pair (i, j) a variable
  ``b >= |x[i,o] - x[j,o]|`` with objective ``-edge_cost * b`` (a pair where only one cell
  may take the option needs only ``b >= x[i,o]``); sides on cells outside the problem are
  not counted, as in :func:`engine.solve.compact.boundary_cost`;
- the minimum patch size *relaxed*: exact patch sizes need connectivity constraints that no
  open MILP solver handles at this size. The model asks only what every patch of two or
  more cells satisfies: a cell of an option with ``min_cells >= 2`` has a neighbour of the
  same option. So its optimum is an upper bound of the true optimum with the minimum patch
  size, and a gap measured against it is an upper bound of the true gap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pulp
from scipy import sparse

from engine.errors import RuimtepuzzelError
from engine.problem import Problem
from engine.solve.compact import Geometry, PatchRule
from engine.solve.reference import _build

__all__ = ["MilpResult", "solve_compact_milp"]


@dataclass
class MilpResult:
    x: sparse.csr_matrix  # (N, O) the optimal plan
    status: str  # PuLP's status in words ("Optimal", ...)
    seconds: float  # build and solve


def solve_compact_milp(
    problem: Problem,
    geometry: Geometry,
    rules: list[PatchRule],
    *,
    keep: sparse.spmatrix | None = None,
    time_limit: float | None = None,
) -> MilpResult:
    """Solve the compact MILP of the module docstring with HiGHS."""
    if geometry.n_cells != problem.n_cells:
        raise RuimtepuzzelError(
            f"geometry: {geometry.n_cells} cells, the problem has {problem.n_cells}"
        )
    clock = time.perf_counter()
    model, x_vars, _ = _build(problem)
    fixed = {}
    if keep is not None:
        keep = sparse.coo_matrix(keep)
        fixed = {(int(i), int(o)): float(v) for i, o, v in zip(keep.row, keep.col, keep.data)}
        kept_cells = {i for i, _ in fixed}
    for (i, o), var in x_vars.items():
        if fixed and i in kept_cells:
            var.lowBound = var.upBound = fixed.get((i, o), 0.0)
        else:
            var.cat = pulp.LpInteger
            var.upBound = 1
    # _build writes the objective in the problem's units (area and value as powers of two).
    scale = problem.units.area * problem.units.value
    terms = []
    nbr = geometry.neighbours
    for rule in rules:
        o = rule.option
        w = rule.edge_cost / scale
        for i, j in _pairs(nbr):
            xi, xj = x_vars.get((i, o)), x_vars.get((j, o))
            if xi is None and xj is None:
                continue
            b = model.add_variable(f"b_{o}_{i}_{j}", lowBound=0)
            for a, c in ((xi, xj), (xj, xi)):
                if a is not None:
                    model += b >= a - (c if c is not None else 0)
            terms.append((b, -w))
        if rule.min_cells >= 2:
            for (i, oo), xi in x_vars.items():
                if oo != o:
                    continue
                around = [x_vars[(j, o)] for j in nbr[i] if j >= 0 and (j, o) in x_vars]
                model += xi <= pulp.lpSum(around)
    model.setObjective(model.objective + pulp.LpAffineExpression(terms))
    options = {"msg": False, "threads": 1, "gapRel": 1e-9}
    if time_limit is not None:
        options["timeLimit"] = time_limit
    model.solve(pulp.HiGHS(**options))
    status = pulp.LpStatus[model.status]
    x = np.zeros((problem.n_cells, problem.n_options))
    for (i, o), var in x_vars.items():
        x[i, o] = var.value() or 0.0
    return MilpResult(sparse.csr_matrix(x), status, time.perf_counter() - clock)


def _pairs(nbr: np.ndarray):
    """Each 4-neighbour pair once: a cell with its right and lower neighbour."""
    for i in range(nbr.shape[0]):
        for j in (nbr[i, 1], nbr[i, 3]):
            if j >= 0:
                yield i, int(j)
