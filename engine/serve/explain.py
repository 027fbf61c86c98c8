"""*Waarom hier?* Why a cell became what it became, from the LP's own certificate.

The optimum is described by one price per target row (DESIGN.md): a cell takes the allowed
option with the highest ``v[i,o] + sum_k c[o,k] * price(i,k)``, where ``price(i,k)`` adds the
prices of claim ``k`` over the zones the cell lies in (the nation, its province, a NOVEX area).
The explanation lists exactly those terms for one cell: the value of every option, which
rules forbid which options (with their line in the source), the rules that raise or lower a
value there, the margin to the runner-up and the prices that decided it.
"""

from __future__ import annotations

import numpy as np

from engine.errors import RuimtepuzzelError
from engine.rules import evaluate

__all__ = ["explain_cell", "OffTheLand"]


class OffTheLand(RuimtepuzzelError):
    """A point on the grid but outside the cells the run placed claims on."""


def _quote(reference: str | None) -> str | None:
    if not reference:
        return None
    from engine.source import cite

    try:
        return cite(reference).text
    except RuimtepuzzelError:  # a province's own rule may cite a document of its own
        return None


def _rule_entry(rule, t) -> dict:
    return {
        "rule": rule.id,
        "label": t.rule(rule.id),
        "kind": rule.kind,
        "source": rule.source,
        "quote": _quote(rule.source),
        "file": rule.file,
    }


def explain_cell(run, x: float, y: float, t) -> dict:
    """The explanation of the cell of ``run`` at RD (x, y), in the words of labels ``t``."""
    row, col = run.cell_at(x, y)
    prepared = run.prepared()
    compiled = prepared.compiled
    p, cells, config = compiled.problem, compiled.cells, compiled.config
    flat = row * run.shape[1] + col
    i = int(np.searchsorted(cells.flat, flat))
    if i >= cells.n or cells.flat[i] != flat:
        raise OffTheLand(
            f"x={x:.0f}, y={y:.0f} is not a land cell of run {run.id}: click inside the provinces"
        )
    one = cells.subset(np.array([i]))
    options = config.option_names
    allowed = p.allowed[i] if p.allowed is not None else np.ones(p.n_options, dtype=bool)

    # The price of each claim in this cell: the rows of every zone the cell lies in.
    prices = run.prices or [np.zeros_like(lo) for lo in p.lower]
    claim_price = np.zeros(p.n_claims)
    deciding = []
    for l, zoning in enumerate(p.zoning_names):
        z = int(p.zones[l, i])
        for k, claim in enumerate(p.claim_names):
            price = float(prices[l][z, k])
            claim_price[k] += price
            if price != 0.0:
                deciding.append({
                    "zoning": zoning, "zone": p.zone_names[l][z], "claim": claim,
                    "claim_label": t.claim(claim), "price": price,
                })  # fmt: skip
    value = p.value[i].astype(np.float64)
    bonus = p.contribution @ claim_price
    score = value + bonus

    # The rules that act on this cell.
    excluded: dict[str, list] = {o: [] for o in options}
    adjust = []
    province = int(one.layer("province")[0])
    codes = compiled.province_codes
    for rule in config.rules:
        if rule.province is not None and codes.get(rule.province) != province:
            continue
        if rule.kind in ("exclusions", "penalties") and bool(evaluate(rule.where, one)[0]):
            if rule.kind == "exclusions":
                for o in rule.options:
                    excluded[o].append(_rule_entry(rule, t))
            else:
                adjust.append({**_rule_entry(rule, t), "amount": -rule.amount,
                               "options": list(rule.options)})  # fmt: skip
        elif rule.kind == "ladders":
            for label, where, step in rule.steps:
                if bool(evaluate(where, one)[0]):
                    adjust.append({**_rule_entry(rule, t), "amount": step, "step": label,
                                   "options": list(rule.options)})  # fmt: skip
                    break
        elif (
            rule.kind == "reservations"
            and compiled.effects.reserved[i]
            and bool(evaluate(rule.where, one)[0])
        ):
            for o in options:
                if o not in rule.options:
                    excluded[o].append(_rule_entry(rule, t))
    # [compactness] lives in the national file: its minimum patch rules out land too.
    national_file = str(config.files[0] if config.files else config.path)
    for o, ruled_out in compiled.effects.min_patch.items():
        if i in ruled_out:
            source = config.compactness[o].source
            excluded[o].append({"rule": "min_patch", "label": t.rule("min_patch"),
                                "kind": "compactness", "source": source,
                                "quote": _quote(source), "file": national_file})  # fmt: skip
    for o, opt in zip(options, config.options.values()):
        if opt.province is not None and codes.get(opt.province) != province:
            excluded[o].append({"rule": f"option of {opt.province}", "label": t.option(o),
                                "kind": "province", "source": None, "quote": None,
                                "file": ""})  # fmt: skip

    code = int(run.allocation[row, col])
    chosen = next(o for o, opt in zip(options, config.options.values()) if opt.code == code)
    c = options.index(chosen)
    ranked = [
        o for o in np.argsort(-np.where(allowed, score, -np.inf), kind="stable") if allowed[o]
    ]
    runner = next((int(o) for o in ranked if o != c), None)
    names = {"province": None, "municipality": None}
    for layer in names:
        if cells.has(layer):
            labels = cells.names(layer)
            names[layer] = labels[int(one.layer(layer)[0])]
    return {
        "run": run.id,
        "x": float(x),
        "y": float(y),
        "row": row,
        "col": col,
        "province": names["province"],
        "municipality": names["municipality"],
        "option": chosen,
        "option_label": t.option(chosen),
        "runner_up": None if runner is None else options[runner],
        "runner_up_label": None if runner is None else t.option(options[runner]),
        "margin": None if runner is None else float(score[c] - score[runner]),
        "options": [
            {
                "option": o,
                "label": t.option(o),
                "colour": opt.colour,
                "allowed": bool(allowed[j]),
                "value": float(value[j]),
                "price_bonus": float(bonus[j]),
                "score": float(score[j]) if allowed[j] else None,
                "excluded_by": excluded[o],
            }
            for j, (o, opt) in enumerate(zip(options, config.options.values()))
        ],
        "adjustments": adjust,
        "prices": deciding,
    }
