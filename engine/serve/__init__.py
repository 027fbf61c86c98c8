"""The praatkaart: a local web application to talk over runs, re-solved while people talk.

    ruimtepuzzel serve out/national            # opens http://127.0.0.1:8000/

    from engine.serve import open_server
    server = open_server(["out/national"], port=0)   # a free port; server.url
    ...
    server.stop()

:mod:`engine.serve.app` is the FastAPI application (the page and its JSON API),
:mod:`~engine.serve.runs` the run folders it serves, :mod:`~engine.serve.layers` their map
layers, :mod:`~engine.serve.explain` *waarom hier?*, :mod:`~engine.serve.variants` *wat als?*.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engine.errors import RuimtepuzzelError

log = logging.getLogger(__name__)

__all__ = ["open_server", "Server", "LOOPBACK"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Server:
    """A running praatkaart: its address, token (None on the loopback) and the uvicorn server."""

    url: str
    token: str | None
    app: object
    variants: object
    _server: object
    _thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        self._server.run()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.variants.close()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def open_server(
    folders,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    save_dir=None,
    lang: str = "nl",
    background: bool = True,
    max_queue: int = 4,
    time_limit: float = 300.0,
) -> Server:
    """Load the run folders and start the server (in a thread when ``background``, else
    call ``serve_forever``). Off the loopback a token is required: ``token`` or one made
    here. ``port=0`` takes a free port. ``save_dir``: where saved variants go (default: the
    folder of the first run)."""
    import uvicorn

    from engine.i18n import check_language
    from engine.serve.app import create_app
    from engine.serve.runs import load_runs
    from engine.serve.variants import Variants

    lang = check_language(lang)
    if not folders:
        raise RuimtepuzzelError(
            "give at least one run folder: ruimtepuzzel run national --resolution 1000 "
            "--out out/national, then ruimtepuzzel serve out/national"
        )
    runs = load_runs(folders)
    if host not in LOOPBACK and token is None:
        token = secrets.token_urlsafe(16)
    save_dir = Path(save_dir) if save_dir else next(iter(runs.values())).folder.parent
    variants = Variants(runs, save_dir=save_dir, max_queue=max_queue, time_limit=time_limit)
    app = create_app(runs, variants, token=token, default_lang=lang)
    port = port or _free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    handle = Server(url, token, app, variants, server)
    if background:
        handle._thread = threading.Thread(target=server.run, name="praatkaart", daemon=True)
        handle._thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not handle._thread.is_alive() or time.monotonic() > deadline:
                raise RuimtepuzzelError(f"the praatkaart could not start on {host}:{port}")
            time.sleep(0.02)
    return handle
