"""The outputs: a COG with a legend, JSON that keeps its contract, and atomic writing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from problems import problems
from rp_grid import synthetic_grid
from scipy import sparse

import engine
from engine import i18n
from engine import report as report_mod
from engine.compile import compile_problem
from engine.config import load_config
from engine.outputs import verify_run_folder
from engine.run import run

NATIONAL = Path(__file__).resolve().parents[1] / "configs" / "national.toml"


@pytest.fixture(scope="module")
def grid():
    return synthetic_grid(block=20)


@pytest.fixture(scope="module")
def done(grid, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return run(NATIONAL, out, grid=grid, progress=False, method="highs"), out


def test_allocation_is_a_cog_with_colours_and_names(done, grid):
    import rasterio

    report, out = done
    with rasterio.open(out / "allocation.tif") as src:
        assert src.driver == "GTiff" and src.crs.to_epsg() == 28992
        assert src.nodata == 255 and src.dtypes[0] == "uint8"
        assert src.profile.get("tiled") or src.block_shapes[0][0] < src.height
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        cmap = src.colormap(1)
        codes = src.read(1)
    for o in report["options"]:
        r, g, b = (int(o["colour"][i : i + 2], 16) for i in (1, 3, 5))
        assert cmap[o["code"]][:3] == (r, g, b)
    land = grid["land"].values == 1
    assert (codes[~land] == 255).all() and (codes[land] != 255).all()
    cats = ET.parse(out / "allocation.tif.aux.xml").findall(".//CategoryNames/Category")
    for o in report["options"]:
        assert cats[o["code"]].text == i18n.get("nl").option(o["name"])  # Dutch by default
    qml = (out / "allocation.qml").read_text()
    assert 'label="woningbouw binnenstedelijk"' in qml
    for o in report["options"]:  # the same colours as the colour table and the page
        assert f'value="{o["code"]}" color="{o["colour"]}"' in qml


@pytest.mark.parametrize("categorical", [True, False])
def test_a_cog_is_the_same_bytes_whatever_the_threads_that_compress_it(categorical):
    from affine import Affine

    from engine import outputs

    rng = np.random.default_rng(5)
    # Several tiles per band, nodata among them, and more than one band.
    if categorical:
        bands = [rng.integers(0, 6, (1100, 1300)).astype("uint8") for _ in range(2)]
        dtype, nodata = "uint8", 255
    else:
        bands = [rng.normal(size=(1100, 1300)).astype("float32") for _ in range(2)]
        dtype, nodata = "float32", -9999.0
    bands[0][:300, :400] = nodata
    kwargs = dict(
        transform=Affine(100.0, 0.0, 0.0, 0.0, -100.0, 622_000.0),
        dtype=dtype,
        nodata=nodata,
        categorical=categorical,
    )
    # More threads than this machine's cores would still split the tiles between them.
    assert outputs.cog_bytes(bands, **kwargs, threads=4) == outputs.cog_bytes(
        bands, **kwargs, threads=1
    )


def test_report_json_rows_carry_both_units_and_their_source(done):
    report, _ = done
    housing = [
        r
        for r in report["targets"]
        if r["zoning"] == "province" and r["zone"] == "Utrecht" and r["claim"] == "housing"
    ][0]
    assert housing["unit"] == "homes" and housing["lower"] == pytest.approx(83_500)
    assert housing["source"] == "L10659" and housing["file"].endswith("utrecht.toml")
    assert housing["key"] == "targets.housing"
    energy = [
        r
        for r in report["targets"]
        if r["zoning"] == "national" and r["claim"] == "renewable_energy"
    ][0]
    assert energy["unit"] == "TWh" and energy["lower"] == pytest.approx(35)
    assert energy["lower_ha"] == pytest.approx(35_000)
    # The land that delivers a claim: solar and wind yield their own energy per hectare, not
    # the target's reference (its claim hectares), so their land differs from those.
    assert energy["land_ha"] > 0 and energy["land_ha"] != pytest.approx(energy["allocated_ha"])
    summary = (_ := done[1] / "summary.md").read_text()
    assert "Oordeel per provincie en opgave" in summary and "Schaarste" in summary
    assert "| ruimtebeslag (ha) |" in summary


def test_a_crash_while_writing_leaves_the_previous_run_whole(done, grid, monkeypatch):
    report, out = done
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    cfg = load_config(NATIONAL, overrides={"assumptions.housing_density_urban": 80})
    compiled = compile_problem(cfg, grid)
    sol = engine.solve(compiled.problem, method="highs")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_mod, "build_summary", boom)
    with pytest.raises(RuntimeError):
        report_mod.write_outputs(out, compiled, sol, grid, timings={})
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # nothing replaced
    assert not list(out.parent.glob(out.name + ".*"))  # no staging folder or lock left
    verify_run_folder(out)


def test_what_does_not_fit_is_reported_and_adds_up(grid, tmp_path):
    """Six times the national forest and nature targets and 20 times the energy target (more
    claim hectares than the grid has land) cannot all fit: elastic targets report the
    shortfall instead of failing, per province and for the nation."""
    report = run(NATIONAL, tmp_path, grid=grid, progress=False, method="highs", overrides={
        "targets.forest.lower": 6 * 37_400, "targets.nature.lower": 6 * 40_571,
        "targets.renewable_energy.lower": 20 * 35})  # fmt: skip
    assert report["status"] == "optimal"
    rows = report["targets"]
    for claim in ("forest", "nature", "renewable_energy"):
        nat = next(r for r in rows if r["zoning"] == "national" and r["claim"] == claim)
        prov = [r for r in rows if r["zoning"] == "province" and r["claim"] == claim]
        assert nat["shortfall_ha"] > 0
        # The shares add up to the national target, so the shortfalls do too.
        assert sum(r["shortfall_ha"] for r in prov) == pytest.approx(nat["shortfall_ha"], rel=1e-6)
        assert nat["allocated_ha"] + nat["shortfall_ha"] == pytest.approx(nat["lower_ha"])
    summary = (tmp_path / "summary.md").read_text()
    assert "| bosuitbreiding |" in summary and "niet realistisch binnen de provincie" in summary
    # Each short province target says how much is short and which rules limit it, in ha.
    short = [v for v in report["verdicts"] if v["verdict"] == "not_realistic"]
    assert {v["claim"] for v in short} >= {"forest", "nature"}
    forest = next(v for v in short if v["claim"] == "forest")
    assert forest["shortfall_ha"] > 0.5 and forest["capacity_ha"] > 0
    assert {r["rule"] for r in forest["limits"]} >= {"new_forest_is_new"}
    assert all(r["ha"] > 0 and r["source"].startswith("L") for r in forest["limits"])


def test_every_province_is_named_on_the_maps_as_its_config_spells_it():
    # The outlines' names come from the CBS file; a province's own map draws every other name
    # as a neighbour, so a spelling that differs ("Fryslan") named Fryslân a neighbour of itself.
    from engine.maps import provinces
    from engine.resources import shipped_configs

    on_the_map = {name for name, _ in provinces()}
    national = load_config(shipped_configs()["national"])
    assert {p.name for p in national.provinces.values()} == on_the_map


def test_a_province_report_is_titled_with_the_province_as_it_spells_itself(grid, tmp_path):
    # The run is named after the config file ("fryslan"); the title names the province
    # ("Fryslân"), which a plain lower-casing of the name did not match.
    config = Path(__file__).resolve().parents[1] / "configs" / "provinces" / "fryslan.toml"
    run(config, tmp_path, grid=grid, progress=False, method="highs", analysis="off")
    assert (tmp_path / "summary.md").read_text().startswith("# Ruimtelijk voorstel: Fryslân\n")


@settings(max_examples=60, deadline=None)
@given(problem=problems(extremes=True), seed=st.integers(0, 2**32 - 1), dense=st.booleans())
def test_what_each_zone_receives_is_the_sum_over_its_cells(problem, seed, dense):
    # zone_totals sums per group of cells and option, never per cell and claim: checked
    # against the plain per-cell sums over each zone, for fractional allocations too. The
    # land that delivers a claim counts a hectare once whatever the option delivers on it.
    rng = np.random.default_rng(seed)
    x = rng.random((problem.n_cells, problem.n_options)) * problem.allowed
    x[rng.random(problem.n_cells) < 0.5] = 0.0
    allocation = x if dense else sparse.csr_array(x)
    delivered, land, value = report_mod.zone_totals(problem, allocation)
    area = np.broadcast_to(problem.area, (problem.n_cells,))[:, None]
    per_cell = (x @ problem.contribution) * area
    per_cell_land = (x @ (problem.contribution > 0)) * area
    per_cell_value = (x * problem.value).sum(axis=1) * area[:, 0]
    scale = max(1.0, np.abs(per_cell_value).sum())
    for l in range(problem.n_zonings):
        for z in range(problem.n_zones[l]):
            cells = problem.zones[l] == z
            np.testing.assert_allclose(
                delivered[l][z], per_cell[cells].sum(axis=0), rtol=1e-12, atol=1e-12
            )
            np.testing.assert_allclose(
                land[l][z], per_cell_land[cells].sum(axis=0), rtol=1e-12, atol=1e-12
            )
            np.testing.assert_allclose(
                value[l][z], per_cell_value[cells].sum(), rtol=1e-9, atol=1e-12 * scale
            )
