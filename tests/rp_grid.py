"""A small synthetic grid with the layers of the demo grid (engine.grid), for fast unit tests.

Twelve province blocks (CBS code order, PV20..PV31) of a few municipalities each, including
every municipality the shipped configs name; layers built deterministically so that tests can
know exactly which cells a rule must hit (floodplain strips, deep polders in the west).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

PROVINCES = [
    ("PV20", "Groningen", ["Groningen", "Midden-Groningen", "Westerkwartier"]),
    ("PV21", "Fryslân", ["Leeuwarden", "Heerenveen"]),
    ("PV22", "Drenthe", ["Assen", "Tynaarlo", "Noordenveld", "Aa en Hunze"]),
    ("PV23", "Overijssel", ["Zwolle", "Enschede"]),
    ("PV24", "Flevoland", ["Almere", "Lelystad", "Zeewolde"]),
    (
        "PV25",
        "Gelderland",
        [
            "Arnhem",
            "Nijmegen",
            "Berg en Dal",
            "Beuningen",
            "Doesburg",
            "Druten",
            "Duiven",
            "Heumen",
            "Lingewaard",
            "Montferland",
            "Overbetuwe",
            "Renkum",
            "Rheden",
            "Rozendaal",
            "Westervoort",
            "Wijchen",
            "Zevenaar",
        ],
    ),
    ("PV26", "Utrecht", ["Utrecht", "Amersfoort"]),
    (
        "PV27",
        "Noord-Holland",
        [
            "Amsterdam",
            "Aalsmeer",
            "Amstelveen",
            "Beverwijk",
            "Blaricum",
            "Bloemendaal",
            "Diemen",
            "Edam-Volendam",
            "Gooise Meren",
            "Haarlem",
            "Haarlemmermeer",
            "Heemskerk",
            "Heemstede",
            "Hilversum",
            "Huizen",
            "Landsmeer",
            "Laren",
            "Oostzaan",
            "Ouder-Amstel",
            "Purmerend",
            "Uitgeest",
            "Uithoorn",
            "Velsen",
            "Waterland",
            "Weesp",
            "Wijdemeren",
            "Wormerland",
            "Zaanstad",
            "Zandvoort",
            "Alkmaar",
        ],
    ),
    (
        "PV28",
        "Zuid-Holland",
        [
            "Leiden",
            "Leidschendam-Voorburg",
            "'s-Gravenhage",
            "Rijswijk",
            "Delft",
            "Schiedam",
            "Rotterdam",
            "Dordrecht",
            "Gouda",
        ],
    ),
    ("PV29", "Zeeland", ["Middelburg", "Goes"]),
    ("PV30", "Noord-Brabant", ["Eindhoven", "Helmond", "Veldhoven", "Tilburg"]),
    (
        "PV31",
        "Limburg",
        [
            "Maastricht",
            "Heerlen",
            "Kerkrade",
            "Landgraaf",
            "Brunssum",
            "Sittard-Geleen",
            "Stein",
            "Beek",
            "Beekdaelen",
            "Meerssen",
            "Valkenburg aan de Geul",
            "Eijsden-Margraten",
            "Gulpen-Wittem",
            "Vaals",
            "Simpelveld",
            "Voerendaal",
            "Venlo",
            "Roermond",
        ],
    ),
]
CLASSES = ["none", "built_up", "agriculture", "greenhouse", "forest", "open_nature", "water"]


def synthetic_grid(block: int = 12, resolution: float = 1000.0, seed: int = 7) -> xr.Dataset:
    """12 province blocks of ``block`` x ``block`` cells in a 3 x 4 layout, with a sea margin."""
    rng = np.random.default_rng(seed)
    rows, cols = 3, 4
    ny, nx = rows * block + 2, cols * block + 2
    y = 600_000.0 - (np.arange(ny) + 0.5) * resolution
    x = 10_000.0 + (np.arange(nx) + 0.5) * resolution
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")

    province = np.full((ny, nx), -1, dtype=np.int16)
    municipality = np.full((ny, nx), -1, dtype=np.int16)
    muni_names: list[str] = []
    for p, (_, _, munis) in enumerate(PROVINCES):
        r0, c0 = 1 + (p // cols) * block, 1 + (p % cols) * block
        province[r0 : r0 + block, c0 : c0 + block] = p
        # Municipalities as vertical stripes of the block (the first takes what is left).
        widths = np.array_split(np.arange(block * block), len(munis))
        flat_idx = np.arange(block * block)
        sub = np.empty(block * block, dtype=np.int16)
        for j, w in enumerate(widths):
            sub[np.isin(flat_idx, w)] = len(muni_names) + j
        municipality[r0 : r0 + block, c0 : c0 + block] = sub.reshape(block, block)
        muni_names.extend(munis)
    land = (province >= 0).astype(np.uint8)

    # Low west, high east; noise for ties.
    elevation = (-6.0 + 14.0 * xx / nx + rng.normal(0, 0.4, (ny, nx))).astype(np.float32)
    deep_polder = (elevation < -2.0).astype(np.uint8) & land
    # A river floodplain: one row in every block row; dike zones beside it.
    river = (yy % block) == (block // 2)
    floodplain = (river & (land == 1)).astype(np.uint8)
    dike_zone = (((yy % block) == (block // 2 - 1)) & (land == 1)).astype(np.uint8)
    # Towns: a blob per municipality stripe start.
    town = ((xx % 6) < 2) & ((yy % 6) < 2) & (land == 1)
    built_up_fraction = np.where(town, 0.8, rng.uniform(0, 0.2, (ny, nx))).astype(np.float32)
    land_cover = np.where(town, 1, 2).astype(np.uint8)
    land_cover[(xx % 7 == 3) & (yy % 5 == 1)] = 4
    land_cover[(xx % 11 == 5) & (yy % 4 == 2)] = 5
    land_cover[(xx % 13 == 0) & (yy % 9 == 4)] = 3
    land_cover[land == 0] = 6
    water_body = np.zeros((ny, nx), dtype=np.uint8)
    water_body[(xx % 17 == 8) & (yy % 13 == 6) & (land == 1)] = 1
    land_cover[water_body == 1] = 6
    # Distances to the nearest town cell (Chebyshev on the 6-cell lattice, in metres).
    dx = np.minimum(xx % 6, np.maximum(0, 6 - xx % 6))
    dy = np.minimum(yy % 6, np.maximum(0, 6 - yy % 6))
    dx = np.where(xx % 6 < 2, 0, np.minimum(xx % 6 - 1, 6 - xx % 6))
    dy = np.where(yy % 6 < 2, 0, np.minimum(yy % 6 - 1, 6 - yy % 6))
    town_distance = (np.maximum(dx, dy) * resolution).astype(np.float32)
    station_distance = (town_distance + resolution).astype(np.float32)
    population_density = np.where(town, 3000.0, 100.0).astype(np.float32)
    peat = ((elevation < 0) & (elevation > -4) & (xx % 3 == 0)).astype(np.uint8) & land
    sandy_highland = (elevation > 4).astype(np.uint8) & land
    natura2000 = ((xx % 10 == 9) & (yy % 10 >= 8)).astype(np.uint8) & land
    nature_network = (natura2000 | ((xx % 10 >= 8) & (yy % 10 >= 7))).astype(np.uint8) & land
    external_safety = ((xx % 12 == 1) & (yy % 12 == 1)).astype(np.uint8) & land
    valuable_farmland = ((land_cover == 2) & (elevation > 0) & (yy % 4 == 0)).astype(np.uint8)
    # Each connected deep polder its own zone, as the demo grid's deep_polder_id.
    from scipy import ndimage

    polder_labels, n_polders = ndimage.label(deep_polder == 1, structure=np.ones((3, 3), bool))
    deep_polder_id = (polder_labels - 1).astype(np.int32)
    # A wind park (1) and a solar park (2) on farmland, a few cells each.
    existing_energy = np.zeros_like(land)
    existing_energy[((xx % 12 == 4) & (yy % 12 == 4)) & (land_cover == 2)] = 1
    existing_energy[((xx % 12 == 4) & (yy % 12 == 7)) & (land_cover == 2)] = 2

    def da(a, long_name, units, **attrs):
        out = xr.DataArray(a, dims=("y", "x"))
        out.attrs = {
            "long_name": long_name,
            "units": units,
            "provenance": "synthetic test grid",
            "description": long_name,
            **attrs,
        }
        return out

    ds = xr.Dataset(
        {
            "land": da(land, "land", "1"),
            "province": da(
                province,
                "province",
                "1",
                codes=[c for c, _, _ in PROVINCES],
                names=[n for _, n, _ in PROVINCES],
            ),
            "municipality": da(
                municipality,
                "municipality",
                "1",
                codes=[f"GM{j:04d}" for j in range(len(muni_names))],
                names=muni_names,
            ),
            "elevation": da(elevation, "elevation", "m NAP"),
            "land_cover": da(land_cover, "land cover", "1", classes=CLASSES),
            "built_up_fraction": da(built_up_fraction, "built-up fraction", "1"),
            "population_density": da(population_density, "population density", "inh/km2"),
            "deep_polder": da(deep_polder, "deep polder", "1"),
            "floodplain": da(floodplain, "floodplain", "1"),
            "dike_zone": da(dike_zone, "dike zone", "1"),
            "water_body": da(water_body, "water body", "1"),
            "peat": da(peat, "peat", "1"),
            "sandy_highland": da(sandy_highland, "sandy highland", "1"),
            "natura2000": da(natura2000, "Natura 2000", "1"),
            "nature_network": da(nature_network, "NNN", "1"),
            "nature_network_planned": da(
                nature_network & (land_cover == 2).astype(np.uint8) & (1 - natura2000),
                "NNN still to realise",
                "1",
            ),
            "external_safety": da(external_safety, "external safety", "1"),
            "valuable_farmland": da(valuable_farmland, "valuable farmland", "1"),
            "station_distance": da(station_distance, "station distance", "m"),
            "intercity_distance": da(station_distance + 2 * resolution, "intercity distance", "m"),
            "town_distance": da(town_distance, "town distance", "m"),
            "built_up_distance": da(town_distance, "built-up distance", "m"),
            "deep_polder_id": da(
                deep_polder_id,
                "deep polder",
                "index",
                names=[f"polder {i}" for i in range(n_polders)],
            ),
            "existing_energy": da(
                existing_energy, "existing parks", "class", classes=["none", "wind", "solar"]
            ),
        },
        coords={"y": y, "x": x},
    )
    ds.attrs = {"grid_name": "synthetic", "resolution": resolution}
    try:
        import rioxarray  # noqa: F401

        ds = ds.rio.write_crs("EPSG:28992")
    except ImportError:
        pass
    return ds
