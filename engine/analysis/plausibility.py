"""Plausibility: the few figures a province checks a plan against before reading further.

Where the new homes go (inside towns or at their edges, near a station or not), how the
energy splits between wind and solar, how close wind comes to homes, and how much land each
option really takes. Per province and for the whole run, as a plain dict without NaN.

Claim figures (homes, TWh, housing hectares) weigh each cell by its fractions ``sol.x``, as
the target rows do, so they add up to the ``targets`` rows exactly; land taken counts each
cell once under its dominant option ``sol.choice``, as ``options`` and allocation.tif do.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse

from engine.grid import read_once

logger = logging.getLogger(__name__)

__all__ = ["plausibility", "STATION_NEAR_M", "STATION_FAR_M"]

# Walking and cycling distance to a station: the bands planners use for station-area density.
STATION_NEAR_M = 1200.0
STATION_FAR_M = 3000.0

INFILL, EXTENSION, WIND = "housing_urban", "housing_edge", "wind"


def _entries(x, j: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The cells option ``j`` has a share in, and those shares (float64), in cell order.

    Only these cells: a sum over them is the sum over every cell (the others add exact
    zeros) without a dense column per option, which at 25 m is 450 MB each."""
    if j is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if sparse.issparse(x):
        x = x.tocsr()
        at = np.flatnonzero(x.indices == j)
        cells = np.searchsorted(x.indptr, at, side="right") - 1
        shares = np.asarray(x.data[at], dtype=np.float64)
        keep = shares != 0
        return cells[keep], shares[keep]
    column = np.asarray(x[:, j], dtype=np.float64)
    cells = np.flatnonzero(column)
    return cells, column[cells]


def _layer_at(cells, name: str, at: np.ndarray | None = None) -> np.ndarray | None:
    """The layer ``name`` at the cells ``at`` (increasing; None: every cell), None if the grid
    has no such layer. Read a band of grid rows at a time (the layer's chunks, when it has
    them) and not kept: the whole grid box of a layer at once is 2.5 times the cells (a
    float32 layer 670 MB at 25 m, three of them here), and what ``Cells.layer`` keeps stays
    until the run ends."""
    if not cells.has(name):
        return None
    da = cells.ds[name]
    flat = cells.flat if at is None else cells.flat[at]
    ny, nx = cells.shape
    heights = da.chunks[0] if da.chunks else (ny,)
    row_starts = np.concatenate([[0], np.cumsum(heights)])
    bounds = np.searchsorted(flat, row_starts * nx)
    out = np.empty(len(flat), dtype=da.dtype)
    with read_once():
        for r0, r1, lo, hi in zip(row_starts[:-1], row_starts[1:], bounds[:-1], bounds[1:]):
            if hi > lo:
                band = np.asarray(da[int(r0) : int(r1)].values).ravel()
                out[lo:hi] = band[flat[lo:hi] - r0 * nx]
    logger.debug("layer %s read at %d cells in %d bands", name, len(flat), len(heights))
    return out


def _num(v):
    if v is None:
        return None
    v = float(v)
    return v if np.isfinite(v) else None


def _share(part: float, whole: float):
    return _num(part / whole) if whole > 0 else None


