"""Targets at any level (issue 15): many small zones, single cells with a target, targets at
exactly what the land gives; the fast solver and ``auto``'s choice against HiGHS."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import engine
from engine.solve import fast as fast_module
from engine.solve.dual import dual_structure
from engine.synthetic import allocation_problem, with_local_targets
from tests.problems import problems
from tests.test_solve import assert_optimum

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def local_target_problems(draw):
    """A problem of ``tests.problems`` with one more zoning: many small zones or single
    cells, each with a target on one or two claims; some of them exactly at the most the
    zone's land can give."""
    base = draw(problems(max_cells=200, elastic=False))
    single_cells = draw(st.booleans())
    limit = base.n_cells if single_cells else base.n_cells // 2
    n_zones = draw(st.integers(1, max(1, limit)))
    claims = tuple(sorted(draw(st.sets(st.integers(0, base.n_claims - 1), min_size=1))))
    problem = with_local_targets(
        base, n_zones, claims=claims, single_cells=single_cells, seed=draw(st.integers(0, 99))
    )
    if draw(st.booleans()):
        problem = _at_capacity(problem, draw(st.floats(0.0, 1.0)))
    return problem


def _at_capacity(problem: engine.Problem, share: float) -> engine.Problem:
    """The local zoning's targets, a ``share`` of them, raised to their zone's capacity."""
    from engine.solve.feasibility import row_capacity

    rows = problem.rows
    local = (rows.zoning == problem.n_zonings - 1) & rows.has_lower
    chosen = local & (np.random.default_rng(0).random(len(rows)) < share)
    lower = np.where(chosen, row_capacity(problem), rows.lower)
    return problem.with_targets(
        problem.per_zoning(lower, np.nan), problem.per_zoning(rows.upper, np.nan)
    )


def _solve_or_none(problem, method):
    try:
        return engine.solve(problem, method=method)
    except engine.InfeasibleError:
        return None


@SETTINGS
@given(local_target_problems())
def test_fast_matches_highs_with_many_small_zones(problem):
    highs = _solve_or_none(problem, "highs")
    fast = _solve_or_none(problem, "fast")
    assert (fast is None) == (highs is None), "one backend found the targets infeasible"
    assume(highs is not None)
    assert_optimum(problem, fast, highs)


@SETTINGS
@given(local_target_problems(), st.sampled_from([0, 1, 4, 10_000]))
def test_local_rows_change_no_optimum(problem, local_cells):
    """However small a zone must be to go straight to the repair LP (0: none does), the
    optimum is the same."""
    highs = _solve_or_none(problem, "highs")
    assume(highs is not None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast_module, "LOCAL_CELLS", local_cells)
        patch.setattr(fast_module, "LOCAL_SHARE", 1.0)
        assert_optimum(problem, engine.solve(problem, method="fast"), highs)


def test_single_cell_zones_are_local_and_provinces_are_not():
    problem = with_local_targets(allocation_problem(20_000), 50, single_cells=True)
    local = fast_module.local_rows(problem)
    rows = problem.rows
    assert local[rows.zoning == 3].all()
    assert not local[rows.zoning < 3].any()
    structure = dual_structure(problem)
    cells, options = fast_module.local_cells(problem, structure, local)
    np.testing.assert_array_equal(cells, np.flatnonzero(problem.zones[3] < 50))
    np.testing.assert_array_equal(options, problem.allowed[cells])


def test_group_rows_give_the_dense_membership():
    """The sparse incidence of the rows adds up what a dense (groups x rows) table did."""
    problem = with_local_targets(allocation_problem(5_000), 300)
    rows = problem.rows
    groups = problem.groups
    dense = groups.zones[:, rows.zoning] == rows.zone[None, :]  # (G, R)
    coef = np.random.default_rng(1).random((groups.count, problem.n_claims))
    expected = (dense * coef[:, rows.claim]).T
    got = problem.row_incidence(np.arange(groups.count), coef).toarray()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    structure = dual_structure(problem)
    prices = np.random.default_rng(2).normal(size=len(rows))
    np.testing.assert_allclose(
        structure.adjustment(prices),
        dense @ (prices[:, None] * problem.contribution[:, rows.claim].T),
        atol=1e-9,
    )


