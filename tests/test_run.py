"""The main job end to end on the real demo grid at 1000 m, with the real solver."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.outputs import verify_run_folder
from engine.run import prepare, run

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "configs" / "national.toml"
UTRECHT = ROOT / "configs" / "provinces" / "utrecht.toml"


@pytest.fixture(scope="module")
def grid():
    from engine.grid import open_grid

    return open_grid("nl", resolution=1000)


@pytest.fixture(scope="module")
def national(grid, tmp_path_factory):
    out = tmp_path_factory.mktemp("national")
    # HiGHS, the reference backend: the pipeline is under test here, not the fast solver
    # (the CLI test and the benchmarks run the default method).
    report = run(NATIONAL, out, grid=grid, progress=False, method="highs")
    return report, out


def _rows(report, zoning=None, claim=None):
    return [
        r
        for r in report["targets"]
        if (zoning is None or r["zoning"] == zoning) and (claim is None or r["claim"] == claim)
    ]


def test_the_national_run_writes_the_contract(national):
    report, out = national
    for name in (
        "report.json",
        "allocation.tif",
        "manifest.json",
        "summary.md",
        "allocation.tif.aux.xml",
        "allocation.qml",
    ):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*tmp*")), "no temporary files are left behind"
    assert not list(out.parent.glob(out.name + ".*")), "nor a staging folder or a lock beside"
    listed = {o["path"] for o in verify_run_folder(out)["outputs"]}  # every file, hashed
    assert {"report.json", "allocation.tif", "summary.md", "report.html"} <= listed
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["status"] == report["status"] == "optimal"
    assert on_disk["gap"] <= 1e-6
    required = {
        "zoning",
        "zone",
        "claim",
        "lower_ha",
        "upper_ha",
        "allocated_ha",
        "shortfall_ha",
        "shadow_price",
    }
    for r in on_disk["targets"]:
        assert required <= set(r)
    # A row for every (zoning, zone, claim): the nation, the 12 provinces, the NOVEX areas.
    claims = list(on_disk["claims"])
    assert len(_rows(on_disk, "national")) == len(claims)
    assert len(_rows(on_disk, "province")) == 12 * len(claims)
    assert any(r["zoning"].startswith("novex:") for r in on_disk["targets"])


def test_the_report_adds_up(national):
    report, _ = national
    for claim in report["claims"]:
        nat = _rows(report, "national", claim)[0]
        provinces = _rows(report, "province", claim)
        assert sum(r["allocated_ha"] for r in provinces) == pytest.approx(
            nat["allocated_ha"], rel=1e-9, abs=1e-6
        )
        # The claim's own unit is the hectares times the claim's conversion.
        per = report["claims"][claim]["per_claim_ha"]
        assert nat["allocated"] == pytest.approx(nat["allocated_ha"] * per)
    housing = _rows(report, "national", "housing")[0]
    assert housing["lower"] == pytest.approx(900_000)
    assert housing["allocated"] >= 900_000 - 1


def test_the_rules_relaxations_are_built_beside_the_solve_with_the_same_costs(
    grid, tmp_path, monkeypatch
):
    """Without a memory budget the analysis's relaxations are built while the run solves
    (``relaxations_ahead``, seconds); with one, or above AHEAD_CELLS cells, in the analysis
    as before. The rule costs are the same to the bit."""
    import engine.run

    beside = run(NATIONAL, tmp_path / "beside", grid=grid, progress=False)
    assert beside["analysis_timings"]["relaxations_ahead"] > 0
    budget = run(NATIONAL, tmp_path / "budget", grid=grid, progress=False, memory="1GB")
    monkeypatch.setattr(engine.run, "AHEAD_CELLS", beside["cells"] - 1)
    large = run(NATIONAL, tmp_path / "large", grid=grid, progress=False, analysis="quick")
    for after in (budget, large):
        assert "relaxations_ahead" not in after["analysis_timings"]
    assert [c for c in budget["rule_costs"] if c["method"] == "re-solve"]
    assert budget["rule_costs"] == beside["rule_costs"]


def test_no_housing_cell_inside_a_floodplain(national, grid):
    import rasterio

    report, out = national
    with rasterio.open(out / "allocation.tif") as src:
        codes = src.read(1)
    housing = {o["code"] for o in report["options"] if "housing" in o["tags"]}
    flood = np.asarray(grid["floodplain"].values) == 1
    assert flood.sum() > 0
    assert not np.isin(codes[flood], list(housing)).any()
    assert np.isin(codes, list(housing)).any()


def test_the_manifest_records_what_produced_the_result(national):
    _, out = national
    m = json.loads((out / "manifest.json").read_text())
    roles = {i["role"] for i in m["inputs"]}
    assert {"config", "grid"} <= roles
    assert all(len(i["sha256"]) == 64 for i in m["inputs"])
    names = {a["name"] for a in m["assumptions"]}
    assert {"housing_density_urban", "solar_yield", "deep_polder_storage_share"} <= names
    assert m["solver"]["status"] == "optimal" and "gap" in m["solver"]
    assert m["grid"]["crs"] == "EPSG:28992" and m["versions"]["numpy"]
    assert m["config"]["resolved"]["targets"]["housing"]["lower"] == 900000
    assert m["deviations"] == []


def _without_compactness() -> dict:
    """Overrides that switch every compactness entry of the national config off: the exact
    unclustered optimum, the one a province run must share with the national run."""
    import tomllib

    entries = tomllib.loads(NATIONAL.read_text())["compactness"]
    return {f"compactness.{name}.enabled": False for name in entries}


def test_a_province_run_agrees_with_the_national_run(national, grid, tmp_path):
    """Utrecht has no NOVEX area or rule crossing its border, and the national rows do not
    bind beyond the provinces' own (the provincial shares add up to the national targets;
    the housing bids exceed 900,000), so nothing couples it to the rest: the province meets
    the same targets with compactness on, and without it reaches the same exact optimum."""
    import rasterio

    report, _ = national
    prov_report = run(UTRECHT, tmp_path / "clustered", grid=grid, progress=False, method="highs")
    for claim in report["claims"]:
        a = _rows(report, "province", claim)
        a = [r for r in a if r["zone"] == "Utrecht"][0]
        b = _rows(prov_report, "province", claim)[0]
        assert b["zone"] == "Utrecht"
        assert b["lower_ha"] == a["lower_ha"]
        assert b["allocated_ha"] == pytest.approx(a["allocated_ha"], rel=1e-6, abs=1e-6)

    exact = _without_compactness()
    report = run(
        NATIONAL, tmp_path / "n", grid=grid, progress=False, method="highs", overrides=exact
    )
    prov_report = run(
        UTRECHT, tmp_path / "u", grid=grid, progress=False, method="highs", overrides=exact
    )
    with (
        rasterio.open(tmp_path / "n" / "allocation.tif") as s1,
        rasterio.open(tmp_path / "u" / "allocation.tif") as s2,
    ):
        n, u = s1.read(1), s2.read(1)
    inside = u != 255
    assert inside.any()
    # The same optimum: the value Utrecht realises is the same to solver precision. Cells
    # may still differ where options tie exactly (equal values, another optimal vertex).
    value = {r["zoning"]: r["value"] for r in report["zones"] if r["zone"] == "Utrecht"}
    alone = [r["value"] for r in prov_report["zones"] if r["zoning"] == "province"][0]
    assert alone == pytest.approx(value["province"], rel=1e-7, abs=1e-3)
    # (the wind plateau beyond 800 m and the even farmland of green-blue veining tie often)
    assert (n[inside] == u[inside]).mean() > 0.95


def test_overrides_change_the_run(grid):
    """A sweep axis: the reserved share of deep polders doubles the storage target."""
    base, _ = prepare(NATIONAL, grid=grid)
    more, _ = prepare(
        NATIONAL, grid=grid, overrides={"assumptions.deep_polder_storage_share": 0.10}
    )
    k = base.problem.claim_names.index("water_storage")
    a, b = base.stated_lower[0][0, k], more.stated_lower[0][0, k]
    assert b == pytest.approx(2 * a, rel=0.05)


def test_a_warm_started_run_reaches_the_same_optimum(grid, tmp_path):
    """Every run leaves its prices; a similar config started from them ends where a cold
    start does (the sweep's warm start, and ``run --warm-start``)."""
    from engine.report import read_prices
    from engine.solve import WarmStartError

    base = run(
        NATIONAL, tmp_path / "base", grid=grid, progress=False, method="fast", analysis="off"
    )
    prices = read_prices(tmp_path / "base")
    compiled, _ = prepare(NATIONAL, grid=grid)
    assert [p.shape for p in prices] == [lower.shape for lower in compiled.problem.lower]
    denser = {"assumptions.housing_density_urban": 80}
    cold = run(
        NATIONAL,
        tmp_path / "cold",
        grid=grid,
        progress=False,
        method="fast",
        analysis="off",
        overrides=denser,
    )
    warm = run(
        NATIONAL,
        tmp_path / "warm",
        grid=grid,
        progress=False,
        method="fast",
        analysis="off",
        overrides=denser,
        prices=prices,
    )
    assert warm["status"] == cold["status"] == "optimal"
    assert warm["objective"] == pytest.approx(cold["objective"], rel=1e-9)
    assert warm["objective"] != pytest.approx(base["objective"], rel=1e-9)
    with pytest.raises(WarmStartError, match="same zonings"):
        run(
            UTRECHT,
            tmp_path / "utrecht",
            grid=grid,
            progress=False,
            method="fast",
            analysis="off",
            prices=prices,
        )
