"""Reading a layer's source for one tile: GeoTIFF windows, rasterised vectors, UGRID meshes.

Each reader checks its file once per build (``prepare_*``, through ``Context.once``) and then
fills tiles. Raster files must line up with the grid unless the layer names a resampling
method; the error says which layer, what does not line up, and how to fix it.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import rasterio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.features import rasterize
from rasterio.warp import reproject, transform_bounds, transform_geom

from engine.config.validation import ConfigError, did_you_mean
from engine.grid.definition import LayerSpec
from engine.grid.tiles import BaseField, Context, Tile

logger = logging.getLogger(__name__)

__all__ = [
    "VectorTable",
    "read_vector",
    "raster_tile",
    "vector_tile",
    "ugrid_tile",
    "burn_shapes",
    "check_raster_alignment",
    "check_overlap",
    "raster_band",
    "raster_types",
    "reading",
    "read_replacement",
    "LayerFileError",
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
            raise LayerFileError(
                None,
                f"layer {layer!r}" if layer else "(attributes)",
                self.path,
                f"has no attribute {name!r}",
                f"name one of its attributes: {did_you_mean(name, self.fields)}",
            )
        return self.fields[name]

    def take(self, index: np.ndarray) -> VectorTable:
        return VectorTable(
            self.geometries[index], {k: v[index] for k, v in self.fields.items()}, self.path
        )


def read_vector(path: Path, crs: str) -> VectorTable:
    """All features of a vector file (first layer), reprojected to ``crs`` when needed."""
    try:
        meta, _, wkb, columns = pyogrio.raw.read(path)
    except (DataSourceError, DataLayerError, OSError) as err:
        raise LayerFileError(
            None,
            "(vector file)",
            path,
            f"cannot be read ({err})",
            "replace it with a complete copy, or convert it to a GeoPackage with ogr2ogr",
        ) from None
    geometries = shapely.from_wkb(wkb)
    source_crs = meta.get("crs")
    if source_crs is None:
        raise LayerFileError(
            None,
            "(vector file)",
            path,
            "has no CRS",
            "assign one (e.g. with ogr2ogr -a_srs EPSG:28992)",
        )
    if CRS.from_user_input(source_crs) != CRS.from_user_input(crs):
        geometries = np.array(
            [
                shapely.geometry.shape(transform_geom(source_crs, crs, shapely.geometry.mapping(g)))
                if g is not None
                else None
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
    hits = (
        np.sort(tree.query(box))
        if tree is not None
        else np.flatnonzero(shapely.intersects(geometries, box))
    )
    if hits.size == 0:
        return out
    vals = np.ones(len(geometries)) if values is None else np.asarray(values)
    shapes = ((geometries[i], vals[i]) for i in hits)
    rasterize(shapes, out=out, transform=tile.transform, all_touched=all_touched, dtype=dtype)
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
    fill = (
        spec.nodata
        if spec.nodata is not None
        else (np.nan if spec.burn == "attribute" and np.dtype(spec.dtype).kind == "f" else 0)
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


class LayerFileError(ConfigError):
    """A layer's source file that cannot be read, or does not fit the grid: ``file`` and
    ``key`` say where it is named (a grid definition, a config), ``path`` is the file."""

    def __init__(self, file, key: str, path, problem: str, fix: str):
        self.path = Path(path)
        if file is None:  # the file itself is the place
            super().__init__(path, key, problem, fix)
        else:
            super().__init__(file, key, f"{path}: {problem}", fix)


@contextmanager
def reading(path: Path, file, key: str):
    """GDAL's errors on reading ``path`` as a :class:`LayerFileError` naming the file."""
    try:
        yield
    except RasterioError as err:
        raise LayerFileError(
            file,
            key,
            path,
            f"cannot be read as a raster ({err})",
            "replace it with a complete copy (a download or copy cut short leaves a GeoTIFF "
            "that opens but cannot be read; gdalinfo -checksum shows it), or convert it to "
            "a GeoTIFF with gdal_translate",
        ) from None


