"""``ruimtepuzzel solve-demo``: solve a generated national-size problem and show the certificate."""

from __future__ import annotations

import argparse
import time

NAME = "solve-demo"
HELP = "Solve a generated allocation problem with the exact fast solver and print the certificate."
EXAMPLES = """\
  ruimtepuzzel solve-demo                       # 1 million cells x 8 options, 12 provinces
  ruimtepuzzel solve-demo --cells 3400000       # national size at 100 m
  ruimtepuzzel solve-demo --cells 20000 --check # also solve with HiGHS and compare
"""


def _at_least(minimum: int):
    def number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}; give {minimum} or more")
        return value

    return number


def add_arguments(parser) -> None:
    parser.add_argument(
        "--cells", type=_at_least(100), default=1_000_000, help="number of cells (at least 100)"
    )
    parser.add_argument(
        "--options",
        type=_at_least(2),
        default=8,
        help="options per cell (at least 2: keep and one to allocate)",
    )
    parser.add_argument(
        "--provinces", type=_at_least(1), default=12, help="zones of the province zoning"
    )
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
    print(
        f"fast:  objective {solution.objective:.10g}  gap {solution.gap:.1e}  "
        f"status {solution.status}  {elapsed:.2f} s"
    )
    stages = ", ".join(f"{k} {v:.2f}" for k, v in solution.timings.items() if isinstance(v, float))
    print(f"       stages (s): {stages}")
    if args.check:
        start = time.perf_counter()
        reference = engine.solve(problem, method="highs")
        print(
            f"highs: objective {reference.objective:.10g}  gap {reference.gap:.1e}  "
            f"{time.perf_counter() - start:.2f} s"
        )
    return 0 if solution.status == "optimal" else 1
