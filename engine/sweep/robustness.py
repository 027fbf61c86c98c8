"""What holds across a sweep: maps and tables made from the counts of a :class:`Tally`.

Written to ``OUT/robustness/`` (Cloud-Optimised GeoTIFFs in EPSG:28992, like each variant's
``allocation.tif``):

- ``frequency.tif``: float32, a band per claim: the share of the variants in which the
  cell's use delivers to the claim;
- ``modal.tif``: uint8, the most frequent use (option code, colour table, category names in
  ``modal.tif.aux.xml``); ``modal_share.tif``: float32, the share of variants that give it;
- ``uses.tif``: uint8, the number of different uses the cell gets;
- ``no_regret.tif``: uint8, the option code of the cell's use where one new use holds in at
  least ``no_regret_share`` of the variants (spijtvrij, L229), the code of *keep* where the
  cell is never needed (kept in every variant), :data:`CONTESTED` elsewhere;
- ``axis_change.tif``: float32, a band per design axis: the share of that axis's pairs (one
  step apart on it, equal on the others) in which the cell's use changes;
- ``counts.tif``: the counts themselves, a band per option code (uint16, uint32 beyond
  65,534 variants), to combine sweeps or make other thresholds;
- ``robustness.json``: per province and claim the hectares that are no-regret, contested and
  never needed, per axis what it moves, and the legend of every map.

**Per claim** a cell is no-regret for the claim when the claim lands on it in at least
``no_regret_share`` of the variants (by whichever option), contested when it lands there in
some variants but fewer, never needed when in none; the three add up to the province's land.
**For the map** (all uses) a cell is no-regret when one use does: the use a planner can
reserve.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from engine.outputs import colormap, dumps_json, pam_categories, write_cog, write_file
from engine.sweep.tally import NODATA, Tally

__all__ = ["write_robustness", "summarise", "CONTESTED", "FOLDER", "needed"]

FOLDER = "robustness"
CONTESTED = 254  # no_regret.tif: neither no-regret nor never needed
CONTESTED_COLOUR = "#8c8c8c"
NODATA_FLOAT = -9999.0


def needed(share: float, n: int) -> int:
    """Variants a use must hold in to be no-regret: ``ceil(share * n)``, with 0.9 * 10 = 9
    (the product in floating point is 9.000000000000002)."""
    return max(1, math.ceil(round(share * n, 9)))


def summarise(tally: Tally, share: float) -> dict:
    """The per-cell maps of the counts (arrays on the grid, NODATA outside the land)."""
    n = tally.n
    land = tally.counts.sum(axis=0, dtype=np.uint32) > 0
    modal = np.argmax(tally.counts, axis=0).astype(np.uint8)  # ties: the lowest code
    modal_count = np.take_along_axis(tally.counts, modal[None].astype(np.intp), 0)[0]
    keep = tally.uses.keep
    no_regret = land & (modal != keep) & (modal_count >= needed(share, n))
    never = land & (tally.counts[keep] == n)
    classes = np.full(tally.shape, NODATA, dtype=np.uint8)
    classes[land] = CONTESTED
    classes[no_regret] = modal[no_regret]
    classes[never] = keep
    modal[~land] = NODATA
    uses = (tally.counts > 0).sum(axis=0).astype(np.uint8)
    uses[~land] = NODATA
    return {
        "land": land,
        "modal": modal,
        "modal_share": _share(modal_count, n, land),
        "uses": uses,
        "no_regret": classes,
    }


def _share(count: np.ndarray, n: int, land: np.ndarray) -> np.ndarray:
    out = np.full(count.shape, NODATA_FLOAT, dtype=np.float32)
    if n:
        out[land] = (count[land] / n).astype(np.float32)
    return out


def claim_counts(tally: Tally, k: int) -> np.ndarray:
    """Variants in which the cell's use delivers to claim ``k``."""
    codes = np.flatnonzero(tally.uses.serves[:, k])
    return tally.counts[codes].sum(axis=0, dtype=np.uint32)


