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

__all__ = ["compare_runs"]

NODATA = 65535


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


def _target_key(r):
    return (r["zoning"], r["zone"], r["claim"])


def _diff(a, b):
    return None if a is None or b is None else b - a


def compare_runs(run_a, run_b, out_dir) -> dict:
    """Compare two run folders; returns the compare.json content."""
    from engine.html import categorical_map, img, page, table

    rep_a, alloc_a, prof_a = _read_run(run_a)
    rep_b, alloc_b, prof_b = _read_run(run_b)
    if alloc_a.shape != alloc_b.shape or prof_a["transform"] != prof_b["transform"]:
        raise RuimtepuzzelError(
            f"{run_a} and {run_b} are on different grids ({alloc_a.shape} vs "
            f"{alloc_b.shape}); compare runs at the same grid and resolution"
        )
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
    colours = {o["code"]: o["colour"] for o in rep_b.get("options", [])}
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
        targets.append({
            "zoning": key[0], "zone": key[1], "claim": key[2],
            "allocated_ha_a": a.get("allocated_ha"), "allocated_ha_b": b.get("allocated_ha"),
            "allocated_ha_change": _diff(a.get("allocated_ha"), b.get("allocated_ha")),
            "shortfall_ha_a": a.get("shortfall_ha"), "shortfall_ha_b": b.get("shortfall_ha"),
            "shadow_price_a": a.get("shadow_price"), "shadow_price_b": b.get("shadow_price"),
            "shadow_price_change": _diff(a.get("shadow_price"), b.get("shadow_price")),
        })  # fmt: skip
    result = {
        "run_a": str(run_a), "run_b": str(run_b),
        "name_a": rep_a.get("name"), "name_b": rep_b.get("name"),
        "objective_a": rep_a.get("objective"), "objective_b": rep_b.get("objective"),
        "objective_change": _diff(rep_a.get("objective"), rep_b.get("objective")),
        "cells_changed": int(changed.sum()), "hectares_changed": float(changed.sum() * ha),
        "transitions": transitions, "targets": targets,
    }  # fmt: skip

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
        band_tags={f"change_{t['code']}": f"{t['from']} -> {t['to']}" for t in transitions},
        tags={"run_a": str(run_a), "run_b": str(run_b)},
    )
    write_file(out / "compare.json", dumps_json(result))

    # The map: unchanged land grey, changed cells in the colour of their new option.
    shown = np.where(changed, alloc_b.astype(np.int16), np.where(land, -2, -1))
    classes = [(-2, "unchanged", "#e5e5e5")] + [
        (c, f"-> {names.get(c, c)}", colours.get(c, "#000000")) for c in sorted(colours)
    ]
    uri = categorical_map(
        shown, classes, f"What changes from {rep_a.get('name')} to {rep_b.get('name')} (new option)"
    )
    trows = [[t["from"], t["to"], t["hectares"]] for t in transitions[:30]]
    main = [
        r
        for r in targets
        if r["zoning"] in ("province", "national")
        and ((r["allocated_ha_change"] or 0) != 0 or (r["shadow_price_change"] or 0) != 0)
    ]
    crow = [
        [
            r["zoning"],
            r["zone"],
            r["claim"],
            r["allocated_ha_a"],
            r["allocated_ha_b"],
            r["allocated_ha_change"],
            r["shadow_price_a"],
            r["shadow_price_b"],
            r["shadow_price_change"],
        ]
        for r in main
    ]
    summary = table(
        ["", "A", "B", "change"],
        [
            ["run", rep_a.get("name"), rep_b.get("name"), None],
            [
                "objective",
                rep_a.get("objective"),
                rep_b.get("objective"),
                result["objective_change"],
            ],
            ["status", rep_a.get("status"), rep_b.get("status"), None],
            ["hectares that change option", None, None, result["hectares_changed"]],
        ],
    )
    sections = [
        ("summary", "Summary", summary),
        (
            "change-map",
            "Change map",
            img(uri, "change map") + table(["from", "to", "hectares"], trows, left=2),
        ),
        (
            "changes",
            "Allocation and price changes per province and claim",
            table(
                [
                    "zoning",
                    "zone",
                    "claim",
                    "allocated A (ha)",
                    "allocated B (ha)",
                    "change (ha)",
                    "price A",
                    "price B",
                    "price change",
                ],
                crow,
                left=3,
            )
            if crow
            else "<p>No allocation or price changes.</p>",
        ),
    ]
    write_file(
        out / "compare.html",
        page(
            f"ruimtepuzzel compare: {rep_a.get('name')} -> {rep_b.get('name')}",
            sections,
            f"A = {run_a}, B = {run_b}",
        ),
    )
    return result
