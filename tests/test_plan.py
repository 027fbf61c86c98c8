"""The national plan honours the rules of the source on the real demo grid (250 m): the
deep-polder reservation per polder and never on built-up land (L188), no wind near homes
(L4491) or in dike zones (L178), no forest in floodplains (L172)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.compile import compile_problem
from engine.config import load_config
from engine.grid import open_grid


@pytest.fixture(scope="module")
def national():
    ds = open_grid("nl", resolution=250)
    compiled = compile_problem(load_config("national"), ds)
    return compiled, ds


def _allowed(compiled, option: str) -> np.ndarray:
    return compiled.problem.allowed[:, compiled.problem.option_names.index(option)]


def test_every_deep_polder_reserves_its_share_of_open_land_deepest_first(national):
    """Per polder and per province that holds part of it (so province runs add up), in
    patches of the water options' minimum size, filled deepest first as water fills it."""
    from engine.compactness import geometry_of
    from engine.rules import min_patch_by_option
    from engine.solve.compact import patch_sizes

    compiled, ds = national
    cells, reserved = compiled.cells, compiled.effects.reserved
    share = compiled.config.assumptions["deep_polder_storage_share"].value
    polder = cells.layer("deep_polder_id")
    built = np.isin(cells.layer("land_cover"), [1, 3])  # built_up, greenhouse
    elevation = cells.layer("elevation")
    names, area = ds["deep_polder_id"].attrs["names"], ds["deep_polder_id"].attrs["area_ha"]
    large = [i for i, a in enumerate(area) if a >= 1000]
    assert len(large) >= 20
    storage = _allowed(compiled, "water_storage") | _allowed(compiled, "water_storage_nature")
    province = cells.layer("province")
    parts = [(i, g) for i in large for g in np.unique(province[polder == i])]
    by_option = min_patch_by_option(compiled.config, compiled.area_ha)
    minimum = max(by_option.get(o, 1) for o in ("water_storage", "water_storage_nature"))
    for i, g in parts:  # each province its share of its own part of the polder
        open_land = (polder == i) & (province == g) & ~built
        may_store = open_land & storage  # not where Natura 2000 or open water rules it out
        taken = reserved & (polder == i) & (province == g)
        want = np.floor(share * open_land.sum() + 0.5)
        if 0 < want < minimum:  # less than one patch: one patch or none
            want = minimum if want >= minimum / 2 else 0
        assert taken.sum() == min(want, may_store.sum()), names[i]
        # Deepest first: the reservation lies deeper than the land that could have held it.
        rest = may_store & ~taken
        if taken.any() and rest.any():
            assert np.median(elevation[taken]) < np.median(elevation[rest]), names[i]
    assert not (reserved & built).any()
    # In patches: hardly any reserved cell lies in a piece smaller than the minimum.
    patch, sizes = patch_sizes(geometry_of(compiled), reserved)
    assert minimum > 1 and np.mean(sizes[patch[reserved]] < minimum) < 0.01


def test_the_reservation_targets_add_up_per_province(national):
    compiled, _ = national
    per_province = sum(
        ha
        for rule, _, _, ha in compiled.effects.reservation_targets
        if rule == "deep_polder_storage"
    )
    assert per_province == pytest.approx(compiled.effects.reserved.sum() * compiled.area_ha)


def test_no_wind_near_homes_or_in_dike_zones(national):
    compiled, _ = national
    cells = compiled.cells
    wind = _allowed(compiled, "wind")
    assert not (wind & (cells.layer("built_up_distance") <= 400)).any()
    assert not (wind & (cells.layer("dike_zone") == 1)).any()
    assert wind.sum() > 0.2 * len(wind)  # still room for wind in the open land


def test_no_forest_in_floodplains(national):
    compiled, _ = national
    floodplain = compiled.cells.layer("floodplain") == 1
    assert floodplain.sum() > 1000
    assert not (_allowed(compiled, "forest") & floodplain).any()


@pytest.fixture(scope="module")
def national_1000m(tmp_path_factory):
    from engine.run import run

    out = tmp_path_factory.mktemp("national-1000m")
    return run("national", out, resolution=1000, progress=False, analysis="off")


