"""Issue 15 part 1: the memory cuts give the bits of the paths they replace. The compile holds
each cell's bytes once and reads the layers one at a time; the compaction's neighbour table
is built lean, in int32."""

from __future__ import annotations

import ctypes
from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

import engine.grid.build
from benchmarks.test_memory_trace import compaction_off
from engine.analysis.plausibility import _layer_at as plausibility_layer
from engine.compile import cell_mask, compile_problem
from engine.config import load_config
from engine.grid import open_grid
from engine.rules import Cells, _position_type, layers_used, province_index, rule_layers
from engine.solve.compact import Geometry
from engine.suitability import recipe_layers
from tests.class_reference import (
    reference_classes,
    reference_hash,
    reference_key,
    reference_near_best,
)
from tests.problems import problems

NATIONAL = Path(__file__).resolve().parents[1] / "configs" / "national.toml"


@pytest.fixture(scope="module")
def config():
    return load_config(NATIONAL)


@pytest.fixture(scope="module")
def grid():
    """The national grid at 1000 m: real GeoTIFFs read through dask, as a run reads them."""
    return open_grid("nl", resolution=1000)


def whole_grid_layers(ds, mask: np.ndarray, names: list[str]) -> dict:
    """Every layer's whole grid computed at once and then cut to the cells: the read the
    compile made before, as the reference."""
    flat = np.flatnonzero(mask.ravel())
    arrays = dask.compute(*[ds[n].data for n in names])
    return {n: np.asarray(a).ravel()[flat] for n, a in zip(names, arrays)}


def test_cell_positions_are_int32_where_the_grid_allows(grid, config):
    """4 bytes a cell for the whole run (0.22 GB at 25 m); a grid beyond int32 keeps int64."""
    mask = cell_mask(config, grid, {s: province_index(config, grid, s) for s in config.provinces})
    cells = Cells(grid, mask)
    assert cells.flat.dtype == np.int32
    assert np.array_equal(cells.flat, np.flatnonzero(mask.ravel()))
    assert _position_type((43_000, 50_000)) == np.int64  # 2.15e9 positions with a row beyond
    assert _position_type((42_000, 50_000)) == np.int32


def gdal_block_cache() -> tuple[int, int]:
    """(bytes in use, limit) of GDAL's block cache, from the libgdal rasterio loaded."""
    lib = ctypes.CDLL(next(Path(rasterio.__file__).parent.parent.glob("rasterio.libs/libgdal*")))
    lib.GDALGetCacheUsed64.restype = lib.GDALGetCacheMax64.restype = ctypes.c_int64
    return lib.GDALGetCacheUsed64(), lib.GDALGetCacheMax64()


def test_reading_the_layers_leaves_gdal_no_more_blocks_than_the_read_needs(config, monkeypatch):
    """GDAL's block cache kept every block the compile read (1.2 GB of a 25 m run's peak); the
    reads of the compile and the plausibility now hold it to ``READ_CACHE_BYTES``, and give
    its limit back after."""
    limit_read = 256 * 1024  # one float32 tile of the grid's 256 x 256
    monkeypatch.setattr(engine.grid.build, "READ_CACHE_BYTES", limit_read)
    ds = open_grid("nl", resolution=1000)  # files of its own: no blocks of them cached yet
    _, limit = gdal_block_cache()
    mask = cell_mask(config, ds, {s: province_index(config, ds, s) for s in config.provinces})
    cells = Cells(ds, mask)
    names = [n for n in layers_used(config) if n in ds.data_vars]
    cells.preload(names)
    tiles = np.ceil(np.array(ds["land"].shape) / 256).prod()
    assert sum(tiles * 256 * 256 * ds[n].dtype.itemsize for n in names) > 8 * limit_read
    layer = plausibility_layer(cells, "built_up_distance")
    assert layer is not None and len(layer) == cells.n
    used, after = gdal_block_cache()
    assert used < 2 * limit_read  # the limit and a block's bookkeeping; all tiles: > 8 times
    assert after == limit


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_preload_gives_the_bits_of_the_whole_grid_read(grid, config, data):
    names = [n for n in layers_used(config) if n in grid.data_vars]
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names)))
    seed = data.draw(st.integers(0, 2**32 - 1))
    share = data.draw(st.sampled_from([0.0, 0.001, 0.3, 1.0]))
    shape = grid["land"].shape
    mask = np.random.default_rng(seed).random(shape) < share
    cells = Cells(grid, mask)
    cells.preload(chosen)
    expected = whole_grid_layers(grid, mask, list(dict.fromkeys(chosen)))
    for name, values in expected.items():
        got = cells.layer(name)
        assert got.dtype == values.dtype
        assert np.array_equal(got, values, equal_nan=True), name


