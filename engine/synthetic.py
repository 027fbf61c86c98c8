"""Generated allocation problems that behave like real ones, for the demo, tests and benchmarks.

Values are smooth random fields plus a little noise (suitability layers are spatially
correlated, not white noise); provinces are the Voronoi cells of 12 seeds on the grid; a
focus area (like a NOVEX area) is a disc that crosses province borders. Everything is a
function of the seed.
"""

from __future__ import annotations

import numpy as np

from engine.problem import Problem


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, length: float) -> np.ndarray:
    """A Gaussian random field with correlation length ``length`` cells, scaled to N(0, 1)."""
    ny, nx = shape
    noise = rng.standard_normal(shape)
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    kernel = np.exp(-2.0 * (np.pi * length) ** 2 * (kx**2 + ky**2))
    field = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=shape)
    return (field - field.mean()) / (field.std() or 1.0)


def provinces(shape: tuple[int, int], rng: np.random.Generator, count: int = 12) -> np.ndarray:
    """Zone index of every cell: the nearest of ``count`` random seeds."""
    ny, nx = shape
    seeds = rng.random((count, 2)) * [ny, nx]
    yy, xx = np.mgrid[0:ny, 0:nx]
    best = np.zeros(shape, dtype=np.int16)
    best_d = np.full(shape, np.inf)
    for z, (sy, sx) in enumerate(seeds):
        d = (yy - sy) ** 2 + (xx - sx) ** 2
        closer = d < best_d
        best[closer] = z
        best_d[closer] = d[closer]
    return best


def allocation_problem(
    n_cells: int,
    n_options: int = 8,
    n_provinces: int = 12,
    *,
    seed: int = 0,
    focus_area: bool = True,
    combinations: bool = True,
    forbidden: float = 0.1,
    elastic: bool = False,
    dtype=np.float32,
    area: float = 6.25,
) -> Problem:
    """A national-style problem: option 0 is 'keep', options 1.. each serve one claim, and
    (with ``combinations``) the last option serves two claims (e.g. water storage + nature,
    delivering half a hectare of the second).

    Zonings: national (one zone), provinces (Voronoi), and a focus area that crosses
    provinces. Lower targets take 3-12 % of each province per claim, the national row an
    upper bound on one claim; all targets are feasible.
    """
    rng = np.random.default_rng(seed)
    nx = int(np.sqrt(n_cells * 0.85))
    ny = int(np.ceil(n_cells / nx))
    shape = (ny, nx)
    n_claims = max(1, n_options - (2 if combinations else 1))

    value = np.empty((ny * nx, n_options), dtype=dtype)
    for o in range(n_options):
        field = smooth_field(shape, rng, length=max(2.0, nx / 40))
        noise = rng.standard_normal(shape) * 0.15
        value[:, o] = (field + noise).ravel() * (0.3 if o == 0 else 1.0)
    value = value[:n_cells]

    contribution = np.zeros((n_options, n_claims))
    for o in range(1, n_options):
        contribution[o, (o - 1) % n_claims] = 1.0
    if combinations and n_options >= 4:
        contribution[n_options - 1, :] = 0.0
        contribution[n_options - 1, 0] = 1.0
        contribution[n_options - 1, 1 % n_claims] += 0.5

    province = provinces(shape, rng, n_provinces).ravel()[:n_cells]
    zones = [np.zeros(n_cells, dtype=np.int16), province]
    zoning_names = ["national", "province"]
    if focus_area:
        yy, xx = np.divmod(np.arange(n_cells), nx)
        cy, cx, radius = ny * 0.45, nx * 0.5, min(ny, nx) * 0.18
        zones.append(((yy - cy) ** 2 + (xx - cx) ** 2 < radius**2).astype(np.int16))
        zoning_names.append("focus")
    zones = np.stack(zones)

    allowed = None
    if forbidden > 0:
        rules = smooth_field(shape, rng, length=max(2.0, nx / 60)).ravel()[:n_cells]
        allowed = np.ones((n_cells, n_options), dtype=bool)
        cut = np.quantile(rules, forbidden)
        for o in range(1, n_options):
            allowed[:, o] = rules * (1 + 0.1 * o) > cut

    # Each province asks for 3-12 % of its land per claim, and no claim more than its share
    # of the land where it is allowed: the targets compete, but all fit.
    province_area = np.bincount(province, minlength=n_provinces) * area
    if allowed is None:
        best_share = np.broadcast_to(contribution.max(axis=0), (n_cells, n_claims))
    else:
        best_share = np.max(allowed[:, :, None] * contribution[None, :, :], axis=1)
    capacity = np.stack(
        [
            np.bincount(province, weights=best_share[:, k], minlength=n_provinces) * area
            for k in range(n_claims)
        ],
        axis=1,
    )
    share = rng.uniform(0.03, 0.12, size=(n_provinces, n_claims)) * (0.6 if combinations else 1)
    lower_prov = np.minimum(province_area[:, None] * share, capacity / (n_claims + 2))
    lower_prov[rng.random(lower_prov.shape) < 0.15] = np.nan
    upper_prov = np.full_like(lower_prov, np.nan)

    total = n_cells * area
    lower_nat = np.full((1, n_claims), np.nan)
    upper_nat = np.full((1, n_claims), np.nan)
    upper_nat[0, n_claims - 1] = max(0.05 * total, 1.2 * np.nansum(lower_prov[:, n_claims - 1]))
    lower_nat[0, n_claims - 1] = 0.01 * total
    lower = [lower_nat, lower_prov]
    upper = [upper_nat, upper_prov]
    if focus_area:
        focus_cells = int(np.sum(zones[2] == 1))
        lower.append(
            np.array([[np.nan] * n_claims, [0.1 * focus_cells * area] + [np.nan] * (n_claims - 1)])
        )
        upper.append(np.full((2, n_claims), np.nan))

    penalty = None
    if elastic:
        penalty = rng.uniform(0.5, 3.0, size=n_claims)
    return Problem(
        value=value,
        contribution=contribution,
        zones=zones,
        lower=lower,
        upper=upper,
        allowed=allowed,
        area=area,
        shortfall_penalty=penalty,
        option_names=["keep"] + [f"option {o}" for o in range(1, n_options)],
        claim_names=[f"claim {k}" for k in range(n_claims)],
        zoning_names=zoning_names,
    )


