"""The repair LPs' bookkeeping by hash tables: a basis carried by name into the next round's
LP, and the columns' kinds, each the same as the sort-based lookup it replaced, for any
names (colliding ones, none at all, slack names beside class keys)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.solve import fast


def carried_by_sorting(old, status, new, missing):
    """The lookup as the solver did it before: a stable sort of the old names and a binary
    search of the new ones, so a colliding name takes its first holder's status."""
    if len(old) == 0:
        return np.full(len(new), missing, dtype=np.int8)
    order = np.argsort(old, kind="stable")
    at = np.minimum(np.searchsorted(old[order], new), len(old) - 1)
    found = old[order][at] == new
    return np.where(found, status[order][at], missing).astype(np.int8)


# Few distinct names, so that new names are often old ones and old ones often collide; and
# the extremes of uint64 (the slack names sit at 2**63 and above).
names = st.one_of(
    st.integers(0, 40),
    st.sampled_from([2**63, 2**63 + 1, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
)


@settings(max_examples=300, deadline=None)
@given(
    old=hnp.arrays(np.uint64, st.integers(0, 60), elements=names),
    new=hnp.arrays(np.uint64, st.integers(0, 60), elements=names),
    data=st.data(),
    missing=st.sampled_from([0, 1]),
)
def test_a_basis_is_carried_by_name_as_by_sorting(old, new, data, missing):
    status = data.draw(hnp.arrays(np.int8, len(old), elements=st.integers(0, 3)))
    carried = fast._carry(old, status, new, missing)
    assert carried.dtype == np.int8
    np.testing.assert_array_equal(carried, carried_by_sorting(old, status, new, missing))


def test_a_colliding_name_takes_its_first_holders_status():
    old = np.array([7, 3, 7, 3], dtype=np.uint64)
    status = np.array([2, 1, 0, 0], dtype=np.int8)
    new = np.array([3, 7, 9], dtype=np.uint64)
    np.testing.assert_array_equal(fast._carry(old, status, new, 1), [1, 2, 1])


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.int64, st.integers(0, 200), elements=st.integers(-(2**62), 2**62)))
def test_the_columns_kinds_are_numpys_unique(values):
    kinds, of_column = fast._unique(values)
    expected_kinds, expected_of_column = np.unique(values, return_inverse=True)
    np.testing.assert_array_equal(kinds, expected_kinds)
    np.testing.assert_array_equal(of_column, expected_of_column)
    assert kinds.dtype == np.int64 and of_column.dtype == expected_of_column.dtype