def raster_band(src, band: int | None, path: Path, file, key: str) -> int:
    """The band that holds the layer: ``band`` when the file has it; without ``band`` the file
    must have one band, so that no band is picked silently."""
    where = key.rsplit(".", 1)[0]
    if band is None:
        if src.count != 1:
            raise LayerFileError(
                file,
                key,
                path,
                f"has {src.count} bands: which one is the layer is not said",
                f"add band = 1..{src.count} to "
                f"[{where}], or write the layer as a one-band GeoTIFF "
                "(gdal_translate -b N)",
            )
        return 1
    if not 1 <= band <= src.count:
        raise LayerFileError(
            file,
            key,
            path,
            f"has {src.count} band(s); band = {band} does not exist",
            f"set band in [{where}] to 1..{src.count}",
        )
    return band


def check_overlap(src, crs, bounds, path: Path, file, key: str) -> None:
    """Refuse a raster that lies outside the grid (``bounds`` in ``crs``): a wrong CRS label
    puts a file somewhere else, and every cell would be without data."""
    fix = (
        "check its CRS label and extent (gdalinfo); a file in RD New labelled otherwise "
        "lands elsewhere: fix the label with gdal_edit.py -a_srs EPSG:28992, or warp it "
        "to the grid with gdalwarp"
    )
    if src.crs is None:
        raise LayerFileError(
            file,
            key,
            path,
            "has no CRS, so where it lies is unknown",
            "assign its CRS in the file (gdal_edit.py -a_srs EPSG:28992)",
        )
    try:
        with np.errstate(all="ignore"):
            left, bottom, right, top = transform_bounds(src.crs, crs, *src.bounds)
    except (RasterioError, ValueError) as err:
        raise LayerFileError(
            file,
            key,
            path,
            f"its extent cannot be placed in {crs} from its CRS {src.crs} ({err})",
            fix,
        ) from None
    xmin, ymin, xmax, ymax = bounds
    finite = all(np.isfinite(v) for v in (left, bottom, right, top))
    if not finite or right <= xmin or left >= xmax or top <= ymin or bottom >= ymax:
        shown = ", ".join(f"{v:,.0f}" for v in (left, bottom, right, top)) if finite else "none"
        raise LayerFileError(
            file,
            key,
            path,
            f"lies outside the grid: its extent in {crs} ({shown}, from its "
            f"CRS {src.crs}) does not overlap the grid's ({xmin:,.0f}, {ymin:,.0f}, "
            f"{xmax:,.0f}, {ymax:,.0f})",
            fix,
        )


