"""The price stage of the fast solver over chunks of cells: in this process, or as a
map-reduce on a Dask cluster.

Each pass of the price stage (every cell's best option under a set of prices, and the
smoothed dual with its gradient) adds up one term per cell. The kernels add the terms in
blocks of ``kernels.BLOCK`` cells of the grid, and the blocks' partial sums in block order.
A chunk here is a run of whole blocks; its pass returns one partial per block, each from
the same kernel on that block alone, and the client adds the partials of all chunks in
block order. The sums come out the same bit for bit however the cells are chunked, in one
process or on many workers: the same as the kernels' pass over all cells at once.

A selection of cells (those near a tie that the fine stage visits) keeps that order: its
blocks are the grid's blocks, each with the selected cells that lie in it. A selection
small enough for one process (:data:`COMPACT_CELLS`) is gathered into one array with blocks
of ``BLOCK`` selected cells, as the in-memory path has it: which of the two a selection
gets depends on its size alone, never on the chunking.

On a Dask cluster the chunks are scattered once and stay on the workers; a selection is
taken where its chunk lies. Only prices go out and partial sums (and for the pass over all
cells, each cell's best option and margin) come back.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from engine.errors import RuimtepuzzelError
from engine.paging import release_pages
from engine.solve import kernels

log = logging.getLogger(__name__)

__all__ = [
    "CellChunks",
    "PriceStageError",
    "parse_memory",
    "chunk_cells_for",
    "cell_chunks",
    "PriceStage",
]

# A selection of at most this many cells is evaluated in one array (in this process): the
# sample of the rough stage and the near-tied cells of a small problem.
COMPACT_CELLS = 1 << 18

# Bytes per cell and option that a chunk's pass holds beside its value (the allowed flag,
# and the kernel's per-option scratch): with the value's itemsize, what one chunk costs.
_CHUNK_OVERHEAD = 2


class PriceStageError(RuimtepuzzelError):
    """A memory or scheduler setting that cannot be read or met."""


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS.update({"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40})
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*$")
# A floor that catches a unit left out ("8" is 8 bytes, not 8 GB): no run fits in less.
MIN_MEMORY = 256 * 10**6


def parse_memory(text) -> int:
    """``"8GB"``, ``"512 MB"``, ``"4GiB"`` or a number of bytes -> bytes."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        amount = int(text)
    else:
        match = _MEMORY.match(str(text))
        unit = match.group(2).upper() if match else None
        if unit not in _UNITS:
            raise PriceStageError(
                f"memory = {text!r}: not an amount of memory; write a number and a unit, "
                f"e.g. 8GB, 512MB or 4GiB"
            )
        amount = int(float(match.group(1)) * _UNITS[unit])
    if amount < MIN_MEMORY:
        raise PriceStageError(
            f"memory = {text!r}: {amount / 1e6:.0f} MB is too little to run in; give at "
            f"least {MIN_MEMORY // 10**6} MB (e.g. --memory 4GB)"
        )
    return amount


def chunk_cells_for(memory: int, n_options: int, itemsize: int = 4) -> int:
    """Cells per chunk for a memory budget in bytes: a chunk may take a sixteenth of it (the
    rest is the run's own arrays), in whole blocks, at least one."""
    per_cell = n_options * (itemsize + _CHUNK_OVERHEAD) + 32
    blocks = memory // 16 // (per_cell * kernels.BLOCK)
    return int(max(1, blocks)) * kernels.BLOCK


