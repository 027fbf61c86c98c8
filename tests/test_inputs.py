"""Every input is checked where it enters: a config's replacement layers (pas toe of leg uit),
the provinces against the grid, and ``check`` against ``run`` (the same refusals).

On the small synthetic grid (tests/rp_grid.py), so that each case takes a fraction of a second.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rp_grid import synthetic_grid

from configs import national_copy
from engine.config import ConfigError, load_config
from engine.errors import RuimtepuzzelError
from engine.grid.sources import LayerFileError
from engine.resources import shipped_dir
from engine.run import check, prepare, run, substitute_layers
from engine.solve import InfeasibleError

UTRECHT = shipped_dir("configs") / "provinces" / "utrecht.toml"


@pytest.fixture(scope="module")
def grid():
    return synthetic_grid(block=12)


def _layer_config(folder, extra: str = "", tif: str = "peat.tif") -> object:
    return national_copy(
        folder,
        extra=(
            f'[layers.peat]\npath = "{tif}"\nreason = "the province\'s own soil survey"\n'
            f'dataset = "Bodemkaart provincie, 2023"\n{extra}'
        ),
    )


def _tif(path, data, grid, *, crs="EPSG:28992", transform=None, nodata=None, count=1):
    data = np.asarray(data)
    bands = data if data.ndim == 3 else data[None]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=bands.shape[2],
        height=bands.shape[1],
        count=count,
        dtype=bands.dtype,
        crs=crs,
        nodata=nodata,
        transform=transform or grid.rio.transform(),
    ) as dst:
        for b in range(count):
            dst.write(bands[min(b, len(bands) - 1)], b + 1)
    return path


def _peat(grid, value=1):
    peat = np.zeros(grid["peat"].shape, dtype=np.uint8)
    peat[:, : peat.shape[1] // 2] = value
    return peat


def _refusal(config, grid) -> LayerFileError:
    with pytest.raises(LayerFileError) as info:
        substitute_layers(load_config(config), grid)
    return info.value


# -- replacement layers --------------------------------------------------------------------------


def test_an_aligned_replacement_is_used(tmp_path, grid):
    peat = _peat(grid)
    _tif(tmp_path / "peat.tif", peat, grid)
    ds, (dev,), _ = substitute_layers(load_config(_layer_config(tmp_path)), grid)
    np.testing.assert_array_equal(ds["peat"].values, peat)
    assert dev["land_cells_from_base"] == 0 and ds["peat"].dtype == grid["peat"].dtype


def test_a_replacement_beside_the_grid_is_refused(tmp_path, grid):
    # The same file 500 km east: without this check every cell became nodata (255: peat).
    _tif(
        tmp_path / "peat.tif",
        _peat(grid),
        grid,
        transform=from_origin(510_000, 600_000, 1000, 1000),
    )
    err = _refusal(_layer_config(tmp_path), grid)
    assert err.file.endswith("national.toml") and err.key == "layers.peat.path"
    assert "peat.tif" in str(err) and "outside the grid" in str(err) and "gdal_edit" in str(err)


def test_a_replacement_with_a_wrong_crs_label_is_refused(tmp_path, grid):
    # RD coordinates labelled as lon/lat: the file lies nowhere near the Netherlands.
    _tif(tmp_path / "peat.tif", _peat(grid), grid, crs="EPSG:4326")
    err = _refusal(_layer_config(tmp_path), grid)
    assert "EPSG:4326" in str(err) and "CRS label" in str(err)


def test_a_replacement_without_data_on_land_is_refused(tmp_path, grid):
    _tif(tmp_path / "peat.tif", np.full(grid["peat"].shape, 255, np.uint8), grid, nodata=255)
    err = _refusal(_layer_config(tmp_path), grid)
    assert "no data on" in str(err) and "max_nodata_share" in str(err)


def test_a_replacement_that_covers_part_of_the_land(tmp_path, grid):
    # The west half only; the east half's land keeps the base layer when the config allows.
    peat = np.full(grid["peat"].shape, 255, np.uint8)
    half = peat.shape[1] // 2
    peat[:, :half] = 1
    _tif(tmp_path / "peat.tif", peat, grid, nodata=255)
    assert "no data on" in str(_refusal(_layer_config(tmp_path), grid))
    ds, (dev,), _ = substitute_layers(
        load_config(_layer_config(tmp_path, "max_nodata_share = 0.6\n")), grid
    )
    land = grid["land"].values == 1
    assert (ds["peat"].values[:, :half] == 1).all()
    np.testing.assert_array_equal(ds["peat"].values[:, half:], grid["peat"].values[:, half:])
    assert dev["land_cells_from_base"] == int(land[:, half:].sum())


def test_a_two_band_replacement_must_say_which_band(tmp_path, grid):
    two = np.stack([_peat(grid), 1 - _peat(grid)])
    _tif(tmp_path / "peat.tif", two, grid, count=2)
    err = _refusal(_layer_config(tmp_path), grid)
    assert "2 bands" in str(err) and "band = 1..2" in str(err)
    ds, _, _ = substitute_layers(load_config(_layer_config(tmp_path, "band = 2\n")), grid)
    np.testing.assert_array_equal(ds["peat"].values, 1 - _peat(grid))
    err = _refusal(_layer_config(tmp_path, "band = 3\n"), grid)
    assert "band = 3 does not exist" in str(err)


def test_a_truncated_replacement_names_the_file(tmp_path, grid):
    path = _tif(tmp_path / "peat.tif", _peat(grid), grid)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    err = _refusal(_layer_config(tmp_path), grid)
    assert "peat.tif" in str(err) and "cannot be read" in str(err) and "complete copy" in str(err)
    path.write_bytes(b"not a GeoTIFF at all")
    assert "cannot be read" in str(_refusal(_layer_config(tmp_path), grid))


def test_values_a_mask_cannot_take_are_refused(tmp_path, grid):
    # 255 for "no data" without declaring it would mark the cells as peat.
    _tif(tmp_path / "peat.tif", _peat(grid, 255), grid)
    err = _refusal(_layer_config(tmp_path), grid)
    assert "mask of 0 and 1" in str(err) and "-a_nodata" in str(err)
    _tif(tmp_path / "peat.tif", _peat(grid).astype(np.float32) * 0.5, grid)
    assert "cannot take, e.g. 0.5" in str(_refusal(_layer_config(tmp_path), grid))


def test_a_missing_replacement_and_an_unknown_layer(tmp_path, grid):
    err = _refusal(_layer_config(tmp_path, tif="nope.tif"), grid)
    assert "nope.tif" in str(err) and "not found" in str(err)
    config = national_copy(
        tmp_path, extra='[layers.pet]\npath = "x.tif"\nreason = "r"\ndataset = "d"\n'
    )
    with pytest.raises(ConfigError, match="did you mean 'peat'"):
        substitute_layers(load_config(config), grid)


def test_the_replacement_keys_are_validated(tmp_path):
    for extra, words in (
        ("band = 0\n", "layers.peat.band: 0 is below 1"),
        ("max_nodata_share = 2\n", "layers.peat.max_nodata_share"),
        ("bnad = 2\n", "did you mean 'band'"),
    ):
        with pytest.raises(ConfigError, match=words):
            load_config(_layer_config(tmp_path, extra))


# -- provinces against the grid ------------------------------------------------------------------


def test_province_name_and_code_must_agree(tmp_path, grid):
    # Utrecht's name with Noord-Holland's code labelled Noord-Holland's cells "Utrecht".
    config = national_copy(tmp_path)
    bad = load_config(config, {"provinces.utrecht.province.code": "PV27"})
    with pytest.raises(ConfigError) as info:
        prepare(bad, grid=grid)
    err = info.value
    assert err.file.endswith("utrecht.toml") and err.key == "province.code"
    assert "'PV27' is Noord-Holland in the grid" in str(err) and "code = 'PV26'" in str(err)


# -- check is run without the solve --------------------------------------------------------------


def joint_overrides(grid, claims=("work", "forest")) -> dict:
    """Hard targets in Utrecht, each at 95% of the land its rules allow for its claim, the
    claims served by no option together: each fits alone, together they need more land than
    the province has. Derived from the land allowed, so that a change of the rules keeps the
    case what it is."""
    summary = check(UTRECHT, grid=grid, overrides={"provinces.utrecht.targets.housing.lower": 0})
    allowed = {r["claim"]: r["allowed_ha"] for r in summary["rows"] if r["zone"] == "Utrecht"}
    land = summary["cells"] * summary["cell_area_ha"]
    assert 0.95 * sum(allowed[c] for c in claims) > land, "the case needs other claims"
    shares = load_config(UTRECHT).provinces["utrecht"].shares
    return {
        "run.targets": "hard",
        "provinces.utrecht.targets.housing.lower": 0,
        **{f"targets.{c}.lower": 0.95 * allowed[c] / shares[c] for c in claims},
    }


def test_check_refuses_targets_that_fit_one_by_one_but_not_together(grid, tmp_path):
    config = load_config(UTRECHT, joint_overrides(grid))
    with pytest.raises(InfeasibleError) as checked:
        check(config, grid=grid)
    rows = {(r["zone"], r["claim"]): r for r in checked.value.summary["rows"]}
    for claim in ("work", "forest"):  # each alone fits
        assert rows[("Utrecht", claim)]["lower_ha"] < rows[("Utrecht", claim)]["allowed_ha"]
    with pytest.raises(InfeasibleError) as ran:
        run(config, tmp_path / "out", grid=grid, progress=False, analysis="off")
    assert str(ran.value) == str(checked.value) and "Utrecht" in str(checked.value)


def test_check_and_run_refuse_a_target_above_the_land_alike(grid, tmp_path):
    config = load_config(
        national_copy(tmp_path),
        {"run.targets": "hard", "provinces.utrecht.targets.housing.lower": 90_000_000},
    )
    with pytest.raises(RuimtepuzzelError) as checked:
        check(config, grid=grid)
    with pytest.raises(RuimtepuzzelError) as ran:
        run(config, tmp_path / "out", grid=grid, progress=False, analysis="off")
    assert type(ran.value) is type(checked.value) and str(ran.value) == str(checked.value)
    assert "targets.housing" in str(checked.value)


def test_a_bad_environment_setting_stops_check_before_any_work(grid, monkeypatch, tmp_path):
    monkeypatch.setenv("RUIMTEPUZZEL_ANALYSIS", "fulll")
    with pytest.raises(RuimtepuzzelError, match="RUIMTEPUZZEL_ANALYSIS='fulll'.*'full'"):
        check(tmp_path / "no-config-needed.toml", grid=grid)


def test_the_deviation_reaches_the_manifest(tmp_path):
    grid = synthetic_grid(block=20)  # room for the national targets
    _tif(tmp_path / "peat.tif", _peat(grid), grid)
    out = tmp_path / "out"
    run(_layer_config(tmp_path), out, grid=grid, progress=False, method="highs", analysis="off")
    (dev,) = json.loads((out / "manifest.json").read_text())["deviations"]
    assert dev["layer"] == "peat" and dev["land_cells_from_base"] == 0
