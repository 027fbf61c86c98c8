"""What a person does with a built grid: read its summary, look at it, hand it to a GIS.

- ``grid_info``   layers with units, provenance and value ranges, and the credits, as text;
- ``plot_sheet``  every layer on one sheet, each with its legend and the province outlines;
- ``export_cogs`` one Cloud Optimized GeoTIFF per layer plus ``grid.json``, for QGIS/ArcGIS.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import xarray as xr

from engine.errors import RuimtepuzzelError
from engine.outputs import copy_as_cog

__all__ = ["grid_info", "plot_sheet", "export_cogs", "select", "CATEGORICAL_COLOURS"]

#: Colours of the land-cover classes, index = code (none, built_up, agriculture, greenhouse,
#: forest, open_nature, water).
CATEGORICAL_COLOURS = ["#ffffff", "#d7301f", "#f3e6a2", "#b15be0", "#1b7837", "#a6d96a", "#4393c3"]


def select(
    ds: xr.Dataset, layers: list[str] | None = None, bbox: list[float] | None = None
) -> xr.Dataset:
    """Some layers (``land`` and ``province`` kept for the outlines) and/or an area
    (xmin, ymin, xmax, ymax in grid metres) of a grid."""
    if layers:
        unknown = sorted(set(layers) - set(ds.data_vars))
        if unknown:
            raise RuimtepuzzelError(f"grid has no layer(s) {unknown}; it has {list(ds.data_vars)}")
        keep = [n for n in ("land", "province") if n in ds and n not in layers]
        ds = ds[keep + list(layers)]
    if bbox:
        if len(bbox) != 4 or bbox[2] <= bbox[0] or bbox[3] <= bbox[1]:
            raise RuimtepuzzelError(
                f"bbox {bbox} must be xmin,ymin,xmax,ymax with xmax > xmin and ymax > ymin"
            )
        ds = ds.sel(x=slice(bbox[0], bbox[2]), y=slice(bbox[3], bbox[1]))
        if not ds.sizes["x"] or not ds.sizes["y"]:
            raise RuimtepuzzelError(f"bbox {bbox} holds no cells of the grid")
    return ds


def _is_mask(da: xr.DataArray) -> bool:
    return da.dtype == np.uint8 and not da.attrs.get("classes")


def _is_index(da: xr.DataArray) -> bool:
    return da.attrs.get("units") == "index"


def grid_info(ds: xr.Dataset) -> str:
    """A plain-text summary: shape, CRS, each layer's unit, provenance and range, credits."""
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    land = ds["land"].values == 1 if "land" in ds else np.ones((ny, nx), bool)
    lines = [
        f"grid {ds.attrs.get('grid_name')} at {ds.attrs.get('resolution'):g} m: "
        f"{ny} x {nx} cells, {ds.rio.crs}, origin {ds.rio.transform().c:g}, "
        f"{ds.rio.transform().f:g}",
        f"  {ds.attrs.get('title', '')}",
        "",
        f"  {'layer':<20} {'dtype':<8} {'units':<16} {'provenance':<10} summary (on land)",
    ]
    for name, da in ds.data_vars.items():
        values = da.values
        if _is_mask(da):
            cells = int((values[land] == 1).sum())
            summary = f"{cells / max(land.sum(), 1) * 100:5.1f}% of land ({cells:,} cells)"
        elif da.attrs.get("classes"):
            counts = np.bincount(values[land].ravel(), minlength=len(da.attrs["classes"]))
            shares = counts / max(land.sum(), 1) * 100
            summary = ", ".join(
                f"{c} {s:.1f}%" for c, s in zip(da.attrs["classes"], shares) if c != "none"
            )
        elif _is_index(da):
            summary = f"{len(da.attrs.get('codes', []))} zones"
        else:
            v = values[land & np.isfinite(values)] if values.dtype.kind == "f" else values[land]
            summary = (
                f"min {v.min():.4g}  mean {v.mean():.4g}  max {v.max():.4g}"
                if v.size
                else "no values on land"
            )
        lines.append(
            f"  {name:<20} {str(da.dtype):<8} {da.attrs.get('units', ''):<16} "
            f"{da.attrs.get('provenance', ''):<10} {summary}"
        )
    lines += ["", "credits:"] + [f"  - {c}" for c in ds.attrs.get("credits", "").splitlines()]
    return "\n".join(lines)


def _display(da: xr.DataArray, max_cells: int, *, keep_presence: bool = False) -> np.ndarray:
    """The layer brought down to at most max_cells per side for a sheet: every k-th cell
    (categories must not be averaged), or, for 1/0 masks, the maximum of each k x k block, so
    that thin lines (dikes, rivers) and single cells (stations) stay visible."""
    step = max(1, int(np.ceil(max(da.shape) / max_cells)))
    if keep_presence and step > 1:
        return da.coarsen(y=step, x=step, boundary="pad").max().values
    return da[::step, ::step].values  # sliced lazily: a 25 m layer is never whole in memory


