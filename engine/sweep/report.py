"""The sweep report: trade-off plots over the axes and a table of the variants, one page."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np

from engine.outputs import write_file
from engine.sweep.driver import SweepError, collect_results
from engine.sweep.scenario import load_scenario, slug

__all__ = ["write_report"]

logger = logging.getLogger(__name__)


def _text(x) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x)


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


def _results(out: Path, meta: dict):
    """results.parquet; made from the variant folders when a killed sweep left none (the
    variants done so far) or a broken one."""
    import pandas as pd

    path = out / "results.parquet"
    if path.is_file():
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as err:  # pyarrow's errors derive from these
            logger.warning("%s cannot be read (%s); made again from the variant folders", path, err)
    collect_results(load_scenario(meta["scenario"]), out)
    return pd.read_parquet(path)


def write_report(out_dir) -> Path:
    """Trade-off plots over the axes and an HTML page, ``OUT/report/index.html``."""
    import html

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    out = Path(out_dir)
    meta = _read_meta(out)
    data = _results(out, meta)
    folder = out / "report"
    folder.mkdir(exist_ok=True)
    variants = data.drop_duplicates("variant").sort_values("variant_index")
    ok = data[data["status"] != "error"]
    prov = ok[ok["zoning"] == "province"]
    short = prov.groupby(["variant", "claim"])["shortfall_ha"].sum().unstack("claim")
    price = prov.groupby(["variant", "claim"])["shadow_price"].mean().unstack("claim")
    claims = [
        c for c in short.columns if (short[c].abs() > 0.5).any() or (price[c].abs() > 1e-9).any()
    ]
    figures = []

    def save(fig, name, caption):
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=90)
        plt.close(fig)
        write_file(folder / name, png.getvalue())
        figures.append((name, caption))

    fig, ax = plt.subplots(figsize=(max(6, 0.18 * len(variants)), 3.2))
    good = variants[variants["status"] != "error"]
    ax.bar(good["variant_index"], good["objective"], color="#4477aa")
    bad = variants[variants["status"] == "error"]
    for i in bad["variant_index"]:
        ax.axvline(i, color="#cc3311", lw=1)
    ax.set_xlabel("variant (index; red: failed)")
    ax.set_ylabel("objective")
    save(
        fig,
        "objective.png",
        "Objective (suitability realised minus shortfall penalties) per variant.",
    )
    for axis in meta["axes"]:
        col = f"axis_{axis['name']}"
        if col not in variants or len(axis["labels"]) < 2:
            continue
        order = [lab for lab in axis["labels"] if lab in set(variants[col])]
        by = variants.set_index("variant")[col]
        fig, axs = plt.subplots(1, 3, figsize=(13, 3.4))
        obj = good.groupby(col)["objective"].agg(["mean", "min", "max"]).reindex(order)
        axs[0].plot(order, obj["mean"], "o-", color="#4477aa")
        axs[0].fill_between(order, obj["min"], obj["max"], alpha=0.2, color="#4477aa")
        axs[0].set_title("objective (mean, range)")
        for c in claims:
            s = short[c].groupby(by.reindex(short.index)).mean().reindex(order)
            p = price[c].groupby(by.reindex(price.index)).mean().reindex(order)
            axs[1].plot(order, s, "o-", label=c)
            axs[2].plot(order, p, "o-", label=c)
        axs[1].set_title("shortfall, sum over provinces (ha)")
        axs[2].set_title("mean provincial shadow price")
        if claims:
            axs[2].legend(fontsize=7)
        for a in axs:
            a.set_xlabel(axis["name"])
        save(
            fig,
            f"axis-{slug(axis['name'])}.png",
            f"Trade-offs along <b>{html.escape(axis['name'])}</b>, averaged over the other axes.",
        )
    rows = []
    axis_cols = [f"axis_{a['name']}" for a in meta["axes"]]
    for _, v in variants.iterrows():
        cells = [
            v["variant_index"],
            f"<a href='../{html.escape(v['variant'])}/'>{html.escape(v['variant'])}</a>",
        ]
        cells += [html.escape(str(v[c])) for c in axis_cols]
        cells += [
            html.escape(str(v["status"])),
            "" if pd.isna(v["objective"]) else f"{v['objective']:,.1f}",
            "" if pd.isna(v["gap"]) else f"{v['gap']:.1e}",
            "" if pd.isna(v["seconds"]) else f"{v['seconds']:.1f}",
            html.escape(_text(v["warm_from"])),
            html.escape(_text(v["error"])),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = (
        ["#", "variant"]
        + [a["name"] for a in meta["axes"]]
        + ["status", "objective", "gap", "seconds", "warm start from", "error"]
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(meta["name"])}: sweep report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:80em}}table{{border-collapse:collapse;
font-size:85%}}td,th{{border:1px solid #ccc;padding:2px 6px}}img{{max-width:100%}}</style>
</head><body>
<h1>{html.escape(meta["name"])}</h1>
<p>Base config <code>{html.escape(meta["base"])}</code>, scenario
<code>{html.escape(meta["scenario"])}</code>; {len(variants)} variants
({int((variants["status"] == "error").sum())} failed). Results:
<a href="../results.parquet">results.parquet</a>, <a href="../results.csv">results.csv</a>.</p>
{"".join(f'<figure><img src="{n}"><figcaption>{c}</figcaption></figure>' for n, c in figures)}
<h2>Variants</h2>
<table><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in head)}</tr>
{"".join(rows)}</table>
</body></html>
"""
    page_path = folder / "index.html"
    write_file(page_path, page)
    return page_path
