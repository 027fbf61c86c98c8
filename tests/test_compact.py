"""Compact plans (engine/solve/compact.py) against the exact MILP, the targets, the rules,
and the config and report around them."""

from __future__ import annotations

import heapq
import json
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import ndimage, sparse

import engine
from engine.analysis.fragmentation import _row, fragmentation
from engine.compactness import page_rows, plan_objective, sweep_columns
from engine.config import ConfigError, load_config
from engine.errors import RuimtepuzzelError
from engine.paging import file_backed_zeros, release_pages
from engine.resources import shipped_dir
from engine.solve.compact import (
    Geometry,
    PatchRule,
    _counted_cut,
    _CutGraph,
    _Exact,
    _split_rows,
    boundary_cost,
    compact,
    patch_sizes,
    plan_x,
    split_cells,
)
from engine.solve.compact_reference import solve_compact_milp
from engine.solve.solution import allocation_totals
from engine.synthetic import smooth_field
from tests.configs import national_copy

# The stated bound: on these instances the compact plan gives up at most this much more
# than the MILP optimum does, as a share of what the MILP optimum gives up against the
# unclustered LP optimum: (MILP - ours) <= BOUND * (LP - MILP).
BOUND = 0.35


def grid_problem(seed, ny=14, nx=14, n_options=4, *, elastic=True, density=1.0):
    """A small grid with two provinces, options 1.. each serving one claim, lower targets
    of 5-15 % of each province (times ``density``), 10 % of the cells forbidding an option."""
    rng = np.random.default_rng(seed)
    n = ny * nx
    value = np.zeros((n, n_options))
    for o in range(1, n_options):
        field = smooth_field((ny, nx), rng, 3.0) + 0.5 * rng.standard_normal((ny, nx))
        value[:, o] = field.ravel() - 1.0
    contribution = np.zeros((n_options, n_options - 1))
    contribution[np.arange(1, n_options), np.arange(n_options - 1)] = 1.0
    province = (np.arange(n) % nx >= nx // 2).astype(int)
    zones = np.stack([np.zeros(n, int), province])
    area = 6.25
    lower_prov = rng.uniform(0.05, 0.15, (2, n_options - 1)) * density * n / 2 * area
    lower = [np.full((1, n_options - 1), np.nan), lower_prov]
    upper = [np.full((1, n_options - 1), np.nan), np.full((2, n_options - 1), np.nan)]
    allowed = np.ones((n, n_options), bool)
    allowed[:, 1:] = rng.random((n, n_options - 1)) > 0.1
    penalty = np.full(n_options - 1, 20.0) if elastic else None
    problem = engine.Problem(value, contribution, zones, lower, upper, allowed, area, penalty)
    return problem, Geometry((ny, nx), np.arange(n), 0.25)


def rules_for(problem, edge_cost=1.5, min_cells=3):
    return [PatchRule(o, min_cells, edge_cost) for o in range(1, problem.n_options)]


def penalised(problem, geometry, rules, plan) -> float:
    return plan_objective(problem, plan)[0] - boundary_cost(geometry, plan, rules)


def milp_of(problem, geometry, rules, exact, **options):
    """The exact compact MILP, the cells the exact optimum splits fixed as it splits them
    (the compaction leaves them as they are)."""
    keep = sparse.diags(split_cells(exact.x).astype(float)) @ sparse.csr_matrix(exact.x)
    return solve_compact_milp(problem, geometry, rules, keep=keep, **options)


@pytest.mark.parametrize("seed", range(8))
def test_within_the_stated_bound_of_the_exact_milp(seed):
    problem, geometry = grid_problem(seed)
    rules = rules_for(problem)
    exact = engine.solve(problem)
    ours = penalised(problem, geometry, rules, compact(problem, exact, geometry, rules).x)
    milp = milp_of(problem, geometry, rules, exact, time_limit=60)
    assert milp.status == "Optimal"
    best = penalised(problem, geometry, rules, milp.x)
    # The MILP relaxes only the minimum patch size, so it bounds every plan from above.
    tol = 1e-6 * max(1.0, abs(best))
    assert ours <= best + tol
    assert best - ours <= BOUND * (exact.objective - best) + tol


def check_plan(problem, exact, geometry, rules, result):
    """What every compact plan keeps: the rules, whole cells but for those the exact optimum
    splits, every target row's shortfall (and no upper bound passed) as in the exact
    optimum, the exact optimum as upper bound; and bit for bit the same on a second run."""
    x = sparse.csr_matrix(result.x)
    assert np.allclose(np.asarray(x.sum(axis=1)).ravel(), 1.0)
    rows, cols = x.nonzero()
    assert problem.allowed[rows, cols].all()
    split = split_cells(exact.x)
    assert np.array_equal(split_cells(x), split)
    assert (x[split] != sparse.csr_matrix(exact.x)[split]).nnz == 0
    value, supply, shortfall = plan_objective(problem, x)
    _, exact_supply, exact_shortfall = plan_objective(problem, exact.x)
    scale = problem.units.area
    assert np.allclose(shortfall, exact_shortfall, rtol=0, atol=1e-9 * scale)
    target = problem.rows
    over = target.has_upper & (supply > np.fmax(target.upper, exact_supply) + 1e-9 * scale)
    assert not over.any()
    assert value <= exact.objective + 1e-9 * max(1.0, abs(exact.objective))
    again = compact(problem, exact, geometry, rules)
    assert np.array_equal(again.choice, result.choice)
    assert (again.x != x).nnz == 0


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("elastic", [True, False])
def test_targets_rules_and_whole_cells(seed, elastic):
    problem, geometry = grid_problem(100 + seed, ny=18, nx=18, elastic=elastic, density=0.7)
    rules = rules_for(problem, edge_cost=3.0, min_cells=4)
    exact = engine.solve(problem)
    check_plan(problem, exact, geometry, rules, compact(problem, exact, geometry, rules))


def test_no_patch_below_the_minimum_where_there_is_room():
    # Sparse targets on open land: every option has room for whole patches.
    problem, geometry = grid_problem(7, ny=30, nx=30, density=0.5)
    rules = rules_for(problem, edge_cost=0.5, min_cells=4)
    exact = engine.solve(problem)
    before = compact(problem, exact, geometry, []).choice
    after = compact(problem, exact, geometry, rules).choice
    small_before = 0
    for o in range(1, problem.n_options):
        patch, sizes = patch_sizes(geometry, before == o)
        small_before += int(np.sum(sizes[1:] < 4))
        patch, sizes = patch_sizes(geometry, after == o)
        assert np.all(sizes[1:] >= 4), problem.option_names[o]
    assert small_before > 0  # the test has something to do
    assert boundary_cost(geometry, after, rules) < boundary_cost(geometry, before, rules)


def test_fragmentation_counts_patches_and_edges():
    # 0 1 1 0 2
    # 0 1 0 0 2
    # 1 0 0 0 0      option 1: a patch of 3 and a single cell; option 2: a patch of 2
    choice = np.array([[0, 1, 1, 0, 2], [0, 1, 0, 0, 2], [1, 0, 0, 0, 0]]).ravel()
    geometry = Geometry((3, 5), np.arange(15), 0.25)
    rows = fragmentation(
        geometry,
        choice,
        option_names=["keep", "a", "b"],
        options=[1, 2],
        zone=np.zeros(15, int),
        zone_names=["p"],
        cell_ha=6.25,
        min_patch_ha={"a": 12.5},
    )
    a = rows[0]
    assert (a["option"], a["zone"], a["patches"]) == ("a", "national", 2)
    assert a["smallest_patch_ha"] == 6.25 and a["largest_patch_ha"] == 18.75
    assert a["single_cell_share"] == pytest.approx(0.25)
    assert a["below_min_share"] == pytest.approx(0.25)
    # Sides to other cells only (none on the grid's edge): the L of three has 6, the corner
    # cell 2.
    assert a["boundary_km"] == pytest.approx((6 + 2) * 0.25)
    b = rows[2]
    assert b["patches"] == 1 and b["below_min_share"] is None and b["boundary_km"] == 0.75


def _rows_over_the_whole_table(
    geometry, choice, options, names, zone, zone_names, allowed, minimum
):
    """fragmentation's rows worked out over the grid's whole neighbour table: what the write
    stage did before it looked up the option's cells alone (main at da58e6a)."""
    nbr, n_zones, rows = geometry.neighbours, len(zone_names), []
    for o in options:
        mask = choice == o
        patch, sizes = patch_sizes(geometry, mask)
        cells = np.flatnonzero(mask)
        around = nbr[cells]
        valid = around >= 0
        edges = (valid & ~mask[np.where(valid, around, 0)]).sum(axis=1) * geometry.cell_km
        patch = patch[cells]
        forced = sizes[patch] == 1
        single = np.flatnonzero(forced)
        there = nbr[cells[single]]
        forced[single] = ~np.any((there >= 0) & allowed[np.where(there >= 0, there, 0), o], 1)
        rows.append(_row(names[o], "national", patch, edges, forced, 1.0, minimum))
        zone_of = zone[cells]
        order = np.argsort(zone_of, kind="stable")
        bounds = np.searchsorted(zone_of[order], np.arange(n_zones + 1))
        key = (patch.astype(np.int64) * n_zones + zone_of)[order]
        edges, forced = edges[order], forced[order]
        for z in range(n_zones):
            part = slice(bounds[z], bounds[z + 1])
            rows.append(_row(names[o], zone_names[z], key[part], edges[part], forced[part], 1.0,
                             minimum))  # fmt: skip
    return rows


class _WithoutTable(Geometry):
    """A geometry whose whole neighbour table (16 bytes a cell) may not be built."""

    @property
    def neighbours(self):
        raise AssertionError("the grid's whole neighbour table was built")


@settings(max_examples=150, deadline=None)
@given(
    ny=st.integers(1, 12),
    nx=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    land=st.floats(0.0, 1.0),
    positions=st.sampled_from([np.int32, np.int64]),
)
def test_fragmentation_from_the_options_cells_is_the_whole_tables(ny, nx, seed, land, positions):
    # Grids with sea and holes (cells of the grid outside the problem), one row or column,
    # any number of zones, rules that leave some single cells nowhere to join, options
    # without cells, and the cells' positions in either type a grid gives them.
    rng = np.random.default_rng(seed)
    flat = np.flatnonzero(rng.random(ny * nx) < land).astype(positions)
    n = len(flat)
    names = ["keep", "a", "b", "c", "d"]
    choice = rng.integers(0, len(names) - 1, n)  # "d" has no cells
    zone_names = [f"z{z}" for z in range(int(rng.integers(0, 4)))]
    zone = rng.integers(0, max(len(zone_names), 1), n)
    allowed = rng.random((n, len(names))) < 0.5
    rows = fragmentation(
        _WithoutTable((ny, nx), flat, 1.0),
        choice,
        option_names=names,
        options=[1, 2, 3, 4],
        zone=zone,
        zone_names=zone_names,
        cell_ha=1.0,
        min_patch_ha={name: 2.0 for name in names},
        allowed=allowed,
    )
    geometry = Geometry((ny, nx), flat, 1.0)
    assert np.array_equal(geometry.neighbours_of(np.arange(n)), geometry.neighbours)
    whole = _rows_over_the_whole_table(
        geometry, choice, [1, 2, 3, 4], names, zone, zone_names, allowed, 2.0
    )
    assert repr(rows) == repr(whole)


def test_fragmentation_lets_the_pages_of_a_paged_mask_go(tmp_path):
    """Single cells spread over the whole grid: the rules' mask is read around each, which
    with a paged mask (--memory) maps nearly all of it. Those pages go once read."""
    from tests.test_paging import resident_mb

    ny = nx = 4096
    n, n_options = ny * nx, 8
    allowed = file_backed_zeros((n, n_options), np.bool_, tmp_path)  # 128 MB
    allowed[:] = True
    release_pages(allowed)
    choice = np.zeros(n, dtype=np.int16)
    choice[::997] = 1
    zone = np.zeros(n, dtype=np.int64)

    def figures(geometry, choice, allowed):
        names = [f"o{o}" for o in range(n_options)]
        return fragmentation(
            geometry, choice, option_names=names, options=[1], zone=zone[: len(choice)],
            zone_names=[], cell_ha=0.0625, allowed=allowed,
        )  # fmt: skip

    figures(Geometry((1, 2), np.arange(2), 0.025), choice[:2], allowed[:2])  # kernels loaded
    before = resident_mb()
    rows = figures(Geometry((ny, nx), np.arange(n), 0.025), choice, allowed)
    assert rows[0]["single_cell_share"] == 1.0 and rows[0]["single_cell_share_forced"] == 0.0
    assert resident_mb() - before < 40, (before, resident_mb())


def test_bad_compactness_config_says_file_key_and_fix(tmp_path):
    # The shipped entry for defence is taken out, so that the test can write its own.
    shipped = (shipped_dir("configs") / "national.toml").read_text()
    defence = re.search(r"\[compactness\.defence\].*?(?=\n\[|\Z)", shipped, re.S).group(0)

    def error(extra):
        with pytest.raises(ConfigError) as info:
            load_config(national_copy(tmp_path, extra, replace={defence: ""}))
        return str(info.value)

    assert "neither an option nor a claim" in error("[compactness.windd]\nmin_patch_ha = 5\n")
    msg = error("[compactness.solar_park]\nmin_patch_ha = 5\n".replace("solar_park", "wind_x"))
    assert "compactness.wind_x" in msg
    msg = error("[compactness.defence]\nmin_patch_ha = 5\n")
    assert "source line or a named assumption" in msg and "compactness.defence" in msg
    msg = error('[compactness.defence]\nmin_patch_ha = "solar_yield"\n')
    assert "is in 'GWh/ha'" in msg
    msg = error('[compactness.keep]\nmin_patch_ha = "compact_min_patch_work"\n')
    assert "delivers no claim" in msg
    msg = error('[compactness.defence]\nsource = "L1418"\n')
    assert "min_patch_ha and/or boundary_penalty" in msg


def test_the_config_configures_the_options_the_source_asks_for():
    config = load_config("national")
    for option in ("wind", "solar", "work", "housing_edge", "water_storage"):
        spec = config.compactness[option]
        assert spec.min_patch_ha > 0 and spec.boundary_penalty > 0
    assert config.compactness["wind"].source == "L1418"
    assert config.compactness["work"].source == "L1683"
    off = load_config("national", {"compactness.work.enabled": False})
    assert "work" not in off.compactness


def test_the_run_reports_what_compactness_costs(national_config, synthetic, tmp_path):
    from engine.run import run

    report = run(national_config, tmp_path / "out", grid=synthetic, progress=False, analysis="off")
    section = json.loads((tmp_path / "out" / "report.json").read_text())["compactness"]
    assert section == json.loads(json.dumps(report["compactness"]))
    assert section["enabled"] and section["connectivity"] == 4
    given_up = section["exact_objective"] - section["plan_objective"]
    assert section["value_given_up"] == pytest.approx(given_up)
    assert section["value_given_up"] >= -1e-6 * abs(section["exact_objective"])
    assert section["targets_as_unclustered"]
    claims = {r["claim"] for r in section["by_claim_and_province"]}
    assert {"renewable_energy", "work"} <= claims
    rows = page_rows(report)
    assert rows and rows[0]["rule"] is not None
    columns = sweep_columns(report)
    assert columns["compact_value_given_up"] == section["value_given_up"]
    assert "patches_wind" in columns


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    side=st.integers(1, 9),
    value_scale=st.sampled_from([1.0, 1e-3, 1e4]),
    area_scale=st.sampled_from([1.0, 1e-3, 1e4]),
    density=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    elastic=st.booleans(),
    at_capacity=st.booleans(),
    forbid_all=st.booleans(),
    min_cells=st.integers(1, 5),
    reserved=st.booleans(),
)
def test_properties_at_the_extremes(
    seed,
    side,
    value_scale,
    area_scale,
    density,
    elastic,
    at_capacity,
    forbid_all,
    min_cells,
    reserved,
):
    """Tiny grids, values and areas in other units, targets up to and at capacity, an option
    allowed nowhere: the compact plan honours the rules, meets every target as the exact
    plan does and never exceeds the exact optimum (check_plan). ``reserved``: in a third of
    the cells keep is not allowed (reserved land: cells swap between new uses there)."""
    problem, geometry = grid_problem(seed, ny=side, nx=side + 1, elastic=elastic, density=density)
    allowed = problem.allowed.copy()
    if forbid_all:
        allowed[:, 1] = False
    if reserved:
        block = np.arange(problem.n_cells) % (side + 1) < (side + 1) // 3
        allowed[block, 0] = False
        allowed[block, 3] = True
    lower = [np.array(b, dtype=float) for b in problem.lower]
    if at_capacity:
        # Option 2's claim asks exactly what the cells allowing it can give, per province.
        cells = np.bincount(problem.zones[1], weights=allowed[:, 2], minlength=2)
        lower[1][:, 1] = cells * problem.area
    scale = area_scale
    problem = engine.Problem(
        problem.value * value_scale,
        problem.contribution,
        problem.zones,
        [b * scale for b in lower],
        [b * scale for b in problem.upper],
        allowed,
        problem.area * scale,
        None if problem.shortfall_penalty is None else problem.shortfall_penalty * value_scale,
    )
    try:
        exact = engine.solve(problem)
    except RuimtepuzzelError:
        assume(False)  # a hard target that cannot be met: no plan to compact
    rules = [PatchRule(o, min_cells, 0.4 * value_scale * scale) for o in (1, 2, 3)]
    check_plan(problem, exact, geometry, rules, compact(problem, exact, geometry, rules))


