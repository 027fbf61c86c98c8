"""The pages a planner reads: ``report.html`` and ``summary.md`` of a run, ``compare.html``.

Pages are jinja2 templates (``engine/templates/``) with autoescaping on for HTML, so no run
name, zone or path can inject markup; every word comes from the label table of the page's
language (:mod:`engine.i18n`), numbers are written the reader's way. This module turns
``report.json``, ``manifest.json`` and the run's rasters into what the templates show: the
verdicts first, then the maps (:mod:`engine.maps`), scarcity in plain words, rule costs,
exchanges, accountability, and the solver's certificate in an appendix.

``report.html`` is one self-contained file (maps as PNG data URIs, no scripts, no external
files) with a print stylesheet for A4.
"""

from __future__ import annotations

import base64
import logging
from functools import cache
from pathlib import Path

import numpy as np

from engine import i18n, maps
from engine.compactness import page_rows
from engine.config import slugify

log = logging.getLogger(__name__)

__all__ = [
    "render_report", "render_summary", "render", "data_uri", "SECTIONS", "SECTIONS_COMPARE",
    "read_grids",
]  # fmt: skip

# The section ids every report.html has, in the order a planner reads them (tests check them).
SECTIONS = (
    "verdicts",
    "allocation",
    "compactness",
    "claim-maps",
    "addability",
    "scarcity",
    "conflicts",
    "rule-costs",
    "exchanges",
    "plausibility",
    "accountability",
    "provenance",
    "certificate",
)

# The section ids of compare.html.
SECTIONS_COMPARE = ("summary", "change-map", "changes")

NODATA_CODE = 255
NODATA_FLOAT = -9999.0
# The marks of the verdict overview (a province x claim matrix must fit an A4 page); the
# legend beside it gives the words.
VERDICT_MARK = {"fits": "✓", "fits_with_exchange": "⇄", "not_realistic": "✗", "bound": "≤"}

# A price below this (value units per claim-ha) is no scarcity: the solver's tolerance.
PRICE_ZERO = 1e-6


@cache
def _env():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("engine", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, **context) -> str:
    return _env().get_template(template).render(**context)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# -- the rasters of a run folder ------------------------------------------------------------------


def _read(path: Path, band: int | None = None):
    import rasterio

    with rasterio.open(path) as src:
        data = src.read() if band is None else src.read(band)
        return data, src.transform, list(src.descriptions)


def read_grids(folder) -> dict:
    """The run's maps as arrays: ``allocation`` (option code, 255 outside), ``conflict``,
    ``prices`` {claim: array}, ``regret`` (NaN outside) and the grid's ``transform``."""
    folder = Path(folder)
    allocation, transform, _ = _read(folder / "allocation.tif", 1)
    grids = {"allocation": allocation, "transform": tuple(transform)[:6]}
    if (folder / "conflict.tif").is_file():
        grids["conflict"] = _read(folder / "conflict.tif", 1)[0]
        bands, _, names = _read(folder / "scarcity.tif")
        bands[bands == NODATA_FLOAT] = np.nan
        grids["prices"] = dict(zip(names, bands))
        regret = _read(folder / "regret.tif", 1)[0]
        regret[regret == NODATA_FLOAT] = np.nan
        grids["regret"] = regret
    return grids


# -- words ----------------------------------------------------------------------------------------


def _rows(report: dict, zoning: str) -> list[dict]:
    return [r for r in report.get("targets", []) if r["zoning"] == zoning]


def _top_zoning(report: dict) -> str:
    return "national" if report.get("scope") == "national" else "province"


def _price_per_unit(price: float, claim: dict) -> tuple[float, str]:
    """A shadow price (value per claim-ha) per the unit a planner thinks in: per 1,000 homes,
    per 0.1 TWh, per ha."""
    per_ha = claim.get("per_claim_ha") or 1.0
    if claim["unit"] == "homes":
        return price * 1000 / per_ha, "per_1000_homes"
    if claim["unit"] == "TWh":
        return price * 0.1 / per_ha, "per_tenth_twh"
    return price, "per_ha"