@dataclass
class Chunk:
    """One chunk's cells as the kernels take them.

    ``bounds`` are the positions in the chunk where a block begins, and its length: a full
    chunk's blocks are the grid's; a selection's are the grid's blocks that hold any of it.
    """

    value: np.ndarray  # (M, O)
    allowed: np.ndarray  # (M, O) bool, or the (1, 1) placeholder
    group: np.ndarray  # (M,) int32
    area: np.ndarray  # (M,), or (1,) when uniform
    bounds: np.ndarray  # (B + 1,) int64
    # Said, not read off the area's length: a chunk of one cell has a (1,) area either way.
    uniform: bool

    @property
    def n_cells(self) -> int:
        return self.value.shape[0]

    def block(self, b: int, has_allowed: bool) -> tuple:
        lo, hi = int(self.bounds[b]), int(self.bounds[b + 1])
        allowed = self.allowed[lo:hi] if has_allowed else self.allowed
        area = self.area if self.uniform else self.area[lo:hi]
        return self.value[lo:hi], allowed, has_allowed, self.group[lo:hi], area

    def release(self) -> None:
        """Paged values and allowed options (engine.paging): a chunk's pages at a time,
        not the grid's."""
        release_pages(self.value)
        release_pages(self.allowed)

    def blocks(self, has_allowed: bool):
        return (self.block(b, has_allowed) for b in range(len(self.bounds) - 1))


def _regular_bounds(n: int) -> np.ndarray:
    return np.append(np.arange(0, n, kernels.BLOCK, dtype=np.int64), n)


def _grid_bounds(positions: np.ndarray) -> np.ndarray:
    """Where the grid's block changes along these (ascending) positions of a full chunk."""
    if len(positions) == 0:
        return np.zeros(1, dtype=np.int64)
    block = positions // kernels.BLOCK
    changes = np.flatnonzero(block[1:] != block[:-1]) + 1
    return np.concatenate([[0], changes, [len(positions)]]).astype(np.int64)


def _scattered(place, chunk: Chunk):
    """The chunk sent to a worker; the pages its pickling read let go (engine.paging)."""
    future = place.scatter([chunk])[0]
    chunk.release()
    return future


def _full_chunk(value, allowed, group, area, start: int, stop: int, has_allowed: bool) -> Chunk:
    return Chunk(
        value=np.ascontiguousarray(value[start:stop]),
        allowed=np.ascontiguousarray(allowed[start:stop]) if has_allowed else allowed,
        group=np.ascontiguousarray(group[start:stop]),
        area=area if len(area) == 1 else np.ascontiguousarray(area[start:stop]),
        bounds=_regular_bounds(stop - start),
        uniform=len(area) == 1,
    )


# -- the passes over one chunk (module functions: Dask sends them to its workers) ----------


def _best_options(chunk: Chunk, has_allowed: bool, adj: np.ndarray):
    """Best option and margin per cell, and the dual bound's partial per block."""
    n_blocks = len(chunk.bounds) - 1
    choice = np.empty(chunk.n_cells, dtype=np.int16)
    margin = np.empty(chunk.n_cells, dtype=np.float64)
    parts = np.empty(n_blocks, dtype=np.float64)
    for b, args in enumerate(chunk.blocks(has_allowed)):
        lo, hi = chunk.bounds[b], chunk.bounds[b + 1]
        choice[lo:hi], margin[lo:hi], parts[b] = kernels.best_options(*args, adj)
    chunk.release()
    return choice, margin, parts


def _smoothed_terms(chunk: Chunk, has_allowed: bool, adj: np.ndarray, tau: float, n_groups: int):
    """The smoothed dual's partial per block, and the soft assignment's per block."""
    n_blocks = len(chunk.bounds) - 1
    f = np.empty(n_blocks, dtype=np.float64)
    s = np.empty((n_blocks, n_groups, adj.shape[1]), dtype=np.float64)
    for b, args in enumerate(chunk.blocks(has_allowed)):
        f[b], s[b] = kernels.smoothed_dual_terms(*args, adj, tau, n_groups)
    chunk.release()
    return f, s


def _take(chunk: Chunk, positions: np.ndarray, weight: float, has_allowed: bool) -> Chunk:
    """The cells at these positions of a full chunk, their area times ``weight``."""
    area = chunk.area if chunk.uniform else chunk.area[positions]
    taken = Chunk(
        value=np.ascontiguousarray(chunk.value[positions]),
        allowed=np.ascontiguousarray(chunk.allowed[positions]) if has_allowed else chunk.allowed,
        group=np.ascontiguousarray(chunk.group[positions]),
        area=np.ascontiguousarray(area * weight),
        bounds=_grid_bounds(positions),
        uniform=chunk.uniform,
    )
    chunk.release()  # a sample spread over the chunk maps all its pages (engine.paging)
    return taken


