"""The price stage over chunks of cells (engine.solve.chunked): the same sums bit for bit
as the kernels' passes over all cells, whatever the chunking, in this process and on a real
Dask LocalCluster of two processes; and the same optimum as the in-memory solve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.solve import chunked, kernels
from engine.solve.chunked import PriceStage, PriceStageError, cell_chunks, parse_memory
from engine.solve.dual import dual_structure
from engine.synthetic import allocation_problem
from tests.problems import problems
from tests.test_solve import assert_feasible, assert_optimum, rel

BLOCK = kernels.BLOCK
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def kernel_passes(problem, structure, adj, tau, cells=None, weight=1.0):
    """The kernels' own passes over all cells (or a selection, in one array, its areas
    times ``weight``), as the in-memory solve makes them."""
    index = np.arange(problem.n_cells) if cells is None else cells
    area = (structure.area if len(structure.area) == 1 else structure.area[index]) * weight
    allowed = structure.allowed[index] if structure.has_allowed else structure.allowed
    args = (
        np.ascontiguousarray(problem.value[index]),
        np.ascontiguousarray(allowed),
        structure.has_allowed,
        np.ascontiguousarray(structure.group[index]),
        np.ascontiguousarray(area),
    )
    best = kernels.best_options(*args, adj)
    smooth = kernels.smoothed_dual_terms(*args, adj, tau, structure.n_groups)
    return best, smooth


def chunk_sizes():
    # Whole blocks and ragged sizes (rounded up to whole blocks), from one block to more
    # than the problem.
    return st.one_of(st.integers(1, 4).map(lambda b: b * BLOCK), st.integers(1, 5 * BLOCK))


def block_offsets(rng, n, scale):
    """(n, 1): per block of cells an offset of either sign, or none (half of the blocks):
    partial sums from about one to 1e16 that cancel."""
    offsets = rng.normal(size=n // BLOCK + 1) * scale * (rng.random(n // BLOCK + 1) < 0.5)
    return np.repeat(offsets, BLOCK)[:n, None]


@st.composite
def large_problems(draw):
    """Problems of two to five blocks of cells, several chunks for most sizes: values with
    ties (a coarse grid) or without, float32 or float64, options forbidden or not, per-cell
    or uniform areas, a few or many zones; and large offsets of either sign per block of
    cells (a constant no allocation changes), so that the blocks' partial sums cancel and
    adding them in another order gives other bits."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(2 * BLOCK, 5 * BLOCK))
    n_options = draw(st.integers(2, 6))
    n_zones = draw(st.sampled_from([1, 12, 400]))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e5]))
    value = rng.normal(size=(n, n_options))
    if draw(st.booleans()):
        value = np.round(value * 4) / 4  # whole classes tie
    # Offsets up to 1e11 times the values' spread: within what a Problem accepts (1e12).
    value = (value + block_offsets(rng, n, draw(st.sampled_from([0.0, 1e6, 1e11])))) * scale
    value = value.astype(draw(st.sampled_from([np.float32, np.float64])))
    allowed = None
    if draw(st.booleans()):
        allowed = rng.random((n, n_options)) < draw(st.sampled_from([0.1, 0.8]))
        allowed[:, 0] = True  # keep
    area = rng.uniform(0.5, 2.0, n) if draw(st.booleans()) else 6.25
    zones = np.stack([np.zeros(n, int), rng.integers(0, n_zones, n)])
    contribution = np.eye(n_options)[:, 1:]
    lower = [np.full((1, n_options - 1), 1.0), np.full((n_zones, n_options - 1), 1.0)]
    return engine.Problem(value, contribution, zones, lower=lower, allowed=allowed, area=area)


def random_prices(structure, seed, spread):
    prices = np.random.default_rng(seed).normal(size=structure.n_rows) * spread
    return structure.project(prices)


@SETTINGS
@given(
    problem=st.one_of(problems(max_cells=3 * BLOCK + 500, extremes=True), large_problems()),
    size=chunk_sizes(),
    seed=st.integers(0, 2**16),
    spread=st.sampled_from([0.0, 0.1, 3.0, 1e6]),
)
def test_passes_over_chunks_equal_the_kernels_over_all_cells_bit_for_bit(
    problem, size, seed, spread
):
    structure = dual_structure(problem)
    adj = structure.adjustment(random_prices(structure, seed, spread))
    tau = 0.05
    (choice, margin, bound), (f, assigned) = kernel_passes(problem, structure, adj, tau)
    cells = cell_chunks(problem, structure, size)
    got_choice, got_margin, got_bound = cells.best_options(adj)
    np.testing.assert_array_equal(got_choice, choice)
    np.testing.assert_array_equal(got_margin, margin)
    assert got_bound == bound
    got_f, got_assigned = cells.smoothed_terms(adj, tau, structure.n_groups)
    assert got_f == f
    np.testing.assert_array_equal(got_assigned, assigned)


