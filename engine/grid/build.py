"""Build a grid tile by tile into a folder of GeoTIFFs, cache it, and open it as a Dataset.

The cache folder holds one tiled, compressed GeoTIFF per layer and ``grid.json`` with the
metadata. Its name carries a key: the hash of the definition (with the hashes of its source
files), the resolution, the package version and the grid code, so a change to any of them
builds anew. A build writes into a temporary folder and renames it into place, so a reader
never sees half a grid. ``grid.json`` records the size of every file: a cache entry that was
damaged later (a file cut short, removed or overwritten, a broken ``grid.json``) is moved
aside and built again, with a log line that says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import xarray as xr

from engine import caches
from engine.config.validation import did_you_mean
from engine.errors import RuimtepuzzelError
from engine.grid import layers as layer_functions
from engine.grid.definition import GridDefinition, GridDefinitionError, load_definition
from engine.grid.tiles import Context, GridGeometry, Tile, Window
from engine.progress import advance

logger = logging.getLogger(__name__)

__all__ = [
    "cache_root",
    "cache_folder",
    "compute_window",
    "build_grid",
    "open_grid",
    "open_folder",
    "grid_folder",
    "read_once",
    "GridFolderError",
]

META_FILE = "grid.json"
FORMAT_VERSION = 1


class GridFolderError(RuimtepuzzelError):
    """A folder given as a built grid that is not one, or is damaged."""


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("ruimtepuzzel")
    except Exception:  # not installed (running from a checkout): the source hash still counts
        return "0+unknown"


# Modules that only read finished grids; changing them must not invalidate the cache.
_NOT_BUILD_CODE = {"export.py", "__init__.py"}


def _code_hash() -> str:
    # The grid code itself is part of the key: a fix in a layer function must not be hidden
    # behind an old cache while the version number stays the same during development.
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.name in _NOT_BUILD_CODE:
            continue
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_root() -> Path:
    """``grids/`` of the package's cache (:func:`engine.caches.cache_root`)."""
    return caches.cache_root() / "grids"


