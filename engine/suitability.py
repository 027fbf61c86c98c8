"""Suitability recipes -> ``v[i, o]``, the value of option o in cell i per hectare.

    v[i, o] = sum_t weight_t * transform_t(layer_t[i])  -  conversion_cost_o(land_cover[i])
    v[i, keep] = 0;  every other option also pays the assumption ``land_take_cost`` times
                     its recipe's ``land_take_share`` (the share of the hectare that changes)

Rules (penalties, ladders) are added on top by :mod:`engine.rules`. The per-cell work is one
Numba pass over the cells on every core: each block of cells takes every option's terms, its
land-cover cost and its land take while its rows of ``v`` are in cache, and ``v`` is written
cell-major, the layout the problem holds.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numba
import numpy as np

from engine import progress
from engine.config import Config
from engine.paging import file_backed_zeros, release_pages
from engine.rules import Cells, category_names

__all__ = ["option_values", "add_to_options", "add_to_values", "recipe_layers"]

log = logging.getLogger(__name__)

_KIND = {"value": 0, "linear": 1, "decay": 2, "above": 3, "below": 4}
# Cells per block: a block's rows of v (15 options: 240 kB) stay in cache while its terms are
# added one after the other.
_BLOCK = 4096
_LAYERS = 16
# Cells per slice of the values (a multiple of _BLOCK).
_SLICE = 1 << 21


@numba.njit(parallel=True, cache=True)
def _option_values(out, layers, term, cover, cost, take, has_recipe):
    """``out`` (N, O) float32, zero: every term of ``term`` added, then per option of
    ``has_recipe`` its land-cover cost and its land take subtracted.

    ``term`` (T, 6) float64 rows ``option, layer, kind, weight, a, b`` in each option's term
    order; ``layers`` a tuple of the float32 layers it names; ``cover`` (N,) uint8 indexes ``cost``
    (O, >= 256), or is empty where every cell pays column 0. Each value gets the operations,
    in the order and the float32 roundings, of one pass per term over an option's column:
    ``out += weight * transform(x)`` (NaN adds nothing), ``out -= cost``, ``out -= take``."""
    n, n_options = out.shape
    for block in numba.prange((n + _BLOCK - 1) // _BLOCK):
        lo = block * _BLOCK
        hi = min(lo + _BLOCK, n)
        for k in range(term.shape[0]):
            o = int(term[k, 0])
            x = layers[int(term[k, 1])]
            kind = int(term[k, 2])
            weight = np.float32(term[k, 3])
            a = np.float32(term[k, 4])
            b = np.float32(term[k, 5])
            for i in range(lo, hi):
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
                out[i, o] += weight * t
        for i in range(lo, hi):
            c = cover[i] if len(cover) else 0
            for o in range(n_options):
                if has_recipe[o]:
                    out[i, o] -= cost[o, c]
                    out[i, o] -= take[o]


@numba.njit(parallel=True, cache=True)
def add_to_options(value, options, add, subtract):
    """``value[i, o] += add[i]`` (``-=`` when ``subtract``) for the ``options`` of each cell
    of the cell-major ``value`` (N, O): one pass over the cells on every core, each cell's
    row touched once, where a pass per option over the option-major view touched every row
    of the array once per option. The float32 operations of that pass, so the same bits."""
    for i in numba.prange(value.shape[0]):
        a = add[i]
        for o in options:
            if subtract:
                value[i, o] -= a
            else:
                value[i, o] += a


def add_to_values(value, options, add, subtract) -> None:
    """:func:`add_to_options` slice by slice of cells: the pages of paged values
    (:mod:`engine.paging`) go after each slice, so a rule holds a slice's, not the grid's."""
    for lo in range(0, value.shape[0], _SLICE):
        part = slice(lo, lo + _SLICE)
        add_to_options(value[part], options, add[part], subtract)
        release_pages(value[part])


def _parameters(term, kind: int) -> tuple:
    if kind == 1:
        return term.low, term.high
    if kind == 2:
        return term.scale, 0.0
    if kind in (3, 4):
        return term.threshold, 0.0
    return 0.0, 0.0


def recipe_layers(config: Config) -> list[str]:
    """The grid layers the values read: the recipes' and the land cover."""
    out = ["land_cover"]
    for recipe in config.recipes.values():
        out += [t.layer for t in recipe.terms]
    return list(dict.fromkeys(out))


