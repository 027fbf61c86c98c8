"""Derivations of the Netherlands demo grid: layers that behave like the real ones where no
public copy exists, made from the real layers (districts, elevation, dikes, water bodies).

Every function here works cell by cell on a tile, using only the tile's own inputs, its cell
centre coordinates, and fields prepared once for the whole build (``ctx.once``). That keeps
a layer identical whatever the tiling, and lets the 25 m national grid build tile by tile.
Thresholds and shapes come from the layer's ``params`` in the grid definition, so what the
demo assumes is written in ``grids/nl.toml``, not hidden here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from scipy import ndimage

from engine.errors import RuimtepuzzelError
from engine.grid.definition import LayerSpec
from engine.grid.layers import derivation
from engine.grid.noise import fbm
from engine.grid.sources import VectorTable, burn_shapes, read_vector
from engine.grid.tiles import BaseField, Context, GridGeometry, Tile

LAND_COVER = ("none", "built_up", "agriculture", "greenhouse", "forest", "open_nature", "water")
NONE, BUILT_UP, AGRICULTURE, GREENHOUSE, FOREST, OPEN_NATURE, WATER = range(7)


def _noise(tile: Tile, spacing: float, salt: int, octaves: int = 3) -> np.ndarray:
    """Fractal noise for this tile; ``salt`` keeps the layers' textures independent."""
    seed = tile.ctx.definition.seed * 7919 + salt
    return fbm(tile.x, tile.y, spacing, seed, octaves)


def vector_table(ctx: Context, path, key: str = "") -> VectorTable:
    """A vector file in the grid CRS, read once per build."""
    return ctx.once(("vector-file", str(path), key), lambda: read_vector(path, ctx.definition.crs))


def _mask(*arrays: np.ndarray) -> np.ndarray:
    out = np.ones(arrays[0].shape, bool)
    for a in arrays:
        out &= a.astype(bool)
    return out


# --------------------------------------------------------------------------- whole-extent fields


def params_key(p: dict[str, Any]) -> str:
    """A layer's params as a key for ``Context.once``: layers with the same params share."""
    return repr(sorted((k, str(v)) for k, v in p.items()))


def _raster_layers(ctx: Context, names: list[str]) -> list[str]:
    """The layers among ``names`` and everything they are made from that read a raster."""
    layers = ctx.definition.layers
    return sorted(n for n in ctx.definition.closure(names) if layers[n].source == "raster")


def field_geometry(ctx: Context, names: list[str], res: float) -> GridGeometry:
    """Where a field made from the layers ``names`` is worked out: the whole context extent
    at ``res``, so that a window grid (a province) gets the national grid's values. A layer
    read from a raster lines up with the grid's own cells only; a field made from one is
    worked out on the grid itself."""
    if _raster_layers(ctx, names):
        return ctx.geometry
    xmin, ymin, xmax, ymax = ctx.context_extent
    return GridGeometry(
        ctx.definition.crs,
        xmin,
        ymax,
        float(res),
        round((ymax - ymin) / res),
        round((xmax - xmin) / res),
    )


@contextmanager
def context_at(ctx: Context, geometry: GridGeometry) -> Iterator[Context]:
    """A build context on ``geometry``: the build's own when that is its grid (nothing is
    prepared twice), else a fresh one, closed afterwards."""
    if geometry == ctx.geometry:
        yield ctx
        return
    with Context(ctx.definition, geometry) as wide:
        yield wide


@dataclass
class GridField:
    """Arrays on a field grid, read per tile at the cell holding each tile cell centre."""

    geometry: GridGeometry
    values: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def offset(self, tile: Tile) -> tuple[int, int]:
        """(row, col) of the tile's first cell on this grid; same resolution only."""
        g, t = self.geometry, tile.geometry
        return (
            round((g.ymax - t.ymax) / g.res) + tile.window.row0,
            round((t.xmin - g.xmin) / g.res) + tile.window.col0,
        )

    def take(self, name: str, tile: Tile) -> np.ndarray:
        g = self.geometry
        # Floor, not round: a cell centre on a coarser cell's edge always goes the same way.
        rows = np.clip(np.floor((g.ymax - tile.y) / g.res).astype(np.int64), 0, g.height - 1)
        cols = np.clip(np.floor((tile.x - g.xmin) / g.res).astype(np.int64), 0, g.width - 1)
        return self.values[name][rows[:, None], cols[None, :]]


