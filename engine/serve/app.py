"""The praatkaart's web application (FastAPI): the page, its static files and the JSON API.

    GET  /                                  the page (Dutch; ?lang=en for English)
    GET  /api/runs                          the runs served
    GET  /api/runs/{run}                    one run: layers with legends, targets, assumptions
    GET  /api/runs/{run}/layers/{layer}.png a map layer (one pixel per cell)
    GET  /api/runs/{run}/cell?x=..&y=..     why the cell at RD (x, y) became what it became
    GET  /api/outlines/{provinces|municipalities}  outlines as GeoJSON in RD New metres
    POST /api/variants                      {"base", "overrides", "resolution", "name"} -> id
    GET  /api/variants, /api/variants/{id}  status; when done objective, gap, targets, changes
    GET  /api/variants/{id}/{allocation|change|price-<claim>}.png  its maps (price-<claim>: the
                                            change of the claim's price per cell against the base)
    POST /api/variants/{id}/save            {"name"}: written as a whole run folder

Safety: no request names a path (runs, layers and variants go by id; static files through
Starlette's StaticFiles, which refuses anything outside its folder); request bodies are
limited to ``MAX_BODY`` bytes; with a token every request must carry it (header
``X-Token``, ``?token=`` once for the page, which then keeps it in a cookie).
"""

from __future__ import annotations

import hmac
import logging
from functools import cache
from pathlib import Path

from engine.errors import RuimtepuzzelError

log = logging.getLogger(__name__)

__all__ = ["create_app", "MAX_BODY"]

MAX_BODY = 64 * 1024  # bytes: a variant's overrides are a few hundred
STATIC = Path(__file__).parent / "static"
TOKEN_COOKIE = "praatkaart_token"


@cache
def outlines(which: str) -> dict:
    """Province or municipality outlines (CBS 2022) as GeoJSON in RD New metres, simplified
    below a cell of a 100 m grid."""
    import shapely
    from pyogrio.raw import read

    from engine.resources import shipped_dir

    files = {
        "provinces": "admin/cbs_provincies_2022_rd.gpkg",
        "municipalities": "admin/cbs_gemeenten_2022_rd.gpkg",
    }
    _, _, wkb, fields = read(shipped_dir("data") / files[which], columns=["name"])
    geoms = shapely.simplify(shapely.from_wkb(wkb), 50.0 if which == "municipalities" else 100.0)
    features = []
    for name, geom in zip(fields[0].tolist(), geoms):
        point = geom.representative_point()
        features.append({
            "type": "Feature",
            "properties": {"name": name, "label_x": point.x, "label_y": point.y},
            "geometry": shapely.geometry.mapping(shapely.set_precision(geom, 1.0)),
        })  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


