"""Rules really act: exclusions, reservations (deepest first), ladders, and their checks."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rp_grid import synthetic_grid
from scipy import ndimage

from engine.compile import check_capacity, compile_problem
from engine.config import ConfigError, load_config
from engine.rules import (
    Cells,
    _neighbours_of,
    _ordered_codes,
    _pair_keys,
    evaluate,
    reserve_ranked,
    small_patch_mask,
)

NATIONAL = Path(__file__).resolve().parents[1] / "configs" / "national.toml"


@pytest.fixture(scope="module")
def grid():
    return synthetic_grid(block=20)


@pytest.fixture(scope="module")
def compiled(grid):
    return compile_problem(load_config(NATIONAL), grid)


def _col(compiled, name):
    return compiled.problem.option_names.index(name)


def test_no_building_allowed_in_floodplains_or_dike_zones(compiled):
    p, cells = compiled.problem, compiled.cells
    flood = cells.layer("floodplain") == 1
    dike = cells.layer("dike_zone") == 1
    assert flood.sum() > 0 and dike.sum() > 0
    for name in ("housing_urban", "housing_edge", "work", "defence"):
        o = _col(compiled, name)
        assert not p.allowed[flood, o].any(), name
        assert not p.allowed[dike, o].any(), name
    # The rules do not forbid what they do not name: wet nature may go into a floodplain.
    assert p.allowed[flood, _col(compiled, "water_storage_nature")].any()


def test_a_cell_holding_a_park_is_not_new_land(compiled):
    p, cells = compiled.problem, compiled.cells
    park = cells.layer("existing_energy") > 0
    assert park.sum() > 0
    keep = _col(compiled, "keep")
    assert p.allowed[park, keep].all()
    others = [o for o in range(p.n_options) if o != keep]
    assert not p.allowed[np.ix_(park, others)].any()


def test_no_homes_inside_the_external_safety_contour(compiled):
    p, cells = compiled.problem, compiled.cells
    risky = cells.layer("external_safety") == 1
    assert risky.any()
    for name in ("housing_urban", "housing_edge"):
        assert not p.allowed[risky, _col(compiled, name)].any()


def test_deep_polder_storage_takes_the_deepest_cells_first(compiled, grid):
    p, cells = compiled.problem, compiled.cells
    reserved = compiled.effects.reserved
    deep = cells.layer("deep_polder") == 1
    elev = cells.layer("elevation")
    # Per polder, split at provincial borders (each province reserves its own part).
    polder = cells.layer("deep_polder_id") * 100 + cells.layer("province")
    built = np.isin(cells.layer("land_cover"), [1, 3])  # built_up, greenhouse: never storage
    share = compiled.config.assumptions["deep_polder_storage_share"].value
    assert reserved.any() and not reserved[~deep].any() and not reserved[built].any()
    storage = [_col(compiled, "water_storage"), _col(compiled, "water_storage_nature")]
    for g in np.unique(polder[deep]):  # per polder, of its open land (L188)
        in_g = deep & (polder == g) & ~built
        taken = reserved & in_g
        assert taken.sum() == int(np.floor(share * in_g.sum() + 0.5))
        # Every reserved cell lies at least as deep as every cell left out that could hold
        # storage (open water and Natura 2000 cannot).
        could = in_g & p.allowed[:, storage].any(axis=1) & ~taken
        if taken.any() and could.any():
            assert elev[taken].max() <= elev[could].min()
    # Reserved cells take only storage: no building, not even the current use.
    only = np.zeros(p.n_options, dtype=bool)
    only[storage] = True
    assert (p.allowed[reserved] <= only).all()
    # The reserved hectares are the water-storage target of each province and of the nation.
    k = p.claim_names.index("water_storage")
    nat = p.zoning_names.index("national")
    prov_z = p.zoning_names.index("province")
    assert compiled.stated_lower[nat][0, k] == pytest.approx(reserved.sum() * compiled.area_ha)
    assert np.nansum(p.lower[prov_z][:, k]) == pytest.approx(reserved.sum() * compiled.area_ha)


def test_reserve_ranked_is_deterministic_on_ties():
    mask = np.ones(10, dtype=bool)
    order = np.zeros(10)
    groups = np.zeros(10, dtype=int)
    take = reserve_ranked(mask, order, groups, 0.3)
    assert np.flatnonzero(take).tolist() == [0, 1, 2]
    order = np.array([5, 4, 3, 2, 1, 0, np.nan, 9, 8, 7.0])
    take = reserve_ranked(mask, order, groups, 0.2)
    assert np.flatnonzero(take).tolist() == [4, 5]


def _reserve_on_grid(depth, candidate, groups, share, min_cells):
    """reserve_ranked over the cells of ``candidate`` on a 2-D grid (deepest first)."""
    cells = SimpleNamespace(shape=depth.shape, flat=np.arange(depth.size))
    take = reserve_ranked(
        candidate.ravel(),
        depth.ravel(),
        groups.ravel(),
        share,
        neighbours=partial(_neighbours_of, cells),
        min_cells=min_cells,
    )
    return take.reshape(depth.shape)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    shape=st.tuples(st.integers(1, 25), st.integers(1, 25)),
    share=st.sampled_from([0.0, 0.05, 0.1, 0.3, 1.0]),
    min_cells=st.integers(1, 9),
    holes=st.sampled_from([0.0, 0.3, 0.7]),
    ties=st.booleans(),
)
def test_reservation_in_patches_keeps_counts_and_builds_patches(
    seed, shape, share, min_cells, holes, ties
):
    """Taken in patches, a reservation holds the same cells per group as taken cell by cell
    (a count below one patch: a whole patch or none), only candidates, deterministically; a
    piece below the minimum remains only where its group's candidates leave no room or for
    the group's last few cells; and where the deepest cells lie together it takes them."""
    rng = np.random.default_rng(seed)
    depth = rng.integers(0, 3, shape).astype(float) if ties else rng.normal(size=shape)
    candidate = rng.random(shape) >= holes
    groups = (np.arange(shape[1])[None, :] * 2 // max(shape[1], 1)).repeat(shape[0], axis=0)
    plain = _reserve_on_grid(depth, candidate, groups, share, 1)
    take = _reserve_on_grid(depth, candidate, groups, share, min_cells)
    assert np.array_equal(take, _reserve_on_grid(depth, candidate, groups, share, min_cells))
    assert not (take & ~candidate).any()
    for g in np.unique(groups):
        # The same count, but a count below one patch becomes a patch or nothing.
        k, here = plain[groups == g].sum(), take[groups == g].sum()
        if k >= min_cells:
            assert here == k
        else:
            land = (candidate & (groups == g)).sum()
            assert here == (min(min_cells, land) if k >= min_cells / 2 else 0)
    pieces, _ = ndimage.label(take)
    sizes = np.bincount(pieces.ravel())
    for piece in range(1, len(sizes)):
        if sizes[piece] >= min_cells:
            continue
        where = pieces == piece
        g = groups[where][0]
        left = take[groups == g].sum() % min_cells or min_cells
        room, _ = ndimage.label(candidate & (groups == g))  # the group's own land
        land = np.bincount(room[where])[1:].max()
        assert land < min_cells or sizes[piece] <= left, (piece, sizes[piece])


def test_reservation_in_patches_takes_the_deepest_block_when_it_is_one():
    depth = np.arange(100, dtype=float).reshape(10, 10)  # deepest in the top rows
    candidate = np.ones((10, 10), dtype=bool)
    groups = np.zeros((10, 10), dtype=int)
    take = _reserve_on_grid(depth, candidate, groups, 0.3, 6)
    assert np.array_equal(take, depth < 30)


def test_province_rule_acts_only_in_its_province(compiled):
    p, cells = compiled.problem, compiled.cells
    wind = _col(compiled, "wind")
    names = cells.names("municipality")
    muni = cells.layer("municipality")
    maastricht = muni == names.index("Maastricht")
    venlo = muni == names.index("Venlo")
    assert maastricht.any() and not p.allowed[maastricht, wind].any()
    # Outside Zuid-Limburg, in Limburg, wind keeps whatever the national rules leave it.
    assert p.allowed[venlo, wind].any()
    # The barracks only at Zeewolde, and only in Flevoland.
    defence = _col(compiled, "defence")
    zeewolde = muni == names.index("Zeewolde")
    assert p.allowed[:, defence].sum() > 0
    assert not p.allowed[~zeewolde, defence].any()


def test_ladders_and_penalties_shape_the_values(grid):
    cfg = load_config(NATIONAL)
    off = load_config(NATIONAL, overrides={
        "rules.ladders.solar_preference_order.enabled": False,
        "rules.penalties.subsiding_peat.enabled": False,
    })  # fmt: skip
    a, b = compile_problem(cfg, grid), compile_problem(off, grid)
    solar = _col(a, "solar")
    built = a.cells.layer("land_cover") == 1
    diff = a.problem.value[:, solar] - b.problem.value[:, solar]
    assert np.allclose(diff[built], 0.6)  # first rung: unused land in built-up areas
    peat = a.cells.layer("peat") == 1
    work = _col(a, "work")
    d = b.problem.value[:, work] - a.problem.value[:, work]
    assert np.allclose(d[peat], 1.5) and np.allclose(d[~peat], 0.0)


def test_evaluate_conditions(grid):
    cells = Cells(grid, np.asarray(grid["land"].values) == 1)
    lc = cells.layer("land_cover")
    assert (evaluate({"layer": "land_cover", "in": ["built_up"]}, cells) == (lc == 1)).all()
    near = evaluate({"layer": "town_distance", "max": 1000}, cells)
    assert (near == (cells.layer("town_distance") <= 1000)).all()
    both = evaluate({"all": [{"layer": "peat"}, {"not": {"layer": "deep_polder"}}]}, cells)
    assert (both == ((cells.layer("peat") == 1) & (cells.layer("deep_polder") == 0))).all()


def test_a_layer_the_grid_lacks(grid):
    cfg = load_config(
        NATIONAL, overrides={"rules.exclusions.natura2000.where": {"layer": "natura_2000"}}
    )
    with pytest.raises(ConfigError) as info:
        compile_problem(cfg, grid)
    err = info.value
    assert err.file.endswith("rules.toml") and "exclusions.natura2000.where.layer" in err.key
    assert "did you mean 'natura2000'" in str(err)


def test_a_class_or_municipality_the_grid_lacks(grid):
    cfg = load_config(
        NATIONAL,
        overrides={
            "rules.exclusions.new_forest_is_new.where": {"layer": "land_cover", "in": ["forrest"]}
        },
    )
    with pytest.raises(ConfigError, match="did you mean 'forest'"):
        compile_problem(cfg, grid)
    cfg = load_config(
        NATIONAL,
        overrides={
            "provinces.limburg.exclusions.einstein_telescope_no_wind.where": {
                "layer": "municipality",
                "in": ["Maastricht", "Heerlen", "Kerkrad"],
            }
        },
    )
    with pytest.raises(ConfigError, match="did you mean 'Kerkrade'"):
        compile_problem(cfg, grid)


def test_a_province_code_the_grid_lacks(grid):
    cfg = load_config(NATIONAL, overrides={"provinces.zeeland.province.code": "PV92"})
    with pytest.raises(ConfigError) as info:
        compile_problem(cfg, grid)
    assert info.value.file.endswith("zeeland.toml") and "did you mean 'PV29'" in str(info.value)


def test_targets_larger_than_the_land_that_may_take_them(grid):
    cfg = load_config(NATIONAL, overrides={"provinces.zeeland.targets.housing.lower": 5e7})
    bad = [
        b
        for b in check_capacity(compile_problem(cfg, grid))
        if b["claim"] == "housing" and b["zone"] == "Zeeland"
    ]
    assert bad and bad[0]["file"].endswith("zeeland.toml") and bad[0]["key"] == "targets.housing"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    in_grid=st.sampled_from([0.0, 0.3, 0.8, 1.0]),
    share=st.sampled_from([0.0, 0.2, 0.5, 0.6, 0.8, 1.0]),
    m=st.sampled_from([1, 2, 3, 5, 10, 50, 10**6]),
    dtype=st.sampled_from([np.int32, np.int64]),
)
def test_small_patch_mask_is_the_grid_labelling(seed, shape, in_grid, share, m, dtype):
    """The union-find over the cells gives what scipy's 4-connected labelling of the whole
    grid gives: a piece ends at the grid's edge and at positions outside the cells (a row's
    last cell is not next to the next row's first), at every share of allowed cells (0.5
    and 0.6 near the percolation threshold: pieces of every size) and every minimum."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    on_grid = rng.random(shape) < in_grid
    flat = np.flatnonzero(on_grid).astype(dtype)
    allowed = rng.random(len(flat)) < share
    grid = np.zeros(shape, dtype=bool)
    grid.ravel()[flat] = allowed
    labels, _ = ndimage.label(grid)
    piece = labels.ravel()[flat]
    expected = allowed & (np.bincount(piece, minlength=1) < m)[piece]
    got = small_patch_mask(flat, nx, allowed, m)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, expected)


def test_small_patch_mask_refuses_a_mask_of_another_length():
    with pytest.raises(ValueError, match="one entry per cell"):
        small_patch_mask(np.arange(4, dtype=np.int32), 2, np.ones(3, dtype=bool), 2)


def test_small_patch_mask_joins_pieces_the_long_way_round():
    """A comb: every tooth joins the spine only through the row below, so the roots meet
    late and the pieces' sizes must add up through the joins (a union that dropped a size
    or kept a stale root counts the comb as many small pieces)."""
    grid = np.zeros((7, 9), dtype=bool)
    grid[:6, ::2] = True  # the teeth
    grid[6, :] = True  # the spine, last
    flat = np.flatnonzero(np.ones(grid.shape, bool)).astype(np.int32)
    allowed = grid.ravel()
    assert not small_patch_mask(flat, 9, allowed, int(allowed.sum())).any()
    assert small_patch_mask(flat, 9, allowed, int(allowed.sum()) + 1).sum() == allowed.sum()


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [
            st.integers(-1, 70),  # a polder id layer
            st.integers(-(2**31), 2**31 - 1),  # int32 over its whole range: ranked
            st.integers(-(2**62), 2**62),  # int64 beyond it
            st.floats(-1e6, 1e6) | st.just(float("nan")),
        ]
    ).flatmap(lambda values: st.lists(values, min_size=1, max_size=60)),
    st.sampled_from([np.int16, np.int32, np.int64, np.float64]),
)
def test_ordered_codes_order_pairs_as_their_values(values, dtype):
    """The reservation's groups per province are one key per (group, province) pair; with
    codes in the order of the values (an integer layer's own values, without a sort) the
    keys order the pairs as the values do."""
    values = np.array(values, dtype=np.float64)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.clip(np.nan_to_num(values), info.min, info.max)
    values = values.astype(dtype)
    codes, count = _ordered_codes(values)
    assert codes.dtype == np.int32 and codes.min() >= 0 and codes.max() < count
    ranks = np.unique(values, return_inverse=True)[1].ravel()
    np.testing.assert_array_equal(
        np.sign(np.subtract.outer(codes, codes)), np.sign(np.subtract.outer(ranks, ranks))
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-(2**62), 2**62), st.integers(-(2**40), 2**40)),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from([np.int16, np.int32, np.uint32, np.int64]),
    st.sampled_from([np.int8, np.int16, np.int64]),
)
@example([(2**31 + 5, 1), (2**31 + 7, -3), (2**31 + 5, -3)], np.uint32, np.int8)
@example([(2**32 - 1, 0), (2**31, 1)], np.uint32, np.int16)
@example([(0, 0), (2**31 - 2, 1), (5, 1)], np.int64, np.int64)  # the range at int32's end
@example([(0, 0), (2**31 - 1, 1), (5, 1)], np.int64, np.int64)  # one more: ranks
@example([(-128, 1), (127, -1), (-128, -1)], np.int16, np.int8)
def test_pair_keys_order_pairs_lexicographically(pairs, first_type, second_type):
    """A reservation's (group, province) keys, int32 where they fit and int64 where not
    (wide layers, a large range times many provinces), order the pairs as the pairs do."""
    first, second = (np.array(v) for v in zip(*pairs))
    first = np.clip(first, np.iinfo(first_type).min, np.iinfo(first_type).max).astype(first_type)
    second = np.clip(second, np.iinfo(second_type).min, np.iinfo(second_type).max)
    second = second.astype(second_type)
    keys = _pair_keys(first, second)
    assert keys.dtype in (np.int32, np.int64)
    wide = [(int(a), int(b)) for a, b in zip(first, second)]
    order = np.sign(np.subtract.outer(keys.astype(object), keys.astype(object)))
    expect = np.array([[(a > b) - (a < b) for b in wide] for a in wide])
    np.testing.assert_array_equal(order.astype(int), expect)


def test_rule_memo_reuses_only_what_the_same_contents_gave():
    """The memo hashes a mask's bits: equal contents give the remembered result, any other
    contents work again, including masks whose packed bits are the same (a mask and the
    same one padded with False) and a mask and None."""
    from engine.rules import RuleMemo

    memo, calls = RuleMemo(), []

    def work(tag):
        calls.append(tag)
        return tag

    seven = np.ones(7, dtype=bool)
    eight = np.append(seven, False)  # packs to the same byte as seven
    assert np.array_equal(np.packbits(seven), np.packbits(eight))
    for arrays, tag in [((seven,), "7"), ((eight,), "8"), ((seven.copy(),), "7 again")]:
        memo.get(("k",), arrays, partial(work, tag))
    memo.get(("k",), (seven, None), partial(work, "with None"))
    memo.get(("k",), (seven, seven[:0]), partial(work, "with empty"))
    memo.get(("other",), (seven,), partial(work, "other key"))
    for dtype in (np.int8, np.uint8):  # the same bytes in two dtypes
        memo.get(("k",), (np.zeros(2, dtype),), partial(work, np.dtype(dtype).name))
    assert memo.get(("k",), (seven,), partial(work, "never")) == "7"
    assert calls == ["7", "8", "with None", "with empty", "other key", "int8", "uint8"]


def test_relaxations_sharing_a_memo_equal_the_rules_applied_afresh():
    """Each rule left out, with what earlier relaxations worked out (RuleMemo), in two
    orders: the same ``allowed`` as the config without that rule applied from scratch. A
    memo keyed on less than what a result depends on (an option's small patches by the
    option alone, a reservation by its rule alone) fails this. Cells of 1 ha, so that the
    minimum patch sizes rule cells out."""
    import dataclasses

    from engine.analysis.rule_costs import compiled_relaxations
    from engine.rules import apply_rules

    compiled = compile_problem(load_config(NATIONAL), synthetic_grid(block=20, resolution=100.0))
    config = compiled.config
    relaxations = compiled_relaxations(compiled)
    assert compiled.effects.min_patch and compiled.effects.reserved.any()
    for name in [*relaxations, *reversed(relaxations)]:
        if name == "min_patch":
            continue
        rule = next(
            r for r in config.rules if r.kind == "exclusions" and name.split(" (")[0] == r.id
        )
        without = dataclasses.replace(config, rules=[r for r in config.rules if r is not rule])
        scratch = np.zeros((len(config.option_names), compiled.cells.n), dtype=np.float32)
        afresh = apply_rules(
            without, compiled.cells, compiled.area_ha, compiled.province_codes, scratch
        )
        np.testing.assert_array_equal(relaxations[name](), afresh.allowed, err_msg=name)


def test_the_minimum_patch_exclusions_come_in_the_options_order():
    """Not in a set's order, which changes with each process's string hashing: the page
    lists the options whose minimum patches rule out the same hectares in this order, and
    the same run must write the same page."""
    compiled = compile_problem(load_config(NATIONAL), synthetic_grid(block=20, resolution=100.0))
    excluded = list(compiled.effects.min_patch)
    assert len(excluded) > 2
    assert excluded == [o for o in compiled.config.option_names if o in excluded]
