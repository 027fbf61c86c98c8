"""A run's analysis outputs: GeoTIFFs that round-trip through rasterio with CRS and band names,
report.json sections added (none renamed), and report.html with every section and image."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from rp_grid import synthetic_grid

import engine
from engine.html import SECTIONS
from engine.outputs import verify_run_folder
from engine.report import write_outputs
from engine.run import prepare

NATIONAL = Path(__file__).resolve().parents[1] / "configs" / "national.toml"


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    grid = synthetic_grid(block=20)
    compiled, ds = prepare(NATIONAL, grid=grid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = engine.solve(compiled.problem, method="highs")
    core = tmp_path_factory.mktemp("core")
    write_outputs(core, compiled, sol, ds, timings={}, analysis="off")
    before = json.loads((core / "report.json").read_text())
    out = tmp_path_factory.mktemp("analysis")
    # Few re-solves: their exactness is tested on small problems in test_analysis.
    report = write_outputs(
        out,
        compiled,
        sol,
        ds,
        timings={},
        analysis="full",
        analysis_options={"rule_cost_resolves": 2, "max_exchanges": 1},
    )
    return compiled, sol, out, before, report


def test_core_and_analysis_outputs_make_one_whole_folder(done):
    _, _, out, _, _ = done
    manifest = verify_run_folder(out)
    listed = {o["path"] for o in manifest["outputs"]}
    assert {
        "report.json",
        "allocation.tif",
        "conflict.tif",
        "scarcity.tif",
        "report.html",
    } <= listed


def test_report_json_gains_the_sections_and_renames_nothing(done):
    _, _, out, before, report = done
    after = json.loads((out / "report.json").read_text())
    for key in before:
        assert key in after
        if key != "timings":
            assert after[key] == before[key]
    for key in ("conflicts", "rule_costs", "exchanges", "addability", "scarcity"):
        assert key in after
    assert after["addability"] and all("sum" in a for a in after["addability"])
    housing = next(a for a in after["addability"] if a["claim"] == "housing")
    assert housing["national"]["target"] == pytest.approx(900_000)
    methods = [c["method"] for c in after["rule_costs"]]
    assert methods.count("re-solve") <= 2 and set(methods) <= {"re-solve", "prices", "bound"}
    for c in after["rule_costs"]:
        if c["gain"] is not None:
            assert c["gain"] >= -1e-6 and c["bound_gain"] >= c["gain"] - 1e-6


def test_geotiffs_round_trip_with_crs_nodata_and_band_names(done):
    import rasterio

    compiled, sol, out, _, _ = done
    p = compiled.problem
    with rasterio.open(out / "conflict.tif") as src:
        assert src.crs.to_epsg() == 28992 and src.nodata == 255 and src.dtypes[0] == "uint8"
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.descriptions == ("conflict class",)
        assert src.colormap(1)[4][:3] == (0xB3, 0, 0)
        a = src.read(1)
        assert set(np.unique(a)) <= {1, 2, 3, 4, 255}
        assert (a != 255).sum() == p.n_cells
    with rasterio.open(out / "scarcity.tif") as src:
        assert src.crs.to_epsg() == 28992 and src.count == p.n_claims
        assert list(src.descriptions) == p.claim_names
        prices = src.read()
        flat = prices.reshape(p.n_claims, -1)[:, compiled.cells.flat].T
        from engine.analysis import cell_prices

        assert np.allclose(flat, cell_prices(p, sol), atol=1e-6)
    with rasterio.open(out / "margin.tif") as src:
        assert src.crs.to_epsg() == 28992 and src.descriptions == ("margin",)
        assert src.nodata == -9999.0


def test_report_html_has_every_section_and_image(done):
    _, _, out, _, report = done
    html = (out / "report.html").read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in html
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 4  # allocation, conflict, scarcity (when a target binds), regret
    import base64

    for b in images:
        assert base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'src="http' not in html and "<script" not in html  # self-contained
    assert 'lang="nl"' in html and "optimaal" in html and "917.193 woningen" in html


def test_a_rules_cost_equals_the_run_with_the_rule_switched_off(done):
    compiled, sol, _, _, report = done
    solved = [c for c in report["rule_costs"] if c["method"] == "re-solve" and "(" not in c["rule"]]
    assert solved, "the largest rule bounds are re-solved"
    cost = max(solved, key=lambda c: c["gain"])
    off, _ = prepare(
        NATIONAL,
        grid=compiled.cells.ds,
        overrides={f"rules.exclusions.{cost['rule']}.enabled": False},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = engine.solve(off.problem, method="highs")
    assert other.objective - sol.objective == pytest.approx(cost["gain"], rel=1e-6, abs=1e-6)


def test_the_relaxations_built_ahead_are_those_built_in_the_analysis(done):
    """Built in a thread while the run solves (:class:`RelaxationsAhead`), the relaxations
    are the same cells and options, and the rule costs from them the same to the bit."""
    from engine.analysis.rule_costs import (
        RelaxationsAhead,
        _Relaxation,
        compiled_relaxations,
        rule_costs,
    )

    compiled, sol, _, _, _ = done
    base = compiled.problem.allowed
    with RelaxationsAhead(compiled) as ahead:
        built = ahead.result()
    here = compiled_relaxations(compiled)
    assert list(built) == list(here) and ahead.seconds > 0
    for name, relaxed in here.items():
        relaxation = _Relaxation.of(relaxed, base)
        np.testing.assert_array_equal(built[name].cells, relaxation.cells, err_msg=name)
        np.testing.assert_array_equal(built[name].rows, relaxation.rows, err_msg=name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        costs = [
            rule_costs(compiled.problem, sol, relaxations, max_resolves=2)
            for relaxations in (built, here)
        ]
    assert costs[0] == costs[1]
    assert any(c["method"] == "re-solve" for c in costs[0])


def _blocking_relaxations(monkeypatch, compiled, fail: bool = False):
    """Three relaxations whose first waits for the test (and raises, with ``fail``); the
    names of those asked for."""
    import importlib
    import threading

    from engine.errors import RuimtepuzzelError

    # The module, not the function the package exports under its name.
    rule_costs_module = importlib.import_module("engine.analysis.rule_costs")

    started, go_on, asked = threading.Event(), threading.Event(), []

    def relaxation(name):
        def relaxed():
            asked.append(name)
            started.set()
            assert go_on.wait(60)
            if fail:
                raise RuimtepuzzelError(f"{name}: a rule that cannot be applied again")
            return compiled.problem.allowed.copy()

        return relaxed

    names = ("first", "second", "third")
    monkeypatch.setattr(
        rule_costs_module,
        "compiled_relaxations",
        lambda compiled: {name: relaxation(name) for name in names},
    )
    return started, go_on, asked


def test_leaving_the_relaxations_ahead_stops_them_after_the_rule_at_hand(done, monkeypatch):
    """A run that fails or is interrupted leaves the context: the thread ends after the
    relaxation it is building, so that the error does not wait for the others."""
    from engine.analysis.rule_costs import RelaxationsAhead

    compiled = done[0]
    started, go_on, asked = _blocking_relaxations(monkeypatch, compiled)
    with RelaxationsAhead(compiled) as ahead:
        future = ahead._future
        assert started.wait(60)
    go_on.set()
    assert list(future.result(timeout=60)) == ["first"]
    assert asked == ["first"]
    with pytest.raises(RuntimeError, match="stopped"):
        ahead.result()


def test_an_error_building_a_relaxation_ahead_is_raised_where_the_analysis_asks(done, monkeypatch):
    from engine.analysis.rule_costs import RelaxationsAhead
    from engine.errors import RuimtepuzzelError

    compiled = done[0]
    _, go_on, _ = _blocking_relaxations(monkeypatch, compiled, fail=True)
    go_on.set()
    match = "first: a rule that cannot be applied"
    with RelaxationsAhead(compiled) as ahead, pytest.raises(RuimtepuzzelError, match=match):
        ahead.result()


def test_the_page_is_drawn_from_what_the_maps_hold(tmp_path, monkeypatch):
    """report.html is drawn from the analysis's arrays, not from the maps read back: what
    the analysis hands the page equals what :func:`engine.html.read_grids` reads from the
    maps it has just written."""
    import engine.html

    compiled, ds = prepare(NATIONAL, grid=synthetic_grid(block=20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = engine.solve(compiled.problem, method="highs")
    render, drawn = engine.html.render_report, []

    def compared(report, manifest, folder, lang=None, grids=None):
        read = engine.html.read_grids(folder)
        assert grids is not None and grids.keys() == read.keys()
        assert grids["transform"] == read["transform"]
        for key in ("allocation", "conflict", "regret"):
            np.testing.assert_array_equal(grids[key], read[key], err_msg=key)
            assert grids[key].dtype == read[key].dtype, key
        assert list(grids["prices"]) == list(read["prices"])
        for name, values in read["prices"].items():
            np.testing.assert_array_equal(grids["prices"][name], values, err_msg=name)
        drawn.append(folder)
        return render(report, manifest, folder, lang, grids=grids)

    monkeypatch.setattr(engine.html, "render_report", compared)
    write_outputs(tmp_path / "run", compiled, sol, ds, timings={}, analysis="quick")
    assert drawn
