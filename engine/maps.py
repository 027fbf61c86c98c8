"""Maps to talk with (*praatkaarten, niet plankaarten*, L12436), drawn with matplotlib.

Every map has the province outlines and names (CBS 2022, shipped in ``data/admin``), a scale
bar, a north arrow and a legend in the reader's language, and zooms on the cells of the run:
a province's run shows that province and its neighbours' edges. Palettes are colour-blind
safe: the options' colours (``claims.toml``) follow Paul Tol's muted and light schemes,
sequential maps use viridis/cividis, signed maps a blue-orange diverging scheme.

A map is a PNG (bytes); :mod:`engine.html` embeds it in the page.
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
# matplotlib resamples a finer grid anyway: take every k-th cell beyond this many.
DISPLAY_CELLS = 900
OUTLINE = "#333333"
PROVINCES_FILE = "admin/cbs_provincies_2022_rd.gpkg"


@dataclass(frozen=True)
class Frame:
    """Where a map looks: the grid's transform and the window (rows, cols) with the run's cells."""

    x0: float  # west edge of the grid, m (RD New)
    y0: float  # north edge of the grid, m
    cell: float  # cell size, m
    rows: slice
    cols: slice

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(west, east, south, north) of the window in metres."""
        return (
            self.x0 + self.cols.start * self.cell,
            self.x0 + self.cols.stop * self.cell,
            self.y0 - self.rows.stop * self.cell,
            self.y0 - self.rows.start * self.cell,
        )

    def crop(self, grid: np.ndarray) -> np.ndarray:
        return grid[self.rows, self.cols]


def frame_of(inside: np.ndarray, transform, margin: float = 0.04) -> Frame:
    """The window around the cells where ``inside`` is true, with a small margin: a province
    run zooms on its province. ``transform``: the grid's affine (a, b, c, d, e, f)."""
    cell, x0, y0 = float(transform[0]), float(transform[2]), float(transform[5])
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    if len(rows) == 0:
        return Frame(x0, y0, cell, slice(0, inside.shape[0]), slice(0, inside.shape[1]))
    pad = int(np.ceil(margin * max(rows[-1] - rows[0], cols[-1] - cols[0], 1)))
    r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + 1 + pad, inside.shape[0])
    c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + 1 + pad, inside.shape[1])
    return Frame(x0, y0, cell, slice(r0, r1), slice(c0, c1))


