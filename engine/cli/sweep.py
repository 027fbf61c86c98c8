"""``ruimtepuzzel sweep SCENARIO --out DIR``: every variant of a scenario on Dask, resumable."""

from __future__ import annotations

import argparse
import sys

NAME = "sweep"
HELP = (
    "Run every variant of a scenario (scenarios/*.toml) on Dask: a LocalCluster by default, "
    "or an existing cluster with --scheduler. Each variant writes its run outputs under "
    "DIR/<variant-id>/; DIR/results.parquet and results.csv hold one row per variant x "
    "zoning x zone x claim; DIR/robustness/ the maps of what holds across the variants "
    "(no-regret, frequency per claim, what each axis moves). Run the same command again after "
    "a kill: finished variants are kept and the counts resume."
)
EXAMPLES = """\
  ruimtepuzzel sweep scenarios/demo-sweep.toml --out out/demo-sweep
  ruimtepuzzel sweep scenarios/national-sweep.toml --out out/national-sweep --workers 2
  ruimtepuzzel sweep scenarios/national-sweep.toml --out /shared/sweep --scheduler tcp://head:8786
  ruimtepuzzel sweep scenarios/demo-sweep.toml --out out/demo-sweep --list
  ruimtepuzzel sweep-report out/demo-sweep
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", help="a scenario file (TOML): base config plus variant axes")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="LocalCluster workers (default: one per core)")
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running Dask scheduler, e.g. tcp://head:8786 (the workers must "
        "see --out and the configs at the same paths)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long to wait for --scheduler to answer (default 10)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="numba threads per worker (default 1; more oversubscribes cores)",
    )
    parser.add_argument(
        "--analysis",
        default="off",
        choices=("full", "quick", "off"),
        help="the analysis outputs of 'run' per variant (conflict and "
        "scarcity maps, report.html): off (default: the results table and "
        "each variant's report.json, allocation.tif, manifest.json, "
        "summary.md), quick (price bounds, about 5 s more per variant at "
        "250 m), full (re-solves for exact rule costs and exchanges)",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="run failed variants again (default: keep their recorded error)",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the variants (id, done or not, warm-start neighbour) and stop",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.sweep import (
        SCHEDULER_TIMEOUT_S,
        check_options,
        done_record,
        load_scenario,
        sweep,
        variant_key,
    )

    timeout = SCHEDULER_TIMEOUT_S if args.timeout is None else args.timeout
    # Options first: a bad one must not wait for the scenario's checks, nor a cluster.
    check_options(args.workers, args.scheduler, args.threads, args.analysis, timeout)
    scenario = load_scenario(args.scenario)
    if args.list:
        for v in scenario.variants:
            rec = done_record(Path(args.out) / v.id, variant_key(scenario, v))
            state = "todo" if rec is None else rec["status"]
            warm = f"  <- {v.warm_from}" if v.warm_from else ""
            print(f"{v.index:4d}  {state:9s} {v.id}{warm}")
        return 0
    summary = sweep(
        scenario,
        args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.quiet,
        retry_failed=args.retry_failed,
        threads=args.threads,
        analysis=args.analysis,
        timeout=timeout,
    )
    print(
        f"{scenario.name}: {summary['variants']} variants, {summary['computed']} computed, "
        f"{summary['reused']} already done, {summary['failed']} failed; "
        f"{summary['seconds']:.1f} s"
    )
    print(f"wrote {summary['results']} ({summary['rows']} rows) and results.csv")
    if summary["robustness"]:
        print(f"wrote {summary['robustness']}/: no-regret and frequency maps, robustness.json")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser()
    add_arguments(p)
    sys.exit(run(p.parse_args()))