def with_local_targets(
    problem: Problem,
    n_zones: int,
    *,
    claims: tuple[int, ...] = (0, 1),
    single_cells: bool = False,
    seed: int = 0,
) -> Problem:
    """``problem`` with one more zoning of ``n_zones`` zones, each with a lower target per
    claim in ``claims``: municipal housing deals or district targets, the many target rows
    of issue 15.

    Zones are contiguous runs of cells (the cells in index order cut into ``n_zones``
    parts, like municipalities on a raster read row by row); with ``single_cells`` each zone
    is one random cell, the rest of the land outside every zone. A zone asks 2-6 % of what
    its land allowed for the claim could give, a single cell 20-100 % over its claims
    together (10-50 % each of two): the targets bind but
    leave room for the provinces' (every claim's targets below a ``1 / (claims + 2)`` share
    of its capacity leave an allocation that meets them all).
    """
    rng = np.random.default_rng(seed)
    n = problem.n_cells
    if single_cells:
        cells = rng.choice(n, size=n_zones, replace=False)
        zone = np.full(n, n_zones, dtype=np.int64)  # the last zone: land without a target
        zone[cells] = np.arange(n_zones)
        # Together the claims ask 20-100 % of the cell: a cell can split between them.
        share = rng.uniform(0.2, 1.0, size=(n_zones, len(claims))) / len(claims)
    else:
        zone = np.arange(n, dtype=np.int64) * n_zones // n
        share = rng.uniform(0.02, 0.06, size=(n_zones, len(claims)))
    allowed = (
        np.ones((n, problem.n_options), dtype=bool) if problem.allowed is None else problem.allowed
    )
    n_all = int(zone.max()) + 1
    lower = np.full((n_all, problem.n_claims), np.nan)
    area = problem.area_of()
    for j, k in enumerate(claims):
        best_share = np.max(allowed * problem.contribution[:, k][None, :], axis=1)
        capacity = np.bincount(zone, weights=best_share * area, minlength=n_all)[:n_zones]
        lower[:n_zones, k] = capacity * share[:, j]
    return Problem(
        value=problem.value,
        contribution=problem.contribution,
        zones=np.concatenate([problem.zones.astype(np.int64), zone[None, :]]),
        lower=[*problem.lower, lower],
        upper=[*problem.upper, np.full_like(lower, np.nan)],
        allowed=problem.allowed,
        area=problem.area,
        shortfall_penalty=problem.shortfall_penalty,
        option_names=problem.option_names,
        claim_names=problem.claim_names,
        zoning_names=[*problem.zoning_names, "local"],
    )
