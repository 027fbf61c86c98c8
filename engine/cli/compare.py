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
    parser.add_argument(
        "--lang", choices=("nl", "en"), default="nl", help="language of compare.html (default nl)"
    )


def run(args: argparse.Namespace) -> int:
    from engine import i18n
    from engine.analysis.compare import compare_runs

    result = compare_runs(args.run_a, args.run_b, args.out, lang=args.lang)
    t = i18n.get(args.lang)
    ha = t.quantity(result["hectares_changed"], "ha")
    print(t.text("cli_compare", ha=ha, change=t.number(result["objective_change"])))
    print(t.text("cli_wrote", folder=args.out, files="change.tif, compare.json, compare.html"))
    return 0
