"""The geometry of a grid at one resolution, its tiles, and the per-build context.

A build works tile by tile. Every layer function sees one ``Tile``: the window, the cell
centre coordinates in grid metres, and the layers already computed for that window. Because
coordinates are always computed from global cell indices and layer functions only look at
their own cells (or at fields prepared once for the whole grid), a layer comes out the same
bit for bit whatever the tile size.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from scipy import ndimage

from engine.grid.definition import GridDefinition

__all__ = ["GridGeometry", "Window", "Tile", "Context", "BaseField"]


@dataclass(frozen=True)
class Window:
    """A block of cells: first row and column, and its size."""

    row0: int
    col0: int
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width


@dataclass(frozen=True)
class GridGeometry:
    """A north-up raster: top-left corner, square cells of ``res`` metres, shape, CRS."""

    crs: str
    xmin: float
    ymax: float
    res: float
    height: int
    width: int

    @classmethod
    def of(cls, definition: GridDefinition, resolution: float) -> GridGeometry:
        height, width = definition.shape(resolution)
        xmin, _, _, ymax = definition.extent
        return cls(definition.crs, xmin, ymax, float(resolution), height, width)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def transform(self) -> Affine:
        return Affine(self.res, 0.0, self.xmin, 0.0, -self.res, self.ymax)

    def window_transform(self, w: Window) -> Affine:
        return Affine(
            self.res,
            0.0,
            self.xmin + w.col0 * self.res,
            0.0,
            -self.res,
            self.ymax - w.row0 * self.res,
        )

    def x(self, col0: int = 0, ncols: int | None = None) -> np.ndarray:
        """Cell-centre x of columns col0.. (from global indices: the same in every tile)."""
        ncols = self.width - col0 if ncols is None else ncols
        return self.xmin + (np.arange(col0, col0 + ncols, dtype=np.float64) + 0.5) * self.res

    def y(self, row0: int = 0, nrows: int | None = None) -> np.ndarray:
        nrows = self.height - row0 if nrows is None else nrows
        return self.ymax - (np.arange(row0, row0 + nrows, dtype=np.float64) + 0.5) * self.res

    def full(self) -> Window:
        return Window(0, 0, self.height, self.width)

    def windows(self, tile_size: int) -> list[Window]:
        return [
            Window(r, c, min(tile_size, self.height - r), min(tile_size, self.width - c))
            for r in range(0, self.height, tile_size)
            for c in range(0, self.width, tile_size)
        ]


@dataclass
class BaseField:
    """A smooth field prepared once on a coarse regular grid, sampled at any point.

    Sampling is bilinear between the base cell centres, so a field prepared at 250 m gives
    smooth values at 25 m, and every point's value depends only on the point.
    """

    values: np.ndarray  # (ny, nx) float32, row 0 = north
    x0: float  # centre of column 0
    y0: float  # centre of row 0
    res: float

    @classmethod
    def over(cls, extent: tuple[float, float, float, float], res: float) -> BaseField:
        """An empty field covering extent (with a margin of one cell) at spacing res."""
        xmin, ymin, xmax, ymax = extent
        nx = int(np.ceil((xmax - xmin) / res)) + 2
        ny = int(np.ceil((ymax - ymin) / res)) + 2
        return cls(np.zeros((ny, nx), np.float32), xmin - 0.5 * res, ymax + 0.5 * res, res)

    @property
    def xs(self) -> np.ndarray:
        return self.x0 + np.arange(self.values.shape[1]) * self.res

    @property
    def ys(self) -> np.ndarray:
        return self.y0 - np.arange(self.values.shape[0]) * self.res

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    @property
    def transform(self) -> Affine:
        return Affine(
            self.res, 0.0, self.x0 - 0.5 * self.res, 0.0, -self.res, self.y0 + 0.5 * self.res
        )

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        (ny, nx), half = self.values.shape, 0.5 * self.res
        return (
            self.x0 - half,
            self.y0 + half - ny * self.res,
            self.x0 - half + nx * self.res,
            self.y0 + half,
        )

    def sample(self, x: np.ndarray, y: np.ndarray, order: int = 1) -> np.ndarray:
        """Values at the grid of points (y[:, None], x[None, :]), float32."""
        cols = (x - self.x0) / self.res
        rows = (self.y0 - y) / self.res
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        out = ndimage.map_coordinates(self.values, [rr, cc], order=order, mode="nearest")
        return out.astype(np.float32)


class Context:
    """What one build shares between tiles: definition, geometry, and things prepared once.

    ``once(key, make)`` computes a shared object the first time any tile asks for it; the
    lock makes that happen once even with tiles on several threads.
    """

    def __init__(self, definition: GridDefinition, geometry: GridGeometry):
        self.definition = definition
        self.geometry = geometry
        self.layer_attrs: dict[str, dict[str, Any]] = {}
        self._memo: dict[Any, Any] = {}
        self._locks: dict[Any, threading.Lock] = {}
        self._guard = threading.Lock()
        self._scratch: Path | None = None

    def scratch(self) -> Path:
        """A private temporary folder for this build (e.g. rasters warped to the grid)."""
        with self._guard:
            if self._scratch is None:
                self._scratch = Path(tempfile.mkdtemp(prefix="ruimtepuzzel-grid-"))
            return self._scratch

    def close(self) -> None:
        """Remove the scratch folder; the context's prepared objects stay usable."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def context_extent(self) -> tuple[float, float, float, float]:
        return self.definition.context_extent or self.definition.extent

    def once(self, key: Any, make: Callable[[], Any]) -> Any:
        with self._guard:
            if key in self._memo:
                return self._memo[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                value = make()
                with self._guard:
                    self._memo[key] = value
        return self._memo[key]


@dataclass
class Tile:
    """One window of the grid during a build, with the layers computed so far."""

    ctx: Context
    window: Window
    layers: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def geometry(self) -> GridGeometry:
        return self.ctx.geometry

    @property
    def shape(self) -> tuple[int, int]:
        return self.window.shape

    @property
    def x(self) -> np.ndarray:
        return self.geometry.x(self.window.col0, self.window.width)

    @property
    def y(self) -> np.ndarray:
        return self.geometry.y(self.window.row0, self.window.height)

    @property
    def transform(self) -> Affine:
        return self.geometry.window_transform(self.window)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        return t.c, t.f - self.window.height * self.geometry.res, t.c + self.window.width * t.a, t.f

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.layers[name]
        except KeyError:
            raise KeyError(
                f"layer {name!r} asked for before it was computed; list it in the layer's inputs"
            ) from None
