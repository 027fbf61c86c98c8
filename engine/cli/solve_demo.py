"""``ruimtepuzzel solve-demo``: solve a generated national-size problem and show the certificate."""

from __future__ import annotations

import time

NAME = "solve-demo"
HELP = "Solve a generated allocation problem with the exact fast solver and print the certificate."
EXAMPLES = """\
  ruimtepuzzel solve-demo                       # 1 million cells x 8 options, 12 provinces
  ruimtepuzzel solve-demo --cells 3400000       # national size at 100 m
  ruimtepuzzel solve-demo --cells 20000 --check # also solve with HiGHS and compare
"""


def add_arguments(parser) -> None:
    parser.add_argument("--cells", type=int, default=1_000_000, help="number of cells")
    parser.add_argument("--options", type=int, default=8, help="options per cell")
    parser.add_argument("--provinces", type=int, default=12, help="zones of the province zoning")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated layers")
    parser.add_argument(
        "--check", action="store_true", help="solve with HiGHS through PuLP too (small problems)"
    )


def run(args) -> int:
    import engine
    from engine.synthetic import allocation_problem

    problem = allocation_problem(args.cells, args.options, args.provinces, seed=args.seed)
    print(problem)
    start = time.perf_counter()
    solution = engine.solve(problem, method="fast")
    elapsed = time.perf_counter() - start
    print(f"fast:  objective {solution.objective:.10g}  gap {solution.gap:.1e}  "
          f"status {solution.status}  {elapsed:.2f} s")
    stages = ", ".join(f"{k} {v:.2f}" for k, v in solution.timings.items() if isinstance(v, float))
    print(f"       stages (s): {stages}")
    if args.check:
        start = time.perf_counter()
        reference = engine.solve(problem, method="highs")
        print(f"highs: objective {reference.objective:.10g}  gap {reference.gap:.1e}  "
              f"{time.perf_counter() - start:.2f} s")
    return 0 if solution.status == "optimal" else 1