def cache_key(definition: GridDefinition, resolution: float) -> str:
    doc = {
        "format": FORMAT_VERSION,
        "definition": definition.fingerprint(),
        "resolution": float(resolution),
        "version": _package_version(),
        "code": _code_hash(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def cache_folder(definition: GridDefinition, resolution: float, root: Path | None = None) -> Path:
    root = Path(root) if root is not None else cache_root()
    # The key is content only (definition, source files, code): every checkout and every
    # installation of the same grid shares one build, wherever its files live.
    return root / f"{definition.name}-{resolution:g}m-{cache_key(definition, resolution)[:16]}"


# --------------------------------------------------------------------------- computing


def _needed(definition: GridDefinition, wanted: list[str] | None) -> list[str]:
    order = definition.order
    if wanted is None:
        return order
    unknown = sorted(set(wanted) - set(order))
    if unknown:
        raise GridDefinitionError(
            definition.path,
            "layers",
            f"grid {definition.name!r} has no layer(s) {unknown}",
            did_you_mean(unknown[0], order),
        )
    need = definition.closure(wanted)
    return [n for n in order if n in need]


def _compute_tile(ctx: Context, window: Window, names: list[str]) -> Tile:
    tile = Tile(ctx, window)
    for name in names:
        spec = ctx.definition.layers[name]
        tile.layers[name] = layer_functions.compute(tile, spec)
    return tile


def compute_window(
    grid: str | os.PathLike | GridDefinition,
    resolution: float | None = None,
    window: Window | tuple[int, int, int, int] | None = None,
    layers: list[str] | None = None,
    *,
    context: Context | None = None,
) -> dict[str, np.ndarray]:
    """Compute layers (and what they need) for one window, in memory, without the cache.

    ``window`` is (row0, col0, height, width) in cells; the default is the whole grid. Meant
    for small windows, tests and checks; ``open_grid`` is the way to a whole grid.
    """
    definition = grid if isinstance(grid, GridDefinition) else load_definition(grid)
    resolution = definition.check_resolution(resolution or definition.default_resolution)
    own = context is None
    ctx = context or Context(definition, GridGeometry.of(definition, resolution))
    if window is None:
        window = ctx.geometry.full()
    elif not isinstance(window, Window):
        window = Window(*window)
    try:
        tile = _compute_tile(ctx, window, _needed(definition, layers))
    finally:
        if own:
            ctx.close()
    return {n: tile.layers[n] for n in (layers or tile.layers)}


def _layer_attrs(ctx: Context, name: str) -> dict[str, Any]:
    spec = ctx.definition.layers[name]
    attrs = spec.metadata()
    attrs.update(ctx.layer_attrs.get(name, {}))
    return attrs


def _profile(geometry: GridGeometry, dtype: str, nodata: float | None) -> dict[str, Any]:
    block = 256
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": geometry.width,
        "height": geometry.height,
        "count": 1,
        "dtype": dtype,
        "crs": geometry.crs,
        "transform": geometry.transform,
        "tiled": geometry.width >= block and geometry.height >= block,
        "compress": "deflate",
        "zlevel": 1,
        "predictor": 2 if np.issubdtype(np.dtype(dtype), np.integer) else 3,
        "BIGTIFF": "IF_SAFER",
        "nodata": nodata,
    }
    if profile["tiled"]:
        profile.update(blockxsize=block, blockysize=block)
    return profile


def build_grid(
    definition: GridDefinition,
    resolution: float,
    dest: Path,
    *,
    tile_size: int | None = None,
    workers: int | None = None,
) -> Path:
    """Build every layer of the grid into the folder ``dest`` (written atomically). The
    tiles done go to the active progress display (:mod:`engine.progress`)."""
    resolution = definition.check_resolution(resolution)
    geometry = GridGeometry.of(definition, resolution)
    with Context(definition, geometry) as ctx:
        return _build(ctx, dest, tile_size, workers)


def _build(ctx: Context, dest: Path, tile_size: int | None, workers: int | None) -> Path:
    import dask

    definition, geometry, resolution = ctx.definition, ctx.geometry, ctx.geometry.res
    names = definition.order
    types = {n: layer_functions.types(ctx, definition.layers[n]) for n in names}

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    started = time.perf_counter()
    windows = geometry.windows(tile_size or definition.tile_size)
    write_lock = threading.Lock()
    # Land cells with data, per raster layer: a file with none (its nodata value or CRS
    # wrong) must not become a grid.
    rasters = [n for n in names if definition.layers[n].source == "raster"]
    covered = dict.fromkeys(rasters, 0)
    land_cells = [0]
    tiles_done = [0]
    try:
        with ExitStack() as stack:
            files = {
                n: stack.enter_context(
                    rasterio.open(tmp / f"{n}.tif", "w", **_profile(geometry, *types[n]))
                )
                for n in names
            }

            def process(window: Window) -> None:
                tile = _compute_tile(ctx, window, names)
                rw = (
                    (window.row0, window.row0 + window.height),
                    (window.col0, window.col0 + window.width),
                )
                land = (tile.layers["land"] != 0) if "land" in tile.layers else True
                with write_lock:  # one GDAL handle per file: writes take turns
                    for n in names:
                        files[n].write(tile.layers[n], 1, window=rw)
                    land_cells[0] += int(np.broadcast_to(land, window.shape).sum())
                    for n in rasters:
                        covered[n] += int((_has_data(tile.layers[n], types[n][1]) & land).sum())
                    tiles_done[0] += 1
                    advance(tiles_done[0], len(windows), "tiles")

            # The first tile alone, so that everything prepared once (vector files, base
            # fields) is made before the threads start and any error surfaces plainly.
            process(windows[0])
            tasks = [dask.delayed(process)(w) for w in windows[1:]]
            dask.compute(*tasks, scheduler="threads", num_workers=workers or os.cpu_count())
            _check_coverage(definition, covered, land_cells[0])

            for n in names:
                attrs = _layer_attrs(ctx, n)
                files[n].update_tags(**{k: _tag(v) for k, v in attrs.items()})
                files[n].set_band_description(1, attrs["long_name"])
                files[n].set_band_unit(1, attrs["units"])
        meta = {
            "format": FORMAT_VERSION,
            "grid_name": definition.name,
            "title": definition.title,
            "resolution": resolution,
            "crs": definition.crs,
            "transform": list(geometry.transform)[:6],
            "shape": list(geometry.shape),
            "credits": list(definition.credits),
            "definition": str(definition.path),
            "key": cache_key(definition, resolution),
            "package_version": _package_version(),
            "build_seconds": round(time.perf_counter() - started, 2),
            "layers": {
                n: {
                    "file": f"{n}.tif",
                    "dtype": types[n][0],
                    "nodata": _json_nodata(types[n][1]),
                    "size": (tmp / f"{n}.tif").stat().st_size,
                    "attrs": _layer_attrs(ctx, n),
                }
                for n in names
            },
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False))
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / META_FILE).is_file():  # not a finished twin built meanwhile
                raise
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _has_data(values: np.ndarray, nodata: float | None) -> np.ndarray:
    if nodata is None:
        return np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
    if np.isnan(nodata):
        return ~np.isnan(values)
    return values != nodata


