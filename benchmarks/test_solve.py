"""The exact core side by side with its peers, on the same generated instances.

    pytest benchmarks/test_solve.py -s                          # all, incl. national size
    pytest benchmarks/ --benchmark-disable -k "not national"    # CI smoke run

Instances: ``engine.synthetic.allocation_problem`` (smooth random fields plus noise, 12
Voronoi provinces, a national zoning and a focus area across provinces, forbidden options).
Goals (DESIGN.md, issue 2): national size (3.4 M cells x 8 options x 12 provinces + national)
<= 5 s (goal 1 s) and <= 1 GB beyond the inputs; 200 k x 6 >= 500x faster than HiGHS with
the same objective. Peak memory is read from the kernel (VmHWM after resetting it), so the
Numba and HiGHS allocations count too.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, sparse

import engine
from engine.synthetic import allocation_problem

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_reset() -> int:
    """Reset the kernel's peak-RSS mark of this process; returns the current RSS in bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def peak_rss() -> int:
    return _status("VmHWM")


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def solve_with_scipy_highs(problem: engine.Problem) -> float:
    """The peer: the whole LP handed to HiGHS (dual simplex) through SciPy in one matrix."""
    n, n_opt = problem.n_cells, problem.n_options
    allowed = problem.allowed if problem.allowed is not None else np.ones((n, n_opt), bool)
    cell, opt = np.nonzero(allowed)
    area = problem.area_of()
    rows = problem.rows
    n_row = 0
    a_ub = []  # (row, column, value) triples of the target rows, as <= rows
    b_ub = []
    for r in range(len(rows)):
        in_zone = problem.zones[rows.zoning[r], cell] == rows.zone[r]
        coef = problem.contribution[opt, rows.claim[r]] * area[cell] * in_zone
        nz = np.flatnonzero(coef)
        if rows.has_lower[r]:
            a_ub.append((np.full(len(nz), n_row), nz, -coef[nz]))
            b_ub.append(-rows.lower[r])
            n_row += 1
        if rows.has_upper[r]:
            a_ub.append((np.full(len(nz), n_row), nz, coef[nz]))
            b_ub.append(rows.upper[r])
            n_row += 1
    ub = sparse.csr_matrix(
        (
            np.concatenate([a[2] for a in a_ub]),
            (np.concatenate([a[0] for a in a_ub]), np.concatenate([a[1] for a in a_ub])),
        ),
        shape=(n_row, len(cell)),
    )
    eq = sparse.csr_matrix((np.ones(len(cell)), (cell, np.arange(len(cell)))), shape=(n, len(cell)))
    cost = -area[cell] * problem.value[cell, opt]
    result = optimize.linprog(
        cost,
        A_ub=ub,
        b_ub=np.array(b_ub),
        A_eq=eq,
        b_eq=np.ones(n),
        bounds=(0, None),
        method="highs-ds",
    )
    assert result.status == 0, result.message
    return -result.fun


def _report(benchmark, name, seconds, objective, memory=None):
    benchmark.extra_info[f"{name}_seconds"] = round(seconds, 3)
    benchmark.extra_info[f"{name}_objective"] = objective
    if memory is not None:
        benchmark.extra_info[f"{name}_peak_memory_mb"] = round(memory / 2**20, 1)
    print(
        f"\n{name}: {seconds:.3f} s, objective {objective:.12g}"
        + (f", peak memory beyond inputs {memory / 2**20:.0f} MB" if memory is not None else "")
    )


def test_fast_small(benchmark):
    """Smoke-sized: 20 k cells x 6 options x 12 provinces."""
    problem = allocation_problem(20_000, 6, 12, seed=11)
    engine.solve(problem, method="fast")  # compile the kernels outside the timing
    sol = benchmark(engine.solve, problem, method="fast")
    assert sol.status == "optimal"