def grid_bounds(geometry) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of a :class:`GridGeometry`."""
    return (
        geometry.xmin,
        geometry.ymax - geometry.height * geometry.res,
        geometry.xmin + geometry.width * geometry.res,
        geometry.ymax,
    )


def check_raster_alignment(spec: LayerSpec, ctx: Context) -> dict[str, Any]:
    """Open the layer's GeoTIFF once; refuse it when it cannot be read, does not say which
    band, lies outside the grid, or does not line up and no resampling is asked for. Returns
    what the tile reader needs."""
    geometry = ctx.geometry
    file, key = spec.defined_in or ctx.definition.path, f"layers.{spec.name}.path"
    with reading(spec.path, file, key), rasterio.open(spec.path) as src:
        band = raster_band(src, spec.band, spec.path, file, key)
        nodata = src.nodatavals[band - 1]
        info = {"nodata": nodata, "dtype": src.dtypes[band - 1], "crs": src.crs, "band": band}
        if spec.resample is not None:
            check_overlap(src, geometry.crs, grid_bounds(geometry), spec.path, file, key)
            return info
        problems = []
        if src.crs is None or CRS.from_user_input(src.crs) != CRS.from_user_input(geometry.crs):
            problems.append(
                f"CRS is {src.crs.to_string() if src.crs else 'missing'}, "
                f"the grid's is {geometry.crs}"
            )
        if not src.transform.almost_equals(geometry.transform, precision=1e-6 * geometry.res):
            problems.append(
                f"transform is {tuple(round(v, 6) for v in src.transform[:6])} (cell size "
                f"{src.res[0]:g} m, origin {src.transform.c:g}, {src.transform.f:g}), the grid's "
                f"is {tuple(geometry.transform[:6])}"
            )
        if src.shape != geometry.shape:
            problems.append(f"shape is {src.shape}, the grid's is {geometry.shape}")
        if problems:
            xmin, ymin, xmax, ymax = grid_bounds(geometry)
            raise LayerFileError(
                file,
                key,
                spec.path,
                f"does not line up with grid {ctx.definition.name!r} at "
                f"{geometry.res:g} m: " + "; ".join(problems),
                f"warp the file to the grid (gdalwarp -t_srs {geometry.crs} -tr "
                f"{geometry.res:g} {geometry.res:g} -te {xmin:g} {ymin:g} {xmax:g} {ymax:g}), "
                f"or add resample = 'nearest' | 'bilinear' | 'average' | ... to "
                f"[layers.{spec.name}]",
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
        "driver": "GTiff",
        "width": geometry.width,
        "height": geometry.height,
        "count": 1,
        "dtype": "float64",
        "crs": geometry.crs,
        "transform": geometry.transform,
        "nodata": np.nan,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "BIGTIFF": "IF_SAFER",
    }
    file, key = spec.defined_in or ctx.definition.path, f"layers.{spec.name}.path"
    with (
        reading(spec.path, file, key),
        rasterio.open(spec.path) as src,
        rasterio.open(dest, "w", **profile) as dst,
    ):
        reproject(
            rasterio.band(src, info["band"]),
            rasterio.band(dst, 1),
            src_nodata=info["nodata"],
            dst_nodata=np.nan,
            init_dest_nodata=True,
            resampling=Resampling[spec.resample],
            warp_mem_limit=256,
        )
    return dest


def read_replacement(source, base, land: np.ndarray, file) -> tuple[np.ndarray, int]:
    """A config's dataset for a base layer (``[layers.NAME]``, pas toe of leg uit) on the grid
    of ``base`` (a DataArray of the grid): its values where it has data, the base layer's
    elsewhere. Returns (values, land cells left to the base layer).

    Refused with a :class:`LayerFileError` naming ``file`` and the key when it cannot be
    read, does not say which band, lies outside the grid, has values the layer cannot take,
    or leaves more than ``source.max_nodata_share`` of ``land`` (the land in the run's scope,
    (y, x) bool) without data: a dataset that does not cover the run would otherwise turn
    into whatever the missing cells happen to hold.
    """
    from rasterio.transform import array_bounds

    path, name = source.path, source.layer
    key = f"layers.{name}.path"
    if not path.is_file():
        raise LayerFileError(
            file, key, path, "not found", "give the path of a GeoTIFF, relative to the config file"
        )
    crs = base.rio.crs or CRS.from_epsg(28992)  # the project's grids are RD New
    transform = base.rio.transform()
    height, width = base.shape
    west, south, east, north = array_bounds(height, width, transform)
    target = np.dtype(base.dtype)
    work = np.float64 if target.itemsize > 2 else np.float32  # holds every value exactly
    out = np.full((height, width), np.nan, dtype=work)
    with reading(path, file, key), rasterio.open(path) as src:
        band = raster_band(src, source.band, path, file, key)
        check_overlap(src, crs, (west, south, east, north), path, file, key)
        if src.transform != transform or src.shape != (height, width) or src.crs != crs:
            logger.info("layer %s: %s resampled onto the grid (nearest cell)", name, path)
        reproject(
            rasterio.band(src, band),
            out,
            src_nodata=src.nodatavals[band - 1],
            dst_transform=transform,
            dst_crs=crs,
            dst_nodata=np.nan,
            init_dest_nodata=True,
            resampling=Resampling.nearest,
        )
    valid = np.isfinite(out)
    land = np.asarray(land, dtype=bool)
    n_land, missing = int(land.sum()), int((land & ~valid).sum())
    if n_land and (missing == n_land or missing > source.max_nodata_share * n_land):
        raise LayerFileError(
            file,
            key,
            path,
            f"has no data on {missing:,} of the {n_land:,} land cells of the "
            f"run ({missing / n_land:.1%}; at most {source.max_nodata_share:.1%} may lack it)",
            "check its nodata value and CRS label (gdalinfo), use a dataset that covers the "
            f"land of the run, or raise layers.{name}.max_nodata_share if the base layer may "
            "fill the gaps",
        )
    values = np.array(base.values)
    _check_values(out[valid & land], values[land], target, name, path, file, key)
    values[valid] = out[valid].astype(target)
    if missing:
        logger.info(
            "layer %s: %d land cells without data in %s keep the base layer's value",
            name,
            missing,
            path,
        )
    return values, missing


def _check_values(
    new: np.ndarray, old: np.ndarray, dtype: np.dtype, name: str, path: Path, file, key: str
) -> None:
    """Values the replaced layer can take: whole numbers in range for an integer layer, 0 or
    1 for a mask (an undeclared nodata value such as 255 would otherwise mark every cell)."""
    if dtype.kind not in "iub":
        return
    info = np.iinfo(dtype) if dtype.kind != "b" else None
    bad = new[(new != np.round(new)) | ((new < info.min) | (new > info.max) if info else False)]
    if len(bad):
        raise LayerFileError(
            file,
            key,
            path,
            f"holds values layer {name!r} ({dtype}) cannot take, e.g. {bad[0]:g}",
            f"write whole numbers from {info.min} to "
            f"{info.max}, with the cells without data as its nodata value",
        )
    if len(old) and ((old == 0) | (old == 1)).all():
        bad = new[(new != 0) & (new != 1)]
        if len(bad):
            raise LayerFileError(
                file,
                key,
                path,
                f"holds {bad[0]:g} on land, but {name!r} is a mask of 0 and 1",
                "write 1 where it applies and 0 elsewhere; "
                "declare the value of cells without data as the file's nodata "
                "(gdal_edit.py -a_nodata)",
            )


def raster_types(spec: LayerSpec, ctx: Context) -> tuple[str, float | None]:
    """The layer's dtype and nodata: the definition's where it gives them, else the file's."""
    info = ctx.once(("raster", spec.name), lambda: check_raster_alignment(spec, ctx))
    dtype = spec.dtype or info["dtype"]
    nodata = spec.nodata if spec.nodata is not None else info["nodata"]
    return dtype, nodata


