"""The runs a praatkaart serves: whole run folders, read once, with what the page asks of them.

A :class:`Run` is a run folder proved whole (:func:`engine.outputs.verify_run_folder`) and
known by an id (its folder name): the page and the API name runs by id only, never by a path,
so no request reaches the file system beyond the files of the runs the server was given.

What a run's files do not hold (the value of every option in a cell, the rules behind it) is
compiled again from the run's own config and overrides at its grid and resolution
(:func:`engine.run.prepare_run`), once per run, when a cell is first asked about.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from functools import cached_property
from pathlib import Path

import numpy as np

from engine.errors import RuimtepuzzelError

log = logging.getLogger(__name__)

__all__ = ["Run", "RunNotFound", "load_runs", "run_id", "grid_of"]

NODATA = 255  # allocation.tif off the land


class RunNotFound(RuimtepuzzelError):
    """A run id the server does not serve."""


def run_id(folder: Path, taken) -> str:
    """A short id for the URL: the folder name in [a-z0-9-], made unique with -2, -3, ..."""
    base = re.sub(r"[^a-z0-9-]+", "-", folder.name.lower()).strip("-") or "run"
    rid, n = base, 1
    while rid in taken:
        n += 1
        rid = f"{base}-{n}"
    return rid


_GRIDS: dict = {}
_GRIDS_LOCK = threading.Lock()


def grid_of(name: str, resolution: float):
    """The demo grid (or a named grid) at ``resolution``, read once per process and kept in
    memory (88 MB at 250 m): every variant compiles from it, and reading its tiles again
    took a third of a 250 m compile."""
    from engine.grid import open_grid

    key = (str(name), float(resolution))
    with _GRIDS_LOCK:
        if key not in _GRIDS:
            _GRIDS[key] = open_grid(name, resolution=resolution).load()
        return _GRIDS[key]


class Run:
    """One whole run folder and the arrays the page draws from it."""

    def __init__(self, rid: str, folder: Path, report: dict, manifest: dict):
        self.id = rid
        self.folder = folder
        self.report = report
        self.manifest = manifest
        grid = manifest["grid"]
        self.grid_name = grid["name"]
        self.resolution = float(grid["resolution_m"])
        self.shape = tuple(grid["shape"])
        self.transform = tuple(grid["transform"][:6])
        self._lock = threading.Lock()
        self._prepared = None
        self.png: dict[str, bytes] = {}  # rendered layers, by layer id

    @classmethod
    def open(cls, folder, rid: str) -> Run:
        from engine.outputs import verify_run_folder

        folder = Path(folder).resolve()
        if not (folder / "manifest.json").is_file():
            raise RuimtepuzzelError(
                f"{folder}: not a run folder (no manifest.json); make one with "
                f"'ruimtepuzzel run national --resolution 1000 --out {folder}'"
            )
        verify_run_folder(folder)  # whole: nothing missing, changed or foreign
        report = json.loads((folder / "report.json").read_text())
        manifest = json.loads((folder / "manifest.json").read_text())
        return cls(rid, folder, report, manifest)

    # --- what the files hold ---------------------------------------------------------------

    @property
    def bounds(self) -> list[float]:
        """[west, south, east, north] of the grid in RD New metres."""
        cell, x0, y0 = self.transform[0], self.transform[2], self.transform[5]
        rows, cols = self.shape
        return [x0, y0 - rows * cell, x0 + cols * cell, y0]

    def has(self, name: str) -> bool:
        return (self.folder / name).is_file()

    def raster(self, name: str, band: int = 1) -> np.ndarray:
        """A band of one of the run's GeoTIFFs (allocation.tif, regret.tif, ...)."""
        import rasterio

        with rasterio.open(self.folder / name) as src:
            return src.read(band)

    def band_names(self, name: str) -> list[str]:
        import rasterio

        with rasterio.open(self.folder / name) as src:
            return [d or f"band {i + 1}" for i, d in enumerate(src.descriptions)]

    @cached_property
    def allocation(self) -> np.ndarray:
        return self.raster("allocation.tif")

    @cached_property
    def prices(self) -> list[np.ndarray] | None:
        from engine.report import read_prices

        return read_prices(self.folder)

    @property
    def config_path(self) -> str:
        return self.manifest["config"]["path"]

    @property
    def overrides(self) -> dict:
        return dict(self.manifest["config"].get("overrides") or {})

    def summary(self) -> dict:
        r = self.report
        return {
            "id": self.id,
            "name": r.get("name"),
            "scope": r.get("scope"),
            "status": r.get("status"),
            "objective": r.get("objective"),
            "gap": r.get("gap"),
            "cells": r.get("cells"),
            "resolution": self.resolution,
            "bounds": self.bounds,
            "created": self.manifest.get("created"),
            "overrides": self.overrides,
        }

    # --- what is compiled again ------------------------------------------------------------

    def grid(self):
        return grid_of(self.grid_name, self.resolution)

    def prepared(self):
        """The run's config compiled again at its grid and resolution (once)."""
        with self._lock:
            if self._prepared is None:
                from engine.run import prepare_run

                log.info("compiling %s again for the cell explanations", self.id)
                self._prepared = prepare_run(
                    self.config_path,
                    grid=self.grid(),
                    overrides=self.overrides or None,
                )
            return self._prepared

    def cell_at(self, x: float, y: float) -> tuple[int, int]:
        """(row, col) of the grid cell holding the RD point (x, y); refuses points off it."""
        cell, x0, y0 = self.transform[0], self.transform[2], self.transform[5]
        row, col = int(np.floor((y0 - y) / cell)), int(np.floor((x - x0) / cell))
        if not (0 <= row < self.shape[0] and 0 <= col < self.shape[1]):
            raise RuimtepuzzelError(
                f"x={x}, y={y} is off the grid of run {self.id} (RD New metres: x "
                f"{self.bounds[0]:.0f}..{self.bounds[2]:.0f}, y {self.bounds[1]:.0f}.."
                f"{self.bounds[3]:.0f})"
            )
        return row, col


def load_runs(folders) -> dict[str, Run]:
    """The run folders the server was given, by id; each must be whole."""
    runs: dict[str, Run] = {}
    for folder in folders:
        rid = run_id(Path(folder).resolve(), runs)
        runs[rid] = Run.open(folder, rid)
        log.info("serving run %s from %s", rid, runs[rid].folder)
    return runs
