"""The outputs of a run: ``report.json``, ``allocation.tif``, ``manifest.json``, ``summary.md``.

- ``report.json``: the contract of DESIGN.md (``objective``, ``gap``, ``status`` and one
  ``targets`` row per (zoning, zone, claim) with ``lower_ha``, ``upper_ha``, ``allocated_ha``,
  ``shortfall_ha``, ``shadow_price``), each row also in the claim's own unit (homes, TWh) and
  with the file, key and source line its target came from.
- ``allocation.tif``: a Cloud-Optimised GeoTIFF in EPSG:28992, the option code per cell, 255
  outside the land, with a colour table; category names go in the GDAL sidecar
  ``allocation.tif.aux.xml`` and a QGIS style ``allocation.qml``, so QGIS shows a legend.
- ``manifest.json``: what produced the result (Spelregel 3, L11385): the resolved config,
  every input with its sha256, the grid, the assumptions, deviations from the base data with
  their reason (*pas toe of leg uit*, L11371), versions, solver status, gap and timings.
- ``summary.md``: what fits, what does not, where it is scarce.

With the analysis outputs (:mod:`engine.analysis.outputs`) they make one run folder, written
whole or not at all: every file is staged beside the folder and swapped in at once, and
``manifest.json`` lists every other file with its sha256 (:class:`engine.outputs.RunFolder`).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from engine.analysis.plausibility import plausibility
from engine.compactness import compactness_section
from engine.config import Config, from_ha
from engine.outputs import (
    RunFolder,
    colormap,
    dumps_json,
    grid_transform,
    json_float,
    npz_bytes,
    pam_categories,
    sha256_file,
    write_cog,
    write_file,
)
from engine.source import cite, source_document

__all__ = [
    "build_report",
    "write_outputs",
    "stage_outputs",
    "sha256_file",
    "NODATA",
    "PRICES_FILE",
    "read_prices",
]

NODATA = 255
_num = json_float


def sum_by_zone(problem, per_cell: np.ndarray) -> list[np.ndarray]:
    """Per zoning (Z_l, ...) sums of a per-cell array (N,) or (N, K).

    Summed once per group of cells that share all their zones (a few dozen groups), then
    per zone: one pass over the cells whatever the number of zonings.
    """
    groups = problem.groups
    per_cell = np.asarray(per_cell, dtype=np.float64)
    cols = per_cell.reshape(len(per_cell), -1)
    by_group = np.stack(
        [
            np.bincount(
                groups.group, weights=np.ascontiguousarray(cols[:, k]), minlength=groups.count
            )
            for k in range(cols.shape[1])
        ],
        axis=1,
    )
    out = []
    for l in range(problem.n_zonings):
        zone_sum = np.zeros((problem.n_zones[l], cols.shape[1]))
        np.add.at(zone_sum, groups.zones[:, l], by_group)
        out.append(zone_sum if per_cell.ndim == 2 else zone_sum[:, 0])
    return out


def delivered_by_zone(problem, x) -> list[np.ndarray]:
    """Per zoning (Z_l, K): claim hectares the allocation delivers."""
    area = problem.area if np.ndim(problem.area) == 0 else problem.area[:, None]
    delivered = np.asarray(x @ problem.contribution)
    delivered *= area
    return sum_by_zone(problem, delivered)


def build_report(compiled, sol, *, timings: dict | None = None) -> dict:
    """The report.json content (a plain dict)."""
    p, config = compiled.problem, compiled.config
    allocated = delivered_by_zone(p, sol.x)
    rows = []
    for l, zoning in enumerate(p.zoning_names):
        for z, zone in enumerate(p.zone_names[l]):
            if zoning.startswith("novex:") and z > 0:
                continue  # the rest of the country is no zone of a NOVEX area
            for k, claim_name in enumerate(p.claim_names):
                claim = config.claims[claim_name]
                lo, hi = p.lower[l][z, k], p.upper[l][z, k]
                alloc = allocated[l][z, k]
                short = sol.shortfall[l][z, k] if not np.isnan(lo) else 0.0
                implied = (l, z, k) in compiled.implied
                if implied:  # stated, but left to the province rows (drop_implied_rows)
                    lo = compiled.stated_lower[l][z, k]
                    short = max(0.0, lo - alloc)
                meta = compiled.row_meta.get((l, z, k), {})
                rows.append({
                    "zoning": zoning, "zone": zone, "claim": claim_name,
                    "lower_ha": _num(lo), "upper_ha": _num(hi),
                    "allocated_ha": _num(alloc), "shortfall_ha": _num(short),
                    "shadow_price": _num(sol.prices[l][z, k]),
                    "unit": claim.unit,
                    "lower": _num(from_ha(lo, claim)), "upper": _num(from_ha(hi, claim)),
                    "allocated": _num(from_ha(alloc, claim)),
                    "shortfall": _num(from_ha(short, claim)),
                    "source": meta.get("source"), "file": meta.get("file"),
                    "key": meta.get("key"), "implied_by_provinces": implied,
                })  # fmt: skip
    # The value (suitability) each zone's allocation realises: sum_i a_i sum_o v[i,o] x[i,o].
    x = sol.x
    if hasattr(x, "multiply"):
        cell_value = np.asarray(x.multiply(p.value).sum(axis=1)).ravel()
    else:
        cell_value = np.einsum("io,io->i", x, p.value)
    cell_value = cell_value * p.area
    zones = []
    value_by_zone = sum_by_zone(p, cell_value)
    cells_by_zone = sum_by_zone(p, np.ones(p.n_cells))
    for l, zoning in enumerate(p.zoning_names):
        by_zone = value_by_zone[l]
        cells = cells_by_zone[l].round().astype(np.int64)
        for z, zone in enumerate(p.zone_names[l]):
            if zoning.startswith("novex:") and z > 0:
                continue
            zones.append(
                {
                    "zoning": zoning,
                    "zone": zone,
                    "cells": int(cells[z]),
                    "area_ha": float(cells[z] * compiled.area_ha),
                    "value": float(by_zone[z]),
                }
            )
    counts = np.bincount(np.asarray(sol.choice), minlength=p.n_options) * compiled.area_ha
    options = [
        {"code": o.code, "name": o.name, "colour": o.colour, "description": o.description,
         "tags": list(o.tags), "area_ha": float(counts[j]),
         "contributes": {k: float(v) for k, v in o.contributes.items()}}
        for j, o in enumerate(config.options.values())
    ]  # fmt: skip
    claims = {
        name: {"unit": c.unit, "per_claim_ha": c.per_ha, "reference": c.reference,
               "shortfall_penalty": c.shortfall_penalty, "description": c.description}
        for name, c in config.claims.items()
    }  # fmt: skip
    return {
        "name": config.name,
        "scope": config.scope,
        "objective": float(sol.objective),
        "gap": float(sol.gap),
        "status": sol.status,
        "method": sol.method,
        "targets_mode": "hard" if config.hard_targets else "elastic",
        "cells": int(p.n_cells),
        "cell_area_ha": compiled.area_ha,
        "claims": claims,
        "options": options,
        "targets": rows,
        "zones": zones,
        "notes": list(compiled.notes),
        "timings": dict(timings or {}),
        "plausibility": plausibility(compiled, sol),
        "compactness": compactness_section(compiled, sol),
    }


# -- the map --------------------------------------------------------------------------------------


def write_allocation_tif(path: Path, compiled, choice, ds) -> None:
    config = compiled.config
    codes = np.array([o.code for o in config.options.values()], dtype=np.uint8)
    grid = np.full(compiled.cells.shape, NODATA, dtype=np.uint8)
    grid.ravel()[compiled.cells.flat] = codes[np.asarray(choice)]
    write_cog(
        path,
        [grid],
        transform=grid_transform(ds),
        dtype="uint8",
        nodata=NODATA,
        categorical=True,
        descriptions=["allocated option (see allocation.tif.aux.xml / .qml)"],
        colormap=colormap({o.code: o.colour for o in config.options.values()}),
        band_tags={f"option_{o.code}": o.name for o in config.options.values()},
        tags={"run": config.name, "scope": config.scope},
    )


def allocation_aux_xml(config: Config) -> str:
    """GDAL PAM sidecar with the category names (index = option code)."""
    names = [""] * (max(o.code for o in config.options.values()) + 1)
    for o in config.options.values():
        names[o.code] = o.name
    return pam_categories(names)


def allocation_qml(config: Config) -> str:
    """A QGIS style: paletted renderer with one labelled class per option."""
    entries = "\n".join(
        f'        <paletteEntry value="{o.code}" color="{o.colour}" alpha="255" '
        f'label="{escape(o.name)}"/>'
        for o in config.options.values()
    )
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.28" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" nodataColor="">
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>
  </pipe>
</qgis>
"""


