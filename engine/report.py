"""The outputs of a run: ``report.json``, ``allocation.tif``, ``manifest.json``, ``summary.md``.

- ``report.json``: the contract of DESIGN.md (``objective``, ``gap``, ``status`` and one
  ``targets`` row per (zoning, zone, claim) with ``lower_ha``, ``upper_ha``, ``allocated_ha``,
  ``shortfall_ha``, ``shadow_price``), each row also in the claim's own unit (homes, TWh), with
  ``land_ha``, the land that delivers the claim (*ruimtebeslag*), and with the file, key and
  source line its target came from.
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

import logging
import platform
import time
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from engine import i18n, progress
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
from engine.solve.solution import totals_by_group
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
logger = logging.getLogger(__name__)


class _Released:
    """Stands in for an array of the problem that the write stage let go: its shape stays
    (the problem's sizes are read from it), any use of its values fails."""

    def __init__(self, name: str, array):
        self.name, self.shape = name, array.shape

    def _gone(self, *_, **__):
        raise RuntimeError(f"problem.{self.name} was let go by the write stage (keep_problem)")

    # numpy would otherwise make an object array of it without a word.
    __array__ = __getitem__ = __len__ = __iter__ = _gone


def _let_go(problem, name: str) -> None:
    array = getattr(problem, name)
    if array is not None:
        setattr(problem, name, _Released(name, array))
        logger.debug("problem.%s let go (%.0f MB)", name, array.nbytes / 1e6)


def _groups_to_zones(problem, by_group: np.ndarray) -> list[np.ndarray]:
    """Per zoning (Z_l, K): the sums of the groups (G, K) that lie in each zone."""
    out = []
    for l in range(problem.n_zonings):
        zone_sum = np.zeros((problem.n_zones[l], by_group.shape[1]))
        np.add.at(zone_sum, problem.groups.zones[:, l], by_group)
        out.append(zone_sum)
    return out


def zone_totals(problem, x) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per zoning: the claim hectares the allocation delivers (Z_l, K), the land that delivers
    them (Z_l, K; *ruimtebeslag*: the hectares whose option contributes to the claim), and
    the value the allocation realises (Z_l,), ``sum_i a_i sum_o v[i,o] x[i,o]``.

    Delivery and land differ where an option delivers more or less than a hectare of claim
    per hectare of land: homes at another density than the claim's reference, a combination
    of functions. A density variant delivers the same homes on other land; only the land
    says so. All from the allocation totals' one pass per group of cells: no per-cell array
    of deliveries or values is built (a sparse product took 28 bytes a cell, 1.6 GB and the
    write stage's peak at 25 m).
    """
    hectares, value = totals_by_group(problem, x)
    serves = (problem.contribution > 0).astype(np.float64)
    return (
        _groups_to_zones(problem, hectares @ problem.contribution),
        _groups_to_zones(problem, hectares @ serves),
        [v[:, 0] for v in _groups_to_zones(problem, value[:, None])],
    )


def build_report(compiled, sol, *, timings: dict | None = None, keep_problem: bool = True) -> dict:
    """The report.json content (a plain dict).

    ``keep_problem`` False: the problem's ``value`` and ``allowed`` go as soon as the
    sections that read them are made, before the others' per-cell work and the map (75
    bytes a cell, 4.2 GB at 25 m; for a run that reads them no more: no analysis)."""
    p, config = compiled.problem, compiled.config
    allocated, land, value_by_zone = zone_totals(p, sol.x)
    compactness = compactness_section(
        compiled, sol, after_values=None if keep_problem else lambda: _let_go(p, "value")
    )
    if not keep_problem:
        _let_go(p, "allowed")
        _let_go(compiled.effects, "allowed")  # the same array, as the rules left it
    plausible = plausibility(compiled, sol)
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
                    "land_ha": _num(land[l][z, k]),
                    "shadow_price": _num(sol.prices[l][z, k]),
                    "unit": claim.unit,
                    "lower": _num(from_ha(lo, claim)), "upper": _num(from_ha(hi, claim)),
                    "allocated": _num(from_ha(alloc, claim)),
                    "shortfall": _num(from_ha(short, claim)),
                    "source": meta.get("source"), "file": meta.get("file"),
                    "key": meta.get("key"), "implied_by_provinces": implied,
                })  # fmt: skip
    zones = []
    cells_per_group = np.bincount(p.groups.group, minlength=p.groups.count)
    cells_by_zone = [c[:, 0] for c in _groups_to_zones(p, cells_per_group[:, None])]
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
        "method_choice": getattr(sol, "auto", None),
        "targets_mode": "hard" if config.hard_targets else "elastic",
        "cells": int(p.n_cells),
        "cell_area_ha": compiled.area_ha,
        "claims": claims,
        "options": options,
        "targets": rows,
        "zones": zones,
        "notes": list(compiled.notes),
        "timings": dict(timings or {}),
        "plausibility": plausible,
        "compactness": compactness,
    }


# -- the map --------------------------------------------------------------------------------------


def allocation_grid(compiled, choice) -> np.ndarray:
    """The allocated option's code per grid cell (NODATA outside the cells)."""
    codes = np.array([o.code for o in compiled.config.options.values()], dtype=np.uint8)
    grid = np.full(compiled.cells.shape, NODATA, dtype=np.uint8)
    grid.ravel()[compiled.cells.flat] = codes[np.asarray(choice)]
    return grid


def write_allocation_tif(path: Path, compiled, choice, ds) -> None:
    config = compiled.config
    write_cog(
        path,
        [allocation_grid(compiled, choice)],
        transform=grid_transform(ds),
        dtype="uint8",
        nodata=NODATA,
        categorical=True,
        descriptions=["allocated option (see allocation.tif.aux.xml / .qml)"],
        colormap=colormap({o.code: o.colour for o in config.options.values()}),
        band_tags={f"option_{o.code}": o.name for o in config.options.values()},
        tags={"run": config.name, "scope": config.scope},
    )


def allocation_aux_xml(config: Config, lang: str | None = None) -> str:
    """GDAL PAM sidecar with the category names (index = option code) in ``lang``."""
    t = i18n.get(lang)
    names = [""] * (max(o.code for o in config.options.values()) + 1)
    for o in config.options.values():
        names[o.code] = t.option(o.name)
    return pam_categories(names)


def allocation_qml(config: Config, lang: str | None = None) -> str:
    """A QGIS style: paletted renderer with one class per option, labelled in ``lang``."""
    t = i18n.get(lang)
    entries = "\n".join(
        f'        <paletteEntry value="{o.code}" color="{o.colour}" alpha="255" '
        f'label="{escape(t.option(o.name), {chr(34): "&quot;"})}"/>'
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
            "extends": [str(f) for f in config.extends],
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
            "method_choice": getattr(sol, "auto", None),
        },
        "timings": timings,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip


# -- summary ------------------------------------------------------------------------------------


def build_summary(report: dict, manifest: dict, lang: str | None = None) -> str:
    """summary.md: the verdicts, what fits, where it is scarce, in the reader's language."""
    from engine.html import render_summary

    return render_summary(report, manifest, lang)


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
    lang: str | None = None,
    keep_problem: bool = True,
    ahead=None,
) -> tuple[dict, dict]:
    """Write every output of a run but the manifest into the folder ``stage``; returns
    (report, manifest) for :meth:`engine.outputs.RunFolder.commit` to finish.

    ``analysis``: full, quick or off (:mod:`engine.analysis.outputs`); ``on_stage(name)`` is
    told when the analysis starts; ``lang``: the language of the pages and legends (nl);
    ``keep_problem`` False lets the problem's value and allowed go once the report has read
    them (:func:`build_report`; the analysis needs them); ``ahead``: the rules' relaxations
    built while the run solved (:class:`engine.analysis.rule_costs.RelaxationsAhead`).
    """
    if analysis != "off" and not keep_problem:
        raise ValueError("the analysis reads the problem's value and allowed: keep_problem")
    stage = Path(stage)
    t = time.perf_counter()
    # The report's per-cell work, the manifest's inputs and the map: 20 s at national 25 m.
    parts = "core outputs"
    progress.advance(0, 4, parts)
    report = build_report(compiled, sol, timings=timings, keep_problem=keep_problem)
    progress.advance(1, 4, parts)
    manifest = build_manifest(
        compiled,
        sol,
        ds,
        timings=timings,
        deviations=list(deviations),
        inputs=grid_inputs(ds) + list(extra_inputs),
    )
    progress.advance(2, 4, parts)
    write_allocation_tif(stage / "allocation.tif", compiled, sol.choice, ds)
    progress.advance(3, 4, parts)
    write_file(stage / "allocation.tif.aux.xml", allocation_aux_xml(compiled.config, lang))
    write_file(stage / "allocation.qml", allocation_qml(compiled.config, lang))
    write_file(
        stage / PRICES_FILE,
        npz_bytes(**{f"p{l}": np.asarray(a, dtype=np.float64) for l, a in enumerate(sol.prices)}),
    )
    progress.advance(4, 4, parts)
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
            lang=lang,
            ahead=ahead,
        )
        timings["analysis"] = report["timings"]["analysis"]
    # After the analysis: the summary starts with its verdicts.
    write_file(stage / "summary.md", build_summary(report, manifest, lang))
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
    lang: str | None = None,
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
            lang=lang,
        )
        folder.commit(manifest)
    return report


