"""The allocation LP as arrays: ``Problem`` holds and validates them.

See DESIGN.md, "The problem (the allocation LP)":

    maximise   sum_i sum_o a_i v[i,o] x[i,o]  -  sum_(l,z,k) p_k s[l,z,k]
    subject to sum_o x[i,o] = 1                      for every cell i
               x[i,o] = 0 where option o is not allowed in cell i
               lo[l,z,k] <= sum_(i in z) a_i sum_o c[o,k] x[i,o] + s[l,z,k]
               sum_(i in z) a_i sum_o c[o,k] x[i,o] <= hi[l,z,k]
               x >= 0, s >= 0

Every validation error is a ``ValueError`` that names the argument, the offending index and
what to do about it, because a planner's config compiles into these arrays and the message is
all they will see.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["Problem", "TargetRows"]


@dataclass(frozen=True)
class TargetRows:
    """The target rows of a problem, one per (zoning, zone, claim) with a lower or upper bound.

    Rows are ordered by zoning, then zone, then claim; this order is part of the contract of
    the solvers (their duals come back in it) and never depends on the data values.
    """

    zoning: np.ndarray  # (R,) int, l
    zone: np.ndarray  # (R,) int, z
    claim: np.ndarray  # (R,) int, k
    lower: np.ndarray  # (R,) float, NaN = no lower target
    upper: np.ndarray  # (R,) float, NaN = no upper bound

    def __len__(self) -> int:
        return len(self.claim)

    @property
    def has_lower(self) -> np.ndarray:
        return ~np.isnan(self.lower)

    @property
    def has_upper(self) -> np.ndarray:
        return ~np.isnan(self.upper)


@dataclass(frozen=True)
class CellGroups:
    """Cells that lie in the same zone of every zoning share their prices.

    ``group[i]`` is the group of cell i; ``zones[g, l]`` the zone of group g in zoning l.
    A national problem has a few dozen groups however many cells it has, which is what makes
    the per-cell price lookup of the fast solver one gather.
    """

    group: np.ndarray  # (N,) int32
    zones: np.ndarray  # (G, L) int64

    @property
    def count(self) -> int:
        return self.zones.shape[0]


def _as_per_zoning(name: str, arrays, n_zonings: int, n_zones: np.ndarray, n_claims: int):
    if arrays is None:
        return [np.full((int(z), n_claims), np.nan) for z in n_zones]
    if isinstance(arrays, np.ndarray) and arrays.ndim == 2 and n_zonings == 1:
        arrays = [arrays]
    arrays = list(arrays)
    if len(arrays) != n_zonings:
        raise ValueError(
            f"{name}: expected one array per zoning ({n_zonings}), got {len(arrays)}; "
            f"pass a list with a (zones, claims) array for every row of `zones`"
        )
    out = []
    for l, arr in enumerate(arrays):
        arr = np.asarray(arr, dtype=np.float64)
        expected = (int(n_zones[l]), n_claims)
        if arr.shape != expected:
            raise ValueError(
                f"{name}[{l}]: shape {arr.shape}, expected {expected} "
                f"(zones in zoning {l} x claims); use NaN for zones without a target"
            )
        bad = np.argwhere(np.isinf(arr) | (arr < 0))
        if len(bad):
            z, k = bad[0]
            raise ValueError(
                f"{name}[{l}][{z}, {k}] = {arr[z, k]}: targets must be finite and >= 0 "
                f"hectares; use NaN for 'no target'"
            )
        out.append(arr)
    return out


class Problem:
    """The arrays of the allocation LP (DESIGN.md), validated.

    Parameters
    ----------
    value : (N, O) float
        ``v[i, o]``, the value of option o in cell i per hectare (suitability minus conversion
        cost). float32 is kept as float32; the solvers accumulate in float64.
    contribution : (O, K) float
        ``c[o, k] >= 0``, hectares of claim k that one hectare of option o delivers. A
        combination (*meervoudig ruimtegebruik*) has several non-zero entries.
    zones : (L, N) int
        Zone of each cell in each zoning, ``0 .. Z_l - 1``. A 1-D array is one zoning.
    lower, upper : list of (Z_l, K) float
        Per zoning, the lower target and upper bound of every (zone, claim) in hectares.
        NaN means none.
    allowed : (N, O) bool, optional
        Where an option may go (the rules). Default: everywhere.
    area : float or (N,) float
        Hectares per cell.
    shortfall_penalty : None or (K,) float
        None makes every lower target hard; otherwise ``p_k >= 0`` prices a missing hectare of
        claim k (elastic targets).
    option_names, claim_names, zoning_names, zone_names : optional labels for messages and
        reports; ``zone_names`` is a list (per zoning) of lists of names.
    """

    def __init__(
        self,
        value,
        contribution,
        zones,
        lower=None,
        upper=None,
        allowed=None,
        area=1.0,
        shortfall_penalty=None,
        *,
        option_names=None,
        claim_names=None,
        zoning_names=None,
        zone_names=None,
    ):
        value = np.asarray(value)
        if value.dtype not in (np.float32, np.float64):
            value = value.astype(np.float64)
        if value.ndim != 2:
            raise ValueError(
                f"value: expected a 2-D (cells, options) array, got shape {value.shape}"
            )
        n_cells, n_options = value.shape
        if n_cells == 0 or n_options == 0:
            raise ValueError(f"value: shape {value.shape} has no cells or no options")
        finite = np.isfinite(value)
        if not finite.all():
            i, o = np.argwhere(~finite)[0]
            raise ValueError(
                f"value[{i}, {o}] = {value[i, o]}: values must be finite; forbid the option "
                f"in that cell through `allowed` instead of a NaN or infinite value"
            )

        contribution = np.asarray(contribution, dtype=np.float64)
        if contribution.ndim != 2 or contribution.shape[0] != n_options:
            raise ValueError(
                f"contribution: shape {contribution.shape}, expected ({n_options}, claims): "
                f"one row per option of `value`"
            )
        n_claims = contribution.shape[1]
        bad = np.argwhere(~np.isfinite(contribution) | (contribution < 0))
        if len(bad):
            o, k = bad[0]
            raise ValueError(
                f"contribution[{o}, {k}] = {contribution[o, k]}: an option delivers a "
                f"non-negative, finite share of a claim; a negative contribution (an option "
                f"that removes a claim) is not part of this LP, put that loss into `value`"
            )

        zones = np.asarray(zones)
        if zones.ndim == 1:
            zones = zones[None, :]
        if zones.ndim != 2 or zones.shape[1] != n_cells:
            raise ValueError(
                f"zones: shape {zones.shape}, expected (zonings, {n_cells}): one zone index "
                f"per cell per zoning"
            )
        if not np.issubdtype(zones.dtype, np.integer):
            raise ValueError(f"zones: dtype {zones.dtype}, expected integers (zone indices)")
        n_zonings = zones.shape[0]
        if n_zonings == 0:
            raise ValueError("zones: at least one zoning is needed (e.g. one national zone)")
        zmin = zones.min(axis=1)
        zmax = zones.max(axis=1)
        for l in range(n_zonings):
            if zmin[l] < 0:
                i = int(np.argmax(zones[l] < 0))
                raise ValueError(
                    f"zones[{l}, {i}] = {zones[l, i]}: zone indices start at 0; give cells "
                    f"outside every zone of a zoning their own 'rest' zone without targets"
                )
        if lower is not None:
            n_zones = np.array([len(lower[l]) if l < len(lower) else 0 for l in range(n_zonings)])
        elif upper is not None:
            n_zones = np.array([len(upper[l]) if l < len(upper) else 0 for l in range(n_zonings)])
        else:
            n_zones = zmax + 1
        lower = _as_per_zoning("lower", lower, n_zonings, n_zones, n_claims)
        upper = _as_per_zoning("upper", upper, n_zonings, n_zones, n_claims)
        for l in range(n_zonings):
            if zmax[l] >= n_zones[l]:
                i = int(np.argmax(zones[l] >= n_zones[l]))
                raise ValueError(
                    f"zones[{l}, {i}] = {zones[l, i]}: out of range, zoning {l} has "
                    f"{n_zones[l]} zones in `lower`/`upper`; add rows for the missing zones "
                    f"or fix the zone index"
                )
            crossed = np.argwhere(lower[l] > upper[l])
            if len(crossed):
                z, k = crossed[0]
                raise ValueError(
                    f"lower[{l}][{z}, {k}] = {lower[l][z, k]} > upper[{l}][{z}, {k}] = "
                    f"{upper[l][z, k]}: the lower target exceeds the upper bound; lower the "
                    f"target or raise the bound"
                )

        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (n_cells, n_options):
                raise ValueError(
                    f"allowed: shape {allowed.shape}, expected {(n_cells, n_options)} like "
                    f"`value`"
                )
            empty = ~allowed.any(axis=1)
            if empty.any():
                i = int(np.argmax(empty))
                raise ValueError(
                    f"allowed[{i}, :] is all False: every cell needs at least one allowed "
                    f"option (the current use, 'keep', is always allowed)"
                )

        area_arr = np.asarray(area, dtype=np.float64)
        if area_arr.ndim == 0:
            if not (np.isfinite(area_arr) and area_arr > 0):
                raise ValueError(f"area = {float(area_arr)}: cell area must be finite and > 0 ha")
            area_arr = float(area_arr)
        else:
            if area_arr.shape != (n_cells,):
                raise ValueError(
                    f"area: shape {area_arr.shape}, expected a scalar or ({n_cells},)"
                )
            bad = ~(np.isfinite(area_arr) & (area_arr > 0))
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(
                    f"area[{i}] = {area_arr[i]}: cell area must be finite and > 0 ha; drop "
                    f"cells without land from the problem instead"
                )

        if shortfall_penalty is not None:
            shortfall_penalty = np.asarray(shortfall_penalty, dtype=np.float64)
            if shortfall_penalty.shape != (n_claims,):
                raise ValueError(
                    f"shortfall_penalty: shape {shortfall_penalty.shape}, expected "
                    f"({n_claims},): one price per claim, or None for hard targets"
                )
            bad = ~(np.isfinite(shortfall_penalty) & (shortfall_penalty >= 0))
            if bad.any():
                k = int(np.argmax(bad))
                raise ValueError(
                    f"shortfall_penalty[{k}] = {shortfall_penalty[k]}: a penalty must be "
                    f"finite and >= 0; use None for hard targets"
                )

        self.value = value
        self.contribution = contribution
        self.zones = zones
        self.lower = lower
        self.upper = upper
        self.allowed = allowed
        self.area = area_arr
        self.shortfall_penalty = shortfall_penalty
        self.option_names = _names("option_names", option_names, n_options, "option")
        self.claim_names = _names("claim_names", claim_names, n_claims, "claim")
        self.zoning_names = _names("zoning_names", zoning_names, n_zonings, "zoning")
        if zone_names is None:
            zone_names = [[str(z) for z in range(int(n))] for n in n_zones]
        self.zone_names = [
            _names(f"zone_names[{l}]", zone_names[l], int(n_zones[l]), "zone")
            for l in range(n_zonings)
        ]

    # -- sizes ------------------------------------------------------------------------------
    @property
    def n_cells(self) -> int:
        return self.value.shape[0]

    @property
    def n_options(self) -> int:
        return self.value.shape[1]

    @property
    def n_claims(self) -> int:
        return self.contribution.shape[1]

    @property
    def n_zonings(self) -> int:
        return self.zones.shape[0]

    @property
    def n_zones(self) -> list[int]:
        return [len(lo) for lo in self.lower]

    @property
    def elastic(self) -> bool:
        return self.shortfall_penalty is not None

    def area_of(self, cells=slice(None)) -> np.ndarray:
        """Hectares of the given cells (broadcasts a scalar area)."""
        if np.ndim(self.area) == 0:
            return np.full(np.arange(self.n_cells)[cells].shape, self.area)
        return self.area[cells]

    # -- derived structure --------------------------------------------------------------------
    @cached_property
    def rows(self) -> TargetRows:
        zoning, zone, claim, lo, hi = [], [], [], [], []
        for l in range(self.n_zonings):
            has = ~(np.isnan(self.lower[l]) & np.isnan(self.upper[l]))
            z, k = np.nonzero(has)
            zoning.append(np.full(len(z), l))
            zone.append(z)
            claim.append(k)
            lo.append(self.lower[l][z, k])
            hi.append(self.upper[l][z, k])
        cat = np.concatenate
        return TargetRows(
            zoning=cat(zoning).astype(np.int64),
            zone=cat(zone).astype(np.int64),
            claim=cat(claim).astype(np.int64),
            lower=cat(lo).astype(np.float64),
            upper=cat(hi).astype(np.float64),
        )

    @cached_property
    def groups(self) -> CellGroups:
        """Group cells by their tuple of zones (mixed-radix key, no sort when it is small)."""
        radix = np.asarray(self.n_zones, dtype=np.int64)
        key = np.zeros(self.n_cells, dtype=np.int64)
        for l in range(self.n_zonings):
            key *= radix[l]
            key += self.zones[l]
        n_keys = int(np.prod(radix.astype(np.float64)))
        if n_keys <= 4 * self.n_cells + 1_000_000:
            present = np.zeros(n_keys, dtype=bool)
            present[key] = True
            keys = np.flatnonzero(present)
            lookup = np.empty(n_keys, dtype=np.int32)
            lookup[keys] = np.arange(len(keys), dtype=np.int32)
            group = lookup[key]
        else:
            keys, group = np.unique(key, return_inverse=True)
            group = group.astype(np.int32)
        zones = np.empty((len(keys), self.n_zonings), dtype=np.int64)
        rest = keys.copy()
        for l in reversed(range(self.n_zonings)):
            zones[:, l] = rest % radix[l]
            rest //= radix[l]
        return CellGroups(group=group, zones=zones)

    def row_index(self) -> list[np.ndarray]:
        """Per zoning a (Z_l, K) int array: the row of each (zone, claim), -1 where none."""
        out = [np.full((n, self.n_claims), -1, dtype=np.int64) for n in self.n_zones]
        rows = self.rows
        for r in range(len(rows)):
            out[rows.zoning[r]][rows.zone[r], rows.claim[r]] = r
        return out

    def per_zoning(self, row_values: np.ndarray, fill: float = 0.0) -> list[np.ndarray]:
        """Scatter a per-row vector back into the per-zoning (Z_l, K) layout of the contract."""
        out = [np.full((n, self.n_claims), fill, dtype=np.float64) for n in self.n_zones]
        rows = self.rows
        out_rows = np.asarray(row_values, dtype=np.float64)
        for l in range(self.n_zonings):
            sel = rows.zoning == l
            out[l][rows.zone[sel], rows.claim[sel]] = out_rows[sel]
        return out

    def supply(self, x) -> np.ndarray:
        """Hectares each target row receives from an allocation ``x`` (N, O), dense or sparse."""
        delivered = np.asarray(x @ self.contribution) * self.area_of()[:, None]  # (N, K)
        rows = self.rows
        out = np.empty(len(rows))
        for l in range(self.n_zonings):
            for k in np.unique(rows.claim[rows.zoning == l]):
                by_zone = np.bincount(
                    self.zones[l], weights=delivered[:, k], minlength=self.n_zones[l]
                )
                sel = (rows.zoning == l) & (rows.claim == k)
                out[sel] = by_zone[rows.zone[sel]]
        return out

    def describe_row(self, r: int) -> str:
        rows = self.rows
        l, z, k = int(rows.zoning[r]), int(rows.zone[r]), int(rows.claim[r])
        return (
            f"claim '{self.claim_names[k]}' in zone '{self.zone_names[l][z]}' of zoning "
            f"'{self.zoning_names[l]}'"
        )

    def __repr__(self) -> str:
        return (
            f"Problem({self.n_cells} cells x {self.n_options} options, {self.n_claims} claims, "
            f"{self.n_zonings} zonings, {len(self.rows)} target rows, "
            f"{'elastic' if self.elastic else 'hard'} targets)"
        )


def _names(arg: str, names, n: int, kind: str) -> list[str]:
    if names is None:
        return [f"{kind} {j}" for j in range(n)]
    names = [str(s) for s in names]
    if len(names) != n:
        raise ValueError(f"{arg}: {len(names)} names for {n} {kind}s")
    return names
