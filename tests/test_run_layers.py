"""Pas toe of leg uit (L11371): a layer from another dataset, with its reason, in the manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from rp_grid import synthetic_grid

from engine.run import run

ROOT = Path(__file__).resolve().parents[1]


def test_a_replaced_layer_is_used_and_recorded(tmp_path):
    import rasterio

    grid = synthetic_grid(block=20)
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    # The province's own peat map: peat everywhere in the west half.
    peat = np.zeros(grid["peat"].shape, dtype=np.uint8)
    peat[:, : peat.shape[1] // 2] = 1
    with rasterio.open(
        configs / "peat.tif",
        "w",
        driver="GTiff",
        width=peat.shape[1],
        height=peat.shape[0],
        count=1,
        dtype="uint8",
        crs="EPSG:28992",
        transform=grid.rio.transform(),
    ) as dst:
        dst.write(peat, 1)
    nat = configs / "national.toml"
    nat.write_text(
        nat.read_text()
        + (
            '\n[layers.peat]\npath = "peat.tif"\n'
            'reason = "the province\'s own soil survey is newer than the base set"\n'
            'dataset = "Bodemkaart provincie, 2023"\nlocation = "https://example.invalid/peat"\n'
        )
    )
    out = tmp_path / "out"
    run(nat, out, grid=grid, progress=False, method="highs")
    m = json.loads((out / "manifest.json").read_text())
    (dev,) = m["deviations"]
    assert dev["layer"] == "peat" and dev["dataset"] == "Bodemkaart provincie, 2023"
    assert "newer" in dev["reason"] and len(dev["sha256"]) == 64
    assert any(i["role"] == "layer peat" for i in m["inputs"])
    rules = {r["id"]: r["cells"] for r in m["rules"]}
    land = grid["land"].values == 1
    assert rules["subsiding_peat"] == int((peat.astype(bool) & land).sum())
