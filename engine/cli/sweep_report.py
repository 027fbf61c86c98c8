"""``ruimtepuzzel sweep-report DIR``: trade-off plots over a sweep's axes, an HTML page."""

from __future__ import annotations

import argparse
import sys

NAME = "sweep-report"
HELP = (
    "Trade-off plots over the axes of a finished (or partly finished) sweep: objective, "
    "shortfall and shadow prices per axis value, and a table of the variants, written to "
    "DIR/report/index.html."
)
EXAMPLES = """\
  ruimtepuzzel sweep-report out/demo-sweep
  ruimtepuzzel sweep-report out/national-sweep
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="the --out folder of 'ruimtepuzzel sweep'")


def run(args: argparse.Namespace) -> int:
    from engine.sweep import write_report

    page = write_report(args.dir)
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser()
    add_arguments(p)
    sys.exit(run(p.parse_args()))