def test_min_patch_rules_out_land_no_patch_can_use(national_config):
    """Land where the rules allow a use only on a piece smaller than its minimum patch (a
    village core of one cell) is ruled out before the solve: no forced single cells remain,
    and the report's bound on what that costs holds against the exact optimum without it."""
    from rp_grid import synthetic_grid

    from engine.analysis.rule_costs import relaxed_problem
    from engine.compactness import (
        cluster,
        compactness_section,
        geometry_of,
        min_patch_cells,
        min_patch_relaxation,
    )
    from engine.compile import compile_problem
    from engine.solve.compact import patch_sizes

    config = load_config(national_config)
    compiled = compile_problem(config, synthetic_grid(resolution=250.0))
    problem, names = compiled.problem, compiled.problem.option_names
    relaxed = min_patch_relaxation(compiled)
    assert relaxed is not None, "the synthetic land has pieces too small for some use"
    geometry = geometry_of(compiled)
    for name, cells in compiled.effects.min_patch.items():
        o = names.index(name)
        assert not problem.allowed[cells, o].any()
        patch, sizes = patch_sizes(geometry, relaxed[:, o])
        minimum = min_patch_cells(config.compactness[name].min_patch_ha, compiled.area_ha)
        assert np.all(sizes[patch[cells]] < minimum)

    sol = engine.solve(problem)
    section = compactness_section(compiled, cluster(compiled, sol))
    for row in section["fragmentation"]:
        spec = config.compactness.get(row["option"])
        if spec and min_patch_cells(spec.min_patch_ha, compiled.area_ha) > 1:
            assert row["single_cell_share_forced"] == 0, row

    free = engine.solve(relaxed_problem(problem, relaxed))
    tol = 1e-7 * max(1.0, abs(sol.objective))
    cost = free.objective - sol.objective
    bound = section["min_patch_exclusion"]["value_bound"]
    assert -tol <= cost <= bound + tol
    assert section["value_given_up_at_most"] >= free.objective - section["plan_objective"] - tol


