"""The analysis's re-solves as one pool (:mod:`engine.analysis.resolves`): the costliest
first, every one once, errors and Ctrl-C raised with none started after them; and the
analysis through it gives what the rules' and the exchanges' own functions give, whatever
the number of workers."""

from __future__ import annotations

import io
import os
import re
import signal
import threading
import warnings
from pathlib import Path

import pytest
from rp_grid import synthetic_grid

import engine
from engine import progress
from engine.analysis import exchange_suggestions, rule_costs
from engine.analysis.outputs import analyse
from engine.analysis.resolves import Resolve, resolve_cost, run_resolves
from engine.analysis.rule_costs import compiled_relaxations
from engine.errors import RuimtepuzzelError
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


def test_an_error_in_a_re_solve_is_raised_and_starts_no_further_one():
    """A re-solve fails while the costliest is still under way (held until well after): that
    one ends, the error is raised, and none of those waiting starts, though the worker the
    error freed would take the next before the caller, still waiting for the costliest,
    has heard of the error."""
    for workers in (1, 2):
        gate, ran = threading.Event(), []

        def fails():
            raise ValueError("a re-solve failed")

        def costliest(gate=gate, ran=ran):
            assert gate.wait(10)
            ran.append("costliest")

        waiting = [Resolve("last", 1.0, lambda ran=ran: ran.append("last")) for _ in range(5)]
        resolves = [*waiting, Resolve("fails", 2.0, fails), Resolve("costliest", 5.0, costliest)]
        threading.Timer(0.3, gate.set).start()
        with pytest.raises(ValueError, match="a re-solve failed"):
            run_resolves(resolves, "tests", workers=workers)
        assert ran == ["costliest"]


def test_a_ctrl_c_starts_no_further_re_solve():
    """Ctrl-C while the re-solves run: those under way end, the ones waiting never start,
    and the interrupt reaches the caller."""
    gate, ran = threading.Event(), []

    def under_way(name: str):
        assert gate.wait(10)
        ran.append(name)

    def interrupted(signum, frame):
        gate.set()  # the re-solves under way may end now
        raise KeyboardInterrupt

    resolves = [
        Resolve("first", 3.0, lambda: under_way("first")),
        Resolve("second", 2.0, lambda: under_way("second")),
        Resolve("waiting", 1.0, lambda: ran.append("waiting")),
    ]
    before = signal.signal(signal.SIGINT, interrupted)
    try:
        # To the process, as a terminal's Ctrl-C: the main thread takes it while it waits.
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt):
            run_resolves(resolves, "tests", workers=2)
    finally:
        signal.signal(signal.SIGINT, before)
    assert sorted(ran) == ["first", "second"]


def test_an_unknown_analysis_option_is_refused(solved):
    """An option the analysis does not have (one renamed, say) is an error that names the
    options it has, not a setting silently ignored."""
    compiled, sol = solved
    with pytest.raises(RuimtepuzzelError, match="rule_cost_workers unknown.*resolve_workers"):
        analyse(compiled.problem, sol, options={"rule_cost_workers": 2}, level="quick")


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
        # In the same order whichever thread ended first (report.json, byte for byte).
        assert list(section["analysis_timings"]) == [
            "conflicts",
            "scarcity",
            "rule_bounds",
            "exchange_estimates",
            "re_solves",
        ]
