"""Addability (L11254-L11268): per province per claim the target, the allocation and the
shortfall, in hectares and in the claim's own unit, and their sum against the national target
(the provinces bid 917,193 homes against 900,000 needed)."""

from __future__ import annotations

__all__ = ["addability"]


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def addability(report: dict, zoning: str = "province") -> list[dict]:
    """One entry per claim: ``provinces`` (rows of the zoning) and ``sum`` vs ``national``.

    Built from the ``targets`` rows of ``report.json`` so that it adds up exactly what the
    report states. Hectare fields end in ``_ha``; the others are in ``unit``.
    """
    by_claim: dict[str, dict] = {}
    for r in report.get("targets", []):
        entry = by_claim.setdefault(
            r["claim"],
            {"claim": r["claim"], "unit": r.get("unit"), "provinces": [], "national": None},
        )
        if r["zoning"] == zoning:
            entry["provinces"].append({
                "zone": r["zone"], "target_ha": r["lower_ha"], "allocated_ha": r["allocated_ha"],
                "shortfall_ha": r["shortfall_ha"], "target": r.get("lower"),
                "allocated": r.get("allocated"), "shortfall": r.get("shortfall"),
                "shadow_price": r.get("shadow_price"),
            })  # fmt: skip
        elif r["zoning"] == "national":
            entry["national"] = {
                "target_ha": r["lower_ha"],
                "target": r.get("lower"),
                "upper_ha": r.get("upper_ha"),
                "upper": r.get("upper"),
            }
    out = []
    for entry in by_claim.values():
        total = {
            f: None
            for f in (
                "target_ha",
                "allocated_ha",
                "shortfall_ha",
                "target",
                "allocated",
                "shortfall",
            )
        }
        for p in entry["provinces"]:
            for f in total:
                total[f] = _add(total[f], p[f])
        entry["sum"] = total
        nat = entry["national"]
        if nat and nat["target_ha"] is not None:
            entry["sum_vs_national"] = {
                "targets_minus_national_ha": _sub(total["target_ha"], nat["target_ha"]),
                "targets_minus_national": _sub(total["target"], nat["target"]),
                "allocated_minus_national_ha": _sub(total["allocated_ha"], nat["target_ha"]),
                "allocated_minus_national": _sub(total["allocated"], nat["target"]),
                "provinces_bid_enough": (total["target_ha"] or 0) >= nat["target_ha"] * (1 - 1e-9),
                "national_met": (total["allocated_ha"] or 0) >= nat["target_ha"] * (1 - 1e-6),
            }  # fmt: skip
        if entry["provinces"] or nat:
            out.append(entry)
    return out


def _sub(a, b):
    return None if a is None or b is None else a - b