@pytest.mark.parametrize("upper_nature", [None, 35 * 6.25])
def test_a_single_reserved_cell_joins_the_option_around_it(upper_nature):
    """Reserved land (keep not allowed): water storage on one cell inside water storage with
    nature. No cell of water storage elsewhere to swap with (step 4), so the cell joins the
    option around it, which delivers at least as much of every claim (step 5); where that
    would pass an upper bound, it takes a neighbour into water storage instead."""
    ny = nx = 6
    n = ny * nx
    value = np.zeros((n, 3))
    value[:, 1], value[:, 2] = 0.0, 1.0  # 1: water storage, 2: water storage with nature
    lone = 2 * nx + 3
    value[lone, 1] = 2.0
    contribution = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])  # claims: water, nature
    zones = np.zeros((1, n), int)
    lower = [np.array([[n * 6.25, np.nan]])]
    upper = [np.array([[np.nan, np.nan if upper_nature is None else upper_nature]])]
    allowed = np.ones((n, 3), bool)
    allowed[:, 0] = False
    problem = engine.Problem(value, contribution, zones, lower, upper, allowed, 6.25, None)
    exact = engine.solve(problem, method="highs")
    assert exact.choice[lone] == 1 and (exact.choice == 1).sum() == 1
    geometry = Geometry((ny, nx), np.arange(n), 0.25)
    plan = compact(problem, exact, geometry, [PatchRule(1, 2, 0.5), PatchRule(2, 2, 0.5)])
    if upper_nature is None:
        assert plan.choice[lone] == 2 and (plan.choice == 2).all()
    else:  # 36 cells of nature would pass the upper bound of 35: a neighbour joins it
        assert plan.choice[lone] == 1 and (plan.choice == 1).sum() == 2
        _, sizes = patch_sizes(geometry, plan.choice == 1)
        assert sizes[1:].min() == 2
    supply = plan_objective(problem, plan.choice)[1]
    exact_supply = plan_objective(problem, exact.x)[1]
    assert supply[0] == pytest.approx(exact_supply[0])
    assert np.all(supply <= np.nan_to_num(problem.rows.upper, nan=np.inf) + 1e-9)


