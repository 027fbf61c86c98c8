"""Analysis against brute force on small problems: conflict, regret, prices, rule costs and
exchanges (each checked by an independent re-solve)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.analysis import (
    addability,
    apply_exchange,
    cell_conflict,
    cell_prices,
    contested_pairs,
    exchange_suggestions,
    regret,
    rule_costs,
    shadow_price_table,
)
from engine.analysis.rule_costs import relaxed_problem
from engine.synthetic import allocation_problem
from tests.analysis_reference import numpy_price_bound
from tests.problems import problems


def _solve(p):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return engine.solve(p, method="highs")


@pytest.fixture(scope="module", params=[1, 2])
def solved(request):
    p = allocation_problem(300, 5, 3, seed=request.param)
    return p, _solve(p)


def _brute_adjusted(p, sol):
    """u[i,o] = v[i,o] + sum_k c[o,k] sum_l price_l(zone_l(i), k), -inf where not allowed."""
    u = p.value.astype(np.float64).copy()
    for i in range(p.n_cells):
        for k in range(p.n_claims):
            price = sum(sol.prices[l][p.zones[l, i], k] for l in range(p.n_zonings))
            u[i] += p.contribution[:, k] * price
    if p.allowed is not None:
        u[~p.allowed] = -np.inf
    return u


def test_conflict_agrees_with_brute_force(solved):
    p, sol = solved
    threshold = 0.1
    c = cell_conflict(p, sol, threshold)
    u = _brute_adjusted(p, sol)
    serves = p.contribution > 0
    for i in range(p.n_cells):
        order = np.argsort(-u[i], kind="stable")
        best = u[i, order[0]]
        assert u[i, c.best[i]] == pytest.approx(best, abs=1e-9)
        finite = np.isfinite(u[i])
        if finite.sum() > 1:
            assert c.margin[i] == pytest.approx(best - u[i, order[1]], abs=1e-9)
            assert u[i, c.second[i]] == pytest.approx(u[i, order[1]], abs=1e-9)
        else:
            assert c.second[i] == -1 and np.isinf(c.margin[i])
        close = u[i] >= best - threshold
        assert c.n_options[i] == close.sum()
        claims = serves[close].any(axis=0)
        assert c.n_claims[i] == claims.sum()
        expected_class = (
            1 if close.sum() == 1 else (2 if claims.sum() <= 1 else min(4, 1 + claims.sum()))
        )
        assert c.klass[i] == expected_class
    # The optimum takes the best option wherever the best is strict.
    strict = c.margin > 1e-6
    assert np.array_equal(np.asarray(sol.choice)[strict], c.best[strict])


def test_contested_pairs_add_up_to_the_cells_where_both_compete(solved):
    p, sol = solved
    c = cell_conflict(p, sol, 0.2)
    pairs = contested_pairs(p, c)
    u = _brute_adjusted(p, sol)
    close = u >= u.max(axis=1, keepdims=True) - 0.2
    claims = (close[:, :, None] & (p.contribution > 0)[None]).any(axis=1)  # (N, K)
    claims &= (close.sum(axis=1) >= 2)[:, None]
    l = p.zoning_names.index("province")
    for r in pairs:
        z = p.zone_names[l].index(r["zone"])
        a, b = p.claim_names.index(r["claim_a"]), p.claim_names.index(r["claim_b"])
        both = claims[:, a] & claims[:, b] & (p.zones[l] == z)
        assert r["contested_ha"] == pytest.approx(both.sum() * p.area)


def test_regret_and_cell_prices_agree_with_brute_force(solved):
    p, sol = solved
    x = np.asarray(sol.x.todense()) if hasattr(sol.x, "todense") else np.asarray(sol.x)
    v = np.where(p.allowed, p.value, -np.inf) if p.allowed is not None else p.value
    expected = v.max(axis=1) - (x * p.value).sum(axis=1)
    assert np.allclose(regret(p, sol), np.maximum(expected, 0), atol=1e-6)
    assert (regret(p, sol) >= 0).all()
    prices = cell_prices(p, sol)
    for i in range(0, p.n_cells, 7):
        for k in range(p.n_claims):
            want = sum(sol.prices[l][p.zones[l, i], k] for l in range(p.n_zonings))
            assert prices[i, k] == pytest.approx(want, abs=1e-5)
    table = shadow_price_table(p, sol)
    assert len(table) == len(p.rows)
    assert {r["binds"] for r in table} <= {"lower", "upper", None}


def test_a_rules_cost_is_the_objective_difference_of_a_re_solve(solved):
    p, sol = solved
    rng = np.random.default_rng(0)
    forbidden = ~p.allowed
    relaxations = {}
    for o in range(1, p.n_options):
        a = p.allowed.copy()
        a[:, o] = True  # lift everything that bars option o
        relaxations[f"lift option {o}"] = a
    a = p.allowed.copy()
    cells = np.flatnonzero(forbidden.any(axis=1))
    a[rng.choice(cells, size=len(cells) // 3, replace=False)] = True
    relaxations["lift a third"] = a
    costs = rule_costs(p, sol, relaxations, method="highs", workers=2)
    assert {c["rule"] for c in costs} == set(relaxations)
    for c in costs:
        other = _solve(relaxed_problem(p, relaxations[c["rule"]]))
        assert c["gain"] == pytest.approx(other.objective - sol.objective, abs=1e-6, rel=1e-7)
        assert c["bound_gain"] >= c["gain"] - 1e-6
        assert (c["gain"] > 1e-6) <= bool(c["binds"])


def test_a_rule_that_binds_nothing_costs_nothing_by_prices_alone(solved):
    p, sol = solved
    u = _brute_adjusted(p, sol)
    # Free only pairs whose adjusted value is clearly below the cell's best: never worth taking.
    a = p.allowed.copy()
    raw = np.where(p.allowed, u, _brute_adjusted_unmasked(p, sol))
    best = u.max(axis=1, keepdims=True)
    a |= raw < best - 0.5
    costs = rule_costs(p, sol, {"harmless": a}, method="highs")
    assert costs[0]["method"] == "prices" and costs[0]["gain"] == 0.0
    assert _solve(relaxed_problem(p, a)).objective == pytest.approx(sol.objective, abs=1e-6)


def _brute_adjusted_unmasked(p, sol):
    q = relaxed_problem(p, np.ones_like(p.allowed))
    return _brute_adjusted(q, sol)


def test_an_exchange_applied_raises_the_objective_by_the_reported_gain():
    p = allocation_problem(600, 5, 4, seed=3)
    sol = _solve(p)
    ex = exchange_suggestions(p, sol, method="highs", max_suggestions=3)
    assert ex, "the generated problem has provinces with different prices"
    for e in ex:
        assert e["price_from"] > e["price_to"] and e["hectares"] > 0 and e["gain"] > 0
        moved = apply_exchange(p, e)
        l, k = e["zoning_index"], e["claim_index"]
        # The national total of the claim's targets is unchanged.
        assert np.nansum(moved.lower[l][:, k]) == pytest.approx(np.nansum(p.lower[l][:, k]))
        after = _solve(moved)
        assert after.objective - sol.objective == pytest.approx(e["gain"], rel=1e-7, abs=1e-6)
        # Moving the target narrows the price difference (it never widens it).
        assert e["price_from_after"] - e["price_to_after"] <= e["price_from"] - e["price_to"] + 1e-9


def test_addability_sums_provinces_against_the_national_target():
    report = {"targets": [
        {"zoning": "national", "zone": "NL", "claim": "housing", "lower_ha": 100.0,
         "upper_ha": None, "lower": 900_000.0, "upper": None, "unit": "homes"},
        *[{"zoning": "province", "zone": z, "claim": "housing", "lower_ha": lo / 9000,
           "allocated_ha": lo / 9000, "shortfall_ha": 0.0, "lower": lo, "allocated": lo,
           "shortfall": 0.0, "unit": "homes", "shadow_price": 0.0}
          for z, lo in [("A", 500_000.0), ("B", 417_193.0)]],
    ]}  # fmt: skip
    (entry,) = addability(report)
    assert entry["sum"]["target"] == pytest.approx(917_193)
    assert entry["sum_vs_national"]["targets_minus_national"] == pytest.approx(17_193)
    assert entry["sum_vs_national"]["provinces_bid_enough"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    problems(max_cells=300, extremes=True),
    st.integers(0, 2**32 - 1),
    st.sampled_from([1e-6, 1.0, 1e6]),
    st.sampled_from([np.float32, np.float64]),
    st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    st.sampled_from([0.0, 0.3]),
)
def test_a_rules_price_bound_is_its_definition_cell_by_cell(
    problem, seed, unit, dtype, lifted, forbidden
):
    """The bound's kernels against the definition (a cell's best newly allowed option over
    its best now, times its area; per claim among the options that deliver it) and against
    the numpy form bit for bit, in any unit, for relaxations that lift and forbid pairs."""
    from engine.analysis.rule_costs import _price_bound, _Relaxation
    from engine.problem import Problem
    from engine.solve.dual import dual_structure

    rng = np.random.default_rng(seed)
    p = Problem(
        (problem.value * unit).astype(dtype), problem.contribution, problem.zones,
        problem.lower, problem.upper, problem.allowed, problem.area,
    )  # fmt: skip
    structure = dual_structure(p)
    prices = rng.normal(scale=2 * unit, size=len(p.rows)) * rng.integers(0, 2, len(p.rows))
    adj = structure.adjustment(prices)
    base = p.allowed
    u = p.value.astype(np.float64) + adj[structure.group]
    best_u = np.where(base, u, -np.inf).max(axis=1)
    rows = (base | (rng.random(base.shape) < lifted)) & ~(rng.random(base.shape) < forbidden)
    relaxation = _Relaxation.of(rows, base)
    got = _price_bound(p, base, relaxation, structure, adj, best_u)

    expected = numpy_price_bound(p, base, relaxation, structure, adj, best_u)
    assert got[0] == expected[0] and got[2] == expected[2]
    assert np.array_equal(got[1], expected[1])

    new = rows & ~base
    area = p.area_of()
    total, per_claim = 0.0, np.zeros(p.n_claims)
    for i in np.flatnonzero(new.any(axis=1)):
        total += area[i] * max(0.0, u[i, new[i]].max() - best_u[i])
        for k in range(p.n_claims):
            serving = new[i] & (p.contribution[:, k] > 0)
            if serving.any():
                per_claim[k] += area[i] * max(0.0, u[i, serving].max() - best_u[i])
    scale = float(np.sum(area * np.abs(u).max(axis=1, where=base, initial=0.0)))
    assert got[0] == pytest.approx(total, rel=1e-12, abs=1e-12 * scale)
    assert got[1] == pytest.approx(per_claim, rel=1e-12, abs=1e-12 * scale)
    assert got[2] == int(new.sum())
