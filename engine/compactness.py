"""Compactness in a run: the config's ``[compactness]`` applied to the exact optimum, and the
``compactness`` section of report.json.

``cluster(compiled, sol)`` returns the solution of the plan the run writes: the clustered
plan's cells (``x``, ``choice``) and what it delivers (``allocated``, ``shortfall``), while
``objective``, ``gap``, ``status``, ``bound`` and the prices stay those of the exact
unclustered optimum, the certified upper bound the report measures the plan against. The
section states the value given up (absolute, as a share, per claim and province), the
fragmentation before and after (:mod:`engine.analysis.fragmentation`), and whether every
target row receives what it received without compactness.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np
from scipy import sparse

from engine import progress
from engine.analysis.fragmentation import FIELDS, fragmentation
from engine.solve.compact import Compaction, Geometry, PatchRule, compact
from engine.solve.solution import Solution, allocation_totals

__all__ = [
    "geometry_of",
    "min_patch_cells",
    "patch_rules",
    "cluster",
    "min_patch_relaxation",
    "plan_objective",
    "compactness_section",
    "page_rows",
    "sweep_columns",
]

logger = logging.getLogger(__name__)

# Hectares of a target row the plans may differ by and still count as the same (float sums).
SAME_HA = 1e-6


def geometry_of(compiled) -> Geometry:
    """Where the compiled problem's cells lie on the grid."""
    return Geometry(compiled.cells.shape, compiled.cells.flat, math.sqrt(compiled.area_ha) / 10.0)


def min_patch_cells(min_patch_ha: float, area_ha: float) -> int:
    """The minimum patch in whole cells, rounded up (at least one)."""
    return max(1, math.ceil(min_patch_ha / area_ha - 1e-9))


def patch_rules(compiled) -> list[PatchRule]:
    """The config's compactness as rules in option order: the minimum patch in whole cells
    (rounded up) and the boundary penalty per cell side."""
    config = compiled.config
    names = compiled.problem.option_names
    km = geometry_of(compiled).cell_km
    rules = []
    for name in names:
        spec = config.compactness.get(name)
        if spec is None:
            continue
        cells = min_patch_cells(spec.min_patch_ha, compiled.area_ha)
        rules.append(PatchRule(names.index(name), cells, spec.boundary_penalty * km))
    return rules


def min_patch_relaxation(compiled) -> np.ndarray | None:
    """``allowed`` without the cells the minimum patch sizes rule out
    (:func:`engine.rules.exclude_small_patches`; None when they rule out none): the problem
    whose optimum is the exact optimum without any clustering. Reserved cells stay held for
    their reserved options."""
    excluded = compiled.effects.min_patch
    if not any(len(cells) for cells in excluded.values()):
        return None
    names = compiled.problem.option_names
    relaxed = compiled.problem.allowed.copy()
    reserved = compiled.effects.reserved
    for name, cells in excluded.items():
        relaxed[cells[~reserved[cells]], names.index(name)] = True
    return relaxed


def _min_patch_section(compiled, sol: Solution) -> dict:
    """What the minimum patch sizes rule out before the solve, in ha per option, and an upper
    bound on what that costs: the Lagrangian bound of the problem without them under the
    optimum's prices (:mod:`engine.analysis.rule_costs`; the analysis re-solves it exactly)."""
    from engine.analysis.rule_costs import rule_costs

    excluded = compiled.effects.min_patch
    section = {
        "excluded_ha": {n: len(c) * compiled.area_ha for n, c in excluded.items() if len(c)},
        "value_bound": 0.0,
    }
    relaxed = min_patch_relaxation(compiled)
    if relaxed is not None and sol.row_prices is not None:
        # A part of the report's work (the write stage's count), not a count of its own.
        with progress.muted():
            (cost,) = rule_costs(compiled.problem, sol, {"min_patch": relaxed}, exact=False)
        section["value_bound"] = cost["bound_gain"]
    return section


def plan_objective(problem, plan) -> tuple[float, np.ndarray, np.ndarray]:
    """The LP objective of a plan, with its supply and shortfall per target row: ``plan`` is
    an allocation (N, O) or one option per cell (N,)."""
    x = _one_hot(problem, plan) if np.ndim(plan) == 1 else plan
    value, supply = allocation_totals(problem, x)
    rows = problem.rows
    shortfall = np.where(rows.has_lower, np.maximum(rows.lower - supply, 0.0), 0.0)
    if problem.elastic:
        value -= float(np.sum(problem.shortfall_penalty[rows.claim] * shortfall))
    return float(value), supply, shortfall


