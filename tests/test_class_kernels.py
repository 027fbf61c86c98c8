"""The class keys' kernels against the numpy construction they replace, bit for bit
(:mod:`tests.class_reference`): the same hashes and the same classes, so the LPs and the
plans stay the same bits."""

from __future__ import annotations

import importlib

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.solve import class_kernels, kernels
from engine.solve.dual import dual_structure
from engine.synthetic import allocation_problem
from tests.class_reference import (
    reference_classes,
    reference_hash,
    reference_key,
    reference_near_best,
    reference_values,
)
from tests.problems import problems

# engine.solve.fast, not the function engine.solve exports under that package's name.
fast = importlib.import_module("engine.solve.fast")


@pytest.fixture(params=["serial", "parallel"])
def build(request, monkeypatch):
    """Each kernel's serial and its parallel build (the same bits either way)."""
    monkeypatch.setattr(kernels, "PARALLEL_CELLS", 0 if request.param == "parallel" else 10**12)
    for kernel in (*class_kernels.CLASS_KERNELS, kernels.near_best, kernels.left_out):
        monkeypatch.setattr(kernel, "parallel_ready", True)
    return request.param


def _prices(problem, structure, rng):
    prices = rng.normal(scale=2.0, size=len(problem.rows))
    return prices * rng.integers(0, 2, len(prices))  # some rows unpriced


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    problems(tied=True, max_cells=400, extremes=True),
    st.sampled_from([0.0, 0.3, 1.0, np.inf]),
    st.sampled_from([1e-3, 0.05, 0.5]),
    st.integers(0, 2**32 - 1),
    st.sampled_from([1, 7, 64, 1 << 21]),
)
def test_aggregated_classes_are_the_numpy_keys_hashed(
    build, problem, window, step, seed, cells_per_slice
):
    """The classes (first cells, each cell's class, the hashes) of the numpy keys: as the
    classes group equal hashes, every cell's hash is its class's. The hashes slice by
    slice of cells of any size."""
    structure = dual_structure(problem)
    prices = _prices(problem, structure, np.random.default_rng(seed))
    cells = np.arange(problem.n_cells)
    options = reference_near_best(problem, structure, prices, cells, window)
    hashes = reference_hash(reference_key(problem, structure, cells, options, step))
    first, of_cell = reference_classes(hashes)
    area = np.ones(problem.n_cells)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast, "_CELL_SLICE", cells_per_slice)
        got = fast._aggregated_classes(problem, structure, prices, window, step, area)
    assert np.array_equal(got.first, first)
    assert np.array_equal(got.of_cell, of_cell)
    assert np.array_equal(got.key, hashes[first])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(problems(tied=True, max_cells=400, extremes=True), st.data())
def test_repair_hashes_and_keys_are_the_numpy_ones(build, problem, data):
    structure = dual_structure(problem)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    cells = np.flatnonzero(
        rng.random(problem.n_cells) < data.draw(st.sampled_from([0.1, 0.5, 1.0]))
    )
    options = structure.allowed[cells] & (rng.random((len(cells), problem.n_options)) < 0.7)
    options[np.arange(len(cells)), np.argmax(structure.allowed[cells], axis=1)] = True
    key = reference_key(problem, structure, cells, options, 0.0)
    length = class_kernels.key_length(problem.n_options, 1)
    arguments = (cells, options, problem.value, structure.group)
    hashes = class_kernels.repair_hashes(*arguments, class_kernels.hash_multipliers(length))
    assert np.array_equal(hashes, reference_hash(key))
    assert np.array_equal(class_kernels.repair_keys(*arguments, length), key)

    first, of_cell = reference_classes(hashes)
    assert class_kernels.keys_agree(*arguments, of_cell, key[first])
    # Every cell in one class: the keys agree only if they are all the same.
    together = np.zeros(len(cells), dtype=np.int64)
    all_alike = len(np.unique(key, axis=0)) <= 1
    first_key = key[:1] if len(key) else np.zeros((1, length), np.int64)
    assert class_kernels.keys_agree(*arguments, together, first_key) == all_alike


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 5000),
    distinct=st.sampled_from([1, 2, 7, 1000, 3000, 2**64 - 1]),
    seed=st.integers(0, 2**32 - 1),
)
def test_hashes_group_as_numpy_unique_does(n, distinct, seed):
    """Classes numbered in the order of their first cell, through the table's growth."""
    hashes = np.random.default_rng(seed).integers(0, distinct, n, dtype=np.uint64, endpoint=True)
    first, of_cell = reference_classes(hashes)
    got_of_cell = np.empty(n, dtype=np.int32)
    got_first = class_kernels.group_by_hash(hashes, got_of_cell)
    assert np.array_equal(got_first, first)
    assert np.array_equal(got_of_cell, of_cell)