def _compact(chunks: list[Chunk], has_allowed: bool) -> Chunk:
    """Selections of several chunks as one array, with blocks of ``BLOCK`` cells."""
    uniform = chunks[0].uniform
    return Chunk(
        value=np.concatenate([c.value for c in chunks]),
        allowed=np.concatenate([c.allowed for c in chunks]) if has_allowed else chunks[0].allowed,
        group=np.concatenate([c.group for c in chunks]),
        area=chunks[0].area if uniform else np.concatenate([c.area for c in chunks]),
        bounds=_regular_bounds(sum(c.n_cells for c in chunks)),
        uniform=uniform,
    )


# -- where the chunks live -----------------------------------------------------------------


class _Here:
    """Chunks in this process: a task's handle is its result."""

    def submit(self, function, chunks, *args, each=None):
        each = each or [()] * len(chunks)
        return [function(chunk, *own, *args) for chunk, own in zip(chunks, each)]

    def gather(self, handles):
        return handles

    def release(self, handles):
        pass


class _OnCluster:
    """Chunks held on the workers of a ``distributed.Client``: a task per chunk runs where
    the chunk lies, its handle is a future, and the client gathers in chunk order."""

    def __init__(self, client):
        self.client = client

    def submit(self, function, chunks, *args, each=None):
        each = each or [()] * len(chunks)
        return [
            self.client.submit(function, chunk, *own, *args, pure=False)
            for chunk, own in zip(chunks, each)
        ]

    def gather(self, handles):
        return self.client.gather(handles)

    def scatter(self, chunks):
        return self.client.scatter(chunks, broadcast=False)

    def release(self, handles):
        self.client.cancel(handles)


