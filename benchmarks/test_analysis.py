"""The full analysis of a national run (issue 15): rule costs, exchanges and the rest.

    pytest benchmarks/test_analysis.py -k 250 -s          # the 250 m figures
    pytest benchmarks/test_analysis.py -k 100 -s          # the 100 m figures
    pytest benchmarks/test_analysis.py -k "run_with" -s   # the whole runs through the CLI
    pytest benchmarks/test_analysis.py -k "one_by_one" -s # each re-solve alone, one thread

The run up to the solve (grid from cache, compile, solve) is done once per resolution,
untimed; then ``engine.analysis.outputs.analyse`` (conflicts, scarcity, rule costs,
exchanges) is timed once per way of re-solving:

- ``restricted``: as shipped, each lifted rule and moved target re-solved around the
  optimum's prices (:mod:`engine.solve.local`), two workers;
- ``full``: every re-solve the full warm one (``SWITCH_SHARE = SWITCH_CELLS = 0``: what
  the analysis did before issue 15), two workers;
- ``restricted-1``: as shipped on one worker.

Wall and CPU seconds per part land in ``extra_info`` and are printed; every rule cost must
agree with the ``full`` one to 1e-9 relative (checked in the ``restricted`` rounds).
"""

from __future__ import annotations

import json
import time
import warnings

import pytest

import engine
from benchmarks.test_chunked import national_run
from engine.analysis.exchange import apply_exchange, exchange_suggestions
from engine.analysis.outputs import analyse
from engine.analysis.rule_costs import _Relaxation, compiled_relaxations
from engine.run import prepare_run
from engine.solve import fast
from engine.solve.local import resolve_near

_SOLVED: dict = {}
_COSTS: dict = {}


def _solved(resolution):
    if resolution not in _SOLVED:
        compiled = prepare_run("configs/national.toml", resolution=resolution).compiled
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _SOLVED[resolution] = compiled, engine.solve(compiled.problem)
    return _SOLVED[resolution]


@pytest.mark.parametrize("resolution", [250, 100])
@pytest.mark.parametrize("way", ["full", "restricted", "restricted-1"])
def test_national_full_analysis(benchmark, resolution, way, monkeypatch):
    compiled, sol = _solved(resolution)
    if way == "full":
        monkeypatch.setattr(fast, "SWITCH_SHARE", 0.0)
        monkeypatch.setattr(fast, "SWITCH_CELLS", 0)
    workers = 1 if way.endswith("-1") else 2
    options = {"resolve_workers": workers}
    result = {}

    def job():
        wall, cpu = time.perf_counter(), time.process_time()
        result["analysis"] = analyse(
            compiled.problem, sol, compiled=compiled, options=options, level="full"
        )
        result["wall"], result["cpu"] = time.perf_counter() - wall, time.process_time() - cpu

    benchmark.pedantic(job, rounds=1, iterations=1, warmup_rounds=0)
    sections = result["analysis"]["sections"]
    parts = {k: round(v, 2) for k, v in sections["analysis_timings"].items()}
    benchmark.extra_info.update({"wall": result["wall"], "cpu": result["cpu"], **parts})
    print(
        f"\n{resolution} m {way}: {result['wall']:.1f} s wall, {result['cpu']:.1f} s CPU, "
        f"parts {parts}"
    )
    costs = {c["rule"]: c for c in sections["rule_costs"]}
    _COSTS[resolution, way] = costs
    reference = _COSTS.get((resolution, "full"))
    if reference is not None and way != "full":
        for name, cost in costs.items():
            other = reference[name]["objective_relaxed"]
            assert abs(cost["objective_relaxed"] - other) <= 1e-9 * abs(other), name


@pytest.mark.parametrize("analysis", ["off", "full"])
@pytest.mark.parametrize("resolution", [250, 100])
def test_national_run_with_the_analysis(benchmark, tmp_path, resolution, analysis):
    """The whole run as a user runs it (``python -m engine.cli run configs/national.toml
    --resolution R --analysis off|full``) in a fresh process: wall, CPU, peak RSS and the
    stage times of report.json, the analysis one of them."""
    result = {}

    def run():
        result.update(national_run(resolution, [], tmp_path / "run", analysis=analysis))

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    result["analysis_parts"] = report.get("analysis_timings")
    benchmark.extra_info.update(result)
    print(f"\nnational {resolution} m, analysis {analysis}: {result}")
    assert result["status"] == "optimal"


