"""The praatkaart over a real HTTP server (uvicorn on a free port, real requests with httpx):
every endpoint, bad input, path traversal, the token, the body limit, the queue; and the page
in the system's headless Chromium: no console errors, nothing fetched from outside the
server, the map shows, a click explains a cell, a changed assumption re-solves the map."""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio

from engine.cli import main
from engine.errors import RuimtepuzzelError
from engine.outputs import verify_run_folder
from engine.run import run
from engine.serve import open_server

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def utrecht(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "utrecht"
    run("utrecht", out, resolution=1000, progress=False, analysis="quick")
    return out


@pytest.fixture(scope="module")
def server(utrecht, tmp_path_factory):
    srv = open_server([utrecht], port=0, save_dir=tmp_path_factory.mktemp("saved"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def wait_for(http, vid: str, limit: float = 90.0) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        v = http.get(f"/api/variants/{vid}").json()
        if v["status"] not in ("queued", "running"):
            return v
        time.sleep(0.2)
    raise AssertionError(f"variant {vid} still {v['status']} after {limit} s")


def land_cell(folder, option_code: int | None = None) -> tuple[float, float, int]:
    """RD centre (x, y) of a land cell (of ``option_code`` if given) and its code."""
    with rasterio.open(folder / "allocation.tif") as src:
        grid, tr = src.read(1), src.transform
    rows, cols = np.nonzero(grid == option_code if option_code is not None else grid != 255)
    r, c = int(rows[len(rows) // 2]), int(cols[len(cols) // 2])
    x, y = tr @ (c + 0.5, r + 0.5)
    return float(x), float(y), int(grid[r, c])


def test_runs_and_every_layer(http, utrecht):
    runs = http.get("/api/runs").json()
    assert [r["id"] for r in runs] == ["utrecht"] and runs[0]["resolution"] == 1000
    info = http.get("/api/runs/utrecht").json()
    ids = {layer["id"] for layer in info["layers"]}
    assert {"allocation", "claim:housing", "conflict", "regret", "mask:floodplain"} <= ids
    assert any(i.startswith("scarcity:") for i in ids)
    assert info["targets"] and info["assumptions"] and "utrecht" in info["provinces"]
    for layer in ids:
        r = http.get(f"/api/runs/utrecht/layers/{layer}.png")
        assert r.status_code == 200 and r.content.startswith(PNG), layer
    assert http.get("/api/runs/utrecht/layers/nothing.png").status_code == 404
    assert http.get("/api/runs/elsewhere").status_code == 404
    provinces = http.get("/api/outlines/provinces").json()
    assert len(provinces["features"]) == 12
    page = http.get("/")
    assert page.status_code == 200 and '<html lang="nl">' in page.text
    assert "Waarom hier?" in page.text and "Wat als?" in page.text
    assert '<html lang="en">' in http.get("/?lang=en").text


def test_why_here_names_values_rules_margin_and_prices(http, utrecht):
    x, y, code = land_cell(utrecht)
    c = http.get("/api/runs/utrecht/cell", params={"x": x, "y": y}).json()
    options = {o["option"]: o for o in c["options"]}
    chosen = options[c["option"]]
    assert chosen["allowed"]
    # The chosen option is the best under the prices: no allowed option scores higher.
    best = max(o["score"] for o in c["options"] if o["allowed"])
    assert chosen["score"] >= best - 1e-6 and c["margin"] >= -1e-6
    for o in c["options"]:
        assert o["allowed"] == (not o["excluded_by"]), o
        assert o["score"] is None or o["score"] == pytest.approx(o["value"] + o["price_bonus"])
    excluded = [r for o in c["options"] for r in o["excluded_by"] if r["source"]]
    assert excluded and all(r["source"].startswith("L") and r["quote"] for r in excluded)
    assert c["province"] == "Utrecht" and c["municipality"]
    # Off the land, off the grid, no number.
    assert http.get("/api/runs/utrecht/cell", params={"x": 5000, "y": 610000}).status_code == 404
    assert http.get("/api/runs/utrecht/cell", params={"x": -9e6, "y": 0}).status_code == 422
    assert http.get("/api/runs/utrecht/cell", params={"x": "west", "y": 0}).status_code == 422


def test_what_if_resolves_changes_and_saves_a_whole_run(http, server):
    r = http.post(
        "/api/variants",
        json={"base": "utrecht", "overrides": {"assumptions.housing_density_urban": 80},
              "resolution": 1000, "name": "dichter"},
    )  # fmt: skip
    assert r.status_code == 202
    vid = r.json()["id"]
    # The server keeps answering while the variant solves.
    t = time.perf_counter()
    assert http.get("/api/runs").status_code == 200
    assert time.perf_counter() - t < 2.0
    v = wait_for(http, vid)
    assert v["status"] == "done", v
    assert v["gap"] <= 1e-6 and v["targets"][0].keys() >= {
        "zoning",
        "zone",
        "claim",
        "allocated_ha",
        "shadow_price",
    }
    ch = v["changes"]
    assert ch["same_grid"] and ch["cells_changed"] > 0 and ch["objective_change"] > 0
    assert http.get(f"/api/variants/{vid}/change.png").content.startswith(PNG)
    # Denser building delivers the homes on less land: the change table says so in homes
    # and in land, where the claim hectares (homes at the reference density) do not move.
    (housing,) = [r for r in ch["targets"] if r["zoning"] == "province" and r["claim"] == "housing"]
    assert housing["unit"] == "homes" and housing["allocated_change"] == pytest.approx(0, abs=1)
    assert housing["land_ha_change"] < -100 and housing["allocated_ha_change"] == pytest.approx(
        0, abs=0.5
    )
    assert v["timings"]["warm_start"] is True and v["timings"]["price_search"] is False
    assert {"compile", "solve", "compact", "compare", "drawing"} <= v["timings"].keys()
    assert {"compile", "solve", "compact", "compare", "drawing"} <= v["timings"]["cpu"].keys()
    assert [x["id"] for x in http.get("/api/variants").json()] == [vid]

    saved = http.post(f"/api/variants/{vid}/save", json={"name": "utrecht dichter"}).json()
    assert saved["run"] == "utrecht-dichter"
    verify_run_folder(saved["folder"])
    manifest = json.loads(
        (server.variants.save_dir / "utrecht-dichter" / "manifest.json").read_text()
    )
    assert manifest["config"]["overrides"] == {"assumptions.housing_density_urban": 80}
    assert "utrecht-dichter" in [x["id"] for x in http.get("/api/runs").json()]
    again = http.post(f"/api/variants/{vid}/save", json={"name": "utrecht dichter"})
    assert again.status_code == 422 and "exists" in again.json()["detail"]


def test_prices_that_move_as_rows_and_maps(http):
    more = {"provinces.utrecht.targets.housing.lower": 300000}
    vid = http.post("/api/variants", json={"base": "utrecht", "overrides": more}).json()["id"]
    v = wait_for(http, vid)
    assert v["status"] == "done", v
    # Per target row: the base's price, the variant's and the change.
    moved = [t for t in v["changes"]["targets"] if abs(t["shadow_price_change"] or 0) > 1e-6]
    assert {"housing"} <= {t["claim"] for t in moved}
    for t in moved:
        assert t["shadow_price_change"] == pytest.approx(t["shadow_price_b"] - t["shadow_price_a"])
    # A map per claim whose price moved, its scale the largest change.
    layers = {x["claim"]: x for x in v["price_layers"]}
    assert layers.keys() == {t["claim"] for t in moved}
    housing = next(t for t in moved if t["claim"] == "housing")
    assert layers["housing"]["limit"] == pytest.approx(abs(housing["shadow_price_change"]))
    for x in layers.values():
        assert x["id"] == f"price-{x['claim']}"
        assert http.get(f"/api/variants/{vid}/{x['id']}.png").content.startswith(PNG)
    assert http.get(f"/api/variants/{vid}/price-nothing.png").status_code == 404


@pytest.mark.parametrize(
    "repairs, growth, searched",
    [(8, 4.0, False), (0, 4.0, True), (8, 1.0, True)],
    ids=["repaired", "out-of-rounds", "too-many-cells-freed"],
)
def test_a_variant_solved_from_its_base_prices_is_the_exact_optimum(
    utrecht, repairs, growth, searched
):
    """Repaired straight from the base's prices, or (no optimum within the rounds allowed,
    or the repair freeing too many cells) solved again with the price search: certified
    optimal and the reference's objective."""
    import engine
    from engine.report import read_prices
    from engine.run import prepare_run
    from engine.serve import variants
    from engine.solve import fast

    far = {"assumptions.housing_density_urban": 90, "provinces.utrecht.targets.housing.lower": 3e5}
    problem = prepare_run("utrecht", resolution=1000, overrides=far).compiled.problem
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(variants, "NEAR_REPAIRS", repairs)
        patch.setattr(fast, "SEARCHLESS_GROWTH", growth)
        sol = variants._solve_from(problem, read_prices(utrecht))
    assert sol.timings["price_search"] is searched
    reference = engine.solve(problem, method="highs")
    assert sol.status == "optimal" and sol.gap <= 1e-9
    assert abs(sol.objective - reference.objective) <= 1e-7 * max(1.0, abs(reference.objective))


def test_a_variant_saved_after_the_child_let_it_go_is_the_plan_the_page_showed(utrecht, tmp_path):
    """Solved again as the page solved it (from the base's prices), not from another start
    that may pick another of tied optima: the same allocation, cell for cell."""
    from engine.serve import variants
    from engine.serve.runs import Run

    base = Run.open(utrecht, "utrecht")
    job = {
        "id": "v1", "config": base.config_path, "grid": base.grid_name, "resolution": 1000.0,
        "overrides": {"assumptions.housing_density_urban": 75}, "prices": base.prices,
        "base_folder": str(base.folder), "base_report": base.report, "seconds": 1.0,
        "analysis": "off",
    }  # fmt: skip
    assert variants.solve_variant(job)["status"] == "done"
    assert variants.save_variant({**job, "out": str(tmp_path / "kept")}) == "kept"
    variants._SOLVED.clear()
    assert variants.save_variant({**job, "out": str(tmp_path / "again")}) == "solved again"
    kept, again = Run.open(tmp_path / "kept", "a"), Run.open(tmp_path / "again", "b")
    np.testing.assert_array_equal(kept.allocation, again.allocation)
    assert kept.report["objective"] == again.report["objective"]


def test_the_grid_is_read_once_into_memory():
    """Every variant compiles from the grid: in memory, not read from its tiles again."""
    from engine.serve.runs import grid_of

    ds = grid_of("nl", 1000.0)
    assert grid_of("nl", 1000.0) is ds
    assert all(isinstance(v.data, np.ndarray) for v in ds.data_vars.values())


def test_maps_are_palette_pngs_in_the_right_colours():
    """The change and price maps a variant draws on every click: each code in its colour,
    the rest transparent; a continuous grid from its scale's first colour to its last."""
    import io

    import matplotlib
    from PIL import Image

    from engine.serve.layers import categorical_png, continuous_png

    def rgba(png: bytes) -> np.ndarray:
        image = Image.open(io.BytesIO(png))
        assert image.mode == "P"
        return np.asarray(image.convert("RGBA"))

    codes = np.array([[3, 255], [7, 3]], dtype=np.uint8)
    got = rgba(categorical_png(codes, {3: "#ff0000", 7: "#00ff80"}))
    np.testing.assert_array_equal(got[0, 0], [255, 0, 0, 255])
    np.testing.assert_array_equal(got[1, 0], [0, 255, 128, 255])
    assert got[0, 1, 3] == 0
    grid = np.array([[np.nan, -2.0], [2.0, 0.0]])
    got = rgba(continuous_png(grid, "RdBu_r", -2.0, 2.0))
    scale = np.rint(matplotlib.colormaps["RdBu_r"]([0.0, 1.0]) * 255)
    assert got[0, 0, 3] == 0
    np.testing.assert_array_equal(got[0, 1], scale[0])
    np.testing.assert_array_equal(got[1, 0], scale[1])


def test_a_variant_that_does_not_fit_answers_with_its_shortfall(http):
    r = http.post(
        "/api/variants",
        json={"base": "utrecht", "overrides": {"provinces.utrecht.targets.housing.lower": 2e6}},
    )
    v = wait_for(http, r.json()["id"])
    assert v["status"] == "done" and v["shortfall_ha"] > 1000


def test_hard_targets_that_do_not_fit_are_told_by_their_exception_type(http, monkeypatch):
    from engine.compile import CapacityError
    from engine.serve import variants

    too_much = {"run.targets": "hard", "provinces.utrecht.targets.housing.lower": 2e6}
    v = wait_for(
        http,
        http.post("/api/variants", json={"base": "utrecht", "overrides": too_much}).json()["id"],
    )
    assert v["status"] == "infeasible" and v["shortfall_ha"] > 1000, v
    assert "housing" in v["error"] and "utrecht" in v["error"].lower()
    # In the child the type decides, not the words: the same refusal reworded is still one.
    job = {
        "id": "x",
        "config": "utrecht",
        "grid": "nl",
        "resolution": 1000.0,
        "overrides": too_much,
        "prices": None,
        "base_folder": "",
        "base_report": {},
    }

    def reworded(*args, **kwargs):
        raise CapacityError("utrecht.toml", "targets.housing", "past the land", rows=[
            {"lower_ha": 10.0, "capacity_ha": 4.0}])  # fmt: skip

    monkeypatch.setattr("engine.run.prepare_run", reworded)
    out = variants.solve_variant(job)
    assert out["status"] == "infeasible" and out["shortfall_ha"] == 6.0
    monkeypatch.setattr("engine.run.prepare_run", lambda *a, **k: (_ for _ in ()).throw(
        RuimtepuzzelError("leave only 3 ha: another refusal with the old words")))  # fmt: skip
    assert variants.solve_variant(job)["status"] == "failed"


def test_the_time_limit_kills_the_solve_and_the_server_answers(http, server):
    first = server.variants.process.started
    server.variants.time_limit = 0.01
    try:
        r = http.post("/api/variants", json={"base": "utrecht", "name": "te lang",
                      "overrides": {"assumptions.housing_density_urban": 55}})  # fmt: skip
        vid = r.json()["id"]
        t = time.perf_counter()
        assert http.get("/api/runs").status_code == 200 and time.perf_counter() - t < 2.0
        v = wait_for(http, vid, limit=30)
    finally:
        server.variants.time_limit = 300.0
    assert v["status"] == "timeout" and "time limit of 0.01 s" in v["error"], v
    assert v["seconds"] < 5.0
    # A new child takes the next variant.
    again = wait_for(
        http,
        http.post(
            "/api/variants",
            json={"base": "utrecht", "overrides": {"assumptions.housing_density_urban": 56}},
        ).json()["id"],
    )
    assert again["status"] == "done" and server.variants.process.started == first + 1


def test_bad_overrides_answer_422_with_the_cli_message(http, capsys):
    bad = {"assumptions.housing_densty_urban": 80}
    r = http.post("/api/variants", json={"base": "utrecht", "overrides": bad})
    assert r.status_code == 422
    assert main(["check", "utrecht", "--set", "assumptions.housing_densty_urban=80"]) == 2
    assert r.json()["detail"] in capsys.readouterr().err
    assert "did you mean 'housing_density_urban'" in r.json()["detail"]
    for body in ({"overrides": {}}, {"base": "utrecht", "resolution": 7},
                 {"base": "utrecht", "overrides": [1]}, {"base": "nowhere"},
                 {"base": "utrecht", "extra": 1}):  # fmt: skip
        assert http.post("/api/variants", json=body).status_code in (404, 422), body
    assert http.get("/api/variants/v999").status_code == 404


def test_no_request_reaches_the_file_system(http):
    for path in (
        "/static/../pyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/..%2f..%2fpyproject.toml",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/api/runs/..%2f..%2fetc/layers/allocation.png",
        "/api/runs/utrecht/layers/..%2f..%2fmanifest.json.png",
        "/api/outlines/..%2fprovinces",
    ):
        r = http.get(path)
        assert r.status_code in (404, 422), (path, r.status_code)
        assert "root:" not in r.text and "[project]" not in r.text
    assert http.get("/static/vendor/leaflet/leaflet.js").status_code == 200


def test_body_limit_and_queue_full(http, server):
    big = http.post("/api/variants", content=b"{" + b" " * 100_000 + b"}",
                    headers={"Content-Type": "application/json"})  # fmt: skip
    assert big.status_code == 413
    server.variants.max_queue = 0
    try:
        r = http.post("/api/variants", json={"base": "utrecht", "overrides": {}})
        assert r.status_code == 503 and "submit again" in r.json()["detail"]
    finally:
        server.variants.max_queue = 4


def test_off_the_loopback_a_token_is_required(utrecht, tmp_path):
    srv = open_server([utrecht], port=0, token="geheim", save_dir=tmp_path)
    try:
        base = srv.url.split("?")[0]
        assert srv.url.endswith("?token=geheim")
        assert httpx.get(base + "api/runs").status_code == 401
        assert httpx.get(base + "api/runs", headers={"X-Token": "fout"}).status_code == 401
        assert httpx.get(base + "api/runs", headers={"X-Token": "geheim"}).status_code == 200
        with httpx.Client() as client:  # the page's address sets the cookie for the rest
            assert client.get(srv.url).status_code == 200
            assert client.get(base + "static/praatkaart.js").status_code == 200
    finally:
        srv.stop()
    made = open_server([utrecht], host="0.0.0.0", port=0, save_dir=tmp_path)
    try:
        assert made.token and len(made.token) >= 16
    finally:
        made.stop()


def test_serve_command_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "ruimtepuzzel serve out/national" in out and "--no-browser" in out


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium (CI installs Debian's)")
def test_the_page_in_chromium(server, utrecht):
    from chromium import Chromium

    browser = Chromium()
    try:
        s = browser.open("about:blank")
        browser.send("Network.enable", s)
        browser.send("Emulation.setDeviceMetricsOverride", s, width=1400, height=900,
                     deviceScaleFactor=1, mobile=False)  # fmt: skip
        browser.send("Page.navigate", s, url=server.url)
        browser.wait_for("Page.loadEventFired")

        def until(expression: str, limit: float = 60.0, show: str = "right"):
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                value = browser.evaluate(s, expression)
                if value:
                    return value
                time.sleep(0.1)
            shown = browser.evaluate(s, f"document.getElementById('{show}').innerText")
            raise AssertionError(f"never true: {expression}\n{shown}\n{browser.errors()}")

        until("window.praatkaart && window.praatkaart.ready === true")
        assert browser.evaluate(s, "document.querySelectorAll('img.cells').length") >= 1
        images = "[...document.querySelectorAll('img.cells')]"
        until(f"{images}.every(i => i.complete && i.naturalWidth > 0)")
        # Toggle a layer: the conflict map joins the map and the legend.
        browser.evaluate(s, "document.querySelector('input[data-layer=conflict]').click()")
        until("document.querySelectorAll('img.cells').length >= 2")
        assert "Conflict" in browser.evaluate(s, "document.getElementById('legend').innerText")
        # Click a cell: 'waarom hier?' explains it.
        x, y, _ = land_cell(utrecht)
        point = json.loads(
            browser.evaluate(
                s,
                f"""(() => {{
            const m = window.praatkaart.map; m.setView([{y}, {x}], 3, {{animate: false}});
            const r = document.getElementById('map').getBoundingClientRect();
            const p = m.latLngToContainerPoint([{y}, {x}]);
            return JSON.stringify({{x: r.left + p.x, y: r.top + p.y}}); }})()""",
            )
        )
        for kind in ("mousePressed", "mouseReleased"):
            browser.send("Input.dispatchMouseEvent", s, type=kind, x=point["x"], y=point["y"],
                         button="left", clickCount=1)  # fmt: skip
        until("document.querySelector('#why-body table') !== null")
        why = browser.evaluate(s, "document.getElementById('why-body').innerText")
        assert "Deze cel wordt" in why and "Schaduwprijzen" in why
        # Change an assumption and re-solve: the change map and the totals come.
        browser.evaluate(
            s,
            """(() => {
            document.querySelector('.tabs button[data-tab=whatif]').click();
            const i = document.querySelector('input[data-key="assumptions.housing_density_urban"]');
            i.value = 70; i.dispatchEvent(new Event('input'));
            const h = document.querySelector('input[data-key$="utrecht.targets.housing.lower"]');
            h.value = 300000; h.dispatchEvent(new Event('input'));
            document.getElementById('solve').click(); })()""",
        )
        until("document.querySelector('#changes p') !== null", 90, "variant-status")
        assert "verandert van functie" in browser.evaluate(
            s, "document.getElementById('changes').innerText"
        )
        until(f"{images}.some(i => i.src.includes('/change.png') && i.naturalWidth > 0)")
        # Every button and table within its panel (the variant's buttons once ran past it).
        past = browser.evaluate(
            s,
            """JSON.stringify([...document.querySelectorAll(
            'aside button, aside table')].filter(e => e.getBoundingClientRect().right >
            e.closest('aside').getBoundingClientRect().right + 0.5).map(e => e.textContent
            .slice(0, 30)))""",
        )
        assert json.loads(past) == [], past
        # No word in the side panel's tables broken over two lines ("Metropoolr|egio"): each
        # word's text lies on one line box.
        until("document.getElementById('price-table') !== null")
        broken = browser.evaluate(
            s,
            """JSON.stringify([...document.querySelectorAll('#right td, #right th')].flatMap(c => {
            const walk = document.createTreeWalker(c, NodeFilter.SHOW_TEXT), out = [];
            for (let n = walk.nextNode(); n; n = walk.nextNode())
              for (const m of n.data.matchAll(/[^\\s-]+-?/g)) {
                const r = document.createRange();
                r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
                if (r.getClientRects().length > 1) out.push(m[0]);
              }
            return out; }))""",
        )
        assert json.loads(broken) == [], broken
        # The prices that moved: a table (base, variant, change) and a map per claim.
        until("document.getElementById('price-table') !== null")
        prices = browser.evaluate(s, "document.getElementById('price-table').innerText")
        assert "basis" in prices and "variant" in prices and "woningbouw" in prices, prices
        browser.evaluate(
            s, "document.querySelector('input[data-layer$=\":price-housing\"]').click()"
        )
        until(f"{images}.some(i => i.src.includes('/price-housing.png') && i.naturalWidth > 0)")
        assert "schaarser" in browser.evaluate(s, "document.getElementById('legend').innerText")
        # Side by side: the base and the variant, panned together, their totals per claim.
        browser.evaluate(s, "document.getElementById('compare-open').click()")
        panels = "[...document.querySelectorAll('#compare-maps img.cells')]"
        until(f"{panels}.length === 2 && {panels}.every(i => i.complete && i.naturalWidth > 0)")
        assert any(
            "/api/variants/" in src for src in browser.evaluate(s, f"{panels}.map(i => i.src)")
        )
        until("document.querySelectorAll('#compare-table tr').length > 3")
        head = browser.evaluate(s, "document.querySelector('#compare-table tr').innerText")
        assert "basis" in head and "Δ" in head, head
        moved = browser.evaluate(
            s,
            """(() => {
            const [a, b] = window.praatkaart.side.panels;
            a.map.setView([455000, 140000], 2, {animate: false});
            const c = b.map.getCenter();
            return [Math.round(c.lat), Math.round(c.lng), b.map.getZoom()]; })()""",
        )
        assert moved == [455000, 140000, 2], moved
        if os.environ.get("PRAATKAART_SCREENSHOT"):  # docs/praatkaart-naast-elkaar.png
            browser.evaluate(
                s,
                "window.praatkaart.side.panels[0].map.setView([452000, 148000], 3.5, "
                "{animate: false}) && 0",  # the province of the run
            )
            browser.evaluate(s, "document.getElementById('price-table').scrollIntoView()")
            time.sleep(0.5)
            shot = browser.send("Page.captureScreenshot", s, format="png")["data"]
            Path(os.environ["PRAATKAART_SCREENSHOT"]).write_bytes(base64.b64decode(shot))
        assert browser.errors() == []
        host = server.url.split("/")[2]
        urls = [e["params"]["request"]["url"] for e in browser.events
                if e.get("method") == "Network.requestWillBeSent"]  # fmt: skip
        outside = [u for u in urls if not u.startswith(("data:", f"http://{host}/"))]
        assert urls and not outside, outside
    finally:
        browser.close()


def test_why_here_names_the_minimum_patch(tmp_path):
    """At 250 m the minimum patch rules out land too small for a patch (engine.rules
    .exclude_small_patches): "why here?" names it, with its source line, for such a cell."""
    from engine import i18n
    from engine.serve.explain import explain_cell
    from engine.serve.runs import Run

    out = tmp_path / "utrecht"
    run("utrecht", out, resolution=250, progress=False, analysis="off")
    utrecht = Run.open(out, "utrecht")
    compiled = utrecht.prepared().compiled
    option, cells = next((o, c) for o, c in compiled.effects.min_patch.items() if len(c))
    flat = int(compiled.cells.flat[cells[len(cells) // 2]])
    row, col = divmod(flat, utrecht.shape[1])
    with rasterio.open(out / "allocation.tif") as src:
        x, y = src.transform @ (col + 0.5, row + 0.5)
    why = explain_cell(utrecht, x, y, i18n.get("nl"))
    entry = next(o for o in why["options"] if o["option"] == option)
    assert not entry["allowed"]
    rule = next(r for r in entry["excluded_by"] if r["rule"] == "min_patch")
    assert rule["label"] == "minimummaat van een vlak (aaneengesloten plan)"
    assert rule["file"].endswith("national.toml")