def bisection_cut(graph, need, reach, steps=50):
    """The counted cut as a plain bisection over the offset finds it, every cut over the
    whole graph."""
    low, high = -reach, reach
    low_labels = np.zeros(graph.n, dtype=bool)
    for _ in range(steps):
        mid = 0.5 * (low + high)
        labels = graph.solve(mid)
        taken = int(labels.sum())
        if taken == need:
            return labels
        if taken < need:
            low, low_labels = mid, labels
        else:
            high = mid
    return low_labels


def random_cut_graph(seed, ny, nx, levels, w):
    """A grid of cuts whose advantages take ``levels`` values each side of 0 (many cells
    tie: as in a cell group, where cells of one value class share their prices), or any
    value (``levels`` 0), some cells with fixed neighbours in or out."""
    rng = np.random.default_rng(seed)
    n = ny * nx
    gain = rng.integers(-levels, levels + 1, n) * 0.7 if levels else rng.normal(0.0, 2.0, n)
    fixed_in = rng.integers(0, 3, n) * (rng.random(n) < 0.2)
    fixed_out = rng.integers(0, 3, n) * (rng.random(n) < 0.2)
    index = np.arange(n).reshape(ny, nx)
    a = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])
    b = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])
    graph = _CutGraph(gain, fixed_in, fixed_out, a, b, w)
    return graph, float(np.abs(gain).max()) + 4 * w + 1.0


