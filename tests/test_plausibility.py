"""The plausibility section: present, NaN-free, and adding up to the rest of report.json."""

from __future__ import annotations

import json
import math

import pytest

from engine.run import run


@pytest.fixture(scope="module")
def national(tmp_path_factory):
    out = tmp_path_factory.mktemp("plausibility")
    run("national", out, resolution=1000, progress=False, analysis="off")
    return json.loads((out / "report.json").read_text()), out


def _rows(pl):
    return [pl["national"], *pl["provinces"]]


def _close(a, b, rel=1e-6):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-6)


def test_section_exists_and_is_written(national):
    report, out = national
    pl = report["plausibility"]
    assert {"national", "provinces"} <= set(pl)
    assert [p["zone"] for p in pl["provinces"]] == [
        r["zone"]
        for r in report["targets"]
        if r["zoning"] == "province" and r["claim"] == "housing"
    ]
    assert "## Oordeel per provincie en opgave" in (out / "summary.md").read_text()


def test_land_by_option_matches_options(national):
    report, _ = national
    land = report["plausibility"]["national"]["land"]
    for o in report["options"]:
        assert _close(land["area_ha_by_option"][o["name"]], o["area_ha"])
    for name in land["area_ha_by_option"]:
        total = sum(
            p["land"]["area_ha_by_option"][name] for p in report["plausibility"]["provinces"]
        )
        assert _close(total, land["area_ha_by_option"][name])


def test_homes_add_up_to_the_housing_rows(national):
    report, _ = national
    pl = report["plausibility"]
    allocated = {
        (r["zoning"], r["zone"]): r["allocated"]
        for r in report["targets"]
        if r["claim"] == "housing"
    }
    nat = pl["national"]["housing"]
    assert _close(
        nat["infill_homes"] + nat["extension_homes"], allocated[("national", "Nederland")]
    )
    for p in pl["provinces"]:
        h = p["housing"]
        assert _close(h["infill_homes"] + h["extension_homes"], allocated[("province", p["zone"])])


def test_energy_adds_up_to_the_energy_row(national):
    report, _ = national
    row = next(
        r
        for r in report["targets"]
        if r["zoning"] == "national" and r["claim"] == "renewable_energy"
    )
    e = report["plausibility"]["national"]["energy"]
    assert _close(e["wind_twh"] + e["solar_twh"], row["allocated"])
    assert _close(e["total_twh"], row["allocated"])
    assert _close(sum(e["solar_by_option_twh"].values()), e["solar_twh"])


def test_shares_are_fractions(national):
    report, _ = national
    for row in _rows(report["plausibility"]):
        h, land = row["housing"], row["land"]
        for s in (
            h["infill_share_of_homes"],
            h["share_homes_within_1200m_of_station"],
            h["share_homes_within_3000m_of_station"],
            land["built_up_transformed_share"],
        ):
            assert s is None or 0.0 <= s <= 1.0
        near, far = (
            h["share_homes_within_1200m_of_station"],
            h["share_homes_within_3000m_of_station"],
        )
        if near is not None:
            assert near <= far


def test_wind_keeps_its_distance_from_homes(national):
    report, _ = national
    for row in _rows(report["plausibility"]):
        w = row["wind_distance_to_built_up"]
        if w["cells"]:
            assert w["min_m"] >= 400.0 and w["p5_m"] >= w["min_m"]


def test_no_nan_in_the_section(national, tmp_path):
    report, out = national
    text = (out / "report.json").read_text()
    section = json.dumps(report["plausibility"], allow_nan=False)  # raises on NaN
    assert "NaN" not in section and "Infinity" not in text


def test_a_dense_and_a_sparse_allocation_give_the_same_figures():
    # The figures are summed over each option's own cells (a dense column per option was
    # 119 bytes a cell at the write stage's peak): from a sparse allocation and from the
    # same allocation dense, the same section to the last bit, split cells included.
    import dataclasses

    import engine
    from engine.analysis.plausibility import plausibility
    from engine.run import prepare_run

    compiled = prepare_run("national", resolution=1000).compiled
    sol = engine.solve(compiled.problem, method="fast")
    assert sol.x.nnz > compiled.problem.n_cells  # some cells are split between options
    dense = dataclasses.replace(sol, x=sol.x.toarray())
    assert json.dumps(plausibility(compiled, sol)) == json.dumps(plausibility(compiled, dense))