def _verdict_reason(v: dict, t) -> str:
    """The reason of one verdict in a sentence or two."""
    unit = v["unit"]
    if v["verdict"] == "bound":
        key = "reason_bound_reached" if v.get("bound_reached") else "reason_bound_free"
        return t.text(key, upper=t.quantity(v["upper"], unit))
    if v["verdict"] == "fits_with_exchange":
        parts = [
            t.text(
                "reason_exchange",
                to=e["to"],
                ha=t.quantity(e["hectares"], "ha"),
                gain=t.number(e["gain"]),
            )
            for e in v["exchanges"]
        ]
        return " ".join(parts)
    if v["verdict"] == "not_realistic":
        text = t.text(
            "reason_short",
            short=t.quantity(v["shortfall"], unit),
            short_ha=t.quantity(v["shortfall_ha"], "ha"),
            capacity=t.quantity(v["capacity_ha"], "ha"),
        )
        rules = [
            f"{t.rule(r['rule'])} ({r['source']}): {t.quantity(r['ha'], 'ha')}"
            for r in v.get("limits", [])[:4]
        ]
        land = [
            f"{t.group('land_cover', b['land_cover'])} {t.quantity(b['ha'], 'ha')}"
            for b in v.get("blocked_land", [])[:4]
        ]
        for key, items in (("reason_limits", rules), ("reason_land", land)):
            if items:
                text += " " + t.text(key, items=", ".join(items))
        return text
    return ""  # met: the target and allocated columns say it


def _verdicts(report: dict, t) -> dict:
    rows = []
    for v in report.get("verdicts", []):
        rows.append(
            {
                "zone": v["zone"],
                "claim": t.claim(v["claim"]),
                "verdict": v["verdict"],
                "word": t.group("verdicts", v["verdict"]),
                "mark": VERDICT_MARK.get(v["verdict"], "?"),
                "target": t.quantity(v["target"], v["unit"])
                if v["verdict"] != "bound"
                else t.text("at_most", upper=t.quantity(v["upper"], v["unit"])),
                "allocated": t.quantity(v["allocated"], v["unit"]),
                "basis": t.text(f"basis_{v['basis']}"),
                "source": v.get("source") or "",
                "reason": _verdict_reason(v, t),
            }
        )
    zones = list(dict.fromkeys(r["zone"] for r in rows))
    by_zone = [(z, [r for r in rows if r["zone"] == z]) for z in zones]
    claims = list(dict.fromkeys(r["claim"] for r in rows))
    grid = {(r["zone"], r["claim"]): r for r in rows}
    attention = [r for r in rows if r["verdict"] in ("fits_with_exchange", "not_realistic")]
    counts = {w: sum(r["verdict"] == w for r in rows) for w in t.table["verdicts"]}
    return {
        "rows": rows,
        "by_zone": by_zone,
        "zones": zones,
        "claims": claims,
        "grid": grid,
        "attention": attention,
        "counts": [(w, VERDICT_MARK[w], t.group("verdicts", w), n) for w, n in counts.items() if n],
    }


def _addability(report: dict, t) -> list[dict]:
    """Per claim: the provinces' targets, allocations and shortfalls in the claim's unit, their
    sum and the national target or bound (optelbaarheid, L11254-L11268)."""
    out = []
    for entry in report.get("addability", []):
        unit = entry.get("unit") or "ha"
        nat = entry.get("national") or {}
        provinces = [
            {
                "zone": p["zone"],
                "target": t.quantity(p["target"], unit),
                "allocated": t.quantity(p["allocated"], unit),
                "shortfall": t.quantity(p["shortfall"], unit),
            }
            for p in entry["provinces"]
        ]
        if not provinces and nat.get("target") is None:
            continue
        s = entry["sum"]
        out.append(
            {
                "claim": t.claim(entry["claim"]),
                "unit": t.unit(unit),
                "provinces": provinces,
                "sum": {
                    "target": t.quantity(s["target"], unit),
                    "allocated": t.quantity(s["allocated"], unit),
                    "shortfall": t.quantity(s["shortfall"], unit),
                },
                "national_target": t.quantity(nat.get("target"), unit),
                "national_upper": None
                if nat.get("upper") is None
                else t.text("at_most", upper=t.quantity(nat["upper"], unit)),
                "met": (entry.get("sum_vs_national") or {}).get("national_met"),
            }
        )
    return out


