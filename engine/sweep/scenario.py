"""The scenario file: a base config and variant axes, read into variants in a fixed order.

A scenario file goes through the validation layer of the configs
(:mod:`engine.config.validation`): unknown keys are refused with "did you mean ...", every
value is checked, and every key a variant sets must exist in the base config (or be a new
entry the config's schema allows), before any variant runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.config.validation import (
    ConfigError,
    UnknownKeyError,
    Validator,
    did_you_mean,
    read_toml,
)
from engine.sweep.sampling import PARAMETER_KEYS, Distribution, read_distribution, uniforms

__all__ = ["Scenario", "Variant", "ScenarioError", "load_scenario", "variant_key"]

SECTIONS = ("sweep", "axis", "variant")
HEAD_KEYS = (
    "name",
    "base",
    "grid",
    "resolution",
    "combine",
    "warm_start",
    "method",
    "set",
    "samples",
    "seed",
    "no_regret_share",
)
AXIS_KEYS = ("name", "key", "values", "labels", "points") + PARAMETER_KEYS
SAMPLE_AXIS = "sample"  # the design axis of a sampled sweep: sample 0, 1, ...
#: Default share of variants in which a cell must get the same new use to be no-regret.
NO_REGRET_SHARE = 0.9
POINT_KEYS = ("label", "set")
VARIANT_KEYS = ("id", "warm_from", "set")
METHODS = ("auto", "fast", "highs", "cbc")  # engine.solve.METHODS, without importing the solver


class ScenarioError(ConfigError):
    """A scenario file error: file, key, what is wrong, and the fix."""


@dataclass(frozen=True)
class Variant:
    id: str
    index: int
    axes: dict  # axis name -> label
    overrides: dict  # dotted key -> value
    warm_from: str | None = None
    # The variant's step on each design axis (Scenario.design): variants one step apart on
    # one axis and equal on the others are the pairs that show what that axis moves.
    position: tuple = ()


@dataclass
class Scenario:
    path: Path
    name: str
    base: Path
    grid: str | None
    resolution: float | None
    method: str
    warm_start: bool
    axes: list[dict]  # [{"name", "labels": [...]}] in file order
    variants: list[Variant] = field(default_factory=list)
    inputs_sha: str | None = None
    # The axes a variant's position counts steps on: a grid's axes; a sampled sweep's sample
    # number and its list axes; none for a list of variants.
    design: list[dict] = field(default_factory=list)  # [{"name", "size", "sampled"}]
    samples: int | None = None
    seed: int | None = None
    no_regret_share: float = NO_REGRET_SHARE

    def describe(self) -> dict:
        return {
            "name": self.name,
            "scenario": str(self.path),
            "base": str(self.base),
            "grid": self.grid,
            "resolution": self.resolution,
            "method": self.method,
            "warm_start": self.warm_start,
            "axes": self.axes,
            "design": self.design,
            "samples": self.samples,
            "seed": self.seed,
            "no_regret_share": self.no_regret_share,
            "variants": [
                {
                    "id": v.id,
                    "index": v.index,
                    "axes": v.axes,
                    "overrides": v.overrides,
                    "warm_from": v.warm_from,
                    "position": list(v.position),
                }
                for v in self.variants
            ],
        }


def _label(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def slug(text: str) -> str:
    """A variant id part: letters, digits, '.', '_' and '-' only."""
    out = re.sub(r"[^A-Za-z0-9._]+", "-", str(text)).strip("-.")
    return out or "x"


def _overrides(v: Validator, node, key: tuple) -> dict:
    """A ``set = { "dotted.key" = value }`` table."""
    return dict(v.table(node, key))


@dataclass(frozen=True)
class Axis:
    """An axis as read: its points (label, overrides), or a distribution to draw from."""

    name: str
    key: tuple  # where it is in the file, for messages
    points: list
    distribution: Distribution | None = None


def _read_points(v: Validator, spec: dict, key: tuple) -> list[tuple[str, dict]]:
    """An axis's ``points = [...]``, or its ``key`` and ``values`` (and ``labels``)."""
    if "points" in spec:
        extra = [k for k in ("key", "values", "labels") if k in spec]
        if extra:
            raise v.err(
                key + (extra[0],),
                "an axis has points or key and values, not both",
                "remove one of them",
            )
        listed = spec["points"]
        if not isinstance(listed, list):
            raise v.err(
                key + ("points",),
                "expected a list of points",
                'points = [{ label = "...", set = { key = value } }]',
            )
        points = []
        for j, p in enumerate(listed):
            pk = key + (f"points[{j}]",)
            p = v.table(p, pk)
            v.keys(p, pk, POINT_KEYS, ("label",))
            points.append((str(p["label"]), _overrides(v, p.get("set", {}), pk + ("set",))))
        return points
    for k in ("key", "values"):
        if k not in spec:
            raise v.err(
                key + (k,),
                "missing: give key and values, or points",
                'e.g. key = "assumptions.solar_yield" and values = [1.0, 1.2]',
            )
    keys = _keys(v, spec, key)
    values = spec["values"]
    if not isinstance(values, list):
        raise v.err(key + ("values",), "expected a list of values", "values = [1.0, 1.2]")
    labels = spec.get("labels") or [_label(x) for x in values]
    if not isinstance(labels, list) or len(labels) != len(values):
        raise v.err(
            key + ("labels",),
            f"{len(labels) if isinstance(labels, list) else 1} labels for {len(values)} values",
            "give one label per value",
        )
    return [(str(lab), {k: x for k in keys}) for lab, x in zip(labels, values)]