def context_layers(ctx: Context, names: list[str], res: float) -> GridField:
    """The layers ``names`` over the field grid of ``field_geometry`` (``res`` one of the
    grid's resolutions), window by window as a build would: for fields that must see past
    a tile, such as connected areas and distances to edges."""
    from engine.grid.build import compute_window

    out = GridField(field_geometry(ctx, names, res))
    g = out.geometry
    with context_at(ctx, g) as wide:
        for window in g.windows(ctx.definition.tile_size):
            part = compute_window(ctx.definition, g.res, window, names, context=wide)
            for name in names:
                if name not in out.values:
                    out.values[name] = np.empty(g.shape, part[name].dtype)
                out.values[name][
                    window.row0 : window.row0 + window.height,
                    window.col0 : window.col0 + window.width,
                ] = part[name]
    return out


# --------------------------------------------------------------------------- regions


def _majority_regions(ctx: Context, units: LayerSpec, p: dict[str, Any]) -> dict[str, Any]:
    """For every unit of an index layer (in its index order), the region it overlaps most."""
    if units.source != "vector" or units.burn != "index":
        raise RuimtepuzzelError(
            f"params.units_layer {units.name!r} must be a vector layer burnt as "
            f"an index (its polygons are what is assigned to regions)"
        )
    table = vector_table(ctx, units.path)
    order = np.argsort(table.column(units.key, units.name).astype(str), kind="stable")
    unit_geoms = table.geometries[order]
    regions = vector_table(ctx, p["regions_file"])
    keys = regions.column(p["key"]).astype(str)
    by_key = np.argsort(keys, kind="stable")
    region_geoms = regions.geometries[by_key]
    tree = shapely.STRtree(region_geoms)
    lookup = np.full(len(unit_geoms), -1, np.int64)
    for i, geom in enumerate(unit_geoms):
        hits = np.sort(tree.query(geom))
        if hits.size:
            overlap = shapely.area(shapely.intersection(geom, region_geoms[hits]))
            lookup[i] = hits[int(np.argmax(overlap))] if overlap.max() > 0 else -1
    return {
        "lookup": lookup,
        "codes": [str(k) for k in keys[by_key]],
        "names": [str(v) for v in regions.column(p["label"]).astype(str)[by_key]],
    }


