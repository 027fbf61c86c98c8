"""The section validators: a config tree (:mod:`engine.config.reading`) -> :class:`Config`.

One function per section of the tree (assumptions, claims, options, suitability recipes,
rules, targets, zonings, provinces, layers), each on the :class:`Validator` of
:mod:`engine.config.validation`: every error names the file, the key, what is wrong and the
fix. Layer, class and province names are checked against the grid later
(:func:`engine.rules.check_layers`), when the grid is known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config.model import (
    Assumption,
    Claim,
    Compactness,
    Config,
    LayerSource,
    Novex,
    Option,
    Province,
    Recipe,
    Rule,
    Target,
    Term,
    Zoning,
)
from engine.config.reading import RULE_KINDS, TOP_SECTIONS, is_grid_path
from engine.config.units import FRACTION_UNITS, UNITS, VALUE_UNITS, to_ha
from engine.config.validation import Origins, Validator, did_you_mean

__all__ = ["validate", "TRANSFORMS"]

TRANSFORMS = ("value", "linear", "decay", "above", "below")


def _assumptions(v: Validator, tree: dict) -> dict:
    out = {}
    for name, a in v.table(tree.get("assumptions", {}), ("assumptions",)).items():
        key = ("assumptions", name)
        a = v.table(a, key)
        v.keys(a, key, ("value", "unit", "note", "source"), ("value", "unit", "note"))
        note = v.string(a["note"], key + ("note",))
        if "assumption" not in note.lower():
            raise v.err(
                key + ("note",),
                "an assumption's note must say it is an assumption",
                'start the note with "Assumption: ..."',
            )
        unit = v.string(a["unit"], key + ("unit",))
        _check_unit_text(v, unit, key + ("unit",))
        out[name] = Assumption(
            name, v.number(a["value"], key + ("value",)), unit, note, a.get("source")
        )
    return out


def _check_unit_text(v: Validator, unit: str, key: tuple):
    if unit in UNITS or unit in FRACTION_UNITS or unit in VALUE_UNITS:
        return
    if "/" in unit:
        num, den = unit.split("/", 1)
        if num in UNITS and den == "ha":
            return
    raise v.err(
        key,
        f"unknown unit {unit!r}",
        "use one of "
        + ", ".join(list(UNITS) + list(FRACTION_UNITS))
        + " or '<unit>/ha' (e.g. homes/ha, GWh/ha)",
    )


def _per_ha(v: Validator, ref, claim_unit: str, assumptions: dict, key: tuple) -> float:
    """A quantity of a claim per hectare (number, or an assumption's name) in claim units/ha."""
    cdim, cf = UNITS[claim_unit]
    if isinstance(ref, str):
        if ref not in assumptions:
            raise v.err(key, f"no assumption named {ref!r}", did_you_mean(ref, assumptions))
        a = assumptions[ref]
        if cdim == "area":
            if a.unit not in FRACTION_UNITS:
                raise v.err(
                    key,
                    f"assumption {ref!r} is in {a.unit!r}, a hectare claim needs a fraction",
                    f'give {ref} unit = "fraction"',
                )
            return a.value
        num = a.unit.split("/", 1)[0] if a.unit.endswith("/ha") else None
        if num not in UNITS or UNITS[num][0] != cdim:
            raise v.err(
                key,
                f"assumption {ref!r} is in {a.unit!r}, which does not measure {claim_unit} per ha",
                f'give it a unit like "{claim_unit}/ha"',
            )
        return a.value * UNITS[num][1] / cf
    return v.number(ref, key, minimum=0.0)


def _claims(v: Validator, tree_claims: dict, assumptions: dict, key0: tuple, province=None) -> dict:
    out = {}
    for name, c in v.table(tree_claims, key0).items():
        key = key0 + (name,)
        c = v.table(c, key)
        v.keys(
            c,
            key,
            ("unit", "reference", "shortfall_penalty", "description"),
            ("unit", "description"),
        )
        unit = v.string(c["unit"], key + ("unit",))
        if unit not in UNITS:
            raise v.err(key + ("unit",), f"unknown unit {unit!r}", did_you_mean(unit, UNITS))
        ref = c.get("reference")
        if UNITS[unit][0] == "area":
            if unit != "ha":
                raise v.err(key + ("unit",), "a land claim is counted in ha", 'use unit = "ha"')
            per_ha = 1.0
            if ref is not None:
                raise v.err(
                    key + ("reference",), "a claim in ha needs no reference", "remove the key"
                )
        else:
            if ref is None:
                raise v.err(
                    key + ("reference",),
                    f"missing: a claim in {unit} needs the assumption that turns it into hectares",
                    f'e.g. reference = "<an assumption in {unit}/ha>"',
                )
            per_ha = _per_ha(
                v, v.string(ref, key + ("reference",)), unit, assumptions, key + ("reference",)
            )
            if per_ha <= 0:
                raise v.err(
                    key + ("reference",),
                    "the reference must be > 0",
                    f"set assumption {ref} to a positive value",
                )
        pen = v.number(c.get("shortfall_penalty", 100.0), key + ("shortfall_penalty",), minimum=0.0)
        out[name] = Claim(
            name,
            unit,
            per_ha,
            ref,
            pen,
            v.string(c["description"], key + ("description",)),
            province,
        )
    return out


def _options(
    v: Validator, tree_opts: dict, claims: dict, assumptions: dict, key0: tuple, province=None
) -> dict:
    out = {}
    for name, o in v.table(tree_opts, key0).items():
        key = key0 + (name,)
        o = v.table(o, key)
        v.keys(
            o,
            key,
            ("code", "colour", "description", "tags", "contributes"),
            ("code", "colour", "description", "contributes"),
        )
        code = int(v.number(o["code"], key + ("code",), minimum=0, maximum=254))
        colour = v.string(o["colour"], key + ("colour",))
        if (
            len(colour) != 7
            or colour[0] != "#"
            or any(ch not in "0123456789abcdefABCDEF" for ch in colour[1:])
        ):
            raise v.err(key + ("colour",), f"{colour!r} is not a colour", 'write "#rrggbb"')
        tags = o.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise v.err(key + ("tags",), "expected a list of names", 'e.g. tags = ["building"]')
        contrib = {}
        for k, val in v.table(o["contributes"], key + ("contributes",)).items():
            if k not in claims:
                raise v.err(key + ("contributes", k), "no such claim", did_you_mean(k, claims))
            per = _per_ha(v, val, claims[k].unit, assumptions, key + ("contributes", k))
            contrib[k] = per / claims[k].per_ha
        out[name] = Option(
            name,
            code,
            colour,
            v.string(o["description"], key + ("description",)),
            tuple(tags),
            contrib,
            province,
        )
    return out


def _recipes(v: Validator, tree_suit: dict, options: dict, key0: tuple) -> dict:
    out = {}
    for name, r in v.table(tree_suit, key0).items():
        key = key0 + (name,)
        if name not in options:
            raise v.err(
                key, "a recipe for an option that does not exist", did_you_mean(name, options)
            )
        if name == "keep":
            raise v.err(
                key, "keep is the reference (value 0) and has no recipe", "remove this recipe"
            )
        r = v.table(r, key)
        v.keys(r, key, ("terms", "conversion_cost", "land_take_share", "note"))
        terms = []
        listed = r.get("terms", [])
        if not isinstance(listed, list):
            raise v.err(
                key + ("terms",),
                "expected a list of terms",
                'write terms = [{ layer = "...", transform = "value", weight = 1.0 }]',
            )
        for j, t in enumerate(listed):
            tk = key + (f"terms[{j}]",)
            t = v.table(t, tk)
            v.keys(
                t,
                tk,
                ("layer", "transform", "weight", "low", "high", "scale", "threshold"),
                ("layer", "transform", "weight"),
            )
            tr = v.string(t["transform"], tk + ("transform",))
            if tr not in TRANSFORMS:
                raise v.err(
                    tk + ("transform",), f"unknown transform {tr!r}", did_you_mean(tr, TRANSFORMS)
                )
            need = {
                "linear": ("low", "high"),
                "decay": ("scale",),
                "above": ("threshold",),
                "below": ("threshold",),
                "value": (),
            }[tr]
            for n in need:
                if n not in t:
                    raise v.err(
                        tk + (n,),
                        f"missing: transform {tr!r} needs {', '.join(need)}",
                        f"add {n} = <number>",
                    )
            vals = {
                n: v.number(t[n], tk + (n,))
                for n in ("low", "high", "scale", "threshold")
                if n in t
            }
            if tr == "linear" and vals["low"] == vals["high"]:
                raise v.err(tk + ("high",), "low and high are equal", "make them differ")
            if tr == "decay" and vals["scale"] <= 0:
                raise v.err(tk + ("scale",), "scale must be > 0", "use a distance in metres")
            terms.append(
                Term(
                    v.string(t["layer"], tk + ("layer",)),
                    tr,
                    v.number(t["weight"], tk + ("weight",)),
                    **vals,
                )
            )
        costs = dict(v.table(r.get("conversion_cost", {}), key + ("conversion_cost",)))
        default = v.number(costs.pop("default", 0.0), key + ("conversion_cost", "default"))
        costs = {c: v.number(x, key + ("conversion_cost", c)) for c, x in costs.items()}
        share = v.number(
            r.get("land_take_share", 1.0), key + ("land_take_share",), minimum=0.0, maximum=1.0
        )
        out[name] = Recipe(name, tuple(terms), costs, default, share)
    return out


def _where(v: Validator, node, key: tuple) -> dict:
    """Validate a condition tree (structure only; layers are checked against the grid later)."""
    node = v.table(node, key)
    if "all" in node or "any" in node:
        op = "all" if "all" in node else "any"
        v.keys(node, key, (op,))
        items = node[op]
        if not isinstance(items, list) or not items:
            raise v.err(
                key + (op,),
                "expected a non-empty list of conditions",
                f"{op} = [{{ layer = ... }}, ...]",
            )
        return {op: [_where(v, c, key + (f"{op}[{j}]",)) for j, c in enumerate(items)]}
    if "not" in node:
        v.keys(node, key, ("not",))
        return {"not": _where(v, node["not"], key + ("not",))}
    v.keys(node, key, ("layer", "min", "max", "in"), ("layer",))
    out = {"layer": v.string(node["layer"], key + ("layer",))}
    for b in ("min", "max"):
        if b in node:
            out[b] = v.number(node[b], key + (b,))
    if "in" in node:
        names = node["in"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise v.err(key + ("in",), "expected a list of names", 'in = ["built_up"]')
        if "min" in out or "max" in out:
            raise v.err(
                key + ("in",), "use either in or min/max, not both", "split it with all = [...]"
            )
        out["in"] = list(names)
    return out


def _rule_options(v: Validator, r: dict, key: tuple, options: dict) -> tuple[str, ...]:
    if "options" not in r and "tags" not in r:
        raise v.err(
            key + ("options",),
            "missing: a rule names the options it acts on",
            'add options = ["housing_edge"] or tags = ["building"]',
        )
    names: list[str] = []
    for o in v.strings(r.get("options", []), key + ("options",)):
        if o not in options:
            raise v.err(key + ("options",), f"no option named {o!r}", did_you_mean(o, options))
        names.append(o)
    all_tags = sorted({t for opt in options.values() for t in opt.tags})
    for t in v.strings(r.get("tags", []), key + ("tags",)):
        if t not in all_tags:
            raise v.err(key + ("tags",), f"no option has tag {t!r}", did_you_mean(t, all_tags))
        names.extend(o for o, opt in options.items() if t in opt.tags)
    return tuple(dict.fromkeys(names))


def _value(
    v: Validator, node, key: tuple, assumptions: dict, *, minimum=None, maximum=None
) -> float:
    """A number, or the name of an assumption."""
    if isinstance(node, str):
        if node not in assumptions:
            raise v.err(key, f"no assumption named {node!r}", did_you_mean(node, assumptions))
        val = assumptions[node].value
        return v.number(val, ("assumptions", node, "value"), minimum=minimum, maximum=maximum)
    return v.number(node, key, minimum=minimum, maximum=maximum)


def _rules(
    v: Validator,
    rules_tree: dict,
    options: dict,
    claims: dict,
    assumptions: dict,
    key0: tuple,
    province=None,
) -> list:
    out = []
    common = ("source", "note", "options", "tags", "enabled")
    allowed = {
        "exclusions": common + ("where",),
        "penalties": common + ("where", "amount"),
        "ladders": common + ("steps", "otherwise"),
        "reservations": common + ("where", "share", "order", "group_by", "claim"),
    }
    for kind in RULE_KINDS:
        for rid, r in v.table(rules_tree.get(kind, {}), key0 + (kind,)).items():
            key = key0 + (kind, rid)
            r = v.table(r, key)
            v.keys(r, key, allowed[kind])
            enabled = r.get("enabled", True)
            if not isinstance(enabled, bool):
                raise v.err(
                    key + ("enabled",),
                    f"expected true or false, got {enabled!r}",
                    "enabled = false switches the rule off",
                )
            source = v.source(r, key)
            if not enabled:
                continue
            opts = _rule_options(v, r, key, options)
            kw: dict[str, Any] = {}
            if kind != "ladders":
                if "where" not in r:
                    raise v.err(key + ("where",), "missing", 'add where = { layer = "..." }')
                kw["where"] = _where(v, r["where"], key + ("where",))
            if kind == "penalties":
                if "amount" not in r:
                    raise v.err(
                        key + ("amount",), "missing", "add amount = <value lost per ha, > 0>"
                    )
                kw["amount"] = _value(v, r["amount"], key + ("amount",), assumptions)
            if kind == "ladders":
                steps = r.get("steps")
                if not isinstance(steps, list) or not steps:
                    raise v.err(
                        key + ("steps",),
                        "expected a non-empty list of steps",
                        'steps = [{ label = "...", where = {...}, value = 0.5 }]',
                    )
                parsed = []
                for j, s in enumerate(steps):
                    sk = key + (f"steps[{j}]",)
                    s = v.table(s, sk)
                    v.keys(s, sk, ("label", "where", "value"), ("where", "value"))
                    parsed.append(
                        (
                            str(s.get("label", f"step {j + 1}")),
                            _where(v, s["where"], sk + ("where",)),
                            _value(v, s["value"], sk + ("value",), assumptions),
                        )
                    )
                kw["steps"] = tuple(parsed)
                kw["otherwise"] = _value(
                    v, r.get("otherwise", 0.0), key + ("otherwise",), assumptions
                )
            if kind == "reservations":
                for n in ("share", "order", "claim"):
                    if n not in r:
                        raise v.err(
                            key + (n,),
                            "missing",
                            {
                                "share": "add share = 0.05 or the name of an assumption",
                                "order": 'add order = { layer = "elevation", ascending = true }',
                                "claim": 'add claim = "water_storage"',
                            }[n],
                        )
                kw["share"] = _value(
                    v, r["share"], key + ("share",), assumptions, minimum=0.0, maximum=1.0
                )
                order = v.table(r["order"], key + ("order",))
                v.keys(order, key + ("order",), ("layer", "ascending"), ("layer",))
                kw["order_layer"] = v.string(order["layer"], key + ("order", "layer"))
                kw["ascending"] = v.boolean(
                    order.get("ascending", True), key + ("order", "ascending")
                )
                kw["group_by"] = v.string(r.get("group_by", "province"), key + ("group_by",))
                claim = v.string(r["claim"], key + ("claim",))
                if claim not in claims:
                    raise v.err(
                        key + ("claim",), f"no claim named {claim!r}", did_you_mean(claim, claims)
                    )
                kw["claim"] = claim
                bad = [o for o in opts if claim not in options[o].contributes]
                if bad:
                    raise v.err(
                        key + ("options",),
                        f"option {bad[0]!r} does not deliver claim {claim!r}",
                        "reserve land only for options that serve it",
                    )
            out.append(
                Rule(
                    kind=kind,
                    id=rid,
                    source=source,
                    note=str(r.get("note", "")),
                    options=opts,
                    province=province,
                    file=v.origins.file(key),
                    **kw,
                )
            )
    return out


def _target(
    v: Validator, t: dict, key: tuple, claim: Claim, assumptions: dict, rules: list
) -> Target:
    t = v.table(t, key)
    v.keys(t, key, ("lower", "upper", "unit", "source", "sum_of", "note", "rule"))
    source = v.source(t, key)
    # A figure the source gives in parts cites each part; tests check that they add up.
    parts = t.get("sum_of", [])
    if not isinstance(parts, list):
        raise v.err(
            key + ("sum_of",),
            f"expected a list of line references, got {parts!r}",
            'write sum_of = ["L5792", "L5794"]',
        )
    sum_of = tuple(v.reference(ref, key + ("sum_of", i)) for i, ref in enumerate(parts))
    if "rule" in t:
        rid = v.string(t["rule"], key + ("rule",))
        res = [r.id for r in rules if r.kind == "reservations"]
        if rid not in res:
            raise v.err(
                key + ("rule",),
                f"no reservation rule {rid!r} (or it is disabled)",
                did_you_mean(rid, res) if res else "add it to rules.toml reservations",
            )
        return Target(claim.name, None, None, "ha", source, str(t.get("note", "")), rule=rid)
    if "lower" not in t and "upper" not in t:
        raise v.err(
            key + ("lower",), "missing: a target needs lower and/or upper", "add lower = <amount>"
        )
    if "unit" not in t:
        raise v.err(key + ("unit",), "missing", f'add unit = "{claim.unit}"')
    unit = v.string(t["unit"], key + ("unit",))
    if unit not in UNITS:
        raise v.err(key + ("unit",), f"unknown unit {unit!r}", did_you_mean(unit, UNITS))
    if UNITS[unit][0] not in (UNITS[claim.unit][0], "area"):
        raise v.err(
            key + ("unit",),
            f"claim {claim.name!r} is measured in {claim.unit}, not {unit}",
            f'use unit = "{claim.unit}" (or "ha" for claim hectares)',
        )
    vals = {}
    for b in ("lower", "upper"):
        if b in t:
            amount = _value(v, t[b], key + (b,), assumptions, minimum=0.0)
            vals[b] = to_ha(amount, unit, claim)
    if "lower" in vals and "upper" in vals and vals["lower"] > vals["upper"]:
        raise v.err(key + ("upper",), "upper is below lower", "raise upper or lower lower")
    return Target(
        claim.name,
        vals.get("lower"),
        vals.get("upper"),
        unit,
        source,
        str(t.get("note", "")),
        sum_of=sum_of,
    )


def _targets(
    v: Validator, tree_t: dict, key0: tuple, claims: dict, assumptions: dict, rules: list
) -> dict:
    out = {}
    for name, t in v.table(tree_t, key0).items():
        if name not in claims:
            raise v.err(key0 + (name,), "no such claim", did_you_mean(name, claims))
        out[name] = _target(v, t, key0 + (name,), claims[name], assumptions, rules)
    return out


def _zonings(v: Validator, tree: dict, claims: dict, assumptions: dict, rules: list) -> dict:
    out = {}
    for zid, z in v.table(tree, ("zonings",)).items():
        key = ("zonings", zid)
        z = v.table(z, key)
        v.keys(z, key, ("name", "layer", "source", "note", "targets"), ("layer", "targets"))
        zones = v.table(z["targets"], key + ("targets",))
        if not zones:
            raise v.err(key + ("targets",), "empty", "add [zonings.<id>.targets.<zone>.<claim>]")
        targets = {
            str(zone): _targets(v, t, key + ("targets", zone), claims, assumptions, rules)
            for zone, t in zones.items()
        }
        out[zid] = Zoning(
            zid,
            str(z.get("name", zid)),
            v.string(z["layer"], key + ("layer",)),
            v.source(z, key),
            str(z.get("note", "")),
            targets,
        )
    return out


def validate(tree: dict, scope: str, origins: Origins, path: Path) -> Config:
    """The whole tree -> :class:`Config`, or the first :class:`ConfigError` found."""
    v = Validator(origins)
    # Overrides can reach any table; what no section reads must not pass unnoticed.
    v.keys(tree, (), TOP_SECTIONS)
    v.keys(v.table(tree.get("rules", {}), ("rules",)), ("rules",), RULE_KINDS)
    run = v.table(tree["run"], ("run",))
    v.keys(
        run,
        ("run",),
        ("name", "grid", "resolution", "targets", "claims", "rules", "suitability", "provinces"),
    )
    resolution = v.integer(run.get("resolution", 250), ("run", "resolution"), minimum=1)
    mode = v.choice(run.get("targets", "elastic"), ("run", "targets"), ("elastic", "hard"))
    if "name" in run:
        v.string(run["name"], ("run", "name"))
    if "grid" in run:
        v.string(run["grid"], ("run", "grid"))
    assumptions = _assumptions(v, tree)
    claims = _claims(v, tree.get("claims", {}), assumptions, ("claims",))
    if not claims:
        raise v.err(("claims",), "no claims", "define at least one [claims.<name>]")
    options = _options(v, tree.get("options", {}), claims, assumptions, ("options",))
    if "keep" not in options:
        raise v.err(
            ("options", "keep"),
            "missing: every cell may keep its current use",
            "add [options.keep] with contributes = {}",
        )
    # Province files may add claims, options and recipes; collect them first.
    provinces_tree = tree.get("provinces", {})
    suitability = dict(v.table(tree.get("suitability", {}), ("suitability",)))
    for slug, p in provinces_tree.items():
        key = ("provinces", slug)
        extra_claims = _claims(v, p.get("claims", {}), assumptions, key + ("claims",), slug)
        for name in extra_claims:
            if name in claims:
                raise v.err(
                    key + ("claims", name),
                    "a claim of that name exists already",
                    "give the province's claim its own name",
                )
        claims.update(extra_claims)
        extra_opts = _options(
            v, p.get("options", {}), claims, assumptions, key + ("options",), slug
        )
        for name in extra_opts:
            if name in options:
                raise v.err(
                    key + ("options", name),
                    "an option of that name exists already",
                    "give the province's option its own name",
                )
        options.update(extra_opts)
    codes: dict[int, str] = {}
    for name, o in options.items():
        if o.code in codes:
            raise v.err(
                ("options", name, "code"),
                f"code {o.code} is used by {codes[o.code]!r} too",
                "give every option its own code",
            )
        codes[o.code] = name
    recipes = _recipes(v, suitability, options, ("suitability",))
    for slug, p in provinces_tree.items():
        recipes.update(
            _recipes(v, p.get("suitability", {}), options, ("provinces", slug, "suitability"))
        )
    rules = _rules(v, tree.get("rules", {}), options, claims, assumptions, ("rules",))
    national_targets = _targets(
        v, tree.get("targets", {}), ("targets",), claims, assumptions, rules
    )
    provinces = {}
    for slug, p in provinces_tree.items():
        key = ("provinces", slug)
        p = v.table(p, key)
        v.keys(
            p,
            key,
            ("province", "targets", "shares", "novex", "claims", "options", "suitability")
            + RULE_KINDS,
        )
        meta = v.table(p.get("province", {}), key + ("province",))
        v.keys(meta, key + ("province",), ("name", "code", "national"), ("name", "code"))
        rules.extend(
            _rules(
                v,
                {k: p.get(k, {}) for k in RULE_KINDS},
                options,
                claims,
                assumptions,
                key,
                province=slug,
            )
        )
        targets = _targets(v, p.get("targets", {}), key + ("targets",), claims, assumptions, rules)
        shares_tree = dict(v.table(p.get("shares", {}), key + ("shares",)))
        basis = str(shares_tree.pop("basis", ""))
        shares = {}
        for claim, s in shares_tree.items():
            sk = key + ("shares", claim)
            if claim not in claims:
                raise v.err(sk, "no such claim", did_you_mean(claim, claims))
            if claim not in national_targets or national_targets[claim].rule:
                raise v.err(
                    sk,
                    f"there is no national target of {claim!r} to share",
                    "add it to national.toml [targets] or give the province its own "
                    "target in [targets]",
                )
            if claim in targets:
                raise v.err(
                    sk,
                    f"the province has its own {claim!r} target as well",
                    "keep either the share or the target",
                )
            shares[claim] = v.number(s, sk, minimum=0.0, maximum=1.0)
        if shares and not basis:
            raise v.err(
                key + ("shares", "basis"),
                "missing: a share is a scenario choice",
                'say on what it rests, e.g. basis = "share of land area"',
            )
        novex = {}
        for nid, n in v.table(p.get("novex", {}), key + ("novex",)).items():
            nk = key + ("novex", nid)
            n = v.table(n, nk)
            v.keys(
                n,
                nk,
                ("name", "source", "note", "municipalities", "targets"),
                ("name", "municipalities"),
            )
            munis = n["municipalities"]
            if (
                not isinstance(munis, list)
                or not munis
                or not all(isinstance(m, str) for m in munis)
            ):
                raise v.err(
                    nk + ("municipalities",),
                    "expected a list of municipality names",
                    'municipalities = ["Utrecht", ...]',
                )
            novex[nid] = Novex(
                nid,
                v.string(n["name"], nk + ("name",)),
                v.source(n, nk),
                str(n.get("note", "")),
                tuple(munis),
                _targets(v, n.get("targets", {}), nk + ("targets",), claims, assumptions, rules),
                slug,
            )
        provinces[slug] = Province(
            slug,
            v.string(meta["name"], key + ("province", "name")),
            v.string(meta["code"], key + ("province", "code")),
            Path(p.get("__path__", "")),
            targets,
            shares,
            basis,
            novex,
        )
    # Province-specific claims need a target in their province.
    for name, c in claims.items():
        if c.province and name not in provinces[c.province].targets:
            raise v.err(
                ("provinces", c.province, "targets", name),
                f"the province adds claim {name!r} but gives it no target",
                f"add [targets.{name}]",
            )
    for claim in national_targets:
        total = sum(p.shares.get(claim, 0.0) for p in provinces.values())
        if total > 1.0 + 1e-6:
            raise v.err(
                ("provinces", "*", "shares", claim),
                f"the provinces' shares of {claim!r} add up to {total:.4f} > 1",
                "lower the shares so they sum to 1",
            )
    for name in options:
        if name != "keep" and name not in recipes:
            raise v.err(
                ("suitability", name),
                "missing: every option but keep needs a recipe",
                f"add [{name}] with terms and conversion_cost to suitability.toml",
            )
    layers = _layers(v, tree, path)
    compactness = _compactness(v, tree.get("compactness", {}), options, claims, assumptions)
    zonings = _zonings(v, tree.get("zonings", {}), claims, assumptions, rules)
    if scope != "national" and scope not in provinces:
        raise v.err(
            ("province", "name"),
            f"{scope!r} is not a province of the national file",
            did_you_mean(scope, provinces),
        )
    return Config(
        path=path,
        name=str(run.get("name", path.stem)) if scope == "national" else scope,
        scope=scope,
        grid=_grid(run.get("grid", "nl"), path),
        resolution=resolution,
        hard_targets=(mode == "hard"),
        assumptions=assumptions,
        claims=claims,
        options=options,
        recipes=recipes,
        rules=rules,
        national_targets=national_targets,
        provinces=provinces,
        layers=layers,
        zonings=zonings,
        compactness=compactness,
    )


def _grid(grid: str, path: Path) -> str:
    """A shipped grid's name as it is; a grid file or folder relative to the config, not to
    wherever the run is started."""
    return str((path.parent / grid).resolve()) if is_grid_path(grid) else grid


def _layers(v: Validator, tree: dict, path: Path) -> dict:
    """``[layers.NAME]``: base layers replaced by another dataset, with the reason."""
    layers = {}
    for lname, spec in v.table(tree.get("layers", {}), ("layers",)).items():
        lk = ("layers", lname)
        spec = v.table(spec, lk)
        v.keys(
            spec,
            lk,
            ("path", "reason", "dataset", "location", "band", "max_nodata_share"),
            ("path", "reason", "dataset"),
        )
        reason = v.string(spec["reason"], lk + ("reason",)).strip()
        if not reason:
            raise v.err(
                lk + ("reason",),
                "empty: a deviation from the base data needs a reason (pas toe of leg uit, L11371)",
                "say why this dataset is used",
            )
        rel = v.string(spec["path"], lk + ("path",))
        band = v.integer(spec["band"], lk + ("band",), minimum=1) if "band" in spec else None
        share = v.number(
            spec.get("max_nodata_share", 0.05), lk + ("max_nodata_share",), minimum=0.0, maximum=1.0
        )
        layers[lname] = LayerSource(
            lname,
            (path.parent / rel).resolve(),
            reason,
            v.string(spec["dataset"], lk + ("dataset",)),
            v.string(spec.get("location", rel), lk + ("location",)),
            band,
            share,
        )
    return layers


COMPACTNESS_FIGURES = {"min_patch_ha": "ha", "boundary_penalty": "value/km"}


def _compactness(v: Validator, tree: dict, options: dict, claims: dict, assumptions: dict) -> dict:
    """``[compactness.<option or claim>]``: option name -> :class:`Compactness`. An entry for a
    claim applies to every option that delivers it. Each figure is a number (then the entry
    cites its source line) or the name of an assumption of the unit the figure is in."""
    out: dict = {}
    for entry, c in v.table(tree, ("compactness",)).items():
        key = ("compactness", entry)
        c = v.table(c, key)
        v.keys(c, key, ("min_patch_ha", "boundary_penalty", "source", "note", "enabled"))
        if not v.boolean(c.get("enabled", True), key + ("enabled",)):
            continue
        names = _compact_options(v, entry, key, options, claims)
        if not any(f in c for f in COMPACTNESS_FIGURES):
            raise v.err(
                key + ("min_patch_ha",),
                "missing: an entry needs min_patch_ha and/or boundary_penalty",
                'add min_patch_ha = "<an assumption in ha>" or boundary_penalty = ...',
            )
        source = v.reference(c["source"], key + ("source",)) if "source" in c else None
        figures, named = {}, []
        for f, unit in COMPACTNESS_FIGURES.items():
            node = c.get(f, 0.0)
            if isinstance(node, str):
                a = assumptions.get(node)
                if a is None:
                    raise v.err(
                        key + (f,), f"no assumption named {node!r}", did_you_mean(node, assumptions)
                    )
                if a.unit != unit:
                    raise v.err(
                        key + (f,),
                        f"assumption {node!r} is in {a.unit!r}, {f} is in {unit}",
                        f'give {node} unit = "{unit}" or name another assumption',
                    )
                named.append(node)
            elif f in c and source is None:
                raise v.err(
                    key + (f,),
                    "a figure needs its source line or a named assumption",
                    f'cite source = "L1418" (a line asking for clustering) or name an '
                    f"assumption in {unit}",
                )
            figures[f] = _value(v, node, key + (f,), assumptions, minimum=0.0)
        for name in names:
            if name in out:
                raise v.err(
                    key,
                    f"option {name!r} is configured under compactness.{out[name].entry} too",
                    "configure each option once (an option, or one claim it delivers)",
                )
            out[name] = Compactness(
                name,
                figures["min_patch_ha"],
                figures["boundary_penalty"],
                source,
                tuple(named),
                entry,
                str(c.get("note", "")),
            )
    return out


def _compact_options(v: Validator, entry: str, key: tuple, options: dict, claims: dict) -> list:
    if entry in options:
        names = [entry]
    elif entry in claims:
        names = [o for o, opt in options.items() if entry in opt.contributes]
    else:
        raise v.err(
            key, "neither an option nor a claim", did_you_mean(entry, list(options) + list(claims))
        )
    neutral = [o for o in names if not options[o].contributes]
    if neutral:
        raise v.err(
            key,
            f"option {neutral[0]!r} delivers no claim: the other options cluster against it",
            "configure the options that deliver claims",
        )
    return names
