"""``[zonings.ID]``: targets per zone of an index layer (RES regions, municipal deals)."""

from __future__ import annotations

import pytest

from engine.config import ConfigError, load_config
from engine.run import run
from tests.configs import national_copy

DEALS = """
[zonings.deals]
name = "Woondeals per gemeente"
layer = "municipality"
source = "L3057"
note = "Test: a municipal housing deal above what the national optimum gives the city."

[zonings.deals.targets.Utrecht.housing]
lower = {lower}
unit = "homes"
source = "L3057"
"""


RES = """
[zonings.res]
name = "RES-regio's"
layer = "res_region"
source = "L1379"
note = "Test: one RES region asked for more than the national optimum gives it."

[zonings.res.targets.{zone}.renewable_energy]
lower = {lower}
unit = "TWh"
source = "L1379"
"""


def _row(report, zoning: str, zone: str, claim: str) -> dict:
    rows = [
        r
        for r in report["targets"]
        if r["zoning"] == zoning and r["zone"] == zone and r["claim"] == claim
    ]
    assert len(rows) == 1
    return rows[0]


def _run(folder, extra: str) -> dict:
    folder.mkdir()
    return run(
        national_copy(folder, extra),
        folder / "out",
        resolution=1000,
        progress=False,
        analysis="off",
    )


def test_a_municipal_target_is_met_and_priced(tmp_path):
    free = _run(tmp_path / "free", DEALS.format(lower=1))
    want = _row(free, "deals", "Utrecht", "housing")["allocated"] + 20000
    bound = _run(tmp_path / "bound", DEALS.format(lower=want))
    row = _row(bound, "deals", "Utrecht", "housing")
    assert row["allocated"] == pytest.approx(want, rel=1e-6)
    assert row["shortfall_ha"] == pytest.approx(0, abs=1e-6)
    assert row["shadow_price"] > 0  # the deal binds: it costs suitability elsewhere
    assert bound["objective"] < free["objective"]
    assert row["source"] == "L3057" and row["key"].startswith("zonings.deals.targets.Utrecht")


def test_an_unknown_zone_is_named_with_a_suggestion(tmp_path):
    from engine.grid import open_grid
    from engine.rules import check_layers

    config = load_config(
        national_copy(
            tmp_path, DEALS.format(lower=10).replace("targets.Utrecht.", "targets.Utrecth.")
        )
    )
    with pytest.raises(ConfigError, match="zonings.deals.targets.Utrecth.*did you mean 'Utrecht'"):
        check_layers(config, open_grid("nl", resolution=1000))


def test_a_zoning_needs_a_layer_and_targets(tmp_path):
    with pytest.raises(ConfigError, match="zonings.deals.layer: missing"):
        load_config(
            national_copy(tmp_path, DEALS.format(lower=10).replace('layer = "municipality"\n', ""))
        )


def test_an_energy_target_per_res_region(tmp_path):
    """RES regions are a zoning like any other: a region's TWh target (by code) is met."""
    free = _run(tmp_path / "free", RES.format(zone="ES04", lower=0.001))
    twente = _row(free, "res", "Twente", "renewable_energy")
    want = twente["allocated"] + 1.0
    bound = _run(tmp_path / "bound", RES.format(zone="ES04", lower=want))
    row = _row(bound, "res", "Twente", "renewable_energy")
    # Met (the free optimum gave Twente a TWh less); the region may get more than asked, and
    # at no cost where the wind cap lets the mix shift between regions.
    assert row["allocated"] >= want * (1 - 1e-9) and row["shortfall_ha"] == pytest.approx(0)
    assert bound["objective"] <= free["objective"] + 1e-9 * abs(free["objective"])
    national = _row(bound, "national", "Nederland", "renewable_energy")
    assert national["allocated"] >= national["lower"] * (1 - 1e-9)  # still adds up
