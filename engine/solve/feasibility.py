"""Can the hard targets be met at all? An exact test before any solve.

Whether targets can be met does not depend on the values, only on which options each cell
allows and which zones it lies in. Cells that agree on both are interchangeable, so the
feasibility LP (a max-flow / Hall test in the transportation case) is solved over these
classes of cells with their summed area: a few hundred variables even for a national grid.
Its least violation says, row by row, which claim in which zone cannot be placed and by
how many hectares.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from engine.problem import Problem
from engine.solve.lp import lower_bounds, solve_lp, upper_bounds
from engine.solve.solution import InfeasibleError


def check_feasible(problem: Problem, tolerance: float = 1e-7) -> None:
    """Raise ``InfeasibleError`` when the hard targets and upper bounds cannot all hold."""
    rows = problem.rows
    hard_lower = rows.has_lower & (not problem.elastic)
    if not (hard_lower.any() or rows.has_upper.any()):
        return
    class_group, class_pattern, class_area = cell_classes(problem)
    membership = problem.groups.zones[class_group][:, rows.zoning] == rows.zone[None, :]

    # Columns: y[c, o] hectares of class c given to option o, then one violation variable per
    # bounded side of a row. Rows: each class's area, then each target row's supply.
    cls, opt = np.nonzero(class_pattern)
    n_y = len(cls)
    coeff = membership[cls] * problem.contribution[opt][:, rows.claim]  # (n_y, R)
    y_rows, y_target = np.nonzero(coeff)
    n_cls, n_rows = len(class_area), len(rows)

    lower_side = np.flatnonzero(hard_lower)
    upper_side = np.flatnonzero(rows.has_upper)
    n_viol = len(lower_side) + len(upper_side)
    row_ids = np.concatenate(
        [cls, n_cls + y_target, n_cls + lower_side, n_cls + upper_side]
    )
    col_ids = np.concatenate(
        [
            np.arange(n_y),
            y_rows,
            n_y + np.arange(len(lower_side)),
            n_y + len(lower_side) + np.arange(len(upper_side)),
        ]
    )
    values = np.concatenate(
        [
            np.ones(n_y),
            coeff[y_rows, y_target],
            np.ones(len(lower_side)),
            -np.ones(len(upper_side)),
        ]
    )
    matrix = sparse.csc_matrix((values, (row_ids, col_ids)), shape=(n_cls + n_rows, n_y + n_viol))
    row_lo = np.concatenate([class_area, np.where(hard_lower, rows.lower, np.nan)])
    row_hi = np.concatenate([class_area, rows.upper])
    cost = np.concatenate([np.zeros(n_y), np.ones(n_viol)])
    result = solve_lp(
        cost,
        matrix,
        lower_bounds(row_lo),
        upper_bounds(row_hi),
        np.zeros(n_y + n_viol),
        upper_bounds(np.full(n_y + n_viol, np.nan)),
    )
    if result.status != "optimal":
        raise RuntimeError(f"feasibility test: HiGHS ended with status {result.status!r}")
    violation = result.x[n_y:]
    scale = np.maximum(1.0, np.abs(np.nan_to_num(rows.lower)) + np.abs(np.nan_to_num(rows.upper)))
    missing = []
    for j, r in enumerate(lower_side):
        if violation[j] > tolerance * scale[r]:
            missing.append(_describe(problem, r, "lower", violation[j]))
    for j, r in enumerate(upper_side):
        v = violation[len(lower_side) + j]
        if v > tolerance * scale[r]:
            missing.append(_describe(problem, r, "upper", v))
    if missing:
        lines = "\n".join(f"  - {m['message']}" for m in missing)
        raise InfeasibleError(
            "the hard targets cannot all be met on the land that allows them:\n"
            f"{lines}\n"
            "Lower these targets, allow their claims on more land (relax a rule), or make "
            "the targets elastic (shortfall_penalty) to see the shortfall on a map.",
            rows=missing,
        )


def cell_classes(problem: Problem):
    """Classes of interchangeable cells: (group, allowed options) with their total area.

    Returns ``class_group`` (C,), ``class_pattern`` (C, O) bool and ``class_area`` (C,).
    """
    group = problem.groups.group
    n_groups = problem.groups.count
    area = problem.area_of()
    if problem.allowed is None:
        class_area = np.bincount(group, weights=area, minlength=n_groups)
        present = np.flatnonzero(class_area > 0)
        pattern = np.ones((len(present), problem.n_options), dtype=bool)
        return present, pattern, class_area[present]
    code = np.zeros(problem.n_cells, dtype=np.int64)
    for o in range(problem.n_options):
        code |= problem.allowed[:, o].astype(np.int64) << o
    patterns, pattern_id = np.unique(code, return_inverse=True)
    key = group.astype(np.int64) * len(patterns) + pattern_id
    class_area_all = np.bincount(key, weights=area, minlength=n_groups * len(patterns))
    present = np.flatnonzero(class_area_all > 0)
    class_group = present // len(patterns)
    bits = patterns[present % len(patterns)]
    pattern = (bits[:, None] >> np.arange(problem.n_options)[None, :]) & 1
    return class_group, pattern.astype(bool), class_area_all[present]


def _describe(problem: Problem, r: int, side: str, hectares: float) -> dict:
    rows = problem.rows
    l, z, k = int(rows.zoning[r]), int(rows.zone[r]), int(rows.claim[r])
    where = (
        f"claim '{problem.claim_names[k]}' in zone '{problem.zone_names[l][z]}' of zoning "
        f"'{problem.zoning_names[l]}'"
    )
    if side == "lower":
        message = (
            f"{where}: {hectares:,.1f} ha of the {rows.lower[r]:,.1f} ha target cannot be "
            f"placed"
        )
    else:
        message = (
            f"{where}: at least {hectares:,.1f} ha more than the upper bound of "
            f"{rows.upper[r]:,.1f} ha is unavoidable"
        )
    return {
        "zoning": problem.zoning_names[l],
        "zone": problem.zone_names[l][z],
        "claim": problem.claim_names[k],
        "side": side,
        "hectares": float(hectares),
        "message": message,
    }
