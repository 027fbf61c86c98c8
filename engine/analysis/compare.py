"""Compare two runs on the same grid: ``ruimtepuzzel compare RUN_A RUN_B --out DIR``.

Writes to DIR:

- ``change.tif``: uint16 COG, per cell ``256 * from_code + to_code`` where the option changed
  (the high byte is the old option, the low byte the new: option codes go up to 254, as in
  ``allocation.tif``), 0 where it did not, 65535 outside the land; the tags name every
  transition present;
- ``compare.json``: the transitions (from -> to, hectares), and per (zoning, zone, claim) the
  allocated hectares, shortfall and shadow price of both runs and their change;
- ``compare.html``: the change map and the tables, self-contained like ``report.html``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.errors import RuimtepuzzelError
from engine.outputs import dumps_json, write_cog, write_file

__all__ = ["compare_runs", "run_changes"]

NODATA = 65535
# In the change map: unchanged land, and land that goes back to its current use (the option
# 'keep', whose own legend colour is a light grey like unchanged land's: a claim withdrawn
# from 8,000 ha did not show).
UNCHANGED_COLOUR = "#e5e5e5"
BACK_TO_KEEP_COLOUR = "#8c8c8c"


def _read_run(folder: Path):
    import rasterio

    folder = Path(folder)
    for name in ("report.json", "allocation.tif"):
        if not (folder / name).is_file():
            raise RuimtepuzzelError(
                f"{folder / name}: not a run folder (run 'ruimtepuzzel run' "
                f"first, it writes report.json and allocation.tif)"
            )
    report = json.loads((folder / "report.json").read_text())
    with rasterio.open(folder / "allocation.tif") as src:
        alloc = src.read(1)
        profile = src.profile
    return report, alloc, profile


def _settings(folder: Path) -> str:
    """The config keys a run set (``--set``, a variant's overrides) as its manifest has them."""
    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text())
    except (OSError, ValueError):
        return ""
    overrides = (manifest.get("config") or {}).get("overrides") or {}
    return "; ".join(f"{key} = {json.dumps(value)}" for key, value in sorted(overrides.items()))


def _labels(run_a, run_b, rep_a: dict, rep_b: dict) -> tuple[str, str]:
    """What the page calls the two runs: their names, or where both have one name (two
    variants of one config) their folders' names."""
    a, b = rep_a.get("name"), rep_b.get("name")
    if a != b:
        return a, b
    a, b = Path(run_a).resolve().name, Path(run_b).resolve().name
    return (a, b) if a != b else (str(run_a), str(run_b))


def _target_key(r):
    return (r["zoning"], r["zone"], r["claim"])


def _diff(a, b):
    return None if a is None or b is None else b - a


def _moved(row) -> bool:
    """A target row worth a line: half a hectare of claim or land, or half a cent of price.
    Below that the change is the solvers' rounding (1e-13 ha), not the variant."""
    ha = max(abs(row[k] or 0) for k in ("allocated_ha_change", "land_ha_change"))
    return ha >= 0.5 or abs(row["shadow_price_change"] or 0) >= 0.005


