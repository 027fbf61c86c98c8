"""``ruimtepuzzel check CONFIG``: validate a config without solving."""

from __future__ import annotations

import argparse

from engine.config import parse_overrides
from engine.config.validation import show_path

NAME = "check"
HELP = (
    "Validate a config as 'run' does, without the solve (keys, units, layers, provinces, and "
    "the targets, together, against the land the rules allow) and print claims in ha per "
    "province next to the land allowed for them. Exits as 'run' would: 0, or 2 with its error."
)
EXAMPLES = """\
  ruimtepuzzel check national
  ruimtepuzzel check configs/provinces/limburg.toml --resolution 1000
  ruimtepuzzel check configs/national.toml --set assumptions.deep_polder_storage_share=0.10
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        help="a config file (TOML), or the name of a shipped one: "
        "national, or a province (utrecht, zuid-holland, ...)",
    )
    parser.add_argument("--grid", help="grid name (e.g. nl) or path; default: the config's")
    parser.add_argument("--resolution", type=float, help="cell size in metres")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (as for run)",
    )


def format_summary(summary: dict) -> str:
    rows = summary["rows"]
    claims = list(dict.fromkeys(r["claim"] for r in rows))
    zones = list(dict.fromkeys((r["zoning"], r["zone"]) for r in rows))
    by = {(r["zoning"], r["zone"], r["claim"]): r for r in rows}
    width = max(len(z) for _, z in zones) + 2
    lines = [
        f"{summary['config']}: {summary['scope']} on grid {summary['grid']}, "
        f"{summary['cells']:,} cells of {summary['cell_area_ha']:g} ha",
        *(f"extends {show_path(f)}" for f in summary.get("extends", [])),
        "target ha / land allowed ha, per zone and claim ('-' = no target):",
        "".ljust(width) + "".join(c[:16].rjust(20) for c in claims),
    ]
    for zoning, zone in zones:
        cells = []
        for c in claims:
            r = by.get((zoning, zone, c))
            if r is None:
                cells.append("".rjust(20))
                continue
            lo = "-" if r["lower_ha"] is None else f"{r['lower_ha']:,.0f}"
            cells.append(f"{lo}/{r['allowed_ha']:,.0f}".rjust(20))
        lines.append(zone[: width - 2].ljust(width) + "".join(cells))
    for note in summary["notes"]:
        lines.append(f"note: {note}")
    for d in summary["deviations"]:
        lines.append(
            f"deviation: layer {d['layer']} from {d['dataset']} ({d['location']}): {d['reason']}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from engine.errors import RuimtepuzzelError
    from engine.run import check

    try:
        summary = check(
            args.config,
            grid=args.grid,
            resolution=args.resolution,
            overrides=parse_overrides(args.set),
        )
    except RuimtepuzzelError as err:
        # A target the land cannot take: the table shows where, then the error as 'run'
        # gives it (the same message and exit status).
        if getattr(err, "summary", None):
            print(format_summary(err.summary))
        raise
    print(format_summary(summary))
    if summary["shortfalls"]:
        # Elastic targets above their land are no refusal, but no "everything fits" either.
        n = summary["shortfalls"]
        print(
            f"ok: the config is valid; {n} {'target is' if n == 1 else 'targets are'} above the "
            f"land {'its' if n == 1 else 'their'} rules allow (the notes above): the run will "
            "report the shortfall"
        )
    else:
        print("ok: the config is valid and all the targets fit on the land their rules allow")
    return 0
