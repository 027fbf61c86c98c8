"""Hypothesis strategies for allocation problems that cover the shapes planners build.

Targets are derived from a random allocation that the rules allow, so every generated
problem with hard targets is feasible by construction. ``extremes=True`` also reaches the
edges: targets exactly at what the land can give, a zoning of thousands of zones (most of
them empty), and values and areas in any unit (see :func:`rescaled`).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import engine


@st.composite
def problems(draw, *, elastic=None, max_cells=60, tied=False, extremes=False):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(4, max_cells))
    n_claims = draw(st.integers(1, 3))
    n_options = draw(st.integers(2, n_claims + 2))
    n_provinces = draw(st.integers(1, 4))
    with_focus = draw(st.booleans())
    with_combination = draw(st.booleans()) and n_options >= 3 and n_claims >= 2
    forbid = draw(st.sampled_from([0.0, 0.2]))
    uniform_area = draw(st.booleans())
    is_elastic = draw(st.booleans()) if elastic is None else elastic
    bound_kind = draw(st.sampled_from(["lower", "upper", "both", "equal", "mixed"]))
    at_capacity = extremes and draw(st.booleans())
    many_zones = extremes and draw(st.booleans())

    # Spatially correlated values: a random walk along the cells plus noise.
    value = np.cumsum(rng.normal(size=(n, n_options)), axis=0) * 0.3
    value += rng.normal(size=(n, n_options))
    if tied:
        # Cells drawn from a few land-use classes whose options differ by the same amounts,
        # each cell shifted by its own constant: whole classes tie under the optimal prices.
        palette = rng.integers(0, 3, size=(draw(st.integers(1, 4)), n_options)) * 0.5
        value = palette[rng.integers(0, len(palette), n)] + rng.normal(size=(n, 1))

    contribution = np.zeros((n_options, n_claims))
    for o in range(1, n_options):
        contribution[o, (o - 1) % n_claims] = 1.0
    if with_combination:
        # e.g. water storage + nature: one hectare is a hectare of storage and half of nature.
        contribution[n_options - 1] = 0.0
        contribution[n_options - 1, 0] = 1.0
        contribution[n_options - 1, 1] = 0.5

    zones = [np.zeros(n, dtype=np.int64), rng.integers(0, n_provinces, n)]
    if with_focus:
        zones.append((rng.random(n) < 0.4).astype(np.int64))  # crosses provinces
    if many_zones:
        # Municipal or district targets: thousands of zones, most of them without land here.
        zones.append(rng.integers(0, draw(st.integers(1000, 5000)), n))
    zones = np.stack(zones)

    allowed = rng.random((n, n_options)) >= forbid
    allowed[:, 0] = True  # 'keep' is always allowed
    area = 1.0 if uniform_area else rng.uniform(0.5, 2.0, n)

    # A reference allocation the rules allow; targets are set around what it delivers.
    pick = np.array([rng.choice(np.flatnonzero(allowed[i])) for i in range(n)])
    capacity_row = None
    if at_capacity:
        # One (province, claim) gets all the land that may take the claim: its target is
        # exactly what that land gives, with nothing to spare.
        k = int(rng.integers(0, n_claims))
        z = int(zones[1][rng.integers(0, n)])
        gives = np.where(allowed, contribution[:, k][None, :], 0.0)
        in_zone = zones[1] == z
        pick[in_zone] = np.argmax(gives[in_zone], axis=1)
        capacity_row = (z, k)
    x0 = np.zeros((n, n_options))
    x0[np.arange(n), pick] = 1.0
    delivered = (x0 @ contribution) * np.broadcast_to(area, (n,))[:, None]

    lower, upper = [], []
    for level, zone in enumerate(zones):
        n_z = int(zone.max()) + 1
        got = np.zeros((n_z, n_claims))
        np.add.at(got, zone, delivered)
        lo = got * rng.uniform(0.5, 1.0, got.shape)
        hi = got * rng.uniform(1.0, 1.5, got.shape) + 0.5
        if bound_kind == "lower":
            hi[:] = np.nan
        elif bound_kind == "upper":
            lo[:] = np.nan
        elif bound_kind == "equal":
            lo = hi = got.copy()
        elif bound_kind == "mixed":
            drop = rng.random(got.shape)
            lo[drop < 0.3] = np.nan
            hi[drop > 0.6] = np.nan
        if many_zones and level == len(zones) - 1:
            empty = np.bincount(zone, minlength=n_z) == 0
            lo[empty] = np.nan
            hi[empty] = np.nan
        if is_elastic:
            # Some targets too large on purpose: elastic targets show their shortfall.
            lo = lo * rng.choice([1.0, 3.0], size=lo.shape)
            lo = np.where(np.isnan(hi), lo, np.fmin(lo, hi))
        if capacity_row is not None and level == 1:
            z, k = capacity_row
            lo[z, k] = got[z, k]
            hi[z, k] = max(hi[z, k], got[z, k]) if not np.isnan(hi[z, k]) else np.nan
        lower.append(lo)
        upper.append(np.array(hi, copy=True))
    penalty = rng.uniform(0.0, 4.0, n_claims) if is_elastic else None
    return engine.Problem(
        value=value,
        contribution=contribution,
        zones=zones,
        lower=lower,
        upper=upper,
        allowed=allowed,
        area=area,
        shortfall_penalty=penalty,
    )


def rescaled(problem: engine.Problem, value_factor: float, area_factor: float) -> engine.Problem:
    """The same problem with values (and penalties) in another unit and areas (and targets)
    in another: its optimum is ``value_factor * area_factor`` times the original's."""
    penalty = problem.shortfall_penalty
    return engine.Problem(
        value=problem.value.astype(np.float64) * value_factor,
        contribution=problem.contribution,
        zones=problem.zones,
        lower=[lo * area_factor for lo in problem.lower],
        upper=[hi * area_factor for hi in problem.upper],
        allowed=problem.allowed,
        area=problem.area * area_factor,
        shortfall_penalty=None if penalty is None else penalty * value_factor,
    )