# -- manifest -------------------------------------------------------------------------------------


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in (
        "ruimtepuzzel",
        "numpy",
        "scipy",
        "numba",
        "xarray",
        "dask",
        "rasterio",
        "rioxarray",
        "highspy",
        "pulp",
        "pandas",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def grid_inputs(ds) -> list[dict]:
    """The files a grid was read from, with their hashes."""
    out = []
    folder = ds.encoding.get("source_folder")
    if folder and Path(folder).is_dir():
        for f in sorted(Path(folder).iterdir()):
            if f.is_file() and not f.name.startswith("."):
                out.append({"role": "grid", "path": str(f), "sha256": sha256_file(f)})
    return out


def build_manifest(compiled, sol, ds, *, timings: dict, deviations: list, inputs: list) -> dict:
    config = compiled.config
    p = compiled.problem
    transform = grid_transform(ds)
    return {
        "run": config.name,
        "scope": config.scope,
        "config": {
            "path": str(config.path),
            "overrides": {k: v for k, v in config.overrides.items()},
            "resolved": config.resolved,
        },
        "inputs": [{"role": "config", "path": str(f), "sha256": sha256_file(f)}
                   for f in config.files] + inputs,
        "grid": {
            "name": ds.attrs.get("grid_name"),
            "resolution_m": float(compiled.area_ha ** 0.5 * 100),
            "shape": list(compiled.cells.shape),
            "transform": list(transform)[:6],
            "crs": "EPSG:28992",
            "cells_in_problem": int(p.n_cells),
            "cell_area_ha": compiled.area_ha,
            "attrs": {k: (v if isinstance(v, (str, int, float)) else str(v))
                      for k, v in ds.attrs.items()},
            "source_folder": ds.encoding.get("source_folder"),
            "layers": {name: {k: str(v) for k, v in ds[name].attrs.items()
                              if k in ("long_name", "units", "provenance")}
                       for name in ds.data_vars},
            "credits": ds.attrs.get("credits", "").splitlines(),
        },
        "source_document": source_document().describe(),
        "assumptions": [
            {"name": a.name, "value": a.value, "unit": a.unit, "note": a.note,
             "source": a.source, "overridden": f"assumptions.{a.name}" in config.overrides
             or f"assumptions.{a.name}.value" in config.overrides}
            for a in config.assumptions.values()
        ],
        "rules": [
            {"kind": r.kind, "id": r.id, "source": r.source,
             "source_text": cite(r.source).text, "note": r.note,
             "province": r.province, "options": list(r.options),
             "cells": compiled.effects.counts.get(r.id, 0)}
            for r in config.rules
        ],
        "deviations": deviations,
        "notes": list(compiled.notes),
        "versions": _versions(),
        "solver": {
            "method": sol.method, "status": sol.status, "gap": float(sol.gap),
            "objective": float(sol.objective), "bound": _num(getattr(sol, "bound", None)),
            "timings": {k: v for k, v in (sol.timings or {}).items()},
        },
        "timings": timings,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip


# -- summary --------------------------------------------------------------------------------------


def layers_by_provenance(manifest: dict) -> dict[str, list[str]]:
    """The grid's layers grouped as real, derived (from real data) and generated stand-ins."""
    groups: dict[str, list[str]] = {"real": [], "derived": [], "generated": []}
    for name, attrs in manifest["grid"]["layers"].items():
        groups.setdefault(attrs.get("provenance", "unknown"), []).append(name)
    return {k: v for k, v in groups.items() if v}


def _data_section(manifest: dict) -> list[str]:
    doc = manifest["source_document"]
    lines = [
        "",
        "## Data and sources",
        "",
        f"Targets and rules cite lines (L...) of *{doc['title']}* ({doc['year']}, "
        f"{doc['publisher']}), shipped as `{doc['file']}`.",
        "",
    ]
    for provenance, names in layers_by_provenance(manifest).items():
        lines.append(f"- {provenance}: " + ", ".join(f"`{n}`" for n in names))
    generated = layers_by_provenance(manifest).get("generated")
    if generated:
        lines += [
            "",
            "**Generated stand-ins shaped this result** ("
            + ", ".join(generated)
            + "): they behave like, but are not, the official "
            "maps; replace them with a province's own data through a grid definition.",
        ]
    lines += ["", "Credits:", ""] + [f"- {c}" for c in manifest["grid"]["credits"]]
    return lines


def _fmt(x, unit):
    if x is None:
        return "-"
    if unit == "TWh":
        return f"{x:,.2f} {unit}"
    return f"{x:,.0f} {unit}"


def build_summary(report: dict, manifest: dict) -> str:
    lines = [f"# ruimtepuzzel: {report['name']}", ""]
    g = manifest["grid"]
    lines.append(
        f"Grid {g['name']} at {g['resolution_m']:.0f} m, {report['cells']:,} cells of land in "
        f"scope. Solver: {report['method']}, status **{report['status']}**, certified gap "
        f"{report['gap']:.1e}. Targets are {report['targets_mode']}."
    )
    lines += [
        "",
        "## What fits",
        "",
        "| claim | target | allocated | shortfall |",
        "|---|---|---|---|",
    ]
    top = "national" if report["scope"] == "national" else "province"
    for r in report["targets"]:
        if r["zoning"] == top and (r["lower"] is not None or r["allocated"]):
            lines.append(
                f"| {r['claim']} | {_fmt(r['lower'], r['unit'])} | "
                f"{_fmt(r['allocated'], r['unit'])} | {_fmt(r['shortfall'], r['unit'])} |"
            )
    lines += _province_table(report)
    short = [r for r in report["targets"] if (r["shortfall_ha"] or 0) > 0.5]
    lines += ["", "## What does not fit", ""]
    if not short:
        lines.append("Every target is met in every zone.")
    else:
        lines += ["| zoning | zone | claim | missing |", "|---|---|---|---|"]
        for r in sorted(short, key=lambda r: -r["shortfall_ha"]):
            ha = "" if r["unit"] == "ha" else f" ({r['shortfall_ha']:,.0f} ha)"
            lines.append(
                f"| {r['zoning']} | {r['zone']} | {r['claim']} | "
                f"{_fmt(r['shortfall'], r['unit'])}{ha} |"
            )
        lines.append("")
        lines.append(
            "A shortfall in one province is a candidate for an exchange between "
            "provinces (*uitruil*, L11699) or is not realistic within the province "
            "(L11761)."
        )
    scarce = sorted(
        [r for r in report["targets"] if (r["shadow_price"] or 0) > 1e-9],
        key=lambda r: -r["shadow_price"],
    )[:12]
    lines += [
        "",
        "## Where it is scarce",
        "",
        "The shadow price is the value (suitability) one more hectare of the claim would "
        "cost in that zone: the higher, the scarcer the land for it.",
        "",
    ]
    if scarce:
        lines += ["| zoning | zone | claim | shadow price per ha |", "|---|---|---|---|"]
        for r in scarce:
            lines.append(
                f"| {r['zoning']} | {r['zone']} | {r['claim']} | {r['shadow_price']:.3f} |"
            )
    else:
        lines.append("No target binds.")
    lines += _plausibility_section(report)
    lines += ["", "## Land use", "", "| option | hectares |", "|---|---|"]
    for o in report["options"]:
        if o["area_ha"]:
            lines.append(f"| {o['name']} | {o['area_ha']:,.0f} |")
    if report["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    assumed = [a for a in manifest["assumptions"]]
    lines += ["", "## Assumptions", ""]
    for a in assumed:
        lines.append(
            f"- `{a['name']}` = {a['value']:g} {a['unit']}"
            + (" (overridden)" if a["overridden"] else "")
        )
    t = report["timings"]
    if t:
        lines += [
            "",
            "Timings: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in t.items() if isinstance(v, (int, float))),
        ]
    lines += _data_section(manifest)
    lines += [
        "",
        "Maps are *praatkaarten, niet plankaarten* (L12436): a basis for the "
        "conversation, not a plan.",
        "",
    ]
    return "\n".join(lines)


def _province_table(report: dict) -> list[str]:
    """Per province and claim: allocated / target in the claim's unit (addable, L11254)."""
    rows = [r for r in report["targets"] if r["zoning"] == "province"]
    claims = [
        c
        for c in report["claims"]
        if any(r["claim"] == c and (r["lower"] is not None or r["allocated"]) for r in rows)
    ]
    if not rows or not claims:
        return []
    units = {c: report["claims"][c]["unit"] for c in claims}
    out = [
        "",
        "Per province, allocated / target (the provinces add up to the national row):",
        "",
        "| province | " + " | ".join(f"{c} ({units[c]})" for c in claims) + " |",
        "|---|" + "---|" * len(claims),
    ]
    digits = {c: 2 if units[c] == "TWh" else 0 for c in claims}
    for zone in dict.fromkeys(r["zone"] for r in rows):
        cells = []
        for c in claims:
            r = next(r for r in rows if r["zone"] == zone and r["claim"] == c)
            a = f"{r['allocated']:,.{digits[c]}f}"
            t = "-" if r["lower"] is None else f"{r['lower']:,.{digits[c]}f}"
            cells.append(f"{a} / {t}")
        out.append(f"| {zone} | " + " | ".join(cells) + " |")
    return out


def _plausibility_section(report: dict) -> list[str]:
    """The figures that make an implausible plan show at once (``report["plausibility"]``)."""
    pl = report.get("plausibility")
    if not pl:
        return []

    def share(x):
        return "-" if x is None else f"{x:.0%}"

    def metres(x):
        return "-" if x is None else f"{x:,.0f} m"

    out = [
        "",
        "## Is it plausible?",
        "",
        "Where the new homes go, what the energy mix is, how close wind comes to homes, and "
        "how much built-up land is transformed.",
        "",
        "| province | homes inside towns | homes at town edges | share inside towns | "
        "share of new homes within 1.2 km of a station | within 3 km | "
        "extensions: mean distance to town | wind TWh | solar TWh | "
        "wind: nearest built-up land | wind: 5th percentile | land taken (ha) | "
        "built-up land transformed |",
        "|---|" + "---|" * 12,
    ]
    for row in [*pl["provinces"], {"zone": "**national**", **pl["national"]}]:
        h, e, w, land = row["housing"], row["energy"], row["wind_distance_to_built_up"], row["land"]
        out.append(
            f"| {row['zone']} | {h['infill_homes']:,.0f} | {h['extension_homes']:,.0f} | "
            f"{share(h['infill_share_of_homes'])} | "
            f"{share(h['share_homes_within_1200m_of_station'])} | "
            f"{share(h['share_homes_within_3000m_of_station'])} | "
            f"{metres(h['extension_mean_distance_to_town_m'])} | {e['wind_twh']:,.2f} | "
            f"{e['solar_twh']:,.2f} | {metres(w['min_m'])} | {metres(w['p5_m'])} | "
            f"{land['taken_ha']:,.0f} | {share(land['built_up_transformed_share'])} |"
        )
    return out


# -- atomic writing -------------------------------------------------------------------------------


# The prices of every target row, per zoning (arrays p0, p1, ... shaped like the targets):
# what a later run of a similar config starts from (``run(..., prices=read_prices(dir))``).
PRICES_FILE = "prices.npz"


def read_prices(folder) -> list[np.ndarray] | None:
    """The row prices a run wrote to ``folder``, or None if it has none."""
    path = Path(folder) / PRICES_FILE
    if not path.is_file():
        return None
    with np.load(path) as saved:
        return [saved[f"p{l}"] for l in range(len(saved.files))]


def stage_outputs(
    stage,
    compiled,
    sol,
    ds,
    *,
    timings: dict,
    deviations=(),
    extra_inputs=(),
    analysis: str = "off",
    analysis_options=None,
    on_stage=None,
) -> tuple[dict, dict]:
    """Write every output of a run but the manifest into the folder ``stage``; returns
    (report, manifest) for :meth:`engine.outputs.RunFolder.commit` to finish.

    ``analysis``: full, quick or off (:mod:`engine.analysis.outputs`); ``on_stage(name)`` is
    told when the analysis starts.
    """
    stage = Path(stage)
    t = time.perf_counter()
    report = build_report(compiled, sol, timings=timings)
    manifest = build_manifest(
        compiled,
        sol,
        ds,
        timings=timings,
        deviations=list(deviations),
        inputs=grid_inputs(ds) + list(extra_inputs),
    )
    write_allocation_tif(stage / "allocation.tif", compiled, sol.choice, ds)
    write_file(stage / "allocation.tif.aux.xml", allocation_aux_xml(compiled.config))
    write_file(stage / "allocation.qml", allocation_qml(compiled.config))
    write_file(stage / "summary.md", build_summary(report, manifest))
    write_file(
        stage / PRICES_FILE,
        npz_bytes(**{f"p{l}": np.asarray(a, dtype=np.float64) for l, a in enumerate(sol.prices)}),
    )
    timings["write"] = time.perf_counter() - t
    if analysis != "off":
        from engine.analysis.outputs import analysis_outputs

        if on_stage is not None:
            on_stage("analysis")
        # Adds the analysis sections and timings["analysis"] to report.
        analysis_outputs(
            stage,
            compiled,
            sol,
            ds,
            report,
            options=analysis_options,
            level=analysis,
            manifest=manifest,
        )
        timings["analysis"] = report["timings"]["analysis"]
    report["timings"] = dict(timings)
    manifest["timings"] = dict(timings)
    write_file(stage / "report.json", dumps_json(report))
    return report, manifest


def write_outputs(
    out_dir,
    compiled,
    sol,
    ds,
    *,
    timings: dict,
    deviations=(),
    extra_inputs=(),
    analysis: str = "off",
    analysis_options=None,
) -> dict:
    """Write a run folder whole (core outputs, and the analysis unless ``analysis`` is
    off), replacing what ``out_dir`` held only once every file is complete; returns the
    report dict. A run from a config is :func:`engine.run.run`."""
    with RunFolder(out_dir) as folder:
        report, manifest = stage_outputs(
            folder.stage,
            compiled,
            sol,
            ds,
            timings=timings,
            deviations=deviations,
            extra_inputs=extra_inputs,
            analysis=analysis,
            analysis_options=analysis_options,
            on_stage=folder.note,
        )
        folder.commit(manifest)
    return report