def cut_energy(graph, labels, offset):
    edges = np.count_nonzero(labels[graph.edge_a] != labels[graph.edge_b])
    unary = np.where(
        labels, graph.w * graph.fixed_out - graph.gain - offset, graph.w * graph.fixed_in
    )
    return float(unary.sum()) + graph.w * edges


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    ny=st.integers(1, 12),
    nx=st.integers(1, 12),
    levels=st.integers(0, 6),
    w=st.sampled_from([0.0, 0.1, 0.3, 1.0, 2.5]),
    share=st.floats(0.0, 1.0),
)
def test_counted_cut_is_the_bisection_cut(seed, ny, nx, levels, w, share):
    """The cut search (Newton steps over the cells still open, the others held) finds the
    largest minimum cut that takes at most the count, at an offset where the next cut takes
    more: with advantages of any value the very cells a bisection over the whole graph finds.
    Where many cells tie, the cut at the offset of the jump is not unique, and the search and
    the bisection may return different minimum cuts there (either may be the larger)."""
    graph, reach = random_cut_graph(seed, ny, nx, levels, w)
    need = int(round(share * graph.n))
    labels, offset = _counted_cut(graph, need, reach)
    taken = int(labels.sum())
    assert taken <= need
    scale = 1e-9 * reach * graph.n
    assert (
        cut_energy(graph, labels, offset) <= cut_energy(graph, graph.solve(offset), offset) + scale
    )
    if taken < need:
        assert graph.solve(offset + 1e-9 * reach).sum() > need
    if levels == 0:
        assert np.array_equal(labels, bisection_cut(graph, need, reach))