def test_compiled_problem_holds_one_allowed_mask_and_no_float_copies(grid, config):
    compiled = compile_problem(config, grid)
    p = compiled.problem
    # The rules' mask and the problem's are one array, cell-major.
    assert compiled.effects.allowed is p.allowed
    assert p.allowed.flags.c_contiguous
    # The float32 copies of the narrower layers were only the values' input, a slice's.
    cache = compiled.cells._cache
    assert set(cache) == set(layers_used(config)) & set(grid.data_vars)
    assert all(cache[n].dtype == grid[n].dtype for n in cache)


def test_compile_gives_the_values_of_the_whole_grid_read(grid, config, monkeypatch):
    """The whole compiled problem is the same bits whichever way the layers are read."""
    compiled = compile_problem(config, grid)

    def preload_at_once(self, names):
        names = [n for n in dict.fromkeys(names) if n not in self._cache and self.has(n)]
        mask = np.zeros(self.shape, dtype=bool)
        mask.ravel()[self.flat] = True
        self._cache.update(whole_grid_layers(self.ds, mask, names))

    monkeypatch.setattr(Cells, "preload", preload_at_once)
    reference = compile_problem(config, grid)
    a, b = compiled.problem, reference.problem
    assert np.array_equal(a.value, b.value)
    assert a.value.dtype == b.value.dtype
    assert np.array_equal(a.allowed, b.allowed)
    assert np.array_equal(a.zones, b.zones)
    for lo, ref in zip(a.lower, b.lower):
        assert np.array_equal(lo, ref, equal_nan=True)


def padded_neighbours(shape, flat: np.ndarray) -> np.ndarray:
    """The neighbour table as it was built before: an int64 index of the whole grid, padded,
    and the four gathers stacked (the reference)."""
    ny, nx = shape
    index = np.full(ny * nx, -1, dtype=np.int64)
    index[flat] = np.arange(len(flat))
    grid = np.pad(index.reshape(ny, nx), 1, constant_values=-1)
    rows, cols = np.divmod(flat, nx)
    rows, cols = rows + 1, cols + 1
    return np.stack(
        [grid[rows, cols - 1], grid[rows, cols + 1], grid[rows - 1, cols], grid[rows + 1, cols]],
        axis=1,
    )


@st.composite
def grid_masks(draw, shares=(0.0, 0.05, 0.5, 0.95, 1.0)) -> np.ndarray:
    """A grid of up to 40 x 40 cells with a random share of them in the problem."""
    ny, nx = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    share = draw(st.sampled_from(shares))
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random((ny, nx)) < share


@settings(max_examples=200, deadline=None)
@given(grid_masks(), st.sampled_from([1, 3, 64, 1 << 22]))
def test_neighbours_are_those_of_the_padded_index(mask, cells_per_slice):
    """The neighbour table built slice by slice of cells (of any size): the reference's."""
    from engine.solve import compact

    flat = np.flatnonzero(mask.ravel())
    if len(flat) == 0:
        flat = np.array([0])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compact, "_NEIGHBOUR_SLICE", cells_per_slice)
        got = Geometry(mask.shape, flat, 0.1).neighbours
    assert got.dtype == np.int32
    assert np.array_equal(got, padded_neighbours(mask.shape, flat))


