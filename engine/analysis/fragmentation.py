"""Fragmentation of a plan: patches per option, nationally and per province.

A patch is a 4-connected set of cells of one option (cells that share a side; cells that
only touch at a corner are two patches), the same neighbourhood the boundary penalty of
:mod:`engine.solve.compact` counts. Per province a patch is cut at the province border. The
boundary is every cell side between the option and another cell of the plan, in km; sides
on the sea or outside the cells in scope are not counted (they are not a use's edge).
"""

from __future__ import annotations

import numpy as np

from engine.paging import release_pages
from engine.solve.compact import Geometry, positions_among
from engine.solve.compact_kernels import patch_labels

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
    choice = np.asarray(choice)
    for o in options:
        name = option_names[o]
        # Every figure is of the option's own cells: their neighbours alone are looked up,
        # not the whole grid's table (16 bytes a cell, the 25 m write stage's peak).
        cells = np.flatnonzero(choice == o)
        around = geometry.neighbours_of(cells)
        valid = around >= 0
        inside = positions_among(cells, around)
        edges = (valid & (inside < 0)).sum(axis=1) * geometry.cell_km
        patch = np.zeros(len(cells), dtype=np.int64)
        sizes = patch_labels(np.arange(len(cells)), np.ones(len(cells), bool), inside, patch)
        forced = sizes[patch] == 1
        if allowed is not None:
            single = np.flatnonzero(forced)
            nbr, has = around[single], valid[single]
            forced[single] = ~np.any(has & allowed[np.where(has, nbr, 0), o], axis=1)
            # A paged mask (engine.paging): each read maps the pages around it, most of the
            # mask over a national option's scattered single cells (0.8 GB at 25 m).
            release_pages(allowed)
        minimum = min_patch_ha.get(name)
        rows.append(_row(name, "national", patch, edges, forced, cell_ha, minimum))
        # Patches cut at zone borders: a (patch, zone) pair is one patch of the zone. A stable
        # sort by zone keeps each zone's cells in their order (the same sums to the last bit).
        zone_of = zone[cells]
        order = np.argsort(zone_of, kind="stable")
        bounds = np.searchsorted(zone_of[order], np.arange(n_zones + 1))
        key = (patch * n_zones + zone_of)[order]
        edges, forced = edges[order], forced[order]
        for z in range(n_zones):
            part = slice(bounds[z], bounds[z + 1])
            rows.append(
                _row(name, zone_names[z], key[part], edges[part], forced[part], cell_ha, minimum)
            )
    return rows


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