def _keys(v: Validator, spec: dict, key: tuple) -> list[str]:
    keys = spec["key"] if isinstance(spec["key"], list) else [spec["key"]]
    return v.strings(keys, key + ("key",), empty=False)


def _read_axis(v: Validator, i: int, spec) -> Axis:
    spec = v.table(spec, (f"axis[{i}]",))
    v.keys(spec, (f"axis[{i}]",), AXIS_KEYS, ("name",))
    name = v.string(spec["name"], (f"axis[{i}]", "name"))
    if not name:
        raise v.err((f"axis[{i}]", "name"), "empty", 'name the axis, e.g. name = "density"')
    key = ("axis", name)
    if "distribution" in spec:
        return _read_distribution_axis(v, spec, name, key)
    stray = [k for k in PARAMETER_KEYS if k in spec]
    if stray:
        raise v.err(
            key + (stray[0],),
            "only a distribution axis has this",
            'add distribution = "uniform" (or triangular, normal, weighted), or remove it',
        )
    points = _read_points(v, spec, key)
    if not points:
        raise v.err(key, "no values", "give the axis at least one value or point")
    labels = [p[0] for p in points]
    if len(set(map(slug, labels))) != len(labels):
        raise v.err(
            key,
            f"labels are not distinct: {labels}",
            "give every value its own label (labels = [...])",
        )
    return Axis(name, key, points)


def _read_distribution_axis(v: Validator, spec: dict, name: str, key: tuple) -> Axis:
    weighted = spec["distribution"] == "weighted"
    points = []
    if weighted:
        points = _read_points(v, spec, key)
    else:
        listed = [k for k in ("values", "points", "labels") if k in spec]
        if listed:
            raise v.err(
                key + (listed[0],),
                f"a {spec['distribution']} distribution draws its values",
                'remove it, or list the values with distribution = "weighted" and weights',
            )
    keys = _keys(v, spec, key) if "key" in spec and not weighted else []
    return Axis(name, key, points, read_distribution(v, key, spec, keys, points))


