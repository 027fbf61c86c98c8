"""``report.html``: one self-contained page a planner can open from a mail.

Maps are drawn with matplotlib (Agg) and embedded as base64 PNG, sized for A4 width; tables are
plain HTML with inline CSS. No scripts, no external files. Maps are *praatkaarten, niet
plankaarten* (L12436): overlays to talk with, not plans.
"""

from __future__ import annotations

import base64
import io
from html import escape

import numpy as np

from engine.report import layers_by_provenance

__all__ = [
    "render_report",
    "png_data_uri",
    "categorical_map",
    "continuous_map",
    "page",
    "table",
    "SECTIONS",
]

# The section ids every report.html has (tests check them).
SECTIONS = (
    "certificate",
    "allocation",
    "addability",
    "conflicts",
    "scarcity",
    "rule-costs",
    "exchanges",
    "provenance",
)

CSS = """
body{font-family:Helvetica,Arial,sans-serif;max-width:1000px;margin:1.5em auto;padding:0 1em;
color:#222;font-size:14px;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.25em;border-bottom:2px solid #2e86c1;
padding-bottom:.15em;margin-top:1.6em} h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:12.5px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#eef3f7} td.l,th.l{text-align:left}
tr.total td{font-weight:bold;background:#f7f7f7}
img{max-width:100%;height:auto;display:block;margin:.4em 0}
.note{color:#555;font-size:12.5px} .ok{color:#1e8449;font-weight:bold}
.bad{color:#b03a2e;font-weight:bold} code{font-size:12px}
@media print{body{max-width:none} h2{page-break-after:avoid} img{page-break-inside:avoid}}
"""


