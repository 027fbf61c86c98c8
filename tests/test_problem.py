"""Every bad input to engine.Problem gets a ValueError that names the argument and the index."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine


def arrays(n=6, o=3, k=2):
    value = np.arange(n * o, dtype=float).reshape(n, o) / 10
    contribution = np.zeros((o, k))
    contribution[1, 0] = contribution[2, 1] = 1.0
    zones = np.stack([np.zeros(n, int), np.arange(n) % 2])
    lower = [np.array([[1.0, np.nan]]), np.array([[1.0, np.nan], [np.nan, 1.0]])]
    upper = [np.array([[np.nan, 4.0]]), np.full((2, k), np.nan)]
    return dict(value=value, contribution=contribution, zones=zones, lower=lower, upper=upper)


def test_valid_problem_builds():
    p = engine.Problem(**arrays())
    assert (p.n_cells, p.n_options, p.n_claims, p.n_zonings) == (6, 3, 2, 2)
    assert len(p.rows) == 4
    assert p.groups.count == 2


def bad(**changes):
    kwargs = arrays()
    kwargs.update(changes)
    return kwargs


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (bad(value=np.ones(6)), r"value: expected a 2-D"),
        (bad(value=np.where(np.eye(6, 3) > 0, np.nan, 1.0)), r"value\[0, 0\] = nan.*allowed"),
        (bad(value=np.where(np.eye(6, 3) > 0, np.inf, 1.0)), r"value\[0, 0\] = inf"),
        (
            bad(contribution=np.ones((2, 2))),
            r"contribution: shape \(2, 2\), expected \(3, claims\)",
        ),
        (
            bad(contribution=np.array([[0, 0], [1, 0], [0, -1.0]])),
            r"contribution\[2, 1\] = -1.0.*non-negative",
        ),
        (bad(zones=np.zeros((2, 5), int)), r"zones: shape \(2, 5\), expected \(zonings, 6\)"),
        (
            bad(zones=np.stack([np.zeros(6, int), np.array([0, 1, 2, 0, 1, 0])])),
            r"zones\[1, 2\] = 2: out of range.*2 zones",
        ),
        (
            bad(zones=np.stack([np.zeros(6, int), np.array([0, -1, 0, 0, 1, 0])])),
            r"zones\[1, 1\] = -1.*start at 0",
        ),
        (bad(zones=np.zeros((2, 6))), r"zones: dtype float64, expected integers"),
        (
            bad(
                lower=[np.array([[5.0, np.nan]]), np.full((2, 2), np.nan)],
                upper=[np.array([[4.0, np.nan]]), np.full((2, 2), np.nan)],
            ),
            r"lower\[0\]\[0, 0\] = 5.0 > upper\[0\]\[0, 0\] = 4.0",
        ),
        (
            bad(lower=[np.array([[-1.0, np.nan]]), np.full((2, 2), np.nan)]),
            r"lower\[0\]\[0, 0\] = -1.0.*>= 0",
        ),
        (
            bad(lower=[np.array([[1.0, np.nan]])]),
            r"lower: expected one array per zoning \(2\), got 1",
        ),
        (
            bad(upper=[np.full((1, 2), np.nan), np.full((3, 2), np.nan)]),
            r"upper\[1\]: shape \(3, 2\), expected \(2, 2\)",
        ),
        (bad(allowed=np.ones((6, 2), bool)), r"allowed: shape \(6, 2\), expected \(6, 3\)"),
        (
            bad(allowed=np.vstack([np.ones((5, 3), bool), np.zeros((1, 3), bool)])),
            r"allowed\[5, :\] is all False",
        ),
        (bad(area=0.0), r"area = 0.0: cell area must be finite and > 0"),
        (bad(area=np.array([1, 1, -1, 1, 1, 1.0])), r"area\[2\] = -1.0"),
        (bad(area=np.ones(4)), r"area: shape \(4,\), expected a scalar or \(6,\)"),
        (bad(shortfall_penalty=np.ones(3)), r"shortfall_penalty: shape \(3,\), expected \(2,\)"),
        (bad(shortfall_penalty=np.array([1.0, -2.0])), r"shortfall_penalty\[1\] = -2.0"),
    ],
)
def test_bad_input_names_argument_and_index(kwargs, message):
    with pytest.raises(ValueError, match=message):
        engine.Problem(**kwargs)


def test_names_must_match_counts():
    with pytest.raises(ValueError, match=r"claim_names: 3 names for 2 claims"):
        engine.Problem(**arrays(), claim_names=["a", "b", "c"])


def test_solve_refuses_non_problem():
    with pytest.raises(TypeError, match="engine.Problem"):
        engine.solve({"value": 1})


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_zones_read_from_the_groups_are_the_zones_given(data):
    """The problem keeps a group per cell, not a zone per cell and zoning; what it gives back
    for any read is what the (L, N) array given would give, in its dtype."""
    n_cells = data.draw(st.integers(1, 300))
    n_zones = data.draw(st.lists(st.integers(1, 40), min_size=1, max_size=5))
    dtype = data.draw(st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint64]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    zones = np.stack([rng.integers(0, n, n_cells) for n in n_zones]).astype(dtype)
    lower = [np.full((n, 1), np.nan) for n in n_zones]
    problem = engine.Problem(np.zeros((n_cells, 2)), np.ones((2, 1)), zones, lower=lower)

    held = [a for a in vars(problem).values() if isinstance(a, np.ndarray)]
    assert not any(a.shape == zones.shape and a.dtype.kind in "iu" for a in held)  # no (L, N)
    given_zones = zones.astype(np.int64) if dtype == np.uint64 else zones
    assert problem.zones.dtype == given_zones.dtype
    assert problem.zones.shape == zones.shape and len(problem.zones) == len(n_zones)
    np.testing.assert_array_equal(np.asarray(problem.zones), given_zones)
    cells = rng.integers(0, n_cells, data.draw(st.integers(0, 20)))
    i = int(rng.integers(0, n_cells))
    for l in range(len(n_zones)):
        np.testing.assert_array_equal(problem.zones[l], given_zones[l])
        np.testing.assert_array_equal(problem.zones[l, cells], given_zones[l, cells])
        assert problem.zones[np.int64(l), i] == given_zones[l, i]
    np.testing.assert_array_equal(problem.zones[:, cells], given_zones[:, cells])
    np.testing.assert_array_equal(problem.zones.min(axis=1), given_zones.min(axis=1))

    # Another problem over the same cells takes the zones as they are: the same groups.
    other = engine.Problem(problem.value, problem.contribution, problem.zones, lower=lower)
    assert other.groups is problem.groups
    np.testing.assert_array_equal(np.asarray(other.zones), given_zones)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 60),
    n_options=st.integers(1, 5),
    cells_per_slice=st.integers(1, 70),
    special=st.sampled_from([None, np.nan, np.inf, -np.inf]),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_value_range_by_slices_is_numpys_max_and_min(
    n, n_options, cells_per_slice, special, seed
):
    """Slice by slice (the pages of paged values go after each): numpy's max and min of the
    whole array, NaN wherever one is."""
    from engine import problem as problem_module

    rng = np.random.default_rng(seed)
    value = rng.normal(0, 100, (n, n_options)).astype(np.float32)
    if special is not None:
        value[rng.integers(n), rng.integers(n_options)] = special
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(problem_module, "_RANGE_SLICE", cells_per_slice)
        got = problem_module._value_range(value)
    want = (float(value.max()), float(value.min()))
    assert np.array_equal(got, want, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(
    n=st.sampled_from([1, 7, 99_999, 200_001, 350_017]),
    n_options=st.integers(1, 3),
    cells_per_slice=st.sampled_from([1, 4096, 65_537, 1 << 21]),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_option_spread_by_slices_is_that_of_the_whole_sample(
    n, n_options, cells_per_slice, seed
):
    """The options' spread from a sample of every step-th cell, taken slice by slice (the
    pages of paged values go after each): the median of the whole sample's, to the bit."""
    from engine import problem as problem_module

    value = np.random.default_rng(seed).normal(0, 100, (n, n_options)).astype(np.float32)
    sample = value[:: max(1, n // 100_000)]
    spread = sample.max(axis=1).astype(np.float64) - sample.min(axis=1)
    spread = spread[spread > 0]
    want = float(np.median(spread)) if len(spread) else 7.0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(problem_module, "_RANGE_SLICE", cells_per_slice)
        assert np.array_equal(problem_module._sampled_rows(value), sample)
        assert problem_module._option_spread(value, 7.0) == want


@pytest.mark.parametrize("area", [6.25, np.float32(0.5)])
@pytest.mark.parametrize(
    "cells", [slice(None), slice(3, 10), np.array([5, 1, 7]), np.arange(40) % 3 == 0, 4]
)
def test_a_scalar_area_of_some_cells_is_theirs_in_its_type(area, cells):
    """Each given cell's hectares, as a new array of the area's type (cells by a slice, an
    index array, a mask or one index)."""
    from engine.synthetic import allocation_problem

    problem = allocation_problem(40, 3, seed=1)
    problem.area = area
    out = problem.area_of(cells)
    expected = np.asarray(area)[()] * np.ones(40, dtype=np.asarray(area).dtype)
    assert out.dtype == np.asarray(area).dtype and out.flags.writeable
    assert np.array_equal(out, expected[cells])