def load_scenario(path, *, warm_start: bool | None = None) -> Scenario:
    """Read a scenario file into its variants (in a fixed order). Raises ScenarioError.

    ``warm_start`` overrides the file's ``sweep.warm_start`` (benchmarks compare both)."""
    path = Path(path)
    tree = read_toml(path, error=ScenarioError)
    v = Validator.of_file(path, ScenarioError)
    v.keys(tree, (), SECTIONS, ("sweep",))
    head = v.table(tree["sweep"], ("sweep",))
    v.keys(head, ("sweep",), HEAD_KEYS)
    if "base" not in head:
        raise v.err(
            ("sweep", "base"),
            "missing",
            'name the base config, e.g. base = "../configs/national.toml"',
        )
    base = (path.parent / v.string(head["base"], ("sweep", "base"))).resolve()
    if not base.is_file():
        raise v.err(
            ("sweep", "base"),
            f"{base} not found",
            "give the path of a config, relative to the scenario file",
        )
    combine = v.choice(
        head.get("combine", "grid"), ("sweep", "combine"), ("grid", "list", "sample")
    )
    resolution = head.get("resolution")
    if resolution is not None:
        resolution = v.number(resolution, ("sweep", "resolution"), minimum=1e-9)
    grid = v.string(head["grid"], ("sweep", "grid")) if "grid" in head else None
    file_warm = v.boolean(head.get("warm_start", True), ("sweep", "warm_start"))
    scenario = Scenario(
        path=path,
        name=v.string(head.get("name", path.stem), ("sweep", "name")),
        base=base,
        grid=grid,
        resolution=resolution,
        method=v.choice(head.get("method", "auto"), ("sweep", "method"), METHODS),
        warm_start=file_warm if warm_start is None else bool(warm_start),
        axes=[],
        no_regret_share=_no_regret_share(v, head),
    )
    fixed = _overrides(v, head.get("set", {}), ("sweep", "set"))  # every variant's
    checked = [(("sweep", "set"), fixed)]
    for k in ("samples", "seed"):
        if k in head and combine != "sample":
            raise v.err(
                ("sweep", k),
                f'{k} is for a sampled sweep, this one has combine = "{combine}"',
                f'set combine = "sample", or remove {k}',
            )
    if combine == "grid":
        variants = _grid_variants(v, tree, scenario, fixed, checked)
    elif combine == "sample":
        variants = _sample_variants(v, tree, head, scenario, fixed, checked)
    else:
        variants = _list_variants(v, tree, scenario, fixed, checked)
    ids = [x.id for x in variants]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise v.err(("variant",), f"variant ids repeat: {dup}", "give each variant its own id")
    for x in variants:
        if x.warm_from is not None and x.warm_from not in ids:
            raise v.err(
                ("variant", x.id, "warm_from"),
                f"{x.warm_from!r} is no variant",
                did_you_mean(x.warm_from, ids),
            )
    _check_overrides(v, base, checked, grid, resolution)
    scenario.variants = variants
    return scenario


def _no_regret_share(v: Validator, head: dict) -> float:
    share = head.get("no_regret_share", NO_REGRET_SHARE)
    share = v.number(share, ("sweep", "no_regret_share"), maximum=1.0)
    if not share > 0.5:
        # At most half, two uses could both hold "in at least that share": no-regret must
        # name one use.
        raise v.err(
            ("sweep", "no_regret_share"),
            f"{share:g} is not above 0.5",
            "give a share of the variants above one half, e.g. 0.9 (the default)",
        )
    return share


def _read_axes(v: Validator, tree: dict, what: str) -> list[Axis]:
    listed = tree.get("axis", [])
    if not isinstance(listed, list) or not listed:
        raise v.err(
            ("axis",),
            f"a {what} sweep needs at least one [[axis]]",
            'add [[axis]] with name, key and values (or combine = "list")',
        )
    if "variant" in tree:
        raise v.err(
            ("variant",),
            'explicit variants need combine = "list"',
            'set combine = "list", or turn the variants into axes',
        )
    axes = [_read_axis(v, i, a) for i, a in enumerate(listed)]
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise v.err(("axis",), f"axis names repeat: {names}", "give every axis its own name")
    return axes


def _check_points(axes: list[Axis], listed: list, fixed: dict, checked: list) -> None:
    """Every point of every axis goes through the base config's key check."""
    for axis, spec in zip(axes, listed):
        by_points = "points" in spec
        for j, (_, sets) in enumerate(axis.points):
            where = axis.key + ((f"points[{j}]", "set") if by_points else ("key",))
            checked.append((where, {**fixed, **sets}))
        if axis.distribution is not None and axis.distribution.kind != "weighted":
            checked.append((axis.key + ("key",), {**fixed, **axis.distribution.draw(0.5)[1]}))