def rewrite_pages(folder, *, lang: str | None = None, pdf: bool = False) -> list[str]:
    """Write a run folder's pages again in ``lang`` (report.html, summary.md, the legends) and,
    with ``pdf``, report.pdf printed from report.html; returns the files written.

    The folder stays whole: its files are copied into a stage, the pages written there, and
    the stage swapped in with a new manifest, as a run does (:class:`RunFolder`).
    """
    import json
    import shutil

    from engine.config import load_config
    from engine.html import render_report
    from engine.i18n import check_language
    from engine.outputs import MANIFEST, verify_run_folder

    lang = check_language(lang)
    folder = Path(folder)
    verify_run_folder(folder)  # a broken folder is refused, not papered over
    report = json.loads((folder / "report.json").read_text())
    manifest = json.loads((folder / MANIFEST).read_text())
    written = []
    with RunFolder(folder) as run_folder:
        stage = run_folder.stage
        for entry in manifest.get("outputs", []):
            shutil.copy2(folder / entry["path"], stage / entry["path"])
        config = load_config(manifest["config"]["path"], overrides=manifest["config"]["overrides"])
        write_file(stage / "allocation.tif.aux.xml", allocation_aux_xml(config, lang))
        write_file(stage / "allocation.qml", allocation_qml(config, lang))
        write_file(stage / "summary.md", build_summary(report, manifest, lang))
        written += ["allocation.tif.aux.xml", "allocation.qml", "summary.md"]
        if (folder / "conflict.tif").is_file():
            write_file(stage / "report.html", render_report(report, manifest, stage, lang))
            written.append("report.html")
        if pdf:
            from engine.pdf import print_pdf

            if "report.html" not in written:
                from engine.errors import RuimtepuzzelError

                raise RuimtepuzzelError(
                    f"{folder}: no report.html to print (the run had --analysis off); "
                    f"run it again with --analysis quick or full"
                )
            print_pdf(stage / "report.html", stage / "report.pdf")
            written.append("report.pdf")
        run_folder.commit({k: v for k, v in manifest.items() if k != "outputs"})
    return written
