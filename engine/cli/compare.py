"""``ruimtepuzzel compare RUN_A RUN_B --out DIR``: what changes between two runs."""

from __future__ import annotations

import argparse

NAME = "compare"
HELP = (
    "Compare two runs on the same grid: change map (from -> to option) as change.tif, "
    "allocation and shadow-price changes per province and claim, in compare.json and "
    "compare.html."
)
EXAMPLES = """\
  ruimtepuzzel compare out/national out/no-n2000 --out out/compare-n2000
  ruimtepuzzel compare out/national out/dense --out out/compare-dense
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", help="first run folder (the reference)")
    parser.add_argument("run_b", help="second run folder (the variant)")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")


def run(args: argparse.Namespace) -> int:
    from engine.analysis.compare import compare_runs

    result = compare_runs(args.run_a, args.run_b, args.out)
    change = result["objective_change"]
    print(
        f"{result['hectares_changed']:,.0f} ha change option; objective change {change:+,.2f}"
        if change is not None
        else "objective change unknown"
    )
    print(f"wrote {args.out}/change.tif, compare.json, compare.html")
    return 0
