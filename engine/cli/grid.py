"""``ruimtepuzzel grid``: build, describe, show and export raster grids."""

from __future__ import annotations

import argparse
import time

NAME = "grid"
HELP = "build, describe, show and export the raster grids (the nl demo grid or your own)"
EXAMPLES = """\
  ruimtepuzzel grid build nl --resolution 100      build (once) and cache the 100 m grid
  ruimtepuzzel grid info nl                         layers, units, provenance, credits
  ruimtepuzzel grid show nl --out sheet.png         all layers on one sheet
  ruimtepuzzel grid show nl -r 100 --bbox 120000,420000,200000,470000 \
      --layers land_cover,floodplain --out rivers.png   a few layers of an area
  ruimtepuzzel grid export nl --out nl_cogs/        one Cloud Optimized GeoTIFF per layer
  ruimtepuzzel grid info my_province.toml           a grid definition of your own
  ruimtepuzzel grid list                            shipped grids and what is cached
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def grid_action(name: str, help_: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_, description=help_)
        p.add_argument("grid", help="grid name in grids/ (e.g. nl) or path to a definition .toml")
        p.add_argument(
            "--resolution",
            "-r",
            type=float,
            default=None,
            help="cell size in metres (default: the definition's default)",
        )
        p.add_argument("--rebuild", action="store_true", help="build again even if cached")
        p.add_argument(
            "--quiet", action="store_true", help="no progress of a build (tiles, time left)"
        )
        return p

    grid_action("build", "build the grid (or find it in the cache) and print where it is")
    grid_action("info", "list the layers with units, provenance and ranges, and the credits")
    show = grid_action("show", "draw every layer on one PNG sheet with legends")
    show.add_argument("--out", "-o", required=True, help="PNG file to write")
    show.add_argument("--layers", help="comma-separated layers to draw (default: all)")
    show.add_argument(
        "--bbox", type=_bbox, help="xmin,ymin,xmax,ymax in grid metres: draw only this area"
    )
    export = grid_action("export", "write one Cloud Optimized GeoTIFF per layer to a folder")
    export.add_argument("--out", "-o", required=True, help="folder to write the COGs into")
    actions.add_parser("list", help="the shipped grid definitions and the cached builds")


def _bbox(text: str) -> list[float]:
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give xmin,ymin,xmax,ymax in grid metres, e.g. 120000,420000,200000,470000"
        )
    return box


def run(args: argparse.Namespace) -> int:
    from engine.grid import cache_root, grid_folder, load_definition, open_folder
    from engine.grid.definition import GRIDS_DIR
    from engine.progress import Stages

    if args.action == "list":
        print(f"grid definitions in {GRIDS_DIR}:")
        for path in sorted(GRIDS_DIR.glob("*.toml")):
            d = load_definition(path)
            print(
                f"  {d.name:<12} resolutions {', '.join(f'{r:g}' for r in d.resolutions)} m"
                f"  {d.title}"
            )
        root = cache_root()
        print(f"cached builds in {root}:")
        for folder in sorted(root.glob("*")) if root.is_dir() else []:
            if not folder.name.startswith("."):
                print(f"  {folder.name}")
        return 0

    definition = load_definition(args.grid)
    started = time.perf_counter()
    # A build shows its tiles and the time left on stderr, as a run's grid stage does.
    with Stages(["grid"], show=not args.quiet) as stages:
        stages.start("grid")
        folder = grid_folder(definition, args.resolution, rebuild=args.rebuild)
        stages.done()
    elapsed = time.perf_counter() - started
    if args.action == "build":
        print(
            f"grid {definition.name} at {args.resolution or definition.default_resolution:g} m"
            f" ready in {elapsed:.1f} s: {folder}"
        )
        return 0
    ds = open_folder(folder)
    if args.action == "info":
        from engine.grid.export import grid_info

        print(grid_info(ds))
    elif args.action == "show":
        from engine.grid.export import plot_sheet, select

        ds = select(ds, layers=args.layers.split(",") if args.layers else None, bbox=args.bbox)
        print(f"wrote {plot_sheet(ds, args.out)}")
    elif args.action == "export":
        from engine.grid.export import export_cogs

        files = export_cogs(folder, args.out)
        print(f"wrote {len(files)} COGs and grid.json to {args.out}")
    return 0