def _one_hot(problem, choice: np.ndarray) -> sparse.csr_matrix:
    n = problem.n_cells
    return sparse.csr_matrix(
        (np.ones(n), np.asarray(choice, dtype=np.int64), np.arange(n + 1)),
        shape=(n, problem.n_options),
    )


@dataclasses.dataclass
class Clustering:
    """What :func:`cluster` did, for the report."""

    compaction: Compaction
    exact_objective: float
    exact_supply: np.ndarray
    unclustered_objective: float  # the exact optimum's allocation valued as the plan is
    plan_objective: float
    plan_supply: np.ndarray
    seconds: float


def cluster(compiled, sol: Solution) -> Solution:
    """The plan the run writes: ``sol``'s exact optimum clustered by the config's rules (the
    same solution object when there are none)."""
    rules = patch_rules(compiled)
    if not rules:
        return sol
    clock = time.perf_counter()
    problem = compiled.problem
    compaction = compact(problem, sol, geometry_of(compiled), rules)
    before_obj, before_supply, _ = plan_objective(problem, sol.x)
    after_obj, after_supply, shortfall = plan_objective(problem, compaction.x)
    seconds = time.perf_counter() - clock
    logger.debug("compactness: %.1f s, value given up %.6g", seconds, sol.objective - after_obj)
    record = Clustering(
        compaction,
        sol.objective,
        before_supply,
        before_obj,
        after_obj,
        after_supply,
        seconds,
    )
    return dataclasses.replace(
        sol,
        x=compaction.x,
        choice=compaction.choice,
        allocated=problem.per_zoning(after_supply),
        shortfall=problem.per_zoning(shortfall),
        compactness=record,
    )


def compactness_section(compiled, sol: Solution, *, after_values=None) -> dict:
    """report.json's ``compactness``: the rules, the value given up against the exact
    optimum, and the fragmentation of the plan (and of the unclustered plan).

    ``after_values()``, if given, is called once the figures that read the problem's values
    are made and before the fragmentation's per-cell work: the write stage of a run that
    reads the values no more lets them go there (60 bytes a cell)."""
    config, problem = compiled.config, compiled.problem
    record = sol.compactness
    min_patch = _min_patch_section(compiled, sol)
    province = _province_zoning(problem)
    valued = {}
    if record is not None:
        given_up = record.exact_objective - record.plan_objective
        scale = max(abs(record.exact_objective), problem.units.objective)
        valued = dict(
            given_up=given_up,
            scale=scale,
            by_claim=_given_up_by(compiled, record.compaction, province, scale),
        )
    if after_values is not None:
        after_values()
    geometry = geometry_of(compiled)
    new_uses = [o for o in range(problem.n_options) if problem.contribution[o].any()]
    min_ha = {name: spec.min_patch_ha for name, spec in config.compactness.items()}

    def frag(choice):
        return fragmentation(
            geometry,
            choice,
            option_names=problem.option_names,
            options=new_uses,
            zone=problem.zones[province] if province is not None else np.zeros(problem.n_cells),
            zone_names=problem.zone_names[province] if province is not None else [],
            cell_ha=compiled.area_ha,
            min_patch_ha=min_ha,
            allowed=problem.allowed,
        )

    section = {
        "enabled": record is not None,
        "connectivity": 4,
        "rules": {
            name: {
                "min_patch_ha": spec.min_patch_ha,
                "boundary_penalty_per_km": spec.boundary_penalty,
                "source": spec.source,
                "assumptions": list(spec.assumptions),
                "configured_as": spec.entry,
            }
            for name, spec in config.compactness.items()
        },
        "fields": list(FIELDS),
        "fragmentation": frag(sol.choice),
        "min_patch_exclusion": min_patch,
    }
    if record is None:
        return section
    given_up, scale = valued["given_up"], valued["scale"]
    short_of_exact = _short_of_exact(problem, record)
    section.update(
        exact_objective=record.exact_objective,
        unclustered_plan_objective=record.unclustered_objective,
        plan_objective=record.plan_objective,
        value_given_up=given_up,
        value_given_up_share=given_up / scale,
        targets_as_unclustered=not short_of_exact,
        rows_short_of_exact=short_of_exact,
        by_claim_and_province=valued["by_claim"],
        fragmentation_unclustered=frag(record.compaction.before),
        seconds=record.seconds,
    )
    # Against the optimum without the minimum patch sizes' exclusions too: an upper bound.
    at_most = given_up + section["min_patch_exclusion"]["value_bound"]
    section.update(value_given_up_at_most=at_most, value_given_up_at_most_share=at_most / scale)
    return section


