"""Config + grid -> :class:`engine.Problem` (the allocation LP of DESIGN.md).

The pieces compose like prioritizr's: the cells (land in scope), the objective (suitability
recipes plus penalties and ladders), the constraints (exclusions and reservations as
``allowed``), and the targets, one zoning at a time:

- ``national`` (national runs): one zone, the national targets; the reservation targets summed.
- ``province``: the provinces in scope; their own targets (the housing bid), their shares of
  the national targets (a scenario choice), and the hectares their reservations hold.
- ``novex:<id>``: one zoning per NOVEX area (they overlap), zones ``[area, rest]``; the rest
  zone has no targets.

Every target row remembers the file and key it came from, so an impossible target can be
reported where it can be fixed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.config import Config, ConfigError, Target
from engine.grid import read_once
from engine.paging import file_backed_zeros, release_pages
from engine.problem import Problem
from engine.rules import (
    Cells,
    RuleEffects,
    apply_rules,
    category_names,
    check_layers,
    layers_used,
    province_index,
    zone_labels,
)
from engine.suitability import option_values, recipe_layers

__all__ = [
    "Compiled",
    "compile_problem",
    "cell_mask",
    "capacity",
    "drop_implied_rows",
    "check_capacity",
    "capacity_error",
    "CapacityError",
    "refusal",
    "shortfalls",
]


@dataclass
class Compiled:
    problem: Problem
    cells: Cells
    config: Config
    effects: RuleEffects
    area_ha: float
    province_codes: dict  # slug -> grid code
    row_meta: dict  # (zoning, zone, claim) -> {file, key, source, note}
    notes: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    # The targets as configured, per zoning (Z_l, K) ha; the problem may hold fewer rows
    # (see drop_implied_rows), the report states all of them.
    stated_lower: list = field(default_factory=list)
    implied: set = field(default_factory=set)  # (zoning, zone, claim) left to other rows


def cell_mask(config: Config, ds, province_codes: dict) -> np.ndarray:
    """(y, x) bool: land cells inside the provinces in scope."""
    with read_once():
        land = np.asarray(ds["land"].values) != 0
        prov = np.asarray(ds["province"].values)
    codes = [province_codes[s] for s in config.province_slugs]
    return land & np.isin(prov, codes)


def _resolution(ds) -> float:
    res = ds.attrs.get("resolution")
    if res:
        return float(res)
    x = np.asarray(ds["x"].values)
    return float(abs(x[1] - x[0]))


def _meta(file, key, t: Target | None, note: str = "") -> dict:
    return {
        "file": str(file), "key": key,
        "source": t.source if t else None,
        "note": (t.note if t else note) or note,
    }  # fmt: skip


def compile_problem(
    config: Config, ds, *, keep_layers: bool = True, values_paged_in: Path | None = None
) -> Compiled:
    """Check the config against the grid, then build the Problem. ``keep_layers`` False reads
    each layer when the values or a rule first needs it and lets it go after its last use,
    but for those the zonings read (the rules' and recipes' layers are 49 bytes a cell for
    the national config, 2.75 GB at 25 m, that the compile held at once); a layer asked for
    later is read again. ``values_paged_in``: a folder on disk for the values' file, paged
    by the kernel (:mod:`engine.paging`); None: the values in memory."""
    clock = _Clock()
    check_layers(config, ds)
    province_codes = {s: province_index(config, ds, s) for s in config.provinces}
    mask = cell_mask(config, ds, province_codes)
    cells = Cells(ds, mask)
    cells.preload(layers_used(config) if keep_layers else recipe_layers(config))
    if cells.n == 0:
        raise ConfigError(
            config.path,
            "scope",
            "no land cells in scope",
            "check the grid's land and province layers",
        )
    res = _resolution(ds)
    area_ha = res * res / 1e4
    clock.step("cells")

    value = option_values(config, cells, values_paged_in)
    clock.step("suitability")
    zoning_layers = [z.layer for z in config.zonings.values()]
    keep = None if keep_layers else ["province", "municipality", *zoning_layers]
    effects = apply_rules(config, cells, area_ha, province_codes, value, keep_layers=keep)
    value = np.ascontiguousarray(value.T)  # (N, O) for the Problem: no copy, see option_values
    release_pages(value)  # paged values: nothing reads them until the solve
    # The rules' option-major mask is let go: the problem and the effects share one copy.
    effects.allowed = allowed = _cell_major(effects.allowed, values_paged_in)
    clock.step("rules")

    claims = config.claim_names
    k_of = {c: k for k, c in enumerate(claims)}
    n_claims = len(claims)
    zonings, zone_names, zones, lower, upper = [], [], [], [], []
    row_meta: dict = {}
    notes: list[str] = []
    national_file = config.files[0] if config.files else config.path
    prov = cells.layer("province")
    slugs = config.province_slugs
    res_targets = effects.reservation_targets  # (rule, claim, group, ha)
    code_to_slug = {c: s for s, c in province_codes.items()}

    def reservation_ha(claim: str, rule_id: str, slug: str | None) -> float:
        return sum(
            ha
            for rid, c, g, ha in res_targets
            if c == claim and rid == rule_id and (slug is None or code_to_slug.get(g) == slug)
        )

    if config.scope == "national":
        lo = np.full((1, n_claims), np.nan)
        hi = np.full((1, n_claims), np.nan)
        for claim, tg in config.national_targets.items():
            k = k_of[claim]
            if tg.rule:
                lo[0, k] = reservation_ha(claim, tg.rule, None)
            else:
                lo[0, k] = np.nan if tg.lower_ha is None else tg.lower_ha
                hi[0, k] = np.nan if tg.upper_ha is None else tg.upper_ha
            row_meta[(len(zonings), 0, k)] = _meta(national_file, f"targets.{claim}", tg)
        zonings.append("national")
        zone_names.append(["Nederland"])
        zones.append(np.zeros(cells.n, dtype=np.int8))
        lower.append(lo)
        upper.append(hi)

    # Provinces.
    lo = np.full((len(slugs), n_claims), np.nan)
    hi = np.full((len(slugs), n_claims), np.nan)
    pz = np.full(cells.n, -1, dtype=zone_dtype([len(slugs)]))
    for z, slug in enumerate(slugs):
        pz[prov == province_codes[slug]] = z
        p = config.provinces[slug]
        for claim, tg in config.province_targets(slug).items():
            k = k_of[claim]
            lo[z, k] = np.nan if tg.lower_ha is None else tg.lower_ha
            hi[z, k] = np.nan if tg.upper_ha is None else tg.upper_ha
            key = f"shares.{claim}" if claim in p.shares else f"targets.{claim}"
            row_meta[(len(zonings), z, k)] = _meta(p.path, key, tg)
        for claim, tg in config.national_targets.items():
            if tg.rule:
                k = k_of[claim]
                lo[z, k] = reservation_ha(claim, tg.rule, slug)
                row_meta[(len(zonings), z, k)] = _meta(
                    national_file, f"targets.{claim}", tg, f"reservation rule {tg.rule}"
                )
    zonings.append("province")
    zone_names.append([config.provinces[s].name for s in slugs])
    zones.append(pz)
    lower.append(lo)
    upper.append(hi)

    # NOVEX areas, one zoning each (they overlap and cross provinces).
    muni = cells.layer("municipality") if cells.has("municipality") else None
    for p in config.provinces.values():
        for nid, nv in p.novex.items():
            if muni is None or not nv.targets:
                continue
            codes = cells.codes("municipality", nv.municipalities)
            inside = np.isin(muni, codes)
            scale = 1.0
            if config.scope != "national":
                # A province run holds only part of a cross-province area: clip and scale.
                with read_once():
                    all_muni = np.asarray(ds["municipality"].values)
                    all_land = np.asarray(ds["land"].values) != 0
                total = int((np.isin(all_muni, codes) & all_land).sum())
                if int(inside.sum()) == 0:
                    continue
                if total > int(inside.sum()):
                    scale = inside.sum() / total
                    notes.append(
                        f"{nv.name} crosses the province boundary: clipped to "
                        f"{config.provinces[config.scope].name}, its targets scaled by the "
                        f"share of its land inside ({scale:.3f})."
                    )
            if not inside.any():
                continue
            lo = np.full((2, n_claims), np.nan)
            hi = np.full((2, n_claims), np.nan)
            for claim, tg in nv.targets.items():
                k = k_of[claim]
                lo[0, k] = np.nan if tg.lower_ha is None else tg.lower_ha * scale
                hi[0, k] = np.nan if tg.upper_ha is None else tg.upper_ha * scale
                row_meta[(len(zonings), 0, k)] = _meta(p.path, f"novex.{nid}.targets.{claim}", tg)
            zonings.append(f"novex:{nid}")
            zone_names.append([nv.name, "rest"])
            zones.append(~inside)  # zone 0 the area, 1 the rest
            lower.append(lo)
            upper.append(hi)

    # Configured zonings of an index layer (RES regions, municipal housing deals, ...).
    for zid, zoning in config.zonings.items():
        index = cells.layer(zoning.layer).astype(np.int64)
        labels = zone_labels(ds[zoning.layer])
        names = category_names(ds[zoning.layer])
        n_zones = max(len(names), int(index.max(initial=-1)) + 1)
        names = [*names, *(f"zone {z}" for z in range(len(names), n_zones))]
        # Cells outside every zone (index -1) form one more zone without targets.
        zz = np.where(index >= 0, index, n_zones)
        lo = np.full((n_zones + 1, n_claims), np.nan)
        hi = np.full((n_zones + 1, n_claims), np.nan)
        for zone, claim_targets in zoning.targets.items():
            z = labels[zone]
            if not (zz == z).any():
                notes.append(
                    f"{zoning.name}: {zone} has no land in scope; its targets are "
                    f"left out of this run."
                )
                continue
            for claim, tg in claim_targets.items():
                k = k_of[claim]
                lo[z, k] = np.nan if tg.lower_ha is None else tg.lower_ha
                hi[z, k] = np.nan if tg.upper_ha is None else tg.upper_ha
                row_meta[(len(zonings), z, k)] = _meta(
                    config.path, f"zonings.{zid}.targets.{zone}.{claim}", tg
                )
        zonings.append(zid)
        zone_names.append([*names, "rest"])
        zones.append(zz)
        lower.append(lo)
        upper.append(hi)

    stated_lower = [lo.copy() for lo in lower]
    implied = drop_implied_rows(zonings, lower, upper, config.hard_targets)
    penalty = None
    if not config.hard_targets:
        penalty = np.array([c.shortfall_penalty for c in config.claims.values()])
    problem = Problem(
        value=value,
        contribution=config.contribution_matrix(),
        # Each zoning in the narrowest type that holds it, stacked once here in the narrowest
        # type that holds them all: int64 rows were as large as the values (56 bytes a cell
        # for 7 zonings, 3.1 GB at 25 m), and a few hundred zones need 2 bytes.
        zones=np.vstack(zones, dtype=zone_dtype(len(lo) for lo in lower)),
        lower=lower,
        upper=upper,
        allowed=allowed,
        area=area_ha,
        shortfall_penalty=penalty,
        option_names=config.option_names,
        claim_names=claims,
        zoning_names=zonings,
        zone_names=zone_names,
    )
    clock.step("problem")
    return Compiled(
        problem,
        cells,
        config,
        effects,
        area_ha,
        province_codes,
        row_meta,
        notes,
        clock.timings,
        stated_lower,
        implied,
    )


class _Clock:
    """Wall seconds per step, and beside each (``<step>_cpu``) the CPU seconds of every
    thread of the process: their ratio is how many cores the step kept busy."""

    def __init__(self):
        self.timings: dict[str, float] = {}
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def step(self, name: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.timings[name] = wall - self._wall
        self.timings[f"{name}_cpu"] = cpu - self._cpu
        self._wall, self._cpu = wall, cpu


def _cell_major(allowed: np.ndarray, paged_in: Path | None) -> np.ndarray:
    """The rules' (N, O) mask C-contiguous: in memory, or where the values are paged
    (``paged_in``) in a paged file beside theirs (15 bytes a cell, 0.84 GB at 25 m), copied
    slice by slice of cells with each slice's pages let go after it."""
    if paged_in is None:
        return np.ascontiguousarray(allowed)
    out = file_backed_zeros(allowed.shape, bool, paged_in)
    for lo in range(0, len(out), _ALLOWED_SLICE):
        part = slice(lo, lo + _ALLOWED_SLICE)
        out[part] = allowed[part]
        release_pages(out[part])
    return out