def holed_geometry(rng, ny, nx):
    """A grid of ny x nx with a random share of its cells outside the problem (the sea)."""
    return Geometry((ny, nx), np.flatnonzero(rng.random(ny * nx) < rng.uniform(0.3, 1.0)), 0.25)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), ny=st.integers(1, 30), nx=st.integers(1, 30))
def test_patches_as_a_raster_labelling_numbers_them(seed, ny, nx):
    """patch_sizes over the mask's cells: the patches and their numbers of
    scipy.ndimage.label on the grid, with cells outside the problem (the sea) in it."""
    rng = np.random.default_rng(seed)
    geometry = holed_geometry(rng, ny, nx)
    flat = geometry.flat
    mask = rng.random(len(flat)) < rng.uniform(0.0, 1.0)
    labels, n = ndimage.label(geometry.raster(mask, fill=False))
    patch, sizes = patch_sizes(geometry, mask)
    assert np.array_equal(patch, labels.ravel()[flat])
    assert np.array_equal(sizes, np.bincount(patch, minlength=n + 1))


def numpy_cut_terms(nbr, label, cells):
    """The terms of a cut as the NumPy code before ``compact_kernels.cut_terms`` built them
    (the reference the kernel is held to)."""
    local = np.full(nbr.shape[0], -1, dtype=np.int64)
    local[cells] = np.arange(len(cells))
    around = nbr[cells]
    valid = around >= 0
    around_local = np.where(valid, local[np.where(valid, around, 0)], -1)
    fixed = valid & (around_local < 0)
    fixed_in = fixed & label[np.where(valid, around, 0)]
    a, d = np.nonzero(around_local[:, [1, 3]] >= 0)
    return fixed_in.sum(axis=1), (fixed & ~fixed_in).sum(axis=1), a, around_local[:, [1, 3]][a, d]


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    ny=st.integers(1, 30),
    nx=st.integers(1, 30),
    cut_share=st.floats(0.0, 1.0),
)
def test_a_cut_graph_has_the_terms_the_numpy_construction_gave(seed, ny, nx, cut_share):
    """_CutGraph.of (the kernel) against the NumPy construction it replaced: the same
    counts of held neighbours and the same edges in the same order, over any subset of the
    cells of a grid with holes (the sea), every other cell in or out at random."""
    from engine.solve.compact_kernels import cut_terms

    rng = np.random.default_rng(seed)
    nbr = holed_geometry(rng, ny, nx).neighbours
    label = rng.random(len(nbr)) < rng.uniform(0.0, 1.0)
    cells = np.flatnonzero(rng.random(len(nbr)) < cut_share)
    got = cut_terms(cells, nbr, label)
    for ours, theirs in zip(got, numpy_cut_terms(nbr, label, cells), strict=True):
        assert ours.dtype == np.int64
        assert np.array_equal(ours, theirs)
    if len(cells) > 1:
        with pytest.raises(ValueError, match="increasing"):
            cut_terms(cells[::-1].copy(), nbr, label)


