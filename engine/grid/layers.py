"""Dispatch a layer to its source reader or derivation, and the registry of derivations.

A derivation is a function ``f(tile, spec) -> ndarray`` registered under a name that grid
definitions use as ``function = "<name>"``. It may read only the layers it lists as inputs
(``tile[name]``), the tile's coordinates and things prepared once for the build.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.errors import RuimtepuzzelError
from engine.grid.definition import LayerSpec
from engine.grid.sources import raster_tile, raster_types, ugrid_tile, vector_tile
from engine.grid.tiles import Context, Tile

__all__ = ["DERIVATIONS", "derivation", "compute", "types"]

Derivation = Callable[[Tile, LayerSpec], np.ndarray]
DERIVATIONS: dict[str, Derivation] = {}


def derivation(name: str) -> Callable[[Derivation], Derivation]:
    def register(fn: Derivation) -> Derivation:
        DERIVATIONS[name] = fn
        return fn

    return register


def _derived_tile(tile: Tile, spec: LayerSpec) -> np.ndarray:
    _load_builtin()
    try:
        fn = DERIVATIONS[spec.function]
    except KeyError:
        raise RuimtepuzzelError(
            f"layer {spec.name!r} ({spec.defined_in}): no derivation named {spec.function!r}; "
            f"the known ones are {sorted(DERIVATIONS)}"
        ) from None
    # The function sees only its declared inputs, so the build order stays honest.
    view = Tile(tile.ctx, tile.window, {n: tile.layers[n] for n in spec.inputs})
    return fn(view, spec)


_READERS = {
    "raster": raster_tile,
    "vector": vector_tile,
    "ugrid": ugrid_tile,
    "derived": _derived_tile,
}


def types(ctx: Context, spec: LayerSpec) -> tuple[str, float | None]:
    """(dtype, nodata) of the layer as it will be written."""
    if spec.source == "raster":
        return raster_types(spec, ctx)
    nodata = spec.nodata
    if nodata is None and np.issubdtype(np.dtype(spec.dtype), np.floating):
        nodata = float("nan")
    return spec.dtype, nodata


def compute(tile: Tile, spec: LayerSpec) -> np.ndarray:
    out = _READERS[spec.source](tile, spec)
    dtype, _ = types(tile.ctx, spec)
    if out.shape != tile.shape:
        raise AssertionError(f"layer {spec.name!r} made shape {out.shape}, tile is {tile.shape}")
    return np.ascontiguousarray(out, dtype=dtype)


def _load_builtin() -> None:
    # The demo derivations register themselves on import; imported lazily so that reading a
    # plain GeoTIFF grid does not pay for them.
    from engine.grid import areas, demo, nature, places  # noqa: F401