def test_released_layers_are_read_again_with_the_same_bits(grid, config):
    compiled = compile_problem(config, grid)
    cells = compiled.cells
    before = {n: cells.layer(n).copy() for n in layers_used(config) if cells.has(n)}
    cells.release()
    assert not cells._cache
    for name, values in before.items():
        assert np.array_equal(cells.layer(name), values, equal_nan=True), name


def test_a_compile_that_lets_its_layers_go_builds_the_same_problem(grid, config):
    """Without the rules' layers from the rules on (2.75 GB of the 25 m compile's peak), the
    problem has the same bits; only the layers the zonings read are still held."""
    kept = compile_problem(config, grid).problem
    released = compile_problem(config, grid, keep_layers=False)
    zoning_layers = {"province", "municipality", *(z.layer for z in config.zonings.values())}
    assert set(released.cells._cache) <= zoning_layers
    assert len(layers_used(config)) > len(zoning_layers)
    got = released.problem
    for name in ("value", "allowed", "contribution"):
        assert np.array_equal(getattr(got, name), getattr(kept, name)), name
    assert np.array_equal(np.asarray(got.zones), np.asarray(kept.zones))
    assert got.zones.dtype == kept.zones.dtype
    for a, b in zip(got.lower + got.upper, kept.lower + kept.upper):
        assert np.array_equal(a, b, equal_nan=True)


def test_a_compile_that_lets_its_layers_go_reads_each_once_and_holds_few(grid, config, monkeypatch):
    """Each layer is read once, when the values or a rule first needs it, and let go after
    its last use: two layers whose uses do not overlap are never held together, so the
    compile never holds all the rules' layers at once (they were 2.75 GB of the 25 m
    compile's peak)."""
    reads, held = [], []
    preload = Cells.preload

    def counting_preload(self, names):
        names = list(names)
        reads.extend(n for n in dict.fromkeys(names) if self.has(n) and n not in self._cache)
        preload(self, names)
        held.append(set(self._cache))

    monkeypatch.setattr(Cells, "preload", counting_preload)
    compile_problem(config, grid, keep_layers=False)
    used = [n for n in layers_used(config) if n in grid.data_vars]
    assert sorted(reads) == sorted(used), reads  # each once

    # The steps that read layers, in the order the compile takes them.
    steps = [recipe_layers(config)]
    steps += [rule_layers(r) for r in config.rules if r.kind != "reservations"]
    steps += [rule_layers(r) for r in config.rules if r.kind == "reservations"]
    kept = {"province", "municipality", *(z.layer for z in config.zonings.values())}
    let_go = [n for n in used if n not in kept]
    first = {n: min(i for i, s in enumerate(steps) if n in s) for n in let_go}
    last = {n: max(i for i, s in enumerate(steps) if n in s) for n in let_go}
    apart = [(a, b) for a in let_go for b in let_go if last[a] < first[b]]
    assert apart  # the national rules have layers whose uses do not overlap
    for h in held:
        assert not [(a, b) for a, b in apart if a in h and b in h]


def test_a_run_without_analysis_writes_the_same_folder_with_its_layers_released(
    tmp_path, monkeypatch
):
    """The run lets the compile's layers go before its refusal and solve when no analysis
    follows: its report and map are those of a run that keeps them."""
    import json

    import engine.run
    from engine.run import run

    def run_once(out):
        run(NATIONAL, out, resolution=1000, analysis="off", progress=False)
        report = json.loads((out / "report.json").read_text())
        return report, (out / "allocation.tif").read_bytes()

    calls = []
    release, refusal = Cells.release, engine.run.refusal
    monkeypatch.setattr(
        Cells, "release", lambda self, keep=(): (calls.append("release"), release(self, keep))
    )
    monkeypatch.setattr(engine.run, "refusal", lambda c: (calls.append("refusal"), refusal(c))[1])
    released, released_map = run_once(tmp_path / "released")
    # The run let the values' layers go before the rules, each rule's after the last rule
    # that reads it (but the zonings'), then the zonings' before the refusal.
    n_rules = len(load_config(NATIONAL).rules)
    assert calls == ["release"] * (n_rules + 2) + ["refusal"]
    monkeypatch.setattr(Cells, "release", lambda self, keep=(): None)
    kept, kept_map = run_once(tmp_path / "kept")
    assert released_map == kept_map
    for key in ("objective", "gap", "status", "targets", "plausibility"):
        assert released[key] == kept[key], key