def _for_display(grid: np.ndarray) -> np.ndarray:
    """Every k-th row and column so that the longer side has at most DISPLAY_CELLS cells (the
    nearest-neighbour sampling ``imshow`` would do when drawing)."""
    step = -(-max(grid.shape[:2]) // DISPLAY_CELLS)
    return grid[::step, ::step] if step > 1 else grid


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
def _outline_segments() -> list[np.ndarray]:
    """Every ring of the province outlines, for one LineCollection per map."""
    rings = []
    for _, geom in provinces():
        for part in getattr(geom, "geoms", [geom]):
            rings.append(np.asarray(part.exterior.coords))
            rings.extend(np.asarray(hole.coords) for hole in part.interiors)
    return rings


def _outlines(ax, frame: Frame, scale: float, names: bool) -> None:
    """Province outlines, and the names of the provinces whose centre is on the map."""
    import matplotlib.patheffects as pe
    from matplotlib.collections import LineCollection

    ax.add_collection(
        LineCollection(_outline_segments(), colors=OUTLINE, linewidths=0.6 * scale, zorder=3)
    )
    if not names:
        return
    west, east, south, north = frame.extent
    for name, geom in provinces():
        p = geom.representative_point()
        if west < p.x < east and south < p.y < north:
            ax.text(
                p.x,
                p.y,
                name,
                fontsize=7.5 * scale,
                ha="center",
                va="center",
                color="#111111",
                zorder=4,
                path_effects=[pe.withStroke(linewidth=2.2, foreground="white")],
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
    label = f"{length / 1000:g} km"
    bar = AnchoredSizeBar(
        ax.transData,
        length,
        label,
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
        arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5 * scale},
    )


def _axes(frame: Frame, width: float = WIDTH_IN, legend_below: bool = False):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    west, east, south, north = frame.extent
    aspect = (north - south) / max(east - west, 1.0)
    height = min(9.5, max(3.0, width * aspect)) + (1.2 if legend_below else 0.0)
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_axis_off()
    return fig, ax


def _draw_frame(ax, frame: Frame, scale: float = 1.0, names: bool = True) -> None:
    west, east, south, north = frame.extent
    _outlines(ax, frame, scale, names)
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect("equal")
    _scale_bar_and_north(ax, frame, scale)


def png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    # Laid out once (tight_layout), drawn once: bbox_inches="tight" would draw twice.
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def categorical_map(
    codes: np.ndarray, classes: list[tuple[int, str, str]], frame: Frame, title: str
) -> bytes:
    """``classes``: (code, label, '#rrggbb'); cells with other codes are transparent. The
    legend names the classes present in the window, below the map."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    window = frame.crop(codes)
    present = set(np.unique(window).tolist())
    shown = _for_display(window)
    rgba = np.zeros(shown.shape + (4,), dtype=np.float32)
    for code, _, colour in classes:
        rgba[shown == code] = to_rgba(colour)
    fig, ax = _axes(frame, legend_below=True)
    ax.imshow(rgba, extent=frame.extent, interpolation="nearest", zorder=1)
    _draw_frame(ax, frame)
    ax.set_title(title, fontsize=11)
    handles = [
        Patch(facecolor=colour, edgecolor="#555555", label=label)
        for code, label, colour in classes
        if code in present
    ]
    if handles:
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.01),
            ncol=3,
            fontsize=8,
            frameon=False,
        )
    fig.tight_layout()
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
    window = _for_display(frame.crop(values)).astype(float)
    vmin, vmax, auto = _signed_limits(window)
    fig, ax = _axes(frame)
    im = ax.imshow(
        np.ma.masked_invalid(window),
        extent=frame.extent,
        cmap=cmap or auto,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
        zorder=1,
    )
    _draw_frame(ax, frame)
    ax.set_title(title, fontsize=11)
    bar = fig.colorbar(im, ax=ax, fraction=0.035, pad=0.02)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.tight_layout()
    return png(fig)


def _panels(count: int, frame: Frame):
    """A figure of small maps, three a row, sized to the frame."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cols = min(3, count)
    rows = -(-count // cols)
    west, east, south, north = frame.extent
    panel_h = WIDTH_IN / cols * (north - south) / max(east - west, 1.0)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH_IN, rows * (panel_h + 0.35)), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    return fig, axes.ravel()[:count]


def claim_maps(
    grids: dict[str, np.ndarray], frame: Frame, colours: dict[str, str], land: np.ndarray
) -> bytes:
    """One small map per claim: its cells in the claim's colour on grey land."""
    from matplotlib.colors import to_rgba

    land_shown = _for_display(frame.crop(land))
    fig, axes = _panels(len(grids), frame)
    for ax, (name, grid) in zip(axes, grids.items()):
        shown = _for_display(frame.crop(grid))
        rgba = np.zeros(shown.shape + (4,), dtype=np.float32)
        rgba[land_shown] = to_rgba("#e4e4e4")
        rgba[shown] = to_rgba(colours[name])
        ax.imshow(rgba, extent=frame.extent, interpolation="nearest", zorder=1)
        _draw_frame(ax, frame, scale=0.6, names=False)
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return png(fig)


def value_maps(grids: dict[str, np.ndarray], frame: Frame, label: str) -> bytes:
    """One small map per layer of values (a price per claim), each with its colour bar."""
    fig, axes = _panels(len(grids), frame)
    for ax, (name, values) in zip(axes, grids.items()):
        window = _for_display(frame.crop(values)).astype(float)
        vmin, vmax, cmap = _signed_limits(window)
        im = ax.imshow(
            np.ma.masked_invalid(window),
            extent=frame.extent,
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
            zorder=1,
        )
        _draw_frame(ax, frame, scale=0.6, names=False)
        ax.set_title(name, fontsize=9)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        bar.ax.tick_params(labelsize=6)
    fig.text(0.5, 0.0, label, ha="center", fontsize=8)
    fig.tight_layout()
    return png(fig)
