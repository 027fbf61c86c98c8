"""Issue 15: the aggregated LP's class keys and the options near each cell's best, numpy
against the kernels.

    pytest benchmarks/test_class_kernels.py -s                  # 3.5 M cells, 15 options
    pytest benchmarks/ --benchmark-disable -k "not national"    # CI smoke run (50 k cells)

The numpy construction (:mod:`tests.class_reference`, what the fast solver did before the
kernels) builds each block's keys as int64 rows and hashes them column by column, then
groups the hashes with a stable sort; the kernels build and hash each cell's key in a few
numbers in one pass (both cores) and group the hashes through a table in one more. Both
give the same classes (asserted here, proven in tests/test_class_kernels.py). Instances:
``engine.synthetic.allocation_problem`` with the national grid's count of options and
cells drawn from 50 kinds, so cells tie in classes as land-use classes do.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from engine.solve import warmup
from engine.solve.dual import dual_structure
from engine.synthetic import allocation_problem
from tests.class_reference import (
    reference_classes,
    reference_hash,
    reference_key,
    reference_near_best,
)

fast = importlib.import_module("engine.solve.fast")

# Cells per block of the numpy construction, as the solver had it.
BLOCK = 1 << 16


def _instance(n_cells: int):
    problem = allocation_problem(n_cells, n_options=15, seed=0)
    kinds = np.random.default_rng(1).integers(0, 50, problem.n_cells)
    problem.value[:] = problem.value[kinds]
    structure = dual_structure(problem)
    scale = fast.value_scale(problem)
    prices, _, _ = fast.smoothed_prices(
        problem, structure, fast.initial_prices(problem, None), scale
    )
    return problem, structure, prices, fast.AGGREGATE_WINDOW * scale, fast.AGGREGATE_STEP * scale


def numpy_classes(problem, structure, prices, window, step):
    hashes = np.empty(problem.n_cells, dtype=np.uint64)
    for start in range(0, problem.n_cells, BLOCK):
        cells = np.arange(start, min(start + BLOCK, problem.n_cells))
        options = reference_near_best(problem, structure, prices, cells, window)
        hashes[cells] = reference_hash(reference_key(problem, structure, cells, options, step))
    return reference_classes(hashes)


def kernel_classes(problem, structure, prices, window, step):
    area = np.ones(problem.n_cells)
    classes = fast._aggregated_classes(problem, structure, prices, window, step, area)
    return classes.first, classes.of_cell


@pytest.mark.parametrize("n_cells", [50_000, 3_500_000], ids=["50k", "national-100m-size"])
@pytest.mark.parametrize("way", ["numpy", "kernels"])
def test_aggregated_classes(benchmark, n_cells, way):
    warmup.warm_up()
    instance = _instance(n_cells)
    build = numpy_classes if way == "numpy" else kernel_classes
    first, of_cell = benchmark.pedantic(build, args=instance, rounds=3, iterations=1)
    expected_first, expected_of_cell = numpy_classes(*instance)
    assert np.array_equal(first, expected_first)
    assert np.array_equal(of_cell, expected_of_cell)
    benchmark.extra_info["classes"] = len(first)


@pytest.mark.parametrize("n_cells", [50_000, 3_500_000], ids=["50k", "national-100m-size"])
@pytest.mark.parametrize("way", ["numpy", "kernels"])
def test_near_best(benchmark, n_cells, way):
    """The options near each cell's best (the repair's free cells, one window a cell)."""
    warmup.warm_up()
    problem, structure, prices, window, _ = _instance(n_cells)
    cells = np.arange(problem.n_cells)
    windows = np.random.default_rng(2).uniform(0, 2 * window, len(cells))

    def numpy_blocks():
        return np.concatenate(
            [
                reference_near_best(problem, structure, prices, cells[b], windows[b])
                for b in (slice(lo, lo + BLOCK) for lo in range(0, len(cells), BLOCK))
            ]
        )

    def kernel():
        return fast._near_best(problem, structure, prices, cells, windows)

    got = benchmark.pedantic(numpy_blocks if way == "numpy" else kernel, rounds=3, iterations=1)
    assert np.array_equal(got, numpy_blocks())