def test_the_values_are_built_where_the_problem_holds_them(grid, config, monkeypatch):
    """The recipes fill a cell-major array through its option-major view, so the problem's
    values are that array (no transposing copy), with the bits the rules give on an
    option-major array of their own (the layout the compile transposed before)."""
    import engine.compile
    from engine.suitability import option_values

    built = []
    monkeypatch.setattr(
        engine.compile, "option_values", lambda *a: built.append(option_values(*a)) or built[-1]
    )
    compiled = compile_problem(config, grid)
    assert np.shares_memory(built[0], compiled.problem.value)
    assert compiled.problem.value.flags.c_contiguous

    monkeypatch.setattr(
        engine.compile, "option_values", lambda *a: np.ascontiguousarray(option_values(*a))
    )
    reference = compile_problem(config, grid).problem.value
    assert reference.dtype == compiled.problem.value.dtype
    assert np.array_equal(reference, compiled.problem.value)


def dense_allocation(n_options, choice, lp_cells, lp_x) -> np.ndarray:
    """The allocation as a dense matrix: one-hot rows, the LP's rows where it decided."""
    x = np.zeros((len(choice), n_options))
    x[np.arange(len(choice)), choice] = 1.0
    x[lp_cells] = lp_x
    return x


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 3000),
    n_options=st.integers(1, 20),
    share=st.sampled_from([0.0, 0.01, 0.5, 1.0]),
    split=st.sampled_from([0.0, 0.5, 1.0]),
    seed=st.integers(0, 2**32 - 1),
    empty=st.booleans(),
)
def test_the_allocation_matrix_is_the_one_hot_and_the_lp_rows(
    n, n_options, share, split, seed, empty
):
    """Built in place in int32, in blocks: the allocation every fixed cell's choice and the
    LP's shares give, with the entries in column order, none of them zero. An LP row with
    no share (none should come, but the old construction took it) stays an empty row, also
    on the last cell, where the offsets end."""
    from types import SimpleNamespace

    from engine.solve import fast

    rng = np.random.default_rng(seed)
    choice = rng.integers(0, n_options, n).astype(np.int16)
    lp_cells = np.flatnonzero(rng.random(n) < share)
    lp_x = rng.random((len(lp_cells), n_options)) * (rng.random((len(lp_cells), n_options)) < split)
    lp_x[np.arange(len(lp_cells)), rng.integers(0, n_options, len(lp_cells))] = 1.0
    lp_x /= lp_x.sum(axis=1, keepdims=True)
    if empty:  # the last cell an LP cell (lp_cells is sorted) whose row is empty
        if n - 1 not in lp_cells:
            lp_cells, lp_x = np.append(lp_cells, n - 1), np.vstack([lp_x, np.zeros(n_options)])
        lp_x[-1] = 0.0
    problem = SimpleNamespace(n_cells=n, n_options=n_options)
    # The LP's shares as the repair keeps them: their positive entries.
    x = fast._allocation_matrix(problem, choice, lp_cells, sparse.csr_matrix(lp_x))
    assert x.indptr.dtype == x.indices.dtype == np.int32
    assert x.has_sorted_indices and x.nnz == (x.data != 0).sum()
    assert np.array_equal(x.toarray(), dense_allocation(n_options, choice, lp_cells, lp_x))


def test_the_allocation_matrix_holds_no_more_than_itself_and_a_block():
    """20 bytes a cell (int32 offsets and indices, float64 shares) and a block's
    temporaries: no per-cell counts, masks or int64 copies beside them."""
    import tracemalloc
    from types import SimpleNamespace

    from engine.solve import fast

    n, n_options = 4_000_000, 15
    choice = np.random.default_rng(0).integers(0, n_options, n).astype(np.int16)
    lp_cells = np.arange(0, n, 1000)
    lp_x = sparse.csr_matrix(np.full((len(lp_cells), n_options), 1.0 / n_options))
    problem = SimpleNamespace(n_cells=n, n_options=n_options)
    tracemalloc.start()
    try:
        x = fast._allocation_matrix(problem, choice, lp_cells, lp_x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    own = x.data.nbytes + x.indices.nbytes + x.indptr.nbytes
    assert peak < own + 20 * 2**20, (peak / n, own / n)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(tied=True, max_cells=300, extremes=True), st.booleans())
