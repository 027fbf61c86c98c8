"""The map layers of a run as transparent PNGs, one pixel per grid cell, with their legends.

The page lays each PNG over the map at the grid's extent in RD New metres; the browser
scales it without smoothing, so a cell stays a sharp square at every zoom. Colours are those
of the report (:mod:`engine.maps`): the options' own colours, the conflict classes' colour
table, viridis for prices, cividis for value given up, and for the rule masks one colour each.
A layer is drawn once per run and kept.

Layer ids: ``allocation``, ``claim:<claim>``, ``conflict``, ``scarcity:<claim>``, ``regret``,
``margin``, ``mask:<grid layer>``; anything else is refused (:class:`UnknownLayer`).
"""

from __future__ import annotations

import io

import numpy as np

from engine.analysis.conflict import CLASSES
from engine.errors import RuimtepuzzelError

__all__ = ["catalogue", "render", "categorical_png", "continuous_png", "gradient", "UnknownLayer"]

# The rule masks a planner talks over (issue: floodplains, dike zones, Natura 2000, deep
# polders, peat), with a colour each.
MASKS = {
    "floodplain": "#1f78b4",
    "dike_zone": "#e31a1c",
    "natura2000": "#33a02c",
    "deep_polder": "#6a3d9a",
    "peat": "#b15928",
}
SCALES = {"scarcity": "viridis", "regret": "cividis", "margin": "cividis"}


class UnknownLayer(RuimtepuzzelError):
    """A layer id the run does not have."""


def _rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return tuple(int(colour[j : j + 2], 16) for j in (0, 2, 4))  # type: ignore[return-value]


def _png(index: np.ndarray, palette: np.ndarray) -> bytes:
    """A palette PNG: one byte per cell into ``palette`` (256, 4) RGBA. Four times fewer
    bytes to compress than RGBA, which a variant's maps are drawn on every click."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(index, dtype=np.uint8), mode="P")
    image.putpalette(palette[:, :3].ravel().tolist())
    image.info["transparency"] = palette[:, 3].tobytes()
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)  # a local page: time counts, not bytes
    return buf.getvalue()


def categorical_png(grid: np.ndarray, colours: dict[int, str]) -> bytes:
    """Each code in ``colours`` in its colour; every other cell transparent."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    for code, colour in colours.items():
        lut[int(code)] = (*_rgb(colour), 255)
    return _png(grid.astype(np.uint8), lut)


def continuous_png(grid: np.ndarray, cmap: str, lo: float, hi: float) -> bytes:
    """``grid`` from ``lo`` to ``hi`` in 255 steps of ``cmap``; NaN transparent."""
    import matplotlib

    finite = np.isfinite(grid)
    scaled = np.clip((np.where(finite, grid, lo) - lo) / ((hi - lo) or 1.0), 0.0, 1.0)
    index = np.where(finite, 1 + np.rint(scaled * 254), 0).astype(np.uint8)
    palette = np.zeros((256, 4), dtype=np.uint8)  # 0: transparent
    palette[1:] = np.rint(matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 255)) * 255)
    return _png(index, palette)


def gradient(cmap: str) -> list[str]:
    import matplotlib
    from matplotlib.colors import to_hex

    return [to_hex(matplotlib.colormaps[cmap](s)) for s in np.linspace(0, 1, 6)]


def _limits(grid: np.ndarray) -> tuple[float, float]:
    values = grid[np.isfinite(grid)]
    if values.size == 0:
        return 0.0, 1.0
    return float(np.percentile(values, 2)), float(np.percentile(values, 98))


def _claim_codes(run) -> dict[str, dict[int, str]]:
    """Per claim: the codes of the options that deliver to it, with their colours."""
    out: dict[str, dict[int, str]] = {}
    for o in run.report.get("options", []):
        for claim in o.get("contributes", {}):
            out.setdefault(claim, {})[o["code"]] = o["colour"]
    return out


