"""How the analysis's re-solves fill its workers: the rules' and the exchanges' re-solves in
their one pool (:mod:`engine.analysis.resolves`), each printed with when it started and
ended on which worker, the costliest first as the analysis runs them:

    python benchmarks/resolve_schedule.py --resolution 100 --workers 2

A worker idle before the last re-solve ends is time the pool's order left on the table.
"""

from __future__ import annotations

import argparse
import threading
import time

import engine
from engine.analysis.exchange import plan_exchanges
from engine.analysis.resolves import Resolve, run_resolves
from engine.analysis.rule_costs import compiled_relaxations, plan_rule_costs
from engine.run import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="national")
    parser.add_argument("--resolution", type=float, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    compiled, _ = prepare(args.config, resolution=args.resolution)
    problem = compiled.problem
    sol = engine.solve(problem)
    clock = time.perf_counter()
    rules = plan_rule_costs(problem, sol, compiled_relaxations(compiled), workers=args.workers)
    exchanges = plan_exchanges(problem, sol, max_suggestions=3)
    print(f"planned: {time.perf_counter() - clock:.1f} s")
    ran = []
    start = time.perf_counter()

    def timed(resolve: Resolve) -> Resolve:
        def run() -> None:
            began = time.perf_counter() - start
            resolve.run()
            ended = time.perf_counter() - start
            ran.append((began, ended, threading.current_thread().name, resolve))

        return Resolve(resolve.name, resolve.cost, run)

    resolves = [*rules.resolves, *exchanges.resolves]
    run_resolves([timed(r) for r in resolves], "re-solves", workers=args.workers)
    print(f"re-solves: {time.perf_counter() - start:.1f} s")
    for began, ended, worker, resolve in sorted(ran, key=lambda r: r[:2]):
        print(f"{began:6.1f} {ended:6.1f} s  cost {resolve.cost:5.1f}  {worker:12s} {resolve.name}")


if __name__ == "__main__":
    main()