def test_the_repair_lets_the_price_stage_go_before_its_certificate(problem, aggregated):
    """By the allocation and its certificate no pass over every cell is alive (the last
    one's prices and bound are all they read), and the aggregated LP (its class of every
    cell) is gone: the solve's start is handed to the repair, not kept beside it. The
    optimum stays HiGHS's."""
    import weakref

    import engine
    from engine.solve import fast

    highs = engine.solve(problem, method="highs")
    passes, lps, alive = [], [], []

    def price_cells(*args):
        priced = price(*args)
        passes.append(weakref.ref(priced))
        return priced

    def aggregated_lp(*args, **kwargs):
        lp = aggregate(*args, **kwargs)
        lps.append(weakref.ref(lp))
        return lp

    def build_solution(*args, **kwargs):
        alive.append(sum(ref() is not None for ref in passes + lps))
        return build(*args, **kwargs)

    price, aggregate, build = fast.price_cells, fast.aggregated_lp, fast.build_solution
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast, "price_cells", price_cells)
        patch.setattr(fast, "aggregated_lp", aggregated_lp)
        patch.setattr(fast, "build_solution", build_solution)
        if aggregated:
            patch.setattr(fast, "FINE_EVALUATIONS", 0)
        sol = fast.solve_fast(problem)
    assert alive == [0]
    assert sol.timings["prices_aggregated"] or not aggregated
    assert sol.objective == pytest.approx(highs.objective, rel=1e-9, abs=1e-9)
    assert sol.gap <= 1e-9


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    problems(tied=True, max_cells=300, extremes=True),
    st.sampled_from([0.0, 1e-3, 1e9]),
    st.integers(0, 2**32 - 1),
)
def test_no_pass_over_every_cell_is_held_while_a_repair_lp_runs(problem, size, seed):
    """While HiGHS solves a repair LP, no pass's choices and margins are alive (10 bytes a
    cell, 0.56 GB at 25 m); widening after an infeasible LP (reached from prices far off)
    makes them again from their prices. The optimum stays HiGHS's."""
    import weakref

    import engine
    from engine.solve import fast

    highs = engine.solve(problem, method="highs")
    rng = np.random.default_rng(seed)
    warm = [p + rng.normal(scale=size, size=p.shape) for p in highs.prices]
    passes, alive = [], []

    def price_cells(*args):
        priced = price(*args)
        passes.append(weakref.ref(priced.margin))
        return priced

    def restricted_lp(*args, **kwargs):
        alive.append(sum(ref() is not None for ref in passes))
        return restrict(*args, **kwargs)

    price, restrict = fast.price_cells, fast.restricted_lp
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast, "price_cells", price_cells)
        patch.setattr(fast, "restricted_lp", restricted_lp)
        sol = fast.solve_fast(problem, prices=warm)
    assert alive and not any(alive)
    assert sol.objective == pytest.approx(highs.objective, rel=1e-9, abs=1e-9)
    assert sol.gap <= 1e-9


@settings(max_examples=200, deadline=None)
@given(grid_masks())
def test_positions_let_go_come_back_the_same(mask):
    cells = Cells(None, mask)
    before = cells.flat.copy()
    cells.forget_positions()
    assert cells._flat is None and cells.n == len(before)
    assert cells.flat.dtype == before.dtype
    assert np.array_equal(cells.flat, before)
    assert np.array_equal(cells.subset(np.arange(cells.n) % 2 == 0).flat, before[::2])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(tied=True, max_cells=300, extremes=True), st.sampled_from([1, 3, 64]))