def _scarcity_words(report: dict, t) -> list[str]:
    """Per claim with binding province targets: where it is scarcest against where it is
    cheapest, per the unit a planner thinks in."""
    claims = report.get("claims", {})
    out = []
    by_claim: dict[str, list] = {}
    for r in _rows(report, "province"):
        if r["lower_ha"] is not None and r["shadow_price"] is not None:
            by_claim.setdefault(r["claim"], []).append(r)
    for claim, rows in by_claim.items():
        if claim not in claims:
            continue
        rows = sorted(rows, key=lambda r: -r["shadow_price"])
        dear, cheap = rows[0], rows[-1]
        if dear["shadow_price"] <= PRICE_ZERO:
            continue
        cost, per = _price_per_unit(dear["shadow_price"], claims[claim])
        text = t.text(
            "scarcity_claim",
            claim=t.claim(claim),
            zone=dear["zone"],
            cost=t.number(cost),
            per=t.text(per),
        )
        if len(rows) > 1 and cheap["shadow_price"] > PRICE_ZERO:
            ratio = dear["shadow_price"] / cheap["shadow_price"]
            text += " " + t.text(
                "scarcity_ratio",
                claim=t.claim(claim),
                dear=dear["zone"],
                cheap=cheap["zone"],
                ratio=t.number(ratio, 1 if ratio < 10 else 0),
            )
        elif len(rows) > 1:
            free = [r["zone"] for r in rows if r["shadow_price"] <= PRICE_ZERO]
            text += " " + t.text("scarcity_free", zones=", ".join(free))
        out.append(text)
    return out


def _scarcity_table(report: dict, t) -> dict:
    """Province x claim: the price per planner's unit (only claims with province targets)."""
    claims = report.get("claims", {})
    rows = [r for r in _rows(report, "province") if r["lower_ha"] is not None]
    names = [c for c in claims if any(r["claim"] == c for r in rows)]
    head = []
    for c in names:
        _, per = _price_per_unit(1.0, claims[c])
        head.append(f"{t.claim(c)} ({t.text(per)})")
    body = []
    for zone in dict.fromkeys(r["zone"] for r in rows):
        cells = []
        for c in names:
            r = next((r for r in rows if r["zone"] == zone and r["claim"] == c), None)
            cost = None if r is None else _price_per_unit(r["shadow_price"] or 0.0, claims[c])[0]
            cells.append(t.number(cost))
        body.append({"zone": zone, "cells": cells})
    return {"head": head, "rows": body}


def _value_unit(manifest: dict, t) -> str:
    take = next((a for a in manifest.get("assumptions", []) if a["name"] == "land_take_cost"), None)
    if take is None:
        return t.text("value_unit")
    return t.text("value_unit") + " " + t.text("value_unit_take", cost=t.number(take["value"]))


def _compactness(report: dict, t) -> dict | None:
    """The compactness section: the value given up against the exact unclustered optimum,
    nationally and per claim and province, and the fragmentation without and with it."""
    section = report.get("compactness") or {}
    if not section.get("enabled"):
        return None

    def given_up(value, share):
        return {"value": t.number(value, 0), "share": t.percent(share, 2)}

    by = section.get("by_claim_and_province", [])
    claims = list(dict.fromkeys(r["claim"] for r in by))
    zones = list(dict.fromkeys(r["zone"] for r in by if r["zone"] != "national"))
    cell = {(r["zone"], r["claim"]): r for r in by}
    rows = [
        {
            "zone": t.group("zonings", "national") if zone == "national" else zone,
            "cells": [
                given_up(c["value_given_up"], c["value_given_up_share"])
                for c in (cell[(zone, claim)] for claim in claims)
            ],
        }
        for zone in ["national"] + zones
    ]

    def ha(x):
        return t.quantity(x, "ha") if x is not None else "–"

    fragmentation = [
        {
            "option": t.option(r["option"]),
            "rule": t.text(
                "compact_rule",
                ha=t.number(r["rule"]["min_patch_ha"], 0),
                penalty=t.number(r["rule"]["boundary_penalty_per_km"], 0),
            )
            if r["rule"]
            else t.text("compact_no_rule"),
            "area": ha(r["area_ha"]),
            "patches": f"{t.number(r['patches_before'], 0)} → {t.number(r['patches'], 0)}",
            "single": f"{t.percent(r['single_cell_share_before'], 1)} → "
            f"{t.percent(r['single_cell_share'], 1)}",
            "forced": t.percent(r["single_cell_share_forced"], 1),
            "below_min": f"{t.percent(r['below_min_share_before'], 1)} → "
            f"{t.percent(r['below_min_share'], 1)}",
            "mean": ha(r["mean_patch_ha"]),
        }
        for r in page_rows(report)
        if r["area_ha"]
    ]
    return {
        "intro": t.text(
            "compact_intro",
            given_up=t.number(section["value_given_up"], 0),
            share=t.percent(section["value_given_up_share"], 2),
            exact=t.number(section["exact_objective"], 0),
            plan=t.number(section["plan_objective"], 0),
        ),
        "min_patch": _min_patch_text(section, t),
        "targets": t.text(
            "compact_targets_same" if section["targets_as_unclustered"] else "compact_targets_off",
            rows=len(section.get("rows_short_of_exact", [])),
        ),
        "head": [t.claim(c) for c in claims],
        "rows": rows,
        "fragmentation": fragmentation,
    }