# What a re-solve's timings say about its path (see engine.solve.fast.solve_fast).
_PATH = ("local", "switching", "moved_free", "repair_rounds", "lp_cells", "lp_classes")


def _timed_resolve(problem, sol, before, targets=None, changed=None):
    """CPU and wall seconds of one re-solve as the analysis asks it, and its path."""
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        answer = resolve_near(
            problem, sol.row_prices, before, end=sol.repair_end, targets=targets, changed=changed
        )
    figures = {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}
    figures.update({k: answer.timings[k] for k in _PATH if k in answer.timings})
    return answer, figures


@pytest.mark.parametrize("resolution", [250, 100])
def test_national_re_solves_one_by_one(benchmark, resolution):
    """Every rule cost's and exchange's re-solve alone in one thread (the profile the
    analysis's cuts start from): CPU seconds, the path taken (restricted or full), the
    cells switching and freed; each exchange at its estimated hectares only (the analysis
    halves it while the gain is negative). The rules' relaxations are built first, untimed."""
    compiled, sol = _solved(resolution)
    problem = compiled.problem
    changes = {
        name: _Relaxation.of(make, problem.allowed)
        for name, make in compiled_relaxations(compiled).items()
    }
    rows = {}

    def job():
        for name, change in changes.items():
            relaxed = change.problem(problem, problem.allowed)
            _, rows[f"rule {name}"] = _timed_resolve(
                relaxed, sol, problem.allowed, changed=change.cells
            )
        for s in exchange_suggestions(problem, sol, verify=False, max_suggestions=3):
            moved = apply_exchange(problem, s)
            _, rows[f"exchange {s['claim']} {s['from']} -> {s['to']}"] = _timed_resolve(
                moved, sol, None, (problem.lower, problem.upper)
            )

    benchmark.pedantic(job, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(rows)
    for name, figures in sorted(rows.items(), key=lambda item: -item[1]["cpu"]):
        print(f"{resolution} m {name}: {figures}")
    print(f"{resolution} m all re-solves: {sum(f['cpu'] for f in rows.values()):.1f} s CPU")


@pytest.mark.parametrize("resolution", [250, 100])
@pytest.mark.parametrize("method", ["kernels", "numpy"])
def test_national_rule_price_bounds(benchmark, resolution, method):
    """The price bounds of every rule the analysis lifts (the Lagrangian bound each rule's
    cost lies under, :func:`engine.analysis.rule_costs._price_bound`): the numba kernels
    beside the numpy form they replaced (``tests.analysis_reference``), the same bits. The
    relaxations are built once, untimed."""
    import numpy as np

    from engine.analysis.rule_costs import _price_bound
    from engine.solve import kernels
    from engine.solve.dual import dual_structure
    from tests.analysis_reference import numpy_price_bound

    compiled, sol = _solved(resolution)
    problem = compiled.problem
    structure = dual_structure(problem)
    adj = structure.adjustment(np.asarray(sol.row_prices, dtype=np.float64))
    best, _, _ = kernels.best_options(
        problem.value, structure.allowed, structure.has_allowed, structure.group,
        structure.area, adj,
    )  # fmt: skip
    best = best.astype(np.int64)
    best_u = problem.value[np.arange(problem.n_cells), best] + adj[structure.group, best]
    base = problem.allowed
    relaxations = [_Relaxation.of(f, base) for f in compiled_relaxations(compiled).values()]
    bound = {"kernels": _price_bound, "numpy": numpy_price_bound}[method]

    def every_rule():
        return [bound(problem, base, r, structure, adj, best_u) for r in relaxations]

    got = benchmark.pedantic(every_rule, rounds=3, iterations=1, warmup_rounds=1)
    expected = [numpy_price_bound(problem, base, r, structure, adj, best_u) for r in relaxations]
    for (total, per_claim, pairs), (total_0, per_claim_0, pairs_0) in zip(got, expected):
        assert total == total_0 and pairs == pairs_0 and np.array_equal(per_claim, per_claim_0)
    benchmark.extra_info.update(rules=len(relaxations), cells=problem.n_cells)