def raster_tile(tile: Tile, spec: LayerSpec) -> np.ndarray:
    info = tile.ctx.once(("raster", spec.name), lambda: check_raster_alignment(spec, tile.ctx))
    dtype, nodata = raster_types(spec, tile.ctx)
    fill = (
        nodata
        if nodata is not None
        else (np.nan if np.issubdtype(np.dtype(dtype), np.floating) else 0)
    )
    w = tile.window
    window = ((w.row0, w.row0 + w.height), (w.col0, w.col0 + w.width))
    if spec.resample is None:
        file = spec.defined_in or tile.ctx.definition.path
        with reading(spec.path, file, f"layers.{spec.name}.path"), rasterio.open(spec.path) as src:
            data = src.read(info["band"], window=window)
        valid = (
            np.ones(data.shape, bool)
            if info["nodata"] is None
            else ~_is_nodata(data, info["nodata"])
        )
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

    file, key = spec.defined_in or ctx.definition.path, f"layers.{spec.name}.variable"
    try:
        ds = xr.open_dataset(spec.path)
    except (OSError, ValueError) as err:
        raise LayerFileError(
            file,
            f"layers.{spec.name}.path",
            spec.path,
            f"cannot be read as a UGRID NetCDF file ({err})",
            "replace it with a complete copy",
        ) from None
    with ds:
        if spec.variable not in ds:
            raise LayerFileError(
                file,
                key,
                spec.path,
                f"has no variable {spec.variable!r}",
                did_you_mean(spec.variable, list(ds.data_vars)),
            )
        var = ds[spec.variable]
        face_dim = var.dims[0]
        coords = [c for c in ds.coords if ds[c].dims == (face_dim,)]
        xs = [c for c in coords if c.endswith("_x")]
        ys = [c for c in coords if c.endswith("_y")]
        if not xs or not ys:
            raise LayerFileError(
                file,
                key,
                spec.path,
                f"variable {spec.variable!r} is not on mesh faces with *_x/*_y face coordinates",
                "name a face variable of the mesh",
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