def axis_share(tally: Tally, a: int, land: np.ndarray) -> np.ndarray:
    """The share of axis ``a``'s pairs in which the cell's use changes."""
    out = np.full(tally.shape, NODATA_FLOAT, dtype=np.float32)
    if tally.pairs[a]:
        out[land] = (tally.changes[a][land] / tally.pairs[a]).astype(np.float32)
    return out


def province_table(tally: Tally, maps: dict, share: float, names: list, cell_ha: float) -> list:
    """Per province (and the whole, last): hectares no-regret, contested and never needed,
    for all uses and per claim; no-regret hectares per use."""
    land = maps["land"]
    province = tally.province
    bins = tally.n_provinces

    def ha(mask):
        return np.bincount(province[mask & land], minlength=bins) * cell_ha

    area = ha(land)
    nr_class = maps["no_regret"]
    rows = {
        "no_regret_ha": ha((nr_class != CONTESTED) & (nr_class != tally.uses.keep)),
        "contested_ha": ha(nr_class == CONTESTED),
        "never_needed_ha": ha(nr_class == tally.uses.keep),
    }
    by_use = {
        name: ha(nr_class == code)
        for code, name in tally.uses.names.items()
        if code != tally.uses.keep
    }
    claims = {}
    least = needed(share, tally.n)
    for k, claim in enumerate(tally.uses.claims):
        count = claim_counts(tally, k)
        claims[claim] = {
            "no_regret_ha": ha(count >= least),
            "contested_ha": ha((count > 0) & (count < least)),
            "never_needed_ha": ha(count == 0),
        }
    out = []
    for p in [*range(bins), None]:  # None: the whole sweep area

        def pick(arr, p=p):
            return float(arr.sum() if p is None else arr[p])

        if p is not None and not area[p]:
            continue
        out.append(
            {
                "province": "totaal" if p is None else _name(names, p),
                "area_ha": pick(area),
                **{k: pick(v) for k, v in rows.items()},
                "no_regret_by_use_ha": {u: pick(v) for u, v in by_use.items() if pick(v)},
                "claims": {c: {k: pick(v) for k, v in d.items()} for c, d in claims.items()},
            }
        )
    return out


def _name(names: list, p: int) -> str:
    return names[p] if p < len(names) else "(buiten de provincies)"


def axis_table(tally: Tally, maps: dict, names: list, cell_ha: float, design: list) -> list:
    """Per design axis: how many pairs, the share of the land whose use changes per step,
    hectares per claim that move per step, and the provinces where it bites most."""
    land = maps["land"]
    cells = np.bincount(tally.province[land], minlength=tally.n_provinces)
    out = []
    for a, axis in enumerate(design):
        pairs = int(tally.pairs[a])
        moved = tally.moved[a]
        per_step = moved / pairs if pairs else np.zeros_like(moved, dtype=float)
        shares = [
            {"province": _name(names, p), "changed_share": float(per_step[p, -1] / cells[p])}
            for p in range(tally.n_provinces)
            if cells[p]
        ]
        shares.sort(key=lambda r: -r["changed_share"])
        out.append(
            {
                "axis": axis["name"],
                "sampled": bool(axis.get("sampled")),
                "pairs": pairs,
                "changed_share": float(per_step[:, -1].sum() / max(int(cells.sum()), 1)),
                "changed_ha_per_step": float(per_step[:, -1].sum() * cell_ha),
                "claims_moved_ha_per_step": {
                    c: float(per_step[:, k].sum() * cell_ha)
                    for k, c in enumerate(tally.uses.claims)
                },
                "provinces": shares,
            }
        )
    return out


def _cell_ha(transform: tuple) -> float:
    return abs(transform[0] * transform[4]) / 1e4