@SETTINGS
@given(
    problem=st.one_of(problems(max_cells=3 * BLOCK + 500, extremes=True), large_problems()),
    sizes=st.lists(chunk_sizes(), min_size=2, max_size=3),
    share=st.sampled_from([0.0, 0.001, 0.3, 1.0]),
    weight=st.sampled_from([1.0, 7.0]),
    compact=st.sampled_from([0, chunked.COMPACT_CELLS]),
    seed=st.integers(0, 2**16),
)
def test_a_selection_sums_the_same_whatever_the_chunking(
    problem, sizes, share, weight, compact, seed
):
    """The fine stage's selection (cells near a tie), spread over the chunks or gathered
    into one array: the same smoothed dual bit for bit for every chunking."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunked, "COMPACT_CELLS", compact)
        selection_sums(problem, sizes, share, weight, compact, seed)


def selection_sums(problem, sizes, share, weight, compact, seed):
    structure = dual_structure(problem)
    rng = np.random.default_rng(seed)
    adj = structure.adjustment(random_prices(structure, seed, 0.5))
    index = np.flatnonzero(rng.random(problem.n_cells) < share)
    results = []
    for size in sizes:
        selection = cell_chunks(problem, structure, size).select(index, weight, 1.0)
        assert selection.n_cells == len(index)
        results.append(selection.smoothed_terms(adj, 0.05, structure.n_groups))
    for f, assigned in results[1:]:
        assert f == results[0][0]
        np.testing.assert_array_equal(assigned, results[0][1])
    if len(index) <= compact:
        # Gathered into one array, it is the in-memory path's selection exactly.
        _, (f, assigned) = kernel_passes(problem, structure, adj, 0.05, index, weight)
        assert results[0][0] == f
        np.testing.assert_array_equal(results[0][1], assigned)


@pytest.mark.parametrize("seed", range(4))
def test_partial_sums_that_cancel_are_added_in_block_order(seed):
    """Blocks of cells whose sums range from one to 1e16 and cancel: a sum per chunk first
    (the obvious map-reduce) gives other bits here; the blocks in grid order do not."""
    rng = np.random.default_rng(seed)
    n, n_options = 5 * BLOCK - 7, 4
    value = rng.normal(size=(n, n_options)) + block_offsets(rng, n, 3e11)
    zones = np.stack([np.zeros(n, int), rng.integers(0, 12, n)])
    lower = [np.ones((1, n_options - 1)), np.ones((12, n_options - 1))]
    problem = engine.Problem(
        value, np.eye(n_options)[:, 1:], zones, lower=lower, area=rng.uniform(0.5, 2, n)
    )
    structure = dual_structure(problem)
    adj = structure.adjustment(random_prices(structure, seed, 0.2))
    (_, _, bound), (f, assigned) = kernel_passes(problem, structure, adj, 0.05)
    for size in (2 * BLOCK, 3 * BLOCK):
        cells = cell_chunks(problem, structure, size)
        assert cells.best_options(adj)[2] == bound
        got_f, got_assigned = cells.smoothed_terms(adj, 0.05, structure.n_groups)
        assert got_f == f
        np.testing.assert_array_equal(got_assigned, assigned)


def test_a_selection_of_one_cell_in_a_chunk_keeps_the_areas_of_the_others():
    """Per-cell areas, and the first chunk's part of a selection a single cell: its area
    has one entry like a uniform one, yet the other chunks' cells keep their own."""
    rng = np.random.default_rng(4)
    n, n_options = 3 * BLOCK, 3
    problem = engine.Problem(
        rng.normal(size=(n, n_options)),
        np.eye(n_options)[:, 1:],
        np.zeros(n, int),
        lower=np.ones((1, n_options - 1)),
        area=rng.uniform(0.5, 2.0, n),
    )
    structure = dual_structure(problem)
    adj = structure.adjustment(random_prices(structure, 1, 0.3))
    index = np.concatenate([[5], np.arange(BLOCK + 10, 3 * BLOCK, 7)])
    selection = cell_chunks(problem, structure, BLOCK).select(index, 2.0, 1.0)
    _, expected = kernel_passes(problem, structure, adj, 0.05, index, 2.0)
    got = selection.smoothed_terms(adj, 0.05, structure.n_groups)
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])