def _min_patch_text(section: dict, t) -> str | None:
    """What the minimum patch sizes rule out before the solve, and the bound on its cost."""
    excluded = (section.get("min_patch_exclusion") or {}).get("excluded_ha") or {}
    if not excluded:
        return None
    return t.text(
        "compact_min_patch",
        excluded=", ".join(
            f"{t.quantity(ha, 'ha')} {t.option(name)}"
            for name, ha in sorted(excluded.items(), key=lambda item: -item[1])
        ),
        bound=t.number(section["min_patch_exclusion"]["value_bound"], 0),
        total=t.number(section["value_given_up_at_most"], 0),
        total_share=t.percent(section["value_given_up_at_most_share"], 2),
    )


def _rule_costs(report: dict, t) -> list[dict]:
    out = []
    for c in report.get("rule_costs", []):
        gain = c.get("gain")
        if c.get("method") == "prices":
            why = t.text("rule_cost_zero")
        elif gain is None:
            why = t.text("rule_cost_bound", bound=t.number(c["bound_gain"]))
        elif gain < 0 and c.get("cells_options_forbidden"):
            why = t.text("rule_cost_negative_real", gain=t.number(gain))
        elif gain < 0:
            why = t.text("rule_cost_negative_tolerance", gap=f"{c.get('gap_relaxed') or 0:.1e}")
        else:
            why = t.text("rule_cost_positive", binds=", ".join(t.claim(b) for b in c["binds"]))
        out.append(
            {
                "rule": t.rule(c["rule"]),
                "gain": t.number(gain if gain is not None else None),
                "bound": t.number(c["bound_gain"]),
                "why": why,
            }
        )
    return out


def _exchanges(report: dict, t) -> list[dict]:
    claims = report.get("claims", {})
    out = []
    for e in report.get("exchanges", []):
        claim = claims.get(e["claim"], {"unit": "ha", "per_claim_ha": 1.0})
        amount = e["hectares"] * (claim.get("per_claim_ha") or 1.0)
        out.append(
            {
                "claim": t.claim(e["claim"]),
                "from": e["from"],
                "to": e["to"],
                "amount": t.quantity(amount, claim["unit"]),
                "hectares": t.quantity(e["hectares"], "ha"),
                "gain": t.number(e.get("gain")),
                "prices": f"{t.number(e['price_from'])} → {t.number(e['price_to'])}",
            }
        )
    return out


def _layers(manifest: dict) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name, attrs in (manifest.get("grid", {}).get("layers") or {}).items():
        groups.setdefault(attrs.get("provenance", "unknown"), []).append(name)
    return groups


