"""The sweep page, ``OUT/report/index.html``: what holds across the variants, on the map
first (no-regret, most frequent use, the share per claim, what each axis moves), then the
trade-offs along the axes and the variants. One self-contained page in the style of the
board report (:mod:`engine.html`, :mod:`engine.maps`, the label table of :mod:`engine.i18n`);
links to the sweep's files are relative, so the folder can be moved or mailed whole.

A shortfall below :data:`SHORTFALL_ZERO_HA` or a price below :data:`engine.html.PRICE_ZERO`
is the solver's tolerance, not a result: it is shown as 0 and draws no line.
"""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import numpy as np

from engine.outputs import write_file
from engine.sweep.driver import RobustnessCounter, SweepError, collect_results, done_record
from engine.sweep.robustness import CONTESTED, FOLDER
from engine.sweep.scenario import SAMPLE_AXIS, load_scenario, variant_key
from engine.sweep.tally import NODATA

__all__ = ["write_report", "SHORTFALL_ZERO_HA"]

logger = logging.getLogger(__name__)

#: Hectares below this are the solver's tolerance (1e-12 ha is not a shortfall).
SHORTFALL_ZERO_HA = 1e-3
#: A certified gap below this is the solver's tolerance (engine.solve certifies 1e-9).
GAP_ZERO = 1e-9
NODATA_FLOAT = -9999.0
NEVER_COLOUR = "#f4f1e8"
CONTESTED_COLOUR = "#8c8c8c"


