"""The fast solver's first repair LP through HiGHS, priced both ways from the same start.

    pytest benchmarks/test_lp.py -s                                  # 250 m and 100 m
    pytest benchmarks/test_lp.py --benchmark-disable -k 250          # smoke run

The LP is the one the fast solver hands to HiGHS on configs/national.toml compiled at the
given resolution with every compactness rule off (with them on, the 100 m LP takes 1.2 s
either way): the first repair LP, started from the aggregated optimum's basis, which
leaves about half its rows without a basic column. "steepest" is HiGHS's own choice (dual
steepest edge, what every LP used before issue 15), "devex" what ``_class_lp`` asks for that
start. Compare the two rows of a resolution's group; the objectives must agree to 1e-9.
test_fast_solve_by_first_repair_pricing times the whole fast solve of the same problem with
that LP priced either way.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import engine
from benchmarks.test_memory_trace import compaction_off
from engine.solve import fast, lp

ROOT = Path(__file__).resolve().parents[1]

_CAPTURED: dict[int, tuple] = {}


def first_repair_lp(resolution: int) -> tuple:
    """The arguments of the first solve_lp call started from the aggregated optimum."""
    if resolution not in _CAPTURED:
        from engine.run import prepare

        config = ROOT / "configs" / "national.toml"
        compiled, _ = prepare(config, resolution=resolution, overrides=compaction_off(config))
        calls = []

        def record(*args, **kwargs):
            if kwargs.get("devex"):
                calls.append((args, kwargs))
            return lp.solve_lp(*args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(fast, "solve_lp", record)
            engine.solve(compiled.problem, method="fast")
        assert calls, "the fast solver started no LP from the aggregated optimum"
        _CAPTURED[resolution] = calls[0]
    return _CAPTURED[resolution]


@pytest.mark.parametrize("pricing", ["steepest", "devex"])
@pytest.mark.parametrize("resolution", [250, 100])
def test_first_repair_lp(benchmark, resolution, pricing):
    args, kwargs = first_repair_lp(resolution)
    benchmark.group = f"first repair LP, national {resolution} m"
    result = benchmark.pedantic(
        lp.solve_lp,
        args=args,
        kwargs={**kwargs, "devex": pricing == "devex"},
        rounds=3,
        iterations=1,
    )
    matrix = args[1]
    benchmark.extra_info.update(rows=matrix.shape[0], columns=matrix.shape[1], nonzeros=matrix.nnz)
    benchmark.extra_info["objective"] = result.objective
    print(
        f"\n{resolution} m, {pricing}: {matrix.shape} {matrix.nnz} nonzeros, "
        f"objective {result.objective!r}"
    )
    assert result.status == "optimal"
    other = lp.solve_lp(*args, **{**kwargs, "devex": pricing != "devex"})
    assert abs(other.objective - result.objective) <= 1e-9 * max(1.0, abs(result.objective))


@pytest.mark.parametrize("pricing", ["steepest", "devex"])
@pytest.mark.parametrize("resolution", [250, 100])
def test_fast_solve_by_first_repair_pricing(benchmark, resolution, pricing):
    """The whole fast solve of the national config, compaction off, with the first repair
    LP priced either way (``time.process_time`` in extra_info: the machine is often shared)."""
    from engine.run import prepare

    config = ROOT / "configs" / "national.toml"
    compiled, _ = prepare(config, resolution=resolution, overrides=compaction_off(config))
    problem = compiled.problem
    engine.solve(problem, method="fast")  # compile the kernels, fault the arrays in

    def priced(*args, **kwargs):
        if pricing == "steepest":
            kwargs["devex"] = False
        return lp.solve_lp(*args, **kwargs)

    cpu = []

    def solve():
        start = time.process_time()
        result = engine.solve(problem, method="fast")
        cpu.append(time.process_time() - start)
        return result

    benchmark.group = f"fast solve, national {resolution} m, compaction off"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast, "solve_lp", priced)
        solution = benchmark.pedantic(solve, rounds=2, iterations=1)
    benchmark.extra_info.update(
        cpu_seconds=[round(c, 2) for c in cpu], objective=solution.objective
    )
    print(f"\n{resolution} m, {pricing}: CPU {cpu}, objective {solution.objective!r}")
    assert solution.status == "optimal"
