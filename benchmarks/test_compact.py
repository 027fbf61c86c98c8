"""Compact plans: the compaction against the exact MILP (HiGHS via PuLP) on small grids, and
the compaction stage of the national run.

    pytest benchmarks/test_compact.py --benchmark-only -s             # small instances
    pytest benchmarks/test_compact.py -k national --benchmark-only -s  # minutes

The small instances print, per size, what the MILP needs and the gap of the compact plan to
its optimum as a share of what the MILP optimum gives up against the LP optimum (the bound
that tests/test_compact.py asserts). Figures are in benchmarks/README.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import engine
from engine.solve.compact import compact
from tests.test_compact import grid_problem, milp_of, penalised, rules_for


@pytest.mark.parametrize("side", [14, 30, 50, 70])
def test_small_against_milp(benchmark, side):
    problem, geometry = grid_problem(side, ny=side, nx=side)
    rules = rules_for(problem)
    exact = engine.solve(problem)
    plan = benchmark(compact, problem, exact, geometry, rules)
    ours = penalised(problem, geometry, rules, plan.x)
    milp = milp_of(problem, geometry, rules, exact, time_limit=600)
    best = penalised(problem, geometry, rules, milp.x)
    share = (best - ours) / max(exact.objective - best, 1e-12)
    print(
        f"\n{side}x{side}: LP {exact.objective:.1f} MILP {best:.1f} ({milp.status}, "
        f"{milp.seconds:.1f} s) ours {ours:.1f}; gap/(LP-MILP) {share:.3f}"
    )


@pytest.mark.parametrize("resolution", [250, 100])
def test_national_compaction(benchmark, resolution):
    """The compaction stage alone (``cluster``, after the exact solve) of the national
    config, twice: wall and CPU seconds per round with the load beside them (the machine is
    shared; CPU seconds are the figure that load does not inflate)."""
    from engine.compactness import cluster
    from engine.run import prepare

    compiled, _ = prepare("national", resolution=resolution)
    sol = engine.solve(compiled.problem)
    rounds = []

    def timed():
        wall, cpu = time.perf_counter(), time.process_time()
        plan = cluster(compiled, sol)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rounds.append(f"wall {wall:.1f} s, CPU {cpu:.1f} s (load {os.getloadavg()[0]:.1f})")
        return plan

    plan = benchmark.pedantic(timed, rounds=2, iterations=1)
    print(f"\n{resolution} m compaction: " + "; ".join(rounds))
    assert plan.compactness is not None


def test_the_cut_recorder_accounts_for_every_cut(tmp_path):
    """``compaction_cuts.py`` on a national run at 1000 m: its steps add up to the cuts and
    the seconds its first line counts, and the run it wraps writes its folder."""
    script = Path(__file__).with_name("compaction_cuts.py")
    out = tmp_path / "out"
    cli = ["--quiet", "run", "national", "--resolution", "1000", "--analysis", "off"]
    printed = subprocess.run(
        [sys.executable, str(script), "--", *cli, "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    head = re.search(r"minimum cuts ([\d.]+) s: (\d+) in (\d+) count searches", printed)
    steps = re.findall(r"^ +\d+\+? +(\d+) +[\d,]+ +([\d.]+) +[\d.]+$", printed, re.M)
    assert head and steps, printed
    assert int(head[2]) > 0 and int(head[3]) > 0
    assert sum(int(cuts) for cuts, _ in steps) == int(head[2])
    assert sum(float(s) for _, s in steps) == pytest.approx(float(head[1]), abs=0.1 * len(steps))
    assert (out / "report.json").is_file()