def test_the_repair_in_blocks_gives_the_bits_of_one_block(problem, block):
    """The repair's passes over the free cells (the shares spread over a class's cells, the
    options the LP left out, the class keys, the allocation's fixed cells) in blocks of a
    few cells: the same allocation and objective to the last bit as in one block, and
    HiGHS's optimum."""
    import engine
    from engine.solve import fast

    whole = fast.solve_fast(problem)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast, "_CHUNK", block)
        blocks = fast.solve_fast(problem)
    assert blocks.objective == whole.objective
    assert np.array_equal(blocks.x.toarray(), whole.x.toarray())
    assert np.array_equal(blocks.choice, whole.choice)
    highs = engine.solve(problem, method="highs")
    assert blocks.objective == pytest.approx(highs.objective, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("compaction", [True, False])
def test_the_write_stage_lets_the_values_and_the_mask_go(tmp_path, monkeypatch, compaction):
    """Without analysis, the problem's value and allowed are gone before the plausibility's
    and the map's per-cell work (the value already before the fragmentation), and the run
    folder is that of a run that keeps them: the same map, the same report."""
    import json
    import weakref

    import engine.compactness
    import engine.report
    from engine.run import run

    overrides = None if compaction else compaction_off(NATIONAL)
    refs, alive = {}, {}

    def zone_totals(problem, x):
        refs.update(value=weakref.ref(problem.value), allowed=weakref.ref(problem.allowed))
        return totals(problem, x)

    def watch(name, function):
        def watched(*args, **kwargs):
            alive[name] = sorted(k for k, ref in refs.items() if ref() is not None)
            return function(*args, **kwargs)

        return watched

    def run_once(out):
        run(NATIONAL, out, resolution=1000, analysis="off", progress=False, overrides=overrides)
        report = json.loads((out / "report.json").read_text())
        del report["timings"]
        report["compactness"].pop("seconds", None)  # the clock's, not the plan's
        return report, (out / "allocation.tif").read_bytes()

    totals = engine.report.zone_totals
    monkeypatch.setattr(engine.report, "zone_totals", zone_totals)
    for owner, name in [
        (engine.compactness, "fragmentation"),
        (engine.report, "plausibility"),
        (engine.report, "write_allocation_tif"),
    ]:
        monkeypatch.setattr(owner, name, watch(name, getattr(owner, name)))
    released, released_map = run_once(tmp_path / "released")
    assert alive == {
        "fragmentation": ["allowed"],
        "plausibility": [],
        "write_allocation_tif": [],
    }
    build = engine.report.build_report
    monkeypatch.setattr(
        engine.report,
        "build_report",
        lambda *a, **k: build(*a, **{**k, "keep_problem": True}),
    )
    alive.clear()
    kept, kept_map = run_once(tmp_path / "kept")
    assert alive["plausibility"] == ["allowed", "value"]
    assert released_map == kept_map
    assert released == kept


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_the_plausibility_reads_the_layers_it_shows_in_bands(grid, config, data):
    """The layers the plausibility shows are read a band of rows at a time at the cells asked
    for, with the bits of the whole layer's read at them, and are not kept."""
    from engine.analysis.plausibility import _layer_at

    rows = data.draw(st.sampled_from([1, 7, 64, grid["land"].shape[0]]))
    ds = grid.chunk({"y": rows})
    names = ["station_distance", "town_distance", "built_up_distance", "land_cover"]
    name = data.draw(st.sampled_from(names))
    seed = data.draw(st.integers(0, 2**32 - 1))
    share = data.draw(st.sampled_from([0.0, 0.001, 0.3, 1.0]))
    mask = np.asarray(ds["land"].values) != 0
    cells = Cells(ds, mask)
    rng = np.random.default_rng(seed)
    at = data.draw(st.sampled_from([None, np.flatnonzero(rng.random(cells.n) < share)]))
    expected = whole_grid_layers(ds, mask, [name])[name]
    got = _layer_at(cells, name, at)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected if at is None else expected[at], equal_nan=True)
    assert not cells._cache


