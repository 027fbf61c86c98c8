"""``ruimtepuzzel setup``: compile the solver's Numba kernels into the cache, once per machine."""

from __future__ import annotations

import argparse

NAME = "setup"
HELP = (
    "compile the solver's kernels into the cache once (an install step, a cluster image; "
    "a first run does it by itself, beside its work)"
)
EXAMPLES = """\
  ruimtepuzzel setup                                      about half a minute of CPU, once
  RUIMTEPUZZEL_CACHE=/shared/cache ruimtepuzzel setup     into a cache the workers share
  ruimtepuzzel setup && ruimtepuzzel grid build nl -r 250   ready for the first 250 m run
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def run(args: argparse.Namespace) -> int:
    from engine.caches import numba_cache_dir
    from engine.progress import Stages, advance
    from engine.solve.warmup import warm_up

    with Stages(["kernels"], show=not args.quiet) as stages:
        stages.start("kernels")
        compiled, total = warm_up(lambda done, total, _: advance(done, total, "kernels"))
        stages.done()
    print(f"kernels in {numba_cache_dir()}: {compiled} compiled, {total - compiled} loaded")
    return 0
