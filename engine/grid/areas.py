"""Connected areas of a mask as an index layer: each deep polder on its own, named after the
municipality that holds most of it, so that a rule can act per polder (L188: a share *of each
deep polder*, deepest first) and a report can name it.

The areas are found once over the whole context extent at the build's resolution (or a
coarser ``finest_resolution``), so an area does not depend on the tiling and a province
window sees the national grid's areas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from engine.grid.definition import LayerSpec
from engine.grid.demo import GridField, context_layers, params_key
from engine.grid.layers import derivation
from engine.grid.tiles import Context, Tile


def _area_field(ctx: Context, p: dict[str, Any]) -> GridField:
    mask_layer, unit_layer = p["mask_layer"], p["name_layer"]
    res = max(ctx.geometry.res, float(p.get("finest_resolution", ctx.geometry.res)))
    field = context_layers(ctx, [mask_layer, unit_layer], res)
    mask = field.values.pop(mask_layer) != 0
    units = field.values.pop(unit_layer).astype(np.int64)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    area_ha = np.bincount(labels.ravel(), minlength=n + 1)[1:] * (field.geometry.res**2 / 1e4)
    keep = area_ha >= float(p.get("min_area_ha", 0.0))
    # Areas in raster-scan order of their first cell: the same ids whatever the tiling.
    index = np.full(n + 1, -1, np.int32)
    index[1:][keep] = np.arange(int(keep.sum()), dtype=np.int32)
    field.values["index"] = index[labels]
    field.attrs["unit"] = _majority_unit(labels, units, n)[keep]
    field.attrs["area_ha"] = [round(float(a), 1) for a in area_ha[keep]]
    return field


def _majority_unit(labels: np.ndarray, units: np.ndarray, n: int) -> np.ndarray:
    """Per area (1..n), the unit index holding most of its cells; -1 where none does."""
    inside = (labels > 0) & (units >= 0)
    n_units = int(units.max(initial=-1)) + 1
    counts = np.bincount(
        labels[inside] * max(n_units, 1) + units[inside], minlength=(n + 1) * max(n_units, 1)
    ).reshape(n + 1, max(n_units, 1))
    best = counts.argmax(axis=1)
    return np.where(counts.max(axis=1) > 0, best, -1)[1:]


def _area_names(units: np.ndarray, unit_names: list[str]) -> list[str]:
    """An area after its unit; the second and later areas of one unit numbered (2), (3)..."""
    seen: dict[str, int] = {}
    out = []
    for u in units:
        base = unit_names[u] if 0 <= u < len(unit_names) else "?"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base} ({seen[base]})")
    return out


@derivation("connected_areas")
def connected_areas(tile: Tile, spec: LayerSpec) -> np.ndarray:
    """0.. for each connected (8-neighbour) area of ``mask_layer`` of at least
    ``min_area_ha``, in raster-scan order; -1 elsewhere. attrs ``names`` (after the
    ``name_layer`` unit holding most of the area) and ``area_ha``."""
    p = spec.params
    field = tile.ctx.once(("areas", params_key(p)), lambda: _area_field(tile.ctx, p))
    # The unit layer is an input, so its names are in this build's attrs by now.
    unit_names = tile.ctx.layer_attrs.get(p["name_layer"], {}).get("names", [])
    tile.ctx.layer_attrs.setdefault(spec.name, {}).update(
        names=_area_names(field.attrs["unit"], unit_names), area_ha=field.attrs["area_ha"]
    )
    return np.where(tile["land"] == 1, field.take("index", tile), -1).astype(spec.dtype)
