"""``compare``: change map and tables of two runs (run folders written by hand: fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from engine.analysis import compare
from engine.cli import main
from tests.run_folders import write_run_folder

OPTIONS = [
    {"code": 0, "name": "keep", "colour": "#ece7d8"},
    {"code": 1, "name": "housing", "colour": "#c0392b"},
    {"code": 2, "name": "nature", "colour": "#27ae60"},
]


def _run_folder(path, alloc, objective, housing_ha, price, land_ha=None, name=None):
    report = {
        "name": name or path.name,
        "objective": objective,
        "status": "optimal",
        "cell_area_ha": 1.0,
        "options": OPTIONS,
        "targets": [
            {
                "zoning": "province",
                "zone": "Utrecht",
                "claim": "housing",
                "allocated_ha": housing_ha,
                "unit": "homes",
                "allocated": housing_ha * 40,
                "land_ha": housing_ha if land_ha is None else land_ha,
                "shortfall_ha": 0.0,
                "shadow_price": price,
            }
        ],
    }
    write_run_folder(path, alloc, report)


def test_compare_writes_change_map_and_tables(tmp_path):
    a = np.zeros((10, 10), dtype=np.uint8)
    a[0, :] = 255
    a[5:, :] = 1
    b = a.copy()
    b[5, :] = 2  # ten cells housing -> nature
    b[1, :3] = 1  # three cells keep -> housing
    _run_folder(tmp_path / "A", a, 10.0, 50.0, 0.5)
    _run_folder(tmp_path / "B", b, 12.5, 43.0, 0.8, land_ha=30.0)
    assert (
        main(["compare", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(tmp_path / "cmp")])
        == 0
    )
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert result["objective_change"] == pytest.approx(2.5)
    assert result["hectares_changed"] == 13
    tr = {(t["from"], t["to"]): t["hectares"] for t in result["transitions"]}
    assert tr == {("housing", "nature"): 10, ("keep", "housing"): 3}
    (row,) = result["targets"]
    assert row["allocated_ha_change"] == pytest.approx(-7) and row[
        "shadow_price_change"
    ] == pytest.approx(0.3)
    # The homes and the land that takes them apart: B builds denser.
    assert row["allocated_change"] == pytest.approx(-280) and row[
        "land_ha_change"
    ] == pytest.approx(-20)
    with rasterio.open(tmp_path / "cmp" / "change.tif") as src:
        assert src.crs.to_epsg() == 28992 and src.nodata == 65535
        c = src.read(1)
        assert (c[5] == 258).all() and (c[1, :3] == 1).all() and (c[0] == 65535).all()
        assert src.tags(1)["change_258"] == "housing -> nature"
    html = (tmp_path / "cmp" / "compare.html").read_text()
    assert 'id="change-map"' in html and "data:image/png;base64," in html
    assert "ruimtebeslag (ha)" in html and "-280 woningen" in html


def _map_colours(html: str) -> set:
    import base64
    import io
    import re

    from PIL import Image

    png = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    image = Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB")
    return {colour for _, colour in image.getcolors(maxcolors=1 << 20)}


def test_two_variants_of_one_config_are_told_apart_and_land_given_back_shows(tmp_path):
    """Both runs are 'national': the page names them by their folders and says what the
    variant set; cells going back to their current use show (its legend grey is the
    unchanged land's)."""
    a = np.zeros((10, 10), dtype=np.uint8)
    a[5:, :] = 1
    b = a.copy()
    b[5, :] = 0  # ten cells of housing withdrawn: back to their current use
    _run_folder(tmp_path / "base", a, 10.0, 50.0, 0.5, name="national")
    _run_folder(tmp_path / "dense", b, 12.5, 40.0, 0.8, name="national")
    manifest = {"config": {"overrides": {"assumptions.housing_density_urban": 60}}}
    (tmp_path / "dense" / "manifest.json").write_text(json.dumps(manifest))
    args = ["compare", str(tmp_path / "base"), str(tmp_path / "dense")]
    assert main([*args, "--out", str(tmp_path / "cmp")]) == 0
    html = (tmp_path / "cmp" / "compare.html").read_text()
    assert "<h1>Vergelijking: base → dense</h1>" in html
    assert "aangepaste instellingen" in html
    assert "assumptions.housing_density_urban = 60" in html
    back = tuple(int(compare.BACK_TO_KEEP_COLOUR[i : i + 2], 16) for i in (1, 3, 5))
    assert back in _map_colours(html)


def test_compare_refuses_runs_on_different_grids(tmp_path):
    _run_folder(tmp_path / "A", np.zeros((4, 4), np.uint8), 1.0, 1.0, 0.0)
    _run_folder(tmp_path / "B", np.zeros((5, 4), np.uint8), 1.0, 1.0, 0.0)
    assert (
        main(["compare", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(tmp_path / "cmp")])
        == 2
    )


def test_a_change_within_the_solvers_rounding_makes_no_row():
    from engine.analysis.compare import run_changes

    def report(ha, land, price):
        row = {
            "zoning": "province",
            "zone": "Utrecht",
            "claim": "housing",
            "unit": "homes",
            "allocated_ha": ha,
            "allocated": ha * 35,
            "land_ha": land,
            "shadow_price": price,
        }
        return {"name": "r", "objective": 1.0, "cell_area_ha": 1.0, "options": OPTIONS,
                "targets": [row]}  # fmt: skip

    alloc = np.zeros((3, 3), dtype=np.uint8)
    noise, _ = run_changes(report(50, 40, 0.5), report(50 - 5e-13, 40 + 2e-13, 0.5), alloc, alloc)
    land, _ = run_changes(report(50, 40, 0.5), report(50, 39, 0.5), alloc, alloc)
    price, _ = run_changes(report(50, 40, 0.5), report(50, 40, 0.51), alloc, alloc)
    assert not noise["targets"][0]["moved"]
    assert land["targets"][0]["moved"] and price["targets"][0]["moved"]
