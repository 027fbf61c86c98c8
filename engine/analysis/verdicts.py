"""Per province and claim a verdict with its reason: what a planner reads first.

- ``fits`` (*past*): the target is met within the province.
- ``fits_with_exchange`` (*past met uitruil*, L11699): an exchange with another province
  (:mod:`engine.analysis.exchange`, verified by a re-solve) covers what is short, or, where
  nothing is short, moves part of a dear target to a province where it is cheap and raises
  the total value: with whom, how many ha, what it gains.
- ``not_realistic`` (*niet realistisch binnen de provincie*, L11761): part of the target stays
  short. The reason is in hectares: the land the rules leave for the claim (``capacity_ha``,
  each claim alone), and per exclusion rule the province's land where it forbids an option
  of the claim, and the land classes on which no option of the claim is allowed at all.

Upper bounds (wind at most its share of the energy) get ``bound``: reached or not.
Built from the compiled problem (the rule masks) and the report's rows and exchanges.
"""

from __future__ import annotations

import numpy as np

from engine.compile import capacity
from engine.rules import evaluate

__all__ = ["verdicts", "SHORT_HA"]

# Below half a hectare a shortfall is rounding of the solve, not a verdict.
SHORT_HA = 0.5


def _basis(row: dict) -> str:
    """Where a province's target comes from: its own bid (a figure of the source), a share
    of the national target by land area (a scenario choice, L456), or a reservation rule."""
    key = row.get("key") or ""
    if key.startswith("shares."):
        return "land_area_share"
    if row.get("file") and "provinces" in str(row["file"]):
        return "province_target"
    return "national_rule"


def _claim_options(compiled, claim: str) -> np.ndarray:
    k = compiled.problem.claim_names.index(claim)
    return np.flatnonzero(compiled.problem.contribution[:, k] > 0)


def _rule_limits(compiled, claim: str, in_zone: np.ndarray) -> list[dict]:
    """Per exclusion rule: the zone's land (ha) where it forbids an option of the claim."""
    config, cells = compiled.config, compiled.cells
    options = {compiled.problem.option_names[o] for o in _claim_options(compiled, claim)}
    prov = cells.layer("province")
    out = []
    for rule in config.rules:
        if rule.kind != "exclusions" or not options & set(rule.options):
            continue
        mask = evaluate(rule.where, cells) & in_zone
        if rule.province is not None:
            mask &= prov == compiled.province_codes.get(rule.province, -99)
        ha = float(mask.sum()) * compiled.area_ha
        if ha > 0:
            out.append({"rule": rule.id, "source": rule.source, "ha": ha})
    out.sort(key=lambda r: -r["ha"])
    return out


def _blocked_land(compiled, claim: str, in_zone: np.ndarray) -> list[dict]:
    """Per land-cover class: the zone's land where no option of the claim is allowed."""
    allowed = compiled.problem.allowed
    if allowed is None or not compiled.cells.has("land_cover"):
        return []
    options = _claim_options(compiled, claim)
    blocked = in_zone & ~allowed[:, options].any(axis=1)
    cover = compiled.cells.layer("land_cover")
    names = compiled.cells.names("land_cover")
    counts = np.bincount(cover[blocked].astype(np.int64), minlength=len(names))
    return [
        {"land_cover": names[c], "ha": float(n) * compiled.area_ha}
        for c, n in sorted(enumerate(counts), key=lambda cn: -cn[1])
        if n > 0
    ]


def _exchanges_from(report: dict, zone: str, claim: str) -> list[dict]:
    return [
        {"to": e["to"], "hectares": e["hectares"], "gain": e["gain"]}
        for e in report.get("exchanges", [])
        if e.get("from") == zone and e.get("claim") == claim and e.get("verified")
    ]


def verdicts(compiled, report: dict, zoning: str = "province") -> list[dict]:
    """One verdict per (province, claim) with a target or a bound, in the report's order."""
    p = compiled.problem
    if zoning not in p.zoning_names:
        return []
    l = p.zoning_names.index(zoning)
    cap = capacity(compiled)[l]
    out = []
    for row in report["targets"]:
        if row["zoning"] != zoning:
            continue
        has_lower = row["lower_ha"] is not None and row["lower_ha"] > 0
        if not has_lower and row["upper_ha"] is None:
            continue
        z, k = p.zone_names[l].index(row["zone"]), p.claim_names.index(row["claim"])
        entry = {
            "zone": row["zone"],
            "claim": row["claim"],
            "unit": row["unit"],
            "target": row["lower"],
            "upper": row["upper"],
            "allocated": row["allocated"],
            "shortfall": row["shortfall"],
            "shortfall_ha": row["shortfall_ha"],
            "shadow_price": row["shadow_price"],
            "source": row.get("source"),
            "basis": _basis(row),
            "capacity_ha": float(cap[z, k]),
            "exchanges": _exchanges_from(report, row["zone"], row["claim"]),
        }
        if not has_lower:
            reached = row["allocated_ha"] >= row["upper_ha"] * (1 - 1e-6)
            entry.update(verdict="bound", bound_reached=bool(reached))
        else:
            short = (row["shortfall_ha"] or 0.0) > SHORT_HA
            covered = sum(e["hectares"] for e in entry["exchanges"])
            if short and covered < row["shortfall_ha"] - SHORT_HA:
                in_zone = np.asarray(p.zones[l]) == z
                entry.update(
                    verdict="not_realistic",
                    limits=_rule_limits(compiled, row["claim"], in_zone),
                    blocked_land=_blocked_land(compiled, row["claim"], in_zone),
                )
            elif entry["exchanges"]:
                entry["verdict"] = "fits_with_exchange"
            else:
                entry["verdict"] = "fits"
        out.append(entry)
    return out
