"""Reading a layer's source for one tile: GeoTIFF windows, rasterised vectors, UGRID meshes.

Each reader checks its file once per build (``prepare_*``, through ``Context.once``) and then
fills tiles. Raster files must line up with the grid unless the layer names a resampling
method; the error says which layer, what does not line up, and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.warp import reproject, transform_geom

from engine.grid.definition import LayerSpec
from engine.grid.tiles import BaseField, Context, Tile

__all__ = [
    "VectorTable",
    "read_vector",
    "raster_tile",
    "vector_tile",
    "ugrid_tile",
    "burn_shapes",
    "check_raster_alignment",
    "raster_types",
]


# --------------------------------------------------------------------------- vectors


@dataclass
class VectorTable:
    """Features of a vector file in the grid CRS: shapely geometries and attribute columns."""

    geometries: np.ndarray  # object array of shapely geometries
    fields: dict[str, np.ndarray]
    path: Path

    def __len__(self) -> int:
        return len(self.geometries)

    def column(self, name: str, layer: str = "") -> np.ndarray:
        if name not in self.fields:
            raise ValueError(
                f"layer {layer!r}: {self.path.name} has no attribute {name!r}; "
                f"its attributes are {sorted(self.fields)}"
            )
        return self.fields[name]

    def take(self, index: np.ndarray) -> VectorTable:
        return VectorTable(
            self.geometries[index], {k: v[index] for k, v in self.fields.items()}, self.path
        )


def read_vector(path: Path, crs: str) -> VectorTable:
    """All features of a vector file (first layer), reprojected to ``crs`` when needed."""
    meta, _, wkb, columns = pyogrio.raw.read(path)
    geometries = shapely.from_wkb(wkb)
    source_crs = meta.get("crs")
    if source_crs is None:
        raise ValueError(
            f"{path}: the vector file has no CRS; assign one (e.g. with ogr2ogr -a_srs)"
        )
    if CRS.from_user_input(source_crs) != CRS.from_user_input(crs):
        geometries = np.array(
            [
                shapely.geometry.shape(transform_geom(source_crs, crs, shapely.geometry.mapping(g)))
                if g is not None else None
                for g in geometries
            ],
            dtype=object,
        )
    keep = ~shapely.is_missing(geometries) & ~shapely.is_empty(geometries)
    table = VectorTable(geometries, dict(zip(meta["fields"], columns)), Path(path))
    return table.take(np.flatnonzero(keep))


def burn_shapes(
    tile: Tile | BaseField,
    geometries: np.ndarray,
    values: np.ndarray | None = None,
    *,
    fill: float = 0,
    dtype: str = "uint8",
    all_touched: bool = False,
    tree: shapely.STRtree | None = None,
) -> np.ndarray:
    """Rasterise geometries onto a tile (or a base field's grid) by cell centre, or onto
    every touched cell.

    Later geometries win where they overlap; only those that reach the tile are passed to
    GDAL, in their original order, so the result does not depend on the tiling.
    """
    out = np.full(tile.shape, fill, dtype=dtype)
    if len(geometries) == 0:
        return out
    box = shapely.box(*tile.bounds)
    hits = np.sort(tree.query(box)) if tree is not None else np.flatnonzero(
        shapely.intersects(geometries, box)
    )
    if hits.size == 0:
        return out
    vals = np.ones(len(geometries)) if values is None else np.asarray(values)
    shapes = ((geometries[i], vals[i]) for i in hits)
    rasterize(
        shapes, out=out, transform=tile.transform, all_touched=all_touched, dtype=dtype
    )
    return out


def _prepare_vector(ctx: Context, spec: LayerSpec) -> dict[str, Any]:
    table = read_vector(spec.path, ctx.definition.crs)
    attrs: dict[str, Any] = {}
    if spec.burn == "index":
        keys = table.column(spec.key, spec.name).astype(str)
        order = np.argsort(keys, kind="stable")
        table = table.take(order)
        values = np.arange(len(table), dtype=np.float64)
        attrs["codes"] = [str(k) for k in table.fields[spec.key]]
        if spec.label:
            attrs["names"] = [str(v) for v in table.column(spec.label, spec.name)]
    elif spec.burn == "attribute":
        values = table.column(spec.attribute, spec.name).astype(np.float64)
    else:
        values = np.ones(len(table))
    ctx.layer_attrs.setdefault(spec.name, {}).update(attrs)
    tree = shapely.STRtree(table.geometries)
    return {"geometries": table.geometries, "values": values, "tree": tree}


def vector_tile(tile: Tile, spec: LayerSpec) -> np.ndarray:
    prepared = tile.ctx.once(("vector", spec.name), lambda: _prepare_vector(tile.ctx, spec))
    # Outside every feature: the layer's nodata (NaN for an attribute burnt as float), else 0.
    fill = spec.nodata if spec.nodata is not None else (
        np.nan if spec.burn == "attribute" and np.dtype(spec.dtype).kind == "f" else 0
    )
    return burn_shapes(
        tile,
        prepared["geometries"],
        prepared["values"],
        fill=fill,
        dtype=spec.dtype,
        all_touched=spec.all_touched,
        tree=prepared["tree"],
    )


# --------------------------------------------------------------------------- rasters


def check_raster_alignment(spec: LayerSpec, ctx: Context) -> dict[str, Any]:
    """Open the layer's GeoTIFF once; refuse it when it does not line up and no resampling
    is asked for. Returns what the tile reader needs."""
    geometry = ctx.geometry
    with rasterio.open(spec.path) as src:
        if spec.band < 1 or spec.band > src.count:
            raise ValueError(
                f"layer {spec.name!r}: {spec.path.name} has {src.count} band(s), band = "
                f"{spec.band} does not exist"
            )
        nodata = src.nodatavals[spec.band - 1]
        info = {"nodata": nodata, "dtype": src.dtypes[spec.band - 1], "crs": src.crs}
        if spec.resample is not None:
            if src.crs is None:
                raise ValueError(
                    f"layer {spec.name!r}: {spec.path.name} has no CRS, so it cannot be "
                    f"resampled; assign its CRS in the file (gdal_edit.py -a_srs)"
                )
            return info
        problems = []
        if src.crs is None or CRS.from_user_input(src.crs) != CRS.from_user_input(geometry.crs):
            problems.append(f"CRS is {src.crs.to_string() if src.crs else 'missing'}, "
                            f"the grid's is {geometry.crs}")
        if not src.transform.almost_equals(geometry.transform, precision=1e-6 * geometry.res):
            problems.append(
                f"transform is {tuple(round(v, 6) for v in src.transform[:6])} (cell size "
                f"{src.res[0]:g} m, origin {src.transform.c:g}, {src.transform.f:g}), the grid's "
                f"is {tuple(geometry.transform[:6])}"
            )
        if src.shape != geometry.shape:
            problems.append(f"shape is {src.shape}, the grid's is {geometry.shape}")
        if problems:
            raise ValueError(
                f"layer {spec.name!r}: {spec.path} does not line up with grid "
                f"{ctx.definition.name!r} at {geometry.res:g} m: " + "; ".join(problems)
                + f". Fix: warp the file to the grid (gdalwarp -t_srs {geometry.crs} -tr "
                f"{geometry.res:g} {geometry.res:g} -te {geometry.xmin:g} "
                f"{geometry.ymax - geometry.height * geometry.res:g} "
                f"{geometry.xmin + geometry.width * geometry.res:g} {geometry.ymax:g}), or add "
                f"resample = 'nearest' | 'bilinear' | 'average' | ... to [layers.{spec.name}]"
            )
        return info


def _warp_whole(spec: LayerSpec, ctx: Context, info: dict[str, Any]) -> Path:
    """Warp the layer's file onto the whole grid once, into a scratch GeoTIFF (float64, NaN
    for no data), so that tiles read it like an aligned raster.

    Warping tile by tile would not do: GDAL sizes its resampling kernel and transforms
    coordinates relative to each destination window, so a cell's value would depend, in
    the last digits, on the tile it fell in. GDAL works through the whole grid in chunks of
    its own (bounded by its warp memory), the same whatever our tiles.
    """
    geometry = ctx.geometry
    dest = ctx.scratch() / f"{spec.name}.warped.tif"
    profile = {
        "driver": "GTiff", "width": geometry.width, "height": geometry.height, "count": 1,
        "dtype": "float64", "crs": geometry.crs, "transform": geometry.transform,
        "nodata": np.nan, "tiled": True, "blockxsize": 256, "blockysize": 256,
        "BIGTIFF": "IF_SAFER",
    }
    with rasterio.open(spec.path) as src, rasterio.open(dest, "w", **profile) as dst:
        reproject(
            rasterio.band(src, spec.band), rasterio.band(dst, 1),
            src_nodata=info["nodata"], dst_nodata=np.nan, init_dest_nodata=True,
            resampling=Resampling[spec.resample], warp_mem_limit=256,
        )
    return dest


def raster_types(spec: LayerSpec, ctx: Context) -> tuple[str, float | None]:
    """The layer's dtype and nodata: the definition's where it gives them, else the file's."""
    info = ctx.once(("raster", spec.name), lambda: check_raster_alignment(spec, ctx))
    dtype = spec.dtype or info["dtype"]
    nodata = spec.nodata if spec.nodata is not None else info["nodata"]
    return dtype, nodata