def test_the_plausibility_keeps_no_layer(grid, config):
    """A run without analysis released its layers; the plausibility reads the four it shows
    without keeping them (each a float32 or byte per cell until the run ends)."""
    from engine.analysis.plausibility import plausibility

    compiled = compile_problem(config, grid)
    sol = __import__("engine").solve(compiled.problem)
    compiled.cells.release()
    plausibility(compiled, sol)
    assert not compiled.cells._cache


def aggregated_lp_holding_every_cells_options(problem, structure, scale, prices):
    """The aggregated LP as it was built before: every cell's options and lead held at once,
    the classes from them, the LP over them with every cell free: the reference."""
    from engine.solve import fast
    from engine.solve.indices import index_type

    n = problem.n_cells
    cells = np.arange(n, dtype=index_type(n))
    cell_area = (
        np.broadcast_to(np.float64(problem.area), (n,))
        if np.ndim(problem.area) == 0
        else problem.area
    )
    options = np.empty((n, problem.n_options), dtype=bool)
    lead = np.empty(n, dtype=np.int16)
    step = fast.AGGREGATE_STEP * scale
    for window in (fast.AGGREGATE_WINDOW * scale, np.inf):
        options[:] = reference_near_best(problem, structure, prices, cells, window)
        lead[:] = np.argmax(options, axis=1)
        free = fast.FreeCells(cells, options)
        hashes = reference_hash(reference_key(problem, structure, cells, options, step))
        first, of_cell = reference_classes(hashes)
        classes = fast._Classes(
            of_cell=of_cell.astype(index_type(len(first))),
            first=first,
            area=np.bincount(of_cell, weights=cell_area),
            key=hashes[first],
        )
        solved = fast._class_lp(problem, structure, lead, free, classes)
        if solved is not None:
            return classes.of_cell, solved
    return None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(tied=True, max_cells=300, extremes=True))
def test_the_aggregated_lp_without_the_options_gives_the_bits_of_all_at_once(problem):
    """The aggregated LP hashes each cell's options in one pass without holding them, and
    reads the options of the classes' first cells again: the same classes, LP solution,
    prices and basis as with every cell's options held at once (in numpy)."""
    from engine.solve import fast
    from engine.solve.dual import dual_structure

    structure = dual_structure(problem)
    scale = fast.value_scale(problem)
    prices, _, _ = fast.smoothed_prices(
        problem, structure, fast.initial_prices(problem, None), scale
    )
    expected = aggregated_lp_holding_every_cells_options(problem, structure, scale, prices)
    got = fast.aggregated_lp(problem, structure, scale, prices)
    assert (got is None) == (expected is None)
    if got is None:
        return
    of_cell, (class_x, lp_prices, _, ended) = expected
    assert np.array_equal(got.cell_class, of_cell)
    assert np.array_equal(got.class_x, class_x)
    assert np.array_equal(got.prices, lp_prices)
    if ended is not None:
        assert np.array_equal(got.basis.names.cols, ended.names.cols)
        assert np.array_equal(got.basis.col_status, ended.col_status)
        assert np.array_equal(got.basis.row_status, ended.row_status)


def test_the_aggregated_lp_holds_no_options_of_every_cell():
    """Its traced peak over a million cells of 50 kinds (8,352 classes): the hashes and
    their grouping, not every cell's options, leads and indices beside them (68 bytes a
    cell above the problem; 81 with them)."""
    import tracemalloc

    from engine.solve import fast
    from engine.solve.dual import dual_structure
    from engine.synthetic import allocation_problem

    problem = allocation_problem(1_000_000, n_options=15, seed=0)
    kinds = np.random.default_rng(1).integers(0, 50, problem.n_cells)
    problem.value[:] = problem.value[kinds]
    structure = dual_structure(problem)
    scale = fast.value_scale(problem)
    start_prices = fast.initial_prices(problem, None)
    prices, _, _ = fast.smoothed_prices(problem, structure, start_prices, scale)
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        lp = fast.aggregated_lp(problem, structure, scale, prices)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(lp.class_x) == 8352
    assert (peak - start) / problem.n_cells < 74, (peak - start) / problem.n_cells


