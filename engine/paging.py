"""Arrays that live in a file the kernel pages, for runs with a memory budget (``--memory``).

The problem's values are the largest array of a run (60 bytes a cell for the national
config: 3.4 GB at 25 m), read in full by every pass of the price stage, but not at all
while HiGHS solves a repair LP, the run's other large holder (2.2 GB at 25 m). In a file
mapped into memory, their pages are the kernel's to page: :func:`release_pages` hands them
back before such an LP, and the next pass reads them again from the page cache (or from
disk, where the memory was needed meanwhile). The run's peak is then the larger of the two,
not their sum. The values are the same bits wherever they live. The allowed options (15
bytes a cell for the national config), read by the same passes, live beside them.

The file is unlinked from the start (``O_TMPFILE`` where the file system has it): it has no
name in the run's folder, and goes when the array does or the process ends, however.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import mmap
import os
import tempfile
import weakref
from pathlib import Path

import numpy as np

__all__ = [
    "cell_slices",
    "file_backed_zeros",
    "hand_back_freed_blocks",
    "release_pages",
    "trim_heap",
]

log = logging.getLogger(__name__)

# The mappings file_backed_zeros made: only their pages are released. A caller's own mapped
# array (a copy-on-write np.memmap) would lose its edits to MADV_DONTNEED.
_PAGED: weakref.WeakSet = weakref.WeakSet()
# glibc's mallopt parameter for the size from which a block is mapped on its own.
_M_MMAP_THRESHOLD = -3
# Blocks from 4 MiB on: the national 25 m run with --memory 4GB peaked at 3,848,808 kB rather
# than 4,470,692, its wall 9-17 % longer (the kernel zeroes each new block's pages, where the
# heap reused them); 1 MiB gave the same peak and took longer (benchmarks/README.md, twelfth
# session).
FREED_BLOCK = 4 << 20


def file_backed_zeros(shape: tuple, dtype, folder: Path) -> np.ndarray:
    """A C-contiguous array of zeros in an unlinked file in ``folder`` (which must be on a
    disk: on a tmpfs the pages would stay in memory). Raises
    :class:`~engine.outputs.DiskError` where the folder's disk is full or read-only."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    try:
        with tempfile.TemporaryFile(dir=folder) as file:
            # The disk's blocks now (its pages read as zeros until written): a full disk is
            # an error here, not a SIGBUS when the kernel writes a page back.
            os.posix_fallocate(file.fileno(), 0, max(size, 1))
            # The mapping keeps its own handle on the file; it stays while the array does.
            pages = mmap.mmap(file.fileno(), max(size, 1))
            _PAGED.add(pages)
    except OSError as err:
        from engine.outputs import DiskError, disk_error  # the run's, not the core's

        if disk_error(err, folder) is None:
            raise
        raise DiskError(
            f"{folder}: no room for a file of {size / 1e6:,.0f} MB that --memory pages (the "
            f"cells' values or allowed options; {os.strerror(err.errno).lower()}); free "
            f"space there, give --out a "
            f"folder on another disk, or run without --memory",
            folder,
            err.errno,
        ) from err
    log.debug("%d MB in a paged file in %s", size // 10**6, folder)
    return np.frombuffer(pages, dtype=dtype, count=size // dtype.itemsize).reshape(shape)


def release_pages(array: np.ndarray) -> bool:
    """Hand the pages ``array`` spans in its file (an array of :func:`file_backed_zeros`,
    or a view of one) back to the kernel: the contents stay in the file and come back when
    read. False (nothing done) for any other array, in memory or mapped."""
    pages = _mapping(array)
    if pages is None:
        return False
    if array.size == 0:
        return True
    start = ctypes.addressof(ctypes.c_char.from_buffer(pages))
    low, high = _byte_bounds(array)
    # Whole blocks of the kernel's fault-around, rounded outwards (it maps the cached pages
    # of the block around a page read, so a slice's reads map a little of its neighbours'):
    # a neighbour's page let go is only read again.
    first = max(low // _FAULT_AROUND * _FAULT_AROUND, start) - start
    end = min(-(-high // _FAULT_AROUND) * _FAULT_AROUND - start, len(pages))
    pages.madvise(mmap.MADV_DONTNEED, first, end - first)
    return True


def cell_slices(n_cells: int, step: int) -> list[slice]:
    """Slices of ``step`` cells over ``n_cells``: a pass over paged arrays (or with float64
    temporaries) a slice at a time, its pages let go after each."""
    return [slice(lo, min(lo + step, n_cells)) for lo in range(0, n_cells, step)]


# Linux's fault_around_bytes (64 kB by default), a multiple of the page size.
_FAULT_AROUND = max(1 << 16, mmap.PAGESIZE)


def _mapping(array) -> mmap.mmap | None:
    """The mapping of :func:`file_backed_zeros` that ``array`` views, if any."""
    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return base if base in _PAGED else None
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return None


def _byte_bounds(array: np.ndarray) -> tuple[int, int]:
    """The first and one past the last byte address ``array`` reaches, for any strides."""
    low = high = array.__array_interface__["data"][0]
    for n, stride in zip(array.shape, array.strides):
        if stride < 0:
            low += (n - 1) * stride
        else:
            high += (n - 1) * stride
    return low, high + array.itemsize


def hand_back_freed_blocks(threshold: int = FREED_BLOCK) -> bool:
    """Let every allocation of ``threshold`` bytes or more have a mapping of its own, handed
    back to the kernel when freed (glibc's ``M_MMAP_THRESHOLD``); False where the C library
    has no ``mallopt``. For the rest of the process's life: for a run with a memory budget.

    By default glibc raises that threshold to 32 MB as large blocks are freed, and the blocks
    below it (a chunk's per-cell arrays, a pass's temporaries, numba's results) are freed
    into the heap, where they stay resident under whatever the run makes next: at 25 m
    1-1.7 GB at the solve's and the write stage's starts. :func:`trim_heap` hands such pages
    back at a point; this never keeps them."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, int(threshold)))


def trim_heap() -> bool:
    """Hand the C heap's free pages back to the kernel (glibc's ``malloc_trim``); False
    where the C library has none. A large LP's vectors are below glibc's mmap threshold
    (up to 32 MB by default; see :func:`hand_back_freed_blocks`), so HiGHS frees them into
    the heap, where they stay resident after the LP unless trimmed, under every array the
    run makes next."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _libc():
    return ctypes.CDLL(None)