def _short_of_exact(problem, record: Clustering) -> list[dict]:
    """Target rows the plan supplies less than the exact optimum where that leaves them short,
    or more where that passes an upper bound: what whole cells cost the targets."""
    rows = problem.rows
    supply, exact_supply = record.plan_supply, record.exact_supply
    out = []
    for r in range(len(rows)):
        short = rows.has_lower[r] and supply[r] < min(rows.lower[r], exact_supply[r]) - SAME_HA
        over = rows.has_upper[r] and supply[r] > max(rows.upper[r], exact_supply[r]) + SAME_HA
        if short or over:
            out.append(
                {"row": problem.describe_row(r), "exact_ha": float(exact_supply[r]),
                 "plan_ha": float(supply[r])}
            )  # fmt: skip
    return out


def _province_zoning(problem) -> int | None:
    names = list(problem.zoning_names)
    return names.index("province") if "province" in names else None


def _given_up_by(compiled, compaction: Compaction, province: int | None, scale: float) -> list:
    """Value given up per claim and province against the exact optimum:
    each moved cell's loss (its value before less after) counts for every claim of the
    configured option it joined or left; a claim's national row sums the provinces. The
    share is of the exact optimum's objective, as the national figure's (so shares add up)."""
    problem = compiled.problem
    configured = np.zeros(problem.n_options, dtype=bool)
    configured[[problem.option_names.index(n) for n in compiled.config.compactness]] = True
    # The moved cells only, in cell order: a per-cell array of every cell's loss read all
    # of the (paged) values' pages and held 2 GB of temporaries at national 25 m.
    moved = np.flatnonzero(compaction.before != compaction.choice)
    before, after = compaction.before[moved], compaction.choice[moved]
    option = np.where(configured[after], after, before)
    kept = configured[option]
    moved, before, after, option = moved[kept], before[kept], after[kept], option[kept]
    # The two values of each cell only: a float64 copy of all of ``value`` is (N, O).
    loss = problem.area_of(moved) * (
        problem.value[moved, before].astype(np.float64) - problem.value[moved, after]
    )
    problem.release_cells()
    zone = problem.zones[province, moved] if province is not None else np.zeros(len(moved), int)
    zone_names = problem.zone_names[province] if province is not None else []
    rows = []
    for k, claim in enumerate(problem.claim_names):
        serving = configured & (problem.contribution[:, k] > 0)
        if not serving.any():
            continue
        cells = serving[option]
        by_zone = np.bincount(zone[cells], weights=loss[cells], minlength=len(zone_names))
        for name, given_up in [("national", by_zone.sum())] + list(zip(zone_names, by_zone)):
            rows.append(
                {
                    "claim": claim,
                    "zone": name,
                    "value_given_up": float(given_up),
                    "value_given_up_share": float(given_up) / scale,
                }
            )
    return rows


def page_rows(report: dict) -> list[dict]:
    """The rows the report page shows: per option with a rule (then the other new uses),
    nationally, the fragmentation without and with compactness."""
    section = report.get("compactness") or {}
    after = [r for r in section.get("fragmentation", []) if r["zone"] == "national"]
    before = {
        r["option"]: r
        for r in section.get("fragmentation_unclustered", [])
        if r["zone"] == "national"
    }
    rules = section.get("rules", {})
    after.sort(key=lambda r: (r["option"] not in rules,))
    rows = []
    for r in after:
        b = before.get(r["option"], {})
        rows.append(
            {
                "option": r["option"],
                "rule": rules.get(r["option"]),
                "area_ha": r["area_ha"],
                "patches_before": b.get("patches"),
                "patches": r["patches"],
                "single_cell_share_before": b.get("single_cell_share"),
                "single_cell_share": r["single_cell_share"],
                "single_cell_share_forced": r["single_cell_share_forced"],
                "below_min_share_before": b.get("below_min_share"),
                "below_min_share": r["below_min_share"],
                "mean_patch_ha": r["mean_patch_ha"],
                "boundary_km_before": b.get("boundary_km"),
                "boundary_km": r["boundary_km"],
            }
        )
    return rows


def sweep_columns(report: dict) -> dict:
    """Flat columns for the sweep results table: the value given up, and per new use
    nationally its patches, the share of its area in single cells and below the minimum."""
    section = report.get("compactness") or {}
    columns = {
        "compact_value_given_up": section.get("value_given_up"),
        "compact_value_given_up_share": section.get("value_given_up_share"),
    }
    for r in section.get("fragmentation", []):
        if r["zone"] != "national":
            continue
        columns[f"patches_{r['option']}"] = r["patches"]
        columns[f"single_cell_share_{r['option']}"] = r["single_cell_share"]
        columns[f"below_min_share_{r['option']}"] = r["below_min_share"]
    return columns
