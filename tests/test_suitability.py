"""The values ``v`` of one fused pass over the cells on every core are the bits of one pass per
term over each option's column (the compile before issue 15's fifth session), for any recipes,
layers, land covers and NaNs."""

from __future__ import annotations

from types import SimpleNamespace

import numba
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import suitability
from engine.config.model import Recipe, Term
from engine.rules import Cells, category_names
from engine.suitability import (
    _KIND,
    _parameters,
    add_to_options,
    add_to_values,
    option_values,
)

CLASSES = ["water", "built", "grass", "arable", "forest"]


@numba.njit(parallel=True)
def add_term(out, x, kind, weight, a, b):
    """out += weight * transform(x); NaN contributes nothing: the kernel per term that built
    each column before (main at c0beb68), the reference."""
    for i in numba.prange(x.shape[0]):
        v = x[i]
        if v != v:
            continue
        if kind == 0:
            t = v
        elif kind == 1:
            t = (v - a) / (b - a)
            t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
        elif kind == 2:
            t = np.exp(-v / a)
        elif kind == 3:
            t = 1.0 if v >= a else 0.0
        else:
            t = 1.0 if v <= a else 0.0
        out[i] += weight * t


def per_term_values(config, cells) -> np.ndarray:
    """The reference: each option's column built on its own, one pass per term, then its
    land-cover cost and land take, each a pass of its own."""
    classes = category_names(cells.ds["land_cover"]) if cells.has("land_cover") else None
    take = config.assumptions.get("land_take_cost")
    take = np.float32(take.value if take is not None else 0.0)
    v = np.zeros((len(config.options), cells.n), dtype=np.float32)
    for o, name in enumerate(config.options):
        recipe = config.recipes.get(name)
        if recipe is None:
            continue
        out = np.zeros(cells.n, dtype=np.float32)
        for t in recipe.terms:
            kind = _KIND[t.transform]
            a, b = _parameters(t, kind)
            x = np.asarray(cells.layer(t.layer), dtype=np.float32)
            add_term(out, x, kind, np.float32(t.weight), np.float32(a), np.float32(b))
        if classes is not None:
            cost = np.full(256, recipe.default_cost, dtype=np.float32)
            for cls, c in recipe.conversion_cost.items():
                cost[classes.index(cls)] = c
            out -= cost[cells.layer("land_cover").astype(np.uint8)]
        elif recipe.default_cost:
            out -= np.float32(recipe.default_cost)
        out -= take * np.float32(recipe.land_take_share)
        v[o] = out
    return v


LAYER_DTYPES = [np.float32, np.float64, np.uint8, np.int16]
finite = st.floats(-50, 50, allow_nan=False, width=32)


@st.composite
def terms(draw, layers):
    transform = draw(st.sampled_from(sorted(_KIND)))
    low = draw(finite)
    return Term(
        layer=draw(st.sampled_from(layers)),
        transform=transform,
        weight=draw(finite),
        low=low,
        high=low + draw(st.floats(0.5, 50, width=32)),
        scale=draw(st.floats(0.5, 50, width=32)),
        threshold=draw(finite),
    )


