"""Can the hard targets be met at all? An exact test before any solve.

Whether targets can be met does not depend on the values, only on which options each cell
allows and which zones it lies in. Cells that agree on both are interchangeable, so the
feasibility LP (a max-flow / Hall test in the transportation case) is solved over these
classes of cells with their summed area: a few hundred variables even for a national grid.
Its least violation says, row by row, which claim in which zone cannot be placed and by
how many hectares.

The test and the solvers share one relative tolerance (:data:`TOLERANCE`): a target missed
by no more than that is met. A target exactly at what the land can give is feasible, and
rounding may leave it a hair out of reach; the test then hands the solvers the targets the
land can meet (lowered, or raised for upper bounds, by at most the tolerance), so that they
never fail later on a target the test passed.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from engine.problem import Problem
from engine.solve import class_kernels
from engine.solve.lp import lower_bounds, solve_lp, upper_bounds
from engine.solve.solution import InfeasibleError, row_scale

# Relative to each row's scale (its bounds, at least one typical cell): far above the rounding
# of a sum over millions of cells (~1e-13), far below anything a planner could mean.
TOLERANCE = 1e-9


def check_feasible(problem: Problem, tolerance: float = TOLERANCE) -> Problem:
    """Raise ``InfeasibleError`` when the hard targets and upper bounds cannot all hold.

    Returns the problem to solve: ``problem`` itself, or a copy whose targets are moved by
    at most ``tolerance`` (relative) to what the land can meet exactly.
    """
    violation = least_violation(problem)
    if violation is None:
        return problem
    lower_miss, upper_miss = violation
    rows = problem.rows
    limit = tolerance * row_scale(problem)
    missing = [
        _describe(problem, r, "lower", lower_miss[r]) for r in np.flatnonzero(lower_miss > limit)
    ] + [_describe(problem, r, "upper", upper_miss[r]) for r in np.flatnonzero(upper_miss > limit)]
    if missing:
        raise _infeasible(missing)
    if not (lower_miss.any() or upper_miss.any()):
        return problem
    lower = problem.per_zoning(np.where(rows.has_lower, rows.lower - lower_miss, np.nan), np.nan)
    upper = problem.per_zoning(np.where(rows.has_upper, rows.upper + upper_miss, np.nan), np.nan)
    return problem.with_targets(lower, upper)


def least_violation(problem: Problem) -> tuple[np.ndarray, np.ndarray] | None:
    """Per target row the hectares by which its hard lower target and its upper bound must
    be missed, at the least total miss; None when the problem has no hard side at all."""
    rows = problem.rows
    hard_lower = rows.has_lower & (not problem.elastic)
    if not (hard_lower.any() or rows.has_upper.any()):
        return None
    class_group, class_pattern, class_area = cell_classes(problem)
    # HiGHS's tolerances are absolute: hand it the LP in cells rather than hectares.
    unit = problem.units.area

    # Columns: y[c, o] hectares of class c given to option o, then one violation variable per
    # bounded side of a row. Rows: each class's area, then each target row's supply.
    cls, opt = np.nonzero(class_pattern)
    n_y = len(cls)
    coeff = problem.row_incidence(class_group[cls], problem.contribution[opt]).tocoo()  # (R, n_y)
    n_cls, n_rows = len(class_area), len(rows)

    lower_side = np.flatnonzero(hard_lower)
    upper_side = np.flatnonzero(rows.has_upper)
    n_viol = len(lower_side) + len(upper_side)
    row_ids = np.concatenate([cls, n_cls + coeff.row, n_cls + lower_side, n_cls + upper_side])
    col_ids = np.concatenate(
        [
            np.arange(n_y),
            coeff.col,
            n_y + np.arange(len(lower_side)),
            n_y + len(lower_side) + np.arange(len(upper_side)),
        ]
    )
    values = np.concatenate(
        [
            np.ones(n_y),
            coeff.data,
            np.ones(len(lower_side)),
            -np.ones(len(upper_side)),
        ]
    )
    matrix = sparse.csc_matrix((values, (row_ids, col_ids)), shape=(n_cls + n_rows, n_y + n_viol))
    row_lo = np.concatenate([class_area, np.where(hard_lower, rows.lower, np.nan)]) / unit
    row_hi = np.concatenate([class_area, rows.upper]) / unit
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
    violation = np.clip(result.x[n_y:], 0.0, None) * unit
    lower_miss = np.zeros(n_rows)
    upper_miss = np.zeros(n_rows)
    lower_miss[lower_side] = violation[: len(lower_side)]
    upper_miss[upper_side] = violation[len(lower_side) :]
    return lower_miss, upper_miss


def unmet(problem: Problem, solver: str) -> InfeasibleError:
    """The error for a solver that found no allocation meeting the hard targets although the
    feasibility test passed them: it names the rows that cannot be met, or, when none can be
    shown to, the hard rows at (or a hair from) the most the land allows."""
    violation = least_violation(problem)
    missing = []
    if violation is not None:
        lower_miss, upper_miss = violation
        missing = [
            _describe(problem, r, "lower", lower_miss[r]) for r in np.flatnonzero(lower_miss > 0)
        ]
        missing += [
            _describe(problem, r, "upper", upper_miss[r]) for r in np.flatnonzero(upper_miss > 0)
        ]
    if missing:
        return _infeasible(missing, f"{solver}: ")
    rows = problem.rows
    capacity = row_capacity(problem)
    tight = np.flatnonzero(
        rows.has_lower
        & (not problem.elastic)
        & (rows.lower >= capacity - TOLERANCE * row_scale(problem))
    )
    if len(tight) == 0:
        tight = np.flatnonzero(rows.has_lower | rows.has_upper)
    listed = "\n".join(
        f"  - {problem.describe_row(r)}: target {_ha(rows.lower[r])} ha, the land allowed "
        f"for it gives at most {_ha(capacity[r])} ha"
        for r in tight[:20]
    )
    return InfeasibleError(
        f"{solver}: no allocation meets the hard targets to a relative {TOLERANCE:.0e}, "
        f"though each of them can be met; the tightest:\n{listed}\n"
        f"Lower these targets a little, or make the targets elastic (shortfall_penalty).",
        rows=[
            {
                **_where(problem, r),
                "side": "lower",
                "hectares": 0.0,
                "message": problem.describe_row(r),
            }
            for r in tight
        ],
    )


def row_capacity(problem: Problem) -> np.ndarray:
    """Per target row: the hectares of its claim its zone could give if no other claim
    wanted the land (each class of cells on its option that gives the claim most)."""
    class_group, class_pattern, class_area = cell_classes(problem)
    best = np.stack(
        [
            np.where(class_pattern, problem.contribution[:, k][None, :], 0.0).max(axis=1)
            for k in range(problem.n_claims)
        ],
        axis=1,
    )  # (C, K)
    return np.asarray(
        problem.row_incidence(class_group, class_area[:, None] * best).sum(axis=1)
    ).ravel()


def cell_classes(problem: Problem):
    """Classes of interchangeable cells: (group, allowed options) with their total area.

    Returns ``class_group`` (C,), ``class_pattern`` (C, O) bool and ``class_area`` (C,).
    A cell's allowed options are packed into bytes, as many as the options need.
    """
    group = problem.groups.group
    n_groups = problem.groups.count
    area = problem.area_of()
    if problem.allowed is None:
        class_area = np.bincount(group, weights=area, minlength=n_groups)
        present = np.flatnonzero(class_area > 0)
        pattern = np.ones((len(present), problem.n_options), dtype=bool)
        return present, pattern, class_area[present]
    n_bytes = -(-problem.n_options // 8)
    if n_bytes <= 2:
        # Up to 16 options a pattern is a number below 2**16: a table finds the patterns
        # present without sorting the cells (a sort of millions of cells takes a second).
        code = class_kernels.option_codes(problem.allowed)
        seen = np.zeros(1 << 16, dtype=bool)
        seen[code] = True
        codes = np.flatnonzero(seen)
        lookup = np.empty(1 << 16, dtype=np.int64)
        lookup[codes] = np.arange(len(codes))
        pattern_id = lookup[code]
        patterns = np.stack([codes & 255, codes >> 8], axis=1).astype(np.uint8)[:, :n_bytes]
    else:
        packed = np.packbits(problem.allowed, axis=1, bitorder="little")  # (N, bytes)
        rows = np.ascontiguousarray(packed).view(np.dtype((np.void, n_bytes))).ravel()
        unique, pattern_id = np.unique(rows, return_inverse=True)
        patterns = unique.view(np.uint8).reshape(-1, n_bytes)
        pattern_id = pattern_id.reshape(-1)
    problem.release_cells()  # paged allowed options (engine.paging): read, not again here
    n_patterns = len(patterns)
    key = group.astype(np.int64) * n_patterns + pattern_id  # < N**2: no overflow
    if n_groups * n_patterns <= 4 * problem.n_cells + 1_000_000:
        class_area_all = np.bincount(key, weights=area, minlength=n_groups * n_patterns)
        present = np.flatnonzero(class_area_all > 0)
        class_area = class_area_all[present]
    else:
        present, inverse = np.unique(key, return_inverse=True)
        class_area = np.bincount(inverse.reshape(-1), weights=area, minlength=len(present))
    class_group = present // n_patterns
    bits = np.unpackbits(patterns[present % n_patterns], axis=1, bitorder="little")
    return class_group, bits[:, : problem.n_options].astype(bool), class_area


def _ha(hectares: float) -> str:
    """Hectares for a message: one decimal, or three significant digits below 0.1 ha."""
    return f"{hectares:,.1f}" if abs(hectares) >= 0.1 or hectares == 0 else f"{hectares:.3g}"


def _where(problem: Problem, r: int) -> dict:
    rows = problem.rows
    l, z, k = int(rows.zoning[r]), int(rows.zone[r]), int(rows.claim[r])
    return {
        "zoning": problem.zoning_names[l],
        "zone": problem.zone_names[l][z],
        "claim": problem.claim_names[k],
    }


def _describe(problem: Problem, r: int, side: str, hectares: float) -> dict:
    rows = problem.rows
    where = problem.describe_row(r)
    if side == "lower":
        message = (
            f"{where}: {_ha(hectares)} ha of the {_ha(rows.lower[r])} ha target cannot be placed"
        )
    else:
        message = (
            f"{where}: at least {_ha(hectares)} ha more than the upper bound of "
            f"{_ha(rows.upper[r])} ha is unavoidable"
        )
    return {**_where(problem, r), "side": side, "hectares": float(hectares), "message": message}


def _infeasible(missing: list[dict], prefix: str = "") -> InfeasibleError:
    lines = "\n".join(f"  - {m['message']}" for m in missing)
    return InfeasibleError(
        f"{prefix}the hard targets cannot all be met on the land that allows them:\n"
        f"{lines}\n"
        "Lower these targets, allow their claims on more land (relax a rule), or make "
        "the targets elastic (shortfall_penalty) to see the shortfall on a map.",
        rows=missing,
    )