def _accountability(manifest: dict, t) -> dict:
    rules = [
        {
            "rule": t.rule(r["id"]),
            "kind": t.group("rule_kinds", r["kind"]),
            "source": r["source"],
            "quote": r.get("source_text") or "",
            "province": r.get("province") or "",
            "options": ", ".join(t.option(o) for o in r.get("options", [])),
        }
        for r in manifest.get("rules", [])
    ]
    assumptions = [
        {
            "name": t.group("assumptions", a["name"]),
            "code": a["name"],
            "value": f"{t.number(a['value'], None)} {t.unit(a.get('unit'))}",
            "overridden": t.text("yes") if a.get("overridden") else "",
            "source": a.get("source") or t.text("assumption"),
        }
        for a in manifest.get("assumptions", [])
    ]
    overrides = [
        {"key": k, "value": str(v)}
        for k, v in (manifest.get("config", {}).get("overrides") or {}).items()
    ]
    return {
        "rules": rules,
        "assumptions": assumptions,
        "deviations": manifest.get("deviations", []),
        "overrides": overrides,
        "notes": manifest.get("notes", []),
    }


def _provenance(manifest: dict, t) -> dict:
    layers = _layers(manifest)
    doc = manifest.get("source_document") or {}
    return {
        "layers": [
            {"provenance": t.group("provenance", p), "names": ", ".join(names)}
            for p, names in layers.items()
        ],
        "generated": [t.group("layers", n) for n in layers.get("generated", [])],
        "credits": (manifest.get("grid") or {}).get("credits") or [],
        "document": doc,
        "inputs": [
            {"role": i["role"], "path": i["path"], "sha": (i.get("sha256") or "")[:12]}
            for i in manifest.get("inputs", [])
        ],
    }


def _certificate(report: dict, manifest: dict, t) -> list[tuple[str, str]]:
    solver = manifest.get("solver", {})
    timings = report.get("timings") or {}
    rows = [
        (t.text("cert_status"), t.group("status", str(report.get("status")))),
        (t.text("cert_gap"), f"{report.get('gap', 0.0):.1e}"),
        (t.text("cert_objective"), t.number(report.get("objective"))),
        (t.text("cert_bound"), t.number(solver.get("bound"))),
        (t.text("cert_method"), str(report.get("method"))),
        (t.text("cert_targets"), t.text(f"targets_{report.get('targets_mode')}")),
        (t.text("cert_cells"), t.number(report.get("cells"), 0)),
        (t.text("cert_cell_area"), t.quantity(report.get("cell_area_ha"), "ha")),
    ]
    rows += [
        (f"{t.text('cert_time')}: {k}", f"{t.number(v, 1)} s")
        for k, v in timings.items()
        if isinstance(v, (int, float))
    ]
    versions = manifest.get("versions") or {}
    rows.append((t.text("cert_versions"), ", ".join(f"{k} {v}" for k, v in versions.items() if v)))
    return rows


# -- maps -----------------------------------------------------------------------------------------


def _option_classes(report: dict, t) -> list[tuple[int, str, str]]:
    return [(o["code"], t.option(o["name"]), o["colour"]) for o in report.get("options", [])]


def _maps(report: dict, grids: dict, t) -> dict:
    """The PNG data URIs of the page's maps, each with its alt text."""
    allocation = grids["allocation"]
    land = allocation != NODATA_CODE
    focus = None if report.get("scope") == "national" else _scope_name(report, t)
    frame = maps.frame_of(land, grids["transform"], focus=focus)
    out = {
        "allocation": data_uri(
            maps.categorical_map(
                allocation, _option_classes(report, t), frame, t.text("map_allocation")
            )
        )
    }
    out["claims"] = data_uri(_claim_maps(report, allocation, land, frame, t))
    if "conflict" in grids:
        classes = [
            (c["code"], t.group("conflict_classes", c["name"]), c["colour"])
            for c in report.get("conflicts", {}).get("classes", [])
        ]
        out["conflict"] = data_uri(
            maps.categorical_map(grids["conflict"], classes, frame, t.text("map_conflict"))
        )
        out["scarcity"] = _scarcity_maps(grids, frame, t)
        out["regret"] = data_uri(
            maps.continuous_map(
                grids["regret"], frame, t.text("map_regret"), t.text("value_per_ha"), "cividis"
            )
        )
    return out


def _claim_maps(report: dict, allocation, land, frame, t) -> bytes:
    """A small map per claim with a target: the cells of the options that serve it."""
    wanted = {r["claim"] for r in report.get("targets", []) if r["allocated_ha"]}
    grids, colours = {}, {}
    for claim in report.get("claims", {}):
        serving = [o for o in report["options"] if o["contributes"].get(claim, 0) > 0]
        if claim not in wanted or not serving:
            continue
        label = t.claim(claim)
        grids[label] = np.isin(allocation, [o["code"] for o in serving])
        # the colour of the option that serves this claim alone (nature's, not water + nature's)
        alone = [o for o in serving if set(o["contributes"]) == {claim}]
        colours[label] = (alone or serving)[0]["colour"]
    return maps.claim_maps(grids, frame, colours, land)


