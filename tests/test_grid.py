"""Grids: definitions, GeoTIFF in and out, alignment errors, the nl demo grid's layers.

The nl grid is built once per session at 1000 m (a few seconds) into a temporary cache;
checks that need finer cells compute only the layers they need, over the area they need.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from engine.grid import build_grid, compute_window, load_definition, open_grid
from engine.grid.build import cache_folder, grid_folder
from engine.grid.definition import GridDefinitionError
from engine.grid.export import export_cogs, grid_info, plot_sheet
from engine.grid.sources import LayerFileError

DATA = Path(load_definition("nl").data_dir)
PROVINCE_NAMES = [
    "Groningen",
    "Fryslân",
    "Drenthe",
    "Overijssel",
    "Flevoland",
    "Gelderland",
    "Utrecht",
    "Noord-Holland",
    "Zuid-Holland",
    "Zeeland",
    "Noord-Brabant",
    "Limburg",
]


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def nl1000(cache):
    return open_grid("nl", 1000, cache_dir=cache)


def _hash(ds) -> str:
    digest = hashlib.sha256()
    for name in sorted(ds.data_vars):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(ds[name].values).tobytes())
    return digest.hexdigest()


def _write_tif(path, data, transform, crs="EPSG:28992", nodata=None):
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(data, 1)


def _definition(path: Path, layers: dict[str, dict], extent, resolutions=(100,), extra="") -> Path:
    lines = [
        "[grid]",
        f'name = "{path.stem}"',
        'crs = "EPSG:28992"',
        f"extent = {list(extent)}",
        f"resolutions = {list(resolutions)}",
        extra,
    ]
    for name, table in layers.items():
        lines.append(f"[layers.{name}]")
        table = {
            "long_name": name,
            "units": "1",
            "provenance": "real",
            "description": f"{name} from a GeoTIFF",
            "source": "raster",
            **table,
        }
        for k, v in table.items():
            lines.append(
                f"{k} = {v!r}".replace("'", '"') if not isinstance(v, str) else f'{k} = "{v}"'
            )
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------- the contract


def test_nl_layers_follow_the_contract(nl1000):
    ds = nl1000
    assert ds.rio.crs.to_epsg() == 28992
    assert ds.sizes == {"y": 317, "x": 280}
    assert ds.y.values[0] > ds.y.values[-1]  # north up
    assert ds.x.values[0] == 500.0 and ds.y.values[0] == 621500.0  # cell centres
    assert tuple(ds.rio.transform())[:6] == (1000.0, 0.0, 0.0, 0.0, -1000.0, 622000.0)
    assert ds.attrs["grid_name"] == "nl" and ds.attrs["resolution"] == 1000
    assert "CC BY 4.0" in ds.attrs["credits"] and "Bron: CBS" in ds.attrs["credits"]
    dtypes = {
        "land": "uint8",
        "province": "int16",
        "municipality": "int16",
        "elevation": "float32",
        "land_cover": "uint8",
        "built_up_fraction": "float32",
        "population_density": "float32",
        "deep_polder": "uint8",
        "floodplain": "uint8",
        "dike_zone": "uint8",
        "water_body": "uint8",
        "peat": "uint8",
        "sandy_highland": "uint8",
        "natura2000": "uint8",
        "nature_network": "uint8",
        "external_safety": "uint8",
        "valuable_farmland": "uint8",
        "station_distance": "float32",
        "town_distance": "float32",
    }
    for name, dtype in dtypes.items():
        assert ds[name].dims == ("y", "x"), name
        assert str(ds[name].dtype) == dtype, name
        for key in ("long_name", "units", "provenance", "description"):
            assert ds[name].attrs.get(key), (name, key)
        assert ds[name].attrs["provenance"] in ("real", "derived", "generated")
    assert ds.province.attrs["codes"] == [f"PV{c}" for c in range(20, 32)]
    assert ds.province.attrs["names"] == PROVINCE_NAMES
    assert len(ds.municipality.attrs["codes"]) == 345 == len(ds.municipality.attrs["names"])
    assert ds.land_cover.attrs["classes"] == [
        "none",
        "built_up",
        "agriculture",
        "greenhouse",
        "forest",
        "open_nature",
        "water",
    ]
    assert ds.chunks  # dask-backed


def test_nl_layers_hold_together(nl1000):
    ds = nl1000.load()
    land = ds.land.values == 1
    assert (ds.province.values[land] >= 0).all() and (ds.province.values[~land] == -1).all()
    assert set(np.unique(ds.province.values)) == set(range(-1, 12))
    assert (ds.land_cover.values[~land] == 0).all() and (ds.land_cover.values[land] > 0).all()
    share = np.bincount(ds.land_cover.values[land], minlength=7) / land.sum()
    assert 0.08 < share[1] < 0.2  # built up
    assert share[2] > 0.5  # agriculture
    assert 0.05 < share[4] < 0.2  # forest
    for mask in (
        "deep_polder",
        "floodplain",
        "dike_zone",
        "peat",
        "sandy_highland",
        "natura2000",
        "nature_network",
        "external_safety",
        "valuable_farmland",
    ):
        values = ds[mask].values
        assert set(np.unique(values)) <= {0, 1}, mask
        assert not values[~land].any(), f"{mask} set off land"
    assert 0.03 < ds.natura2000.values[land].mean() < 0.1
    assert 0.1 < ds.nature_network.values[land].mean() < 0.2
    assert (ds.nature_network.values >= ds.natura2000.values).all()
    assert 0.08 < ds.deep_polder.values[land].mean() < 0.14  # 10.5% below -2 m NAP
    bf = ds.built_up_fraction.values
    assert bf.min() >= 0 and bf.max() <= 1
    # 17.59 M inhabitants in the districts; the density field keeps them (1 km2 cells).
    assert ds.population_density.values[land].sum() == pytest.approx(17.59e6, rel=0.03)
    for name in ("station_distance", "town_distance"):
        d = ds[name].values
        assert np.isfinite(d[land]).all() and np.isnan(d[~land]).all()
    # Stations are real now (also in villages) and towns have edges, so a station is no longer
    # always farther than a town; an intercity station is never nearer than any station.
    assert (ds.intercity_distance.values[land] >= ds.station_distance.values[land]).all()
    assert (ds.town_distance.values[ds.land_cover.values == 1] == 0).mean() > 0.9
    attrs = ds.station_distance.attrs
    assert len(attrs["points_x"]) == len(attrs["points_y"]) == len(attrs["points_name"]) > 50


def test_deep_polders_are_where_the_known_ones_are():
    from engine.grid.tiles import Context, GridGeometry

    definition = load_definition("nl")
    # One context for all windows: the elevation mesh and vectors are prepared once.
    ctx = Context(definition, GridGeometry.of(definition, 250))

    def share(x, y):
        # 250 m cells, a 3 x 3 km window around the place; only what deep_polder needs.
        row0, col0 = int((622000 - y - 1500) // 250), int((x - 1500) // 250)
        out = compute_window(
            definition, 250, (row0, col0, 12, 12), layers=["deep_polder"], context=ctx
        )
        return out["deep_polder"].mean()

    assert share(104500, 481000) > 0.9  # Haarlemmermeer
    assert share(98500, 447000) > 0.5  # Zuidplaspolder
    assert share(150000, 483000) > 0.9  # Zuidelijk Flevoland
    assert share(180000, 525000) > 0.9  # Noordoostpolder (Flevoland's older sister)
    assert share(182000, 460000) == 0  # Veluwe
    assert share(155000, 448000) == 0  # Utrechtse Heuvelrug


def test_rasterised_province_areas_match_the_polygons():
    out = compute_window("nl", 100, layers=["province"])["province"]
    cells_km2 = np.bincount(out[out >= 0].ravel(), minlength=12) * 0.01
    meta, _, wkb, fields = pyogrio.raw.read(DATA / "admin/cbs_provincies_2022_rd.gpkg")
    codes = list(fields[list(meta["fields"]).index("code")])
    polygons_km2 = shapely.area(shapely.from_wkb(wkb)) / 1e6
    for code, km2 in zip(codes, polygons_km2):
        index = sorted(codes).index(code)
        assert cells_km2[index] == pytest.approx(km2, rel=0.01), code
    assert cells_km2[6] == pytest.approx(1554, rel=0.01)  # Utrecht, CBS
    assert cells_km2[5] == pytest.approx(5118, rel=0.01)  # Gelderland, CBS
    assert cells_km2.sum() == pytest.approx(35088, rel=0.01)


# --------------------------------------------------------------------------- determinism


def test_build_is_deterministic_and_independent_of_tiling(nl1000, cache, tmp_path):
    definition = load_definition("nl")
    again = build_grid(definition, 1000, tmp_path / "again", tile_size=96, workers=2)
    from engine.grid import open_folder

    assert _hash(open_folder(again)) == _hash(nl1000)


def test_cache_is_reused_and_keyed_on_the_definition(nl1000, cache, tmp_path):
    folder = grid_folder("nl", 1000, cache_dir=cache)
    stamp = (folder / "grid.json").stat().st_mtime_ns
    assert grid_folder("nl", 1000, cache_dir=cache) == folder
    assert (folder / "grid.json").stat().st_mtime_ns == stamp  # not rebuilt
    child = tmp_path / "nl_seed.toml"
    child.write_text('[grid]\nname = "nl"\nextends = "nl"\nseed = 7\n')
    assert cache_folder(load_definition(child), 1000, cache) != folder


# --------------------------------------------------------------------------- GeoTIFFs


@pytest.fixture
def tif_stack(tmp_path):
    """Three aligned GeoTIFFs on a 100 m grid in RD: int16 with nodata, float32 with NaN,
    uint8 without nodata."""
    transform = from_origin(120000, 460000, 100, 100)
    rng = np.random.default_rng(1)
    zone = rng.integers(-1, 5, (20, 30)).astype(np.int16)
    height = rng.normal(0, 3, (20, 30)).astype(np.float32)
    height[0, :4] = np.nan
    mask = (rng.random((20, 30)) > 0.5).astype(np.uint8)
    _write_tif(tmp_path / "zone.tif", zone, transform, nodata=-1)
    _write_tif(tmp_path / "height.tif", height, transform, nodata=np.nan)
    _write_tif(tmp_path / "mask.tif", mask, transform)
    extent = (120000, 458000, 123000, 460000)
    return tmp_path, extent, {"zone": zone, "height": height, "mask": mask}


def test_geotiff_round_trip_keeps_crs_transform_nodata_and_dtype(tif_stack, cache, tmp_path):
    folder, extent, arrays = tif_stack
    path = _definition(
        folder / "mine.toml",
        {
            "zone": {"path": "zone.tif"},
            "height": {"path": "height.tif"},
            "mask": {"path": "mask.tif"},
        },
        extent,
    )
    ds = open_grid(path, 100, cache_dir=cache)
    for name, array in arrays.items():
        assert ds[name].dtype == array.dtype
        np.testing.assert_array_equal(ds[name].values, array)
    assert ds.zone.rio.nodata == -1 and np.isnan(ds.height.rio.nodata)
    assert ds.mask.rio.nodata is None
    out = export_cogs(grid_folder(path, 100, cache_dir=cache), tmp_path / "cogs")
    for tif in out:
        with rasterio.open(tif) as src, rasterio.open(folder / tif.name) as orig:
            assert src.crs == orig.crs and src.transform == orig.transform
            assert src.dtypes == orig.dtypes
            assert src.nodata == orig.nodata or (np.isnan(src.nodata) and np.isnan(orig.nodata))
            np.testing.assert_array_equal(src.read(1), orig.read(1))
            assert src.tags()["provenance"] == "real"
            assert src.profile.get("tiled") or src.width < 512


@pytest.mark.parametrize(
    "origin, crs, shape, words",
    [
        ((120050, 460000), "EPSG:28992", (20, 30), ["layers.height", "transform", "resample"]),
        (
            (120000, 460000),
            "EPSG:3035",
            (20, 30),
            ["layers.height", "CRS is EPSG:3035", "gdalwarp"],
        ),
        ((120000, 460000), "EPSG:28992", (20, 31), ["layers.height", "shape is (20, 31)"]),
    ],
    ids=["shifted", "wrong-crs", "wrong-shape"],
)
def test_misaligned_rasters_are_refused_by_name(tif_stack, cache, origin, crs, shape, words):
    folder, extent, _ = tif_stack
    _write_tif(
        folder / "bad.tif", np.zeros(shape, np.float32), from_origin(*origin, 100, 100), crs=crs
    )
    path = _definition(folder / "bad.toml", {"height": {"path": "bad.tif"}}, extent)
    with pytest.raises(LayerFileError) as err:
        open_grid(path, 100, cache_dir=cache)
    for word in words:
        assert word in str(err.value)


def test_misaligned_raster_is_resampled_when_asked(tif_stack, cache):
    folder, extent, arrays = tif_stack
    # Half a cell off: bilinear resampling gives the mean of the two neighbours.
    shifted = np.repeat(np.arange(31, dtype=np.float32)[None, :], 20, axis=0)
    _write_tif(folder / "off.tif", shifted, from_origin(119950, 460000, 100, 100))
    path = _definition(
        folder / "off.toml",
        {"height": {"path": "off.tif", "resample": "bilinear", "dtype": "float32"}},
        extent,
    )
    ds = open_grid(path, 100, cache_dir=cache)
    np.testing.assert_allclose(ds.height.values[5, 1:-1], np.arange(1, 29) + 0.5)
    # Warped tile by tile, a cell's value does not depend on the tile it was warped in.
    from engine.grid import open_folder

    tiled = build_grid(load_definition(path), 100, folder / "tiled", tile_size=7, workers=2)
    np.testing.assert_array_equal(open_folder(tiled).height.values, ds.height.values)


def test_a_province_geotiff_stack_replaces_demo_layers(nl1000, cache, tmp_path):
    # The province exports the demo layers it keeps, and brings its own elevation: the
    # derived layers (deep polders) follow the new elevation, the rest stays as it was.
    cogs = tmp_path / "cogs"
    export_cogs(grid_folder("nl", 1000, cache_dir=cache), cogs)
    elevation = nl1000.elevation.values.copy()
    elevation[:, 140:] = -3.0  # the east half "pumped dry"
    _write_tif(cogs / "elevation_own.tif", elevation, nl1000.rio.transform(), nodata=np.nan)
    province = tmp_path / "province.toml"
    province.write_text(
        '[grid]\nname = "my_province"\nextends = "nl"\nresolutions = [1000]\n'
        '[layers.land]\nsource = "raster"\npath = "cogs/land.tif"\n'
        'long_name = "land"\nunits = "1"\nprovenance = "real"\ndescription = "own copy"\n'
        '[layers.elevation]\nsource = "raster"\npath = "cogs/elevation_own.tif"\n'
        'long_name = "elevation"\nunits = "m NAP"\nprovenance = "real"\n'
        'description = "the province own elevation model"\n'
    )
    ds = open_grid(province, 1000, cache_dir=cache)
    land = ds.land.values == 1
    np.testing.assert_array_equal(ds.land.values, nl1000.land.values)
    assert ds.elevation.attrs["description"] == "the province own elevation model"
    east = land & (np.arange(280) >= 140)[None, :] & (ds.water_body.values == 0)
    assert ds.deep_polder.values[east].all()
    west = np.s_[:, :140]
    np.testing.assert_array_equal(ds.deep_polder.values[west], nl1000.deep_polder.values[west])
    np.testing.assert_array_equal(ds.province.values, nl1000.province.values)


# --------------------------------------------------------------------------- definitions


@pytest.mark.parametrize(
    "body, words",
    [
        ('[grid]\ncrs = "EPSG:28992"\n', ["extent"]),
        (
            '[grid]\ncrs = "EPSG:28992"\nextent = [0, 0, 1000, 1000]\nresolutions = [300]\n'
            '[layers.a]\nsource = "raster"\npath = "a.tif"\n',
            ["whole number", "300"],
        ),
        (
            '[grid]\ncrs = "EPSG:28992"\nextent = [0, 0, 1000, 1000]\nresolutions = [100]\n'
            '[layers.a]\nsource = "wms"\n',
            ["layers.a.long_name", "missing"],
        ),
        (
            '[grid]\ncrs = "EPSG:28992"\nextent = [0, 0, 1000, 1000]\nresolutions = [100]\n'
            '[layers.a]\nsource = "raster"\npath = "missing.tif"\nlong_name = "a"\nunits = "1"\n'
            'provenance = "real"\ndescription = "a"\n',
            ["layers.a.path", "missing.tif", "does not exist"],
        ),
        (
            '[grid]\ncrs = "EPSG:28992"\nextent = [0, 0, 1000, 1000]\nresolutions = [100]\n'
            '[layers.a]\nsource = "derived"\nfunction = "f"\ninputs = ["b"]\ndtype = "uint8"\n'
            'long_name = "a"\nunits = "1"\nprovenance = "derived"\ndescription = "a"\n',
            ["input 'b'", "not a layer"],
        ),
        (
            '[grid]\ncrs = "EPSG:28992"\nextent = [0, 0, 1000, 1000]\nresolutions = [100]\n'
            'colour = "red"\n',
            ["unknown key", "colour"],
        ),
        (
            '[grid]\ncrs = "EPSG:28992"\nextent = [0, 0, 1000, 1000]\nresolutions = [100]\n'
            '[layers.a]\nsorce = "raster"\n',
            ["layers.a.sorce", "did you mean 'source'"],
        ),
        (
            '[grid]\ncrs = "EPSG:28992"\nextent = [0, 0, 1000, 1000]\nresolutions = [100]\n'
            '[layers.a]\nsource = "derived"\nfunction = "f"\ndtype = "unit8"\n'
            'long_name = "a"\nunits = "1"\nprovenance = "derived"\ndescription = "a"\n',
            ["layers.a.dtype", "did you mean 'uint8'"],
        ),
        (
            '[grid]\ncrs = "EPSG:28992"\nextent = [0, 0, 1000]\nresolutions = [100]\n',
            ["grid.extent", "[xmin, ymin, xmax, ymax]"],
        ),
        (
            '[grid]\ncrs = "RD New"\nextent = [0, 0, 1000, 1000]\nresolutions = [100]\n',
            ["grid.crs", "EPSG:28992"],
        ),
        (
            '[grid]\ncrs = "EPSG:28992"\nextent = [0, 0, 1000, 1000]\nresolutions = [100]\n'
            'tile_size = "big"\n',
            ["grid.tile_size", "expected a number"],
        ),
        (
            '[grid]\ncrs = "EPSG:28992"\nextent = [0, 0, 1000, 1000]\nresolutions = [100]\n'
            "[layer.a]\n",
            ["did you mean 'layers'"],
        ),
        ('[grid\ncrs = "EPSG:28992"\n', ["not valid TOML"]),
    ],
    ids=[
        "no-extent",
        "indivisible",
        "no-metadata",
        "missing-file",
        "unknown-input",
        "typo",
        "layer-typo",
        "dtype-typo",
        "short-extent",
        "bad-crs",
        "tile-size-text",
        "section-typo",
        "toml-syntax",
    ],
)
def test_bad_definitions_say_what_and_where(tmp_path, body, words):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(GridDefinitionError) as err:
        load_definition(path)
    assert str(path) in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_unknown_grid_and_resolution_are_named():
    with pytest.raises(ValueError, match="no grid named 'atlantis'.*nl"):
        load_definition("atlantis")
    with pytest.raises(ValueError, match="resolution 50 m is not one of"):
        open_grid("nl", 50)


# --------------------------------------------------------------------------- people


def test_info_and_sheet(nl1000, tmp_path):
    text = grid_info(nl1000)
    assert "elevation" in text and "m NAP" in text and "generated" in text and "CBS" in text
    png = plot_sheet(nl1000, tmp_path / "sheet.png", max_cells=200)
    assert png.stat().st_size > 50_000
    from engine.grid.export import select

    part = select(nl1000, layers=["station", "floodplain"], bbox=[115000, 420000, 205000, 475000])
    assert list(part.data_vars) == ["land", "province", "station", "floodplain"]
    assert part.sizes == {"y": 55, "x": 90}
    assert plot_sheet(part, tmp_path / "part.png").is_file()
    with pytest.raises(ValueError, match="no layer"):
        select(nl1000, layers=["nope"])
    with pytest.raises(ValueError, match="holds no cells"):
        select(nl1000, bbox=[-9000, 0, -8000, 10])


def test_cli_grid_commands(nl1000, cache, tmp_path, monkeypatch, capsys):
    # The CLI frame imports every command module; skip (with the reason) while one is missing.
    if not (Path(__file__).parents[1] / "engine" / "cli" / "solve_demo.py").is_file():
        pytest.skip("engine/cli/__init__.py imports solve_demo, which is not in the tree yet")
    from engine.cli import main

    monkeypatch.setenv("RUIMTEPUZZEL_CACHE", str(cache))
    assert main(["grid", "info", "nl", "--resolution", "1000"]) == 0
    assert "province" in capsys.readouterr().out
    assert main(["grid", "export", "nl", "-r", "1000", "--out", str(tmp_path / "cogs")]) == 0
    assert (tmp_path / "cogs" / "land_cover.tif").is_file()
    assert main(["grid", "info", "nl", "--resolution", "7"]) == 2
    assert "not one of its resolutions" in capsys.readouterr().err


def test_cli_grid_build_shows_its_tiles_as_a_run_does(tmp_path, monkeypatch, capsys):
    """`grid build` shows the run's progress lines on stderr (stages, tiles, time left), not
    dask's progress bar with its carriage returns on stdout; --quiet shows none."""
    from engine import progress
    from engine.cli import main

    monkeypatch.setenv("RUIMTEPUZZEL_CACHE", str(tmp_path))
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)
    assert main(["grid", "build", "nl", "-r", "1000"]) == 0
    out, err = capsys.readouterr()
    assert re.fullmatch(r"grid nl at 1000 m ready in [\d.]+ s: .*\n", out), out
    lines = err.splitlines()
    assert lines[0] == "ruimtepuzzel: [1/1] grid: started"
    assert any(re.match(r"ruimtepuzzel: \[1/1\] grid: \d+/\d+ tiles", line) for line in lines)
    assert lines[-1].startswith("ruimtepuzzel: [1/1] grid: done")
    assert "\r" not in out + err and "Completed" not in out + err
    assert main(["grid", "build", "nl", "-r", "1000", "--rebuild", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "ready in" in out and "grid:" not in err


def test_the_whole_stack_from_exported_cogs_reopens_identically(nl1000, cache, tmp_path):
    # What a GIS user gets from `grid export` is a grid definition's worth of GeoTIFFs: a
    # definition reading them all back gives the same grid, bit for bit, dtype and nodata.
    export_cogs(grid_folder("nl", 1000, cache_dir=cache), tmp_path)
    layers = {
        name: {
            "path": f"{name}.tif",
            "units": da.attrs["units"],
            "provenance": da.attrs["provenance"],
        }
        for name, da in nl1000.data_vars.items()
    }
    path = _definition(tmp_path / "stack.toml", layers, (0, 305000, 280000, 622000), (1000,))
    ds = open_grid(path, 1000, cache_dir=cache)
    for name, da in nl1000.data_vars.items():
        assert ds[name].dtype == da.dtype, name
        np.testing.assert_array_equal(ds[name].values, da.values, err_msg=name)
        assert ds[name].rio.nodata == da.rio.nodata or np.isnan(da.rio.nodata), name


def test_a_raster_in_another_crs_is_reprojected_the_same_in_any_tiling(tif_stack, cache):
    from rasterio.warp import transform_bounds

    from engine.grid import open_folder

    folder, extent, _ = tif_stack
    left, bottom, right, top = transform_bounds("EPSG:28992", "EPSG:3035", *extent)
    left, top = left - 500, top + 500
    cols, rows = int((right - left + 500) // 50), int((top - bottom + 500) // 50)
    gradient = np.add.outer(np.arange(rows), np.arange(cols)).astype(np.float32)
    _write_tif(folder / "laea.tif", gradient, from_origin(left, top, 50, 50), crs="EPSG:3035")
    path = _definition(
        folder / "laea.toml",
        {"height": {"path": "laea.tif", "resample": "bilinear", "dtype": "float32"}},
        extent,
    )
    whole = open_folder(build_grid(load_definition(path), 100, folder / "whole", tile_size=1000))
    tiled = open_folder(build_grid(load_definition(path), 100, folder / "tiled", tile_size=7))
    assert np.isfinite(whole.height.values).all()
    np.testing.assert_array_equal(tiled.height.values, whole.height.values)


def test_older_builds_are_dropped_only_after_a_grace_period(nl1000, cache):
    from engine.grid.build import STALE_AFTER_S, _remove_stale

    folder = grid_folder("nl", 1000, cache_dir=cache)
    prefix = folder.name.rsplit("-", 1)[0]
    old, recent = folder.parent / f"{prefix}-0000old", folder.parent / f"{prefix}-0000new"
    for other in (old, recent):
        other.mkdir()
        (other / "grid.json").write_text("{}")
    past = time.time() - STALE_AFTER_S - 60
    os.utime(old / "grid.json", (past, past))
    _remove_stale(folder)
    assert not old.exists() and recent.exists() and folder.exists()


def test_a_vector_attribute_is_rasterised_with_nan_outside(tmp_path, cache):
    gemeenten = DATA / "admin/cbs_gemeenten_2022_rd.gpkg"
    path = _definition(
        tmp_path / "pop.toml",
        {
            "population": {
                "source": "vector",
                "path": str(gemeenten),
                "burn": "attribute",
                "attribute": "population",
                "dtype": "float32",
                "units": "inhabitants",
            }
        },
        (0, 305000, 280000, 622000),
        (1000,),
    )
    pop = open_grid(path, 1000, cache_dir=cache).population.values
    utrecht = pop[(622000 - 455500) // 1000, 136500 // 1000]  # Utrecht centre
    assert utrecht == 361699  # GM0344 Utrecht, CBS 2022
    assert np.isnan(pop[0, 0])  # the North Sea


def test_a_province_window_equals_the_national_grid_there(nl1000, cache):
    ds = open_grid("utrecht", 1000, cache_dir=cache)
    assert ds.sizes == {"y": 51, "x": 58}
    window = nl1000.sel(x=slice(114000, 172000), y=slice(480000, 429000))
    for name in nl1000.data_vars:
        np.testing.assert_array_equal(ds[name].values, window[name].values, err_msg=name)
    assert ds.attrs["grid_name"] == "utrecht"


def test_the_grid_can_be_written_to_netcdf(nl1000, tmp_path):
    # Attributes must stay NetCDF-able (1-D lists, strings, numbers) for whoever saves a grid.
    nl1000.to_netcdf(tmp_path / "grid.nc")


# --------------------------------------------------------------------------- bad inputs


def _cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_truncated_raster_layer_names_its_file(tif_stack, tmp_path):
    folder, extent, _ = tif_stack
    _cut(folder / "height.tif")
    path = _definition(folder / "cut.toml", {"height": {"path": "height.tif"}}, extent)
    with pytest.raises(LayerFileError) as err:
        open_grid(path, 100, cache_dir=tmp_path)
    text = str(err.value)
    assert "cut.toml: layers.height.path" in text and "height.tif" in text
    assert "cannot be read" in text and "complete copy" in text


def test_a_two_band_raster_layer_must_say_which_band(tif_stack, tmp_path):
    folder, extent, arrays = tif_stack
    with rasterio.open(
        folder / "two.tif",
        "w",
        driver="GTiff",
        width=30,
        height=20,
        count=2,
        dtype="float32",
        crs="EPSG:28992",
        transform=from_origin(120000, 460000, 100, 100),
    ) as dst:
        dst.write(np.zeros((20, 30), np.float32), 1)
        dst.write(arrays["height"], 2)
    path = _definition(folder / "two.toml", {"height": {"path": "two.tif"}}, extent)
    with pytest.raises(LayerFileError, match=r"has 2 bands.*band = 1..2"):
        open_grid(path, 100, cache_dir=tmp_path)
    path = _definition(folder / "two.toml", {"height": {"path": "two.tif", "band": 2}}, extent)
    np.testing.assert_array_equal(
        open_grid(path, 100, cache_dir=tmp_path).height.values, arrays["height"]
    )


def test_a_resampled_raster_with_a_wrong_crs_label_is_refused(tif_stack, tmp_path):
    folder, extent, _ = tif_stack
    # RD metres labelled as degrees: warped, it would be nodata everywhere.
    _write_tif(
        folder / "deg.tif",
        np.ones((20, 30), np.float32),
        from_origin(120000, 460000, 100, 100),
        crs="EPSG:4326",
    )
    path = _definition(
        folder / "deg.toml",
        {"height": {"path": "deg.tif", "resample": "bilinear", "dtype": "float32"}},
        extent,
    )
    with pytest.raises(LayerFileError, match="outside the grid.*EPSG:4326"):
        open_grid(path, 100, cache_dir=tmp_path)


def test_a_raster_layer_without_data_on_land_is_refused(tif_stack, tmp_path):
    folder, extent, arrays = tif_stack
    _write_tif(
        folder / "empty.tif",
        np.full((20, 30), np.nan, np.float32),
        from_origin(120000, 460000, 100, 100),
        nodata=np.nan,
    )
    _write_tif(
        folder / "land.tif", np.ones((20, 30), np.uint8), from_origin(120000, 460000, 100, 100)
    )
    path = _definition(
        folder / "empty.toml",
        {"land": {"path": "land.tif"}, "height": {"path": "empty.tif"}},
        extent,
    )
    with pytest.raises(LayerFileError, match="no data on any of the 600 land cells"):
        open_grid(path, 100, cache_dir=tmp_path)
    assert not list((tmp_path / "grids").glob("empty-*"))  # nothing left in the cache


def test_a_damaged_cache_entry_is_built_again(tif_stack, tmp_path, caplog):
    folder, extent, arrays = tif_stack
    path = _definition(
        folder / "mine.toml",
        {"zone": {"path": "zone.tif"}, "height": {"path": "height.tif"}},
        extent,
    )
    built = grid_folder(path, 100, cache_dir=tmp_path)
    for damage in (
        lambda: _cut(built / "zone.tif"),
        lambda: (built / "grid.json").write_text("{ not json"),
        lambda: (built / "height.tif").unlink(),
    ):
        damage()
        with caplog.at_level("WARNING", logger="engine.grid.build"):
            ds = open_grid(path, 100, cache_dir=tmp_path)
        assert "damaged" in caplog.text and "building it again" in caplog.text
        caplog.clear()
        np.testing.assert_array_equal(ds.zone.values, arrays["zone"])
        np.testing.assert_array_equal(ds.height.values, arrays["height"])


def test_a_folder_that_is_no_grid_is_named(tmp_path):
    from engine.grid import open_folder
    from engine.grid.build import GridFolderError

    with pytest.raises(GridFolderError, match="not a built grid"):
        open_folder(tmp_path)
    (tmp_path / "grid.json").write_text("[]")
    with pytest.raises(GridFolderError, match="damaged"):
        open_folder(tmp_path)


def test_the_grid_commands_report_bad_definitions_without_traceback(tmp_path, capsys):
    from engine.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[grid]\ncrs = "EPSG:28992"\nextnt = [0, 0, 1000, 1000]\n')
    assert main(["grid", "info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml: grid.extnt: unknown key; did you mean 'extent'?" in err
    assert "Traceback" not in err
    assert main(["grid", "info", "atlantis"]) == 2
    assert "no grid named 'atlantis'" in capsys.readouterr().err


_BURN_BESIDE_CATCH_WARNINGS = """
import threading, warnings
import numpy as np, shapely
import engine
from engine.grid.tiles import BaseField
from engine.grid.sources import burn_shapes

stop = threading.Event()

def enter_and_leave():
    # What numba's compiler does on its thread while a first run builds its grid.
    while not stop.is_set():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")

other = threading.Thread(target=enter_and_leave)
other.start()
try:
    field = BaseField.over((100_000, 400_000, 106_400, 406_400), 100)
    shapes = np.array([shapely.box(100_000, 400_000, 100_200, 400_200)])
    for _ in range(300):
        out = burn_shapes(field, shapes)
    assert out.sum() == 4
finally:
    stop.set()
    other.join()
"""


def test_burning_shapes_beside_another_thread_s_warning_blocks_shows_no_warning():
    """rasterio silences a warning of its own inside warnings.catch_warnings, which another
    thread entering and leaving such blocks undoes: a first run printed rasterio's
    'NotGeoreferencedWarning: Dataset has no geotransform' while it built its grid beside
    the kernels' compilation. Every warning is an error here (-W error)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", _BURN_BESIDE_CATCH_WARNINGS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""