def _grid_variants(
    v: Validator, tree: dict, scenario: Scenario, fixed: dict, checked: list
) -> list[Variant]:
    axes = _read_axes(v, tree, "grid")
    drawn = [a for a in axes if a.distribution is not None]
    if drawn:
        raise v.err(
            drawn[0].key + ("distribution",),
            "a distribution is drawn in a sampled sweep only",
            'set combine = "sample" with samples and seed, or give the axis values',
        )
    _check_points(axes, tree["axis"], fixed, checked)
    scenario.axes = [{"name": a.name, "labels": [p[0] for p in a.points]} for a in axes]
    design = [(a.name, [(lab, sets, {a.name: lab}) for lab, sets in a.points]) for a in axes]
    return _product(scenario, design, fixed, sampled=False)


def _sample_variants(
    v: Validator, tree: dict, head: dict, scenario: Scenario, fixed: dict, checked: list
) -> list[Variant]:
    """The samples of the distribution axes, each crossed with every point of the list axes
    (the same draw for each: list axes compare like a grid, sample by sample)."""
    for k, example in (("samples", "samples = 100"), ("seed", "seed = 20221201")):
        if k not in head:
            raise v.err(("sweep", k), "missing for a sampled sweep", f"give it, e.g. {example}")
    scenario.samples = v.integer(head["samples"], ("sweep", "samples"), minimum=1)
    scenario.seed = v.integer(head["seed"], ("sweep", "seed"), minimum=0)
    axes = _read_axes(v, tree, "sampled")
    drawn = [a for a in axes if a.distribution is not None]
    listed = [a for a in axes if a.distribution is None]
    if not drawn:
        raise v.err(
            ("axis",),
            "a sampled sweep needs at least one axis with a distribution",
            'give an axis distribution = "uniform" with min and max (or use combine = "grid")',
        )
    if SAMPLE_AXIS in {a.name for a in axes}:
        raise v.err(
            ("axis", SAMPLE_AXIS),
            f"'{SAMPLE_AXIS}' names the sample number in a sampled sweep",
            "give the axis another name",
        )
    _check_points(axes, tree["axis"], fixed, checked)
    samples = []
    for j in range(scenario.samples):
        label = f"{j:04d}"
        sets, shown = {}, {SAMPLE_AXIS: label}
        for axis, u in zip(drawn, uniforms(scenario.seed, j, len(drawn))):
            value_label, value_sets = axis.distribution.draw(float(u))
            sets.update(value_sets)
            shown[axis.name] = value_label
        samples.append((label, sets, shown))
    scenario.axes = (
        [{"name": SAMPLE_AXIS, "labels": [s[0] for s in samples]}]
        + [{"name": a.name, "labels": [], "distribution": a.distribution.describe()} for a in drawn]
        + [{"name": a.name, "labels": [p[0] for p in a.points]} for a in listed]
    )
    design = [(SAMPLE_AXIS, samples)] + [
        (a.name, [(lab, sets, {a.name: lab}) for lab, sets in a.points]) for a in listed
    ]
    return _product(scenario, design, fixed, sampled=True)


def _product(scenario: Scenario, design: list, fixed: dict, *, sampled: bool) -> list[Variant]:
    """Every combination of the design axes' points ``(label, overrides, shown axes)``, in
    order, each with its warm-start neighbour."""
    names = [name for name, _ in design]
    scenario.design = [
        {"name": name, "size": len(points), "sampled": sampled and a == 0}
        for a, (name, points) in enumerate(design)
    ]

    def vid_of(idx):
        return "__".join(
            f"{slug(n)}-{slug(design[a][1][i][0])}" for a, (n, i) in enumerate(zip(names, idx))
        )

    variants = []
    for index, idx in enumerate(itertools.product(*(range(len(p)) for _, p in design))):
        overrides = dict(fixed)
        shown = {}
        for a, i in enumerate(idx):
            _, sets, labels = design[a][1][i]
            overrides.update(sets)
            shown.update(labels)
        variants.append(
            Variant(vid_of(idx), index, shown, overrides, _neighbour(scenario, idx, vid_of), idx)
        )
    return variants


def _neighbour(scenario: Scenario, idx: tuple, vid_of) -> str | None:
    """The variant whose prices this one starts from: one step back along the last axis not
    at its first value, so that the neighbours form a tree rooted at the first variant (only
    that one starts cold). A sample goes back to sample 0, not to the one before: a chain
    through every sample would run them one after the other."""
    moved = [a for a, i in enumerate(idx) if i > 0]
    if not scenario.warm_start or not moved:
        return None
    prev = list(idx)
    last = moved[-1]
    sampled = scenario.design[last]["sampled"]
    prev[last] = 0 if sampled else prev[last] - 1
    return vid_of(prev)