def run_changes(rep_a: dict, rep_b: dict, alloc_a, alloc_b) -> tuple[dict, np.ndarray]:
    """What changes from run A to run B on the same grid, from their report.json and
    allocation grids: (result, code). ``result`` holds the objective change, the cells and
    hectares that change, the transitions (from -> to, hectares) and per (zoning, zone,
    claim) both runs' allocation (in claim hectares and in the claim's unit), the land that
    delivers it (``land_ha``), shortfall and shadow price with their change, and whether
    that change is more than the solvers' rounding (``moved``); ``code`` is
    the change grid of ``change.tif`` (``256 * from + to``, 0 unchanged, NODATA off the land).
    The praatkaart asks this of a variant against its base."""
    nd = 255
    land = (alloc_a != nd) & (alloc_b != nd)
    changed = land & (alloc_a != alloc_b)
    # One byte per code (0..254): at most 254 * 256 + 254 = 65278, below NODATA, and never 0
    # for a change (from != to).
    code = np.where(changed, (alloc_a.astype(np.uint16) << 8) | alloc_b, 0).astype(np.uint16)
    code[~land] = NODATA
    ha = float(rep_a.get("cell_area_ha") or 1.0)
    names = {o["code"]: o["name"] for o in rep_a.get("options", [])}
    names.update({o["code"]: o["name"] for o in rep_b.get("options", []) if o["code"] not in names})
    pairs, counts = np.unique(code[changed], return_counts=True)
    transitions = sorted(
        [
            {
                "from": names.get(int(p) >> 8, str(int(p) >> 8)),
                "to": names.get(int(p) & 255, str(int(p) & 255)),
                "code": int(p),
                "hectares": float(n * ha),
            }
            for p, n in zip(pairs, counts)
        ],
        key=lambda t: -t["hectares"],
    )

    rows_a = {_target_key(r): r for r in rep_a.get("targets", [])}
    rows_b = {_target_key(r): r for r in rep_b.get("targets", [])}
    targets = []
    for key in list(rows_a) + [k for k in rows_b if k not in rows_a]:
        a, b = rows_a.get(key, {}), rows_b.get(key, {})
        row = {
            "zoning": key[0], "zone": key[1], "claim": key[2],
            "unit": b.get("unit", a.get("unit")),
            "allocated_ha_a": a.get("allocated_ha"), "allocated_ha_b": b.get("allocated_ha"),
            "allocated_ha_change": _diff(a.get("allocated_ha"), b.get("allocated_ha")),
            "allocated_a": a.get("allocated"), "allocated_b": b.get("allocated"),
            "allocated_change": _diff(a.get("allocated"), b.get("allocated")),
            "land_ha_a": a.get("land_ha"), "land_ha_b": b.get("land_ha"),
            "land_ha_change": _diff(a.get("land_ha"), b.get("land_ha")),
            "shortfall_b": b.get("shortfall"),
            "shortfall_ha_a": a.get("shortfall_ha"), "shortfall_ha_b": b.get("shortfall_ha"),
            "shadow_price_a": a.get("shadow_price"), "shadow_price_b": b.get("shadow_price"),
            "shadow_price_change": _diff(a.get("shadow_price"), b.get("shadow_price")),
        }  # fmt: skip
        # One rule for which rows show a change, here and in the praatkaart.
        targets.append({**row, "moved": _moved(row)})
    result = {
        "name_a": rep_a.get("name"), "name_b": rep_b.get("name"),
        "objective_a": rep_a.get("objective"), "objective_b": rep_b.get("objective"),
        "objective_change": _diff(rep_a.get("objective"), rep_b.get("objective")),
        "cells_changed": int(changed.sum()), "hectares_changed": float(changed.sum() * ha),
        "transitions": transitions, "targets": targets,
    }  # fmt: skip
    return result, code


def compare_runs(run_a, run_b, out_dir, lang: str | None = None) -> dict:
    """Compare two run folders; returns the compare.json content. ``lang``: of compare.html."""

    rep_a, alloc_a, prof_a = _read_run(run_a)
    rep_b, alloc_b, prof_b = _read_run(run_b)
    if alloc_a.shape != alloc_b.shape or prof_a["transform"] != prof_b["transform"]:
        raise RuimtepuzzelError(
            f"{run_a} and {run_b} are on different grids ({alloc_a.shape} vs "
            f"{alloc_b.shape}); compare runs at the same grid and resolution"
        )
    changes, code = run_changes(rep_a, rep_b, alloc_a, alloc_b)
    result = {"run_a": str(run_a), "run_b": str(run_b), **changes}
    changed = (code != 0) & (code != NODATA)
    land = code != NODATA

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_cog(
        out / "change.tif",
        [code],
        transform=prof_a["transform"],
        crs=prof_a["crs"],
        dtype="uint16",
        nodata=NODATA,
        categorical=True,
        descriptions=["option change: 256 * from code + to code (0 unchanged)"],
        band_tags={
            f"change_{t['code']}": f"{t['from']} -> {t['to']}" for t in result["transitions"]
        },
        tags={"run_a": str(run_a), "run_b": str(run_b)},
    )
    write_file(out / "compare.json", dumps_json(result))

    runs = {
        "names": _labels(run_a, run_b, rep_a, rep_b),
        "settings": (_settings(run_a), _settings(run_b)),
    }
    page = _page(
        result, rep_a, rep_b, runs, code, alloc_b, changed, land, prof_a["transform"], lang
    )
    write_file(out / "compare.html", page)
    return result


