"""Maps to talk with (*praatkaarten, niet plankaarten*, L12436), drawn with matplotlib.

Every map has the province outlines and names (CBS 2022, shipped in ``data/admin``), a scale
bar, a north arrow and a legend in the reader's language, and zooms on the cells of the run:
a province's run shows that province and its neighbours' edges, their names lighter. Palettes
are colour-blind safe: the options' colours (``claims.toml``, checked in the tests) follow
Paul Tol's schemes, sequential maps use viridis/cividis, signed maps a purple-orange scheme.

The layout is fixed, worked out from the window's shape (no ``tight_layout``): the map fills
the page's text width, its title above, its legend or colour bar beside or below. Rasters are
sampled to the pixels of their axes before ``imshow`` (a small map per claim takes every
block's "any", so a scattered claim stays visible), so matplotlib only copies them. A map is
a PNG (bytes); :mod:`engine.html` embeds it in the page.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from functools import cache

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "Frame", "frame_of", "categorical_map", "continuous_map", "claim_maps", "value_maps",
    "WIDTH_IN",
]  # fmt: skip

# The text width of an A4 page with 15 mm margins, in inches; maps are drawn at this width so
# that their lettering prints at the size it was drawn.
WIDTH_IN = 7.0
DPI = 130
# The tallest map, in inches, so that a map with its title and legend fits one A4 page.
MAX_MAP_IN = 8.2
TITLE_IN = 0.32  # the band above a map for its title
PANEL_TITLE_IN = 0.26
LEGEND_ROW_IN = 0.2
COLOURBAR_IN = 0.75  # colour bar with its tick labels and label, right of a map
PANEL_BAR_IN = 0.55  # the same beside a small map
PANEL_COLS = 3
PNG_COMPRESSION = 3  # zlib level: 6 is 1.5x and 9 is 7x slower, for no less weight
OUTLINE = "#333333"
NAME_COLOUR = "#111111"
NEIGHBOUR_COLOUR = "#6e6e6e"  # the names of provinces around the one a run is about
LAND_GREY = "#e4e4e4"
PROVINCES_FILE = "admin/cbs_provincies_2022_rd.gpkg"


@dataclass(frozen=True)
class Frame:
    """Where a map looks: the grid's transform and the window (rows, cols) with the run's cells;
    ``focus``: the province a run is about (its neighbours' names are drawn lighter)."""

    x0: float  # west edge of the grid, m (RD New)
    y0: float  # north edge of the grid, m
    cell: float  # cell size, m
    rows: slice
    cols: slice
    focus: str | None = None

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(west, east, south, north) of the window in metres."""
        return (
            self.x0 + self.cols.start * self.cell,
            self.x0 + self.cols.stop * self.cell,
            self.y0 - self.rows.stop * self.cell,
            self.y0 - self.rows.start * self.cell,
        )

    @property
    def aspect(self) -> float:
        """Height over width of the window."""
        return (self.rows.stop - self.rows.start) / max(self.cols.stop - self.cols.start, 1)

    def crop(self, grid: np.ndarray) -> np.ndarray:
        return grid[self.rows, self.cols]


def frame_of(inside: np.ndarray, transform, margin: float = 0.04, focus: str | None = None):
    """The window around the cells where ``inside`` is true, with a small margin: a province
    run zooms on its province (``focus``, its name). ``transform``: the grid's affine
    (a, b, c, d, e, f)."""
    cell, x0, y0 = float(transform[0]), float(transform[2]), float(transform[5])
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    if len(rows) == 0:
        return Frame(x0, y0, cell, slice(0, inside.shape[0]), slice(0, inside.shape[1]), focus)
    pad = int(np.ceil(margin * max(rows[-1] - rows[0], cols[-1] - cols[0], 1)))
    r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + 1 + pad, inside.shape[0])
    c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + 1 + pad, inside.shape[1])
    return Frame(x0, y0, cell, slice(r0, r1), slice(c0, c1), focus)


# -- rasters at the pixels of their axes ----------------------------------------------------------


def _pixels(width_in: float, height_in: float) -> tuple[int, int]:
    return max(int(round(height_in * DPI)), 1), max(int(round(width_in * DPI)), 1)


def _sample(grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The cell under the centre of each pixel (what ``imshow`` draws with nearest sampling),
    or the grid itself where it has fewer cells than pixels."""
    if grid.shape[0] <= shape[0] and grid.shape[1] <= shape[1]:
        return grid
    rows = (
        (np.arange(min(shape[0], grid.shape[0])) + 0.5)
        * grid.shape[0]
        / min(shape[0], grid.shape[0])
    ).astype(int)
    cols = (
        (np.arange(min(shape[1], grid.shape[1])) + 0.5)
        * grid.shape[1]
        / min(shape[1], grid.shape[1])
    ).astype(int)
    return grid[np.ix_(rows, cols)]


def _any_in_blocks(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """True where any cell of the pixel's block is true: a claim of scattered cells stays
    visible on a small map."""
    k = max(-(-mask.shape[0] // shape[0]), -(-mask.shape[1] // shape[1]))
    if k <= 1:
        return mask
    rows, cols = -(-mask.shape[0] // k) * k, -(-mask.shape[1] // k) * k
    padded = np.zeros((rows, cols), dtype=bool)
    padded[: mask.shape[0], : mask.shape[1]] = mask
    return padded.reshape(rows // k, k, cols // k, k).any(axis=(1, 3))


def _rgba(colour: str) -> np.ndarray:
    from matplotlib.colors import to_rgba

    return np.asarray(to_rgba(colour)) * 255


# -- provinces ------------------------------------------------------------------------------------


@cache
def provinces() -> list[tuple[str, object]]:
    """(name, simplified geometry) of the twelve provinces (CBS 2022), in RD New metres."""
    import shapely
    from pyogrio.raw import read

    from engine.resources import shipped_dir

    _, _, wkb, fields = read(shipped_dir("data") / PROVINCES_FILE, columns=["name"])
    # 150 m is below a pixel of a national map and keeps the outlines light to draw.
    geoms = shapely.simplify(shapely.from_wkb(wkb), 150.0)
    return list(zip(fields[0].tolist(), geoms))


@cache
def _outline_path():
    """Every ring of the province outlines as one compound path (drawn as one collection)."""
    from matplotlib.path import Path as MplPath

    rings = []
    for _, geom in provinces():
        for part in getattr(geom, "geoms", [geom]):
            rings.append(np.asarray(part.exterior.coords))
            rings.extend(np.asarray(hole.coords) for hole in part.interiors)
    return MplPath.make_compound_path(*(MplPath(r, closed=False) for r in rings))


@cache
def _labels(extent: tuple[float, float, float, float]) -> list[tuple[str, float, float]]:
    """(name, x, y) of every province with a fair share of the window: placed inside its part
    on the map, so a neighbour at the edge of a province's map is named too."""
    import shapely

    west, east, south, north = extent
    window = shapely.box(west, south, east, north)
    out = []
    for name, geom in provinces():
        part = geom.intersection(window)
        if part.area > 0.015 * window.area:
            p = (
                part.representative_point()
                if part.area < geom.area * 0.999
                else geom.representative_point()
            )
            out.append((name, p.x, p.y))
    return out


def _outlines(ax, frame: Frame, scale: float, names: bool) -> None:
    """Province outlines, and the names of the provinces on the map (a neighbour lighter)."""
    import matplotlib.patheffects as pe
    from matplotlib.collections import PathCollection

    ax.add_collection(
        PathCollection(
            [_outline_path()],
            facecolors="none",
            edgecolors=OUTLINE,
            linewidths=0.6 * scale,
            zorder=3,
        ),
        autolim=False,
    )
    if not names:
        return
    halo = [pe.withStroke(linewidth=2.2, foreground="white")]
    west, east, _, _ = frame.extent
    metres_per_point = (east - west) / (ax.get_position().width * ax.figure.get_figwidth() * 72)
    for name, x, y in _labels(frame.extent):
        neighbour = frame.focus is not None and name != frame.focus
        size = (7.0 if neighbour else 7.5) * scale
        # kept whole on the map: about 0.3 em of width per letter either side of the centre
        half = (0.3 * len(name) + 0.5) * size * metres_per_point
        ax.text(
            min(max(x, west + half), east - half),
            y,
            name,
            fontsize=size,
            fontstyle="italic" if neighbour else "normal",
            ha="center",
            va="center",
            color=NEIGHBOUR_COLOUR if neighbour else NAME_COLOUR,
            zorder=4,
            path_effects=halo,
        )


def _nice_length(width_m: float) -> float:
    """A round length of about a fifth of the map's width: 1, 2 or 5 times a power of ten."""
    target = width_m / 5
    power = 10 ** np.floor(np.log10(target))
    return float(max(m * power for m in (1, 2, 5) if m * power <= target))


def _scale_bar_and_north(ax, frame: Frame, scale: float) -> None:
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    west, east, _, _ = frame.extent
    length = _nice_length(east - west)
    bar = AnchoredSizeBar(
        ax.transData,
        length,
        f"{length / 1000:g} km",
        "lower left",
        pad=0.5,
        borderpad=0.6,
        sep=3,
        frameon=True,
        size_vertical=(east - west) / 250,
        fontproperties=FontProperties(size=7.5 * scale),
    )
    bar.patch.set_alpha(0.8)
    ax.add_artist(bar)
    ax.annotate(
        "N",
        xy=(0.95, 0.97),
        xytext=(0.95, 0.87),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=10 * scale,
        fontweight="bold",
        bbox={
            "boxstyle": "round,pad=0.15",
            "facecolor": "white",
            "edgecolor": "none",
            "alpha": 0.7,
        },
        arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5 * scale},
    )


# -- figures with a fixed layout ------------------------------------------------------------------


def _figure(width_in: float, height_in: float):
    """A figure on the Agg canvas, without pyplot (nothing to close, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _map_axes(fig, left: float, bottom: float, width: float, height: float):
    """Axes at a place given in inches from the figure's lower left corner."""
    fw, fh = fig.get_size_inches()
    ax = fig.add_axes((left / fw, bottom / fh, width / fw, height / fh))
    ax.set_axis_off()
    return ax


def _map_size(frame: Frame, width: float, max_height: float = MAX_MAP_IN) -> tuple[float, float]:
    """(width, height) in inches of a map of the frame at most ``width`` wide."""
    height = width * frame.aspect
    if height > max_height:
        return max_height / frame.aspect, max_height
    return width, height


def _draw_raster(ax, rgba: np.ndarray, frame: Frame, scale: float = 1.0, names: bool = True,
                 furniture: bool = True) -> None:  # fmt: skip
    west, east, south, north = frame.extent
    ax.imshow(rgba, extent=frame.extent, interpolation="nearest", zorder=1, aspect="auto")
    _outlines(ax, frame, scale, names)
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    if furniture:
        _scale_bar_and_north(ax, frame, scale)


def _title(ax, title: str, size: float, x: float = 0.5) -> None:
    """The title above the map, centred at ``x`` (a fraction of the map's width)."""
    if title:
        # y given: matplotlib then skips placing the title clear of the (hidden) tick labels.
        ax.set_title(title, fontsize=size, x=x, y=1.0, pad=4)


def png(fig) -> bytes:
    """The figure as an RGB PNG (no alpha channel: the page is white), without metadata."""
    from PIL import Image

    canvas = fig.canvas
    canvas.draw()
    buf = io.BytesIO()
    Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB").save(
        buf, format="png", compress_level=PNG_COMPRESSION
    )
    return buf.getvalue()


def _colour_image(values: np.ndarray, cmap: str, vmin: float, vmax: float) -> np.ndarray:
    """RGBA bytes of a field of values, transparent where not finite."""
    import matplotlib

    norm = (values - vmin) / (vmax - vmin) if vmax > vmin else np.zeros_like(values)
    rgba = matplotlib.colormaps[cmap](np.clip(norm, 0.0, 1.0), bytes=True)
    rgba[~np.isfinite(values)] = 0
    return rgba


def _colourbar(fig, ax_box: tuple[float, float, float, float], cmap: str, vmin: float,
               vmax: float, label: str, size: float) -> None:  # fmt: skip
    """A colour bar right of a map at ``ax_box`` (left, bottom, width, height in inches)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.ticker import MaxNLocator

    left, bottom, width, height = ax_box
    cax = fig.add_axes(
        _fractions(fig, (left + width + 0.08, bottom + height * 0.1, 0.12, height * 0.8))
    )
    bar = fig.colorbar(ScalarMappable(Normalize(vmin, vmax), cmap), cax=cax)
    bar.locator = MaxNLocator(5)
    bar.update_ticks()
    bar.ax.tick_params(labelsize=size)
    if label:
        bar.set_label(label, fontsize=size + 1)


def _fractions(fig, box):
    fw, fh = fig.get_size_inches()
    left, bottom, width, height = box
    return (left / fw, bottom / fh, width / fw, height / fh)


# -- the maps -------------------------------------------------------------------------------------


def categorical_map(
    codes: np.ndarray, classes: list[tuple[int, str, str]], frame: Frame, title: str
) -> bytes:
    """``classes``: (code, label, '#rrggbb'); cells with other codes are transparent. The
    legend names the classes present in the window, below the map."""
    from matplotlib.patches import Patch

    window = frame.crop(codes)
    present = set(np.unique(window).tolist())
    shown = [(code, label, colour) for code, label, colour in classes if code in present]
    legend_rows = -(-len(shown) // 3)
    width, height = _map_size(frame, WIDTH_IN - 0.2)
    top = TITLE_IN if title else 0.08
    legend = legend_rows * LEGEND_ROW_IN + 0.15 if shown else 0.0
    fig = _figure(WIDTH_IN, top + height + legend)
    ax = _map_axes(fig, (WIDTH_IN - width) / 2, legend, width, height)
    sample = _sample(window, _pixels(width, height))
    lut = np.zeros((256, 4), dtype=np.uint8)
    for code, _, colour in classes:
        lut[code] = _rgba(colour)
    _draw_raster(ax, lut[sample.astype(np.uint8)], frame)
    _title(ax, title, 11)
    if shown:
        fig.legend(
            handles=[Patch(facecolor=c, edgecolor="#555555", label=lab) for _, lab, c in shown],
            loc="upper center",
            bbox_to_anchor=(0.5, legend / fig.get_size_inches()[1]),
            ncol=3,
            fontsize=8,
            frameon=False,
            borderaxespad=0.2,
            handlelength=1.6,
        )
    return png(fig)


def _signed_limits(values: np.ndarray) -> tuple[float, float, str]:
    """(vmin, vmax, cmap): diverging around 0 where values of both signs occur."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0, "cividis"
    lo, hi = float(finite.min()), float(finite.max())
    if lo < 0 < hi or hi <= 0 < -lo:
        lim = max(abs(lo), abs(hi)) or 1.0
        return -lim, lim, "PuOr_r"
    return min(lo, 0.0), hi or 1.0, "viridis"


def continuous_map(
    values: np.ndarray, frame: Frame, title: str, label: str, cmap: str | None = None
) -> bytes:
    top = TITLE_IN if title else 0.08
    width, height = _map_size(frame, WIDTH_IN - COLOURBAR_IN - 0.1)
    fig = _figure(WIDTH_IN, top + height + 0.08)
    left = (WIDTH_IN - COLOURBAR_IN - width) / 2
    ax = _map_axes(fig, left, 0.08, width, height)
    window = _sample(frame.crop(values), _pixels(width, height)).astype(float)
    vmin, vmax, auto = _signed_limits(window)
    _draw_raster(ax, _colour_image(window, cmap or auto, vmin, vmax), frame)
    _title(ax, title, 11)
    _colourbar(fig, (left, 0.08, width, height), cmap or auto, vmin, vmax, label, 7)
    return png(fig)


def _panels(count: int, frame: Frame, side: float, foot: float):
    """A figure of small maps, three a row, each ``side`` inches wider than its map (for a
    colour bar); ``foot`` inches below them for a common label. Yields (figure, [(axes, box)])."""
    cols = min(PANEL_COLS, count)
    rows = -(-count // cols)
    cell_w = WIDTH_IN / cols
    width, height = _map_size(frame, cell_w - side - 0.12, max_height=MAX_MAP_IN / 3)
    row_h = PANEL_TITLE_IN + height + 0.06
    fig = _figure(WIDTH_IN, rows * row_h + foot)
    boxes = []
    for i in range(count):
        r, c = divmod(i, cols)
        box = (c * cell_w + (cell_w - side - width) / 2, foot + (rows - 1 - r) * row_h + 0.06,
               width, height)  # fmt: skip
        boxes.append((_map_axes(fig, *box), box))
    return fig, boxes, _pixels(width, height)


def claim_maps(
    grids: dict[str, np.ndarray], frame: Frame, colours: dict[str, str], land: np.ndarray
) -> bytes:
    """One small map per claim: its cells in the claim's colour on grey land; one scale bar
    and north arrow for all (they share the window)."""
    fig, boxes, pixels = _panels(len(grids), frame, side=0.0, foot=0.0)
    land_shown = _any_in_blocks(frame.crop(land), pixels)
    base = np.zeros(land_shown.shape + (4,), dtype=np.uint8)
    base[land_shown] = _rgba(LAND_GREY)
    for i, ((ax, _), (name, grid)) in enumerate(zip(boxes, grids.items())):
        rgba = base.copy()
        rgba[_any_in_blocks(frame.crop(grid), pixels)] = _rgba(colours[name])
        _draw_raster(ax, rgba, frame, scale=0.6, names=False, furniture=i == 0)
        _title(ax, name, 9)
    return png(fig)


def value_maps(grids: dict[str, np.ndarray], frame: Frame, label: str) -> bytes:
    """One small map per layer of values (a price per claim), each with its colour bar; one
    scale bar and north arrow for all."""
    fig, boxes, pixels = _panels(len(grids), frame, side=PANEL_BAR_IN, foot=0.3 if label else 0.0)
    for i, ((ax, box), (name, values)) in enumerate(zip(boxes, grids.items())):
        window = _sample(frame.crop(values), pixels).astype(float)
        vmin, vmax, cmap = _signed_limits(window)
        _draw_raster(ax, _colour_image(window, cmap, vmin, vmax), frame, 0.6, False, i == 0)
        # centred over the panel, map and colour bar together
        _title(ax, name, 9, x=(box[2] + PANEL_BAR_IN) / 2 / box[2])
        _colourbar(fig, box, cmap, vmin, vmax, "", 6)
    if label:
        fig.text(0.5, 0.1 / fig.get_size_inches()[1], label, ha="center", fontsize=8)
    return png(fig)
