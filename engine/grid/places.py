"""Derivations of the places people and power plants are at: town edges, railway stations
and the existing wind and solar parks of the Netherlands demo grid.

Stations and parks are real points (Rijden de Treinen, WRI GPPD) in WGS84, read once per
build and reprojected to the grid CRS; towns are the connected built-up areas of the grid
itself. Whatever needs to see past a tile (the nearest town edge, the nearest land cell for a
station on a quay) is worked out once over the whole context extent, so a layer does not
depend on the tiling, and a province window equals the national grid there.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from rasterio.warp import transform as reproject_points
from scipy import ndimage
from scipy.spatial import cKDTree

from engine.errors import RuimtepuzzelError
from engine.grid.definition import LayerSpec
from engine.grid.demo import (
    GridField,
    context_at,
    context_layers,
    field_geometry,
    params_key,
    vector_table,
)
from engine.grid.layers import derivation
from engine.grid.tiles import Context, Tile, Window

# --------------------------------------------------------------------------- points


def _read_points(path: Path, crs: str, lon: str, lat: str) -> tuple[list[dict], np.ndarray]:
    """Rows of a CSV of WGS84 points and their (x, y) in ``crs``, in file order."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return rows, np.zeros((0, 2))
    missing = {lon, lat} - set(rows[0])
    if missing:
        raise RuimtepuzzelError(
            f"{path.name} has no column(s) {sorted(missing)}; it has {list(rows[0])}"
        )
    xs, ys = reproject_points(
        "EPSG:4326", crs, [float(r[lon]) for r in rows], [float(r[lat]) for r in rows]
    )
    return rows, np.column_stack([xs, ys])


def _cell_of(field: GridField, xy: np.ndarray) -> np.ndarray:
    """(row, col) of the cells of the context grid holding the points."""
    g = field.geometry
    rows = np.floor((g.ymax - xy[:, 1]) / g.res).astype(np.int64)
    cols = np.floor((xy[:, 0] - g.xmin) / g.res).astype(np.int64)
    return np.column_stack([rows, cols])


def _mark_cells(
    tile: Tile, field: GridField, cells: np.ndarray, values: np.ndarray, dtype: str
) -> np.ndarray:
    """A tile with ``values`` in the given context-grid cells (the largest where several
    fall in one cell), 0 elsewhere."""
    out = np.zeros(tile.shape, dtype)
    row0, col0 = field.offset(tile)
    r, c = cells[:, 0] - row0, cells[:, 1] - col0
    inside = (r >= 0) & (r < tile.shape[0]) & (c >= 0) & (c < tile.shape[1])
    np.maximum.at(out, (r[inside], c[inside]), values[inside].astype(dtype))
    return out


def _distance_to(tile: Tile, xy: np.ndarray) -> np.ndarray:
    """Straight-line distance (m) from each land cell centre to the nearest point; NaN off
    land (and everywhere when there are no points)."""
    land = tile["land"] == 1
    out = np.full(tile.shape, np.nan, np.float32)
    if land.any() and len(xy):
        rows, cols = np.nonzero(land)
        dist, _ = cKDTree(xy).query(np.column_stack([tile.x[cols], tile.y[rows]]), workers=1)
        out[rows, cols] = dist
    return out


# --------------------------------------------------------------------------- stations