def python_grow(nbr, label, gain, w, min_cells, candidates, count, frontier_only):
    """The greedy growth as the Python code before ``compact_kernels.grow`` did it, heapq
    and all (the reference the kernel is held to); ``label`` in place."""
    candidate = np.zeros(len(label), dtype=bool)
    candidate[candidates] = True
    current = {}

    def marginal(i):
        around = [j for j in nbr[i] if j >= 0]
        inside = sum(1 for j in around if label[j])
        return float(gain[i]) - w * (len(around) - 2 * inside)

    def take(i):
        label[i], candidate[i] = True, False
        for j in nbr[i]:
            if j >= 0 and candidate[j]:
                current[int(j)] = marginal(j)
                heapq.heappush(heap, (-current[int(j)], int(j)))

    start = [int(i) for i in candidates]
    if frontier_only:
        start = [i for i in start if any(j >= 0 and label[j] for j in nbr[i])]
    ranked = sorted((marginal(i) for i in start), reverse=True)
    start = [i for i in start if len(start) <= count or marginal(i) >= ranked[count - 1]]
    current.update((i, marginal(i)) for i in start)
    heap = [(-current[i], i) for i in start]
    heapq.heapify(heap)
    room, added = None, 0
    while added < count:
        if not heap:
            if room is None:
                region = flood_regions(nbr, candidate)
                size_of = dict(zip(*np.unique(region, return_counts=True)))
                room = np.array([size_of[r] for r in region])
            size = min(min_cells, count - added)
            idx = np.flatnonzero(candidate)
            if len(idx) == 0:
                break
            roomy = idx[room[idx] >= size]
            idx = roomy if len(roomy) else idx
            patch, ring = [int(idx[np.argmax(gain[idx])])], []
            while len(patch) < size:
                for j in nbr[patch[-1]]:
                    if j >= 0 and candidate[j] and int(j) not in patch:
                        heapq.heappush(ring, (-float(gain[j]), int(j)))
                while ring and ring[0][1] in patch:
                    heapq.heappop(ring)
                if not ring:
                    break
                patch.append(heapq.heappop(ring)[1])
            for i in patch:
                take(i)
                added += 1
            continue
        neg, i = heapq.heappop(heap)
        if candidate[i] and current[i] == -neg:
            take(i)
            added += 1
    return added


def flood_regions(nbr, mask):
    """Per cell its region of ``mask`` (by a plain flood fill), -1 outside."""
    region = np.full(len(mask), -1)
    for first in np.flatnonzero(mask):
        if region[first] < 0:
            region[first], todo = first, [first]
            while todo:
                for j in nbr[todo.pop()]:
                    if j >= 0 and mask[j] and region[j] < 0:
                        region[j] = first
                        todo.append(j)
    return region


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    ny=st.integers(1, 16),
    nx=st.integers(1, 16),
    levels=st.integers(0, 4),
    w=st.sampled_from([0.0, 0.3, 1.0, 2.5]),
    min_cells=st.integers(1, 6),
    share=st.floats(0.0, 1.2),
    frontier_only=st.booleans(),
)
def test_the_growth_kernel_takes_the_cells_the_python_growth_took(
    seed, ny, nx, levels, w, min_cells, share, frontier_only
):
    """compact_kernels.grow against the heapq growth it replaced: the same cells in the
    option, with many advantages tied (``levels``: a few values each side of 0), counts up
    to more than the candidates (the seeds of new patches, and running out), any minimum."""
    from engine.solve.compact_kernels import grow

    rng = np.random.default_rng(seed)
    nbr = holed_geometry(rng, ny, nx).neighbours
    n = len(nbr)
    gain = rng.integers(-levels, levels + 1, n) * 0.7 if levels else rng.normal(0.0, 2.0, n)
    label = rng.random(n) < rng.uniform(0.0, 0.6)
    candidates = np.flatnonzero(~label & (rng.random(n) < rng.uniform(0.3, 1.0)))
    count = int(round(share * len(candidates)))
    assume(count > 0)
    theirs = label.copy()
    placed = python_grow(nbr, theirs, gain, w, min_cells, candidates, count, frontier_only)
    assert grow(candidates, count, frontier_only, label, nbr, gain, w, min_cells) == placed
    assert np.array_equal(label, theirs)