def raster_tile(tile: Tile, spec: LayerSpec) -> np.ndarray:
    info = tile.ctx.once(("raster", spec.name), lambda: check_raster_alignment(spec, tile.ctx))
    dtype, nodata = raster_types(spec, tile.ctx)
    fill = nodata if nodata is not None else (
        np.nan if np.issubdtype(np.dtype(dtype), np.floating) else 0
    )
    w = tile.window
    window = ((w.row0, w.row0 + w.height), (w.col0, w.col0 + w.width))
    if spec.resample is None:
        with rasterio.open(spec.path) as src:
            data = src.read(spec.band, window=window)
        valid = (np.ones(data.shape, bool) if info["nodata"] is None
                 else ~_is_nodata(data, info["nodata"]))
    else:
        warped = tile.ctx.once(("warped", spec.name), lambda: _warp_whole(spec, tile.ctx, info))
        with rasterio.open(warped) as src:
            data = src.read(1, window=window)
        valid = np.isfinite(data)
    out = np.full(tile.shape, fill, dtype=dtype)
    out[valid] = data[valid].astype(dtype)
    return out


def _is_nodata(data: np.ndarray, nodata: float) -> np.ndarray:
    if np.isnan(nodata):
        return np.isnan(data)
    return data == nodata


# --------------------------------------------------------------------------- UGRID meshes


