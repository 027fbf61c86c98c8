"""The ``ruimtepuzzel`` command line.

Each sub-command lives in its own module of this package with ``NAME``, ``HELP``,
``EXAMPLES`` (shown by ``--help``), ``add_arguments(parser)`` and ``run(args) -> int``.
Add a command by adding its module to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys

from engine.cli import check, compare, grid, run, solve_demo, sweep, sweep_report

COMMANDS = [solve_demo, grid, run, check, sweep, sweep_report, compare]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ruimtepuzzel",
        description=(
            "Spatial conflict optimisation for Dutch spatial planning: places the competing "
            "land claims on raster cells by exact linear programming."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'ruimtepuzzel COMMAND --help' for the examples of a command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        cmd = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.HELP,
            epilog="examples:\n" + module.EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as err:
        # Input errors are the user's to fix: the message says what and where, no traceback.
        print(f"ruimtepuzzel {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
