"""The values in a file the kernel pages (``--memory``): their pages go back to the kernel
while HiGHS solves, they come back the same bits, the plan is the same bit for bit, and the
file never has a name in the run's folder, however the run ends."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import paging
from engine.compile import compile_problem
from engine.config import load_config
from engine.grid import open_grid
from engine.outputs import DiskError
from engine.paging import file_backed_zeros, release_pages
from engine.run import run

NATIONAL = Path(__file__).resolve().parents[1] / "configs" / "national.toml"


def resident_mb() -> float:
    """This process's resident memory (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@settings(max_examples=50, deadline=None)
@given(
    shape=st.tuples(st.integers(0, 300), st.integers(1, 20)),
    dtype=st.sampled_from([np.float32, np.float64, np.int16, np.bool_]),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_file_backed_array_keeps_what_is_written_through_a_release(
    tmp_path_factory, shape, dtype, seed
):
    folder = tmp_path_factory.mktemp("paged")
    a = file_backed_zeros(shape, dtype, folder)
    assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
    assert not a.any()
    values = np.random.default_rng(seed).normal(size=shape).astype(dtype)
    a[:] = values
    assert release_pages(a.T) and release_pages(a[1:])  # views find the file
    assert np.array_equal(a, values)
    assert list(folder.iterdir()) == []  # no name in the folder, ever


def test_released_pages_leave_the_process_and_come_back():
    """A 256 MB array's pages: resident once written, gone from the process after the
    release, back (with the same bits) when read."""
    a = file_backed_zeros((2**25, 2), np.float32, Path.cwd())
    a[:, 0] = np.arange(2**25, dtype=np.float32)
    a[:, 1] = -a[:, 0]
    written = resident_mb()
    assert release_pages(a)
    released = resident_mb()
    assert written - released > 200, (written, released)
    assert a[:, 0].sum(dtype=np.float64) == np.arange(2**25, dtype=np.float32).sum(dtype=np.float64)
    assert np.array_equal(a[:, 1], -a[:, 0])
    assert resident_mb() - released > 200


def test_a_view_releases_the_pages_it_spans_only():
    a = file_backed_zeros((2**24, 4), np.float32, Path.cwd())  # 256 MB
    a[:] = 1.0
    written = resident_mb()
    assert release_pages(a[: 2**23])  # the first half
    half = resident_mb()
    assert 100 < written - half < 156, (written, half)
    assert release_pages(a[::-1][: 2**23])  # the second half, through a reversed view
    assert half - resident_mb() > 100
    assert a.sum(dtype=np.float64) == 4 * 2**24


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 9),
    st.slices(40),
    st.slices(9),
    st.booleans(),
)
def test_the_bytes_a_view_spans_are_numpys(rows, cols, rows_taken, cols_taken, transposed):
    byte_bounds = getattr(np.lib, "array_utils", np).byte_bounds
    view = np.zeros((rows, cols), dtype=np.float32)[rows_taken, cols_taken]
    view = view.T if transposed else view
    if view.size:
        assert paging._byte_bounds(view) == byte_bounds(view)


def test_an_array_in_memory_has_no_pages_to_release():
    a = np.zeros((100, 3), dtype=np.float32)
    assert not release_pages(a)
    assert not release_pages(a.T)
    assert not release_pages(np.frombuffer(bytearray(64), dtype=np.float32))


def test_a_compile_with_its_values_paged_builds_the_same_problem(tmp_path):
    config, grid = load_config(NATIONAL), open_grid("nl", resolution=1000)
    in_memory = compile_problem(config, grid, keep_layers=False).problem
    paged = compile_problem(config, grid, keep_layers=False, values_paged_in=tmp_path).problem
    assert release_pages(paged.value)
    assert not release_pages(in_memory.value)
    assert paged.value.dtype == in_memory.value.dtype
    assert np.array_equal(paged.value.view(np.uint32), in_memory.value.view(np.uint32))
    assert np.array_equal(paged.allowed, in_memory.allowed)
    assert release_pages(paged.allowed) and not release_pages(in_memory.allowed)
    assert list(tmp_path.iterdir()) == []