def random_plan(problem, rng, split_share):
    """A plan as the compaction holds them: one option per cell, and a share of the cells
    split over two or three options at random fractions (an exact optimum's split cells)."""
    n, n_options = problem.n_cells, problem.n_options
    choice = rng.integers(0, n_options, n)
    split = rng.random(n) < split_share
    rows = np.flatnonzero(split)
    parts = rng.integers(2, 4, len(rows))
    cols = [rng.choice(n_options, k, replace=False) for k in parts]
    fractions = [rng.dirichlet(np.ones(k)) for k in parts]
    x = sparse.csr_matrix(
        (
            np.concatenate([np.ones(n - len(rows)), *fractions]),
            (
                np.concatenate([np.flatnonzero(~split), np.repeat(rows, parts)]),
                np.concatenate([choice[~split], *cols]),
            ),
        ),
        shape=(n, n_options),
    )
    x.sum_duplicates()
    return choice, x, split


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    ny=st.sampled_from([1, 3, 17, 181]),  # 181 x 400: three blocks of the kernels, one partial
    area=st.sampled_from([6.25, 0.1, 1e4 / 3]),
    split_share=st.sampled_from([0.0, 0.01, 0.5, 1.0]),
)
def test_a_trial_plans_supply_is_the_allocation_totals_of_the_plan(seed, ny, area, split_share):
    """What the compaction finds a trial plan supplies (one pass over the choice) is what
    ``allocation_totals`` of the plan's allocation (``plan_x``) gives, bit for bit: the
    plans it keeps are the ones the allocation would keep. Fractions and areas that no
    binary float holds exactly, split cells anywhere, grids of more than one block."""
    rng = np.random.default_rng(seed)
    problem, _ = grid_problem(seed, ny=ny, nx=400 if ny == 181 else ny + 2)
    problem = engine.Problem(
        problem.value,
        problem.contribution,
        problem.zones,
        problem.lower,
        problem.upper,
        problem.allowed,
        area,
        problem.shortfall_penalty,
    )
    choice, x, split = random_plan(problem, rng, split_share)
    exact = _Exact(problem, x, split)
    trial = choice.copy()
    trial[rng.random(len(trial)) < 0.1] = rng.integers(0, problem.n_options)
    expected = allocation_totals(problem, plan_x(trial, x, split))[1]
    np.testing.assert_array_equal(exact.plan_supply(trial), expected)
    np.testing.assert_array_equal(exact.supply, allocation_totals(problem, x)[1])


def summed_plan_x(choice, exact_x, split):
    """The plan as the compaction built it before it was laid out directly: a one-hot
    matrix of the whole cells plus the split rows (a product with a diagonal)."""
    n, n_options = exact_x.shape
    whole = sparse.csr_matrix(
        ((~split).astype(np.float64), choice, np.arange(n + 1)), shape=(n, n_options)
    )
    kept = (sparse.diags(split.astype(np.float64)) @ exact_x).tocsr()
    kept.eliminate_zeros()
    out = (whole + kept).tocsr()
    out.eliminate_zeros()
    out.sort_indices()
    return out


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    ny=st.sampled_from([1, 3, 17]),
    split_share=st.sampled_from([0.0, 0.01, 0.5, 1.0]),
    zeros=st.sampled_from([0.0, 0.2]),
)
def test_the_plan_laid_out_directly_is_the_summed_plan(seed, ny, split_share, zeros):
    """``plan_x`` (and the split rows it takes) give the entries, in the order, of the sum
    of the one-hot plan and the split rows they replace: with the compaction's int16
    choices, any share of split cells, and explicit zeros stored in the exact allocation
    (they are left out, as ``eliminate_zeros`` left them out)."""
    rng = np.random.default_rng(seed)
    problem, _ = grid_problem(seed, ny=ny, nx=ny + 2)
    choice, x, split = random_plan(problem, rng, split_share)
    x.data[rng.random(x.nnz) < zeros] = 0.0  # stored, not eliminated
    choice = choice.astype(np.int16)
    got, expected = plan_x(choice, x, split), summed_plan_x(choice, x, split)
    assert got.has_canonical_format
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.data, expected.data)
    kept = _split_rows(x, split)
    assert not (kept.data == 0).any()
    np.testing.assert_array_equal(kept.toarray(), np.where(split[:, None], x.toarray(), 0.0))