def test_wind_and_solar_both_carry_the_energy_target(national_1000m):
    """The energy mix (L1463, L1439): wind up to its assumed share, solar the rest; both real."""
    rows = {r["claim"]: r for r in national_1000m["targets"] if r["zoning"] == "national"}
    energy, wind = rows["renewable_energy"], rows["wind_energy"]
    assert energy["allocated"] == pytest.approx(35, rel=1e-6)
    assert wind["upper"] == pytest.approx(17.5)
    assert 0.3 * 35 <= wind["allocated"] <= 17.5 * (1 + 1e-9)
    area = {o["name"]: o["area_ha"] for o in national_1000m["options"]}
    assert area["solar"] + area["solar_combined"] > 5000  # the rest is solar, on real land


def test_homes_both_inside_towns_and_at_their_edges(national_1000m):
    """Infill is bounded by the land that can transform, so extensions take the rest."""
    area = {o["name"]: o["area_ha"] for o in national_1000m["options"]}
    density = {k: a.value for k, a in load_config("national").assumptions.items()}
    infill = area["housing_urban"] * density["housing_density_urban"]
    extension = area["housing_edge"] * density["housing_density_edge"]
    assert infill + extension >= 900000
    assert 0.2 < infill / (infill + extension) < 0.8


def test_infill_only_where_built_up_land_can_transform(national):
    compiled, _ = national
    cells = compiled.cells
    infill = _allowed(compiled, "housing_urban")
    share = cells.layer("built_up_fraction")
    assert infill.any()
    assert (share[infill] >= 0.5).all() and (share[infill] <= 0.7).all()
    assert (cells.layer("station_distance")[infill] <= 1200).all()
    # Bounded: at the net density, the land that may transform cannot hold every new home.
    density = compiled.config.assumptions["housing_density_urban"].value
    assert infill.sum() * compiled.area_ha * density < 900000


def test_new_work_land_does_not_replace_built_up_land(national):
    """No net loss of existing work land (L1621): new work locations are new land."""
    compiled, _ = national
    built = compiled.cells.layer("land_cover") == 1
    assert built.sum() > 1000
    assert not (_allowed(compiled, "work") & built).any()
    assert _allowed(compiled, "work").sum() > 10 * 7000 / compiled.area_ha  # room enough


def test_new_nature_goes_where_the_network_is_still_to_be_realised(national):
    """L423: the 40,571 ha is network still to be realised, not nature anywhere."""
    compiled, _ = national
    planned = compiled.cells.layer("nature_network_planned") == 1
    nature = _allowed(compiled, "nature")
    assert nature.any() and not (nature & ~planned).any()
    assert nature.sum() * compiled.area_ha > 40571  # the planned part can hold the target


def test_the_two_claims_the_source_adds_are_placed(national_1000m):
    """Urban forest (L3268) and green-blue veining (L448) are claims with targets, met."""
    rows = {r["claim"]: r for r in national_1000m["targets"] if r["zoning"] == "national"}
    for claim in ("urban_forest", "green_blue_veining"):
        assert rows[claim]["lower"] > 0 and rows[claim]["shortfall_ha"] == pytest.approx(0)
    assert rows["urban_forest"]["source"] == "L3268"
    assert rows["green_blue_veining"]["source"] == "L448"


def test_urban_forest_by_the_towns_and_veining_on_farmland(national):
    compiled, _ = national
    cells = compiled.cells
    assert (cells.layer("town_distance")[_allowed(compiled, "urban_forest")] < 1000).all()
    assert (cells.layer("land_cover")[_allowed(compiled, "green_blue_veining")] == 2).all()


def test_extensions_lie_next_to_towns_on_open_land(national):
    """L7377: an extension is next to the town, not in it (infill) nor far from it."""
    compiled, _ = national
    cells = compiled.cells
    edge = _allowed(compiled, "housing_edge")
    assert edge.any()
    assert not (edge & (cells.layer("land_cover") == 1)).any()
    assert (cells.layer("town_distance")[edge] <= 1000).all()
