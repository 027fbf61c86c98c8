"""What each rule's re-solve in the analysis costs: every rule lifted and re-solved on its own.

The analysis's rule costs re-solve most rules (:func:`engine.analysis.rule_costs`), two at a
time; this one by one, on one core, prints per rule the cells whose options the lifting
changes, the re-solve's wall and CPU seconds, its gain and how it was found (restricted
around the optimum's prices, or in full, and why):

    python benchmarks/rule_resolves.py --resolution 100
"""

from __future__ import annotations

import argparse
import time

import engine
from engine.analysis.rule_costs import _passes_unchanged, _Relaxation, compiled_relaxations
from engine.analysis.rule_costs import resolve as resolve_relaxed
from engine.run import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="national")
    parser.add_argument("--resolution", type=float, default=100)
    args = parser.parse_args()

    compiled, _ = prepare(args.config, resolution=args.resolution)
    problem = compiled.problem
    clock = time.perf_counter()
    sol = engine.solve(problem)
    print(f"solve: {time.perf_counter() - clock:.1f} s, objective {sol.objective!r}")
    base = problem.allowed
    tested = _passes_unchanged(problem)
    for name, relaxed in compiled_relaxations(compiled).items():
        relaxation = _Relaxation.of(relaxed, base)
        clock, cpu = time.perf_counter(), time.process_time()
        rsol = resolve_relaxed(
            relaxation.problem(problem, base),
            "fast",
            sol=sol,
            before=base,
            tested=tested and relaxation.forbidden(base) == 0,
            changed=relaxation.cells,
        )
        wall, cpu = time.perf_counter() - clock, time.process_time() - cpu
        how = rsol.timings.get("local", "-")
        if "local_reason" in rsol.timings:
            how += f" ({rsol.timings['local_reason']})"
        print(
            f"{name[:40]:40s} {len(relaxation.cells):10,d} cells  {wall:6.2f} s  "
            f"{cpu:6.2f} s CPU  gain {rsol.objective - sol.objective:12.4f}  {how}",
            flush=True,
        )


if __name__ == "__main__":
    main()
