"""The allocation LP as arrays: ``Problem`` holds and validates them.

See DESIGN.md, "The problem (the allocation LP)":

    maximise   sum_i sum_o a_i v[i,o] x[i,o]  -  sum_(l,z,k) p_k s[l,z,k]
    subject to sum_o x[i,o] = 1                      for every cell i
               x[i,o] = 0 where option o is not allowed in cell i
               lo[l,z,k] <= sum_(i in z) a_i sum_o c[o,k] x[i,o] + s[l,z,k]
               sum_(i in z) a_i sum_o c[o,k] x[i,o] <= hi[l,z,k]
               x >= 0, s >= 0

Every validation error is a ``RuimtepuzzelError`` (a ``ValueError``) that names the argument,
the offending index and what to do about it, because a planner's config compiles into these
arrays and the message is all they will see.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

from engine.errors import RuimtepuzzelError
from engine.paging import release_pages

__all__ = ["Problem", "TargetRows", "Units"]

# Beyond this many times the typical difference between a cell's options, a value leaves
# float64 fewer than four digits for those differences (and HiGHS's tolerances none).
VALUE_RANGE = 1e12


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


class ZoneIndex:
    """The zone of every cell in every zoning, (L, N) as ``Problem`` takes it, read from the
    cell groups: a cell's zones are its group's, so a problem keeps its 4-byte group index
    instead of one zone index per zoning (14 bytes a cell for the national config's seven
    zonings, 0.79 GB at 25 m).

    ``zones[l]`` is zoning l's zone of every cell, ``zones[l, cells]`` of some, as the (L, N)
    array gives them; ``np.asarray(zones)`` builds that array.
    """

    ndim = 2

    def __init__(self, groups: CellGroups, dtype):
        self.groups = groups
        self.dtype = np.dtype(dtype)
        self._table = groups.zones.astype(self.dtype)  # (G, L)

    @property
    def shape(self) -> tuple[int, int]:
        return self._table.shape[1], len(self.groups.group)

    def __len__(self) -> int:
        return self._table.shape[1]

    def __getitem__(self, key):
        zoning, cells = key if isinstance(key, tuple) else (key, slice(None))
        if isinstance(zoning, (int, np.integer)):
            # One zoning: a gather of its column, never the (N, L) block.
            return self._table[:, zoning][self.groups.group[cells]]
        return np.moveaxis(self._table[self.groups.group[cells]], -1, 0)[zoning]

    def __array__(self, dtype=None, copy=None):
        out = np.ascontiguousarray(self._table[self.groups.group].T)
        return out if dtype is None else out.astype(dtype)

    def astype(self, dtype) -> np.ndarray:
        return np.asarray(self, dtype=dtype)

    def min(self, axis: int) -> np.ndarray:
        """Per zoning (``axis=1``) the smallest zone index that a cell has."""
        return self._table.min(axis=0) if axis == 1 else np.asarray(self).min(axis=axis)

    def max(self, axis: int) -> np.ndarray:
        return self._table.max(axis=0) if axis == 1 else np.asarray(self).max(axis=axis)


@dataclass(frozen=True)
class Units:
    """The typical magnitudes of a problem, as powers of two.

    The solvers hand their LPs to HiGHS in these units (dividing by a power of two is exact)
    and state every tolerance relative to them, so a result does not depend on whether areas
    are in hectares or square metres, or values in euros or millions of euros.
    """

    area: float  # hectares: the mean cell area
    value: float  # value per hectare: the typical difference between a cell's options

    @property
    def objective(self) -> float:
        """One typical cell's worth of value: the floor of the relative gap."""
        return self.area * self.value


def _power_of_two(x: float) -> float:
    return float(2.0 ** np.round(np.log2(x))) if x > 0 and np.isfinite(x) else 1.0


