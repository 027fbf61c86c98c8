"""The analysis's re-solves as one piece of work: the rules' (:mod:`engine.analysis.rule_costs`)
and the exchanges' (:mod:`engine.analysis.exchange`) on one pool of threads, the costliest
first, counted as one.

Each re-solve fills in its own entry and depends on nothing but its own inputs, so the
results are the same whatever the number of workers and the order they run in. Run as one
pool, the exchanges' few long re-solves no longer wait for the rules' last ones with a core
idle beside them (national 100 m: the three exchanges took 6.6, 1.5 and 1.4 s one by one,
so two workers spent 7 of their 14 s on one of them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from engine import progress

__all__ = ["Resolve", "resolve_cost", "run_resolves"]


@dataclass(frozen=True)
class Resolve:
    """One re-solve: ``run`` fills in its entry; ``cost`` is its work, roughly
    (:func:`resolve_cost`), for the order and the time left; ``name`` says what it
    re-solves (a rule, an exchange)."""

    name: str
    cost: float
    run: Callable[[], None]


def resolve_cost(gain: float, scale: float) -> float:
    """A re-solve's work, roughly, from the gain it is expected to find (a rule's price
    bound, an exchange's estimate): it grows with how far the prices must move, but far
    slower. National 100 m, CPU: about 1 s at gains up to 1e-4 of the objective, 2-10 s up
    to 0.05, 13-25 s for 0.2-2 times it. Of the forms tried on the rules' 19 re-solves, a
    power of the logarithm came nearest over the analysis (the time left said after each
    re-solve against the time it took): 40 s said of 51, 27 of 33, 16 of 15; the logarithm
    alone said 56, 43, 28; equal costs 151, 141, 101. Finite whatever the gain (a display
    must not stop the analysis)."""
    return (1.0 + float(np.log1p(min(max(gain, 0.0) / (1e-4 * scale), 1e300)))) ** 1.5


def run_resolves(
    resolves: list[Resolve],
    unit: str,
    *,
    workers: int = 1,
) -> None:
    """Run ``resolves`` on ``workers`` threads, the costliest first (the longest last would
    leave the other workers idle while it runs), told as ``unit`` done
    (:class:`progress.Tally`). Once one has failed (or a Ctrl-C came) no further one starts:
    the analysis fails with it; its error is raised once the ones under way have ended (of
    two that failed, the costlier one's)."""
    order = sorted(range(len(resolves)), key=lambda i: -resolves[i].cost)
    tally = progress.Tally([resolves[i].cost for i in order], unit, workers=workers)
    stop = threading.Event()

    def work(k: int) -> None:
        if stop.is_set():
            return
        try:
            with tally.piece(k):
                resolves[order[k]].run()
        except BaseException:
            stop.set()
            raise

    if workers > 1 and len(order) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="re-solve") as pool:
            list(pool.map(work, range(len(order))))
    else:
        for k in range(len(order)):
            work(k)