@pytest.mark.parametrize(
    ("n_cells", "expected"),
    [(100, "highs"), (150, "highs"), (300, "fast"), (2_000, "fast")],
)
def test_auto_takes_the_cheaper_backend_and_either_gives_the_highs_optimum(
    n_cells, expected, caplog
):
    """Both sides of the estimate's threshold (about 1,300 allowed pairs: 170 cells of 8
    options) reach HiGHS's optimum, and the choice is logged and kept with the solution."""
    problem = allocation_problem(n_cells, seed=3)
    with caplog.at_level("DEBUG", logger="engine.solve.choice"):
        sol = engine.solve(problem, method="auto")
    assert sol.method == sol.auto["method"] == expected
    assert f"auto: {expected}" in caplog.text
    cheaper = min(("fast", "highs"), key=lambda m: sol.auto[f"{m}_estimate_s"])
    assert cheaper == expected
    assert_optimum(problem, sol, engine.solve(problem, method="highs"))


def test_a_named_method_records_no_choice():
    assert engine.solve(allocation_problem(100, seed=3), method="highs").auto is None


def test_cells_of_small_zones_raise_the_fast_estimate():
    """The repair LP over small zones' cells is counted: the same land, all of it in zones
    of a few cells with targets, costs the fast path more than with provinces alone."""
    from engine.solve.choice import estimate

    base = allocation_problem(2_000, seed=3)
    local = estimate(with_local_targets(base, 500))
    assert local["local_rows"] > 0 and local["local_pairs"] == local["pairs"]
    assert local["fast_estimate_s"] > estimate(base)["fast_estimate_s"]


@SETTINGS
@given(local_target_problems())
def test_auto_gives_the_highs_optimum_with_many_small_zones(problem):
    highs = _solve_or_none(problem, "highs")
    assume(highs is not None)
    sol = engine.solve(problem, method="auto")
    assert sol.method == sol.auto["method"]
    assert_optimum(problem, sol, highs)


def test_the_dual_structure_grows_with_the_rows_not_their_square():
    """4,000 zones: the structure's arrays stay within a few bytes per cell, per (group,
    zoning, claim) and per row; a dense (groups x rows) table alone was 280 MB here."""
    from dataclasses import fields

    problem = with_local_targets(allocation_problem(20_000), 4_000)
    structure = dual_structure(problem)
    held = sum(
        getattr(structure, f.name).nbytes
        for f in fields(structure)
        if isinstance(getattr(structure, f.name), np.ndarray)
    )
    groups, rows = problem.groups.count, len(problem.rows)
    assert groups > 4_000 and rows > 8_000
    linear = problem.n_cells * (problem.n_options + 16) + groups * problem.group_rows[0].size * 8
    assert held <= linear + 64 * rows


def test_cells_of_two_zones_share_a_class_unless_their_options_meet_different_rows():
    """A target per municipality splits the aggregated LP's classes only where a cell may
    take the claim it is on: four alike cells in two zones with a target on claim 0 are one
    class with options that deliver to claim 1 only, and one class per zone with one for
    claim 0. The exact repair keeps a class per zone either way."""
    cells, area = np.arange(4), np.ones(4)
    for options, n_classes in (([True, False, True], 1), ([True, True, False], 2)):
        problem = engine.Problem(
            value=np.tile([0.0, 1.0, 1.0], (4, 1)),
            contribution=np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
            zones=np.array([[0, 0, 0, 0], [0, 0, 1, 1]]),
            lower=[np.array([[np.nan, 1.0]]), np.array([[1.0, np.nan], [1.0, np.nan]])],
            upper=[np.full((1, 2), np.nan), np.full((2, 2), np.nan)],
            allowed=np.tile(options, (4, 1)),
        )
        structure = dual_structure(problem)
        assert structure.n_groups == 2
        aggregated = fast_module._aggregated_classes(
            problem, structure, np.zeros(len(problem.rows)), np.inf, 0.05, area
        )
        assert len(aggregated.first) == n_classes, options
        free = fast_module.FreeCells(cells, np.tile(options, (4, 1)))
        assert len(fast_module._interchangeable(problem, structure, free, area).first) == 2


@SETTINGS
@given(local_target_problems(), st.booleans())
def test_classes_across_zones_keep_the_optimum(problem, aggregated):
    """With the small zones' targets priced like provinces (their cells then share
    aggregated classes across zones wherever their options meet the same rows), from the
    smoothed dual's prices or the aggregated LP's, the optimum is HiGHS's."""
    highs = _solve_or_none(problem, "highs")
    assume(highs is not None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast_module, "LOCAL_CELLS", 0)
        if aggregated:
            patch.setattr(fast_module, "FINE_EVALUATIONS", 0)
        assert_optimum(problem, engine.solve(problem, method="fast"), highs)