def test_200k_fast_vs_highs_national(benchmark):
    """200 k cells x 6 options x 12 provinces: fast vs HiGHS through SciPy, same instance."""
    problem = allocation_problem(200_000, 6, 12, seed=12)
    engine.solve(problem, method="fast")
    result = {}

    def fast():
        result["sol"] = engine.solve(problem, method="fast")

    benchmark.pedantic(fast, rounds=5, iterations=1, warmup_rounds=0)
    sol = result["sol"]
    start = time.perf_counter()
    peer_objective = solve_with_scipy_highs(problem)
    peer_seconds = time.perf_counter() - start
    fast_seconds = benchmark.stats.stats.median
    _report(benchmark, "fast", fast_seconds, sol.objective)
    _report(benchmark, "highs", peer_seconds, peer_objective)
    benchmark.extra_info["speedup"] = round(peer_seconds / fast_seconds, 1)
    print(f"speed-up {peer_seconds / fast_seconds:.0f}x")
    assert abs(sol.objective - peer_objective) <= 1e-7 * abs(peer_objective)


def first_solve_memory(n_cells: int, n_options: int, n_provinces: int, seed: int) -> int:
    """Peak memory of one solve beyond its inputs, in a fresh process: in this one the
    allocator keeps pages of earlier rounds, which would hide the solve's own."""
    code = (
        "import sys; sys.path.insert(0, %r)\n"  # noqa: UP031 (a program's text, filled below)
        "from test_solve import peak_rss_reset, peak_rss\n"
        "import engine\n"
        "from engine.synthetic import allocation_problem\n"
        "engine.solve(allocation_problem(20_000, %d, %d, seed=1), method='fast')\n"
        "problem = allocation_problem(%d, %d, %d, seed=%d)\n"
        "base = peak_rss_reset()\n"
        "engine.solve(problem, method='fast')\n"
        "print(peak_rss() - base)\n"
    ) % (str(Path(__file__).parent), n_options, n_provinces, n_cells, n_options, n_provinces, seed)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_fast_national(benchmark):
    """3.4 M cells x 8 options x 12 provinces + national + focus area; peak memory too."""
    problem = allocation_problem(3_400_000, 8, 12, seed=13)
    engine.solve(allocation_problem(300_000, 8, 12, seed=13), method="fast")  # compile
    result = {}

    def fast():
        result["sol"] = engine.solve(problem, method="fast")

    benchmark.pedantic(fast, rounds=3, iterations=1, warmup_rounds=0)
    sol = result["sol"]
    memory = first_solve_memory(3_400_000, 8, 12, seed=13)
    _report(benchmark, "fast", benchmark.stats.stats.median, sol.objective, memory)
    benchmark.extra_info["gap"] = sol.gap
    benchmark.extra_info["stages"] = {
        k: round(v, 3) for k, v in sol.timings.items() if isinstance(v, float)
    }
    print("stages:", benchmark.extra_info["stages"], "gap", sol.gap)
    assert sol.status == "optimal"


@pytest.mark.parametrize("resolution", [1000, 250, 100])
def test_fast_on_the_national_config(benchmark, resolution):
    """The real problem: configs/national.toml compiled on the demo grid (elastic targets,
    78 rows, 13 options, whole land-use classes of cells that tie). HiGHS through PuLP, the
    reference, beside it at 1000 m (at 250 m it needs minutes to build the model alone)."""
    from engine.run import prepare

    compiled, _ = prepare(ROOT / "configs" / "national.toml", resolution=resolution)
    problem = compiled.problem
    engine.solve(problem, method="fast")  # compile the kernels, fault the arrays in
    result = {}

    def fast():
        result["sol"] = engine.solve(problem, method="fast")

    benchmark.pedantic(fast, rounds=3, iterations=1, warmup_rounds=0)
    sol = result["sol"]
    info = {
        "cells": problem.n_cells,
        "gap": sol.gap,
        "objective": sol.objective,
        **{k: round(v, 3) if isinstance(v, float) else v for k, v in sol.timings.items()},
    }
    if resolution == 1000:
        t = time.perf_counter()
        reference = engine.solve(problem, method="highs")
        info["highs_seconds"] = round(time.perf_counter() - t, 2)
        info["highs_objective"] = reference.objective
        assert abs(reference.objective - sol.objective) <= 1e-7 * abs(reference.objective)
    benchmark.extra_info.update(info)
    print(
        f"\nnational config at {resolution} m: fast {benchmark.stats.stats.median:.2f} s "
        f"(median of 3), {info}"
    )
    assert sol.status == "optimal"