# Cells per slice of the allowed options' copy into a paged file.
_ALLOWED_SLICE = 1 << 21


def zone_dtype(zone_counts) -> np.dtype:
    """The narrowest signed integer type that holds every zone index, at least int16 (a
    zone index plus one stays in range)."""
    largest = max(zone_counts, default=1)
    for kind in (np.int16, np.int32):
        if largest <= np.iinfo(kind).max:
            return np.dtype(kind)
    return np.dtype(np.int64)


def drop_implied_rows(zonings: list, lower: list, upper: list, hard_targets: bool = False) -> set:
    """Leave out national lower targets the provinces' own targets already imply.

    When the targets are hard and the provinces' targets of a claim add up to at least the
    national one (the shares sum to 1; the housing bids sum to 917,193 >= 900,000), the
    national row can never bind on its own: it only duplicates the province rows and makes
    the prices non-unique (any split between the national and the provincial price is
    optimal). Dropping it gives the same allocation with the scarcity priced where it arises,
    per province. The report still states the national target and checks it against the
    national sum. Elastic targets keep the row: provinces short of their own targets can
    leave the nation short too, and that shortfall has its own penalty.
    """
    implied: set = set()
    if not hard_targets or "national" not in zonings or "province" not in zonings:
        return implied
    nat, prov = zonings.index("national"), zonings.index("province")
    for k in range(lower[nat].shape[1]):
        target = lower[nat][0, k]
        if np.isnan(target) or not np.isnan(upper[nat][0, k]):
            continue
        provinces = np.nansum(lower[prov][:, k])
        if provinces >= target * (1 - 1e-12):
            lower[nat][0, k] = np.nan
            implied.add((nat, 0, k))
    return implied