def png_data_uri(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# A map on the page is 7.2 inches at 110 dpi, about 800 pixels wide: a finer grid only costs
# time to draw (matplotlib resamples it anyway), so maps take every k-th cell beyond this.
DISPLAY_CELLS = 1000


def for_display(grid: np.ndarray) -> np.ndarray:
    """Every k-th row and column so that the longer side has at most DISPLAY_CELLS cells
    (the nearest-neighbour sampling ``imshow`` would do when drawing)."""
    step = -(-max(grid.shape[:2]) // DISPLAY_CELLS)
    return grid[::step, ::step] if step > 1 else grid


def _figure(shape, legend_room=True):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ny, nx = shape
    width = 7.2
    height = min(9.0, max(3.0, width * ny / max(nx, 1) * (0.72 if legend_room else 0.95)))
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_axis_off()
    return fig, ax


def categorical_map(
    codes: np.ndarray, classes: list[tuple[int, str, str]], title: str, nodata=None
) -> str:
    """``classes``: (code, label, '#rrggbb'); cells with other codes are transparent."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    # The legend names every class on the land, also one too small to survive the sampling.
    on_land = set(np.unique(codes).tolist())
    present = [(label, colour) for code, label, colour in classes if code in on_land]
    codes = for_display(codes)
    rgba = np.zeros(codes.shape + (4,), dtype=np.float32)
    for code, _, colour in classes:
        rgba[codes == code] = to_rgba(colour)
    fig, ax = _figure(codes.shape)
    ax.imshow(rgba, interpolation="nearest")
    ax.set_title(title, fontsize=11)
    handles = [Patch(facecolor=c, edgecolor="#555", label=lab) for lab, c in present]
    if handles:
        ax.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
        )
    return png_data_uri(fig)


def continuous_map(
    values: np.ndarray, title: str, cmap: str = "viridis", label: str = "", diverging: bool = False
) -> str:
    values = for_display(values)
    fig, ax = _figure(values.shape, legend_room=False)
    v = np.ma.masked_invalid(values.astype(float))
    kw = {}
    if diverging:
        lim = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
        kw = {"vmin": -lim or -1, "vmax": lim or 1}
    im = ax.imshow(v, cmap=cmap, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=11)
    cb = fig.colorbar(im, ax=ax, fraction=0.035, pad=0.02)
    cb.set_label(label, fontsize=8)
    cb.ax.tick_params(labelsize=7)
    return png_data_uri(fig)


def small_multiples(grids: dict, title: str, cmap="YlOrRd", label="") -> str:
    import matplotlib.pyplot as plt

    grids = {name: for_display(g) for name, g in grids.items()}
    names = list(grids)
    n = len(names)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    ny, nx = next(iter(grids.values())).shape
    fig, axes = plt.subplots(
        rows, cols, figsize=(7.2, max(2.5, 7.2 / cols * ny / nx * rows)), squeeze=False
    )
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, name in zip(axes.ravel(), names):
        g = grids[name]
        lim = float(np.nanmax(np.abs(g))) if np.isfinite(g).any() else 0.0
        # Diverging around 0 where an upper bound binds (negative prices), else sequential.
        signed = np.nanmin(g) < 0
        im = ax.imshow(
            np.ma.masked_invalid(g),
            cmap="RdBu_r" if signed else cmap,
            interpolation="nearest",
            vmin=-lim if signed else 0,
            vmax=lim or 1,
        )
        ax.set_title(name, fontsize=9)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        cb.ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=11)
    return png_data_uri(fig)


def _fmt(x, digits=0):
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        if digits == 0 and abs(x) >= 100:
            return f"{x:,.0f}"
        return f"{x:,.{max(digits, 2 if abs(x) < 100 else 0)}f}"
    return escape(str(x))


def table(header: list[str], rows: list[list], left: int = 1, total_last=False) -> str:
    th = "".join(
        f'<th class="{"l" if j < left else ""}">{escape(h)}</th>' for j, h in enumerate(header)
    )
    body = []
    for i, r in enumerate(rows):
        cls = ' class="total"' if total_last and i == len(rows) - 1 else ""
        tds = "".join(
            f'<td class="{"l" if j < left else ""}">{_fmt(v)}</td>' for j, v in enumerate(r)
        )
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><tr>{th}</tr>{''.join(body)}</table>"


def img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{escape(alt)}">'


def page(title: str, sections: list[tuple[str, str, str]], subtitle: str = "") -> str:
    """``sections``: (id, heading, html)."""
    body = "".join(
        f'<section id="{sid}"><h2>{escape(head)}</h2>{html}</section>\n'
        for sid, head, html in sections
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{escape(title)}</h1><p class="note">{subtitle}</p>\n{body}'
        f'<p class="note">Maps are <i>praatkaarten, niet plankaarten</i> (L12436): a '
        f"basis for the conversation, not a plan.</p></body></html>\n"
    )


# -- the run report -------------------------------------------------------------------------------


def _certificate(report, manifest) -> str:
    ok = report.get("status") == "optimal"
    solver = manifest.get("solver", {})
    rows = [
        ["status", report.get("status")],
        ["certified gap", f"{report.get('gap', 0):.2e}"],
        ["objective", report.get("objective")],
        ["dual bound", solver.get("bound")],
        ["method", report.get("method")],
        ["targets", report.get("targets_mode")],
        ["cells", report.get("cells")],
        ["cell area (ha)", report.get("cell_area_ha")],
    ]
    head = (
        f'<p>Solver status <span class="{"ok" if ok else "bad"}">'
        f"{escape(str(report.get('status')))}</span>: the allocation is proven optimal to "
        f"within the gap below (objective vs. dual bound from the shadow prices).</p>"
    )
    return head + table(["", "value"], rows)


def _allocation(report, grids) -> str:
    classes = [(j, o["name"], o["colour"]) for j, o in enumerate(report.get("options", []))]
    uri = categorical_map(grids["allocation"], classes, "Allocation: the option of each cell")
    rows = [[o["name"], o["area_ha"]] for o in report.get("options", []) if o.get("area_ha")]
    return img(uri, "allocation map") + table(["option", "hectares"], rows)


def _addability(report) -> str:
    out = [
        "<p>Per province the target, the allocation and the shortfall in the claim's own "
        "unit, and the sum against the national target (L11254-L11268).</p>"
    ]
    overview = []
    for entry in report.get("addability", []):
        s, nat = entry["sum"], entry.get("national") or {}
        overview.append(
            [
                entry["claim"],
                entry.get("unit") or "ha",
                s["target"],
                nat.get("target"),
                s["allocated"],
                s["shortfall"],
            ]
        )
    if overview:
        out.append(
            table(
                [
                    "claim",
                    "unit",
                    "sum of province targets",
                    "national target",
                    "allocated",
                    "shortfall",
                ],
                overview,
                left=2,
            )
        )
    for entry in report.get("addability", []):
        if not entry["provinces"]:
            continue
        unit = entry.get("unit") or "ha"
        rows = [
            [
                p["zone"],
                p["target"],
                p["allocated"],
                p["shortfall"],
                p["allocated_ha"],
                p["shadow_price"],
            ]
            for p in entry["provinces"]
        ]
        s = entry["sum"]
        rows.append(
            [
                "sum of provinces",
                s["target"],
                s["allocated"],
                s["shortfall"],
                s["allocated_ha"],
                None,
            ]
        )
        nat = entry.get("national")
        extra = ""
        if nat and nat.get("target") is not None:
            rows.append(["national target", nat["target"], None, None, nat["target_ha"], None])
            vs = entry.get("sum_vs_national", {})
            extra = (
                f'<p class="note">Provinces bid {_fmt(s["target"])} {escape(unit)} against '
                f"{_fmt(nat['target'])} needed "
                f"({_fmt(vs.get('targets_minus_national'))} {escape(unit)} "
                f"{'over' if (vs.get('targets_minus_national') or 0) >= 0 else 'short'}); "
                f"national target {'met' if vs.get('national_met') else 'NOT met'}.</p>"
            )
        out.append(f"<h3>{escape(entry['claim'])} ({escape(unit)})</h3>")
        out.append(
            table(
                [
                    "province",
                    f"target ({unit})",
                    f"allocated ({unit})",
                    f"shortfall ({unit})",
                    "allocated (ha)",
                    "shadow price",
                ],
                rows,
            )
        )
        out.append(extra)
    return "".join(out)


def _plausibility(report) -> str:
    pl = report.get("plausibility")
    if not pl:
        return "<p>No plausibility figures in this report.</p>"
    rows_all = [*pl["provinces"], {"zone": "national", **pl["national"]}]

    def pct(x):
        return None if x is None else f"{x:.0%}"

    housing = [
        [
            r["zone"],
            r["housing"]["infill_homes"],
            r["housing"]["extension_homes"],
            pct(r["housing"]["infill_share_of_homes"]),
            pct(r["housing"]["share_homes_within_1200m_of_station"]),
            pct(r["housing"]["share_homes_within_3000m_of_station"]),
            r["housing"]["extension_mean_distance_to_town_m"],
        ]
        for r in rows_all
    ]
    energy = [
        [
            r["zone"],
            r["energy"]["wind_twh"],
            r["energy"]["solar_twh"],
            r["wind_distance_to_built_up"]["min_m"],
            r["wind_distance_to_built_up"]["p5_m"],
        ]
        for r in rows_all
    ]
    land = [
        [
            r["zone"],
            r["land"]["taken_ha"],
            r["land"]["built_up_ha"],
            r["land"]["built_up_transformed_ha"],
            pct(r["land"]["built_up_transformed_share"]),
        ]
        for r in rows_all
    ]
    nat = pl["national"]["land"]["area_ha_by_option"]
    return (
        "<p>The figures a province checks a plan against: where the new homes go, the "
        "energy mix, how close wind comes to homes, and how much land is transformed.</p>"
        "<h3>New homes</h3>"
        + table(
            [
                "province",
                "homes inside towns",
                "homes at town edges",
                "share inside towns",
                "share of new homes within 1.2 km of a station",
                "within 3 km of a station",
                "extensions: mean distance to town (m)",
            ],
            housing,
            total_last=True,
        )
        + "<h3>Energy mix and wind near homes</h3>"
        + table(
            [
                "province",
                "wind TWh",
                "solar TWh",
                "wind: nearest built-up land (m)",
                "wind: 5th percentile distance (m)",
            ],
            energy,
            total_last=True,
        )
        + "<h3>Land taken</h3>"
        + table(
            [
                "province",
                "land taken (ha)",
                "built-up land (ha)",
                "built-up land transformed (ha)",
                "share transformed",
            ],
            land,
            total_last=True,
        )
        + table(["option", "hectares (national)"], [[k, v] for k, v in nat.items() if v])
    )


def _conflicts(report, grids) -> str:
    c = report.get("conflicts", {})
    # The classes come with the report (code, name, colour), so the page needs no analysis code.
    classes = [(k["code"], k["name"], k["colour"]) for k in c.get("classes", [])]
    uri = categorical_map(
        grids["conflict"],
        classes,
        f"Conflict: claims within {c.get('threshold', 0):g} of the best option",
    )
    rows = [[k["name"], k["description"], k["area_ha"]] for k in c.get("classes", [])]
    pairs = c.get("contested_pairs", [])[:20]
    prow = [[p["zone"], p["claim_a"], p["claim_b"], p["contested_ha"]] for p in pairs]
    return (
        img(uri, "conflict map")
        + table(["class", "meaning", "hectares"], rows, left=2)
        + "<h3>Contested hectares per claim pair (largest 20)</h3>"
        + (
            table(["zone", "claim", "claim", "hectares"], prow, left=3)
            if prow
            else "<p>No two claims compete for any cell.</p>"
        )
    )


def _scarcity(report, grids) -> str:
    s = report.get("scarcity", {})
    prices = {k: g for k, g in grids["prices"].items() if np.nanmax(np.abs(g), initial=0) > 0}
    html = (
        "<p>The shadow price is the value (suitability) one more hectare of a claim would "
        "cost where the cell lies: positive where a target binds, negative where an upper "
        "bound does. Regret is what the cell gives up versus its own best option.</p>"
    )
    if prices:
        html += img(
            small_multiples(prices, "Shadow price per claim (value per ha)"), "scarcity maps"
        )
    else:
        html += "<p>No target binds: nothing is scarce.</p>"
    html += img(
        continuous_map(
            grids["regret"],
            "Regret: value lost per ha versus the best option",
            cmap="magma_r",
            label="value per ha",
        ),
        "regret map",
    )
    rows = [
        [
            r["zoning"],
            r["zone"],
            r["claim"],
            r["lower_ha"],
            r["upper_ha"],
            r["allocated_ha"],
            r["shadow_price"],
        ]
        for r in s.get("shadow_prices", [])
        if r["shadow_price"]
    ]
    rows.sort(key=lambda r: -abs(r[-1]))
    html += (
        f"<p>Total regret {_fmt(s.get('regret_total'))} (mean "
        f"{_fmt(s.get('regret_mean_per_ha'), 3)} per ha).</p>"
    )
    if rows:
        html += table(
            [
                "zoning",
                "zone",
                "claim",
                "lower (ha)",
                "upper (ha)",
                "allocated (ha)",
                "shadow price",
            ],
            rows,
            left=3,
        )
    return html


def _rule_costs(report) -> str:
    costs = report.get("rule_costs", [])
    if not costs:
        return "<p>Not computed for this run.</p>"
    rows = [
        [
            c["rule"],
            c["gain"],
            c["bound_gain"],
            ", ".join(c["binds"]) or "–",
            c["cells_options_freed"],
            c["method"],
        ]
        for c in costs
    ]
    return (
        "<p>What lifting each hard rule would gain (objective change), exact: from the "
        "prices where they show the rule costs nothing, else by re-solving without it. "
        "<i>binds</i>: the claims the rule keeps from land they would take.</p>"
        + table(
            ["rule", "gain", "bound from prices", "binds", "cell-options freed", "found by"], rows
        )
    )


def _exchanges(report) -> str:
    ex = report.get("exchanges", [])
    if not ex:
        return (
            "<p>No exchange between provinces would raise the objective (shadow prices of "
            "every claim are equal across provinces, or no target can move).</p>"
        )
    rows = [
        [
            e["claim"],
            e["from"],
            e["to"],
            e["price_from"],
            e["price_to"],
            e["hectares"],
            e.get("price_from_after"),
            e.get("price_to_after"),
            e["gain_estimate"],
            e["gain"],
        ]
        for e in ex
    ]
    return (
        "<p>Moving part of a claim's target from the province where it is dear to one "
        "where it is cheap (<i>uitruil</i>, L11699): the hectares moved and the gain, "
        "verified by re-solving with the target moved.</p>"
        + table(
            [
                "claim",
                "from",
                "to",
                "price from",
                "price to",
                "hectares moved",
                "price from after",
                "price to after",
                "gain (estimate)",
                "gain (verified)",
            ],
            rows,
            left=3,
        )
    )


def _provenance(manifest) -> str:
    if not manifest:
        return "<p>No manifest.json found.</p>"
    g = manifest.get("grid", {})
    rows = [
        ["run", manifest.get("run")],
        ["config", manifest.get("config", {}).get("path")],
        ["grid", f"{g.get('name')} at {g.get('resolution_m')} m, {g.get('crs')}"],
        ["created", manifest.get("created")],
    ]
    ov = manifest.get("config", {}).get("overrides") or {}
    for k, v in ov.items():
        rows.append([f"override {k}", v])
    html = table(["", ""], rows)
    inputs = manifest.get("inputs", [])
    if inputs:
        html += "<h3>Inputs</h3>" + table(
            ["role", "path", "sha256"],
            [[i["role"], i["path"], (i.get("sha256") or "")[:16] + "…"] for i in inputs],
            left=3,
        )
    assumptions = manifest.get("assumptions", [])
    if assumptions:
        html += "<h3>Assumptions</h3>" + table(
            ["name", "value", "unit", "overridden", "source"],
            [
                [a["name"], a["value"], a.get("unit"), a.get("overridden"), a.get("source")]
                for a in assumptions
            ],
            left=1,
        )
    layers = layers_by_provenance(manifest) if manifest.get("grid", {}).get("layers") else {}
    if layers:
        html += "<h3>Layers: real, derived or generated</h3>" + table(
            ["provenance", "layers"], [[k, ", ".join(v)] for k, v in layers.items()], left=2
        )
        if "generated" in layers:
            html += (
                '<p class="note"><b>Generated stand-ins shaped this result</b> ('
                + escape(", ".join(layers["generated"]))
                + "): they behave like, but "
                "are not, the official maps.</p>"
            )
    doc = manifest.get("source_document")
    if doc:
        html += (
            f'<p class="note">Targets and rules cite lines of <i>{escape(doc["title"])}'
            f"</i> ({doc['year']}, {escape(doc['publisher'])}).</p>"
        )
    credits = manifest.get("grid", {}).get("credits") or []
    if credits:
        html += (
            "<h3>Data credits</h3><ul>"
            + "".join(f"<li>{escape(c)}</li>" for c in credits)
            + "</ul>"
        )
    devs = manifest.get("deviations", [])
    if devs:
        html += "<h3>Deviations from the base data (pas toe of leg uit)</h3>" + table(
            ["layer", "dataset", "location", "reason"],
            [[d["layer"], d["dataset"], d["location"], d["reason"]] for d in devs],
            left=4,
        )
    v = manifest.get("versions", {})
    if v:
        html += (
            '<p class="note">' + escape(", ".join(f"{k} {x}" for k, x in v.items() if x)) + "</p>"
        )
    return html


def render_report(report: dict, manifest: dict, grids: dict) -> str:
    """The page. ``grids``: 2-D arrays ``allocation`` (option index, -1 outside),
    ``conflict`` (class, 0 outside), ``prices`` {claim: float}, ``regret`` (NaN outside)."""
    sections = [
        ("certificate", "Certificate", _certificate(report, manifest)),
        ("allocation", "Allocation", _allocation(report, grids)),
        ("addability", "What fits: addability across provinces", _addability(report)),
        ("plausibility", "Is it plausible?", _plausibility(report)),
        ("conflicts", "Where the claims collide", _conflicts(report, grids)),
        ("scarcity", "What the scarcity costs", _scarcity(report, grids)),
        ("rule-costs", "What each rule costs", _rule_costs(report)),
        ("exchanges", "Exchanges between provinces (uitruil)", _exchanges(report)),
        ("provenance", "Provenance", _provenance(manifest)),
    ]
    short = [r for r in report.get("targets", []) if (r.get("shortfall_ha") or 0) > 0.5]
    sub = (
        f"scope {escape(str(report.get('scope')))} · {report.get('cells', 0):,} cells · "
        f"{'every target met' if not short else f'{len(short)} target rows short'}"
    )
    return page(f"ruimtepuzzel: {report.get('name')}", sections, sub)