@pytest.fixture(scope="module")
def national_style():
    """Four blocks and a half of cells: several chunks for every size below."""
    return allocation_problem(4 * BLOCK + BLOCK // 2, 6, 12, seed=11)


@pytest.mark.parametrize("size", [BLOCK, 3 * BLOCK, 10**9])
def test_the_chunked_solve_finds_the_in_memory_optimum(national_style, size, monkeypatch):
    # The fine stage's selection on the chunks too, not gathered.
    monkeypatch.setattr(chunked, "COMPACT_CELLS", 0)
    memory = engine.solve(national_style, method="fast")
    chunks = engine.solve(national_style, method="fast", chunk_cells=size)
    assert chunks.status == "optimal"
    assert chunks.gap <= 1e-9
    assert rel(chunks.objective, memory.objective) <= 1e-9
    assert_feasible(national_style, chunks)


def test_the_chunked_solve_matches_highs(monkeypatch):
    monkeypatch.setattr(chunked, "COMPACT_CELLS", 0)
    problem = allocation_problem(BLOCK + 4000, 5, 6, seed=2, elastic=True)
    chunks = engine.solve(problem, method="fast", chunk_cells=BLOCK)
    assert_optimum(problem, chunks, engine.solve(problem, method="highs"))


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_a_local_cluster_of_two_processes_gives_the_single_process_result(
    national_style, client, monkeypatch
):
    """Chunks scattered over two worker processes, the passes mapped to them and reduced
    in block order: the same prices, allocation and objective bit for bit."""
    monkeypatch.setattr(chunked, "COMPACT_CELLS", 0)
    assert len(client.scheduler_info()["workers"]) == 2
    from dask.distributed import get_task_stream

    here = engine.solve(national_style, method="fast", chunk_cells=BLOCK)
    with get_task_stream(client) as tasks:
        there = engine.solve(national_style, method="fast", chunk_cells=BLOCK, client=client)
    assert there.objective == here.objective
    assert there.gap == here.gap
    np.testing.assert_array_equal(there.choice, here.choice)
    for a, b in zip(there.prices, here.prices):
        np.testing.assert_array_equal(a, b)
    # and the passes did run on both workers
    assert len({task["worker"] for task in tasks.data}) == 2


@pytest.mark.parametrize("size", [BLOCK, 2 * BLOCK, 3 * BLOCK])
@pytest.mark.parametrize("where", ["here", "cluster"])
def test_the_passes_over_chunks_here_and_on_a_cluster_equal_the_kernels(
    national_style, where, size, request
):
    client = request.getfixturevalue("client") if where == "cluster" else None
    structure = dual_structure(national_style)
    adj = structure.adjustment(random_prices(structure, 3, 0.2))
    (choice, margin, bound), (f, assigned) = kernel_passes(national_style, structure, adj, 0.01)
    cells = cell_chunks(national_style, structure, size, client)
    assert len(cells.chunks) == -(-national_style.n_cells // size)
    got = cells.best_options(adj)
    np.testing.assert_array_equal(got[0], choice)
    np.testing.assert_array_equal(got[1], margin)
    assert got[2] == bound
    got_f, got_assigned = cells.smoothed_terms(adj, 0.01, structure.n_groups)
    assert got_f == f
    np.testing.assert_array_equal(got_assigned, assigned)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8GB", 8 * 10**9), ("4 GiB", 4 * 2**30), ("512MB", 512 * 10**6), ("1.5gb", 1.5e9)],
)
def test_memory_settings_are_read(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lots", "not an amount of memory"),
        ("8XB", "not an amount of memory"),
        ("-4GB", "not an amount of memory"),
        ("", "not an amount of memory"),
        ("100MB", "too little to run in"),
        ("0", "too little to run in"),
    ],
)
def test_bad_memory_settings_say_what_and_how(text, message):
    with pytest.raises(PriceStageError, match=message) as err:
        PriceStage.of(text)
    assert "e.g." in str(err.value)


def test_chunks_follow_the_memory_setting():
    small = chunked.chunk_cells_for(parse_memory("4GB"), 15)
    large = chunked.chunk_cells_for(parse_memory("8GB"), 15)
    assert small % BLOCK == 0 and large % BLOCK == 0
    assert BLOCK <= small < large


def test_an_unreachable_scheduler_is_a_clear_error(monkeypatch):
    # distributed retries a refused connection until the timeout: a short one for the test.
    monkeypatch.setattr(chunked, "SCHEDULER_TIMEOUT", 2)
    problem = allocation_problem(2000, 4, 2, seed=1)
    stage = PriceStage.of("1GB", "tcp://127.0.0.1:1")
    with (
        pytest.raises(PriceStageError, match="no Dask scheduler answers"),
        stage.solve_options(problem),
    ):
        pass


def test_the_cli_refuses_a_bad_memory_setting_before_any_work(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", "national", "--resolution", "1000"]
        + ["--memory", "eight", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "memory = 'eight'" in out.stderr and "8GB" in out.stderr
    assert not (tmp_path / "run").exists()


def test_zone_indices_take_the_narrowest_type():
    """The national problem's zone indices in two bytes a cell per zoning, not eight: at
    25 m the int64 rows of seven zonings were 3.1 GB, as large as the values."""
    from engine.compile import zone_dtype
    from engine.run import prepare

    assert zone_dtype([1, 12, 345, 32767]) == np.int16
    assert zone_dtype([32768]) == np.int32
    assert zone_dtype([2**31]) == np.int64
    config = Path(__file__).resolve().parents[1] / "configs" / "national.toml"
    problem = prepare(config, resolution=1000)[0].problem
    assert problem.zones.dtype == np.int16
    # and the zones still say the same: every cell of a group lies in its group's zones
    groups = problem.groups
    np.testing.assert_array_equal(groups.zones[groups.group].T, problem.zones)
