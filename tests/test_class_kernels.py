"""The class keys' kernels against the numpy construction they replace, bit for bit
(:mod:`tests.class_reference`): the same hashes and the same classes, so the LPs and the
plans stay the same bits."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.solve import class_kernels, kernels
from engine.solve.dual import dual_structure
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
)
def test_aggregated_classes_are_the_numpy_keys_hashed(build, problem, window, step, seed):
    """The classes (first cells, each cell's class, the hashes) of the numpy keys: as the
    classes group equal hashes, every cell's hash is its class's."""
    structure = dual_structure(problem)
    prices = _prices(problem, structure, np.random.default_rng(seed))
    cells = np.arange(problem.n_cells)
    options = reference_near_best(problem, structure, prices, cells, window)
    hashes = reference_hash(reference_key(problem, structure, cells, options, step))
    first, of_cell = reference_classes(hashes)
    area = np.ones(problem.n_cells)
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
    assert class_kernels.keys_agree(*arguments, of_cell, first, length)
    # Every cell in one class: the keys agree only if they are all the same.
    together = np.zeros(len(cells), dtype=np.int64)
    all_alike = len(np.unique(key, axis=0)) <= 1
    assert (
        class_kernels.keys_agree(*arguments, together, np.zeros(1, np.int64), length) == all_alike
    )


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
    got = fast._near_best(problem, structure, prices, cells, window)
    assert np.array_equal(got, expected)

    options = expected & (rng.random(expected.shape) < 0.7)
    tolerance = data.draw(st.sampled_from([0.0, 1e-9, 0.3]))
    values = reference_values(problem, structure, prices, cells)
    best_taken = np.where(options, values, -np.inf).max(axis=1)
    missing = np.flatnonzero(values.max(axis=1) > best_taken + tolerance)
    free = fast.FreeCells(cells, options)
    got_missing, got_best = fast._left_out(problem, structure, prices, free, tolerance)
    assert np.array_equal(got_missing, missing)
    assert np.array_equal(got_best, np.argmax(values[missing], axis=1))