class CellChunks:
    """A problem's cells (or a selection of them) in chunks of whole blocks, with the two
    passes of the price stage. ``smallest_area`` is the smallest (weighted) cell area."""

    def __init__(self, chunks, sizes, has_allowed: bool, place, smallest_area: float):
        self.chunks = chunks
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.has_allowed = has_allowed
        self.place = place
        self.smallest_area = smallest_area

    @property
    def n_cells(self) -> int:
        return int(self.sizes.sum())

    def _map(self, function, *args):
        return self.place.gather(self.place.submit(function, self.chunks, self.has_allowed, *args))

    def best_options(self, adj: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """As :func:`kernels.best_options` over all the cells: choice, margin, and the
        area-weighted sum of the best adjusted values."""
        results = self._map(_best_options, adj)
        choice = np.concatenate([r[0] for r in results])
        margin = np.concatenate([r[1] for r in results])
        parts = np.concatenate([r[2] for r in results])
        return choice, margin, kernels._ordered_sum(parts)

    def smoothed_terms(self, adj: np.ndarray, tau: float, n_groups: int):
        """As :func:`kernels.smoothed_dual_terms`: the smoothed dual and the soft assignment
        per (group, option), the blocks added in grid order."""
        results = self._map(_smoothed_terms, adj, tau, n_groups)
        f = np.concatenate([np.zeros(0)] + [r[0] for r in results])
        assigned = np.zeros((n_groups, adj.shape[1]), dtype=np.float64)
        for _, per_block in results:
            for part in per_block:
                assigned += part
        return kernels._ordered_sum(f), assigned

    def select(self, index: np.ndarray, weight: float, smallest_area: float) -> CellChunks:
        """The cells at these ascending indices (into the full chunks), each with its area
        times ``weight``; ``smallest_area`` the smallest of those weighted areas."""
        index = np.asarray(index, dtype=np.int64)
        ends = np.cumsum(self.sizes)
        pieces = np.split(index, np.searchsorted(index, ends)[:-1])
        positions = [(piece - (end - size),) for piece, end, size in zip(pieces, ends, self.sizes)]
        taken = self.place.submit(_take, self.chunks, weight, self.has_allowed, each=positions)
        sizes = [len(piece) for piece in pieces]
        if len(index) > COMPACT_CELLS:
            return CellChunks(taken, sizes, self.has_allowed, self.place, smallest_area)
        gathered = [c for c, n in zip(self.place.gather(taken), sizes) if n]
        self.place.release(taken)
        chunks = [_compact(gathered, self.has_allowed)] if gathered else []
        return CellChunks(chunks, [len(index)], self.has_allowed, _Here(), smallest_area)

    def release(self) -> None:
        """Free the chunks (on a cluster: the workers' copies)."""
        self.place.release(self.chunks)
        self.chunks = []


def cell_chunks(problem, structure, chunk_cells: int, client=None) -> CellChunks:
    """The problem's cells in chunks of about ``chunk_cells`` (whole blocks), in this
    process or, with a ``distributed.Client``, scattered over its workers once."""
    if chunk_cells < 1:
        raise PriceStageError(f"chunk_cells = {chunk_cells}: give 1 or more cells per chunk")
    size = -(-int(chunk_cells) // kernels.BLOCK) * kernels.BLOCK
    n, has_allowed = problem.n_cells, structure.has_allowed
    place = _Here() if client is None else _OnCluster(client)
    starts = range(0, n, size)
    sizes = [min(size, n - start) for start in starts]
    arrays = (problem.value, structure.allowed, structure.group, structure.area)
    chunks = (
        _full_chunk(*arrays, start, start + m, has_allowed) for start, m in zip(starts, sizes)
    )
    # On a cluster one chunk at a time: the client never holds a second copy of the cells.
    chunks = [chunk if client is None else _scattered(place, chunk) for chunk in chunks]
    log.debug("%d cells in %d chunks of up to %d", n, len(sizes), size)
    smallest = float(np.min(structure.area))
    return CellChunks(chunks, sizes, has_allowed, place, smallest)


# -- the run's setting: a memory budget and a scheduler --------------------------------------

# The chunk budget when only a scheduler is given.
DEFAULT_MEMORY = 8 * 10**9
# Chunks per worker on a cluster: enough for every worker to have work in every pass.
CHUNKS_PER_WORKER = 2
# Seconds to wait for a scheduler to answer.
SCHEDULER_TIMEOUT = 30


@dataclass(frozen=True)
class PriceStage:
    """Where the fast solver's price stage runs: over chunks sized for ``memory`` bytes, on
    the Dask scheduler at ``scheduler`` ("local": a LocalCluster of one single-threaded
    process per core). Neither: in one pass in memory, as before."""

    memory: int | None = None
    scheduler: str | None = None

    @classmethod
    def of(cls, memory=None, scheduler: str | None = None) -> PriceStage:
        """Checked settings (the CLI's ``--memory`` and ``--scheduler``); raises
        :class:`PriceStageError` for a memory it cannot read or run in."""
        if scheduler is not None and not str(scheduler).strip():
            raise PriceStageError(
                "scheduler = '': give a Dask scheduler's address (tcp://HOST:8786) or 'local'"
            )
        return cls(None if memory is None else parse_memory(memory), scheduler)

    @contextmanager
    def solve_options(self, problem):
        """The options of ``engine.solve`` for this setting, with the cluster's client open
        while they are in use."""
        if self.memory is None and self.scheduler is None:
            yield {}
            return
        itemsize = problem.value.dtype.itemsize
        cells = chunk_cells_for(self.memory or DEFAULT_MEMORY, problem.n_options, itemsize)
        if self.scheduler is None:
            yield {"chunk_cells": cells}
            return
        with _connect(self.scheduler) as client:
            workers = max(1, len(client.scheduler_info()["workers"]))
            share = -(-problem.n_cells // (CHUNKS_PER_WORKER * workers))
            yield {"chunk_cells": min(cells, share), "client": client}


@contextmanager
def _connect(scheduler: str):
    from dask.distributed import Client, LocalCluster

    if scheduler == "local":
        with (
            LocalCluster(
                threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
    except Exception as err:  # refused, unknown host, timed out, not a scheduler
        raise PriceStageError(
            f"scheduler = {scheduler!r}: no Dask scheduler answers there within "
            f"{SCHEDULER_TIMEOUT} s ({type(err).__name__}: {err}); start one (dask scheduler), "
            f"check the address (tcp://HOST:8786), or use --scheduler local"
        ) from None
    with client:
        yield client