def test_hashes_that_share_their_low_bits_stay_apart():
    """Keys equal in the bits the table indexes by probe on, not merge."""
    hashes = (np.arange(5000, dtype=np.uint64) << np.uint64(40)) | np.uint64(7)
    hashes = np.concatenate([hashes, hashes[::-1]])
    of_cell = np.empty(len(hashes), dtype=np.int64)
    first = class_kernels.group_by_hash(hashes, of_cell)
    assert np.array_equal(first, np.arange(5000))
    assert np.array_equal(of_cell, np.concatenate([np.arange(5000), np.arange(5000)[::-1]]))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n=st.integers(0, 3000), n_options=st.integers(1, 63), seed=st.integers(0, 2**32 - 1))
def test_option_codes_are_the_options_bits(build, n, n_options, seed):
    allowed = np.random.default_rng(seed).random((n, n_options)) < 0.5
    expected = (allowed.astype(np.int64) << np.arange(n_options, dtype=np.int64)).sum(axis=1)
    assert np.array_equal(class_kernels.option_codes(allowed), expected)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(problems(tied=True, max_cells=400, extremes=True), st.data())
def test_near_best_and_left_out_are_the_numpy_ones(build, problem, data):
    """The options near a cell's best (one window for all or one a cell), and the free
    cells whose best beats every option an LP had: numpy's, bit for bit."""
    structure = dual_structure(problem)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    prices = _prices(problem, structure, rng)
    cells = np.flatnonzero(rng.random(problem.n_cells) < 0.6)
    window = data.draw(st.sampled_from([0.0, 0.5, np.inf, "per cell"]))
    if window == "per cell":
        window = rng.choice([0.0, 0.2, 1.0, np.inf], size=len(cells))
    expected = reference_near_best(problem, structure, prices, cells, window)
    options = expected & (rng.random(expected.shape) < 0.7)
    tolerance = data.draw(st.sampled_from([0.0, 1e-9, 0.3]))
    values = reference_values(problem, structure, prices, cells)
    best_taken = np.where(options, values, -np.inf).max(axis=1)
    missing = np.flatnonzero(values.max(axis=1) > best_taken + tolerance)
    free = fast.FreeCells(cells, options)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast, "_CELL_SLICE", data.draw(CELLS_PER_SLICE))
        got = fast._near_best(problem, structure, prices, cells, window)
        got_missing, got_best = fast._left_out(problem, structure, prices, free, tolerance)
    assert np.array_equal(got, expected)
    assert np.array_equal(got_missing, missing)
    assert np.array_equal(got_best, np.argmax(values[missing], axis=1))