def _list_variants(
    v: Validator, tree: dict, scenario: Scenario, fixed: dict, checked: list
) -> list[Variant]:
    listed = tree.get("variant", [])
    if not isinstance(listed, list) or not listed:
        raise v.err(
            ("variant",),
            'combine = "list" needs [[variant]] entries',
            "add [[variant]] tables with id and set",
        )
    if "axis" in tree:
        raise v.err(
            ("axis",),
            'axes need combine = "grid"',
            'set combine = "grid", or turn the axes into [[variant]] entries',
        )
    scenario.axes = [{"name": "variant", "labels": []}]
    variants = []
    for index, spec in enumerate(listed):
        key = (f"variant[{index}]",)
        spec = v.table(spec, key)
        v.keys(spec, key, VARIANT_KEYS)
        sets = _overrides(v, spec.get("set", {}), key + ("set",))
        vid = (
            v.string(spec["id"], key + ("id",))
            if "id" in spec
            else "__".join(f"{slug(k.split('.')[-1])}-{slug(_label(x))}" for k, x in sets.items())
            or "base"
        )
        vid = slug(vid)
        warm = None
        if scenario.warm_start and spec.get("warm_from"):
            warm = slug(v.string(spec["warm_from"], key + ("warm_from",)))
        variants.append(Variant(vid, index, {"variant": vid}, {**fixed, **sets}, warm))
        checked.append((key + ("set",), {**fixed, **sets}))
        scenario.axes[0]["labels"].append(vid)
    return variants


def _check_grid(v: Validator, grid: str, resolution: float | None) -> None:
    """The sweep's resolution must be one its grid is built at (a folder: as it was built)."""
    from engine.grid.definition import GridDefinitionError, load_definition

    if resolution is None or Path(str(grid)).is_dir():
        return
    try:
        load_definition(grid).check_resolution(resolution)
    except GridDefinitionError as err:
        raise v.err(("sweep", "resolution"), err.problem, err.fix) from None


def _check_overrides(
    v: Validator, base: Path, checked: list, grid: str | None, resolution: float | None
) -> None:
    """Every key a variant sets must exist in the base config or be an entry its schema
    allows: checked per axis point (or listed variant) against the base, before any work.

    Only unknown keys are refused here; a value that is wrong only in combination with
    another axis is the variant's error when it runs."""
    from engine.config.reading import apply_overrides, load_raw
    from engine.config.sections import validate

    tree, scope, origins, _ = load_raw(base)
    config = validate(tree, scope, origins, base)  # the base config itself must be valid
    _check_grid(v, grid or config.grid, resolution)
    seen = set()
    for key, overrides in checked:
        text = json.dumps(overrides, sort_keys=True, default=str)
        if text in seen:
            continue
        seen.add(text)
        point_origins = origins.copy()
        try:
            validate(apply_overrides(tree, overrides, point_origins), scope, point_origins, base)
        except UnknownKeyError as err:
            raise v.err(key, f"{err.key}: {err.problem}", err.fix) from None
        except ConfigError:
            pass


def variant_key(scenario: Scenario, v: Variant) -> str:
    """A digest of everything that decides a variant's result (to tell stale outputs)."""
    text = json.dumps(
        {
            "base": str(scenario.base),
            "inputs_sha": _inputs_sha(scenario),
            "grid": scenario.grid,
            # 250 and 250.0 are one resolution (a TOML file gives a float, code may set an int)
            "resolution": None if scenario.resolution is None else float(scenario.resolution),
            "method": scenario.method,
            "overrides": v.overrides,
            "warm_from": v.warm_from,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _inputs_sha(scenario: Scenario) -> str:
    """A digest of every config file the base config reads (claims, rules, provinces...)."""
    if scenario.inputs_sha is None:
        from engine.config import load_config

        digest = hashlib.sha256()
        for f in sorted(map(str, load_config(scenario.base).files)):
            digest.update(f.encode() + b"\0" + Path(f).read_bytes())
        scenario.inputs_sha = digest.hexdigest()[:16]
    return scenario.inputs_sha