# The sweep's own words on the maps (legends are drawn into the PNG): the rest of the page's
# sentences are in the template, the names of claims and options in engine.i18n.
def _read_meta(out: Path) -> dict:
    path = out / "sweep.json"
    if not path.is_file():
        raise SweepError(
            f"{out}: no sweep.json there, so no sweep ran into it; give the "
            f"--out folder of 'ruimtepuzzel sweep', or run the sweep first"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SweepError(
            f"{path}: cannot be read ({err}); run the sweep into {out} again "
            f"(finished variants are kept)"
        ) from None


def _results(out: Path, scenario):
    """results.parquet; made from the variant folders when a killed sweep left none (the
    variants done so far) or a broken one."""
    import pandas as pd

    path = out / "results.parquet"
    if path.is_file():
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as err:  # pyarrow's errors derive from these
            logger.warning("%s cannot be read (%s); made again from the variant folders", path, err)
    collect_results(scenario, out)
    return pd.read_parquet(path)


def _robustness(out: Path, scenario) -> dict | None:
    """The robustness maps and robustness.json brought up to date with the finished variants
    (those of a killed sweep too); None while none has finished."""
    records = {}
    for v in scenario.variants:
        rec = done_record(out / v.id, variant_key(scenario, v))
        if rec is not None:
            records[v.id] = rec
    counter = RobustnessCounter(scenario, out, records)
    counter.save()
    if counter.write() is None:
        return None
    return json.loads((out / FOLDER / "robustness.json").read_text(encoding="utf-8"))


def write_report(out_dir, lang: str | None = None) -> Path:
    """The sweep page ``OUT/report/index.html`` (Dutch; ``lang="en"`` on request)."""
    from engine import i18n
    from engine.html import render

    out = Path(out_dir)
    meta = _read_meta(out)
    t = i18n.get(lang)
    scenario = load_scenario(meta["scenario"])
    robust = _robustness(out, scenario)
    data = _results(out, scenario)
    variants = data.drop_duplicates("variant").sort_values("variant_index")
    context = {
        "lang": t.lang,
        "t": t,
        "title": meta["name"],
        "meta": meta,
        "scenario_file": Path(meta["scenario"]).name,
        "base_file": Path(meta["base"]).name,
        "n_variants": len(scenario.variants),
        "n_done": len(variants),
        "n_failed": int((variants["status"] == "error").sum()),
        "robust": robust,
        "maps": _maps(out, robust, t) if robust else {},
        "tables": _tables(robust, t) if robust else {},
        "tradeoffs": _tradeoffs(data, variants, meta, t),
        "variants": _variant_rows(variants, meta, t),
        "axis_names": [a["name"] for a in meta["axes"]],
    }
    folder = out / "report"
    folder.mkdir(exist_ok=True)
    page = folder / "index.html"
    write_file(page, render("sweep.html", **context))
    return page


# -- maps -----------------------------------------------------------------------------------------


def _read(path: Path):
    import rasterio

    with rasterio.open(path) as src:
        return src.read(), tuple(src.transform)[:6], list(src.descriptions)


def _floats(bands: np.ndarray) -> np.ndarray:
    return np.where(bands == NODATA_FLOAT, np.nan, bands)


def _positive(bands: np.ndarray) -> np.ndarray:
    """Shares with 0 (and no data) blank."""
    return np.where(bands > 0, bands, np.nan)


def _maps(out: Path, robust: dict, t) -> dict:
    """PNG data URIs of the robustness maps, read back from the COGs the sweep wrote."""
    from engine import maps
    from engine.html import data_uri

    words = _words(t)
    folder = out / FOLDER
    (no_regret,), transform, _ = _read(folder / "no_regret.tif")
    land = no_regret != NODATA
    frame = maps.frame_of(land, transform)
    options = _options(robust)
    new_uses = [(code, t.option(name), colour) for code, name, colour in options if code]
    keep = next(code for code, name, _ in options if name == "keep")
    classes = new_uses + [
        (keep, words["never"], NEVER_COLOUR),
        (CONTESTED, words["contested"], CONTESTED_COLOUR),
    ]
    # Where every variant keeps the current use the no-regret map says so; the other maps
    # leave those cells (and, per claim or axis, the cells at 0) blank, to show what varies.
    varies = land & (no_regret != keep)
    result = {
        "no_regret": maps.categorical_map(no_regret, classes, frame, ""),
        "modal": maps.categorical_map(
            _read(folder / "modal.tif")[0][0],
            [(code, t.option(name), colour) for code, name, colour in options],
            frame,
            "",
        ),
        "modal_share": maps.continuous_map(
            np.where(varies, _floats(_read(folder / "modal_share.tif")[0][0]), np.nan),
            frame,
            "",
            words["share"],
            "viridis",
        ),
        "uses": maps.continuous_map(
            np.where(varies, _read(folder / "uses.tif")[0][0], np.nan).astype(float),
            frame,
            "",
            words["uses"],
            "cividis",
        ),
    }
    frequency = _positive(_read(folder / "frequency.tif")[0])
    shown = {
        t.claim(c): frequency[k]
        for k, c in enumerate(robust["claims"])
        if np.nanmax(frequency[k], initial=0) > 0
    }
    if shown:
        result["frequency"] = maps.value_maps(shown, frame, words["share"])
    if robust["axes"] and (folder / "axis_change.tif").is_file():
        change = _positive(_read(folder / "axis_change.tif")[0])
        axes = {
            _axis_label(a, words): change[i] for i, a in enumerate(robust["axes"]) if a["pairs"]
        }
        if axes:
            result["axes"] = maps.value_maps(axes, frame, words["changed"])
    return {k: data_uri(v) for k, v in result.items()}


def _options(robust: dict) -> list[tuple[int, str, str]]:
    """(code, option name, colour) of the sweep's options, in code order."""
    return sorted((o["code"], o["name"], o["colour"]) for o in robust["options"])


def _words(t) -> dict:
    """The sweep page's words in the page's language (the ``sweep`` group of engine.i18n)."""
    return t.table["sweep"]


def _axis_label(axis: dict, words: dict) -> str:
    return words["sample"] if axis["sampled"] else axis["axis"]


# -- tables ---------------------------------------------------------------------------------------


def _tables(robust: dict, t) -> dict:
    provinces = robust["provinces"]
    total = provinces[-1]
    claims = [
        c
        for c in robust["claims"]
        if total["claims"][c]["no_regret_ha"] or total["claims"][c]["contested_ha"]
    ]
    words = _words(t)
    return {
        "provinces": [
            {
                "name": p["province"],
                "area": t.number(p["area_ha"], 0),
                "no_regret": t.number(p["no_regret_ha"], 0),
                "no_regret_share": t.percent(p["no_regret_ha"] / p["area_ha"], 1),
                "contested": t.number(p["contested_ha"], 0),
                "never": t.number(p["never_needed_ha"], 0),
            }
            for p in provinces
        ],
        "by_use": [
            (t.option(use), t.number(ha, 0))
            for use, ha in sorted(total["no_regret_by_use_ha"].items(), key=lambda kv: -kv[1])
        ],
        "claims": [t.claim(c) for c in claims],
        "claim_rows": [
            {
                "name": p["province"],
                "cells": [
                    (
                        t.number(p["claims"][c]["no_regret_ha"], 0),
                        t.number(p["claims"][c]["contested_ha"], 0),
                    )
                    for c in claims
                ],
            }
            for p in provinces
        ],
        "axes": [
            {
                "name": _axis_label(a, words),
                "pairs": a["pairs"],
                "share": t.percent(a["changed_share"], 1),
                "ha": t.number(a["changed_ha_per_step"], 0),
                "claims": _top_claims(a, t),
                "provinces": ", ".join(
                    f"{p['province']} {t.percent(p['changed_share'], 1)}"
                    for p in a["provinces"][:3]
                    if p["changed_share"] > 0
                ),
            }
            for a in robust["axes"]
        ],
    }


def _top_claims(axis: dict, t) -> str:
    moved = sorted(axis["claims_moved_ha_per_step"].items(), key=lambda kv: -kv[1])
    return ", ".join(f"{t.claim(c)} {t.number(ha, 0)} ha" for c, ha in moved[:3] if ha > 0)


# -- trade-offs -----------------------------------------------------------------------------------


def _zeroed(values, tolerance: float):
    """Values within the solver's tolerance of 0 are 0."""
    return values.where(values.abs() >= tolerance, 0.0)


def _tradeoffs(data, variants, meta: dict, t) -> list[dict]:
    """Per axis: the objective, the shortfall summed over the provinces and the mean
    provincial shadow price per claim, along the axis (averaged over the other axes)."""
    from engine.html import PRICE_ZERO

    ok = data[data["status"] != "error"]
    prov = ok[ok["zoning"] == "province"]
    if prov.empty:
        return []
    short = _zeroed(prov.groupby(["variant", "claim"])["shortfall_ha"].sum(), SHORTFALL_ZERO_HA)
    price = _zeroed(prov.groupby(["variant", "claim"])["shadow_price"].mean(), PRICE_ZERO)
    short, price = short.unstack("claim"), price.unstack("claim")
    good = variants[variants["status"] != "error"].set_index("variant")
    out = []
    for axis in meta["axes"]:
        col = f"axis_{axis['name']}"
        # Sample numbers are no quantity: the drawn values are plotted instead.
        if axis["name"] == SAMPLE_AXIS or col not in good or good[col].nunique() < 2:
            continue
        png = _axis_figure(axis, good[col], good["objective"], short, price, t)
        out.append({"name": axis["name"], "png": png, "sampled": "distribution" in axis})
    return out


def _labelled(values) -> bool:
    return bool(values) and not all(isinstance(v, (int, float)) for v in values)


def _axis_figure(axis: dict, by, objective, short, price, t) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from engine.html import data_uri

    drawn_from = (axis.get("distribution") or {}).get("values")
    # A drawn number: the variants as points along it. Drawn labels (a weighted list of
    # points) and the values of a grid axis: in their listed order.
    sampled = "distribution" in axis and not _labelled(drawn_from)
    if sampled:
        x = by.astype(float)
        order = None
    else:
        order = [lab for lab in (drawn_from or axis["labels"]) if lab in set(by)]
    words = _words(t)
    # One colour per claim in both panels, named once in a legend beside them.
    claims = sorted(set(short.columns) | set(price.columns))
    colours = dict(zip(claims, plt.get_cmap("tab20").colors))
    colours["v"] = "#33658a"
    fig, axs = plt.subplots(1, 3, figsize=(12, 3.3))
    drawn = {}
    titles = (words["panel_objective"], words["panel_shortfall"], words["panel_price"])
    for ax, title, frame in zip(axs, titles, (objective.to_frame("v"), short, price)):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(axis["name"], fontsize=8)
        ax.tick_params(labelsize=7)
        shown = [c for c in frame.columns if (frame[c].fillna(0) != 0).any()]
        if not shown:
            ax.text(0.5, 0.5, words["none"], ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
            continue
        for c in shown:
            if sampled:
                line = ax.scatter(x.reindex(frame.index), frame[c], s=8, color=colours[c])
            else:
                grouped = frame[c].groupby(by.reindex(frame.index))
                low, high = grouped.min().reindex(order), grouped.max().reindex(order)
                ax.fill_between(order, low, high, alpha=0.15, color=colours[c])
                (line,) = ax.plot(order, grouped.mean().reindex(order), "o-", color=colours[c])
            if c != "v":
                drawn[t.claim(c)] = line
    if drawn:
        fig.legend(drawn.values(), drawn.keys(), loc="center right", fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.8 if drawn else 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return data_uri(buf.getvalue())


def _without_folders(text: str) -> str:
    """A message with each absolute path cut to its file name: the page names no folder of
    the machine that ran the sweep."""
    return re.sub(r"(?<![\w.])/(?:[^\s/:;,'\"]+/)+", "", text)


def _gap(gap) -> str:
    """The certified gap; below the solver's tolerance (1e-9) it is 0."""
    if gap is None or np.isnan(gap):
        return ""
    return "0" if abs(gap) < GAP_ZERO else f"{gap:.0e}"


def _variant_rows(variants, meta: dict, t) -> list[list]:
    import pandas as pd

    rows = []
    for _, v in variants.iterrows():
        rows.append(
            {
                "index": int(v["variant_index"]),
                "id": v["variant"],
                "axes": [str(v[f"axis_{a['name']}"]) for a in meta["axes"]],
                "status": t.group("status", v["status"]),
                "objective": "" if pd.isna(v["objective"]) else t.number(v["objective"], 0),
                "gap": _gap(v["gap"]),
                "seconds": "" if pd.isna(v["seconds"]) else t.number(v["seconds"], 1),
                "error": "" if pd.isna(v["error"]) else _without_folders(v["error"]),
                "failed": v["status"] == "error",
            }
        )
    return rows