def _value_range(value: np.ndarray) -> tuple[float, float]:
    """The largest and the smallest value, NaN if any is: max and min propagate NaN (a pass
    each, not a boolean copy of the array), slice by slice of cells, each slice's pages let
    go after it where the values are paged (:mod:`engine.paging`)."""
    vmax, vmin = -np.inf, np.inf
    for lo in range(0, value.shape[0], _RANGE_SLICE):
        part = value[lo : lo + _RANGE_SLICE]
        vmax, vmin = np.maximum(vmax, part.max()), np.minimum(vmin, part.min())
        release_pages(part)
    return float(vmax), float(vmin)


# Cells per slice of the values' range.
_RANGE_SLICE = 1 << 21


def _sampled_rows(value: np.ndarray) -> np.ndarray:
    """The values of every step-th cell, about 100,000 cells: a copy, gathered slice by
    slice of cells, each slice's pages let go after it where the values are paged (the
    kernel maps the cached pages around each one read, so a sample spread over the cells
    maps nearly all of them: 3.4 GB at 25 m)."""
    n = value.shape[0]
    step = max(1, n // 100_000)
    parts = []
    for lo in range(0, n, _RANGE_SLICE):
        parts.append(value[-(-lo // step) * step : lo + _RANGE_SLICE : step].copy())
        release_pages(value[lo : lo + _RANGE_SLICE])
    return np.concatenate(parts)


def _option_spread(value: np.ndarray, largest: float) -> float:
    """The median over (a sample of) the cells of the spread between their options' values;
    robust to a few outlying cells, and blind to a per-cell offset, which no allocation
    can change."""
    sample = _sampled_rows(value)
    spread = sample.max(axis=1).astype(np.float64) - sample.min(axis=1)
    spread = spread[spread > 0]
    if len(spread):
        return float(np.median(spread))
    return largest if largest > 0 else 1.0


def _per_zoning(name: str, arrays, n_zonings: int, zmax: np.ndarray, n_claims: int):
    """``arrays`` as one float array per zoning (None stays None); a bare 2-D array is the
    one zoning's."""
    if arrays is None:
        return None
    if isinstance(arrays, np.ndarray) and arrays.ndim == 2:
        if n_zonings == 1:
            return [np.asarray(arrays, dtype=np.float64)]
        shapes = ", ".join(str((int(z) + 1, n_claims)) for z in zmax)
        raise RuimtepuzzelError(
            f"{name}: one array of shape {arrays.shape} for {n_zonings} zonings; pass a list "
            f"with one (Z_l, K) array per zoning, here (Z_l, K) = {shapes} going by the zone "
            f"indices in `zones`"
        )
    arrays = list(arrays)
    if len(arrays) != n_zonings:
        raise RuimtepuzzelError(
            f"{name}: expected one array per zoning ({n_zonings}), got {len(arrays)}; "
            f"pass a list with a (zones, claims) array for every row of `zones`"
        )
    return [np.asarray(arr, dtype=np.float64) for arr in arrays]


def _check_targets(name: str, arrays: list, n_zones: np.ndarray, n_claims: int) -> list:
    for l, arr in enumerate(arrays):
        expected = (int(n_zones[l]), n_claims)
        if arr.shape != expected:
            raise RuimtepuzzelError(
                f"{name}[{l}]: shape {arr.shape}, expected {expected} "
                f"(zones in zoning {l} x claims); use NaN for zones without a target"
            )
        bad = np.argwhere(np.isinf(arr) | (arr < 0))
        if len(bad):
            z, k = bad[0]
            raise RuimtepuzzelError(
                f"{name}[{l}][{z}, {k}] = {arr[z, k]}: targets must be finite and >= 0 "
                f"hectares; use NaN for 'no target'"
            )
    return arrays


class Problem:
    """The arrays of the allocation LP (DESIGN.md), validated.

    Parameters
    ----------
    value : (N, O) float
        ``v[i, o]``, the value of option o in cell i per hectare (suitability minus conversion
        cost), in any unit. float32 is kept as float32; the solvers accumulate in float64.
        Entries must be finite and within ``VALUE_RANGE`` times the typical difference between
        a cell's options: forbid an option through ``allowed``, not with a huge value.
    contribution : (O, K) float
        ``c[o, k] >= 0``, hectares of claim k that one hectare of option o delivers. A
        combination (*meervoudig ruimtegebruik*) has several non-zero entries.
    zones : (L, N) int
        Zone of each cell in each zoning, ``0 .. Z_l - 1``, any integer dtype. A 1-D array is
        one zoning.
    lower, upper : list of (Z_l, K) float
        Per zoning, the lower target and upper bound of every (zone, claim) in hectares.
        NaN means none. With one zoning a bare (Z, K) array will do.
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
        contribution = np.asarray(contribution, dtype=np.float64)
        if not isinstance(zones, ZoneIndex):  # another problem's is valid already
            zones = np.asarray(zones)
            if zones.ndim == 1:
                zones = zones[None, :]
        if value.ndim != 2:
            raise RuimtepuzzelError(
                f"value: expected a 2-D (cells, options) array, got shape {value.shape}"
            )
        if zones.ndim == 2 and contribution.ndim == 2:
            # The other arguments agree on (N, O): a value array the other way round is the
            # likely mistake, and naming `contribution` for it would mislead.
            expected = (zones.shape[1], contribution.shape[0])
            if value.shape != expected and value.shape == expected[::-1]:
                raise RuimtepuzzelError(
                    f"value: shape {value.shape} is transposed: `zones` has {expected[0]} "
                    f"cells and `contribution` {expected[1]} options, so value must be "
                    f"(cells, options) = {expected}; pass value.T"
                )
        n_cells, n_options = value.shape
        if n_cells == 0 or n_options == 0:
            raise RuimtepuzzelError(f"value: shape {value.shape} has no cells or no options")
        vmax, vmin = _value_range(value)
        if not (np.isfinite(vmax) and np.isfinite(vmin)):
            i, o = np.argwhere(~np.isfinite(value))[0]
            raise RuimtepuzzelError(
                f"value[{i}, {o}] = {value[i, o]}: values must be finite; forbid the option "
                f"in that cell through `allowed` instead of a NaN or infinite value"
            )
        largest = max(abs(vmax), abs(vmin))
        spread = _option_spread(value, largest)
        release_pages(value)  # paged values (engine.paging): read here, not again until solved
        if largest > VALUE_RANGE * spread:
            i, o = np.unravel_index(int(np.argmax(np.abs(value))), value.shape)
            raise RuimtepuzzelError(
                f"value[{i}, {o}] = {value[i, o]:.6g}: value has entries up to {largest:.3g} "
                f"while a cell's options typically differ by {spread:.3g}; beyond "
                f"{VALUE_RANGE:.0e} times that, float64 keeps too few digits of those "
                f"differences. Rescale the values, or forbid the option in that cell through "
                f"`allowed` instead of giving it a huge value"
            )

        if contribution.ndim != 2 or contribution.shape[0] != n_options:
            raise RuimtepuzzelError(
                f"contribution: shape {contribution.shape}, expected ({n_options}, claims): "
                f"one row per option of `value`"
            )
        n_claims = contribution.shape[1]
        bad = np.argwhere(~np.isfinite(contribution) | (contribution < 0))
        if len(bad):
            o, k = bad[0]
            raise RuimtepuzzelError(
                f"contribution[{o}, {k}] = {contribution[o, k]}: an option delivers a "
                f"non-negative, finite share of a claim; a negative contribution (an option "
                f"that removes a claim) is not part of this LP, put that loss into `value`"
            )

        if zones.ndim != 2 or zones.shape[1] != n_cells:
            raise RuimtepuzzelError(
                f"zones: shape {zones.shape}, expected (zonings, {n_cells}): one zone index "
                f"per cell per zoning"
            )
        if not np.issubdtype(zones.dtype, np.integer):
            raise RuimtepuzzelError(f"zones: dtype {zones.dtype}, expected integers (zone indices)")
        n_zonings = zones.shape[0]
        if n_zonings == 0:
            raise RuimtepuzzelError("zones: at least one zoning is needed (e.g. one national zone)")
        zmin = zones.min(axis=1)
        zmax = zones.max(axis=1)
        if not np.can_cast(zones.dtype, np.int64):
            # uint64: the solvers compute with int64 zone indices.
            too_big = zmax > np.iinfo(np.int64).max
            if too_big.any():
                l = int(np.argmax(too_big))
                i = int(np.argmax(zones[l] > np.iinfo(np.int64).max))
                raise RuimtepuzzelError(
                    f"zones[{l}, {i}] = {zones[l, i]}: out of range for a zone index"
                )
            zones = zones.astype(np.int64)
            zmin, zmax = zmin.astype(np.int64), zmax.astype(np.int64)
        for l in range(n_zonings):
            if zmin[l] < 0:
                i = int(np.argmax(zones[l] < 0))
                raise RuimtepuzzelError(
                    f"zones[{l}, {i}] = {zones[l, i]}: zone indices start at 0; give cells "
                    f"outside every zone of a zoning their own 'rest' zone without targets"
                )
        lower = _per_zoning("lower", lower, n_zonings, zmax, n_claims)
        upper = _per_zoning("upper", upper, n_zonings, zmax, n_claims)
        # Zones per zoning: as many as the target arrays have rows, else as the indices say.
        n_zones = np.array(
            [
                lower[l].shape[0]
                if lower is not None and lower[l].ndim == 2
                else upper[l].shape[0]
                if upper is not None and upper[l].ndim == 2
                else int(zmax[l]) + 1
                for l in range(n_zonings)
            ],
            dtype=np.int64,
        )
        if lower is None:
            lower = [np.full((int(z), n_claims), np.nan) for z in n_zones]
        if upper is None:
            upper = [np.full((int(z), n_claims), np.nan) for z in n_zones]
        lower = _check_targets("lower", lower, n_zones, n_claims)
        upper = _check_targets("upper", upper, n_zones, n_claims)
        for l in range(n_zonings):
            if zmax[l] >= n_zones[l]:
                i = int(np.argmax(zones[l] >= n_zones[l]))
                raise RuimtepuzzelError(
                    f"zones[{l}, {i}] = {zones[l, i]}: out of range, zoning {l} has "
                    f"{n_zones[l]} zones in `lower`/`upper`; add rows for the missing zones "
                    f"or fix the zone index"
                )
            crossed = np.argwhere(lower[l] > upper[l])
            if len(crossed):
                z, k = crossed[0]
                raise RuimtepuzzelError(
                    f"lower[{l}][{z}, {k}] = {lower[l][z, k]} > upper[{l}][{z}, {k}] = "
                    f"{upper[l][z, k]}: the lower target exceeds the upper bound; lower the "
                    f"target or raise the bound"
                )

        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (n_cells, n_options):
                raise RuimtepuzzelError(
                    f"allowed: shape {allowed.shape}, expected {(n_cells, n_options)} like `value`"
                )
            empty = ~allowed.any(axis=1)
            release_pages(allowed)  # paged (engine.paging): read here, not again until solved
            if empty.any():
                i = int(np.argmax(empty))
                raise RuimtepuzzelError(
                    f"allowed[{i}, :] is all False: every cell needs at least one allowed "
                    f"option (the current use, 'keep', is always allowed)"
                )

        area_arr = np.asarray(area, dtype=np.float64)
        if area_arr.ndim == 0:
            if not (np.isfinite(area_arr) and area_arr > 0):
                raise RuimtepuzzelError(
                    f"area = {float(area_arr)}: cell area must be finite and > 0 ha"
                )
            area_arr = float(area_arr)
        else:
            if area_arr.shape != (n_cells,):
                raise RuimtepuzzelError(
                    f"area: shape {area_arr.shape}, expected a scalar or ({n_cells},)"
                )
            bad = ~(np.isfinite(area_arr) & (area_arr > 0))
            if bad.any():
                i = int(np.argmax(bad))
                raise RuimtepuzzelError(
                    f"area[{i}] = {area_arr[i]}: cell area must be finite and > 0 ha; drop "
                    f"cells without land from the problem instead"
                )

        if shortfall_penalty is not None:
            shortfall_penalty = np.asarray(shortfall_penalty, dtype=np.float64)
            if shortfall_penalty.shape != (n_claims,):
                raise RuimtepuzzelError(
                    f"shortfall_penalty: shape {shortfall_penalty.shape}, expected "
                    f"({n_claims},): one price per claim, or None for hard targets"
                )
            bad = ~(np.isfinite(shortfall_penalty) & (shortfall_penalty >= 0))
            if bad.any():
                k = int(np.argmax(bad))
                raise RuimtepuzzelError(
                    f"shortfall_penalty[{k}] = {shortfall_penalty[k]}: a penalty must be "
                    f"finite and >= 0; use None for hard targets"
                )

        self.value = value
        self.contribution = contribution
        if isinstance(zones, ZoneIndex):
            self.groups = zones.groups
        else:
            self.groups = _cell_groups(zones, [int(n) for n in n_zones])
            zones = ZoneIndex(self.groups, zones.dtype)
        self.zones = zones
        self.lower = lower
        self.upper = upper
        self.allowed = allowed
        self.area = area_arr
        self.shortfall_penalty = shortfall_penalty
        self._value_spread = spread
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
    def value_sample(self) -> np.ndarray:
        """(about 100,000, O) the values of every step-th cell, as a copy."""
        return _sampled_rows(self.value)

    def release_cells(self, cells: slice = slice(None)) -> None:
        """Hand the pages of ``value`` and ``allowed`` over ``cells`` back to the kernel
        where they live in a paged file (:mod:`engine.paging`): a pass that has read them
        holds none of them after. Nothing for arrays in memory."""
        release_pages(self.value[cells])
        if self.allowed is not None:
            release_pages(self.allowed[cells])

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
            # The scalar broadcast over the cells (no stride), then taken: only the given
            # cells' copy, no grid-sized index array to find their count.
            return np.array(np.broadcast_to(self.area, (self.n_cells,))[cells])
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
    def units(self) -> Units:
        """Typical cell area and value difference, as powers of two (see :class:`Units`)."""
        mean_area = float(np.mean(self.area)) if np.ndim(self.area) else float(self.area)
        return Units(area=_power_of_two(mean_area), value=_power_of_two(self._value_spread))

    def with_targets(self, lower: list, upper: list) -> Problem:
        """This problem with other target arrays of the same shapes; the rest is shared."""
        new = copy.copy(self)
        new.lower = [np.asarray(a, dtype=np.float64) for a in lower]
        new.upper = [np.asarray(a, dtype=np.float64) for a in upper]
        new.__dict__.pop("rows", None)
        new.__dict__.pop("group_rows", None)
        return new

    def row_index(self) -> list[np.ndarray]:
        """Per zoning a (Z_l, K) int array: the row of each (zone, claim), -1 where none."""
        out = [np.full((n, self.n_claims), -1, dtype=np.int64) for n in self.n_zones]
        rows = self.rows
        for l in range(self.n_zonings):
            sel = np.flatnonzero(rows.zoning == l)
            out[l][rows.zone[sel], rows.claim[sel]] = sel
        return out

    @cached_property
    def group_rows(self) -> np.ndarray:
        """(G, L, K) int64: the target row of claim k over the zone of group g in zoning l,
        or ``len(rows)`` where there is none.

        A cell group lies in one zone per zoning, so it meets at most L rows per claim: sums
        over rows become gathers of this size, whatever the number of rows (a dense groups x
        rows table grows with the square of the zones: 4,000 municipal zones made it 2 GB).
        The padding index lets a gather read a zero appended to any per-row vector.
        """
        index = self.row_index()
        zones = self.groups.zones
        out = np.stack([index[l][zones[:, l]] for l in range(self.n_zonings)], axis=1)
        out[out < 0] = len(self.rows)
        return out

    def row_incidence(self, group: np.ndarray, coef: np.ndarray) -> sparse.csr_matrix:
        """(R, n) sparse: item j, in cell group ``group[j]``, adds ``coef[j, k]`` (n, K)
        hectares to every target row of claim k whose zone holds that group."""
        n_rows = len(self.rows)
        rows = self.group_rows[group]  # (n, L, K)
        coef = np.broadcast_to(np.asarray(coef, dtype=np.float64)[:, None, :], rows.shape)
        keep = (rows < n_rows) & (coef != 0)
        item = np.broadcast_to(np.arange(len(group))[:, None, None], rows.shape)
        return sparse.csr_matrix((coef[keep], (rows[keep], item[keep])), shape=(n_rows, len(group)))

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
        """Hectares each target row receives from an allocation ``x`` (N, O), dense or sparse,
        summed zoning by zoning as the rows define it: the tests' reference. The engine sums
        them in one pass over the cells (:func:`engine.solve.solution.allocation_totals`)."""
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


def _cell_groups(zones: np.ndarray, n_zones: list[int]) -> CellGroups:
    """Group cells by their tuple of zones (``zones`` (L, N)), in the lexicographic order of
    those tuples.

    The tuple is a mixed-radix int64 key (no sort when the key space is small); where the
    next zoning's digit would overflow it, the keys so far are renumbered densely first
    (a sort), so any number of zonings and zones fits.
    """
    n_cells = zones.shape[1]
    key = np.zeros(n_cells, dtype=np.int64)
    n_keys = 1  # exact: a Python int
    renumbered = False
    for l, radix in enumerate(n_zones):
        if n_keys * radix >= 2**62:
            _, key = np.unique(key, return_inverse=True)
            key = key.reshape(-1).astype(np.int64)
            n_keys = int(key.max()) + 1
            renumbered = True
        key *= radix
        key += zones[l]
        n_keys *= radix
    if n_keys <= 4 * n_cells + 1_000_000:
        present = np.zeros(n_keys, dtype=bool)
        present[key] = True
        keys = np.flatnonzero(present)
        lookup = np.empty(n_keys, dtype=np.int32)
        lookup[keys] = np.arange(len(keys), dtype=np.int32)
        group = lookup[key]
    else:
        keys, group = np.unique(key, return_inverse=True)
        group = group.reshape(-1).astype(np.int32)
    if renumbered:
        # The keys no longer spell the zones: any cell of a group tells them.
        representative = np.empty(len(keys), dtype=np.int64)
        representative[group] = np.arange(n_cells)
        table = np.ascontiguousarray(zones[:, representative].T, dtype=np.int64)
    else:
        table = np.empty((len(keys), len(n_zones)), dtype=np.int64)
        rest = np.asarray(keys, dtype=np.int64).copy()
        for l in reversed(range(len(n_zones))):
            table[:, l] = rest % n_zones[l]
            rest //= n_zones[l]
    return CellGroups(group=group, zones=table)


def _names(arg: str, names, n: int, kind: str) -> list[str]:
    if names is None:
        return [f"{kind} {j}" for j in range(n)]
    names = [str(s) for s in names]
    if len(names) != n:
        raise RuimtepuzzelError(f"{arg}: {len(names)} names for {n} {kind}s")
    return names
