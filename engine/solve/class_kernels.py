"""The keys of interchangeable cells, hashed in one pass per cell (numba).

A class of cells (:class:`engine.solve.fast._Classes`) is one column per option in a
repair LP. Cells belong to one class when their keys are equal:

- the exact repair: the cell's group, its free options as bits, and the differences of its
  values from its lead option's (the first free one), as the bits of those float64s;
- the aggregated LP: per family of claims the id of the rows the cell's options meet
  (:attr:`engine.solve.dual.DualStructure.claim_zones`, -1 for a family none of them
  delivers to), the options within the window of the cell's best under the prices as bits,
  and the differences rounded to multiples of a step.

Each key is hashed to 64 bits and cells are grouped by the hashes in the order of their
first cell. The key is built per cell in a buffer of a few numbers and hashed there: a
national grid's keys at once would be gigabytes, and numpy's per-block temporaries made the
hashing run at the speed of memory on one core.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.solve.kernels import BLOCK, _BySize, n_blocks, near_best_into

__all__ = [
    "key_length",
    "hash_multipliers",
    "aggregated_hashes",
    "repair_hashes",
    "repair_keys",
    "keys_agree",
    "group_by_hash",
    "option_codes",
    "CLASS_KERNELS",
]

_FINAL = np.uint64(0xBF58476D1CE4E5B9)
_SHIFT = np.uint64(29)


def key_length(n_options: int, n_leading: int) -> int:
    """Numbers in a key: ``n_leading`` (the group, or one per family of claims), the
    options' bits in 64-bit words, one difference per option."""
    return n_leading + -(-n_options // 64) + n_options


def hash_multipliers(length: int) -> np.ndarray:
    """One odd multiplier per number of a key (fixed seed: the same hashes every run)."""
    drawn = np.random.default_rng(0).integers(1, 2**63, size=length, dtype=np.uint64)
    return drawn | np.uint64(1)


@njit(cache=True, nogil=True, inline="always")
def _hash(key, multipliers):
    """A 64-bit hash of a key of whole numbers; rows that collide are one class in the
    aggregated LP (its prices are only a start) and are told apart by the exact repair."""
    word = key.view(np.uint64)
    h = np.uint64(0)
    for c in range(word.shape[0]):
        mixed = word[c] * multipliers[c]
        mixed ^= mixed >> _SHIFT
        h ^= mixed * _FINAL
    return h


@njit(cache=True, nogil=True, inline="always")
def _option_bits(options, key, at):
    """The options as bits into ``key[at:]``, 64 a word; returns the next position."""
    n_opt = options.shape[0]
    for w in range((n_opt + 63) // 64):
        word = np.uint64(0)
        for o in range(64 * w, min(64 * w + 64, n_opt)):
            if options[o]:
                word |= np.uint64(1) << np.uint64(o - 64 * w)
        key[at + w] = np.int64(word)
    return at + (n_opt + 63) // 64


@njit(cache=True, nogil=True, inline="always")
def _lead(options):
    """The first option marked (as numpy's argmax of bools: 0 if none)."""
    for o in range(options.shape[0]):
        if options[o]:
            return o
    return 0


@njit(cache=True, nogil=True, inline="always")
def _aggregated_key(value, i, options, zones_row, reaches, step, key):
    n_opt = value.shape[1]
    n_fam = zones_row.shape[0]
    for f in range(n_fam):
        reached = False
        for o in range(n_opt):
            if options[o] and reaches[o, f]:
                reached = True
                break
        key[f] = zones_row[f] if reached else -1
    at = _option_bits(options, key, n_fam)
    lead = np.float64(value[i, _lead(options)])
    for o in range(n_opt):
        difference = np.float64(value[i, o]) - lead if options[o] else 0.0
        key[at + o] = np.int64(np.rint(difference / step))


@njit(cache=True, nogil=True, inline="always")
def _repair_key(value, cell, options, group, key, differences):
    """``differences``: a scratch of one float64 per option."""
    n_opt = value.shape[1]
    key[0] = group
    at = _option_bits(options, key, 1)
    lead = np.float64(value[cell, _lead(options)])
    # Float32 values of similar size subtract exactly in float64, so equal differences
    # compare equal; otherwise cells merge only when their differences are the same bits,
    # which is always safe.
    for o in range(n_opt):
        differences[o] = np.float64(value[cell, o]) - lead if options[o] else 0.0
    bits = differences.view(np.int64)
    for o in range(n_opt):
        key[at + o] = bits[o]


def _aggregated_hashes(
    value, allowed, has_allowed, group, adj, window, step, zones, reaches, multipliers
):
    """Per cell of the grid, the hash of its aggregated LP key under the prices' ``adj``."""
    n, n_opt = value.shape
    hashes = np.empty(n, dtype=np.uint64)
    for b in prange(n_blocks(n)):
        u = np.empty(n_opt, dtype=np.float64)
        options = np.empty(n_opt, dtype=np.bool_)
        key = np.empty(multipliers.shape[0], dtype=np.int64)
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            g = group[i]
            near_best_into(value, allowed, has_allowed, i, adj[g], window, u, options)
            _aggregated_key(value, i, options, zones[g], reaches, step, key)
            hashes[i] = _hash(key, multipliers)
    return hashes


def _repair_hashes(cells, options, value, group, multipliers):
    """Per free cell (``cells``, each with its free ``options``), the hash of its key."""
    m = cells.shape[0]
    hashes = np.empty(m, dtype=np.uint64)
    for b in prange(n_blocks(m)):
        key = np.empty(multipliers.shape[0], dtype=np.int64)
        differences = np.empty(value.shape[1], dtype=np.float64)
        for j in range(b * BLOCK, min(m, (b + 1) * BLOCK)):
            c = cells[j]
            _repair_key(value, c, options[j], group[c], key, differences)
            hashes[j] = _hash(key, multipliers)
    return hashes


def _keys_agree(cells, options, value, group, of_cell, first_keys):
    """Whether every free cell's key equals its class's first cell's (``first_keys``, one
    row a class)."""
    m, length = cells.shape[0], first_keys.shape[1]
    nb = n_blocks(m)
    agree = np.ones(nb, dtype=np.bool_)
    for b in prange(nb):
        key = np.empty(length, dtype=np.int64)
        differences = np.empty(value.shape[1], dtype=np.float64)
        for j in range(b * BLOCK, min(m, (b + 1) * BLOCK)):
            _repair_key(value, cells[j], options[j], group[cells[j]], key, differences)
            other = first_keys[of_cell[j]]
            for c in range(length):
                if key[c] != other[c]:
                    agree[b] = False
    return agree.all()


@njit(cache=True, nogil=True)
def repair_keys(cells, options, value, group, length):
    """(M, length) int64: every free cell's key, for grouping by the keys themselves where
    two of their hashes collide."""
    keys = np.empty((cells.shape[0], length), dtype=np.int64)
    differences = np.empty(value.shape[1], dtype=np.float64)
    for j in range(cells.shape[0]):
        _repair_key(value, cells[j], options[j], group[cells[j]], keys[j], differences)
    return keys


@njit(cache=True, nogil=True)
def group_by_hash(hashes, of_cell):
    """Classes of equal hashes numbered in the order of their first cell: fills
    ``of_cell`` with each cell's class and returns the first cell of each class.

    One pass through an open-addressing table that doubles as it fills: no sort of the
    grid's hashes (a stable argsort of 56 million took longer than the hashing)."""
    n = hashes.shape[0]
    capacity = 1 << 10
    slots = np.full(capacity, -1, dtype=np.int64)  # the class in each slot, -1 empty
    first = np.empty(1 << 10, dtype=np.int64)
    n_classes = 0
    for i in range(n):
        h = hashes[i]
        mask = np.uint64(capacity - 1)
        s = np.int64(h & mask)
        while slots[s] >= 0 and hashes[first[slots[s]]] != h:
            s = np.int64((np.uint64(s) + np.uint64(1)) & mask)
        if slots[s] < 0:
            if n_classes == first.shape[0]:
                grown = np.empty(2 * n_classes, dtype=np.int64)
                grown[:n_classes] = first
                first = grown
            slots[s] = n_classes
            first[n_classes] = i
            n_classes += 1
            if 2 * n_classes > capacity:
                capacity *= 2
                slots = np.full(capacity, -1, dtype=np.int64)
                mask = np.uint64(capacity - 1)
                for c in range(n_classes):
                    t = np.int64(hashes[first[c]] & mask)
                    while slots[t] >= 0:
                        t = np.int64((np.uint64(t) + np.uint64(1)) & mask)
                    slots[t] = c
                of_cell[i] = n_classes - 1
                continue
        of_cell[i] = slots[s]
    return first[:n_classes].copy()


def _option_codes(allowed):
    """(N,) int64: each cell's allowed options as the bits of one number (up to 63
    options), for classes of cells by their options (the feasibility test's)."""
    n, n_opt = allowed.shape
    codes = np.empty(n, dtype=np.int64)
    for b in prange(n_blocks(n)):
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            code = 0
            for o in range(n_opt):
                if allowed[i, o]:
                    code |= 1 << o
            codes[i] = code
    return codes


aggregated_hashes = _BySize(_aggregated_hashes)
repair_hashes = _BySize(_repair_hashes)
keys_agree = _BySize(_keys_agree)
option_codes = _BySize(_option_codes)
CLASS_KERNELS = (aggregated_hashes, repair_hashes, keys_agree, option_codes)