def test_a_run_with_a_memory_budget_pages_its_values_and_writes_the_same_plan(
    tmp_path, monkeypatch
):
    """``memory``: the values are paged and let go before each repair LP, and freed blocks go
    back to the kernel (:func:`test_freed_blocks_go_back_to_the_kernel`; here only asked
    for, so that the tests after this one keep glibc's default); the plan and its
    certificate are those of the run without, bit for bit."""
    import engine.run
    from engine import paging
    from engine import problem as problem_module

    released, handed_back = [], []
    release = paging.release_pages
    monkeypatch.setattr(
        problem_module, "release_pages", lambda a: released.append(release(a)) or True
    )
    monkeypatch.setattr(engine.run, "hand_back_freed_blocks", lambda: handed_back.append(1))
    paged = run(NATIONAL, tmp_path / "paged", resolution=1000, analysis="off", progress=False,
                memory="1GB")  # fmt: skip
    assert released and all(released)
    assert handed_back == [1]
    released.clear()
    plain = run(NATIONAL, tmp_path / "plain", resolution=1000, analysis="off", progress=False)
    assert released and not any(released)  # in memory: nothing to release
    assert handed_back == [1]  # without a budget: glibc's default
    for key in ("objective", "gap", "status", "targets"):
        assert paged[key] == plain[key], key
    tif = "allocation.tif"
    assert (tmp_path / "paged" / tif).read_bytes() == (tmp_path / "plain" / tif).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paged", "plain"]


def test_a_run_killed_in_its_solve_leaves_no_values_file(tmp_path):
    """kill -9 while the values are paged: their file had no name, so the staging folder
    the next run cleans up holds nothing of them."""
    out = tmp_path / "national"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", "national", "--resolution", "1000",
         "--quiet", "--analysis", "off", "--memory", "1GB", "--out", str(out)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lock = tmp_path / "national.lock"
    deadline = time.monotonic() + 180
    while True:
        try:
            if json.loads(lock.read_text()).get("stage") == "solve":
                break
        except (OSError, ValueError):  # not there, or being written
            pass
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no solve within 180 s"
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    stages = [p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("national.")]
    assert len(stages) == 1
    left = [p for p in stages[0].rglob("*") if p.is_file()]
    assert sum(os.path.getsize(p) for p in left) < 10**6, left


def test_a_disk_without_room_for_the_values_is_a_clear_error_before_any_value(tmpfs):
    with pytest.raises(DiskError, match=r"no room for a file of 16 MB .*values.*--memory"):
        file_backed_zeros((10**6, 4), np.float32, tmpfs)  # 16 MB
    assert list(tmpfs.iterdir()) == []
    file_backed_zeros((10**5, 4), np.float32, tmpfs)  # 1.6 MB fits


def test_a_read_only_disk_is_a_clear_error(tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    with pytest.raises(DiskError, match="read-only file system.*--memory"):
        file_backed_zeros((10, 2), np.float32, tmpfs)


def mapped_kb(array: np.ndarray) -> int:
    """The kB of ``array``'s file mapping this process holds (its ``Rss`` in smaps): the
    pages it has read and not let go, whatever the page cache keeps of the file."""
    import ctypes

    start = ctypes.addressof(ctypes.c_char.from_buffer(paging._mapping(array)))
    lines = Path("/proc/self/smaps").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"{start:x}-"))
    return int(next(line for line in lines[at:] if line.startswith("Rss:")).split()[1])


