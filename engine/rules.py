"""The structuring choices as masks and ladders (*water en bodem sturend* and the other rules).

The grid is flattened to the cells of the problem (:class:`Cells`); a rule's ``where`` is
evaluated to a boolean per cell (:func:`evaluate`); then the rules of ``rules.toml`` and the
province files become

- ``allowed[i, o]``: exclusions (hard) and reservations (the reserved cells take only the
  reserved options, nothing else, not even the current use);
- ``value[i, o]`` additions: penalties (soft) and ladders (preference orders);
- reservation targets: the hectares each group (province) reserves for a claim.

Conditions are small structured tables, checked against the grid before any work
(:func:`check_layers`): an unknown layer or class name is a :class:`ConfigError` that names
the file, the key and the closest name the grid has.
"""

from __future__ import annotations

import hashlib
import heapq
import os
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numba
import numpy as np

from engine import progress
from engine.config import Config, ConfigError, Rule, did_you_mean, slugify
from engine.grid import read_once
from engine.solve.compact import grid_neighbours, positions_among

__all__ = [
    "Cells",
    "RuleEffects",
    "RuleMemo",
    "evaluate",
    "check_layers",
    "apply_rules",
    "category_names",
]

# Layers whose `in = [...]` names are looked up in the layer's metadata.
_NAMED = {"land_cover": "classes", "province": "names", "municipality": "names"}


def category_names(da) -> list[str]:
    """Names of the categories of a layer, index = code (``classes`` or ``names`` attr)."""
    for attr in ("classes", "names"):
        names = da.attrs.get(attr)
        if names is None:
            continue
        if isinstance(names, str):
            import json

            try:
                names = json.loads(names)
            except ValueError:
                names = [s.strip() for s in names.split(",")]
        if isinstance(names, dict):
            out: list[str] = []
            for code, name in names.items():
                if str(code).lstrip("-").isdigit():
                    code, name = int(code), str(name)
                else:
                    code, name = int(name), str(code)
                while len(out) <= code:
                    out.append("")
                out[code] = name
            return out
        return [str(n) for n in names]
    raise KeyError(f"layer {da.name!r} has no 'classes' or 'names' attribute")


def _position_type(shape) -> np.dtype:
    """The integer type of the cells' flat positions in a grid of ``shape``: int32 where a
    position and a row's step beyond it fit (a 25 m grid has 142 M positions), which saves
    4 bytes a cell for the whole run."""
    ny, nx = shape
    return np.dtype(np.int32 if (ny + 1) * nx < np.iinfo(np.int32).max else np.int64)