def plausibility(compiled, sol) -> dict:
    p, config, cells = compiled.problem, compiled.config, compiled.cells
    area = float(compiled.area_ha)
    options = list(config.options)
    o_of = {name: j for j, name in enumerate(options)}
    contribution = config.contribution_matrix()
    choice = np.asarray(sol.choice)

    # Province zones from the problem itself, so a province run and a national run agree.
    if "province" in p.zoning_names:
        l = p.zoning_names.index("province")
        zone, names = np.asarray(p.zones[l]), list(p.zone_names[l])
    else:
        zone, names = np.zeros(p.n_cells, dtype=np.int64), [config.scope]
    zone = np.where(zone >= 0, zone, len(names))  # cells outside every province: dropped
    n_zones = len(names)

    def by_zone(at, weights) -> np.ndarray:
        """Per province sums of ``weights`` over the cells ``at``, the national total last."""
        w = np.asarray(weights, dtype=np.float64)
        s = np.bincount(zone[at], weights=w, minlength=n_zones + 1)[:n_zones]
        return np.append(s, s.sum())

    def layer(name, at):
        values = _layer_at(cells, name, at)
        return None if values is None else np.asarray(values, dtype=np.float64)

    def claim_units(claim: str, j: int | None, shares: np.ndarray) -> np.ndarray:
        """The claim's own unit (homes, TWh) option j delivers in each of its cells."""
        if claim not in config.claims or j is None:
            return np.zeros(len(shares))
        k = config.claim_names.index(claim)
        per_ha = contribution[j, k] * config.claims[claim].per_ha
        return shares * area * per_ha

    # -- housing
    in_cells, in_shares = _entries(sol.x, o_of.get(INFILL))
    ext_cells, ext_shares = _entries(sol.x, o_of.get(EXTENSION))
    homes_in = claim_units("housing", o_of.get(INFILL), in_shares)
    homes_ext = claim_units("housing", o_of.get(EXTENSION), ext_shares)
    ha_in, ha_ext = in_shares * area, ext_shares * area
    home_cells = np.union1d(in_cells, ext_cells)
    homes = np.zeros(len(home_cells))
    homes[np.searchsorted(home_cells, in_cells)] += homes_in
    homes[np.searchsorted(home_cells, ext_cells)] += homes_ext
    station = layer("station_distance", home_cells)
    town = layer("town_distance", ext_cells)
    near = far = ext_dist = None
    if station is not None:
        # NaN compares False: a cell without a distance counts as far from any station.
        near = by_zone(home_cells, np.where(station <= STATION_NEAR_M, homes, 0.0))
        far = by_zone(home_cells, np.where(station <= STATION_FAR_M, homes, 0.0))
    if town is not None:
        ok = np.isfinite(town)
        ext_dist = (
            by_zone(ext_cells, np.where(ok, town * ha_ext, 0.0)),
            by_zone(ext_cells, np.where(ok, ha_ext, 0.0)),
        )
    s_homes_in, s_homes_ext = by_zone(in_cells, homes_in), by_zone(ext_cells, homes_ext)
    s_homes = by_zone(home_cells, homes)
    s_ha_in, s_ha_ext = by_zone(in_cells, ha_in), by_zone(ext_cells, ha_ext)

    # -- energy (TWh from the energy claim's contributions, so it matches its target row)
    energy_claim = "renewable_energy"
    wind_j = o_of.get(WIND)
    solar_js = [j for j, o in enumerate(config.options.values()) if "solar" in o.tags]
    wind_cells, wind_shares = _entries(sol.x, wind_j)
    s_wind = by_zone(wind_cells, claim_units(energy_claim, wind_j, wind_shares))
    s_solar = {}
    for j in solar_js:
        solar_cells, solar_shares = _entries(sol.x, j)
        s_solar[options[j]] = by_zone(solar_cells, claim_units(energy_claim, j, solar_shares))
    s_solar_total = sum(s_solar.values()) if s_solar else np.zeros(n_zones + 1)

    # -- wind against homes: any cell with some wind, however small its fraction
    windy = wind_cells[wind_shares > 1e-9]
    # Read once at every windy cell; each province takes its part.
    windy_distance = layer("built_up_distance", windy)

    def wind_distance(part: np.ndarray) -> dict:
        d = windy_distance[part] if windy_distance is not None else np.array([])
        d = d[np.isfinite(d)]
        return {
            "cells": int(part.sum()),
            "min_m": _num(d.min()) if d.size else None,
            "p5_m": _num(np.percentile(d, 5)) if d.size else None,
        }

    # -- land taken, in real hectares under the dominant option
    # Cells per (province, option) in one count, not one pass over the cells per option:
    # whole numbers of cells, so the same sums as by_zone of each option's mask.
    n_opt = len(options)
    count = np.bincount(zone * n_opt + choice, minlength=(n_zones + 1) * n_opt)
    count = count.reshape(n_zones + 1, n_opt)[:n_zones].T.astype(np.float64)
    taken = np.hstack([count, count.sum(axis=1, keepdims=True)]) * area
    keep = o_of.get("keep")
    built = None
    if cells.has("land_cover") and "built_up" in cells.names("land_cover"):
        is_built = _layer_at(cells, "land_cover") == cells.names("land_cover").index("built_up")
        transformed = is_built & (choice != keep) if keep is not None else is_built
        built = tuple(
            by_zone(at, np.ones(len(at))) * area
            for at in (np.flatnonzero(is_built), np.flatnonzero(transformed))
        )

    def entry(z: int, windy_here: np.ndarray) -> dict:
        ext_mean = None
        if ext_dist is not None and ext_dist[1][z] > 0:
            ext_mean = _num(ext_dist[0][z] / ext_dist[1][z])
        return {
            "housing": {
                "infill_ha": float(s_ha_in[z]),
                "extension_ha": float(s_ha_ext[z]),
                "infill_homes": float(s_homes_in[z]),
                "extension_homes": float(s_homes_ext[z]),
                "homes": float(s_homes[z]),
                "infill_share_of_homes": _share(s_homes_in[z], s_homes[z]),
                "share_homes_within_1200m_of_station": None
                if near is None
                else _share(near[z], s_homes[z]),
                "share_homes_within_3000m_of_station": None
                if far is None
                else _share(far[z], s_homes[z]),
                "extension_mean_distance_to_town_m": ext_mean,
            },
            "energy": {
                "wind_twh": float(s_wind[z]),
                "solar_twh": float(s_solar_total[z]),
                "solar_by_option_twh": {k: float(v[z]) for k, v in s_solar.items()},
                "total_twh": float(s_wind[z] + s_solar_total[z]),
            },
            "wind_distance_to_built_up": wind_distance(windy_here),
            "land": {
                "area_ha_by_option": {options[j]: float(taken[j, z]) for j in range(len(options))},
                "taken_ha": float(sum(taken[j, z] for j in range(len(options)) if j != keep)),
                "built_up_ha": None if built is None else float(built[0][z]),
                "built_up_transformed_ha": None if built is None else float(built[1][z]),
                "built_up_transformed_share": None
                if built is None
                else _share(built[1][z], built[0][z]),
            },
        }

    return {
        "about": (
            "Claim figures (homes, TWh, housing ha) weigh cells by their option fractions "
            "and add up to the target rows; land by option counts each cell under its "
            "dominant option, as allocation.tif. Distances in metres: station_distance, "
            "town_distance, built_up_distance layers."
        ),
        "station_bands_m": [STATION_NEAR_M, STATION_FAR_M],
        "national": entry(n_zones, np.ones(len(windy), dtype=bool)),
        "provinces": [{"zone": name, **entry(z, zone[windy] == z)} for z, name in enumerate(names)],
    }