def dense_spread(class_x, classes, cell_area) -> np.ndarray:
    """The free cells' shares as the repair spread them before (main at 8955100): a dense
    (cells x options) array, all cells at once, the reference."""
    from engine.solve.fast import _cell_spans

    order, of_cell, area, begin, end = _cell_spans(classes, cell_area)
    hectares = class_x[of_cell] * classes.area[of_cell, None]
    upto = np.cumsum(hectares, axis=1)
    share = np.clip(
        np.minimum(end[:, None], upto) - np.maximum(begin[:, None], upto - hectares), 0, None
    )
    share[share < 1e-9 * area[:, None]] = 0.0
    x = np.empty((len(order), class_x.shape[1]))
    x[order] = share / share.sum(axis=1, keepdims=True)
    return x


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(tied=True, max_cells=300, extremes=True))
def test_the_spread_of_the_last_lp_is_the_dense_ones_positive_entries(problem):
    """The free cells' shares, kept as their positive entries (the dense array was 2.3 GB at
    25 m): the same numbers, and the same choice of each cell's largest share."""
    import warnings

    import engine
    from engine.solve import fast

    spread, seen = fast.RepairLP.x, []

    def checked(lp):
        x = spread(lp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 of a cell without area
            dense = dense_spread(lp.class_x, lp.classes, np.asarray(lp.cell_area))
        assert np.array_equal(x.toarray(), np.where(dense > 0, dense, 0.0))
        assert np.array_equal(fast._largest_share(x), np.argmax(dense, axis=1))
        seen.append(x.nnz - x.shape[0])
        return x

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast.RepairLP, "x", checked)
        sol = fast.solve_fast(problem)
    highs = engine.solve(problem, method="highs")
    assert sol.objective == pytest.approx(highs.objective, rel=1e-9, abs=1e-9)
    SPREADS.append(seen)


SPREADS: list = []


def test_the_spreads_checked_included_split_cells():
    """The test above saw repair LPs, and cells split between options among them."""
    if not SPREADS:
        pytest.skip("run with the test above")
    assert sum(len(s) for s in SPREADS) > 10
    assert sum(sum(s) for s in SPREADS) > 0


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 30),
    st.integers(1, 9),
    st.floats(0.0, 1.0),
    st.integers(0, 2**32 - 1),
)
def test_the_largest_share_is_numpys_argmax(n_rows, n_options, density, seed):
    """Ties (shares from a few values) go to the first option, as np.argmax has it; a row
    without a share gives 0."""
    from engine.solve.fast import _largest_share

    rng = np.random.default_rng(seed)
    dense = rng.choice([0.25, 0.5, 1.0], size=(n_rows, n_options))
    dense[rng.random(dense.shape) > density] = 0.0
    got = _largest_share(sparse.csr_matrix(dense))
    assert got.dtype == np.int64
    assert np.array_equal(got, np.argmax(dense, axis=1))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(200, 5 * 2**15 + 7),
    blocks_per_slice=st.integers(1, 3),
    split=st.sampled_from([0.0, 0.3]),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_allocation_totals_by_slices_are_the_one_pass_bits(n, blocks_per_slice, split, seed):
    """The allocation's value, hectares and value per group, in slices of whole blocks of
    cells (the pages of paged values go after each): the bits of one pass over them all."""
    from engine.solve import solution
    from engine.synthetic import allocation_problem

    problem = allocation_problem(n, 5, 7, seed=seed % 1000)
    rng = np.random.default_rng(seed)
    x = np.zeros((n, problem.n_options))
    x[np.arange(n), rng.integers(0, problem.n_options, n)] = 1.0
    halves = rng.random(n) < split
    x[halves] *= 0.5
    x[np.flatnonzero(halves), rng.integers(0, problem.n_options, int(halves.sum()))] += 0.5
    whole = solution._totals(problem, sparse.csr_matrix(x))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(solution, "_TOTALS_BLOCKS", blocks_per_slice)
        sliced = solution._totals(problem, sparse.csr_matrix(x))
    assert whole[0] == sliced[0]
    for a, b in zip(whole[1:], sliced[1:]):
        assert np.array_equal(a, b)