def capacity(compiled: Compiled) -> list[np.ndarray]:
    """Per zoning (Z_l, K): the most claim hectares the land allowed for a claim could give.

    Each claim alone, as if no other claim wanted the land: an upper bound, so a target above
    it can never be met whatever the other claims do.
    """
    p = compiled.problem
    c = p.contribution
    allowed = p.allowed if p.allowed is not None else np.ones(p.value.shape, dtype=bool)
    groups = p.groups
    out = [np.zeros((n, p.n_claims)) for n in p.n_zones]
    for k in range(p.n_claims):
        best = np.zeros(p.n_cells, dtype=np.float32)
        for o in np.flatnonzero(c[:, k] > 0):  # only the few options that serve claim k
            np.maximum(best, np.where(allowed[:, o], np.float32(c[o, k]), np.float32(0)), out=best)
        p.release_cells()  # a column of a paged mask is on every one of its pages
        if not best.any():
            continue
        # A cell group lies in one zone of every zoning: one pass over the cells, then the
        # few groups per zoning (national 100 m: 0.2 s instead of 1.3 s with 7 zonings).
        by_group = np.bincount(groups.group, weights=best, minlength=groups.count)
        for l in range(p.n_zonings):
            out[l][:, k] = (
                np.bincount(groups.zones[:, l], weights=by_group, minlength=p.n_zones[l])
                * compiled.area_ha
            )
    return out


