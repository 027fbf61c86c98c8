"""Issue 15, the compile on both cores: the layers read band by band on every core, the values
in one fused pass and the rules' additions in one pass per rule give the bits of the one-core
compile they replace, whatever the grid's chunking."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import dask
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_suitability import add_per_option, per_term_values

import engine.compile
import engine.suitability
from engine.compile import compile_problem
from engine.config import load_config
from engine.grid import grid_folder, open_folder, open_grid
from engine.rules import Cells, layers_used

NATIONAL = Path(__file__).resolve().parents[1] / "configs" / "national.toml"


@pytest.fixture(scope="module")
def config():
    return load_config(NATIONAL)


@pytest.fixture(scope="module")
def folder():
    return grid_folder("nl", 1000)


def whole_grid(ds, flat: np.ndarray, names) -> dict:
    """Each layer's whole grid read at once, then cut to the cells: the reference read."""
    arrays = dask.compute(*[ds[n].data for n in names])
    return {n: np.asarray(a).ravel()[flat] for n, a in zip(names, arrays)}


@settings(max_examples=25, deadline=None)
@given(
    chunks=st.sampled_from([None, 37, 100, 256, 4096]),
    share=st.sampled_from([0.0, 0.002, 0.3, 1.0]),
    seed=st.integers(0, 2**32 - 1),
    in_memory=st.booleans(),
)
def test_bands_read_on_every_core_give_the_bits_of_the_whole_grid(
    folder, config, chunks, share, seed, in_memory
):
    ds = open_folder(folder, chunks=chunks)
    if in_memory:
        ds = ds.load()  # numpy-backed layers, as a grid given to run() may be
    names = [n for n in layers_used(config) if n in ds.data_vars]
    mask = np.random.default_rng(seed).random(ds["land"].shape) < share
    cells = Cells(ds, mask)
    cells.preload(names[: len(names) // 2])
    expected = whole_grid(ds, cells.flat, names)
    for name, values in expected.items():
        got = cells.layer(name)  # half preloaded together, half one by one
        assert got.dtype == values.dtype, name
        assert np.array_equal(got, values, equal_nan=True), name


def one_core_compile(config, ds, monkeypatch):
    """The compile as it was before the work went to every core: layers read whole and cut,
    a pass per recipe term, a numpy pass per option for each penalty and ladder."""

    def preload_whole(self, names):
        names = [n for n in dict.fromkeys(names) if n not in self._cache and self.has(n)]
        self._cache.update(whole_grid(self.ds, self.flat, names))

    def values_per_term(config, cells, paged_in=None):
        assert paged_in is None  # a compile with its values in memory
        return np.ascontiguousarray(per_term_values(config, cells).T).T

    with monkeypatch.context() as m:
        m.setattr(Cells, "preload", preload_whole)
        m.setattr(engine.compile, "option_values", values_per_term)
        m.setattr(engine.suitability, "add_to_options", add_per_option)
        return compile_problem(config, ds)


@pytest.mark.parametrize("resolution", [1000, 250])
def test_the_national_problem_is_the_bits_of_the_one_core_compile(config, resolution, monkeypatch):
    ds = open_grid("nl", resolution=resolution)
    got = compile_problem(config, ds)
    want = one_core_compile(config, ds, monkeypatch)
    a, b = got.problem, want.problem
    for name in ("value", "allowed", "zones"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x.view(np.uint8), y.view(np.uint8)), name
    for rows in ("lower", "upper"):
        for x, y in zip(getattr(a, rows), getattr(b, rows)):
            assert np.array_equal(x, y, equal_nan=True), rows
    assert np.array_equal(got.effects.reserved, want.effects.reserved)
    assert got.effects.reservation_targets == want.effects.reservation_targets
    assert got.effects.counts == want.effects.counts
    # Each step's wall and CPU seconds, for report.json's timings.compile_detail.
    steps = ("cells", "suitability", "rules", "problem")
    assert set(got.timings) == {*steps, *(f"{s}_cpu" for s in steps)}


NAMES = ["a", "b", "c", "d", "e"]


def leaves():
    layer = st.sampled_from(["height", "kind", "flag"])
    bound = st.floats(-3, 3, allow_nan=False)
    return st.one_of(
        st.builds(lambda lo: {"layer": "height", "min": lo}, bound),
        st.builds(lambda hi: {"layer": "height", "max": hi}, bound),
        st.builds(lambda lo, hi: {"layer": "height", "min": lo, "max": hi}, bound, bound),
        st.builds(lambda names: {"layer": "kind", "in": names}, st.lists(st.sampled_from(NAMES))),
        st.builds(lambda name: {"layer": name}, layer),
    )


conditions = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(
    where=conditions,
    n=st.integers(0, 300),
    size=st.sampled_from([1, 7, 64, 1 << 20]),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_condition_in_slices_on_every_core_is_the_whole_condition(where, n, size, seed):
    import xarray as xr

    from engine import rules

    rng = np.random.default_rng(seed)
    height = rng.normal(0, 2, (1, n))
    height[rng.random((1, n)) < 0.2] = np.nan
    ds = xr.Dataset(
        {
            "height": (("y", "x"), height),
            "kind": (("y", "x"), rng.integers(0, len(NAMES), (1, n), dtype=np.int16)),
            "flag": (("y", "x"), rng.integers(0, 2, (1, n), dtype=np.uint8)),
        }
    )
    ds["kind"].attrs["names"] = NAMES
    cells = Cells(ds, np.ones((1, n), dtype=bool))
    whole = rules._evaluate(where, cells, slice(0, n))  # the condition over all cells at once
    with mock.patch.object(rules, "_SLICE", size):
        got = rules.evaluate(where, cells)
    assert got.dtype == bool and np.array_equal(got, whole)
