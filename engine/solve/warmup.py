"""The Numba kernels compiled once per machine, ahead of the run that needs them.

A kernel is compiled on its first call and numba caches it in the package's cache
(:mod:`engine.caches`); later processes load it in milliseconds. Compiled on first use, the
first national run on a new machine spent about 25 s compiling before its first solve.
:func:`warm_up` compiles (or loads) every kernel a run calls, with the argument types a run
passes: ``ruimtepuzzel setup`` does it in the foreground (an install step, a cluster image),
and :func:`in_background` while a run reads its config and grid, so that the solve finds
them ready. The serial builds come first: every run needs them, and a small run needs only
them; until a parallel build is ready a large pass runs on the serial one, which gives the
same numbers (:class:`engine.solve.kernels._BySize`).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
from scipy import sparse

from engine.caches import numba_cache_dir

log = logging.getLogger(__name__)

__all__ = ["warm_up", "in_background", "missing"]


def _arguments() -> SimpleNamespace:
    """Two cells, two options, in the dtypes and layouts a compiled problem has
    (:mod:`engine.compile`, :mod:`engine.solve.dual`)."""
    n = 2
    return SimpleNamespace(
        value=np.zeros((n, 2), np.float32),
        allowed=np.ones((n, 2), bool),
        group=np.zeros(n, np.int32),
        area=np.ones(n),
        adj=np.zeros((1, 2)),
        selected=np.ones(n, bool),
        # The price passes choose int16 options; the repair LP indexes them as int64.
        choices=(np.zeros(n, np.int16), np.zeros(n, np.int64)),
        x=sparse.csr_matrix(np.eye(n, 2)),
        # The repair's free cells, and the classes' first cells.
        cells=np.arange(n, dtype=np.int64),
    )


def _solver_calls(a: SimpleNamespace) -> list[tuple[object, tuple]]:
    from engine.solve import class_kernels, kernels

    # The class keys (engine.solve.fast): an aggregated key of one family, a repair key.
    one_family = np.zeros((1, 1), np.int64), np.ones((2, 1), bool)
    multipliers = class_kernels.hash_multipliers(class_kernels.key_length(2, 1))
    repair = (a.cells, a.allowed, a.value, a.group)
    calls = [
        (kernels.best_options, (a.value, a.allowed, True, a.group, a.area, a.adj)),
        (kernels.smoothed_dual_terms, (a.value, a.allowed, True, a.group, a.area, a.adj, 1.0, 1)),
        (kernels.assigned_value, (a.value, a.choices[0], a.selected, a.area)),
        (
            kernels.allocation_parts,
            (a.value, a.x.indptr, a.x.indices, a.x.data, a.group, a.area, 1),
        ),
    ]
    calls += [
        (kernels.assigned_area, (choice, a.selected, a.group, a.area, 1, 2)) for choice in a.choices
    ]
    calls += [
        (
            class_kernels.aggregated_hashes,
            (a.value, a.allowed, True, a.group, a.adj, 1.0, 1.0, *one_family, multipliers),
        ),
        (class_kernels.repair_hashes, (*repair, multipliers)),
        (class_kernels.keys_agree, (*repair, a.group, np.zeros((1, len(multipliers)), np.int64))),
        (class_kernels.option_codes, (a.allowed,)),
        (kernels.near_best, (a.cells, a.area, a.value, a.allowed, True, a.group, a.adj)),
        (
            kernels.left_out,
            (a.cells, a.allowed, a.value, a.allowed, True, a.group, a.adj, 1.0),
        ),
    ]
    return calls


def _compile_calls(a: SimpleNamespace) -> list[tuple[object, tuple]]:
    """The kernels of :mod:`engine.suitability` (building ``v``), of the rules' minimum
    patch sizes, of the grid build, of the compaction (:mod:`engine.solve.compact_kernels`),
    the classes' serial ones and the repair's join of free cells."""
    from engine import rules, suitability
    from engine.grid import noise
    from engine.solve import class_kernels, compact_kernels, kernels

    xy = np.zeros(2)
    # Two cells side by side, as Geometry.neighbours gives them (int32 on any national grid).
    neighbours = np.array([[-1, 1, -1, -1], [0, -1, -1, -1]], dtype=np.int32)
    return [
        (
            suitability._option_values,
            (
                a.value.copy(),
                (a.value[:, 0].copy(),) * suitability._LAYERS,
                np.zeros((1, 6)),
                np.zeros(len(a.value), np.uint8),
                np.zeros((2, 256), np.float32),
                np.zeros(2, np.float32),
                np.ones(2, bool),
            ),
        ),
        (
            suitability.add_to_options,
            (a.value.copy(), np.zeros(1, np.int64), a.area.astype(np.float32), True),
        ),
        # The cells' positions are int32 on any national grid (engine.rules._position_type).
        (rules.small_patch_mask, (np.arange(2, dtype=np.int32), 2, a.selected, 2)),
        (kernels.allocation_sums, (np.zeros(1), np.zeros((1, 1, 2)), np.zeros((1, 1)))),
        (noise._value_noise, (xy, xy, 1.0, np.uint64(1), 1.0, np.zeros((2, 2)))),
        (
            compact_kernels.plan_area,
            (a.choices[0], a.selected, a.x.indptr, a.x.indices, a.x.data, a.group, a.area, 1, 2),
        ),
        (compact_kernels.patch_labels, (np.arange(2), a.selected, neighbours, np.zeros(2, int))),
        (compact_kernels.cut_terms, (np.arange(2), neighbours, a.selected)),
        (
            compact_kernels.grow,
            (np.arange(2), 1, True, a.selected.copy(), neighbours, a.area, 1.0, 2),
        ),
        # Each cell's class: int32 on any grid below 2**31 cells.
        (class_kernels.group_by_hash, (np.zeros(2, np.uint64), a.group.copy())),
        (class_kernels.repair_keys, (a.cells, a.allowed, a.value, a.group, 4)),
        (kernels.joined_free, (a.cells, a.allowed, a.cells, a.allowed, a.cells)),
    ]


def _analysis_calls(a: SimpleNamespace) -> list[tuple[object, tuple]]:
    """The kernels of the rule costs' price bounds (:mod:`engine.analysis.rule_costs`): a
    relaxation's cells as ``np.flatnonzero`` gives them, its rows a copy of ``allowed``'s."""
    rule_costs = importlib.import_module("engine.analysis.rule_costs")
    relaxation = (a.cells, a.allowed.copy(), a.allowed, a.value, a.adj, a.group, np.zeros(2))
    return [
        (rule_costs.new_option_gains, (*relaxation, a.area)),
        (
            rule_costs.claim_gains,
            (a.cells, a.cells, *relaxation[1:], a.area, np.ones((2, 1), bool)),
        ),
    ]


def _jobs() -> list[tuple[object, tuple, object]]:
    """(dispatcher, arguments, the kernel whose parallel build it is, or None) in the order
    to compile: what every run needs first, the analysis's last."""
    a = _arguments()
    solver = _solver_calls(a)
    return (
        [(dispatcher, args, None) for dispatcher, args in _compile_calls(a)]
        + [(kernel.serial, args, None) for kernel, args in solver]
        + [(kernel.parallel, args, kernel) for kernel, args in solver]
        + [(dispatcher, args, None) for dispatcher, args in _analysis_calls(a)]
    )