def _page(result, rep_a, rep_b, runs, code, alloc_b, changed, land, transform, lang) -> str:
    """compare.html: the change map (unchanged land light grey, changed cells in the colour
    of their new option, land back to its current use dark grey) and the tables, in
    ``lang``; ``runs``: the two runs' names and settings as the page shows them."""
    from engine import i18n, maps
    from engine.html import SECTIONS_COMPARE, data_uri, render

    t = i18n.get(lang)
    shown = np.where(changed, alloc_b.astype(np.int16), np.where(land, -2, -1))
    classes = [(-2, t.text("unchanged"), UNCHANGED_COLOUR)] + [
        (
            o["code"],
            f"→ {t.option(o['name'])}",
            BACK_TO_KEEP_COLOUR if o["name"] == "keep" else o["colour"],
        )
        for o in rep_b.get("options", [])
    ]
    frame = maps.frame_of(land, tuple(transform)[:6])
    name_a, name_b = runs["names"]
    title = t.text("map_change", a=name_a, b=name_b)
    uri = data_uri(maps.categorical_map(shown, classes, frame, title))
    labels = {o["name"]: t.option(o["name"]) for o in rep_a.get("options", []) + rep_b["options"]}
    transitions = [
        (labels.get(r["from"], r["from"]), labels.get(r["to"], r["to"]), t.number(r["hectares"]))
        for r in result["transitions"][:30]
    ]
    # The allocation in the claim's own unit and the land it takes apart: a density variant
    # delivers the same homes (no change in claim hectares) on other land.
    changes = [
        (r["zone"], t.claim(r["claim"]), t.quantity(r["allocated_a"], r["unit"]),
         t.quantity(r["allocated_b"], r["unit"]), t.quantity(r["allocated_change"], r["unit"]),
         t.number(r["land_ha_a"]), t.number(r["land_ha_b"]), t.number(r["land_ha_change"]),
         t.number(r["shadow_price_a"]), t.number(r["shadow_price_b"]),
         t.number(r["shadow_price_change"]))
        for r in result["targets"]
        if r["zoning"] in ("province", "national") and r["moved"]
    ]  # fmt: skip
    summary = [
        (t.text("run"), name_a, name_b, ""),
        (t.text("settings_changed"), *(value or "–" for value in runs["settings"]), ""),
        (t.text("cert_objective"), t.number(result["objective_a"]),
         t.number(result["objective_b"]), t.number(result["objective_change"])),
        (t.text("cert_status"), t.group("status", str(rep_a.get("status"))),
         t.group("status", str(rep_b.get("status"))), ""),
        (t.text("hectares_changed"), "", "", t.number(result["hectares_changed"])),
    ]  # fmt: skip
    return render(
        "compare.html",
        t=t,
        lang=t.lang,
        title=t.text("compare_title", a=name_a, b=name_b),
        subtitle=t.text("compare_runs", a=result["run_a"], b=result["run_b"]),
        sections={s: t.group("sections", s) for s in SECTIONS_COMPARE},
        summary=summary,
        map=uri,
        name_a=name_a,
        name_b=name_b,
        transitions=transitions,
        changes=changes,
    )
