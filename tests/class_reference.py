"""The construction of the class keys before :mod:`engine.solve.class_kernels`, and of the
options near a cell's best, in numpy: the reference the kernels must match bit for bit.

Each key is a row of int64s (``np.packbits`` for the options, ``np.round`` for the
aggregated LP's differences, the float64 bits of the exact repair's), hashed column by
column and grouped with ``np.unique``.
"""

from __future__ import annotations

import numpy as np


def reference_values(problem, structure, prices, cells):
    """(M, O) the cells' values adjusted by the prices, -inf where not allowed."""
    adj = structure.adjustment(prices)
    values = problem.value[cells].astype(np.float64) + adj[structure.group[cells]]
    if structure.has_allowed:
        values[~structure.allowed[cells]] = -np.inf
    return values


def reference_near_best(problem, structure, prices, cells, window):
    values = reference_values(problem, structure, prices, cells)
    best = values.max(axis=1)
    return np.isfinite(values) & (values >= (best - window)[:, None])


def reference_key(problem, structure, cells, options, step):
    values = problem.value[cells].astype(np.float64)
    lead = np.argmax(options, axis=1)
    differences = np.where(options, values - values[np.arange(len(cells)), lead][:, None], 0.0)
    whole = (
        np.round(differences / step).astype(np.int64) if step > 0 else differences.view(np.int64)
    )
    packed = np.packbits(options, axis=1, bitorder="little")
    padded = np.zeros((len(options), -(-packed.shape[1] // 8) * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    bits = padded.view(np.int64)
    if step == 0:
        group = structure.group[cells].astype(np.int64)
        return np.concatenate([group[:, None], bits, whole], axis=1, dtype=np.int64)
    zones, reaches = structure.claim_zones
    reached = (options[:, :, None] & reaches[None]).any(axis=1)
    zones = np.where(reached, zones[structure.group[cells]], -1)
    return np.concatenate([zones, bits, whole], axis=1, dtype=np.int64)


def reference_hash(key):
    multipliers = np.random.default_rng(0).integers(1, 2**63, size=key.shape[1], dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = key.view(np.uint64) * (multipliers | np.uint64(1))
        mixed ^= mixed >> np.uint64(29)
        return np.bitwise_xor.reduce(mixed * np.uint64(0xBF58476D1CE4E5B9), axis=1)


def reference_classes(hashes):
    """First cell of each class and each cell's class, classes in the order of first cells."""
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse.ravel()]
