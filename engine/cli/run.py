"""``ruimtepuzzel run CONFIG --out DIR``: the main job, end to end."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.config import parse_overrides

NAME = "run"
HELP = (
    "Run a config end to end: grid, rules and suitability, solve, and write report.json, "
    "allocation.tif, manifest.json and summary.md to --out."
)
EXAMPLES = """\
  ruimtepuzzel run national --out out/national
  ruimtepuzzel run configs/national.toml --out out/national     # the same, by path
  ruimtepuzzel run configs/national.toml --resolution 100 --out out/national-100m
  ruimtepuzzel run utrecht --out out/utrecht
  ruimtepuzzel run configs/national.toml --set assumptions.housing_density_urban=80 --out out/dense
  ruimtepuzzel run configs/national.toml --set rules.exclusions.natura2000.enabled=false \
      --out out/no-n2000
  ruimtepuzzel run configs/national.toml --set assumptions.housing_density_urban=80 \
      --warm-start out/national --analysis quick --out out/dense
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        help="a config file (TOML), or the name of a shipped one: "
        "national, or a province (utrecht, zuid-holland, ...)",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="output folder: created if missing, replaced whole when the run "
        "is done (a new or empty folder, or an earlier run's)",
    )
    parser.add_argument("--grid", help="grid name (e.g. nl) or path; default: the config's")
    parser.add_argument("--resolution", type=float, help="cell size in metres (1000, 250, 100, 25)")
    parser.add_argument(
        "--method",
        default="auto",
        choices=("auto", "fast", "highs", "cbc"),
        help="solver backend (default: auto)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. assumptions.solar_yield=1.2 "
        '(repeatable; VALUE is read as TOML: numbers, true/false, "text")',
    )
    parser.add_argument(
        "--warm-start",
        metavar="RUN_DIR",
        help="start the solver from the prices of an earlier run of a similar "
        "config (its prices.npz); same optimum, found sooner",
    )
    parser.add_argument(
        "--analysis",
        choices=("full", "quick", "off"),
        help="conflicts, scarcity, rule costs and exchanges: full (re-solves "
        "to make rule costs and exchanges exact), quick (price bounds only) "
        "or off (default: $RUIMTEPUZZEL_ANALYSIS, else full)",
    )
    parser.add_argument(
        "--lang",
        choices=("nl", "en"),
        default="nl",
        help="language of report.html, summary.md, the legends and these lines (default nl)",
    )
    parser.add_argument(
        "--memory",
        metavar="SIZE",
        help="run within about this much memory (e.g. 8GB, 4GB, 512MB; the same result "
        "bit for bit): the solver's price stage over chunks of cells sized for it, and "
        "the cells' values and allowed options (75 bytes a cell) in files on the --out "
        "folder's disk that the kernel pages, each pass holding a slice of them at a time "
        "and HiGHS's LPs none; the run's process hands freed blocks of 4 MiB or more back "
        "to the system at once; the repair and the writing still hold a few bytes of every "
        "cell (a national 25 m run, analysis and compaction off: 3.94e9 bytes at the peak "
        "with --memory 4GB, 8.7e9 without); default: everything in memory",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the price stage on a Dask cluster: a scheduler's address "
        "(tcp://HOST:8786, e.g. one started by dask-jobqueue) or 'local' for a "
        "LocalCluster of one process per core",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress (stages, work done, time left)"
    )


def run(args: argparse.Namespace) -> int:
    from engine import i18n
    from engine.outputs import listed_outputs
    from engine.report import PRICES_FILE, read_prices
    from engine.run import run as run_job

    prices = None
    if args.warm_start:
        prices = read_prices(args.warm_start)
        if prices is None:
            print(
                f"ruimtepuzzel run: --warm-start {args.warm_start}: no {PRICES_FILE} there; "
                f"give the --out folder of an earlier run",
                file=sys.stderr,
            )
            return 2
    report = run_job(
        args.config,
        args.out,
        grid=args.grid,
        resolution=args.resolution,
        progress=not args.quiet,
        overrides=parse_overrides(args.set),
        method=args.method,
        prices=prices,
        analysis=args.analysis,
        lang=args.lang,
        memory=args.memory,
        scheduler=args.scheduler,
    )
    t = i18n.get(args.lang)
    short = [r for r in report["targets"] if (r["shortfall_ha"] or 0) > 0.5]
    times = ", ".join(
        f"{k} {t.number(v, 1)} s"
        for k, v in report["timings"].items()
        if isinstance(v, (int, float))
    )
    print(
        t.text(
            "cli_run_done",
            name=report["name"],
            status=t.group("status", report["status"]),
            gap=f"{report['gap']:.1e}",
            cells=t.number(report["cells"], 0),
            short=len(short),
            times=times,
        )
    )
    written = listed_outputs(Path(args.out).expanduser())
    print(t.text("cli_wrote", folder=args.out, files=", ".join(_in_order(written))))
    return 0


# The contract's files first, as the run has always named them; the rest as the manifest lists.
_FIRST = (
    "report.json",
    "allocation.tif",
    "manifest.json",
    "summary.md",
    "prices.npz",
    "report.html",
)


def _in_order(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: _FIRST.index(n) if n in _FIRST else len(_FIRST))


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser()
    add_arguments(p)
    sys.exit(run(p.parse_args()))