def _scarce_claims(run) -> list[str]:
    """Claims with a price somewhere (the others' scarcity maps are blank)."""
    if not run.has("scarcity.tif"):
        return []
    rows = run.report.get("targets", [])
    return [
        c
        for c in run.band_names("scarcity.tif")
        if any(r["claim"] == c and (r.get("shadow_price") or 0) != 0 for r in rows)
    ]


def catalogue(run, t) -> list[dict]:
    """The layers of ``run`` with their group, label and legend, in the words of ``t``."""
    app = t.table["app"]
    options = run.report.get("options", [])
    layers = [
        {
            "id": "allocation",
            "group": app["group_allocation"],
            "label": app["layer_allocation"],
            "legend": [
                {"colour": o["colour"], "label": t.option(o["name"])}
                for o in options
                if o.get("area_ha", 1) > 0
            ],
        }
    ]
    by_name = {o["code"]: o["name"] for o in options}
    for claim, codes in _claim_codes(run).items():
        layers.append({
            "id": f"claim:{claim}", "group": app["group_claims"],
            "label": app["layer_claim"].format(claim=t.claim(claim)),
            "legend": [{"colour": c, "label": t.option(by_name[k])} for k, c in codes.items()],
        })  # fmt: skip
    if run.has("conflict.tif"):
        layers.append({
            "id": "conflict", "group": app["group_analysis"], "label": app["layer_conflict"],
            "legend": [
                {"colour": colour, "label": t.group("conflict_classes", name)}
                for name, _, colour in CLASSES.values()
            ],
        })  # fmt: skip
    scale = {"low": app["low"], "high": app["high"]}
    for claim in _scarce_claims(run):
        layers.append({
            "id": f"scarcity:{claim}", "group": app["group_analysis"],
            "label": app["layer_scarcity"].format(claim=t.claim(claim)),
            "gradient": gradient(SCALES["scarcity"]), **scale,
        })  # fmt: skip
    for name in ("regret", "margin"):
        if run.has(f"{name}.tif"):
            layers.append({
                "id": name, "group": app["group_analysis"], "label": app[f"layer_{name}"],
                "gradient": gradient(SCALES[name]), **scale,
            })  # fmt: skip
    for name, colour in MASKS.items():
        layers.append({
            "id": f"mask:{name}", "group": app["group_rules"],
            "label": t.group("layers", name),
            "legend": [{"colour": colour, "label": t.group("layers", name)}],
        })  # fmt: skip
    return layers


def render(run, layer: str) -> bytes:
    """The PNG of one layer of ``run`` (drawn once, then kept on the run)."""
    if layer not in run.png:
        run.png[layer] = _draw(run, layer)
    return run.png[layer]


def _draw(run, layer: str) -> bytes:
    kind, _, name = layer.partition(":")
    if layer == "allocation":
        return categorical_png(
            run.allocation, {o["code"]: o["colour"] for o in run.report["options"]}
        )
    if kind == "claim" and name in _claim_codes(run):
        return categorical_png(run.allocation, _claim_codes(run)[name])
    if layer == "conflict" and run.has("conflict.tif"):
        colours = {k: colour for k, (_, _, colour) in CLASSES.items()}
        return categorical_png(run.raster("conflict.tif"), colours)
    if kind == "scarcity" and name in _scarce_claims(run):
        band = run.band_names("scarcity.tif").index(name) + 1
        grid = run.raster("scarcity.tif", band).astype(np.float64)
        return continuous_png(grid, SCALES["scarcity"], *_limits(grid))
    if layer in ("regret", "margin") and run.has(f"{layer}.tif"):
        grid = run.raster(f"{layer}.tif").astype(np.float64)
        return continuous_png(grid, SCALES[layer], *_limits(grid))
    if kind == "mask" and name in MASKS:
        ds = run.grid()
        on = (np.asarray(ds[name].values) > 0) & (run.allocation != 255)
        return categorical_png(on.astype(np.uint8), {1: MASKS[name]})
    raise UnknownLayer(f"run {run.id} has no layer {layer!r}; GET /api/runs/{run.id} lists them")
