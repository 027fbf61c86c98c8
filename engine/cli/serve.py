"""``ruimtepuzzel serve RUN_DIR ...``: the praatkaart, a local web page over runs."""

from __future__ import annotations

import argparse

NAME = "serve"
HELP = (
    "Start the praatkaart: a local web page with the map of each run (layers, legend, "
    "outlines), 'waarom hier?' per cell and 'wat als?' variants re-solved in seconds; "
    "the JSON API under /api. Works with no network."
)
EXAMPLES = """\
  ruimtepuzzel run national --resolution 1000 --out out/national
  ruimtepuzzel serve out/national                      # http://127.0.0.1:8000/, opens the browser
  ruimtepuzzel serve out/national out/utrecht --port 8080 --no-browser
  ruimtepuzzel serve out/national --host 0.0.0.0       # for the room: prints its token
  curl -s http://127.0.0.1:8000/api/runs
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders to serve")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: a free one)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; any other needs a token)",
    )
    parser.add_argument(
        "--token",
        help="the token a browser must bring off the loopback (default: made, printed)",
    )
    parser.add_argument(
        "--save-dir",
        help="where saved variants go as run folders (default: beside the first run)",
    )
    parser.add_argument(
        "--lang", choices=("nl", "en"), default="nl", help="language of the page (default nl)"
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument(
        "--time-limit", type=float, default=300.0, help="seconds a variant may solve (default 300)"
    )


def run(args: argparse.Namespace) -> int:
    import threading
    import webbrowser

    from engine.serve import open_server

    server = open_server(
        args.runs, host=args.host, port=args.port, token=args.token, save_dir=args.save_dir,
        lang=args.lang, background=False, time_limit=args.time_limit,
    )  # fmt: skip
    print(f"praatkaart: {server.url}  (Ctrl-C stops)", flush=True)
    if not args.no_browser:  # once the server listens
        threading.Timer(1.0, webbrowser.open, (server.url,)).start()
    try:
        server.serve_forever()
    finally:
        server.variants.close()
    return 0
