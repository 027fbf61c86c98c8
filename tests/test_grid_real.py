"""The nl grid's layers made from real data: Natura 2000, railway stations, town edges, the
nature network around Natura 2000, RES regions and the existing wind and solar parks.

Layers are computed in memory (``compute_window``), the whole country at 250 m once per
module, so these checks need no cache and take seconds.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from scipy import ndimage
from scipy.spatial import cKDTree

from engine.grid import compute_window, load_definition
from engine.grid.tiles import Context, GridGeometry

DEFINITION = load_definition("nl")
DATA = Path(DEFINITION.data_dir)
LAYERS = [
    "land",
    "province",
    "municipality",
    "natura2000",
    "land_cover",
    "built_up_fraction",
    "nature_network",
    "nature_network_planned",
    "town_distance",
    "station_distance",
    "intercity_distance",
    "station",
    "station_class",
    "res_region",
    "existing_energy",
]


@pytest.fixture(scope="module")
def nl250():
    ctx = Context(DEFINITION, GridGeometry.of(DEFINITION, 250))
    layers = compute_window(DEFINITION, 250, layers=LAYERS, context=ctx)
    return layers, ctx


def _read(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    meta, _, wkb, columns = pyogrio.raw.read(path)
    return shapely.from_wkb(wkb), dict(zip(meta["fields"], columns))


def _cell(res: float, x: float, y: float) -> tuple[int, int]:
    xmin, _, _, ymax = DEFINITION.extent
    return int((ymax - y) // res), int((x - xmin) // res)


# --------------------------------------------------------------------------- Natura 2000


@pytest.mark.parametrize("res", [250, 100])
def test_natura2000_area_per_province_matches_the_polygons(res):
    provinces, fields = _read(DATA / "admin/cbs_provincies_2022_rd.gpkg")
    sites, _ = _read(DATA / "nature/natura2000_nl_160_simplified20m_rd.gpkg")
    sites = shapely.union_all(sites)  # sites may touch or overlap: count land once
    out = compute_window(DEFINITION, res, layers=["natura2000", "province"])
    cells_ha = (
        np.bincount(out["province"][out["natura2000"] == 1].astype(np.int64), minlength=12)
        * res
        * res
        / 1e4
    )
    codes = [str(c) for c in fields["code"]]
    for code, province in zip(codes, provinces):
        polygon_ha = shapely.area(shapely.intersection(sites, province)) / 1e4
        # Measured: within 1.1% everywhere at 250 m (Flevoland -1.0%, its sites are thin
        # strips along the lakes), within 0.8% at 100 m (Utrecht -0.7%).
        assert cells_ha[sorted(codes).index(code)] == pytest.approx(polygon_ha, rel=0.02), code


def test_natura2000_is_real_and_on_land_only(nl250):
    layers, ctx = nl250
    land = layers["land"] == 1
    n2000 = layers["natura2000"]
    assert not n2000[~land].any()
    assert 0.09 < n2000[land].mean() < 0.1  # 328,000 ha of the 3.51 M ha of land
    spec = DEFINITION.layers["natura2000"]
    assert spec.provenance == "real" and "160" in spec.description
    assert ctx.layer_attrs["natura2000"]["features"] == 160


# --------------------------------------------------------------------------- stations


def _dutch_stations() -> list[dict]:
    with open(DATA / "transport/stations-2023-09.csv", newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if r["country"] == "NL"]


@pytest.mark.parametrize("res, moved", [(1000, ["Enkhuizen", "Harlingen Haven"]), (250, [])])
def test_every_station_is_on_a_land_cell(res, moved):
    ctx = Context(DEFINITION, GridGeometry.of(DEFINITION, res))
    out = compute_window(
        DEFINITION,
        res,
        layers=["land", "station", "station_class", "station_distance"],
        context=ctx,
    )
    rows = _dutch_stations()
    assert len(rows) == 397
    event_only = {r["name_long"] for r in rows if r["type"] == "facultatiefStation"}
    assert event_only == {"Heerenveen IJsstadion", "Rotterdam Stadion"}
    attrs = ctx.layer_attrs["station_distance"]
    names, xs, ys = attrs["points_name"], attrs["points_x"], attrs["points_y"]
    assert len(names) == 395 and not event_only & set(names)
    station = out["station"] == 1
    assert (out["land"][station] == 1).all()
    # Dutch stations are at least 1 km apart: at 250 m and 1000 m each has a cell of its own.
    assert station.sum() == 395
    # Stations on a quay or the coast, whose own cell is sea at this resolution, are put on
    # the nearest land cell (within snap_distance); the rest are in their own cell.
    assert ctx.layer_attrs["station"]["moved_to_land"] == moved
    for name, x, y in zip(names, xs, ys):
        r, c = _cell(res, x, y)
        if name in moved:
            assert out["land"][r, c] == 0
            near = station[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2]
            assert near.any(), name
        else:
            assert station[r, c] and out["land"][r, c] == 1, name
    assert np.bincount(out["station_class"].ravel(), minlength=4).tolist()[1:] == [325, 24, 46]


def test_station_classes_follow_the_types(nl250):
    layers, ctx = nl250
    attrs = ctx.layer_attrs["station_distance"]
    by_name = dict(zip(attrs["points_name"], attrs["points_class"]))
    assert by_name["Utrecht Centraal"] == 3 and by_name["Zwolle"] == 3  # megastation, hub
    assert by_name["Amsterdam Zuid"] == 2 and by_name["Emmen"] == 2  # intercity, sneltrein
    assert by_name["Utrecht Overvecht"] == 1 and by_name["Bunnik"] == 1
    land = layers["land"] == 1
    assert np.isnan(layers["station_distance"][~land]).all()
    assert (layers["intercity_distance"][land] >= layers["station_distance"][land]).all()
    # Utrecht Centraal's cell is a hub, at most 250 * sqrt(2) / 2 m from the station.
    x, y = (
        attrs["points_x"][attrs["points_name"].index("Utrecht Centraal")],
        attrs["points_y"][attrs["points_name"].index("Utrecht Centraal")],
    )
    r, c = _cell(250, x, y)
    assert layers["station_class"][r, c] == 3
    assert layers["station_distance"][r, c] <= 177
    assert ctx.layer_attrs["intercity_distance"]["points_class"].count(1) == 0


# --------------------------------------------------------------------------- town edges


def _towns(built_up: np.ndarray, res: float) -> np.ndarray:
    p = DEFINITION.layers["town_distance"].params
    labels, n = ndimage.label(built_up >= p["built_up_threshold"], np.ones((3, 3), bool))
    area_ha = np.bincount(labels.ravel(), minlength=n + 1) * res * res / 1e4
    big = area_ha >= p["min_area_ha"]
    big[0] = False
    return big[labels]


def test_town_distance_is_zero_in_towns_and_measured_to_their_edge(nl250):
    layers, ctx = nl250
    land, d = layers["land"] == 1, layers["town_distance"]
    town = _towns(layers["built_up_fraction"], 250)
    assert 400 < ctx.layer_attrs["town_distance"]["towns"] < 700
    assert np.isnan(d[~land]).all() and np.isfinite(d[land]).all()
    assert (d[town] == 0).all() and (d[land & ~town] > 0).all()
    # Towns are land_cover built_up, or water running through them (water wins in land_cover).
    assert np.isin(layers["land_cover"][town], [1, 6]).all()
    assert (layers["land_cover"][town] == 1).mean() > 0.98
    # Every other land cell: the straight-line distance to the nearest town cell centre.
    rows, cols = np.nonzero(town)
    tree = cKDTree(np.column_stack([cols, rows]) * 250.0)
    r, c = np.nonzero(land & ~town)
    expected, _ = tree.query(np.column_stack([c, r]) * 250.0)
    np.testing.assert_allclose(d[r, c], expected, rtol=1e-6)
    # Outward from the edge the distance grows by one cell per cell: the cells beside a town
    # (sharing a side) are 250 m away; the next ring is one diagonal or two cells out.
    four = ndimage.generate_binary_structure(2, 1)
    side = ndimage.binary_dilation(town, four) & ~town & land
    assert side.any() and (d[side] == 250).all()
    second = ndimage.binary_dilation(town | side, four) & ~town & ~side & land
    assert (d[second] >= 250 * np.sqrt(2) - 1e-3).all() and (d[second] <= 500).all()


def test_town_distance_does_not_depend_on_the_window(nl250):
    layers, ctx = nl250
    # Windows far smaller than a town's reach and cutting through Utrecht and Amersfoort.
    for row0, col0, h, w in [(640, 520, 9, 13), (657, 600, 40, 3), (0, 0, 5, 5)]:
        part = compute_window(
            DEFINITION, 250, (row0, col0, h, w), layers=["town_distance"], context=ctx
        )["town_distance"]
        np.testing.assert_array_equal(
            part, layers["town_distance"][row0 : row0 + h, col0 : col0 + w]
        )


# --------------------------------------------------------------------------- nature network


def test_nature_network_holds_natura2000_nearby_nature_and_a_planned_part(nl250):
    layers, _ = nl250
    land = layers["land"] == 1
    nnn, planned, n2000 = (
        layers[n] == 1 for n in ("nature_network", "nature_network_planned", "natura2000")
    )
    cover = layers["land_cover"]
    assert not (nnn | planned)[~land].any()
    assert (nnn >= n2000).all() and (nnn >= planned).all()
    assert not (planned & n2000).any() and (cover[planned] == 2).all()  # farmland now
    assert 0.12 < nnn[land].mean() < 0.15
    assert 50_000 < planned.sum() * 6.25 < 80_000  # ha, the assumption in nl.toml
    # Outside Natura 2000 and the planned part the network is existing nature.
    assert np.isin(cover[nnn & ~n2000 & ~planned], [4, 5]).all()
    assert DEFINITION.layers["nature_network"].provenance == "derived"


# --------------------------------------------------------------------------- RES regions


def test_res_regions_are_whole_municipalities(nl250):
    layers, ctx = nl250
    land = layers["land"] == 1
    region, municipality = layers["res_region"], layers["municipality"]
    attrs = ctx.layer_attrs["res_region"]
    assert attrs["codes"] == [f"ES{k:02d}" for k in range(1, 31)]
    assert attrs["names"][0] == "Groningen" and attrs["names"][29] == "Zuid-Limburg"
    assert (region[land] >= 0).all() and (region[municipality < 0] == -1).all()
    assert set(np.unique(region[land])) == set(range(30))
    pairs = np.unique(np.column_stack([municipality[land], region[land]]), axis=0)
    assert len(pairs) == len(np.unique(municipality[land]))  # one region per municipality
    polygons, fields = _read(DATA / "energy/res_regions_2022_cbs_generalized_rd.gpkg")
    cells_km2 = np.bincount(region[land], minlength=30) * 0.0625
    for code, polygon in zip(fields["statcode"], polygons):
        # The source outlines are generalised to about 1 km: areas agree to a few percent.
        assert cells_km2[attrs["codes"].index(code)] == pytest.approx(
            shapely.area(polygon) / 1e6, rel=0.04
        ), code


# --------------------------------------------------------------------------- energy parks


def test_existing_parks_are_onshore_wind_and_solar_discs():
    ctx = Context(DEFINITION, GridGeometry.of(DEFINITION, 100))
    out = compute_window(DEFINITION, 100, layers=["land", "existing_energy"], context=ctx)
    attrs = ctx.layer_attrs["existing_energy"]
    names = set(attrs["points_name"])
    for offshore in ("Gemini", "Luchterduinen", "Egmond aan Zee", "Princess Amalia"):
        assert offshore not in names
    assert "Outside the Northeast" not in names and "Sint Eustatius" not in names  # qa_flag
    assert "Hemweg power station" not in names and "Hemweg" in names  # coal left out
    assert set(attrs["points_fuel"]) == {"Wind", "Solar"} and len(names) == 46
    energy = out["existing_energy"]
    assert set(np.unique(energy)) == {0, 1, 2} and not energy[out["land"] == 0].any()
    # A solar park inland covers about its capacity in hectares (1 ha per MWp).
    i = attrs["points_name"].index("Budel-Dorplein")
    r, c = _cell(100, attrs["points_x"][i], attrs["points_y"][i])
    disc = energy[r - 6 : r + 7, c - 6 : c + 7] == 2
    assert disc.sum() == pytest.approx(attrs["points_mw"][i], rel=0.1)


# --------------------------------------------------------------------------- metadata


def test_credits_and_provenance_name_the_real_sources():
    credits = " ".join(DEFINITION.credits)
    for words in (
        "RVO via PDOK",
        "Stations: Rijden de Treinen",
        "CC0",
        "Regionale Energiestrategie",
        "World Resources Institute",
    ):
        assert words in credits, words
    generated = next(c for c in DEFINITION.credits if "derived or generated" in c)
    for real in ("Natura 2000,", "stations", "towns"):
        assert real not in generated
    provenance = {n: s.provenance for n, s in DEFINITION.layers.items()}
    assert provenance["natura2000"] == provenance["res_region"] == provenance["station"] == "real"
    for name in ("town_distance", "station_distance", "nature_network", "existing_energy"):
        assert provenance[name] == "derived"
