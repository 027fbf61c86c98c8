"""``ruimtepuzzel report RUN_DIR``: a run's pages again, in another language or as PDF."""

from __future__ import annotations

import argparse

NAME = "report"
HELP = (
    "Write a run folder's report.html, summary.md and legends again (in --lang), and with "
    "--pdf print report.html to report.pdf through headless Chromium (A4)."
)
EXAMPLES = """\
  ruimtepuzzel report out/utrecht --pdf
  ruimtepuzzel report out/national --lang en
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run folder (written by 'ruimtepuzzel run')")
    parser.add_argument(
        "--lang", choices=("nl", "en"), default="nl", help="language of the pages (default nl)"
    )
    parser.add_argument(
        "--pdf", action="store_true", help="also print report.html to report.pdf (Chromium)"
    )


def run(args: argparse.Namespace) -> int:
    from engine import i18n
    from engine.report import rewrite_pages

    written = rewrite_pages(args.run_dir, lang=args.lang, pdf=args.pdf)
    print(i18n.get(args.lang).text("cli_wrote", folder=args.run_dir, files=", ".join(written)))
    return 0