# The repair's passes over its free cells in slices of any size (engine.solve.fast).
CELLS_PER_SLICE = st.sampled_from([1, 2, 7, 64, 1 << 21])


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(problems(tied=True, max_cells=400, extremes=True), st.data())
def test_the_repair_classes_in_slices_are_the_numpy_ones(build, problem, data):
    """The free cells' classes, their hashes and keys taken slice by slice of the cells
    (a class's first cell in an earlier slice than its others): numpy's classes."""
    structure = dual_structure(problem)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    cells = np.flatnonzero(rng.random(problem.n_cells) < data.draw(st.sampled_from([0.3, 1.0])))
    options = structure.allowed[cells] & (rng.random((len(cells), problem.n_options)) < 0.7)
    options[np.arange(len(cells)), np.argmax(structure.allowed[cells], axis=1)] = True
    key = reference_key(problem, structure, cells, options, 0.0)
    first, of_cell = reference_classes(reference_hash(key))
    free, length = fast.FreeCells(cells, options), key.shape[1]
    together = np.zeros(len(cells), dtype=np.int64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast, "_CELL_SLICE", data.draw(CELLS_PER_SLICE))
        classes = fast._interchangeable(problem, structure, free, np.ones(len(cells)))
        agree = fast._keys_agree(problem, structure, free, of_cell, first, length)
        # Every cell in one class: the keys agree only if they are all the same.
        all_agree = fast._keys_agree(problem, structure, free, together, together[:1], length)
    assert np.array_equal(classes.first, first)
    assert np.array_equal(classes.of_cell, of_cell)
    assert agree
    assert all_agree == (len(np.unique(key, axis=0)) <= 1)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("n_options", "forbidden"), [(8, 0.0), (70, 0.1), (130, 0.0)])
def test_classes_for_any_options_and_threads(build, threads, n_options, forbidden):
    """Keys of more than one word of option bits, a problem without an allowed mask
    (``forbidden`` 0), on one thread and on two: the numpy classes."""
    problem = allocation_problem(3000, n_options=n_options, forbidden=forbidden, seed=3)
    assert (problem.allowed is None) == (forbidden == 0.0)
    structure = dual_structure(problem)
    prices = _prices(problem, structure, np.random.default_rng(4))
    cells = np.arange(problem.n_cells)
    options = reference_near_best(problem, structure, prices, cells, 1.0)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(threads)
        got = fast._aggregated_classes(problem, structure, prices, 1.0, 0.05, np.ones(len(cells)))
        repair = fast._interchangeable(
            problem, structure, fast.FreeCells(cells, options), np.ones(len(cells))
        )
    finally:
        numba.set_num_threads(before)
    for classes, step in ((got, 0.05), (repair, 0.0)):
        hashes = reference_hash(reference_key(problem, structure, cells, options, step))
        first, of_cell = reference_classes(hashes)
        assert np.array_equal(classes.first, first)
        assert np.array_equal(classes.of_cell, of_cell)


def _joined_by_sorting(free, cells, options):
    """What ``FreeCells.join`` did before its kernel: every row sorted, then or-reduced."""
    all_cells = np.concatenate([free.cells, cells])
    all_options = np.concatenate([free.options, options])
    order = np.argsort(all_cells, kind="stable")
    unique, start = np.unique(all_cells[order], return_index=True)
    return unique, np.logical_or.reduceat(all_options[order], start, axis=0)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 8),
    st.lists(st.integers(0, 60), unique=True, max_size=40),
    st.lists(st.integers(0, 60), max_size=40),
    st.integers(0, 2**32 - 1),
)
def test_free_cells_joined_as_sorting_every_row_did(n_options, held, added, seed):
    """Cells already free or not, added once or many times, in any order, none at all: the
    join's merge gives the cells and options of sorting and or-reducing every row."""
    rng = np.random.default_rng(seed)
    held = np.sort(np.asarray(held, dtype=np.int64))
    free = fast.FreeCells(held, rng.random((len(held), n_options)) < 0.4)
    cells = np.asarray(added, dtype=np.int32 if seed % 2 else np.int64)
    options = rng.random((len(cells), n_options)) < 0.4
    joined = free.join(cells, options)
    expected_cells, expected_options = _joined_by_sorting(free, cells, options)
    np.testing.assert_array_equal(joined.cells, expected_cells)
    np.testing.assert_array_equal(joined.options, expected_options)
    assert joined.cells.dtype == np.int64 and joined.options.dtype == bool
