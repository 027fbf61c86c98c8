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

__all__ = ["Scenario", "Variant", "ScenarioError", "load_scenario", "variant_key"]

SECTIONS = ("sweep", "axis", "variant")
HEAD_KEYS = ("name", "base", "grid", "resolution", "combine", "warm_start", "method", "set")
AXIS_KEYS = ("name", "key", "values", "labels", "points")
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
            "variants": [
                {
                    "id": v.id,
                    "index": v.index,
                    "axes": v.axes,
                    "overrides": v.overrides,
                    "warm_from": v.warm_from,
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


def _read_axis(v: Validator, i: int, spec) -> tuple[str, list[tuple[str, dict]], tuple]:
    spec = v.table(spec, (f"axis[{i}]",))
    v.keys(spec, (f"axis[{i}]",), AXIS_KEYS, ("name",))
    name = v.string(spec["name"], (f"axis[{i}]", "name"))
    if not name:
        raise v.err((f"axis[{i}]", "name"), "empty", 'name the axis, e.g. name = "density"')
    key = ("axis", name)
    if "points" in spec:
        extra = [k for k in ("key", "values", "labels") if k in spec]
        if extra:
            raise v.err(
                key + (extra[0],),
                "an axis has points or key and values, not both",
                "remove one of them",
            )
        points = []
        listed = spec["points"]
        if not isinstance(listed, list):
            raise v.err(
                key + ("points",),
                "expected a list of points",
                'points = [{ label = "...", set = { key = value } }]',
            )
        for j, p in enumerate(listed):
            pk = key + (f"points[{j}]",)
            p = v.table(p, pk)
            v.keys(p, pk, POINT_KEYS, ("label",))
            points.append((str(p["label"]), _overrides(v, p.get("set", {}), pk + ("set",))))
    else:
        for k in ("key", "values"):
            if k not in spec:
                raise v.err(
                    key + (k,),
                    "missing: give key and values, or points",
                    'e.g. key = "assumptions.solar_yield" and values = [1.0, 1.2]',
                )
        keys = spec["key"] if isinstance(spec["key"], list) else [spec["key"]]
        keys = v.strings(keys, key + ("key",), empty=False)
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
        points = [(str(lab), {k: x for k in keys}) for lab, x in zip(labels, values)]
    if not points:
        raise v.err(key, "no values", "give the axis at least one value or point")
    labels = [p[0] for p in points]
    if len(set(map(slug, labels))) != len(labels):
        raise v.err(
            key,
            f"labels are not distinct: {labels}",
            "give every value its own label (labels = [...])",
        )
    return name, points, key


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
    combine = v.choice(head.get("combine", "grid"), ("sweep", "combine"), ("grid", "list"))
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
    )
    fixed = _overrides(v, head.get("set", {}), ("sweep", "set"))  # every variant's
    checked = [(("sweep", "set"), fixed)]
    if combine == "grid":
        variants = _grid_variants(v, tree, scenario, fixed, checked)
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


def _grid_variants(
    v: Validator, tree: dict, scenario: Scenario, fixed: dict, checked: list
) -> list[Variant]:
    listed = tree.get("axis", [])
    if not isinstance(listed, list) or not listed:
        raise v.err(
            ("axis",),
            "a grid sweep needs at least one [[axis]]",
            'add [[axis]] with name, key and values (or combine = "list")',
        )
    if "variant" in tree:
        raise v.err(
            ("variant",),
            'explicit variants need combine = "list"',
            'set combine = "list", or turn the variants into axes',
        )
    axes = [_read_axis(v, i, a) for i, a in enumerate(listed)]
    names = [a[0] for a in axes]
    if len(set(names)) != len(names):
        raise v.err(("axis",), f"axis names repeat: {names}", "give every axis its own name")
    for i, (_, points, key) in enumerate(axes):
        by_points = "points" in listed[i]
        for j, (_, sets) in enumerate(points):
            where = key + ((f"points[{j}]", "set") if by_points else ("key",))
            checked.append((where, {**fixed, **sets}))
    scenario.axes = [{"name": n, "labels": [p[0] for p in pts]} for n, pts, _ in axes]

    def vid_of(idx):
        return "__".join(
            f"{slug(n)}-{slug(axes[a][1][i][0])}" for a, (n, i) in enumerate(zip(names, idx))
        )

    variants = []
    ranges = [range(len(pts)) for _, pts, _ in axes]
    for index, idx in enumerate(itertools.product(*ranges)):
        overrides = dict(fixed)
        for a, i in enumerate(idx):
            overrides.update(axes[a][1][i][1])
        labels = {n: axes[a][1][i][0] for a, (n, i) in enumerate(zip(names, idx))}
        # The neighbour: one step back along the last axis not at its first value. The
        # neighbours form a tree rooted at the first variant: only that one starts cold.
        warm = None
        moved = [a for a, i in enumerate(idx) if i > 0]
        if scenario.warm_start and moved:
            prev = list(idx)
            prev[moved[-1]] -= 1
            warm = vid_of(prev)
        variants.append(Variant(vid_of(idx), index, labels, overrides, warm))
    return variants


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
            "resolution": scenario.resolution,
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
