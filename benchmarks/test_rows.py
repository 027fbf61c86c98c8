"""Many target rows (issue 15): the fast solver beside HiGHS on the whole LP, same instance.

    pytest benchmarks/test_rows.py --benchmark-only -s -k "not national"
    pytest benchmarks/test_rows.py --benchmark-only -s -k national   # 100 m, minutes
    pytest benchmarks/ --benchmark-disable -k "not national"         # CI smoke run

Instances: ``engine.synthetic.allocation_problem`` (8 options, 6 claims, 12 provinces, a
national zoning and a focus area) with ``with_local_targets``: a zoning of 1,000 / 2,000 /
4,000 zones of 20,000 cells, each with a lower target on two claims (2,058 / 4,058 / 8,058
rows), or 200 single cells with a target each among 500,000 cells; and the national config
at 100 m with and without a housing target per municipality. Goals: time and memory no worse
than HiGHS on the whole LP (8,058 rows: <= 12 s, <= 0.5 GB); 200 single-cell zones and the
municipal targets within 2x of the solve without them.

Every figure comes from a fresh process per solve (``measure``): CPU seconds of the solve
(``time.process_time``, all threads), wall seconds, and the peak resident memory beyond the
problem's arrays (VmHWM after resetting it), so that neither the allocator's pages of an
earlier solve nor another solver's count. The machine is shared: CPU time is the figure to
compare, wall time depends on the load (printed beside it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine
from engine.synthetic import allocation_problem, with_local_targets

HERE = Path(__file__).resolve().parent

CASES = {
    "2058-rows": (20_000, 1_000, False),
    "4058-rows": (20_000, 2_000, False),
    "8058-rows": (20_000, 4_000, False),
    "no-single-cells": (500_000, 0, True),
    "200-single-cells": (500_000, 200, True),
}
# HiGHS through PuLP needs many minutes to build a model of 500,000 cells x 8 options: the
# single-cell cases compare the fast solver with and without the single cells instead.
WHOLE_LP_CASES = ("2058-rows", "4058-rows", "8058-rows")
# The real problem at 100 m: the province-only national config, and the same with a housing
# target per municipality (configs/national-gemeenten.toml). Goal: within 2x.
NATIONAL_CASES = {
    "national-100m": "configs/national.toml",
    "national-gemeenten-100m": "configs/national-gemeenten.toml",
}


def instance(case: str) -> engine.Problem:
    if case in NATIONAL_CASES:
        from engine.run import prepare

        compiled, _ = prepare(HERE.parent / NATIONAL_CASES[case], resolution=100)
        return compiled.problem
    n_cells, n_zones, single_cells = CASES[case]
    return with_local_targets(allocation_problem(n_cells), n_zones, single_cells=single_cells)


def measure(case: str, method: str) -> dict:
    """One solve of ``case`` by ``method`` in a fresh process (kernels compiled first)."""
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r})\n"
        f"from test_rows import _solve_here; _solve_here({case!r}, {method!r})\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=3600
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _solve_here(case: str, method: str) -> None:
    import time

    from test_solve import peak_rss, peak_rss_reset

    engine.solve(allocation_problem(3_000), method="fast")  # compile outside the figures
    problem = instance(case)
    problem.groups  # noqa: B018 (the problem's own derived arrays are input, not solve)
    base = peak_rss_reset()
    wall, cpu = time.perf_counter(), time.process_time()
    sol = engine.solve(problem, method=method)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        json.dumps(
            {
                "rows": len(problem.rows),
                "cells": problem.n_cells,
                "method": sol.method,
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "peak_mb": round((peak_rss() - base) / 2**20, 1),
                "objective": sol.objective,
                "gap": sol.gap,
                "status": sol.status,
                "load": round(os.getloadavg()[0], 2),
                "timings": {
                    k: round(v, 3) if isinstance(v, float) else v for k, v in sol.timings.items()
                },
            }
        )
    )


@pytest.mark.parametrize("case", list(CASES))
def test_rows_fast_vs_highs(benchmark, case):
    problem = instance(case)
    engine.solve(allocation_problem(3_000), method="fast")  # compile the kernels
    result = {}

    def fast():
        result["sol"] = engine.solve(problem, method="fast")

    benchmark.pedantic(fast, rounds=1, iterations=1, warmup_rounds=0)
    assert result["sol"].status == "optimal"
    methods = ("fast", "highs") if case in WHOLE_LP_CASES else ("fast",)
    figures = {method: measure(case, method) for method in methods}
    benchmark.extra_info.update(figures)
    for method, f in figures.items():
        print(
            f"\n{case} {method}: {f['rows']} rows, {f['cpu_s']} s CPU, {f['wall_s']} s wall "
            f"(load {f['load']}), +{f['peak_mb']} MB, objective {f['objective']:.12g}, "
            f"gap {f['gap']:.1e}, stages {f['timings']}"
        )
    if "highs" in figures:
        reference = figures["highs"]["objective"]
        assert abs(figures["fast"]["objective"] - reference) <= 1e-9 * abs(reference)


# Pairs of national solves per benchmark run: on a shared machine one pair says little.
NATIONAL_PAIRS = 3


def test_national_per_municipality_within_2x(benchmark):
    """The national config at 100 m, province targets only and with a housing target per
    municipality (345 more rows), each solved in a fresh process, :data:`NATIONAL_PAIRS`
    times in turn (so that both see the same load): the CPU ratio of each pair and of the
    medians."""
    pairs = benchmark.pedantic(
        lambda: [
            {case: measure(case, "fast") for case in NATIONAL_CASES} for _ in range(NATIONAL_PAIRS)
        ],
        rounds=1,
        iterations=1,
    )
    for figures in pairs:
        for case, f in figures.items():
            print(
                f"\n{case}: {f['rows']} rows, {f['cpu_s']} s CPU, {f['wall_s']} s wall "
                f"(load {f['load']}), +{f['peak_mb']} MB, gap {f['gap']:.1e}, "
                f"stages {f['timings']}"
            )
        ratio = figures["national-gemeenten-100m"]["cpu_s"] / figures["national-100m"]["cpu_s"]
        print(f"per municipality / province only: {ratio:.2f}x CPU")
    median = {case: float(np.median([f[case]["cpu_s"] for f in pairs])) for case in NATIONAL_CASES}
    ratio = median["national-gemeenten-100m"] / median["national-100m"]
    benchmark.extra_info.update(
        {"pairs": pairs, "median_cpu_s": median, "cpu_ratio": round(ratio, 2)}
    )
    print(f"medians {median}: {ratio:.2f}x CPU")
    assert all(f["status"] == "optimal" for figures in pairs for f in figures.values())


@pytest.mark.parametrize("n_cells", [50, 100, 200, 400, 800, 1600])
def test_auto_crossover(benchmark, n_cells):
    """Where ``auto``'s estimate hands tiny problems to HiGHS: both backends' CPU seconds
    (best of 3, in this process) beside the estimates."""
    import time

    from engine.solve.choice import estimate

    problem = allocation_problem(n_cells, seed=3)
    engine.solve(allocation_problem(3_000), method="fast")  # compile the kernels

    def cpu(method):
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            engine.solve(problem, method=method)
            best = min(best, time.process_time() - start)
        return best

    measured = benchmark.pedantic(
        lambda: {m: cpu(m) for m in ("fast", "highs")}, rounds=1, iterations=1
    )
    chosen = estimate(problem)
    benchmark.extra_info.update({"cpu_s": measured, "estimate": chosen})
    print(
        f"\n{n_cells} cells: fast {measured['fast']:.3f} s, HiGHS {measured['highs']:.3f} s CPU; "
        f"estimates {chosen['fast_estimate_s']:.3f} / {chosen['highs_estimate_s']:.3f} s -> "
        f"{chosen['method']} (load {os.getloadavg()[0]:.1f})"
    )
