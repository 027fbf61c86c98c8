"""Plausibility: the few figures a province checks a plan against before reading further.

Where the new homes go (inside towns or at their edges, near a station or not), how the
energy splits between wind and solar, how close wind comes to homes, and how much land each
option really takes. Per province and for the whole run, as a plain dict without NaN.

Claim figures (homes, TWh, housing hectares) weigh each cell by its fractions ``sol.x``, as
the target rows do, so they add up to the ``targets`` rows exactly; land taken counts each
cell once under its dominant option ``sol.choice``, as ``options`` and allocation.tif do.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["plausibility", "STATION_NEAR_M", "STATION_FAR_M"]

# Walking and cycling distance to a station: the bands planners use for station-area density.
STATION_NEAR_M = 1200.0
STATION_FAR_M = 3000.0

INFILL, EXTENSION, WIND = "housing_urban", "housing_edge", "wind"


def _column(x, j: int) -> np.ndarray:
    if sparse.issparse(x):
        return np.asarray(x[:, j].toarray(), dtype=np.float64).ravel()
    return np.asarray(x[:, j], dtype=np.float64)


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

    def by_zone(weights) -> np.ndarray:
        """Per province sums, the national total last."""
        s = np.bincount(zone, weights=np.asarray(weights, dtype=np.float64), minlength=n_zones + 1)[
            :n_zones
        ]
        return np.append(s, s.sum())

    def layer(name):
        return np.asarray(cells.layer(name), dtype=np.float64) if cells.has(name) else None

    def claim_units(claim: str, j: int) -> np.ndarray | None:
        """Per cell the claim's own unit (homes, TWh) option j delivers there."""
        if claim not in config.claims or j is None:
            return None
        k = config.claim_names.index(claim)
        per_ha = contribution[j, k] * config.claims[claim].per_ha
        return _column(sol.x, j) * area * per_ha

    zeros = np.zeros(p.n_cells)

    # -- housing
    homes_in = claim_units("housing", o_of.get(INFILL))
    homes_ext = claim_units("housing", o_of.get(EXTENSION))
    homes_in = zeros if homes_in is None else homes_in
    homes_ext = zeros if homes_ext is None else homes_ext
    ha_in = _column(sol.x, o_of[INFILL]) * area if INFILL in o_of else zeros
    ha_ext = _column(sol.x, o_of[EXTENSION]) * area if EXTENSION in o_of else zeros
    homes = homes_in + homes_ext
    station = layer("station_distance")
    town = layer("town_distance")
    near = far = ext_dist = None
    if station is not None:
        # NaN compares False: a cell without a distance counts as far from any station.
        near = by_zone(np.where(station <= STATION_NEAR_M, homes, 0.0))
        far = by_zone(np.where(station <= STATION_FAR_M, homes, 0.0))
    if town is not None:
        ok = np.isfinite(town)
        ext_dist = (by_zone(np.where(ok, town * ha_ext, 0.0)), by_zone(np.where(ok, ha_ext, 0.0)))
    s_homes_in, s_homes_ext, s_homes = by_zone(homes_in), by_zone(homes_ext), by_zone(homes)
    s_ha_in, s_ha_ext = by_zone(ha_in), by_zone(ha_ext)

    # -- energy (TWh from the energy claim's contributions, so it matches its target row)
    energy_claim = "renewable_energy"
    wind_j = o_of.get(WIND)
    solar_js = [j for j, o in enumerate(config.options.values()) if "solar" in o.tags]
    wind_twh = claim_units(energy_claim, wind_j)
    wind_twh = zeros if wind_twh is None else wind_twh
    solar_each = {options[j]: claim_units(energy_claim, j) for j in solar_js}
    solar_each = {k: (zeros if v is None else v) for k, v in solar_each.items()}
    s_wind = by_zone(wind_twh)
    s_solar = {k: by_zone(v) for k, v in solar_each.items()}
    s_solar_total = sum(s_solar.values()) if s_solar else by_zone(zeros)

    # -- wind against homes: any cell with some wind, however small its fraction
    built_dist = layer("built_up_distance")
    wind_cells = (
        (_column(sol.x, wind_j) > 1e-9) if wind_j is not None else np.zeros(p.n_cells, bool)
    )

    def wind_distance(mask) -> dict:
        d = built_dist[mask] if built_dist is not None else np.array([])
        d = d[np.isfinite(d)]
        return {
            "cells": int(mask.sum()),
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
    cover = cells.layer("land_cover") if cells.has("land_cover") else None
    built = None
    if cover is not None and "built_up" in cells.names("land_cover"):
        is_built = np.asarray(cover) == cells.names("land_cover").index("built_up")
        changed = choice != keep if keep is not None else np.ones(p.n_cells, bool)
        built = (by_zone(is_built) * area, by_zone(is_built & changed) * area)

    def entry(z: int, mask) -> dict:
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
            "wind_distance_to_built_up": wind_distance(mask),
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
        "national": entry(n_zones, wind_cells),
        "provinces": [
            {"zone": name, **entry(z, wind_cells & (zone == z))} for z, name in enumerate(names)
        ],
    }