def _cached(dispatcher) -> bool:
    # numba's index of the function's entries in its cache folder: empty when none was
    # compiled into this folder, or the source changed since.
    return bool(dispatcher._cache._cache_file._load_index())


def missing() -> list[str]:
    """The kernels with nothing in numba's cache (by their function names)."""
    return [d.py_func.__qualname__ for d, _, _ in _jobs() if not _cached(d)]


def warm_up(on_kernel: Callable[[int, int, str], None] | None = None) -> tuple[int, int]:
    """Compile, or load from the cache, every kernel a run calls; returns how many were
    compiled, of how many. ``on_kernel(done, total, name)`` is told after each."""
    jobs = _jobs()
    compiled = 0
    for done, (dispatcher, args, kernel) in enumerate(jobs, start=1):
        misses = sum(dispatcher.stats.cache_misses.values())
        dispatcher(*args)
        compiled += sum(dispatcher.stats.cache_misses.values()) - misses
        if kernel is not None:
            kernel.parallel_ready = True
        if on_kernel is not None:
            on_kernel(done, len(jobs), dispatcher.py_func.__qualname__)
    return compiled, len(jobs)


def _warm_up_quietly() -> None:
    try:
        warm_up()
    except Exception as err:  # only a head start: the solve compiles what it calls itself
        log.warning(
            "compiling the kernels ahead of the solve failed (%s); the solve compiles them", err
        )


_started: threading.Thread | None = None
_lock = threading.Lock()


def in_background() -> threading.Thread:
    """Start :func:`warm_up` in a thread, once per process; says so when it has to compile.

    A daemon thread: a run that ends first does not wait for it (numba renames each cache
    file into place, so none is left half-written; the next run's thread compiles the rest).
    Numba's compiler lock keeps a kernel from being compiled twice: a solve that calls one
    the thread is compiling waits for it, one the thread has not reached yet it compiles."""
    global _started
    with _lock:
        if _started is None:
            cold = missing()
            if cold:
                log.info(
                    "compiling the solver's %d numba kernels once, beside this run, into %s "
                    "(about half a minute of CPU; later runs load them; "
                    "'ruimtepuzzel setup' does it ahead)",
                    len(cold),
                    numba_cache_dir(),
                )
            _started = threading.Thread(
                target=_warm_up_quietly, name="ruimtepuzzel-warmup", daemon=True
            )
            _started.start()
        return _started
