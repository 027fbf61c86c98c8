"""Grids: raster layers of a region in one CRS, opened as an ``xarray.Dataset``.

    from engine.grid import open_grid
    ds = open_grid("nl", resolution=250)     # built on first use, then from the cache
    ds.land, ds.province, ds.elevation, ...  # (y, x), EPSG:28992, dask-chunked

A grid is defined by a TOML file (``grids/nl.toml``, or a province's own); see
``engine.grid.definition`` for what it may say.
"""

from engine.grid.build import (
    build_grid,
    cache_folder,
    cache_root,
    compute_window,
    grid_folder,
    open_folder,
    open_grid,
    read_once,
)
from engine.grid.definition import GridDefinition, LayerSpec, load_definition
from engine.grid.tiles import GridGeometry, Window

__all__ = [
    "open_grid",
    "open_folder",
    "load_definition",
    "compute_window",
    "build_grid",
    "grid_folder",
    "cache_folder",
    "cache_root",
    "read_once",
    "GridDefinition",
    "LayerSpec",
    "GridGeometry",
    "Window",
]