def check_capacity(compiled: Compiled) -> list[dict]:
    """Rows whose lower target exceeds the land allowed for the claim in that zone."""
    p = compiled.problem
    cap = capacity(compiled)
    bad = []
    for l in range(p.n_zonings):
        z_idx, k_idx = np.nonzero(p.lower[l] > cap[l] * (1 + 1e-9) + 1e-9)
        for z, k in zip(z_idx, k_idx):
            meta = compiled.row_meta.get((l, int(z), int(k)), {})
            bad.append({
                "zoning": p.zoning_names[l], "zone": p.zone_names[l][z],
                "claim": p.claim_names[k], "lower_ha": float(p.lower[l][z, k]),
                "capacity_ha": float(cap[l][z, k]), **meta,
            })  # fmt: skip
    return bad


class CapacityError(ConfigError):
    """A hard target above all the land its rules allow for the claim in that zone: the
    plan does not fit. ``rows``: every such target, with ``lower_ha`` and ``capacity_ha``."""

    def __init__(self, file, key: str, problem: str, fix: str = "", rows=()):
        super().__init__(file, key, problem, fix)
        self.rows = list(rows)

    @property
    def shortfall_ha(self) -> float:
        return float(sum(max(r["lower_ha"] - r["capacity_ha"], 0.0) for r in self.rows))


def capacity_error(row: dict, config: Config, rows=()) -> CapacityError:
    claim = config.claims[row["claim"]]
    from engine.config import from_ha

    unit = claim.unit
    return CapacityError(
        row.get("file", config.path),
        row.get("key", f"targets.{row['claim']}"),
        f"target of {row['claim']} in {row['zone']} ({row['zoning']}) is "
        f"{from_ha(row['lower_ha'], claim):,.0f} {unit} ({row['lower_ha']:,.0f} ha) but the rules "
        f"leave only {row['capacity_ha']:,.0f} ha of land that may take it",
        "lower the target, or relax the exclusions that bar the claim there "
        "(rules.toml; e.g. override rules.exclusions.<id>.enabled = false)",
        rows=rows or [row],
    )


def refusal(compiled: Compiled):
    """The error a run stops with before its solve, or None. Hard targets only (DESIGN: an
    elastic target the land cannot meet is a shortfall to report, not an error): first a
    target above all the land its rules allow for the claim, named with its file and key;
    then targets and upper bounds that fit one by one but not together (the solver's own
    exact feasibility test, over classes of interchangeable cells). ``run`` and ``check``
    both ask this."""
    if compiled.config.hard_targets:
        bad = check_capacity(compiled)
        if bad:
            return capacity_error(bad[0], compiled.config, bad)
    from engine.solve import InfeasibleError
    from engine.solve.feasibility import check_feasible

    try:
        check_feasible(compiled.problem)
    except InfeasibleError as err:
        return err
    return None


def shortfalls(compiled: Compiled) -> list[str]:
    """Elastic targets above the land their rules allow: what a run will report short."""
    if compiled.config.hard_targets:
        return []
    return [
        f"{r['claim']} in {r['zone']} ({r['zoning']}): the target of {r['lower_ha']:,.0f} "
        f"ha is above the {r['capacity_ha']:,.0f} ha the rules allow; the targets are "
        f"elastic, so the run reports the shortfall ({r.get('file')}: {r.get('key')})"
        for r in check_capacity(compiled)
    ]
