"""Prices of target rows, and the dual bound they certify.

For prices ``pi_r`` (one per target row, sign convention of DESIGN.md: > 0 where a lower
target binds, < 0 where an upper bound binds), Lagrangian duality gives the upper bound

    D(pi) = sum_i a_i max_(o allowed) (v[i,o] + sum_k c[o,k] pi(i,k))
            - sum_r ( max(pi_r, 0) lo_r - max(-pi_r, 0) hi_r )

on the LP optimum, valid whenever every price has the sign its row allows (a row without
an upper bound cannot have a negative price, ...) and, for elastic targets, no lower price
exceeds the claim's shortfall penalty. ``pi(i, k)`` sums the prices of every zoning's row of
claim k over the zone that contains cell i.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from engine.problem import Problem
from engine.solve import kernels


@dataclass
class DualStructure:
    """What the per-cell passes need of a problem, computed once per solve."""

    group: np.ndarray  # (N,) int32
    group_rows: np.ndarray  # (G, L, K) row of claim k over group g's zone in zoning l, or R
    contribution: np.ndarray  # (O, K) c[o, k]
    lower: np.ndarray  # (R,) NaN = none
    upper: np.ndarray  # (R,) NaN = none
    price_min: np.ndarray  # (R,) -inf, or 0 for rows without an upper bound
    price_max: np.ndarray  # (R,) +inf, 0 for rows without a lower target, or the penalty
    penalty: np.ndarray  # (R,) shortfall penalty of the row's claim, inf for hard targets
    area: np.ndarray  # (N,) or (1,) float64
    allowed: np.ndarray  # (N, O) bool or (1, 1) placeholder
    has_allowed: bool
    # The cells in chunks (engine.solve.chunked.CellChunks), in this process or on a Dask
    # cluster, for the passes over all of them; None: the arrays above, in one pass.
    cells: object = None

    @property
    def n_groups(self) -> int:
        return self.group_rows.shape[0]

    @property
    def n_rows(self) -> int:
        return len(self.lower)

    def claim_prices(self, prices: np.ndarray) -> np.ndarray:
        """(G, K) ``price(g, k)``: the prices of claim k's rows over group g's zones, summed."""
        return np.append(prices, 0.0)[self.group_rows].sum(axis=1)

    @cached_property
    def claim_zones(self) -> tuple[np.ndarray, np.ndarray]:
        """``(zones, reaches)``: cells of two groups that deliver only to claims whose rows
        over the groups' zones are the same meet the same target rows; a municipal housing
        target splits the cells that may take housing by municipality, not the others.

        Claims whose rows divide the groups alike form a family (every claim with province
        rows only, say). ``zones`` (G, F) int64: per group and family, an id of the rows
        the family's claims meet there, equal where they are the same rows; ``reaches``
        (O, F) bool: whether option o delivers to a claim of family f."""
        n_claims = self.group_rows.shape[2]
        ids = np.empty((self.n_groups, n_claims), dtype=np.int64)
        for k in range(n_claims):
            _, first, inverse = np.unique(
                self.group_rows[:, :, k], axis=0, return_index=True, return_inverse=True
            )
            # Ids by the group that first has them: claims dividing the groups alike agree.
            rank = np.empty(len(first), dtype=np.int64)
            rank[np.argsort(first)] = np.arange(len(first))
            ids[:, k] = rank[inverse.ravel()]
        partitions, family = np.unique(ids.T, axis=0, return_inverse=True)
        member = np.zeros((n_claims, len(partitions)), dtype=bool)
        member[np.arange(n_claims), family.ravel()] = True
        return np.ascontiguousarray(partitions.T), (self.contribution != 0) @ member

    def adjustment(self, prices: np.ndarray) -> np.ndarray:
        """``adj[g, o] = sum_k c[o,k] * price(g, k)`` for the row prices."""
        return self.claim_prices(prices) @ self.contribution.T

    def supply(self, assigned: np.ndarray) -> np.ndarray:
        """Hectares per row from hectares per (group, option)."""
        delivered = assigned @ self.contribution  # (G, K)
        weights = np.broadcast_to(delivered[:, None, :], self.group_rows.shape)
        return np.bincount(
            self.group_rows.ravel(), weights=weights.ravel(), minlength=self.n_rows + 1
        )[: self.n_rows]

    def reach(self) -> float:
        """The most a unit change of every price moves any adjusted value."""
        counts = (self.group_rows < self.n_rows).sum(
            axis=1
        )  # (G, K) rows per claim over each group
        return float(np.max(counts @ np.abs(self.contribution).T, initial=0.0))

    def without(self, rows: np.ndarray) -> DualStructure:
        """The same structure with these rows (a bool mask) dropped: no bounds, price 0."""
        return replace(
            self,
            lower=np.where(rows, np.nan, self.lower),
            upper=np.where(rows, np.nan, self.upper),
            price_min=np.where(rows, 0.0, self.price_min),
            price_max=np.where(rows, 0.0, self.price_max),
        )

    def groups_of(self, rows: np.ndarray) -> np.ndarray:
        """(G,) bool: the groups inside the zone of any of these rows (a bool mask)."""
        return np.append(rows, False)[self.group_rows].any(axis=(1, 2))

    def project(self, prices: np.ndarray) -> np.ndarray:
        """The nearest prices with the signs and caps every row allows."""
        return np.clip(prices, self.price_min, self.price_max)

    def target_term(self, prices: np.ndarray) -> float:
        """``sum_r max(pi,0) lo_r - max(-pi,0) hi_r`` (rows without the bound add nothing)."""
        lo = np.where(np.isnan(self.lower), 0.0, self.lower)
        hi = np.where(np.isnan(self.upper), 0.0, self.upper)
        return float(np.sum(np.maximum(prices, 0.0) * lo - np.maximum(-prices, 0.0) * hi))


def dual_structure(problem: Problem) -> DualStructure:
    rows = problem.rows
    has_lower = rows.has_lower
    has_upper = rows.has_upper
    if problem.elastic:
        penalty = problem.shortfall_penalty[rows.claim]
    else:
        penalty = np.full(len(rows), np.inf)
    price_max = np.where(has_lower, penalty, 0.0)
    price_min = np.where(has_upper, -np.inf, 0.0)
    area = np.atleast_1d(np.asarray(problem.area, dtype=np.float64))
    if problem.allowed is None:
        allowed, has_allowed = np.ones((1, 1), dtype=bool), False
    else:
        allowed, has_allowed = problem.allowed, True
    return DualStructure(
        group=problem.groups.group,
        group_rows=problem.group_rows,
        contribution=np.asarray(problem.contribution, dtype=np.float64),
        lower=rows.lower,
        upper=rows.upper,
        price_min=price_min,
        price_max=price_max,
        penalty=penalty,
        area=area,
        allowed=allowed,
        has_allowed=has_allowed,
    )


@dataclass
class PricedCells:
    """Every cell's best option under a set of prices, and the dual bound they give."""

    prices: np.ndarray
    choice: np.ndarray  # (N,) int16
    margin: np.ndarray  # (N,) best minus runner-up adjusted value
    bound: float


def price_cells(problem: Problem, structure: DualStructure, prices: np.ndarray) -> PricedCells:
    """One pass over the cells: best options and ``D(prices)`` (prices are projected first)."""
    prices = structure.project(prices)
    adj = structure.adjustment(prices)
    if structure.cells is not None:
        choice, margin, best_sum = structure.cells.best_options(adj)
    else:
        choice, margin, best_sum = kernels.best_options(
            problem.value,
            structure.allowed,
            structure.has_allowed,
            structure.group,
            structure.area,
            adj,
        )
    bound = best_sum - structure.target_term(prices)
    return PricedCells(prices=prices, choice=choice, margin=margin, bound=bound)