def _check_coverage(definition: GridDefinition, covered: dict, land_cells: int) -> None:
    from engine.grid.sources import LayerFileError

    for name, cells in covered.items():
        if land_cells and not cells:
            spec = definition.layers[name]
            raise LayerFileError(
                spec.defined_in or definition.path,
                f"layers.{name}.path",
                spec.path,
                f"has no data on any of the {land_cells:,} land cells of the grid",
                "check its nodata value and CRS label (gdalinfo): the file is all nodata "
                "where the grid has land",
            )
        share = 1 - cells / land_cells if land_cells else 0.0
        if share > 0.05:
            logger.warning(
                "layer %s has no data on %.0f%% of the land cells of grid %s",
                name,
                100 * share,
                definition.name,
            )


def _tag(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _json_nodata(nodata: float | None) -> float | str | None:
    if nodata is None:
        return None
    return "nan" if np.isnan(nodata) else nodata


# --------------------------------------------------------------------------- opening


def grid_folder(
    name_or_path: str | os.PathLike | GridDefinition,
    resolution: float | None = None,
    *,
    rebuild: bool = False,
    cache_dir: os.PathLike | None = None,
) -> Path:
    """The cache folder of a grid at a resolution, built first if it is not there."""
    definition = (
        name_or_path if isinstance(name_or_path, GridDefinition) else load_definition(name_or_path)
    )
    resolution = definition.check_resolution(resolution or definition.default_resolution)
    folder = cache_folder(definition, resolution, Path(cache_dir) / "grids" if cache_dir else None)
    if rebuild and folder.exists():
        _discard(folder)
    if folder.exists():
        problem = damage(folder)
        if problem is None:
            return folder
        logger.warning("the cached grid %s is damaged (%s): building it again", folder, problem)
        _discard(folder)
    logger.info(
        "building grid %s at %g m into %s (once; later runs read the cache)",
        definition.name,
        resolution,
        folder,
    )
    build_grid(definition, resolution, folder)
    _remove_stale(folder)
    return folder


def damage(folder: Path, *, sizes: bool = True) -> str | None:
    """What is wrong with a built grid folder, or None when it is whole: ``grid.json``
    readable and complete, every layer file there and, with ``sizes``, of the size the build
    wrote (a stat per file: cheap enough for every open; an exported folder holds other
    files under the same ``grid.json``)."""
    meta_path = Path(folder) / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"{META_FILE} cannot be read: {err}"
    needed = ("grid_name", "resolution", "crs", "transform", "shape", "layers", "key")
    if (
        not isinstance(meta, dict)
        or any(k not in meta for k in needed)
        or not isinstance(meta["layers"], dict)
    ):
        return f"{META_FILE} is incomplete"
    for name, layer in meta["layers"].items():
        if not isinstance(layer, dict) or "file" not in layer or "attrs" not in layer:
            return f"{META_FILE} is incomplete at layer {name!r}"
        path = Path(folder) / layer["file"]
        if not path.is_file():
            return f"{layer['file']} is missing"
        size = layer.get("size") if sizes else None
        if size is not None and path.stat().st_size != size:
            return f"{layer['file']} has {path.stat().st_size} bytes, the build wrote {size}"
    return None


def _discard(folder: Path) -> None:
    """Move a cache entry aside, then remove it: a reader never finds half of it in place."""
    aside = folder.parent / f".{folder.name}.discarded-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(folder, aside)
    except FileNotFoundError:  # another process got there first
        return
    shutil.rmtree(aside, ignore_errors=True)


STALE_AFTER_S = 24 * 3600


def _remove_stale(folder: Path) -> None:
    """Drop older builds of the same definition and resolution (other keys: no longer hit)
    once they are a day old. Not at once: another process may still be reading one lazily
    (a long sweep started before the upgrade), and its reads open the files chunk by chunk."""
    prefix = folder.name.rsplit("-", 1)[0] + "-"
    now = time.time()
    for other in folder.parent.glob(prefix + "*"):
        if other == folder or not other.is_dir() or other.name.startswith("."):
            continue
        meta = other / META_FILE
        built = meta.stat().st_mtime if meta.is_file() else other.stat().st_mtime
        if now - built > STALE_AFTER_S:
            shutil.rmtree(other, ignore_errors=True)


# GDAL's block cache while the engine reads a grid's layers. A grid's tiles (256 x 256) lie
# inside its dask chunks (1024 by default), so every tile is read once and a cache serves
# only the reads under way: a few tiles a thread.
READ_CACHE_BYTES = 64 * 2**20


@contextmanager
def read_once():
    """Read grid layers without GDAL keeping the blocks: its cache (5 % of the RAM by
    default, 1.2 GB on 24 GiB) holds every block read while the file is open, and the
    engine's grid files stay open for the run, so the cache filled to its limit and stayed
    there, a tenth of a 25 m run's peak. The limit is GDAL's and process-wide; it is put
    back when the block ends."""
    with rasterio.Env(GDAL_CACHEMAX=READ_CACHE_BYTES):
        yield


def open_grid(
    name_or_path: str | os.PathLike | GridDefinition,
    resolution: float | None = None,
    *,
    chunks: int | None = None,
    rebuild: bool = False,
    cache_dir: os.PathLike | None = None,
) -> xr.Dataset:
    """Open a grid as an ``xarray.Dataset`` (dims y, x; dask-chunked), building it first
    when the cache does not have it.

    ``name_or_path`` is a grid name in ``grids/`` (``"nl"``) or a definition .toml;
    ``resolution`` in metres (the definition's default when omitted).
    """
    folder = grid_folder(name_or_path, resolution, rebuild=rebuild, cache_dir=cache_dir)
    return open_folder(folder, chunks=chunks)


def open_folder(folder: os.PathLike, *, chunks: int | None = None) -> xr.Dataset:
    """Open a built grid folder (``grid.json`` plus one GeoTIFF per layer)."""
    import rioxarray

    folder = Path(folder)
    if not (folder / META_FILE).is_file():
        raise GridFolderError(
            f"{folder}: not a built grid, it has no {META_FILE}; give a "
            "grid name (nl), a grid definition (.toml), or the folder of "
            "'ruimtepuzzel grid build' or 'grid export'"
        )
    problem = damage(folder, sizes=False)
    if problem is not None:
        raise GridFolderError(
            f"{folder}: the grid there is damaged ({problem}); build or export it again"
        )
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    chunk = int(chunks or 1024)
    variables = {}
    for name, layer in meta["layers"].items():
        da = rioxarray.open_rasterio(
            folder / layer["file"],
            chunks={"y": chunk, "x": chunk},
            mask_and_scale=False,
            lock=False,
            cache=False,
        ).squeeze("band", drop=True)
        da = da.drop_vars("spatial_ref", errors="ignore")
        da.attrs = dict(layer["attrs"])
        da.encoding.pop("_FillValue", None)
        nodata = layer["nodata"]
        if nodata is not None:
            da = da.rio.write_nodata(float(nodata) if nodata == "nan" else nodata, encoded=False)
        variables[name] = da
    ds = xr.Dataset(variables)
    ds.attrs = {
        "grid_name": meta["grid_name"],
        "title": meta.get("title", ""),
        "resolution": meta["resolution"],
        "credits": "\n".join(meta["credits"]),
        "cache_key": meta["key"],
        "package_version": meta["package_version"],
    }
    ds = ds.rio.write_crs(meta["crs"]).rio.write_transform(rasterio.Affine(*meta["transform"]))
    ds.encoding["source_folder"] = str(folder)
    return ds