def option_values(config: Config, cells: Cells, paged_in: Path | None = None) -> np.ndarray:
    """``v`` option-major, (O, N) float32, from the recipes; keep is 0.

    The rows are a view of a cell-major (N, O) array, the layout the problem holds: its
    transpose is then no copy (60 bytes a cell at once at the compile's peak, 3.4 GB at
    25 m). ``paged_in``: a folder on disk for that array's file, paged by the kernel
    (:mod:`engine.paging`); None: in memory."""
    classes = category_names(cells.ds["land_cover"]) if cells.has("land_cover") else None
    # The assumption land_take_cost: what changing a hectare costs whatever it becomes, so that
    # options go where targets need them rather than wherever they score above zero.
    take_cost = config.assumptions.get("land_take_cost")
    take_cost = np.float32(take_cost.value if take_cost is not None else 0.0)
    n_options = len(config.options)
    cost = np.zeros((n_options, max(len(classes or ()), 256)), dtype=np.float32)
    take = np.zeros(n_options, dtype=np.float32)
    has_recipe = np.zeros(n_options, dtype=bool)  # without one the value stays 0 (keep)
    layers: list[str] = []
    layer_of: dict[str, int] = {}
    terms = []
    for o, name in enumerate(config.options):
        recipe = config.recipes.get(name)
        if recipe is None:
            continue
        for t in recipe.terms:
            if t.layer not in layer_of:
                layer_of[t.layer] = len(layers)
                layers.append(t.layer)
            kind = _KIND[t.transform]
            a, b = _parameters(t, kind)
            # float32 parameters, as the kernel's float32 arithmetic takes them.
            terms.append((o, layer_of[t.layer], kind, *np.float32([t.weight, a, b])))
        cost[o] = recipe.default_cost
        for cls, c in recipe.conversion_cost.items():
            cost[o, classes.index(cls)] = c
        take[o] = take_cost * np.float32(recipe.land_take_share)
        has_recipe[o] = True
    # A tuple of a fixed length (16, or the next power of two), padded: the kernel is compiled
    # once for it and loaded from the cache after, whatever the config; a numba typed list
    # compiled its own methods in every process (1.4 s at 100 m).
    arity = max(_LAYERS, 1 << (len(layers) - 1).bit_length())
    padding = [np.zeros(0, dtype=np.float32)] * (arity - len(layers))
    cover = (
        cells.layer("land_cover").astype(np.uint8, copy=False)  # cost's 256 columns: any uint8
        if classes is not None
        else np.zeros(0, dtype=np.uint8)
    )
    shape = (cells.n, n_options)
    if paged_in is None:
        v = np.zeros(shape, dtype=np.float32)
    else:
        v = file_backed_zeros(shape, np.float32, paged_in)
    table = np.array(terms, dtype=np.float64).reshape(len(terms), 6)
    # Slice by slice of cells: the float32 copies of the byte layers are a slice's, not the
    # grid's (24 bytes a cell for the national recipes, 1.35 GB at 25 m).
    progress.advance(0, cells.n, "cells valued")  # the rate from here, not the stage's start
    for lo in range(0, cells.n, _SLICE):
        part = slice(lo, min(lo + _SLICE, cells.n))
        as_f32 = [np.ascontiguousarray(cells.layer(n)[part], dtype=np.float32) for n in layers]
        part_cover = np.ascontiguousarray(cover[part]) if len(cover) else cover
        _option_values(v[part], (*as_f32, *padding), table, part_cover, cost, take, has_recipe)
        release_pages(v[part])  # paged values: a slice's pages at a time, not the grid's
        progress.advance(part.stop, cells.n, "cells valued")
    log.debug(
        "option values: %d cells, %d terms over %d layers", cells.n, len(terms), len(layer_of)
    )
    return v.T
