"""Suitability recipes -> ``v[i, o]``, the value of option o in cell i per hectare.

    v[i, o] = sum_t weight_t * transform_t(layer_t[i])  -  conversion_cost_o(land_cover[i])
    v[i, keep] = 0;  every other option also pays the assumption ``land_take_cost`` times
                     its recipe's ``land_take_share`` (the share of the hectare that changes)

Rules (penalties, ladders) are added on top by :mod:`engine.rules`. The per-cell work is one
fused Numba pass per term over the cells (no temporaries at 25 m), the land-cover cost one
gather.
"""

from __future__ import annotations

import numba
import numpy as np

from engine import progress
from engine.config import Config, Recipe
from engine.rules import Cells, category_names

__all__ = ["option_values", "recipe_values"]

_KIND = {"value": 0, "linear": 1, "decay": 2, "above": 3, "below": 4}


@numba.njit(parallel=True, cache=True)
def _add_term(out, x, kind, weight, a, b):
    """out += weight * transform(x); NaN contributes nothing."""
    for i in numba.prange(x.shape[0]):
        v = x[i]
        if v != v:
            continue
        if kind == 0:
            t = v
        elif kind == 1:  # linear from a (0) to b (1), clipped
            t = (v - a) / (b - a)
            t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
        elif kind == 2:  # decay with scale a
            t = np.exp(-v / a)
        elif kind == 3:
            t = 1.0 if v >= a else 0.0
        else:
            t = 1.0 if v <= a else 0.0
        out[i] += weight * t


def recipe_values(recipe: Recipe, cells: Cells, classes: list[str] | None) -> np.ndarray:
    """One option's column of ``v`` (float32)."""
    out = np.zeros(cells.n, dtype=np.float32)
    for t in recipe.terms:
        x = cells.layer_f32(t.layer)
        kind = _KIND[t.transform]
        if kind == 1:
            a, b = t.low, t.high
        elif kind == 2:
            a, b = t.scale, 0.0
        elif kind in (3, 4):
            a, b = t.threshold, 0.0
        else:
            a, b = 0.0, 0.0
        _add_term(out, x, kind, np.float32(t.weight), np.float32(a), np.float32(b))
    if classes is not None:
        cost = np.full(max(len(classes), 256), recipe.default_cost, dtype=np.float32)
        for name, c in recipe.conversion_cost.items():
            cost[classes.index(name)] = c
        out -= cost[cells.layer("land_cover").astype(np.uint8)]  # 256 entries: any uint8
    elif recipe.default_cost:
        out -= np.float32(recipe.default_cost)
    return out


def option_values(config: Config, cells: Cells) -> np.ndarray:
    """``v`` option-major, (O, N) float32, from the recipes; keep is 0.

    The rows are a view of a cell-major (N, O) array, the layout the problem holds: its
    transpose is then no copy (60 bytes a cell at once at the compile's peak, 3.4 GB at
    25 m), and the rules' updates per option, strided, cost less than that copy did."""
    classes = category_names(cells.ds["land_cover"]) if cells.has("land_cover") else None
    # The assumption land_take_cost: what changing a hectare costs whatever it becomes, so that
    # options go where targets need them rather than wherever they score above zero.
    take = config.assumptions.get("land_take_cost")
    take = np.float32(take.value if take is not None else 0.0)
    v = np.zeros((cells.n, len(config.options)), dtype=np.float32).T
    for o, name in enumerate(config.options):
        if name in config.recipes:
            recipe = config.recipes[name]
            row = recipe_values(recipe, cells, classes)
            row -= take * np.float32(recipe.land_take_share)
            v[o] = row
        progress.advance(o + 1, len(config.options), "option values")
    return v