def _scarcity_maps(grids: dict, frame, t) -> str | None:
    """The price of each claim whose target binds somewhere, a small map each."""
    prices = {
        t.claim(claim): values
        for claim, values in grids.get("prices", {}).items()
        if np.nanmax(np.abs(values), initial=0.0) > PRICE_ZERO
    }
    if not prices:
        return None
    return data_uri(maps.value_maps(prices, frame, t.text("value_per_claim_ha")))


# -- the pages ------------------------------------------------------------------------------------


def _scope_name(report: dict, t) -> str:
    """Nederland for a national run, else the province's own name."""
    if report.get("scope") == "national":
        return t.group("zonings", "national")
    names = [z["zone"] for z in report.get("zones", []) if z["zoning"] == "province"]
    return names[0] if len(names) == 1 else str(report.get("scope"))


def _run_name(report: dict, t) -> str:
    """The run's name; a shipped config's name (``national``, ``fryslan``) as the area's
    own name (Nederland, Fryslân)."""
    name = str(report.get("name"))
    scope = _scope_name(report, t)
    return scope if name.lower() in ("national", slugify(scope)) else name


def page_context(report: dict, manifest: dict, lang: str | None = None) -> dict:
    """What report.html and summary.md show, in words and formatted numbers."""
    t = i18n.get(lang)
    top = _top_zoning(report)
    short = [r for r in report.get("targets", []) if (r.get("shortfall_ha") or 0) > 0.5]
    land_taken = [
        {"option": t.option(o["name"]), "colour": o["colour"], "ha": t.quantity(o["area_ha"], "ha")}
        for o in report.get("options", [])
        if o.get("area_ha") and o["name"] != "keep"
    ]
    grid = manifest.get("grid", {})
    return {
        "t": t,
        "lang": t.lang,
        "title": t.text("title", name=_run_name(report, t)),
        "subtitle": t.text(
            "subtitle",
            scope=_scope_name(report, t),
            resolution=t.number(grid.get("resolution_m"), 0),
            created=str(manifest.get("created", ""))[:10],
            short=len(short),
        ),
        "sections": {s: t.group("sections", s) for s in SECTIONS},
        "verdicts": _verdicts(report, t),
        "top": [
            {
                "claim": t.claim(r["claim"]),
                "target": t.quantity(r["lower"], r["unit"])
                if r["lower"] is not None
                else t.text("at_most", upper=t.quantity(r["upper"], r["unit"])),
                "allocated": t.quantity(r["allocated"], r["unit"]),
                "land": t.number(r.get("land_ha"), 0),
                "shortfall": t.quantity(r["shortfall"], r["unit"]),
            }
            for r in _rows(report, top)
            if r["lower"] is not None or r["upper"] is not None
        ],
        "land_taken": land_taken,
        "addability": _addability(report, t),
        "scarcity_words": _scarcity_words(report, t),
        "scarcity_table": _scarcity_table(report, t),
        "value_unit": _value_unit(manifest, t),
        "compactness": _compactness(report, t),
        "rule_costs": _rule_costs(report, t),
        "exchanges": _exchanges(report, t),
        "plausibility": report.get("plausibility"),
        "accountability": _accountability(manifest, t),
        "provenance": _provenance(manifest, t),
        "certificate": _certificate(report, manifest, t),
        "has_analysis": "conflicts" in report,
    }


def render_report(
    report: dict, manifest: dict, folder, lang: str | None = None, grids: dict | None = None
) -> str:
    """report.html of the run in ``folder``: its rasters read from there, or ``grids`` as
    :func:`read_grids` would read them (the analysis, which has just made them)."""
    context = page_context(report, manifest, lang)
    context["maps"] = _maps(report, read_grids(folder) if grids is None else grids, context["t"])
    return render("report.html", **context)


def render_summary(report: dict, manifest: dict, lang: str | None = None) -> str:
    return render("summary.md", **page_context(report, manifest, lang))
