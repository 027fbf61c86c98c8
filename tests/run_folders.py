"""Run folders written by hand for the tests of what reads them (compare): an
allocation.tif and a report.json, nothing else."""

from __future__ import annotations

import json

import rasterio
from rasterio.transform import from_origin


def write_run_folder(folder, alloc, report: dict):
    """``folder`` with ``alloc`` (uint8 option codes, 255 outside) as a 100 m allocation.tif
    in RD New and ``report`` as report.json."""
    folder.mkdir()
    with rasterio.open(
        folder / "allocation.tif",
        "w",
        driver="GTiff",
        width=alloc.shape[1],
        height=alloc.shape[0],
        count=1,
        dtype="uint8",
        nodata=255,
        crs="EPSG:28992",
        transform=from_origin(0, 1000, 100, 100),
    ) as dst:
        dst.write(alloc, 1)
    (folder / "report.json").write_text(json.dumps(report))
    return folder
