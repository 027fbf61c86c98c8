"""The analysis's re-solves as one pool (:mod:`engine.analysis.resolves`): the costliest
first, every one once, beside the work that needs none of them, errors raised and none
started after the caller failed; and the analysis through it gives what the rules' and the
exchanges' own functions give, whatever the number of workers."""

from __future__ import annotations

import io
import re
import threading
import warnings
from pathlib import Path

import pytest
from rp_grid import synthetic_grid

import engine
from engine import progress
from engine.analysis import exchange_suggestions, rule_costs
from engine.analysis.outputs import analyse
from engine.analysis.resolves import Resolve, ResolvesBeside, resolve_cost, run_resolves
from engine.analysis.rule_costs import compiled_relaxations
from engine.progress import Stages
from engine.run import prepare

NATIONAL = Path(__file__).resolve().parents[1] / "configs" / "national.toml"


def _recording(costs, ran: list) -> list[Resolve]:
    return [Resolve(str(i), cost, lambda i=i: ran.append(i)) for i, cost in enumerate(costs)]


def test_the_costliest_run_first_and_every_one_once():
    costs = [1.0, 7.0, 3.0, 7.0, 0.5]
    ran = []
    run_resolves(_recording(costs, ran), "tests", workers=1)
    # Equal costs keep their order: the order is the same in every run.
    assert ran == [1, 3, 2, 0, 4]
    ran = []
    run_resolves(_recording(costs, ran), "tests", workers=2)
    assert sorted(ran) == [0, 1, 2, 3, 4]


def test_a_cost_grows_with_the_gain_and_stays_finite():
    scale = 5e5
    costs = [resolve_cost(g, scale) for g in (0.0, 1.0, 1e3, 1e5, 1e300, float("inf"))]
    assert costs[0] == 1.0 and costs == sorted(costs)
    assert all(0 < c < float("inf") for c in costs)
    # A gain below zero (an estimate's rounding) costs what none does.
    assert resolve_cost(-1.0, scale) == 1.0


def test_the_work_beside_runs_while_the_re_solves_do():
    """A re-solve that waits for the caller's work ends only if that work runs beside it."""
    started, beside_done = threading.Event(), threading.Event()

    def resolve():
        started.set()
        assert beside_done.wait(10), "the caller's work did not run beside the re-solve"

    with ResolvesBeside([Resolve("waits", 1.0, resolve)], "tests", workers=2):
        assert started.wait(10)
        beside_done.set()


def test_an_error_in_a_re_solve_is_raised_and_starts_no_further_one():
    def fails():
        raise ValueError("a re-solve failed")

    for workers in (1, 2):
        ran = []
        resolves = [Resolve("fails", 5.0, fails), *_recording([1.0, 2.0], ran)]
        failed = pytest.raises(ValueError, match="a re-solve failed")
        with failed, ResolvesBeside(resolves, "tests", workers=workers):
            pass
        # One worker: the failed one ran first, alone. Two: the next may have started.
        assert ran == [] if workers == 1 else ran in ([], [1])


def test_leaving_by_an_error_starts_no_further_re_solve():
    """An error (or Ctrl-C) in the caller's work waits for the re-solve under way only."""
    gate, ran = threading.Event(), []

    def under_way():
        assert gate.wait(10)
        ran.append("under way")

    resolves = [
        Resolve("under way", 2.0, under_way),
        Resolve("next", 1.0, lambda: ran.append("next")),
    ]
    with pytest.raises(KeyError), ResolvesBeside(resolves, "tests", workers=1):
        # Let the re-solve under way end well after the error has left the block.
        threading.Timer(0.3, gate.set).start()
        raise KeyError("the caller's work failed")
    assert ran == ["under way"]


@pytest.fixture(scope="module")
def solved():
    compiled, _ = prepare(NATIONAL, grid=synthetic_grid(block=20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = engine.solve(compiled.problem, method="fast")
    return compiled, sol


def test_the_analysis_gives_what_the_rules_and_exchanges_own_functions_give(solved, monkeypatch):
    """The rules' and the exchanges' re-solves in one pool, beside the conflicts: the same
    entries as :func:`rule_costs` and :func:`exchange_suggestions` give one after the other,
    with one worker or two."""
    compiled, sol = solved
    problem = compiled.problem
    limits = {"rule_cost_resolves": 3, "max_exchanges": 2}
    sections, lines = [], io.StringIO()
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)  # a line for every re-solve
    for workers in (1, 2):
        with Stages(["analysis"], show=True, stream=lines, tty=False) as stages:
            stages.start("analysis")
            options = {**limits, "resolve_workers": workers}
            found = analyse(problem, sol, compiled=compiled, options=options, level="full")
            sections.append(found["sections"])
            stages.done()
    # One count for the rules' and the exchanges' re-solves together: 3 + 2 a run.
    counted = re.findall(r"analysis: (\d+)/(\d+) re-solves", lines.getvalue())
    assert {total for _, total in counted} == {"5"} and ("5", "5") in counted
    costs = rule_costs(problem, sol, compiled_relaxations(compiled), max_resolves=3)
    exchanges = exchange_suggestions(problem, sol, max_suggestions=2)
    for e in exchanges:
        for key in ("zoning_index", "claim_index", "from_index", "to_index"):
            e.pop(key)
    assert sum(c["method"] == "re-solve" for c in costs) == 3 and exchanges
    for section in sections:
        assert section["rule_costs"] == engine.outputs.clean_json(costs)
        assert section["exchanges"] == engine.outputs.clean_json(exchanges)
        assert section["analysis_timings"]["re_solves"] > 0