def _prepare_ugrid(ctx: Context, spec: LayerSpec) -> BaseField:
    """Interpolate face values linearly between face centres onto a base grid once.

    Linear interpolation on the Delaunay triangulation of the face centres gives a continuous
    surface instead of the mesh's flat facets; outside the mesh the nearest face value is
    used (the mesh leaves parts of Zuid-Limburg out).
    """
    import xarray as xr
    from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator
    from scipy.spatial import Delaunay

    with xr.open_dataset(spec.path) as ds:
        if spec.variable not in ds:
            raise ValueError(
                f"layer {spec.name!r}: {spec.path.name} has no variable {spec.variable!r}; "
                f"it has {sorted(ds.data_vars)}"
            )
        var = ds[spec.variable]
        face_dim = var.dims[0]
        coords = [c for c in ds.coords if ds[c].dims == (face_dim,)]
        xs = [c for c in coords if c.endswith("_x")]
        ys = [c for c in coords if c.endswith("_y")]
        if not xs or not ys:
            raise ValueError(
                f"layer {spec.name!r}: {spec.path.name}: variable {spec.variable!r} is not on "
                f"mesh faces with *_x/*_y face coordinates"
            )
        fx, fy = ds[xs[0]].values, ds[ys[0]].values
        values = var.values.astype(np.float64)
    ok = np.isfinite(values)
    if "valid_range" in spec.params:
        # E.g. leave the sea bed out, so coastal land is not pulled down to -20 m by the
        # centre of a neighbouring sea face.
        lo, hi = spec.params["valid_range"]
        ok &= (values >= lo) & (values <= hi)
    points = np.column_stack([fx[ok], fy[ok]])
    res = float(spec.base_resolution or 250.0)
    field = BaseField.over(ctx.context_extent, res)
    gx, gy = np.meshgrid(field.xs, field.ys)
    linear = LinearNDInterpolator(Delaunay(points), values[ok])(gx, gy)
    nearest = NearestNDInterpolator(points, values[ok])
    outside = ~np.isfinite(linear)
    linear[outside] = nearest(gx[outside], gy[outside])
    field.values = linear.astype(np.float32)
    return field


def ugrid_tile(tile: Tile, spec: LayerSpec) -> np.ndarray:
    field = tile.ctx.once(("ugrid", spec.name), lambda: _prepare_ugrid(tile.ctx, spec))
    return field.sample(tile.x, tile.y).astype(spec.dtype)