def plot_sheet(ds: xr.Dataset, out: str | Path, *, max_cells: int = 700, columns: int = 5) -> Path:
    """All layers of the grid on one PNG: a panel per layer with colour bar or legend, units
    and provenance, province outlines on every panel, the credits at the foot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    names = list(ds.data_vars)
    rows = int(np.ceil(len(names) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.6 * rows + 1.2))
    axes = np.atleast_1d(axes).ravel()
    t = ds.rio.transform()
    extent = (t.c, t.c + t.a * ds.sizes["x"], t.f + t.e * ds.sizes["y"], t.f)
    land = _display(ds["land"], max_cells) == 1 if "land" in ds else None
    land_full = ds["land"].values == 1 if "land" in ds else None
    outlines = _display(ds["province"], max_cells) if "province" in ds else None

    for ax, name in zip(axes, names):
        da = ds[name]
        data = _display(da, max_cells)
        title = f"{name}\n{da.attrs.get('units', '')} - {da.attrs.get('provenance', '')}"
        if da.attrs.get("classes"):
            classes = da.attrs["classes"]
            colours = (
                CATEGORICAL_COLOURS
                if len(classes) <= len(CATEGORICAL_COLOURS)
                else plt.cm.tab20(np.linspace(0, 1, len(classes)))
            )
            ax.imshow(
                data,
                extent=extent,
                cmap=ListedColormap(colours[: len(classes)]),
                vmin=-0.5,
                vmax=len(classes) - 0.5,
                interpolation="nearest",
            )
            handles = [Patch(color=colours[i], label=c) for i, c in enumerate(classes) if i]
            ax.legend(handles=handles, loc="lower right", fontsize=6, framealpha=0.8)
        elif _is_mask(da):
            share = (da.values[land_full] == 1).mean() * 100 if land_full is not None else 0
            data = _display(da, max_cells, keep_presence=True)
            data = data[: land.shape[0], : land.shape[1]] if land is not None else data
            shown = np.where(data == 1, 1.0, np.nan)
            if land is not None:
                ax.imshow(
                    np.where(land, 0.0, np.nan),
                    extent=extent,
                    cmap="Greys",
                    vmin=0,
                    vmax=4,
                    interpolation="nearest",
                )
            ax.imshow(
                shown,
                extent=extent,
                cmap=ListedColormap(["#c0392b"]),
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
            if da.attrs.get("points_x"):  # single cells (stations) would vanish on a sheet
                ax.scatter(da.attrs["points_x"], da.attrs["points_y"], s=5, c="#c0392b", zorder=3)
            ax.legend(
                handles=[Patch(color="#c0392b", label=f"1 ({share:.1f}% of land)")],
                loc="lower right",
                fontsize=6,
            )
        else:
            values = data.astype(np.float64)
            if _is_index(da):
                values = np.where(values >= 0, values, np.nan)
                cmap = "tab20"
            else:
                cmap = "terrain" if name == "elevation" else "viridis"
                if land is not None:
                    values = np.where(land, values, np.nan)
            finite = values[np.isfinite(values)]
            lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0, 1)
            if da.attrs.get("units") == "m NAP":  # the lowlands are what matters: -7..50 m
                lo, hi = -7.0, 50.0
            im = ax.imshow(
                values, extent=extent, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest"
            )
            bar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
            bar.ax.tick_params(labelsize=6)
            bar.set_label(da.attrs.get("units", ""), fontsize=7)
        if outlines is not None:
            ax.contour(
                outlines,
                levels=np.arange(-0.5, outlines.max() + 1),
                colors="k",
                linewidths=0.3,
                extent=extent,
                origin="upper",
            )
        ax.set_xlim(extent[0], extent[1])  # points (stations) beyond a window stay out
        ax.set_ylim(extent[2], extent[3])
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
    for ax in axes[len(names) :]:
        ax.axis("off")
    fig.suptitle(
        f"grid {ds.attrs.get('grid_name')} at {ds.attrs.get('resolution'):g} m "
        f"({ds.sizes['y']} x {ds.sizes['x']} cells, {ds.rio.crs})",
        fontsize=12,
    )
    fig.text(
        0.01,
        0.005,
        "\n".join(ds.attrs.get("credits", "").splitlines()),
        fontsize=5,
        va="bottom",
        wrap=True,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def export_cogs(folder: str | Path, out_dir: str | Path) -> list[Path]:
    """Copy a built grid folder to ``out_dir`` as Cloud Optimized GeoTIFFs (one per layer,
    with overviews, metadata tags and band description) plus ``grid.json``."""
    folder, out_dir = Path(folder), Path(out_dir)
    meta = json.loads((folder / "grid.json").read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, layer in meta["layers"].items():
        # Categories and masks must not be averaged into values they never take.
        continuous = layer["dtype"].startswith("float")
        written.append(
            copy_as_cog(folder / layer["file"], out_dir / f"{name}.tif", categorical=not continuous)
        )
    shutil.copyfile(folder / "grid.json", out_dir / "grid.json")
    (out_dir / "CREDITS.txt").write_text("\n".join(meta["credits"]) + "\n")
    return written