def _stations(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    """The stations of the country asked for, with their class from the type mapping;
    types mapped to 0 are left out."""
    rows, xy = _read_points(
        Path(p["stations_file"]),
        ctx.definition.crs,
        p.get("lon_column", "geo_lng"),
        p.get("lat_column", "geo_lat"),
    )
    classes = p["type_classes"]
    keep, cls = [], []
    for i, row in enumerate(rows):
        if row.get("country") != p.get("country", "NL"):
            continue
        kind = row.get("type", "")
        if kind not in classes:
            raise RuimtepuzzelError(
                f"{Path(p['stations_file']).name}: station {row['name_long']!r} "
                f"has type {kind!r}, not in params.type_classes {sorted(classes)}"
            )
        if int(classes[kind]) > 0:
            keep.append(i)
            cls.append(int(classes[kind]))
    return {
        "xy": xy[keep],
        "class": np.array(cls, np.int64),
        "name": [rows[i]["name_long"] for i in keep],
        "code": [rows[i]["code"] for i in keep],
    }


def _station_params(tile: Tile, spec: LayerSpec) -> dict[str, Any]:
    """The layer's params on top of those of ``stations_layer``: one place says which
    stations there are and how their types map to classes."""
    own = dict(spec.params)
    owner = own.pop("stations_layer", None)
    return {**tile.ctx.definition.layers[owner].params, **own} if owner else own


def _station_set(tile: Tile, p: dict[str, Any]) -> dict[str, Any]:
    key = (
        "stations",
        str(p["stations_file"]),
        repr(sorted(p["type_classes"].items())),
        p.get("country", "NL"),
    )
    return tile.ctx.once(key, lambda: _stations(tile.ctx, p))


def _attach_points(tile: Tile, name: str, stations: dict[str, Any], keep: np.ndarray) -> None:
    # Flat 1-D lists, not records: attributes must stay writable to NetCDF and GeoTIFF tags.
    tile.ctx.layer_attrs.setdefault(name, {}).update(
        points_x=[round(float(x), 1) for x in stations["xy"][keep, 0]],
        points_y=[round(float(y), 1) for y in stations["xy"][keep, 1]],
        points_name=[stations["name"][i] for i in np.flatnonzero(keep)],
        points_class=[int(c) for c in stations["class"][keep]],
    )


@derivation("distance_to_stations")
def distance_to_stations(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Metres from each land cell centre to the nearest station of at least ``min_class``
    (at its real position, also when that is just off the land); NaN off land."""
    p = _station_params(tile, spec)
    stations = _station_set(tile, p)
    keep = stations["class"] >= int(p.get("min_class", 1))
    _attach_points(tile, spec.name, stations, keep)
    return _distance_to(tile, stations["xy"][keep])


def _nearest_land_cell(
    field_ctx: Context, land_name: str, cell: np.ndarray, xy: np.ndarray, search: int
) -> np.ndarray | None:
    """The land cell nearest to the point, searching ``search`` cells around its own cell;
    its own cell when that is land. Ties go to the first cell in row-major order."""
    from engine.grid.build import compute_window

    g = field_ctx.geometry
    r0, c0 = max(int(cell[0]) - search, 0), max(int(cell[1]) - search, 0)
    r1, c1 = min(int(cell[0]) + search + 1, g.height), min(int(cell[1]) + search + 1, g.width)
    if r1 <= r0 or c1 <= c0:
        return None
    window = Window(r0, c0, r1 - r0, c1 - c0)
    land = (
        compute_window(field_ctx.definition, g.res, window, [land_name], context=field_ctx)[
            land_name
        ]
        == 1
    )
    if (
        0 <= cell[0] - r0 < land.shape[0]
        and 0 <= cell[1] - c0 < land.shape[1]
        and land[cell[0] - r0, cell[1] - c0]
    ):
        return cell
    rows, cols = np.nonzero(land)
    if rows.size == 0:
        return None
    x, y = g.x(c0, window.width)[cols], g.y(r0, window.height)[rows]
    k = int(np.argmin(np.hypot(x - xy[0], y - xy[1])))
    return np.array([r0 + rows[k], c0 + cols[k]])


def _station_cells(ctx: Context, stations: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    """Every station's cell at this resolution, moved to the nearest land cell when its own
    cell is not land (a station on a quay or at the coast, at a coarse resolution)."""
    land_name = p.get("land_layer", "land")
    field = GridField(field_geometry(ctx, [land_name], ctx.geometry.res))
    search = int(np.ceil(float(p["snap_distance"]) / ctx.geometry.res))
    own = _cell_of(field, stations["xy"])
    cells, kept, moved = [], [], []
    with context_at(ctx, field.geometry) as wide:
        for i, (cell, xy) in enumerate(zip(own, stations["xy"])):
            found = _nearest_land_cell(wide, land_name, cell, xy, search)
            if found is None:  # nowhere near land: not a station of this grid
                continue
            cells.append(found)
            kept.append(i)
            if not np.array_equal(found, cell):
                moved.append(stations["name"][i])
    return {
        "field": field,
        "cells": np.array(cells, np.int64).reshape(-1, 2),
        "index": np.array(kept, np.int64),
        "moved": moved,
    }


@derivation("station_cells")
def station_cells(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """The cell holding each station (the nearest land cell for one just off the land):
    1, or the station's class with ``value = "class"`` (the highest where several share a
    cell); 0 elsewhere."""
    p = _station_params(tile, spec)
    stations = _station_set(tile, p)
    key = ("station-cells", params_key({k: v for k, v in p.items() if k != "value"}))
    placed = tile.ctx.once(key, lambda: _station_cells(tile.ctx, stations, p))
    values = (
        stations["class"][placed["index"]]
        if p.get("value") == "class"
        else np.ones(len(placed["index"]), np.int64)
    )
    tile.ctx.layer_attrs.setdefault(spec.name, {}).update(
        stations=len(placed["index"]), moved_to_land=list(placed["moved"])
    )
    return _mark_cells(tile, placed["field"], placed["cells"], values, spec.dtype)


# --------------------------------------------------------------------------- towns


def _town_field(ctx: Context, p: dict[str, Any]) -> GridField:
    """Distance (m) from every cell to the nearest cell of a town: a connected (8-neighbour)
    area of built-up cells of at least ``min_area_ha``, on the whole context extent."""
    layer = p.get("built_up_layer", "built_up_fraction")
    field = context_layers(ctx, [layer], max(ctx.geometry.res, float(p["finest_resolution"])))
    res = field.geometry.res
    built = field.values.pop(layer) >= float(p["built_up_threshold"])
    labels, n = ndimage.label(built, structure=np.ones((3, 3), bool))
    area_ha = np.bincount(labels.ravel(), minlength=n + 1) * (res * res / 1e4)
    big = area_ha >= float(p["min_area_ha"])
    big[0] = False
    town = big[labels]
    field.attrs["towns"] = int(big.sum())
    if not town.any():
        field.values["distance"] = np.full(built.shape, np.inf, np.float32)
        return field
    field.values["distance"] = ndimage.distance_transform_edt(~town, sampling=res).astype(
        np.float32
    )
    return field


@derivation("distance_to_towns")
def distance_to_towns(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Metres from each land cell centre to the nearest cell of a town's built-up land: 0 on
    the town's edge and inside it; NaN off land."""
    p = spec.params
    key = ("towns", params_key(p))
    field = tile.ctx.once(key, lambda: _town_field(tile.ctx, p))
    tile.ctx.layer_attrs.setdefault(spec.name, {}).update(towns=field.attrs["towns"])
    return np.where(tile["land"] == 1, field.take("distance", tile), np.nan)


# --------------------------------------------------------------------------- energy parks


def _parks(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    """The wind and solar parks on land: rows without a quality flag, of the fuels listed,
    within ``onshore_tolerance`` m of the land polygons; each with its footprint radius."""
    rows, xy = _read_points(
        Path(p["plants_file"]),
        ctx.definition.crs,
        p.get("lon_column", "longitude"),
        p.get("lat_column", "latitude"),
    )
    codes, ha_per_mw = p["fuel_codes"], p["ha_per_mw"]
    land = shapely.union_all(vector_table(ctx, p["land_file"]).geometries)
    tolerance = float(p.get("onshore_tolerance", 0.0))
    kept = [
        i
        for i, r in enumerate(rows)
        if not r.get("qa_flag")
        and r["primary_fuel"] in codes
        and shapely.distance(land, shapely.Point(*xy[i])) <= tolerance
    ]
    fuel = [rows[i]["primary_fuel"] for i in kept]
    mw = np.array([float(rows[i]["capacity_mw"]) for i in kept])
    area_m2 = mw * np.array([float(ha_per_mw[f]) for f in fuel]) * 1e4
    return {
        "xy": xy[kept].reshape(-1, 2),
        "radius": np.sqrt(area_m2 / np.pi),
        "code": np.array([int(codes[f]) for f in fuel], np.int64),
        "name": [rows[i]["name"] for i in kept],
        "mw": mw,
        "fuel": fuel,
    }


@derivation("energy_parks")
def energy_parks(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Each park's footprint: a disc of the park's area around its point, plus the cell the
    point is in; the fuel's code there (the highest code where parks overlap), on land."""
    p = spec.params
    key = ("parks", params_key(p))
    parks = tile.ctx.once(key, lambda: _parks(tile.ctx, p))
    tile.ctx.layer_attrs.setdefault(spec.name, {}).update(
        points_x=[round(float(v), 1) for v in parks["xy"][:, 0]],
        points_y=[round(float(v), 1) for v in parks["xy"][:, 1]],
        points_name=list(parks["name"]),
        points_mw=[float(v) for v in parks["mw"]],
        points_fuel=list(parks["fuel"]),
    )
    out = np.zeros(tile.shape, spec.dtype)
    for (px, py), r, code in zip(parks["xy"], parks["radius"], parks["code"]):
        _stamp_disc(tile, out, px, py, r, code)
    return np.where(tile["land"] == 1, out, 0)


def _stamp_disc(tile: Tile, out: np.ndarray, px: float, py: float, r: float, code: int) -> None:
    """Raise ``out`` to ``code`` on the cells whose centre is within ``r`` of the point and
    on the cell holding the point (so a park smaller than a cell still marks one)."""
    g = tile.geometry
    row = int(np.floor((g.ymax - py) / g.res)) - tile.window.row0
    col = int(np.floor((px - g.xmin) / g.res)) - tile.window.col0
    reach = int(np.ceil(r / g.res)) + 1  # only the rows and columns the disc can touch
    r0, r1 = max(row - reach, 0), min(row + reach + 1, tile.shape[0])
    c0, c1 = max(col - reach, 0), min(col + reach + 1, tile.shape[1])
    if r0 >= r1 or c0 >= c1:
        return
    x, y = tile.x[None, c0:c1], tile.y[r0:r1, None]
    disc = (x - px) ** 2 + (y - py) ** 2 <= r * r
    if r0 <= row < r1 and c0 <= col < c1:
        disc[row - r0, col - c0] = True
    block = out[r0:r1, c0:c1]
    block[disc] = np.maximum(block[disc], code)
