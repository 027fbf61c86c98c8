"""The analysis outputs of a run, written into its staging folder with the core outputs
(:func:`engine.report.stage_outputs`), so that the run folder is swapped in whole:

- ``conflict.tif`` (uint8 conflict class, colour table, 255 nodata), ``margin.tif`` (float32
  adjusted-value margin of the best option over the runner-up), ``scarcity.tif`` (float32, one
  band per claim: its price in the cell, band names = claim names), ``regret.tif`` (float32);
  all Cloud-Optimised GeoTIFFs in EPSG:28992 like ``allocation.tif``;
- ``report.json`` gains ``conflicts``, ``scarcity``, ``rule_costs``, ``exchanges``,
  ``addability`` and ``verdicts`` (fields added, none renamed);
- ``report.html``: the page for the planner (:mod:`engine.html`).

The re-solves (rule costs, exchanges) are what costs time; ``RUIMTEPUZZEL_ANALYSIS=quick`` in
the environment skips them (rule costs then carry their price bound, exchanges their estimate),
``off`` skips the analysis outputs altogether (e.g. inside a large sweep).

``report.json`` and ``manifest.json`` are written by whoever stages the run, after these.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from engine import progress
from engine.analysis.addability import addability
from engine.analysis.conflict import CLASSES, cell_conflict, conflict_summary, contested_pairs
from engine.analysis.exchange import plan_exchanges
from engine.analysis.resolves import run_resolves
from engine.analysis.rule_costs import RelaxationsAhead, compiled_relaxations, plan_rule_costs
from engine.analysis.scarcity import cell_prices, regret, shadow_price_table
from engine.analysis.verdicts import verdicts
from engine.config.environment import ANALYSIS_LEVELS
from engine.errors import RuimtepuzzelError
from engine.outputs import (
    clean_json,
    colormap,
    grid_transform,
    pam_categories,
    write_cog,
    write_file,
)
from engine.report import allocation_grid

__all__ = ["analysis_outputs", "analyse", "analysis_level", "DEFAULTS", "LEVELS"]

NODATA_CLASS = 255
NODATA_FLOAT = -9999.0

DEFAULTS = {
    "conflict_threshold": 0.05,  # value units per ha: options this close to the best compete
    "rule_costs": True,
    # Two re-solves at a time (the rules' and the exchanges'): HiGHS and the relaxations' rule
    # passes are single-threaded.
    "resolve_workers": 2,
    # Every rule whose price bound is not decisive is re-solved (None); a number caps the
    # re-solves to the rules with the largest bounds, the rest keep their bound.
    "rule_cost_resolves": None,
    "exchanges": True,
    "exchanges_per_claim": 2,
    "max_exchanges": 3,
    "verify_exchanges": True,
}
QUICK = {"rule_cost_resolves": 0, "verify_exchanges": False}


LEVELS = ANALYSIS_LEVELS


def analysis_level(level: str | None = None) -> str:
    """The analysis level asked for, else RUIMTEPUZZEL_ANALYSIS, else full."""
    source = "analysis"
    if level is None:
        source = "RUIMTEPUZZEL_ANALYSIS"
        level = os.environ.get(source, "full").strip().lower() or "full"
    if level not in LEVELS:
        raise RuimtepuzzelError(f"{source}={level!r}: use full, quick or off")
    return level


def analyse(
    problem,
    sol,
    *,
    report: dict | None = None,
    compiled=None,
    options=None,
    level: str | None = None,
    ahead: RelaxationsAhead | None = None,
) -> dict:
    """All analyses of a solved problem: the report sections and the per-cell arrays.

    ``level``: full or quick (default: RUIMTEPUZZEL_ANALYSIS, else full); ``ahead``: the
    rules' relaxations, built while the run solved (else built here).
    """
    opt = {**DEFAULTS, **(QUICK if analysis_level(level) == "quick" else {}), **(options or {})}
    unknown = sorted(set(opt) - set(DEFAULTS))
    if unknown:
        raise RuimtepuzzelError(
            f"analysis options: {', '.join(unknown)} unknown; the options are {', '.join(DEFAULTS)}"
        )
    timings = {}
    t = time.perf_counter()
    conflict = cell_conflict(problem, sol, opt["conflict_threshold"])
    pairs = contested_pairs(problem, conflict, min_ha=0.0)
    summary = conflict_summary(problem, conflict)
    area = problem.area_of()
    timings["conflicts"] = time.perf_counter() - t

    t = time.perf_counter()
    prices = cell_prices(problem, sol)
    reg = regret(problem, sol)
    table = shadow_price_table(problem, sol)
    timings["scarcity"] = time.perf_counter() - t

    rules = exchanges = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="exchanges") as beside:
        # The supply curves of the exchanges' candidates are one thread's work (national
        # 100 m: 2 s): beside the rules' pricing, which is the workers'.
        if opt["exchanges"]:
            exchanges_planned = beside.submit(_plan_exchanges, problem, sol, opt)
        if opt["rule_costs"] and compiled is not None:
            rules = _plan_rule_costs(problem, sol, compiled, ahead, opt, timings)
        if opt["exchanges"]:
            # Said here, after the rules' timings: report.json's keys in the same order
            # whichever thread ended first.
            exchanges, timings["exchange_estimates"] = exchanges_planned.result()
    t = time.perf_counter()
    run_resolves(
        [*(rules.resolves if rules else []), *(exchanges.resolves if exchanges else [])],
        "re-solves",
        workers=opt["resolve_workers"],
    )
    timings["re_solves"] = time.perf_counter() - t
    costs = [] if rules is None else rules.entries()
    suggestions = [] if exchanges is None else exchanges.entries()
    # The relaxations of the rules re-solved (national 100 m: 0.37 GB) go before the maps
    # and the page.
    del rules, exchanges
    for e in suggestions:
        for key in ("zoning_index", "claim_index", "from_index", "to_index"):
            e.pop(key, None)
    sections = {
        "conflicts": {
            **summary,
            "contested_pairs": pairs,
            "cells_contested": int(np.sum(conflict.klass >= 3)),
            "area_contested_ha": float(np.sum(area[conflict.klass >= 3])),
        },
        "scarcity": {
            "shadow_prices": table,
            "regret_total": float(np.sum(reg * area)),
            "regret_mean_per_ha": float(np.sum(reg * area) / max(area.sum(), 1e-12)),
        },
        "rule_costs": costs,
        "exchanges": suggestions,
        "addability": addability(report) if report is not None else [],
        "analysis_timings": timings,
    }
    arrays = {"conflict": conflict, "prices": prices, "regret": reg}
    return {"sections": clean_json(sections), "arrays": arrays}


def _plan_rule_costs(problem, sol, compiled, ahead, opt: dict, timings: dict):
    """The rules planned, on the calling thread: their seconds go into ``timings``."""
    t = time.perf_counter()
    if ahead is None:
        relaxations = compiled_relaxations(compiled)
    else:
        relaxations = ahead.result()
        timings["relaxations_ahead"] = ahead.seconds
    rules = plan_rule_costs(
        problem,
        sol,
        relaxations,
        workers=opt["resolve_workers"],
        max_resolves=opt["rule_cost_resolves"],
    )
    timings["rule_bounds"] = time.perf_counter() - t
    return rules


def _plan_exchanges(problem, sol, opt: dict) -> tuple:
    """The exchanges planned, and the seconds that took."""
    t = time.perf_counter()
    exchanges = plan_exchanges(
        problem,
        sol,
        per_claim=opt["exchanges_per_claim"],
        max_suggestions=opt["max_exchanges"],
        verify=opt["verify_exchanges"],
    )
    return exchanges, time.perf_counter() - t


def _grid(compiled, values, fill, dtype):
    out = np.full(compiled.cells.shape, fill, dtype=dtype)
    out.ravel()[compiled.cells.flat] = values
    return out


def write_conflict_tif(path, compiled, ds, conflict):
    grid = _grid(compiled, conflict.klass, NODATA_CLASS, np.uint8)
    write_cog(
        path,
        [grid],
        transform=grid_transform(ds),
        dtype="uint8",
        nodata=NODATA_CLASS,
        categorical=True,
        descriptions=["conflict class"],
        colormap=colormap({code: colour for code, (_, _, colour) in CLASSES.items()}),
        band_tags={
            **{f"class_{c}": n for c, (n, _, _) in CLASSES.items()},
            "threshold": str(conflict.threshold),
        },
    )


def _float_grid(compiled, values) -> np.ndarray:
    """Per grid cell as float32, NODATA_FLOAT outside the cells and where not finite."""
    v = np.asarray(values, dtype=np.float32)
    v = np.where(np.isfinite(v), v, np.float32(NODATA_FLOAT))
    return _grid(compiled, v, NODATA_FLOAT, np.float32)


def write_float_tif(path, compiled, ds, bands: dict):
    write_cog(
        path,
        (_float_grid(compiled, values) for values in bands.values()),
        count=len(bands),
        transform=grid_transform(ds),
        dtype="float32",
        nodata=NODATA_FLOAT,
        categorical=False,
        descriptions=list(bands),
    )


def page_grids(compiled, ds, choice, conflict, prices: dict, regret) -> dict:
    """The maps of report.html as :func:`engine.html.read_grids` reads them from the run's
    files (allocation.tif, conflict.tif, scarcity.tif, regret.tif): the same arrays, without
    reading back what the analysis has just written (national 100 m: 2 s)."""

    def as_read(values):
        grid = _float_grid(compiled, values)
        grid[grid == NODATA_FLOAT] = np.nan
        return grid

    return {
        "allocation": allocation_grid(compiled, choice),
        "transform": tuple(grid_transform(ds))[:6],
        "conflict": _grid(compiled, conflict.klass, NODATA_CLASS, np.uint8),
        "prices": {name: as_read(values) for name, values in prices.items()},
        "regret": as_read(regret),
    }


def conflict_aux_xml() -> str:
    names = [""] * 5
    for c, (n, _, _) in CLASSES.items():
        names[c] = n
    return pam_categories(names)


def analysis_outputs(
    folder,
    compiled,
    sol,
    ds,
    report: dict,
    options=None,
    level: str | None = None,
    manifest: dict | None = None,
    lang: str | None = None,
    ahead: RelaxationsAhead | None = None,
) -> dict:
    """Write the analysis rasters and report.html into ``folder`` (a run's staging folder)
    and add the analysis sections to ``report`` (updated in place and returned); the caller
    writes report.json. ``level``: see analyse; ``manifest``: the run's, for the page's
    provenance; ``lang``: the page's language (nl); ``ahead``: as :func:`analyse`."""
    from engine.html import render_report

    level = analysis_level(level)
    if level == "off":
        return report
    out = Path(folder)
    t = time.perf_counter()
    problem = compiled.problem
    result = analyse(
        problem, sol, report=report, compiled=compiled, options=options, level=level, ahead=ahead
    )
    report.update(result["sections"])
    report["verdicts"] = clean_json(verdicts(compiled, report))
    arrays = result["arrays"]
    conflict = arrays["conflict"]
    margin = np.where(np.isfinite(conflict.margin), conflict.margin, np.nan)
    prices = {name: arrays["prices"][:, k] for k, name in enumerate(problem.claim_names)}
    writes = [
        lambda: write_conflict_tif(out / "conflict.tif", compiled, ds, conflict),
        lambda: write_file(out / "conflict.tif.aux.xml", conflict_aux_xml()),
        lambda: write_float_tif(out / "margin.tif", compiled, ds, {"margin": margin}),
        lambda: write_float_tif(out / "scarcity.tif", compiled, ds, prices),
        lambda: write_float_tif(out / "regret.tif", compiled, ds, {"regret": arrays["regret"]}),
        lambda: write_file(
            out / "report.html",
            render_report(
                report,
                manifest or {},
                out,
                lang,
                # The arrays, not the maps just written read back (national 100 m: 2 s).
                grids=page_grids(compiled, ds, sol.choice, conflict, prices, arrays["regret"]),
            ),
        ),
    ]
    # The maps and the page take seconds after the last re-solve (national 100 m: 7 s): a
    # count of their own, shown as it starts. One after the other: the page's arrays, drawn
    # while the maps are compressed, held 0.3 GB more at the run's peak (national 100 m).
    for done, write in enumerate(writes):
        progress.advance(done, len(writes), "outputs written")
        write()
    progress.advance(len(writes), len(writes), "outputs written")
    # Timed after the page is drawn: the maps are a good part of the analysis stage.
    report.setdefault("timings", {})["analysis"] = time.perf_counter() - t
    return report
