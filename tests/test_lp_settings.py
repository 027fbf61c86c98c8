"""solve_lp's warm starts and pricing: the same optimum as HiGHS on the whole LP from any
start, and the fast solver asks for devex only where it starts from the aggregated optimum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import optimize, sparse

import engine
from engine.run import prepare
from engine.solve import fast, lp

ROOT = Path(__file__).resolve().parents[1]


def random_lp(seed: int, n_rows: int, n_cols: int):
    """A bounded LP with ranged rows around a point inside the column box, so it is feasible."""
    rng = np.random.default_rng(seed)
    matrix = sparse.random(n_rows, n_cols, density=0.3, random_state=rng, format="csc")
    matrix.data = np.round(matrix.data * 8 - 4)  # ties and zero-cost degeneracy, as the repair
    upper = rng.integers(1, 4, n_cols).astype(float)
    inside = matrix @ (upper * rng.random(n_cols))
    slack = rng.random(n_rows) * 2
    cost = np.round(rng.normal(size=n_cols), 1)
    return cost, matrix, inside - slack, inside + slack, np.zeros(n_cols), upper


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_rows=st.integers(1, 30),
    n_cols=st.integers(1, 60),
    devex=st.booleans(),
    start=st.sampled_from(["none", "other cost", "scrambled"]),
)
def test_same_optimum_as_highs_from_any_start(seed, n_rows, n_cols, devex, start):
    cost, matrix, row_lo, row_hi, col_lo, col_hi = random_lp(seed, n_rows, n_cols)
    rng = np.random.default_rng(seed + 1)
    basis = None
    if start == "other cost":
        ended = lp.solve_lp(rng.normal(size=n_cols), matrix, row_lo, row_hi, col_lo, col_hi)
        basis = (ended.col_status, ended.row_status)
    elif start == "scrambled":
        # No basis at all (any number of basic columns): HiGHS must complete it.
        basis = (rng.integers(0, 3, n_cols).astype(np.int8), rng.integers(0, 3, n_rows))
    result = lp.solve_lp(cost, matrix, row_lo, row_hi, col_lo, col_hi, basis=basis, devex=devex)
    dense = matrix.toarray()
    reference = optimize.linprog(
        cost,
        A_ub=np.vstack([dense, -dense]),
        b_ub=np.concatenate([row_hi, -row_lo]),
        bounds=list(zip(col_lo, col_hi)),
        method="highs",
    )
    assert result.status == "optimal" and reference.status == 0
    assert abs(result.objective - reference.fun) <= 1e-9 * max(1.0, abs(reference.fun))
    assert np.all(matrix @ result.x >= row_lo - 1e-9)
    assert np.all(matrix @ result.x <= row_hi + 1e-9)
    # The statuses that come back start the same LP where it ended.
    again = lp.solve_lp(
        cost, matrix, row_lo, row_hi, col_lo, col_hi, basis=(result.col_status, result.row_status)
    )
    assert np.array_equal(again.col_status, result.col_status)
    assert np.array_equal(again.row_status, result.row_status)
    np.testing.assert_allclose(again.x, result.x, rtol=1e-12, atol=1e-12)


def test_devex_only_from_the_aggregated_optimum(monkeypatch):
    calls = []

    def record(*args, **kwargs):
        calls.append((kwargs.get("basis") is not None, kwargs.get("devex", False)))
        return lp.solve_lp(*args, **kwargs)

    monkeypatch.setattr(fast, "solve_lp", record)
    # At 1000 m the national config's smoothed prices do not converge: the aggregated LP
    # gives them and starts the first repair LP.
    problem = prepare(ROOT / "configs" / "national.toml", resolution=1000)[0].problem
    solution = engine.solve(problem, method="fast")
    assert solution.status == "optimal" and solution.timings["prices_aggregated"]
    warm = [devex for started, devex in calls if started]
    assert warm, "no repair LP started from a basis"
    # The first warm start is the aggregated optimum's; the later ones the last repair LP's.
    assert warm == [True] + [False] * (len(warm) - 1)
    assert not any(devex for started, devex in calls if not started)
