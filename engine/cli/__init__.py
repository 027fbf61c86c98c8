"""The ``ruimtepuzzel`` command line.

Each sub-command lives in its own module of this package with ``NAME``, ``HELP``,
``EXAMPLES`` (shown by ``--help``), ``add_arguments(parser)`` and ``run(args) -> int``.
Add a command by adding its module to ``COMMANDS``.

Results go to stdout; what the engine says on the way (cache builds, fallbacks, repair
rounds: the ``logging`` of the ``engine`` package) and errors go to stderr. An error that is
the user's to fix (a :class:`~engine.errors.RuimtepuzzelError`) is one line and exit
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from engine.cli import (
    check,
    compare,
    grid,
    report,
    run,
    serve,
    setup,
    solve_demo,
    sweep,
    sweep_report,
)
from engine.errors import RuimtepuzzelError

COMMANDS = [setup, solve_demo, grid, run, check, sweep, sweep_report, compare, report, serve]


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("ruimtepuzzel")
    except PackageNotFoundError:  # a checkout on the path, not installed
        return "0+unknown"


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
    parser.add_argument("--version", action="version", version=f"ruimtepuzzel {version()}")
    # Own dests: a sub-command's --quiet (no progress bar) must not overwrite these.
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument(
        "-v",
        "--verbose",
        dest="log_verbose",
        action="store_true",
        help="say more on stderr: every step the engine logs",
    )
    talk.add_argument(
        "-q",
        "--quiet",
        dest="log_quiet",
        action="store_true",
        help="say less on stderr: only warnings and errors",
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


class _Stderr(logging.StreamHandler):
    """A handler on the ``sys.stderr`` of the moment (tests and notebooks swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(level: int) -> None:
    """The engine's log lines on stderr, at ``level``; set again on every call (tests call
    :func:`main` many times in one process)."""
    logger = logging.getLogger("engine")
    for handler in [h for h in logger.handlers if getattr(h, "_ruimtepuzzel", False)]:
        logger.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(
        logging.Formatter(
            "ruimtepuzzel: %(name)s: %(message)s"
            if level <= logging.DEBUG
            else "ruimtepuzzel: %(message)s"
        )
    )
    handler._ruimtepuzzel = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(
        logging.DEBUG if args.log_verbose else logging.WARNING if args.log_quiet else logging.INFO
    )
    try:
        from engine.config import check_environment

        check_environment()  # before any work: a typo must not surface after an hour
        return int(args.handler(args) or 0)
    except RuimtepuzzelError as err:
        # The user's to fix: the message says what, where and how; no traceback.
        print(f"ruimtepuzzel {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemError) as err:
        # numba turns Ctrl-C inside a kernel into a SystemError with the interrupt as context.
        if not isinstance(err, KeyboardInterrupt) and not isinstance(
            err.__cause__ or err.__context__, KeyboardInterrupt
        ):
            raise
        print(f"ruimtepuzzel {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