@derivation("region_of_units")
def region_of_units(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Region index (in the order of the regions' ``key``) of the unit (municipality) each
    cell is in, the region being the one the unit overlaps most; -1 outside every unit.
    Regions made of whole units so get the units' exact boundaries."""
    p = spec.params
    units = tile.ctx.definition.layers[p.get("units_layer", spec.inputs[0])]
    model = tile.ctx.once(
        ("region-of-units", spec.name, units.name, str(p["regions_file"])),
        lambda: _majority_regions(tile.ctx, units, p),
    )
    tile.ctx.layer_attrs.setdefault(spec.name, {}).update(
        codes=model["codes"], names=model["names"]
    )
    index = tile[units.name].astype(np.int64)
    return np.where(index >= 0, model["lookup"][np.maximum(index, 0)], -1)


# --------------------------------------------------------------------------- built-up land


def _districts(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    table = vector_table(ctx, p["districts_file"])
    pop = table.column("population").astype(np.float64)
    pop = np.where(pop > 0, pop, 0.0)  # CBS marks suppressed counts negative
    area_km2 = shapely.area(table.geometries) / 1e6
    density = pop / np.maximum(area_km2, 1e-6)
    return {"table": table, "population": pop, "area_km2": area_km2, "density": density}


def _built_up_model(ctx: Context, spec: LayerSpec) -> dict[str, Any]:
    """Per district a threshold on a 'coreness' field so that the district's built-up share
    follows its population density; cores are where the smoothed density is highest.

    coreness(x) = smoothed log10 density (a base field) + noise. Thresholds are quantiles of
    coreness over the district's cells on a fixed base grid, so they do not depend on the
    resolution or the tiles of the build.
    """
    p = spec.params
    d = _districts(ctx, p)
    table = d["table"]
    res = float(p.get("base_resolution", 250))
    base = BaseField.over(ctx.context_extent, res)
    index = burn_shapes(
        base,
        table.geometries,
        np.arange(len(table)),
        fill=-1,
        dtype="int32",
        tree=shapely.STRtree(table.geometries),
    )
    logd = np.where(index >= 0, np.log10(np.maximum(d["density"], 1.0))[index], 0.0)
    sigma = float(p.get("smooth_m", 1200)) / res
    core = BaseField(ndimage.gaussian_filter(logd, sigma).astype(np.float32), base.x0, base.y0, res)
    coreness = _coreness(core, base.xs, base.ys, ctx, p)

    target = np.clip(
        d["density"] / float(p["full_density"]),
        p.get("min_fraction", 0.02),
        p.get("max_fraction", 0.97),
    )
    thresholds = np.full(len(table), np.inf)
    flat_idx, flat_c = index.ravel(), coreness.ravel()
    inside = flat_idx >= 0
    order = np.lexsort((flat_c[inside], flat_idx[inside]))
    sorted_idx, sorted_c = flat_idx[inside][order], flat_c[inside][order]
    starts = np.searchsorted(sorted_idx, np.arange(len(table)))
    ends = np.searchsorted(sorted_idx, np.arange(len(table)), side="right")
    for k in range(len(table)):
        n = ends[k] - starts[k]
        if n == 0:  # smaller than a base cell: built-up if mostly so
            thresholds[k] = -np.inf if target[k] >= 0.5 else np.inf
            continue
        q = int(np.clip(round((1 - target[k]) * n), 0, n - 1))
        thresholds[k] = sorted_c[starts[k] + q]
    margin = float(p.get("soft_margin", 0.08))
    frac = _soft(coreness, thresholds, index, margin)
    with np.errstate(invalid="ignore", divide="ignore"):  # districts smaller than a cell
        mean_frac = ndimage.mean(frac, labels=index + 1, index=np.arange(1, len(table) + 1))
    return {
        "core": core,
        "thresholds": thresholds,
        "margin": margin,
        "mean_fraction": np.nan_to_num(mean_frac),
        **d,
    }


def _coreness(core: BaseField, x, y, ctx: Context, p: dict[str, Any]) -> np.ndarray:
    seed = ctx.definition.seed * 7919 + 11
    n = fbm(x, y, float(p.get("noise_spacing", 1600)), seed, 3)
    return core.sample(x, y) + float(p.get("noise_amplitude", 0.6)) * (n - 0.5)


def _soft(coreness, thresholds, index, margin) -> np.ndarray:
    thr = np.where(index >= 0, thresholds[np.maximum(index, 0)], np.inf)
    with np.errstate(invalid="ignore"):
        frac = np.clip(0.5 + (coreness - thr) / (2 * margin), 0.0, 1.0)
    return np.where(index >= 0, np.nan_to_num(frac), 0.0)


@derivation("built_up_fraction")
def built_up_fraction(tile: Tile, spec: LayerSpec) -> np.ndarray:
    model = tile.ctx.once(("built_up", spec.name), lambda: _built_up_model(tile.ctx, spec))
    index = tile["district"].astype(np.int64)
    coreness = _coreness(model["core"], tile.x, tile.y, tile.ctx, spec.params)
    frac = _soft(coreness, model["thresholds"], index, model["margin"])
    return np.where(tile["land"] == 1, frac, 0.0)


@derivation("population_density")
def population_density(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """District density spread over the district: most on built-up cells, a share on all."""
    owner = spec.params["built_up_layer"]
    model = tile.ctx.once(
        ("built_up", owner), lambda: _built_up_model(tile.ctx, tile.ctx.definition.layers[owner])
    )
    index = tile["district"].astype(np.int64)
    k = np.maximum(index, 0)
    everywhere = float(spec.params.get("share_everywhere", 0.1))
    mean = model["mean_fraction"][k]
    dens = model["density"][k]
    with np.errstate(invalid="ignore", divide="ignore"):
        shaped = np.where(mean > 0, everywhere + (1 - everywhere) * tile[owner] / mean, 1.0)
    return np.where((index >= 0) & (tile["land"] == 1), dens * shaped, 0.0)


# --------------------------------------------------------------------------- water system


@derivation("below_elevation")
def below_elevation(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Deep polders: land (not large water) with elevation below ``below`` m NAP."""
    below = float(spec.params["below"])
    return _mask(tile["land"], tile["elevation"] < below, tile["water_body"] == 0)


@derivation("depth_below")
def depth_below(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Depth below NAP (m, positive) where the mask input is set, else 0."""
    elev, mask = tile[spec.inputs[0]], tile[spec.inputs[1]]
    return np.where(mask == 1, np.maximum(-elev, 0.0), 0.0)


def _line_buffers(ctx: Context, path, distance: float) -> tuple[np.ndarray, shapely.STRtree]:
    table = vector_table(ctx, path)
    # Simplified first: vertices metres apart add nothing to a zone hundreds of metres wide.
    lines = shapely.simplify(table.geometries, distance / 10)
    geoms = shapely.buffer(lines, distance, quad_segs=4)
    return geoms, shapely.STRtree(geoms)


@derivation("line_buffer")
def line_buffer(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Cells within ``distance`` m of the lines (every touched cell), on land."""
    p = spec.params
    geoms, tree = tile.ctx.once(
        ("line_buffer", str(p["lines_file"]), p["distance"]),
        lambda: _line_buffers(tile.ctx, p["lines_file"], float(p["distance"])),
    )
    zone = burn_shapes(tile, geoms, all_touched=True, tree=tree)
    return _mask(zone, tile["land"])


def _between_dikes(ctx: Context, p: dict[str, Any]) -> BaseField:
    """Base field: 1 where a cell lies between dike lines of two different dike rings that
    face each other (nearest points in opposite directions, less than ``max_width`` apart),
    2 on the middle strip of that space (the river channel), else 0.

    This is how the floodplains (uiterwaarden) of the big rivers look from the dike-ring
    map: the rivers run between the rings along them; behind a dike, both rings lie on the
    same side and the cell is protected land.
    """
    table = vector_table(ctx, p["lines_file"])
    rings = table.column(p.get("ring_attribute", "dijkringnummer")).astype(str)
    res = float(p.get("base_resolution", 100))
    max_width = float(p.get("max_width", 3000))
    channel = float(p.get("channel_width", 250))
    cos_limit = float(p.get("opposite_cos", -0.5))
    base = BaseField.over(ctx.context_extent, res)
    ny, nx = base.values.shape
    pad = int(np.ceil(max_width / res)) + 1

    def ring_fields(ring: str):
        geoms = table.geometries[rings == ring]
        xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
        c0 = max(int((xmin - (base.x0 - res / 2)) // res) - pad, 0)
        c1 = min(int((xmax - (base.x0 - res / 2)) // res) + pad + 1, nx)
        r0 = max(int(((base.y0 + res / 2) - ymax) // res) - pad, 0)
        r1 = min(int(((base.y0 + res / 2) - ymin) // res) + pad + 1, ny)
        sub = BaseField(
            np.zeros((r1 - r0, c1 - c0), np.float32), base.x0 + c0 * res, base.y0 - r0 * res, res
        )
        lines = burn_shapes(sub, geoms, all_touched=True)
        dist, (iy, ix) = ndimage.distance_transform_edt(lines == 0, return_indices=True)
        gy, gx = np.indices(lines.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            vx, vy = (ix - gx) / dist, (iy - gy) / dist
        f32 = np.float32
        window = (slice(r0, r1), slice(c0, c1))
        return window, (dist * res).astype(f32), vx.astype(f32), vy.astype(f32)

    near_d = np.full((ny, nx), np.inf, np.float32)
    near_vx, near_vy = np.zeros((ny, nx), np.float32), np.zeros((ny, nx), np.float32)
    near_ring = np.full((ny, nx), -1, np.int16)
    unique = sorted(set(rings))
    fields = [ring_fields(ring) for ring in unique]  # each ring's window only: small
    for k, (sl, dist, vx, vy) in enumerate(fields):  # pass 1: the nearest ring of every cell
        closer = dist < near_d[sl]
        near_d[sl] = np.where(closer, dist, near_d[sl])
        near_vx[sl] = np.where(closer, vx, near_vx[sl])
        near_vy[sl] = np.where(closer, vy, near_vy[sl])
        near_ring[sl] = np.where(closer, k, near_ring[sl])
    out = np.zeros((ny, nx), np.float32)
    for k, (sl, dist, vx, vy) in enumerate(fields):  # pass 2: a facing ring on the other side
        facing = (near_vx[sl] * vx + near_vy[sl] * vy) < cos_limit
        width = near_d[sl] + dist
        between = (near_ring[sl] != k) & facing & (width <= max_width) & (near_d[sl] > 0)
        middle = between & (np.abs(dist - near_d[sl]) <= channel / 2 + res / 2)
        out[sl] = np.maximum(out[sl], np.where(middle, 2, np.where(between, 1, 0)))
    base.values = out
    return base


def _floodplain_field(tile: Tile, spec: LayerSpec) -> np.ndarray:
    p = spec.params
    key = ("between_dikes", str(p["lines_file"]), tuple(sorted((k, str(v)) for k, v in p.items())))
    field = tile.ctx.once(key, lambda: _between_dikes(tile.ctx, p))
    return field.sample(tile.x, tile.y, order=0)


@derivation("floodplain")
def floodplain(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Land between facing dikes of different rings (river floodplains and the river)."""
    return _mask(_floodplain_field(tile, spec) >= 1, tile["land"], tile["water_body"] == 0)


@derivation("river_channel")
def river_channel(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """The middle strip of the space between facing dikes: the river's summer bed."""
    return _mask(_floodplain_field(tile, spec) >= 2, tile["land"], tile["water_body"] == 0)


# --------------------------------------------------------------------------- soils


def _province_index(tile: Tile, codes: list[str]) -> np.ndarray:
    known = tile.ctx.layer_attrs.get("province", {}).get("codes", [])
    wanted = [known.index(c) for c in codes if c in known]
    return np.isin(tile["province"], wanted)


def _in_boxes(tile: Tile, boxes) -> np.ndarray:
    out = np.zeros(tile.shape, bool)
    x, y = tile.x[None, :], tile.y[:, None]
    for xmin, ymin, xmax, ymax in boxes:
        out |= (x >= xmin) & (x < xmax) & (y >= ymin) & (y < ymax)
    return out


@derivation("peat")
def peat(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Peat in the low west and north: elevation in a band around NAP, in the provinces
    listed, broken into patches by noise (clay and sand lie between)."""
    p = spec.params
    elev = tile["elevation"]
    n = _noise(tile, float(p.get("noise_spacing", 4000)), 21)
    band = (elev >= float(p["min_elevation"])) & (elev <= float(p["max_elevation"]))
    out = _mask(
        tile["land"],
        band,
        _province_index(tile, p["provinces"]),
        n > float(p.get("noise_threshold", 0.3)),
    )
    if p.get("coast_names"):  # the young sea clay along the coasts is no peat
        out &= ~_near_water(
            tile,
            p["water_file"],
            p["coast_names"],
            float(p["coast_distance"]),
            p.get("name_attribute", "OWMNAAM"),
        )
    return out


@derivation("sandy_highland")
def sandy_highland(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Pleistocene sand: land above ``min_elevation`` m NAP (the edge made irregular by
    noise), except the loess of Zuid-Limburg and other boxes listed."""
    p = spec.params
    n = _noise(tile, float(p.get("noise_spacing", 3000)), 31)
    elev = tile["elevation"] + float(p.get("noise_m", 2.0)) * (n - 0.5)
    return _mask(
        tile["land"],
        elev >= float(p["min_elevation"]),
        ~_in_boxes(tile, p.get("exclude_boxes", [])),
    )


def _water_buffer(ctx: Context, path, attribute: str, names: list[str], width: float):
    table = vector_table(ctx, path)
    chosen = np.isin(table.column(attribute).astype(str), names)
    water = shapely.simplify(shapely.union_all(table.geometries[chosen]), width / 20)
    return np.array([shapely.buffer(water, width, quad_segs=4)], dtype=object)


def _near_water(tile: Tile, path, names: list[str], width: float, attribute: str) -> np.ndarray:
    key = ("near_water", str(path), tuple(names), float(width))
    zone = tile.ctx.once(key, lambda: _water_buffer(tile.ctx, path, attribute, names, width))
    return burn_shapes(tile, zone) == 1


@derivation("coastal_strip")
def coastal_strip(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Land within ``width`` m of the named sea water bodies: the dune belt."""
    p = spec.params
    near = _near_water(
        tile, p["water_file"], p["sea_names"], float(p["width"]), p.get("name_attribute", "OWMNAAM")
    )
    return _mask(near, tile["land"])


# --------------------------------------------------------------------------- land cover


def _near_points(tile: Tile, sites: list[dict[str, Any]], wobble: np.ndarray) -> np.ndarray:
    """Cells within each site's radius, the radius scaled by (0.6 + 0.8 * wobble)."""
    out = np.zeros(tile.shape, bool)
    x, y = tile.x[None, :], tile.y[:, None]
    for s in sites:
        r = float(s["radius"]) * (0.6 + 0.8 * wobble)
        out |= (x - float(s["x"])) ** 2 + (y - float(s["y"])) ** 2 <= r * r
    return out


@derivation("land_cover")
def land_cover(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Current land cover, one class per cell; later rules win where they overlap."""
    p = spec.params
    land = tile["land"] == 1
    elev = tile["elevation"]
    sandy, peat_ = tile["sandy_highland"] == 1, tile["peat"] == 1
    dunes, flood = tile["coastal_strip"] == 1, tile["floodplain"] == 1

    cover = np.where(land, AGRICULTURE, NONE).astype(np.uint8)
    forest_n = _noise(tile, float(p.get("forest_spacing", 2500)), 41)
    # Higher sand carries more forest (the Veluwe, Utrechtse Heuvelrug, Sallandse Heuvelrug).
    lift = float(p.get("forest_elevation_gain", 0.35)) * np.clip((elev - 5.0) / 40.0, 0, 1)
    forest = sandy & (forest_n + lift > float(p.get("forest_threshold", 0.62)))
    forest |= dunes & (forest_n > float(p.get("dune_forest_threshold", 0.6)))
    heath_n = _noise(tile, float(p.get("heath_spacing", 1800)), 43)
    nature = dunes & ~forest
    nature |= sandy & ~forest & (heath_n > float(p.get("heath_threshold", 0.8)))
    wet_n = _noise(tile, float(p.get("wetland_spacing", 2000)), 47)
    nature |= peat_ & (wet_n > float(p.get("wetland_threshold", 0.78)))
    nature |= flood & (wet_n > float(p.get("floodplain_nature_threshold", 0.5)))
    cover[forest & land] = FOREST
    cover[nature & land] = OPEN_NATURE

    glass_n = _noise(tile, 600.0, 53, octaves=2)
    glass = _near_points(tile, p.get("greenhouse_clusters", []), glass_n)
    cover[glass & land & (glass_n > 0.35)] = GREENHOUSE

    cover[(tile["built_up_fraction"] >= 0.5) & land] = BUILT_UP
    lakes = peat_ & (wet_n > float(p.get("lake_threshold", 0.9)))
    water = (tile["water_body"] == 1) | (tile["river_channel"] == 1) | lakes
    cover[water & land] = WATER
    return cover


@derivation("circles")
def circles(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Discs of the listed radius around the listed sites (risk contours), on land."""
    sites = spec.params["sites"]
    out = np.zeros(tile.shape, bool)
    x, y = tile.x[None, :], tile.y[:, None]
    for s in sites:
        out |= (x - float(s["x"])) ** 2 + (y - float(s["y"])) ** 2 <= float(s["radius"]) ** 2
    return _mask(out, tile["land"])


@derivation("valuable_farmland")
def valuable_farmland(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """Farmland on the young sea and river clays: agriculture that is not on peat or sand,
    not in floodplains, between the elevations given."""
    p = spec.params
    elev = tile["elevation"]
    return _mask(
        tile["land_cover"] == AGRICULTURE,
        tile["peat"] == 0,
        tile["sandy_highland"] == 0,
        tile["floodplain"] == 0,
        elev >= float(p["min_elevation"]),
        elev <= float(p["max_elevation"]),
    )
