"""``ruimtepuzzel sweep-report DIR``: trade-off plots over a sweep's axes, an HTML page."""

from __future__ import annotations

import argparse
import sys

NAME = "sweep-report"
HELP = (
    "The page of a finished (or partly finished) sweep, DIR/report/index.html: first the maps "
    "of what holds across the variants (no-regret, most frequent use, the share per claim, "
    "what each axis moves), brought up to date with the variants done, then the trade-offs "
    "along the axes and the variants."
)
EXAMPLES = """\
  ruimtepuzzel sweep-report out/demo-sweep
  ruimtepuzzel sweep-report out/national-sweep
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="the --out folder of 'ruimtepuzzel sweep'")
    parser.add_argument(
        "--lang", choices=("nl", "en"), default=None, help="language of the page (default nl)"
    )


def run(args: argparse.Namespace) -> int:
    from engine.sweep import write_report

    page = write_report(args.dir, lang=args.lang)
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser()
    add_arguments(p)
    sys.exit(run(p.parse_args()))