def write_robustness(tally: Tally, scenario, out: Path, names: list) -> dict:
    """All maps and robustness.json into ``OUT/robustness/``; returns the JSON content.
    ``names``: the province names of the grid's province index."""
    import rasterio

    share, design = scenario.no_regret_share, scenario.design
    variants = [v.id for v in scenario.variants if v.id in tally.included]
    folder = Path(out) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    if tally.transform is None:
        raise ValueError("no variant has finished: nothing to count yet")
    transform = rasterio.Affine(*tally.transform)
    cell_ha = _cell_ha(tally.transform)
    maps = summarise(tally, share)
    land = maps["land"]
    uses = tally.uses
    names_by_code = [uses.names.get(c, "") for c in range(uses.n_codes)]
    write_cog(
        folder / "counts.tif",
        list(tally.counts),
        dtype=np.dtype(tally.dtype).name,
        nodata=None,
        categorical=False,
        descriptions=[f"variants with {n or '(no option)'}" for n in names_by_code],
        tags={"variants": str(tally.n)},
        transform=transform,
    )
    _floats(
        folder / "frequency.tif",
        (_share(claim_counts(tally, k), tally.n, land) for k in range(len(uses.claims))),
        [f"share of variants delivering to {c}" for c in uses.claims],
        transform,
    )
    _categorical(folder / "modal.tif", maps["modal"], uses.colours, names_by_code, transform)
    _floats(
        folder / "modal_share.tif",
        [maps["modal_share"]],
        ["share of variants giving the most frequent use"],
        transform,
    )
    write_cog(
        folder / "uses.tif",
        [maps["uses"]],
        dtype="uint8",
        nodata=NODATA,
        categorical=True,
        descriptions=["number of different uses over the variants"],
        transform=transform,
    )
    nr_colours = {**uses.colours, uses.keep: "#f4f1e8", CONTESTED: CONTESTED_COLOUR}
    nr_names = names_by_code + [""] * (CONTESTED - len(names_by_code)) + ["contested"]
    nr_names[uses.keep] = "never needed"
    _categorical(folder / "no_regret.tif", maps["no_regret"], nr_colours, nr_names, transform)
    if design:
        _floats(
            folder / "axis_change.tif",
            (axis_share(tally, a, land) for a in range(len(design))),
            [f"share of {d['name']} pairs that change the use" for d in design],
            transform,
        )
    result = {
        "variants": tally.n,
        "variant_ids": variants,
        "no_regret_share": share,
        "no_regret_variants": needed(share, tally.n),
        "cell_ha": cell_ha,
        "claims": uses.claims,
        "options": [
            {"code": c, "name": n, "colour": uses.colours[c]} for c, n in uses.names.items()
        ],
        "provinces": province_table(tally, maps, share, names, cell_ha),
        "axes": axis_table(tally, maps, names, cell_ha, design),
        "legend": _legend(uses, design),
    }
    write_file(folder / "robustness.json", dumps_json(result))
    return result


def _floats(path: Path, bands, descriptions: list, transform) -> None:
    """Float32 bands (a generator is drawn one band at a time), one description each."""
    write_cog(
        path,
        bands,
        count=len(descriptions),
        dtype="float32",
        nodata=NODATA_FLOAT,
        categorical=False,
        descriptions=descriptions,
        transform=transform,
    )


def _categorical(path: Path, grid, colours: dict, names: list, transform) -> None:
    write_cog(
        path,
        [grid],
        dtype="uint8",
        nodata=NODATA,
        categorical=True,
        colormap=colormap(colours),
        band_tags={f"class_{c}": n for c, n in enumerate(names) if n},
        transform=transform,
    )
    write_file(path.with_name(path.name + ".aux.xml"), pam_categories(names))


def _legend(uses, design: list) -> dict:
    options = {str(c): n for c, n in uses.names.items()}
    return {
        "frequency.tif": {"bands": uses.claims, "values": "share of variants, 0..1"},
        "modal.tif": {"values": "option code", "classes": options},
        "modal_share.tif": {"values": "share of variants, 0..1"},
        "uses.tif": {"values": "number of different options"},
        "no_regret.tif": {
            "values": "option code of the no-regret use",
            "classes": {
                **options,
                str(uses.keep): "never needed (kept in every variant)",
                str(CONTESTED): "contested",
            },
        },
        "axis_change.tif": {
            "bands": [d["name"] for d in design],
            "values": "share of the axis's pairs that change the cell's use, 0..1",
        },
        "counts.tif": {"bands": "option code + 1", "values": "number of variants"},
    }
