"""Derivations of protected nature for the Netherlands demo grid: the real Natura 2000 sites
on land, and a nature network (NNN) grown around them from the land cover.

No public copy of the NNN outlines could be had; the network here follows how it is made up:
the Natura 2000 sites, the existing nature near them, and farmland still to be turned into
nature where it fills the gaps and bays between those.
The network is worked out once over the whole context extent (gaps are not local to a tile),
on the build's own grid or a coarser one, and read per tile at the cell holding each cell
centre.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from scipy import ndimage

from engine.errors import RuimtepuzzelError
from engine.grid.definition import LayerSpec
from engine.grid.demo import LAND_COVER, GridField, context_layers, params_key, vector_table
from engine.grid.layers import derivation
from engine.grid.sources import burn_shapes
from engine.grid.tiles import Context, Tile


@derivation("polygons_on_land")
def polygons_on_land(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """1 on land cells whose centre lies in one of the polygons of ``polygons_file``."""
    path = spec.params["polygons_file"]
    table = vector_table(tile.ctx, path)
    tree = tile.ctx.once(("vector-tree", str(path)), lambda: shapely.STRtree(table.geometries))
    tile.ctx.layer_attrs.setdefault(spec.name, {}).update(features=len(table))
    inside = burn_shapes(tile, table.geometries, tree=tree)
    return (inside == 1) & (tile["land"] == 1)


# --------------------------------------------------------------------------- nature network


def _class_codes(names: list[str]) -> list[int]:
    unknown = sorted(set(names) - set(LAND_COVER))
    if unknown:
        raise RuimtepuzzelError(f"land-cover classes {unknown} do not exist; they are {LAND_COVER}")
    return [LAND_COVER.index(n) for n in names]


def _dilate(mask: np.ndarray, radius_m: float, res: float) -> np.ndarray:
    """Cells within ``radius_m`` of the mask (Euclidean, cell centre to cell centre)."""
    if not mask.any():
        return mask.copy()
    return ndimage.distance_transform_edt(~mask, sampling=res) <= radius_m


def _network(ctx: Context, spec: LayerSpec) -> GridField:
    """On the field grid: ``near`` (within ``near_distance`` m of a core site: existing
    nature there belongs to the network) and ``closed`` (the network's morphological closing
    by ``gap_radius`` m: farmland there lies in a gap or bay of the network)."""
    p = spec.params
    cover_layer, core_layer = p.get("land_cover_layer", "land_cover"), p["core_layer"]
    finest = max(ctx.geometry.res, float(p.get("finest_resolution", 0)))
    field = context_layers(ctx, ["land", cover_layer, core_layer], finest)
    res = field.geometry.res
    land, cover = field.values.pop("land") == 1, field.values.pop(cover_layer)
    core = (field.values.pop(core_layer) == 1) & land
    near = _dilate(core, float(p["near_distance"]), res)
    existing = core | (np.isin(cover, _class_codes(p["nature_classes"])) & near & land)
    radius = float(p["gap_radius"])
    closed = ~_dilate(~_dilate(existing, radius, res), radius, res)
    field.values.update(near=near, closed=closed)
    return field


def _network_field(tile: Tile, spec: LayerSpec) -> tuple[GridField, dict[str, Any]]:
    """The network's field and the params of the layer that owns it."""
    owner = tile.ctx.definition.layers[spec.params.get("network_layer", spec.name)]
    key = ("nature-network", owner.name, params_key(owner.params))
    return tile.ctx.once(key, lambda: _network(tile.ctx, owner)), owner.params


def _planned(tile: Tile, field: GridField, p: dict[str, Any]) -> np.ndarray:
    farmland = np.isin(
        tile[p.get("land_cover_layer", "land_cover")],
        _class_codes(p.get("planned_classes", ["agriculture"])),
    )
    return farmland & field.take("closed", tile) & (tile[p["core_layer"]] == 0)


@derivation("nature_network")
def nature_network(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """The whole network on land: the core sites, the existing nature near them and the
    part still to be realised."""
    field, p = _network_field(tile, spec)
    nature = np.isin(
        tile[p.get("land_cover_layer", "land_cover")], _class_codes(p["nature_classes"])
    )
    out = (tile[p["core_layer"]] == 1) | (nature & field.take("near", tile))
    return (out | _planned(tile, field, p)) & (tile["land"] == 1)


@derivation("nature_network_planned")
def nature_network_planned(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """The part of the network still to be realised: farmland in its gaps and bays."""
    field, p = _network_field(tile, spec)
    return _planned(tile, field, p) & (tile["land"] == 1)
