"""Fragmentation of a plan: patches per option, nationally and per province.

A patch is a 4-connected set of cells of one option (cells that share a side; cells that
only touch at a corner are two patches), the same neighbourhood the boundary penalty of
:mod:`engine.solve.compact` counts. Per province a patch is cut at the province border. The
boundary is every cell side between the option and another cell of the plan, in km; sides
on the sea or outside the cells in scope are not counted (they are not a use's edge).
"""

from __future__ import annotations

import numpy as np

from engine.solve.compact import Geometry, neighbour_counts, patch_sizes

__all__ = ["fragmentation", "FIELDS"]

# The fields of a row, in the order tables show them.
FIELDS = (
    "option",
    "zone",
    "area_ha",
    "patches",
    "mean_patch_ha",
    "smallest_patch_ha",
    "largest_patch_ha",
    "single_cell_share",
    "single_cell_share_forced",
    "min_patch_ha",
    "below_min_share",
    "boundary_km",
)


def fragmentation(
    geometry: Geometry,
    choice: np.ndarray,
    *,
    option_names: list[str],
    options: list[int],
    zone: np.ndarray,
    zone_names: list[str],
    cell_ha: float,
    min_patch_ha: dict | None = None,
    allowed: np.ndarray | None = None,
) -> list[dict]:
    """Rows per option in ``options`` (national first, then each zone of ``zone``, e.g. the
    provinces) with the figures of :data:`FIELDS`. ``min_patch_ha``: option name -> the
    minimum patch size the share below it is measured against (absent: none).
    ``single_cell_share_forced``: the share in single cells none of whose neighbours the
    rules (``allowed``, (N, O)) let take the option: no plan can join them to a patch."""
    min_patch_ha = min_patch_ha or {}
    zone = np.asarray(zone, dtype=np.int64)
    n_zones = len(zone_names)
    rows = []
    for o in options:
        name = option_names[o]
        mask = np.asarray(choice) == o
        patch, sizes = patch_sizes(geometry, mask)
        forced = mask & (sizes[patch] == 1)
        if allowed is not None:
            forced &= ~np.any(_neighbour_values(geometry, allowed[:, o]), axis=1)
        edges = neighbour_counts(geometry, mask) * geometry.cell_km
        cells = np.flatnonzero(mask)
        minimum = min_patch_ha.get(name)
        rows.append(
            _row(name, "national", patch[cells], edges[cells], forced[cells], cell_ha, minimum)
        )
        # Patches cut at zone borders: a (patch, zone) pair is one patch of the zone.
        key = patch[cells].astype(np.int64) * n_zones + zone[cells]
        for z in range(n_zones):
            here = zone[cells] == z
            rows.append(
                _row(
                    name,
                    zone_names[z],
                    key[here],
                    edges[cells][here],
                    forced[cells][here],
                    cell_ha,
                    minimum,
                )
            )
    return rows


def _neighbour_values(geometry: Geometry, values: np.ndarray) -> np.ndarray:
    """(N, 4) ``values`` of each cell's 4-neighbours, False where there is none."""
    nbr = geometry.neighbours
    return (nbr >= 0) & values[np.where(nbr >= 0, nbr, 0)]


def _row(option, zone_name, patch_of_cell, edge_km, forced, cell_ha, minimum) -> dict:
    _, sizes = np.unique(patch_of_cell, return_counts=True)
    area = float(len(patch_of_cell) * cell_ha)
    patch_ha = sizes * cell_ha

    def share(part) -> float:
        return float(part) / area if area > 0 else 0.0

    return {
        "option": option,
        "zone": zone_name,
        "area_ha": area,
        "patches": int(len(sizes)),
        "mean_patch_ha": float(patch_ha.mean()) if len(sizes) else None,
        "smallest_patch_ha": float(patch_ha.min()) if len(sizes) else None,
        "largest_patch_ha": float(patch_ha.max()) if len(sizes) else None,
        "single_cell_share": share(np.sum(patch_ha[sizes == 1])),
        "single_cell_share_forced": share(np.count_nonzero(forced) * cell_ha),
        "min_patch_ha": minimum,
        "below_min_share": None if minimum is None else share(np.sum(patch_ha[patch_ha < minimum])),
        "boundary_km": float(np.sum(edge_km)),
    }