@pytest.mark.parametrize("every", [3, 40])
@pytest.mark.parametrize("cells_per_slice", [1 << 12, 1 << 40])
def test_passes_over_some_cells_hold_a_window_of_the_paged_values(
    tmp_path, monkeypatch, cells_per_slice, every
):
    """The repair's passes over some of the cells (their options near the best, the
    classes' hashes and keys, the LP's column values, the options it left out, their
    values under the prices): a third of the cells (the free ones) or one in 40 (the
    classes' first cells), on every page of the values. Paged, each window's pages go once
    it is read, so the process never holds more than a window of them; in one window it
    holds them all (the check can fail)."""
    from engine import problem as problem_module
    from engine.solve import fast
    from engine.solve.dual import dual_structure
    from engine.synthetic import allocation_problem

    problem = paged_copy(allocation_problem(300_000, 8, seed=1), tmp_path)
    value, allowed = problem.value, problem.allowed
    structure = dual_structure(problem)
    prices = np.random.default_rng(2).normal(size=len(problem.rows))
    cells = np.arange(0, problem.n_cells, every)
    held = []

    def watched_release(array):
        held.append((mapped_kb(value), mapped_kb(allowed)))
        return release_pages(array)

    problem.release_cells()
    monkeypatch.setattr(problem_module, "release_pages", watched_release)
    monkeypatch.setattr(fast, "_CELL_SLICE", cells_per_slice)
    free = fast.FreeCells(cells, fast._near_best(problem, structure, prices, cells, 1.0))
    fast._interchangeable(problem, structure, free, np.full(len(cells), 6.25))
    lead = np.argmax(free.options, axis=1)
    fast._column_gains(problem, cells, (lead + 1) % problem.n_options, lead)
    fast._left_out(problem, structure, prices, free, 0.0)
    fast._adjusted_values(problem, structure, prices, cells)
    windows = -(-problem.n_cells // cells_per_slice)
    assert len(held) == 2 * 6 * windows  # six passes, each window's pages let go
    for array, kb in zip((value, allowed), zip(*held)):
        window_kb = cells_per_slice * array.itemsize * array.shape[1] / 1024
        if windows > 1:
            assert max(kb) <= window_kb + 2 * 64  # and the 64 kB the kernel maps around
        else:
            assert max(kb) > 0.9 * array.nbytes / 1024
        assert mapped_kb(array) <= 64  # the last window's pages went too


def test_trimming_the_heap_gives_freed_memory_back():
    """Arrays below glibc's mmap threshold are freed into the C heap, which keeps their
    pages while a later one stands above them (as a large LP's vectors do); a trim hands
    them back to the system."""
    many = [np.ones(100_000 // 8) for _ in range(3000)]  # 300 MB in 100 kB arrays
    kept = np.ones(100_000 // 8)  # above them in the heap: nothing to shrink from the top
    del many
    freed = resident_mb()
    assert paging.trim_heap()
    assert freed - resident_mb() > 200
    assert kept.sum() == len(kept)


# In a process of its own (the setting is the process's): 800 MB in blocks twice the size
# handed back, with the threshold at that size or at the 32 MB glibc raises it to. Prints
# the MB in mappings of their own while the blocks live (glibc's mallinfo2), then the MB
# still resident once they are freed below small blocks that stay.
_FREED_BLOCKS = """
import ctypes, sys
from pathlib import Path
import numpy as np
from engine.paging import FREED_BLOCK, hand_back_freed_blocks

FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS.split()]
mallinfo = ctypes.CDLL(None).mallinfo2
mallinfo.restype = Info

def resident_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

# The threshold glibc rises to after large frees, set here: whether it has risen depends on
# the process's history (in CI's clean clone it had not).
assert hand_back_freed_blocks(FREED_BLOCK if sys.argv[1] == "handed back" else 32 * 2**20)
mapped = mallinfo().hblkhd
before = resident_mb()
blocks, kept = [], []
for _ in range(100):
    blocks.append(np.ones(2 * FREED_BLOCK, dtype=np.uint8))
    kept.append(np.ones(1000))
print((mallinfo().hblkhd - mapped) / 2**20)
del blocks
print(resident_mb() - before)
"""


@pytest.mark.parametrize("mode", ["handed back", "raised"])
def test_freed_blocks_go_back_to_the_kernel(tmp_path, mode):
    """With the setting, blocks of ``FREED_BLOCK`` bytes or more live in mappings of their
    own and go back to the kernel when freed; under the threshold glibc raises itself to
    (32 MB) they live in the heap, which keeps them for reuse (how much of it stays resident
    depends on where the small blocks beside them land)."""
    libc = paging._libc()
    if getattr(libc, "mallopt", None) is None or getattr(libc, "mallinfo2", None) is None:
        pytest.skip("not glibc 2.33 or later: no mallopt and mallinfo2 to show it with")
    out = subprocess.run(
        [sys.executable, "-c", _FREED_BLOCKS, mode],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    mapped, held = (float(v) for v in out.stdout.split()[-2:])
    if mode == "handed back":
        assert mapped >= 800 and held < 100, out.stdout
    else:
        assert mapped < 100, out.stdout


@pytest.mark.parametrize(("columns_to_trim", "trims"), [(5, 1), (6, 0)])
def test_an_lp_of_many_columns_hands_its_memory_back(monkeypatch, columns_to_trim, trims):
    """HiGHS's memory goes back to the system after an LP of at least ``TRIM_COLUMNS``
    columns; after a smaller one the trim's walk of the heap is not worth it."""
    from scipy import sparse

    from engine.solve import lp

    called = []
    monkeypatch.setattr(lp, "trim_heap", lambda: called.append(paging.trim_heap()))
    monkeypatch.setattr(lp, "TRIM_COLUMNS", columns_to_trim)
    matrix = sparse.csc_matrix(np.ones((1, 5)))
    one = np.ones(1)
    result = lp.solve_lp(np.arange(5.0), matrix, one, one, np.zeros(5), np.ones(5))
    assert result.status == "optimal" and result.x[0] == 1.0
    assert called == [True] * trims


def test_a_copy_on_write_memmap_keeps_its_edits(tmp_path):
    """Only the files of file_backed_zeros are released: on a caller's copy-on-write
    mapping MADV_DONTNEED would throw its edits away."""
    path = tmp_path / "allowed.npy"
    np.save(path, np.ones((50_000, 4), dtype=bool))
    allowed = np.load(path, mmap_mode="c")
    allowed[:, 2] = False
    assert not release_pages(allowed)
    assert not allowed[:, 2].any()


@pytest.mark.parametrize("scheduler", [None, "local"])
def test_the_sample_stage_and_the_scatter_let_the_paged_pages_go(tmp_path, scheduler):
    """The price stage's chunks: a sample taken from them (the rough and fine stages) and,
    on a cluster, their pickling for the workers read pages all over the values; each
    chunk's are let go after it."""
    from engine import Problem
    from engine.solve.chunked import _connect, cell_chunks
    from engine.solve.dual import dual_structure
    from engine.solve.fast import stratified_sample
    from engine.synthetic import allocation_problem

    built = allocation_problem(200_000, 8, seed=1)
    value = file_backed_zeros(built.value.shape, np.float32, tmp_path)
    value[:] = built.value
    problem = Problem(value, built.contribution, built.zones, built.lower, built.upper,
                      allowed=built.allowed, area=built.area)  # fmt: skip
    structure = dual_structure(problem)
    problem.release_cells()
    if scheduler is None:
        chunks = cell_chunks(problem, structure, 1 << 16)
        sample = chunks.select(stratified_sample(problem.n_cells, 97), 97.0, 6.25)
        assert sample.n_cells == len(stratified_sample(problem.n_cells, 97))
    else:
        with _connect(scheduler) as client:
            chunks = cell_chunks(problem, structure, 1 << 16, client=client)
            assert chunks.n_cells == problem.n_cells
            chunks.release()
    assert mapped_kb(value) <= 64


def paged_copy(problem, folder):
    """``problem`` with its values and allowed options in paged files, their pages let go."""
    from engine import Problem

    value = file_backed_zeros(problem.value.shape, problem.value.dtype, folder)
    value[:] = problem.value
    allowed = file_backed_zeros(problem.allowed.shape, bool, folder)
    allowed[:] = problem.allowed
    paged = Problem(value, problem.contribution, problem.zones, problem.lower, problem.upper,
                    allowed=allowed, area=problem.area,
                    shortfall_penalty=problem.shortfall_penalty)  # fmt: skip
    paged.release_cells()
    return paged


def watch_windows(monkeypatch, modules, problem, callers):
    """At every release of pages that ``modules`` make in a function of ``callers`` (or in
    a helper it calls for it): the kB of the values and of the allowed options then mapped
    (read and not let go)."""
    held = []

    def watched_release(array):
        names = {sys._getframe(1).f_code.co_name, sys._getframe(2).f_code.co_name}
        if names & callers:
            held.append((mapped_kb(problem.value), mapped_kb(problem.allowed)))
        return release_pages(array)

    for module in modules:
        monkeypatch.setattr(module, "release_pages", watched_release)
    return held


def assert_windows(held, problem, cells_per_slice, passes):
    windows = -(-problem.n_cells // cells_per_slice)
    assert len(held) >= passes * windows
    for array, kb in zip((problem.value, problem.allowed), zip(*held)):
        window_kb = cells_per_slice * array.itemsize * array.shape[1] / 1024
        assert max(kb) <= window_kb + 2 * 64  # and the 64 kB the kernel maps around
    assert mapped_kb(problem.value) <= 64 and mapped_kb(problem.allowed) <= 64


def test_the_compactions_passes_hold_a_slice_of_the_paged_values(tmp_path, monkeypatch):
    """The compaction's passes over all cells (each cell's best neutral option, and per
    option its gain and where it may go): paged (``--memory``), a slice's pages at a time.
    Let go only after a pass, every page was held (national 25 m: 4.5 GB, the peak)."""
    import engine
    from engine import problem as problem_module
    from engine.solve import compact as compact_module
    from tests.test_compact import grid_problem, rules_for

    built, geometry = grid_problem(3, ny=512, nx=512)
    problem = paged_copy(built, tmp_path)
    exact = engine.solve(problem)
    problem.release_cells()
    cells_per_slice = 1 << 15
    monkeypatch.setattr(compact_module, "_NEIGHBOUR_SLICE", cells_per_slice)
    held = watch_windows(monkeypatch, [problem_module], problem, {"_best_neutral", "__init__"})
    plan = compact_module.compact(problem, exact, geometry, rules_for(problem))
    # The best neutral options, and each of the three new uses' gains at least once.
    assert_windows(held, problem, cells_per_slice, passes=4)
    problem.release_cells()
    monkeypatch.undo()
    again = compact_module.compact(built, exact, geometry, rules_for(built))
    assert np.array_equal(plan.choice, again.choice)


def test_the_rule_costs_price_pass_holds_a_slice_of_the_paged_values(tmp_path, monkeypatch):
    """The rule costs' bounds (the report's minimum patch sizes too, with the analysis
    off): every cell's best option under the optimum's prices, its adjusted value, and
    which cells a rule lifted changes and what they gain, a slice of the paged values at a
    time; the bounds the same bits as from values in memory."""
    import engine
    from engine import problem as problem_module
    from engine.solve import chunked, fast, kernels
    from tests.test_compact import grid_problem

    rule_costs_module = importlib.import_module("engine.analysis.rule_costs")
    built, _ = grid_problem(5, ny=512, nx=512)
    problem = paged_copy(built, tmp_path)
    sol = engine.solve(problem)
    problem.release_cells()
    # A rule lifted frees some cells, spread over the grid.
    relaxed = built.allowed.copy()
    relaxed[::7] = True
    # The best options' chunks are whole blocks of the kernels.
    cells_per_slice = kernels.BLOCK
    monkeypatch.setattr(rule_costs_module, "_PASS_CELLS", cells_per_slice)
    monkeypatch.setattr(fast, "_CELL_SLICE", cells_per_slice)
    held = watch_windows(
        monkeypatch,
        [problem_module, chunked, rule_costs_module],
        problem,
        {"_best_options", "_best_adjusted", "of", "cell_windows"},
    )
    (paged,) = rule_costs_module.rule_costs(problem, sol, {"all": relaxed}, exact=False)
    # The best options over chunks, their adjusted values, the cells the rule changes, the
    # best of their new options, and per claim.
    assert_windows(held, problem, cells_per_slice, passes=5)
    (in_memory,) = rule_costs_module.rule_costs(built, sol, {"all": relaxed}, exact=False)
    assert paged == in_memory and paged["bound_gain"] > 0