def create_app(runs: dict, variants, *, token: str | None = None, default_lang: str = "nl"):
    """The application over ``runs`` (id -> :class:`~engine.serve.runs.Run`) and
    ``variants`` (:class:`~engine.serve.variants.Variants`)."""
    from fastapi import Body, FastAPI, Query, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles

    from engine import i18n
    from engine.config import ConfigError
    from engine.serve.explain import OffTheLand, explain_cell
    from engine.serve.layers import UnknownLayer, catalogue, render
    from engine.serve.runs import RunNotFound
    from engine.serve.variants import QueueFull, VariantNotFound

    BODY, OPTIONAL_BODY = Body(...), Body(default={})
    app = FastAPI(title="ruimtepuzzel praatkaart", docs_url="/api/docs", redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    status_of = {
        RunNotFound: 404, VariantNotFound: 404, UnknownLayer: 404, OffTheLand: 404,
        QueueFull: 503, ConfigError: 422,
    }  # fmt: skip

    @app.exception_handler(RuimtepuzzelError)
    async def user_error(request: Request, err: RuimtepuzzelError):
        code = next((c for cls, c in status_of.items() if isinstance(err, cls)), 422)
        return JSONResponse({"detail": str(err)}, status_code=code)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        length = request.headers.get("content-length")
        if request.method in ("POST", "PUT", "PATCH"):
            if length is None:
                return JSONResponse({"detail": "send a Content-Length"}, status_code=411)
            if int(length) > MAX_BODY:
                return JSONResponse(
                    {"detail": f"request body of {length} bytes; at most {MAX_BODY}"},
                    status_code=413,
                )
        if token is not None:
            given = (
                request.headers.get("x-token")
                or request.query_params.get("token")
                or request.cookies.get(TOKEN_COOKIE)
                or ""
            )
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse(
                    {"detail": "this server needs its token: open the address it printed "
                     "(?token=...) or send the header X-Token"},
                    status_code=401,
                )  # fmt: skip
        response = await call_next(request)
        if token is not None and request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    def run_of(rid: str):
        if rid not in runs:
            raise RunNotFound(f"no run {rid!r}; GET /api/runs lists the runs served")
        return runs[rid]

    def png(data: bytes) -> Response:
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-cache"})

    @app.get("/", response_class=HTMLResponse)
    def page(lang: str = Query(default_lang)):
        from engine.html import render as render_page

        t = i18n.get(lang)
        labels = {
            "app": t.table["app"], "claims": t.table["claims"], "options": t.table["options"],
            "status": t.table["status"], "units": t.table["units"],
        }  # fmt: skip
        return render_page("praatkaart.html", lang=t.lang, t=t, labels=labels)

    @app.get("/api/runs")
    def list_runs():
        return [r.summary() for r in runs.values()]

    @app.get("/api/runs/{rid}")
    def one_run(rid: str, lang: str = Query(default_lang)):
        run, t = run_of(rid), i18n.get(lang)
        report = run.report
        return {
            **run.summary(),
            "layers": catalogue(run, t),
            "targets": report.get("targets", []),
            "options": report.get("options", []),
            "assumptions": run.manifest.get("assumptions", []),
            "assumption_labels": {
                a["name"]: t.group("assumptions", a["name"])
                for a in run.manifest.get("assumptions", [])
            },
            "provinces": run.manifest["config"]["resolved"].get("provinces", {}),
        }

    @app.get("/api/runs/{rid}/layers/{layer}.png")
    def layer_png(rid: str, layer: str):
        return png(render(run_of(rid), layer))

    @app.get("/api/runs/{rid}/cell")
    def cell(rid: str, x: float, y: float, lang: str = Query(default_lang)):
        return explain_cell(run_of(rid), x, y, i18n.get(lang))

    @app.get("/api/outlines/{which}")
    def outline(which: str):
        if which not in ("provinces", "municipalities"):
            raise UnknownLayer(f"no outlines {which!r}: provinces or municipalities")
        return outlines(which)

    @app.post("/api/variants", status_code=202)
    def submit(body: dict = BODY):
        unknown = set(body) - {"base", "overrides", "resolution", "name"}
        if unknown or "base" not in body:
            raise RuimtepuzzelError(
                f"send {{'base': RUN, 'overrides': {{...}}, 'resolution': 1000, 'name': ...}}"
                f"{'; unknown fields ' + ', '.join(sorted(unknown)) if unknown else ''}"
            )
        v = variants.submit(
            str(body["base"]), body.get("overrides") or {}, body.get("resolution"),
            None if body.get("name") is None else str(body["name"])[:80],
        )  # fmt: skip
        return {"id": v.id, "status": v.status}

    @app.get("/api/variants")
    def list_variants():
        return [
            {k: v for k, v in var.public().items() if k not in ("targets",)}
            for var in variants.kept.values()
        ]

    @app.get("/api/variants/{vid}")
    def variant(vid: str):
        return variants.get(vid).public()

    @app.get("/api/variants/{vid}/{what}.png")
    def variant_png(vid: str, what: str):
        v = variants.get(vid)
        if what not in v.png:
            raise UnknownLayer(
                f"variant {vid} ({v.status}) has no map {what!r}"
                + ("" if v.status != "done" or "change" in v.png else
                   ": it is on another grid than its base, so no change or price maps")
            )  # fmt: skip
        return png(v.png[what])

    @app.post("/api/variants/{vid}/save")
    def save(vid: str, body: dict = OPTIONAL_BODY):
        run = variants.save(vid, body.get("name"))
        return {"run": run.id, "folder": str(run.folder)}

    return app