class Cells:
    """The cells of a problem: flat positions in the grid and layer values at them."""

    def __init__(self, ds, mask: np.ndarray):
        self.ds = ds
        self.shape = mask.shape
        self._flat = np.flatnonzero(mask.ravel()).astype(_position_type(mask.shape))
        self._bits = np.packbits(mask.ravel())  # the positions again, 1 bit a grid cell
        self.n = len(self._flat)
        self._cache: dict[str, np.ndarray] = {}

    @property
    def flat(self) -> np.ndarray:
        """The cells' flat positions in the grid, ascending."""
        if self._flat is None:
            mask = np.unpackbits(self._bits, count=self.shape[0] * self.shape[1])
            self._flat = np.flatnonzero(mask).astype(_position_type(self.shape))
        return self._flat

    def forget_positions(self) -> None:
        """Let the positions go until asked for again (4 bytes a cell, held through the
        solve otherwise, which never reads them): worked out again from 1 bit a grid cell."""
        if self._bits is not None:
            self._flat = None

    def has(self, name: str) -> bool:
        return name in self.ds.data_vars

    def layer(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self.preload([name])
        return self._cache[name]

    def preload(self, names) -> None:
        """Read several layers at once, band by band of grid rows, on every core: a band is
        one row of a layer's chunks, read (the GeoTIFF blocks decoded; GDAL lets the other
        thread run meanwhile) and its cells copied straight to their places, all layers' bands
        in one dask graph. The whole grid of a layer computed, concatenated and cut to the
        cells on one core was twice the grid's bytes at a time (1.1 GB a float layer at 25 m);
        a band is a few tens of MB."""
        import dask
        from dask.base import is_dask_collection

        names = [n for n in dict.fromkeys(names) if self.has(n) and n not in self._cache]
        if not names:
            # read_once sets GDAL's process-wide cache limit: not for layers already read
            # (the rules applied again beside the solve, while the main thread writes).
            return
        ny, nx = self.shape
        out = {n: np.empty(self.n, dtype=self.ds[n].dtype) for n in names}
        flat = self.flat

        def copy_band(blocks, cells, start, lo, hi):
            band = np.hstack(blocks) if len(blocks) > 1 else blocks[0]
            cells[lo:hi] = band.reshape(-1)[flat[lo:hi] - start]

        tasks = []
        for name in names:
            data = self.ds[name].data
            if not is_dask_collection(data):  # in memory already
                out[name][:] = np.asarray(data).reshape(-1)[flat]
                continue
            rows = np.cumsum([0, *data.chunks[0]])
            at = np.searchsorted(flat, rows * nx)  # the cells of each band, in order
            blocks = data.to_delayed()
            for i, (lo, hi) in enumerate(zip(at[:-1], at[1:])):
                if hi > lo:
                    task = dask.delayed(copy_band, pure=False)
                    tasks.append(task(list(blocks[i]), out[name], int(rows[i] * nx), lo, hi))
        with read_once():
            dask.compute(*tasks, scheduler="threads")
        self._cache.update(out)

    def release(self, keep=()) -> None:
        """Let every layer read so far go but those named in ``keep``; a layer asked for
        again is read again from the grid, the same bits. For a run whose rules are not
        applied again after the compile (no analysis)."""
        for name in [n for n in self._cache if n not in keep]:
            del self._cache[name]

    def names(self, name: str) -> list[str]:
        return category_names(self.ds[name])

    def codes(self, layer: str, labels) -> np.ndarray:
        names = self.names(layer)
        return np.array([names.index(lab) for lab in labels], dtype=np.int64)

    def subset(self, keep: np.ndarray) -> Cells:
        out = Cells.__new__(Cells)
        out.ds, out.shape = self.ds, self.shape
        out._flat, out._bits = self.flat[keep], None
        out.n = len(out._flat)
        out._cache = {k: v[keep] for k, v in self._cache.items()}
        return out


# Cells per slice of a condition: its temporaries stay in cache, and the slices go to every
# core (numpy lets other threads run in its per-element loops).
_SLICE = 1 << 20


def evaluate(where: dict, cells: Cells) -> np.ndarray:
    """A validated condition -> bool per cell. NaN never matches. Worked out slice by slice
    of cells on every core: each cell's answer depends on its own values only."""
    cells.preload(_condition_layers(where))  # read before the threads share the cache
    out = np.empty(cells.n, dtype=bool)

    def part(lo: int) -> None:
        part_cells = slice(lo, min(lo + _SLICE, cells.n))
        out[part_cells] = _evaluate(where, cells, part_cells)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for _ in pool.map(part, range(0, cells.n, _SLICE)):
            pass  # each slice's error, raised here
    return out


def _evaluate(where: dict, cells: Cells, part: slice) -> np.ndarray:
    if "all" in where:
        out = np.ones(part.stop - part.start, dtype=bool)
        for c in where["all"]:
            out &= _evaluate(c, cells, part)
        return out
    if "any" in where:
        out = np.zeros(part.stop - part.start, dtype=bool)
        for c in where["any"]:
            out |= _evaluate(c, cells, part)
        return out
    if "not" in where:
        return ~_evaluate(where["not"], cells, part)
    values = cells.layer(where["layer"])[part]
    if "in" in where:
        return np.isin(values, cells.codes(where["layer"], where["in"]))
    if "min" not in where and "max" not in where:
        with np.errstate(invalid="ignore"):
            return np.nan_to_num(values) != 0
    out = np.ones(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        if "min" in where:
            out &= values >= where["min"]
        if "max" in where:
            out &= values <= where["max"]
    return out


def _condition_layers(where: dict | None):
    """The layers a condition reads."""
    if where is None:
        return
    for op in ("all", "any"):
        for c in where.get(op, []):
            yield from _condition_layers(c)
    if "not" in where:
        yield from _condition_layers(where["not"])
    if "layer" in where:
        yield where["layer"]


# -- checks against the grid ----------------------------------------------------------------------


def _check_where(where: dict, ds, file: str, key: str):
    for op in ("all", "any"):
        if op in where:
            for j, c in enumerate(where[op]):
                _check_where(c, ds, file, f"{key}.{op}[{j}]")
            return
    if "not" in where:
        _check_where(where["not"], ds, file, f"{key}.not")
        return
    _check_layer(where["layer"], ds, file, f"{key}.layer")
    if "in" in where:
        try:
            names = category_names(ds[where["layer"]])
        except KeyError:
            raise ConfigError(
                file,
                f"{key}.in",
                f"layer {where['layer']!r} has no category names",
                "compare with min/max instead",
            ) from None
        for name in where["in"]:
            if name not in names:
                raise ConfigError(
                    file,
                    f"{key}.in",
                    f"{where['layer']} has no {name!r}",
                    did_you_mean(name, [n for n in names if n]),
                )


def _check_layer(layer: str, ds, file: str, key: str):
    if layer not in ds.data_vars:
        raise ConfigError(
            file, key, f"the grid has no layer {layer!r}", did_you_mean(layer, list(ds.data_vars))
        )


def check_layers(config: Config, ds) -> None:
    """Every layer, class, province and municipality a config names must exist in the grid."""
    for r in config.rules:
        key = f"{r.kind}.{r.id}"
        if r.where is not None:
            _check_where(r.where, ds, r.file, f"{key}.where")
        for j, (_, w, _) in enumerate(r.steps):
            _check_where(w, ds, r.file, f"{key}.steps[{j}].where")
        if r.kind == "reservations":
            _check_layer(r.order_layer, ds, r.file, f"{key}.order.layer")
            _check_layer(r.group_by, ds, r.file, f"{key}.group_by")
    for name, recipe in config.recipes.items():
        opt = config.options[name]
        file = _file_of(config, opt.province, "suitability")
        for j, t in enumerate(recipe.terms):
            _check_layer(t.layer, ds, file, f"{name}.terms[{j}].layer")
        if recipe.conversion_cost:
            _check_layer("land_cover", ds, file, f"{name}.conversion_cost")
            classes = category_names(ds["land_cover"])
            for c in recipe.conversion_cost:
                if c not in classes:
                    raise ConfigError(
                        file,
                        f"{name}.conversion_cost.{c}",
                        "no such land-cover class",
                        did_you_mean(c, [n for n in classes if n]),
                    )
    _check_provinces(config, ds)
    for prov in config.provinces.values():
        for nid, nv in prov.novex.items():
            names = category_names(ds["municipality"])
            for m in nv.municipalities:
                if m not in names:
                    raise ConfigError(
                        prov.path,
                        f"novex.{nid}.municipalities",
                        f"no municipality {m!r} in the grid",
                        did_you_mean(m, [n for n in names if n]),
                    )
    _check_zonings(config, ds)


def _check_provinces(config: Config, ds) -> None:
    """A province's code and name must name the same province of the grid: the code decides
    the cells, the name labels them, and a mismatch would label one province's cells with
    another's name."""
    _check_layer("province", ds, str(config.path), "province")
    codes = [str(c) for c in ds["province"].attrs.get("codes", [])]
    try:
        names = category_names(ds["province"])
    except KeyError:
        names = []
    by_code = dict(zip(codes, names)) if len(names) == len(codes) else {}
    for prov in config.provinces.values():
        if codes and prov.code not in codes:
            raise ConfigError(
                prov.path,
                "province.code",
                f"{prov.code!r} is not a province code of the grid",
                did_you_mean(prov.code, codes),
            )
        grid_name = by_code.get(prov.code)
        if grid_name is not None and slugify(grid_name) != slugify(prov.name):
            right = [c for c, n in by_code.items() if slugify(n) == slugify(prov.name)]
            raise ConfigError(
                prov.path,
                "province.code",
                f"{prov.code!r} is {grid_name} in the grid, but the file is for {prov.name!r}",
                f"use code = {right[0]!r} ({prov.name} in the grid)"
                if right
                else f"fix name or code: the grid's provinces are "
                f"{', '.join(f'{c} {n}' for c, n in by_code.items())}",
            )


def zone_labels(da) -> dict[str, int]:
    """Code and name of every zone of an index layer -> its index (``codes``/``names`` attrs)."""
    out: dict[str, int] = {}
    codes = da.attrs.get("codes")
    if isinstance(codes, str):
        codes = category_names(da.assign_attrs(names=codes))
    for index, code in enumerate(codes or []):
        out[str(code)] = index
    for index, name in enumerate(category_names(da)):
        out.setdefault(str(name), index)
    return out


def _check_zonings(config: Config, ds) -> None:
    file = config.path
    for zid, zoning in config.zonings.items():
        _check_layer(zoning.layer, ds, file, f"zonings.{zid}.layer")
        try:
            labels = zone_labels(ds[zoning.layer])
            category_names(ds[zoning.layer])  # the zones need names in the report
        except KeyError:
            labels = {}
        if not labels:
            raise ConfigError(
                file,
                f"zonings.{zid}.layer",
                f"layer {zoning.layer!r} has no zone codes or names",
                "use an index layer (burn = 'index')",
            )
        for zone in zoning.targets:
            if zone not in labels:
                raise ConfigError(
                    file,
                    f"zonings.{zid}.targets.{zone}",
                    f"no zone {zone!r} in layer {zoning.layer!r}",
                    did_you_mean(zone, labels),
                )


def layers_used(config: Config) -> list[str]:
    """Every grid layer the rules and recipes of a config read."""
    out = ["land_cover", "province", "municipality"]
    for r in config.rules:
        out += rule_layers(r)
    for recipe in config.recipes.values():
        out += [t.layer for t in recipe.terms]
    out += [zoning.layer for zoning in config.zonings.values()]
    return list(dict.fromkeys(out))


def rule_layers(rule: Rule) -> list[str]:
    """The grid layers a rule reads: its conditions', and a reservation's order and groups."""
    out = list(_condition_layers(rule.where))
    for _, where, _ in rule.steps:
        out += _condition_layers(where)
    if rule.order_layer:
        out += [rule.order_layer, rule.group_by]
    return list(dict.fromkeys(out))


def _file_of(config: Config, province: str | None, what: str) -> str:
    if province:
        return str(config.provinces[province].path)
    for f in config.files:
        if f.stem == what:
            return str(f)
    return what


def province_index(config: Config, ds, slug: str) -> int:
    """The grid's province code (0..11) of a province of the config."""
    prov = config.provinces[slug]
    codes = [str(c) for c in ds["province"].attrs.get("codes", [])]
    if prov.code in codes:
        return codes.index(prov.code)
    names = category_names(ds["province"])
    slugs = [slugify(n) for n in names]
    if slug in slugs:
        return slugs.index(slug)
    raise ConfigError(
        prov.path,
        "province.code",
        f"{prov.code!r} ({prov.name}) is not in the grid",
        did_you_mean(prov.code, codes or names),
    )


# -- the effects of the rules ---------------------------------------------------------------------


@dataclass
class RuleEffects:
    allowed: np.ndarray  # (N, O) bool (a view of the option-major array the rules fill)
    reserved: np.ndarray  # (N,) bool, cells held by a reservation
    # (rule id, claim, province code, hectares) per province a reservation reaches
    reservation_targets: list
    counts: dict  # rule id -> cells it acted on (for the manifest)
    # option name -> the cells its minimum patch size rules out (see exclude_small_patches)
    min_patch: dict


class RuleMemo:
    """What :func:`apply_rules` worked out before, by what it depends on, for applying a
    config again with one rule left out (the analysis's rule costs, one relaxation per
    rule): each rule's ``where``, each option's small patches and each reservation's
    cells. A rule left out changes the allowed cells of its own options only, so most of
    those come back from here; anything whose inputs changed is worked out again, so the
    result is the same as without the memo."""

    def __init__(self):
        self._found: dict = {}

    def get(self, key: tuple, arrays: tuple, work):
        """``work()``, or what it gave before for the same ``key`` and ``arrays``' contents
        (a 128-bit hash of them: two contents colliding is as likely as a random bit flip
        in memory)."""
        h = hashlib.blake2b(digest_size=16)
        for a in arrays:
            if a is None:
                h.update(b"-")
                continue
            a = np.asarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            # A mask's bits, not its bytes: hashing is most of the memo's cost (national
            # 100 m: 3.9 s CPU of the 21 relaxations' 21 s), and packing takes a sixth of it.
            h.update(np.packbits(a) if a.dtype == bool else np.ascontiguousarray(a).view(np.uint8))
        key = (*key, h.digest())
        if key not in self._found:
            self._found[key] = work()
        return self._found[key]


class _Forgetful:
    """No memo: a single application keeps nothing (at 25 m every rule's mask kept would
    be gigabytes)."""

    @staticmethod
    def get(key: tuple, arrays: tuple, work):
        return work()


def apply_rules(
    config: Config,
    cells: Cells,
    area_ha: float,
    province_codes: dict,
    value: np.ndarray | None,
    memo: RuleMemo | None = None,
    keep_layers: Collection[str] | None = None,
) -> RuleEffects:
    """All enabled rules on the cells. ``province_codes``: slug -> grid province code.

    ``value`` is option-major (O, N) float32, usually a view of the problem's cell-major
    values (so no transposed copy exists); penalties and ladders are added to it in place
    (None: only ``allowed`` and the reservations are wanted). ``memo``: what earlier calls on
    the same cells worked out (:class:`RuleMemo`). ``keep_layers``: None keeps every layer
    read; otherwise the layers the caller needs after the rules, and any other is let go
    after the last rule that reads it (a layer is read when a rule first needs it), so a
    25 m compile holds a few of the rules' 49 bytes a cell at a time, not all of them.
    """
    memo = _Forgetful() if memo is None else memo
    # Reservations last: they pick from the cells the other rules leave.
    reservations = [r for r in config.rules if r.kind == "reservations"]
    others = [r for r in config.rules if r.kind != "reservations"]
    release = _LayerRelease(cells, others + reservations, keep_layers)
    release.start()
    options = config.option_names
    n, n_opt = cells.n, len(options)
    allowed = np.ones((n_opt, n), dtype=bool)
    counts: dict[str, int] = {}
    prov = cells.layer("province")

    # A province's own options exist only in that province.
    for o, opt in enumerate(config.options.values()):
        if opt.province is not None:
            allowed[o, prov != province_codes.get(opt.province, -99)] = False

    def scope_mask(rule: Rule, mask: np.ndarray) -> np.ndarray:
        if rule.province is None:
            return mask
        return mask & (prov == province_codes.get(rule.province, -99))

    def rule_cells(rule: Rule) -> np.ndarray:
        key = ("where", repr(rule.where), rule.province)
        return memo.get(key, (), lambda: scope_mask(rule, evaluate(rule.where, cells)))

    cols = {name: j for j, name in enumerate(options)}
    # A 25 m compile spends most of a minute here (layers read, conditions, patches). The
    # minimum patch sizes' last pass counts as the last rule.
    n_rules = len(others) + len(reservations) + 1
    for applied, rule in enumerate(others, start=1):
        idx = np.array([cols[o] for o in rule.options], dtype=np.int64)
        if rule.kind == "exclusions":
            mask = rule_cells(rule)
            outside = ~mask
            for j in idx:  # row by row: allowed[idx] would copy the rows
                allowed[j] &= outside
            counts[rule.id] = int(mask.sum())
        elif value is None:
            pass
        elif rule.kind == "penalties":
            counts[rule.id] = _add_penalty(value, idx, rule_cells(rule), rule.amount)
        elif rule.kind == "ladders":
            counts[rule.id] = _add_ladder(value, idx, rule, scope_mask, cells)
        release.after(rule)
        progress.advance(applied, n_rules, "rules applied")

    # Before the reservations, so that a reservation picks only cells its options may keep;
    # again after them, since reserved cells take land from the other options' pieces.
    minimum = min_patch_by_option(config, area_ha)
    before = exclude_small_patches(cells, minimum, options, allowed, memo=memo)

    reserved = np.zeros(n, dtype=bool)
    lost = np.zeros(n_opt, dtype=bool)  # options a reservation took allowed cells from
    targets = []
    for applied, rule in enumerate(reservations, start=len(others) + 1):
        idx = [cols[o] for o in rule.options]
        # Only cells that can take a reserved option after the exclusions are candidates.
        # The share is of all the land in `where` (the polder); it is taken from the cells
        # that may hold it, deepest first.
        where_mask = rule_cells(rule)
        mask = where_mask & allowed[idx].any(axis=0) & ~reserved
        min_cells = max(minimum.get(o, 1) for o in rule.options)

        def reserve(rule=rule, mask=mask, where_mask=where_mask, min_cells=min_cells):
            # The groups only here: what the memo gives back needs none of it (national
            # 100 m: 2 s CPU of the rule costs' 21 relaxations).
            return reserve_ranked(
                mask,
                cells.layer(rule.order_layer),
                _groups_in_province(cells, rule),
                rule.share,
                rule.ascending,
                count_mask=where_mask,
                neighbours=partial(_neighbours_of, cells),
                min_cells=min_cells,
            )

        take = memo.get(
            ("reserved", rule.id, rule.province, rule.share, min_cells), (mask,), reserve
        )
        only = np.zeros(n_opt, dtype=bool)
        only[idx] = True
        lost |= allowed[:, take].any(axis=1) & ~only
        allowed[:, take] &= only[:, None]
        reserved |= take
        # The reserved hectares become targets per province, whatever the rule groups by
        # (a polder may cross a provincial border).
        province = cells.layer("province")
        for g in np.unique(province[mask]):
            targets.append(
                (rule.id, rule.claim, int(g), float(take[province == g].sum()) * area_ha)
            )
        counts[rule.id] = int(take.sum())
        release.after(rule)
        progress.advance(applied, n_rules, "rules applied")
    # After the first pass every piece an option keeps is at least its minimum, so only the
    # options the reservations took cells from can have pieces below it now.
    shrunk = {name: m for name, m in minimum.items() if lost[cols[name]]}
    after = exclude_small_patches(cells, shrunk, options, allowed, keep=reserved, memo=memo)
    progress.advance(n_rules, n_rules, "rules applied")
    # In the options' order: a set's order changes with each process's string hashing, and
    # the page lists options with the same hectares in this order.
    min_patch = {
        name: np.union1d(before.get(name, []), after.get(name, [])).astype(np.int64)
        for name in options
        if name in before or name in after
    }
    for name, out in min_patch.items():
        counts[f"min_patch.{name}"] = len(out)
    return RuleEffects(allowed.T, reserved, targets, counts, min_patch)


def _add_penalty(value, options, mask, amount: float) -> int:
    """``amount`` off ``options``' values in the cells of ``mask``; the cells it hit."""
    from engine.suitability import add_to_values  # it imports this module

    cost = mask.astype(np.float32) * np.float32(amount)
    add_to_values(value.T, options, cost, True)
    return int(mask.sum())


def _add_ladder(value, options, rule: Rule, scope_mask, cells: Cells) -> int:
    """A ladder's step values (its first step a cell meets, else ``otherwise``) added to
    ``options``' values; the cells a step hit."""
    from engine.suitability import add_to_values  # it imports this module

    n = cells.n
    add = np.full(n, rule.otherwise, dtype=np.float32)
    todo = scope_mask(rule, np.ones(n, dtype=bool))
    if rule.province is not None:
        add[~todo] = 0.0
    for _, where, step_value in rule.steps:
        hit = todo & evaluate(where, cells)
        add[hit] = step_value
        todo &= ~hit
    add_to_values(value.T, options, add, False)
    return int(n - todo.sum())


class _LayerRelease:
    """Lets a layer go after the last of ``rules`` (in the order they are applied) that
    reads it, unless it is in ``keep`` (None: keep every layer); the province layer stays
    (every rule may scope to a province)."""

    def __init__(self, cells: Cells, rules: list, keep: Collection[str] | None):
        self.cells = cells
        self.keep = None if keep is None else {"province", *keep}
        self.later: dict[str, set[str]] = {}
        needed: set[str] = set()
        for rule in reversed(rules):
            self.later[rule.id] = set(needed)
            needed |= set(rule_layers(rule))
        self.needed = needed

    def start(self) -> None:
        """Before the first rule: what no rule reads goes (the values' layers)."""
        self._keep_only(self.needed)

    def after(self, rule: Rule) -> None:
        self._keep_only(self.later[rule.id])

    def _keep_only(self, needed: set[str]) -> None:
        if self.keep is not None:
            self.cells.release(keep=self.keep | needed)


def min_patch_by_option(config: Config, area_ha: float) -> dict[str, int]:
    """Option name -> its minimum patch ([compactness]) in whole cells, where that is more
    than one cell."""
    from engine.compactness import min_patch_cells

    out = {}
    for name, spec in config.compactness.items():
        cells = min_patch_cells(spec.min_patch_ha, area_ha)
        if cells > 1:
            out[name] = cells
    return out


def exclude_small_patches(
    cells: Cells,
    minimum: dict[str, int],
    options: list[str],
    allowed: np.ndarray,
    keep: np.ndarray | None = None,
    memo: RuleMemo | None = None,
) -> dict[str, np.ndarray]:
    """Forbid each option of ``minimum`` (name -> cells) on the cells where the land the rules
    allow it forms a 4-connected area smaller than its minimum patch: no plan that honours the
    minimum can place the option there (a village core of one cell cannot hold a 10 ha
    neighbourhood), so the exact optimum must not count on it either. Without this the
    optimum's bound would include land that compaction can only leave as single cells.

    ``allowed`` is option-major (O, N) and updated in place; cells in ``keep`` (reserved for
    their options) are left as they are. Returns option name -> the cells ruled out (indices
    into ``cells``). ``memo``: the small patches of an option whose allowed cells (and
    ``keep``) an earlier call saw (:class:`RuleMemo`)."""
    memo = _Forgetful() if memo is None else memo
    out = {}
    for name, m in minimum.items():
        o = options.index(name)
        work = partial(_small_patches, cells, allowed[o], m, keep)
        out[name] = memo.get(("small patches", m), (allowed[o], keep), work)
        allowed[o, out[name]] = False
    return out


def _small_patches(cells: Cells, allowed: np.ndarray, m: int, keep) -> np.ndarray:
    """The cells of ``allowed`` in 4-connected areas of fewer than ``m`` cells, but ``keep``."""
    small = small_patch_mask(cells.flat, cells.shape[1], allowed, m)
    if keep is not None:
        small &= ~keep
    return np.flatnonzero(small)


@numba.njit(cache=True, nogil=True)
def small_patch_mask(flat, nx, allowed, m):
    """Per cell: whether it is ``allowed`` and its 4-connected piece of allowed cells has
    fewer than ``m`` cells (``flat``: the cells' positions in a grid ``nx`` wide, ascending).

    One pass of union-find over the cells, not a labelling of the whole grid: 4 bytes a cell
    instead of 5 a grid position (at 25 m the grid has 2.5 times as many positions as
    cells), in less than half the time (benchmarks/test_compile.py). ``piece[i]``: the
    cell's parent in its piece, or, at a piece's root, minus its size."""
    n = flat.shape[0]
    if allowed.shape[0] != n:
        raise ValueError("small_patch_mask: allowed must have one entry per cell of flat")
    piece = np.full(n, -1, dtype=np.int32)
    above = 0  # the first cell at or after the position a row above cell i
    for i in range(n):
        if not allowed[i]:
            continue
        at = flat[i]
        left = i > 0 and allowed[i - 1] and flat[i - 1] == at - 1 and at % nx != 0
        while flat[above] < at - nx:
            above += 1
        up = flat[above] == at - nx and allowed[above]
        if left:
            _take_in(piece, i, i - 1)
            # Where the cell above the left one is allowed too, the left and the upper
            # cells already share a piece through it.
            if up and not (above > 0 and flat[above - 1] == at - nx - 1 and allowed[above - 1]):
                _join(piece, i, above)
        elif up:
            _take_in(piece, i, above)
    small = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        if allowed[i]:
            small[i] = -piece[_root(piece, i)] < m
    return small


@numba.njit(cache=True, nogil=True, inline="always")
def _root(piece, i):
    while piece[i] >= 0:
        if piece[piece[i]] >= 0:
            piece[i] = piece[piece[i]]  # path halving
        i = piece[i]
    return i


@numba.njit(cache=True, nogil=True, inline="always")
def _take_in(piece, i, b):
    """Cell ``i``, a piece of its own so far, joins the piece of ``b``."""
    root = _root(piece, b)
    piece[root] -= 1
    piece[i] = root


@numba.njit(cache=True, nogil=True, inline="always")
def _join(piece, a, b):
    a, b = _root(piece, a), _root(piece, b)
    if a == b:
        return
    if piece[a] > piece[b]:  # the larger piece takes the smaller
        a, b = b, a
    piece[a] += piece[b]
    piece[b] = a


def _neighbours_of(cells: Cells, idx: np.ndarray) -> np.ndarray:
    """(len(idx), 4) the cells left, right, above and below cells ``idx``, -1 where there is
    none in ``cells``; built for these cells only, so a reservation at 25 m stays small."""
    return grid_neighbours(cells.shape, cells.flat, idx)


def _groups_in_province(cells: Cells, rule: Rule) -> np.ndarray:
    """The rule's groups split at provincial borders: each province reserves its share of its
    own part of a polder, so province runs add up to the national run (optelbaarheid)."""
    return _pair_keys(cells.layer(rule.group_by), cells.layer("province"))


def _pair_keys(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """One key per (first, second) pair, in the pairs' lexicographic order (not numbered
    0, 1, ...: reserve_ranked only compares them). Built in place, int32 where the keys fit:
    three int64 arrays of every cell were 1.35 GB of a 25 m compile's peak, and one still
    0.45 GB at the reservations' (the peak of a run with --memory 4GB)."""
    out, n_first = _ordered_codes(first)
    then, n_then = _ordered_codes(second)
    if n_first * n_then > np.iinfo(out.dtype).max:
        out = out.astype(np.int64)
    out *= n_then
    out += then
    return out


def _ordered_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """(codes, count): codes in the order of ``values``, 0 <= code < count, int32 (int64 only
    for 2**31 values or more). An integer layer of a moderate range is its values less the
    smallest, without a sort (the two sorts of a national 100 m grid took 0.7 s CPU); any
    other its ranks."""
    values = np.asarray(values).ravel()
    if np.issubdtype(values.dtype, np.integer) and len(values):
        low, high = int(values.min()), int(values.max())
        if high - low < 2**31 - 1:
            if values.dtype.itemsize < 4 or values.dtype == np.int32:
                codes = values.astype(np.int32)
                codes -= np.int32(low)
            else:  # a wider type: its offset taken off before the narrowing
                codes = (values - low).astype(np.int32)
            return codes, high - low + 1
    ranks = np.unique(values, return_inverse=True)[1].ravel()
    ranks = ranks.astype(np.int32 if len(values) < 2**31 else np.int64)
    return ranks, int(ranks.max(initial=-1)) + 1


def reserve_ranked(
    mask,
    order,
    groups,
    share: float,
    ascending: bool = True,
    count_mask=None,
    neighbours=None,
    min_cells: int = 1,
) -> np.ndarray:
    """Per group, the ``share`` of the cells of ``count_mask`` (default ``mask``), taken from
    the cells of ``mask`` that come first by ``order``.

    Deepest first is ``order = elevation, ascending``. Ties go to the lower cell index, so the
    result never depends on anything but the data. The count per group is the share of its
    cells rounded to the nearest whole cell (at most the candidates it has); a count below
    ``min_cells`` becomes ``min_cells`` or nothing, whichever is nearer. With ``neighbours``
    (cell indices -> their (n, 4) neighbours, -1 for none) and ``min_cells`` > 1 the cells are
    taken in patches of at least ``min_cells`` (:func:`_fill_in_patches`), not as scattered
    deepest cells.
    """
    take = np.zeros(len(mask), dtype=bool)
    cand = np.flatnonzero(mask)
    if len(cand) == 0 or share <= 0:
        return take
    count_mask = mask if count_mask is None else count_mask
    totals = {}
    g_all = np.asarray(groups)[count_mask]
    for g, n in zip(*np.unique(g_all, return_counts=True)):
        totals[g] = int(n)
    key = np.asarray(order, dtype=np.float64)[cand]
    key = np.where(np.isnan(key), np.inf, key if ascending else -key)
    g = np.asarray(groups)[cand]
    ranked = cand[np.lexsort((cand, key, g))]  # by group, then order, then index
    g_sorted = np.asarray(groups)[ranked]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    ends = np.r_[starts[1:], len(ranked)]
    for s, e in zip(starts, ends):
        k = int(np.floor(share * totals.get(g_sorted[s], e - s) + 0.5))
        if 0 < k < min_cells:
            # A polder whose share is less than one patch: a whole patch or nothing, as near
            # to the share as whole patches go.
            k = min_cells if k >= min_cells / 2 else 0
        k = min(e - s, k)
        if neighbours is None or min_cells <= 1:
            take[ranked[s : s + k]] = True
        else:
            take[_fill_in_patches(ranked[s:e], k, neighbours, min_cells)] = True
    return take


def _fill_in_patches(ranked: np.ndarray, k: int, neighbours, min_cells: int) -> np.ndarray:
    """``k`` of a group's candidate cells (``ranked``, best first), taken as water fills a
    polder: the best cell left starts a patch, which grows by its best neighbouring candidates
    to ``min_cells``; after that the best cell next to a patch competes with the best cell
    anywhere. Pieces of candidate land smaller than ``min_cells`` come last, so a patch below
    the minimum remains only where the group has no other land, or for its last few cells.
    Where the deepest cells already lie together this takes exactly them."""
    nbr = positions_among(ranked, neighbours(ranked))
    # Best first within the pieces that can hold a patch, then within the rest.
    order = np.argsort(_piece_sizes(nbr) < min_cells, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    nbr = np.where(nbr >= 0, rank[np.where(nbr >= 0, nbr, 0)], -1)[order]
    taken = np.zeros(len(ranked), dtype=bool)
    frontier: list[int] = []  # ranks next to a patch, best first

    def add(p: int, heap: list[int]) -> None:
        taken[p] = True
        for q in nbr[p]:
            if q >= 0 and not taken[q]:
                heapq.heappush(heap, int(q))

    best_left, count = 0, 0
    while count < k:
        while frontier and taken[frontier[0]]:
            heapq.heappop(frontier)
        while taken[best_left]:
            best_left += 1
        need = k - count
        if frontier and (frontier[0] <= best_left or need < min_cells):
            add(heapq.heappop(frontier), frontier)
            count += 1
            continue
        # A new patch, grown on its own to the minimum before others compete with it.
        own, size = [best_left], 0
        while own and size < min(min_cells, need):
            p = heapq.heappop(own)
            if not taken[p]:
                add(p, own)
                size += 1
        count += size
        for p in own:
            heapq.heappush(frontier, p)
    return ranked[order[taken]]


def _piece_sizes(nbr: np.ndarray) -> np.ndarray:
    """Per node of the graph ``nbr`` ((n, 4) node positions, -1 for none): the size of its
    connected piece."""
    from scipy import sparse
    from scipy.sparse import csgraph

    rows, cols = np.nonzero(nbr >= 0)
    n = len(nbr)
    graph = sparse.coo_matrix((np.ones(len(rows)), (rows, nbr[rows, cols])), shape=(n, n))
    _, piece = csgraph.connected_components(graph, directed=False)
    return np.bincount(piece)[piece]
