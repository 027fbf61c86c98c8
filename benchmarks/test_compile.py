"""Issue 15: the compile stage alone (config + grid -> Problem), wall and CPU, per step.

    pytest benchmarks/test_compile.py                   # national 1000 m, 250 m and 100 m
    pytest benchmarks/test_compile.py -k 1000 --benchmark-disable   # smoke run

The grid is opened (and built into the cache once) before timing. The steps are those of
report.json's ``timings.compile_detail``: ``cells`` (the land in scope and the layers read),
``suitability``, ``rules`` and ``problem``. The CPU time over the wall time says how many of
the cores the compile used; the load average beside it says how much of them it had.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from engine.compile import compile_problem
from engine.config import load_config
from engine.grid import open_grid

NATIONAL = Path(__file__).resolve().parents[1] / "configs" / "national.toml"


@pytest.mark.parametrize("resolution", [1000, 250, 100])
def test_compile_national(benchmark, resolution):
    config = load_config(NATIONAL)
    ds = open_grid("nl", resolution=resolution)
    result = {}

    def job():
        cpu = time.process_time()  # every thread of this process
        result["compiled"] = compile_problem(config, ds)
        result["cpu"] = time.process_time() - cpu

    benchmark.pedantic(job, rounds=1, iterations=1, warmup_rounds=1)
    compiled = result["compiled"]
    benchmark.extra_info.update(
        {
            "cells": compiled.cells.n,
            "cpu": round(result["cpu"], 3),
            "load": round(os.getloadavg()[0], 2),
            **{k: round(v, 3) for k, v in compiled.timings.items()},
        }
    )
    print(f"\n{resolution} m: {benchmark.extra_info}")


def _land_and_allowed(shape, seed=0):
    """A country-like grid: smooth blobs of land (the cells) and, on them, smooth blobs of
    an option's allowed land, with pieces of every size at their edges."""
    import numpy as np
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 8)
    land = field > np.quantile(field[::7, ::7], 0.55)
    flat = np.flatnonzero(land).astype(np.int32)
    option = ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 2).ravel()[flat]
    return flat, option > np.quantile(option[::7], 0.45)


@pytest.mark.parametrize("method", ["union_find", "scipy_label"])
@pytest.mark.parametrize("grid", ["100m", "50m"])
def test_small_patches(benchmark, method, grid):
    """A minimum patch size's cells to rule out (``engine.rules.small_patch_mask``, once per
    option with a minimum at every compile and every relaxation of the rule costs) beside
    the labelling of the whole grid with scipy it replaced (the peer)."""
    import numpy as np
    from scipy import ndimage

    from engine.rules import small_patch_mask

    shape = {"100m": (3170, 2800), "50m": (6340, 5600)}[grid]
    flat, allowed = _land_and_allowed(shape)

    def scipy_label():
        on_grid = np.zeros(shape, dtype=bool)
        on_grid.ravel()[flat] = allowed
        labels, _ = ndimage.label(on_grid)
        piece = labels.ravel()[flat]
        return allowed & (np.bincount(piece) < 10)[piece]

    run = {"union_find": lambda: small_patch_mask(flat, shape[1], allowed, 10)}.get(
        method, scipy_label
    )
    small = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    np.testing.assert_array_equal(small, scipy_label())
    benchmark.extra_info.update(cells=len(flat), small=int(small.sum()))