@st.composite
def cases(draw):
    # More than 16 layers: the kernel's next tuple of layers, 32.
    n_layers = draw(st.sampled_from([1, 2, 4, 20]))
    ny, nx = draw(st.integers(1, 30)), draw(st.integers(1, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    data = {}
    for j in range(n_layers):
        dtype = draw(st.sampled_from(LAYER_DTYPES))
        values = rng.normal(0, 20, (ny, nx))
        if np.issubdtype(dtype, np.floating):
            values[rng.random((ny, nx)) < draw(st.sampled_from([0.0, 0.2, 1.0]))] = np.nan
        else:
            values = np.abs(values)
        data[f"layer{j}"] = (("y", "x"), values.astype(dtype))
    with_cover = draw(st.booleans())
    if with_cover:
        data["land_cover"] = (("y", "x"), rng.integers(0, len(CLASSES), (ny, nx), dtype=np.uint8))
    ds = xr.Dataset(data)
    if with_cover:
        ds["land_cover"].attrs["classes"] = CLASSES
    names = [f"layer{j}" for j in range(n_layers)]
    options, recipes = {}, {}
    for o in range(draw(st.integers(1, 16))):
        name = f"option{o}"
        options[name] = None
        if draw(st.integers(0, 4)) == 0:
            continue  # an option without a recipe: keep, 0 everywhere
        recipes[name] = Recipe(
            option=name,
            terms=tuple(draw(st.lists(terms(names), max_size=5))),
            conversion_cost=(
                draw(st.dictionaries(st.sampled_from(CLASSES), finite, max_size=3))
                if with_cover
                else {}
            ),
            default_cost=draw(st.sampled_from([0.0, 1.5, -0.25])),
            land_take_share=draw(st.sampled_from([1.0, 0.5, 0.0])),
        )
    take = draw(st.sampled_from([None, 0.0, 2.5]))
    assumptions = {} if take is None else {"land_take_cost": SimpleNamespace(value=take)}
    config = SimpleNamespace(options=options, recipes=recipes, assumptions=assumptions)
    mask = rng.random((ny, nx)) < draw(st.sampled_from([0.05, 0.7, 1.0]))
    return config, Cells(ds, mask)


@settings(max_examples=300, deadline=None)
@given(case=cases())
def test_the_fused_pass_gives_the_bits_of_one_pass_per_term(case):
    config, cells = case
    got = option_values(config, cells)
    want = per_term_values(config, cells)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    # Option-major rows over the cell-major array the problem holds.
    assert got.T.flags.c_contiguous


@pytest.mark.parametrize("cells_per_slice", [4096, 2 * 4096, 1000, suitability._SLICE])
def test_blocks_and_slices_of_cells_give_the_bits_of_one_block(monkeypatch, cells_per_slice):
    """More cells than one block, and than one slice: every block is filled, each with its
    own cells' values; the float32 copies of a byte layer are a slice's, none kept."""
    monkeypatch.setattr(suitability, "_SLICE", cells_per_slice)
    rng = np.random.default_rng(5)
    n = 3 * 4096 + 17
    ds = xr.Dataset(
        {
            "a": (("y", "x"), rng.normal(size=(1, n)).astype(np.float32)),
            "b": (("y", "x"), rng.integers(0, 9, size=(1, n), dtype=np.uint8)),
        }
    )
    terms = (
        Term(layer="a", transform="decay", weight=2.0, scale=3.0),
        Term(layer="b", transform="linear", weight=1.5, low=1.0, high=7.0),
    )
    recipe = Recipe(option="o", terms=terms, conversion_cost={}, default_cost=0.5)
    config = SimpleNamespace(
        options={"keep": None, "o": None}, recipes={"o": recipe}, assumptions={}
    )
    cells = Cells(ds, np.ones((1, n), dtype=bool))
    got = option_values(config, cells)
    assert sorted(cells._cache) == ["a", "b"]
    assert np.array_equal(got, per_term_values(config, cells))
    assert not got[0].any() and np.isfinite(got[1]).all()


def add_per_option(value, options, add, subtract):
    """The reference of :func:`add_to_options`: a numpy pass per option, as the rules added
    penalties and ladders to the option-major view before."""
    for o in options:
        if subtract:
            value[:, o] -= add
        else:
            value[:, o] += add


SPECIAL = np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4e38])


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 3000),
    n_options=st.integers(1, 16),
    subtract=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from(["cell-major", "option-major"]),
)
def test_adding_to_options_gives_the_bits_of_a_pass_per_option(
    n, n_options, subtract, seed, layout
):
    rng = np.random.default_rng(seed)

    def draw(shape):
        x = rng.normal(0, 10, shape).astype(np.float32)
        special = rng.random(shape) < 0.1
        x[special] = rng.choice(SPECIAL, int(special.sum()))
        return x

    value = draw((n, n_options))
    if layout == "option-major":
        value = np.ascontiguousarray(value.T).T  # (N, O) over an (O, N) array
    add = draw(n)
    options = rng.choice(n_options, rng.integers(0, n_options + 1), replace=False)
    want = value.copy()
    add_per_option(want, options, add, subtract)
    by_slices = value.copy()
    add_to_options(value, options.astype(np.int64), add, subtract)
    assert np.array_equal(value.view(np.uint32), want.view(np.uint32))
    # Slice by slice of cells (as the rules add, for paged values): the same bits.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(suitability, "_SLICE", int(rng.integers(1, n + 2)))
        add_to_values(by_slices, options.astype(np.int64), add, subtract)
    assert np.array_equal(by_slices.view(np.uint32), want.view(np.uint32))
