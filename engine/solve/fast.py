"""The fast exact solver: prices first, then the few undecided cells exactly.

The allocation LP is fully described by one price per target row: at the optimum every
cell takes the option with the highest ``v[i,o] + sum_k c[o,k] price(i,k)``, and only about
as many cells as there are binding targets are split between options. So:

1. **Prices.** Minimise the entropy-smoothed dual (a log-sum-exp over each cell's options,
   temperature ``tau``) with L-BFGS-B over the few hundred prices. Each evaluation is one
   Numba pass over the cells. Started on a stratified sample of the cells, then on all cells
   with a lower temperature, where only the cells near a tie are visited per evaluation.
   These prices are close to the optimal ones but not exact. Where large classes of cells
   tie (a whole land-use class worth the same), the smoothed dual is so stiff at the low
   temperature that L-BFGS crawls; after a budget of evaluations (or at once, where more
   than a tenth of the cells lie near a tie) the prices come instead from an *aggregated
   LP*: cells whose values differ between options by nearly the same amounts share one set
   of columns, each with the options near its best under the sample's prices, which leaves
   a national problem a few ten thousand classes that HiGHS solves exactly.
2. **Repair.** Under those prices most cells have a clear best option; the cells whose
   runner-up is within a window (:func:`tie_window`) are *free*, each with the options
   within that window. Fix the others at their best option and solve the LP over the free
   cells exactly with HiGHS (targets reduced by what the fixed cells deliver). Free cells
   that are interchangeable (a land-use class whose options differ by the same amounts)
   share one set of columns. The LP's row duals are candidate exact prices; a box keeps
   them near the last ones (:class:`Box`) until the LP needs none. Each LP starts HiGHS
   where the last one ended, the first after the aggregated LP from that LP's optimum.
3. **Pricing.** One pass over all cells: any fixed cell whose option is no longer best
   under the new prices joins the free cells, any free cell's option the LP left out that
   now beats its options joins them, and step 2 repeats. When none is left, the prices are
   optimal duals of the whole LP: every cell takes a best option (fixed cells) or satisfies
   complementary slackness (LP cells).
4. **Certificate.** The dual bound ``D(prices)`` over all cells against the objective of
   the returned allocation gives ``gap``; it is computed independently of steps 1-3.

Ties are broken towards the lowest option index, in every pass and in ``choice``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize, sparse
from threadpoolctl import threadpool_limits

from engine import progress
from engine.problem import Problem
from engine.solve import class_kernels, kernels
from engine.solve.chunked import cell_chunks
from engine.solve.dual import DualStructure, PricedCells, dual_structure, price_cells
from engine.solve.feasibility import TOLERANCE, unmet
from engine.solve.indices import index_type
from engine.solve.lp import lower_bounds, solve_lp, upper_bounds
from engine.solve.solution import (
    Solution,
    WarmStartError,
    build_solution,
    row_scale,
    warn_gap,
)

# Cells in the sample of the rough price stage (all cells of a smaller problem). Enough for
# a fair sample of every zone.
SAMPLE_CELLS = 40_000
# With no price search (``search=False``), the repair stops when it frees this many times
# the cells it started with: national 250 m, a variant near its base frees 83 k -> 85 k
# cells, solar yield halved 27 k -> 63 k -> 361 k, whose LPs cost twice a price search.
SEARCHLESS_GROWTH = 4.0
# Starting where a solved problem's repair ended (``Near.end``), the repair stops when it
# frees this many times the cells of that repair's last LP, or of its own start where that
# is more, and at least SWITCH_CELLS (LPs that small cost less than any price search): its
# LPs then outgrow a full warm re-solve's. National 100 m, the rules lifted that the
# restricted re-solve answered: at most 0.97-1.03 times those 567,599 cells, but
# edge_homes_next_to_towns 1.48 times after its first LP and 1.85 by its fifth (394,703
# classes, 14.3 s), 27.9 s in all against 10.7 s in full.
NEAR_GROWTH = 1.25


def solve_fast(
    problem: Problem,
    *,
    prices: np.ndarray | list | None = None,
    gap_tolerance: float = 1e-9,
    max_repairs: int = 40,
    search: bool = True,
    near: Near | None = None,
    chunk_cells: int | None = None,
    client=None,
) -> Solution:
    """Solve ``problem`` exactly; ``prices`` (per zoning, or in row order) warm-start it.

    ``search=False`` with ``prices`` skips the price search: the repair starts from the
    given prices, exact all the same (it frees cells until none improves). Prices of a
    near neighbour (the praatkaart's variant of its base) settle in a few rounds; from far
    ones the repair stops once it frees :data:`SEARCHLESS_GROWTH` times the cells it started
    with, or more than :meth:`Near.free_limit` allows from where ``near``'s repair ended
    (its LPs would cost more than a price search), or after ``max_repairs`` rounds, and
    the status says the result is not the optimum (not certified, or an allocation that
    misses a target: a boxed repair LP's). ``near`` says more of the solved problem the
    prices come from (:class:`Near`): the repair then starts where that problem's ended,
    with the cells the change moves; when those are more than :meth:`Near.switch_limit`
    (:data:`SWITCH_CELLS` and :data:`SWITCH_SHARE` of the cells, at most
    :data:`SWITCH_MOST` of them), the price search runs after all
    (``timings['switching']`` says how many). Where a price search ends in the aggregated
    LP, that LP starts where ``near.end``'s did (``timings['aggregated_start']``).

    ``chunk_cells``: the passes of the price stage over chunks of about this many cells
    (:mod:`engine.solve.chunked`), on the workers of ``client`` (a ``distributed.Client``)
    if given; the same result bit for bit whatever the chunks."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    structure = dual_structure(problem)
    if chunk_cells is not None:
        structure.cells = cell_chunks(problem, structure, chunk_cells, client)
    scale = value_scale(problem)
    start_prices = initial_prices(problem, prices)
    local = local_rows(problem)
    timings["setup"] = time.perf_counter() - clock

    clock = time.perf_counter()
    moved = None
    if prices is not None and not search and near is not None:
        moved = near.moved(problem, structure, start_prices, scale, local)
        timings["switching"] = len(moved.switching)
        if len(moved.switching) > near.switch_limit(problem.n_cells):
            timings["search_reason"] = f"{len(moved.switching)} cells switch"
            moved, search = None, True
    if prices is not None and not search:
        approx, tau, converged = structure.project(start_prices), TAU_FINE * scale, True
    else:
        approx, tau, converged = smoothed_prices(
            problem, structure.without(local), start_prices, scale, warm=prices is not None
        )
    # Where the aggregated LP gave the prices, the first repair LP starts from its optimum.
    basis = aggregated_end = None
    if not converged:
        carried = None if near is None or near.end is None else near.end.aggregated
        if carried is not None:
            timings["aggregated_start"] = "carried"
        # One LP that tells nothing while HiGHS runs (national 25 m: about a minute).
        progress.advance(0, 1, "aggregated LP")
        aggregated = aggregated_lp(problem, structure, scale, approx, start=carried)
        progress.advance(1, 1, "aggregated LP")
        if aggregated is not None:
            approx, basis, aggregated_end = aggregated.prices, aggregated, aggregated.basis
        del aggregated
    timings["prices"] = time.perf_counter() - clock
    timings["prices_aggregated"] = not converged

    clock = time.perf_counter()
    if moved is not None:
        start = RepairStart(moved.priced, moved.free, moved.basis)
        timings["moved_free"] = len(start.free.cells)
    else:
        priced = price_cells(problem, structure, approx)
        free = near_ties(
            problem, structure, priced, tie_window(problem, tau), minimum=min_free(problem)
        ).join(*local_cells(problem, structure, local))
        start = RepairStart(priced, free, basis)
        del priced, free
    max_free = None if search else SEARCHLESS_GROWTH * len(start.free.cells)
    if max_free is not None and near is not None:
        max_free = min(max_free, near.free_limit(len(start.free.cells)))
    # Only the start holds them now: the repair lets them go once used.
    del moved, basis
    return repair(
        problem,
        structure,
        start,
        scale,
        local=local,
        max_free=max_free,
        clock=clock,
        timings=timings,
        gap_tolerance=gap_tolerance,
        max_repairs=max_repairs,
        aggregated=aggregated_end,
    )


def min_free(problem: Problem) -> int:
    """The fewest free cells the first repair LP starts with (see :func:`near_ties`)."""
    return 50 + 2 * len(problem.rows)


@dataclass
class RepairStart:
    """Where the repair begins: every cell priced under the price stage's prices, the free
    cells, and where the first LP starts HiGHS (None: from scratch). The repair takes them
    out (:meth:`take`), so that the first pass's choices and margins (10 bytes a cell) and
    the aggregated LP's class of every cell go once the next round has its own, instead of
    living in the caller to the solve's end."""

    priced: PricedCells | None
    free: FreeCells | None
    basis: object = None

    def take(self) -> tuple:
        taken = self.priced, self.free, self.basis
        self.priced = self.free = self.basis = None
        return taken


def repair(
    problem: Problem,
    structure: DualStructure,
    start: RepairStart,
    scale: float,
    *,
    local: np.ndarray,
    max_free: float | None = None,
    clock: float,
    timings: dict,
    gap_tolerance: float,
    max_repairs: int,
    aggregated: LPBasis | None = None,
) -> Solution:
    """Steps 2-4 from the ``start``'s cells priced under near-optimal prices and its free
    ones: repair LPs until no fixed cell improves, then the allocation and its certificate.
    ``local``: the rows over small zones (:func:`local_rows`), priced by the LP alone;
    ``max_free``: stop (uncertified) once more cells than this are free; ``clock``: when
    the repair stage began (``timings['repair']``); ``aggregated``: where the aggregated LP
    that gave the prices ended, kept in the solution's :class:`RepairEnd`."""
    priced, free, basis = start.take()
    # The options' indices as the price pass gives them (int16): 6 bytes a cell less than
    # int64 through the repair and in the Solution.
    choice = priced.choice.copy()
    tolerance = 1e-11 * scale
    # The last repair LP and its cells.
    lp_cells, last, lp_free = np.zeros(0, dtype=np.int64), None, free
    box: Box | None = Box.start(priced.prices, scale, unboxed=local)
    rounds = -1
    # The cells in play: free before the first LP, then after each LP those that gain from
    # another option.
    gaining: list[int] = [len(free.cells)]
    # Said before the first LP (national 25 m: minutes), so that the LPs' rate counts from
    # here and not from the stage's start.
    progress.advance(0, max_repairs, "repair LPs", at_most=True, note=f"{gaining[0]:,} cells free")
    for rounds in range(max_repairs):  # noqa: B007 (read after the loop: rounds taken)
        if max_free is not None and len(free.cells) > max_free:
            # Far from the given prices (cells joined, or widened for a hard target): the
            # status says it is no optimum, and the LP over them is not solved in vain.
            timings["stopped"] = f"{len(free.cells):,} cells free, above {max_free:,.0f}"
            break
        # The last pass's choices and margins (10 bytes a cell, 0.56 GB at 25 m) are not
        # held while HiGHS runs: only widening needs them, and their prices give them again.
        priced = PricedCells(priced.prices, None, None, priced.bound)
        lp = restricted_lp(problem, structure, choice, free, box, basis)
        if lp is None:
            # The fixed cells leave the free ones unable to meet a hard target: the prices
            # were too rough here. Free more cells, nearest to a tie first.
            priced = price_cells(problem, structure, priced.prices)
            free = _widen(problem, structure, priced, free)
            continue
        lp_cells, last, basis, lp_free = free.cells, lp, lp.basis, free
        priced = price_cells(problem, structure, lp.prices)
        better = improving_options(problem, structure, priced, choice, free, tolerance)
        gaining.append(0 if better is None else len(better[0]))
        progress.advance(
            rounds + 1,
            max_repairs,
            "repair LPs",
            at_most=True,
            expected=expected_repairs(rounds + 1, gaining, max_repairs),
            note=f"{gaining[-1]:,} cells still gain",
        )
        on_edge = box is not None and box.reached(lp.prices)
        if better is None and not lp.traded.any() and not on_edge:
            break
        if better is not None:
            free = free.join(*better)
        elif box is not None:
            # The free cells alone need prices beyond the box and no other cell joins at its
            # edge, or a price rests on its edge without trading (a degenerate LP: any price
            # beyond some value is optimal there, and one far out costs the dual bound its
            # last digits): only the LP without a box can say how far (or that a target is
            # unmet).
            box = None
        if box is not None:
            binding = lp.traded > BOX_TOLERANCE
            # Where the LP traded only rounding, the prices are final but for it: the LP
            # without a box gives them exactly, in the round it would take anyway.
            box = box.around(priced.prices, binding) if binding.any() else None
    else:
        warn_gap(
            f"fast: repair did not settle in {max_repairs} rounds; the certificate says how "
            f"far from optimal the result is",
            stacklevel=3,
        )
    timings["repair"] = time.perf_counter() - clock
    timings["repair_rounds"] = rounds + 1
    timings["lp_cells"] = int(len(lp_cells))
    timings["lp_classes"] = 0 if last is None else len(last.class_x)
    timings["local_rows"] = int(local.sum())

    clock = time.perf_counter()
    # The certificate needs the last pass's prices and bound, not its choices and margins
    # (10 bytes a cell): they go before the allocation matrix is built.
    prices, bound = priced.prices, priced.bound
    priced = None
    lp_x = sparse.csr_matrix((0, problem.n_options)) if last is None else last.x()
    choice[lp_cells] = _largest_share(lp_x)
    x = _allocation_matrix(problem, choice, lp_cells, lp_x)
    solution = build_solution(
        problem,
        x,
        prices,
        bound,
        method="fast",
        choice=choice,
        gap_tolerance=gap_tolerance,
        timings=timings,
    )
    solution.timings["certificate"] = time.perf_counter() - clock
    solution.repair_end = RepairEnd(lp_free, None if last is None else basis, aggregated)
    return solution


def expected_repairs(done: int, gaining: list[int], budget: int) -> int | None:
    """About how many repair LPs a repair takes in all, from ``gaining``, the cells in play:
    those free before the first LP, then those that gained from another option after each
    of the ``done`` LPs so far.

    The count falls about geometrically, faster towards the end (national 100 m: 538,760
    free, then 36,094, 2,085, 2, 0 after LPs 1-4; 250 m: 82,575, then 32,013, 14,394, 0, then
    3,604 and 17 where a price met its box, 0; 25 m: 9,061,160, then 483,567, 642, 0), so the
    LPs until it is under one cell at the last rate are an estimate from above; the budget
    bounds it. None where the count did not fall. The first LP's estimate comes from the
    free cells (at 25 m that LP takes minutes, and the budget alone said "at most 56 min")."""
    now = gaining[-1]
    if now == 0:
        return done  # ends here, unless a price met its box (then one LP more says so)
    if len(gaining) < 2 or gaining[-2] <= now:
        return None
    more = max(1, math.ceil(math.log(now) / math.log(gaining[-2] / now)))
    return min(done + more, budget)


@dataclass(frozen=True)
class RepairEnd:
    """Where a repair ended: the last LP's free cells (with their options) and the basis
    HiGHS ended it at. A neighbour's repair that starts here (:class:`Near`) solves that
    LP again but for the cells the change moved, and HiGHS starts a few pivots from its
    optimum (national 100 m: the first LP of a rule lifted, 160 k classes, from a cold
    start took most of the re-solve). ``aggregated``: where the aggregated LP that gave the
    prices ended (None: the prices did not come from one); a neighbour re-solved in full
    starts its aggregated LP there (national 100 m, the four rules re-solved in full: 45.0 s
    CPU from scratch, 36.3 s from here)."""

    free: FreeCells
    basis: LPBasis | None
    aggregated: LPBasis | None = None


# Beyond SWITCH_CELLS + SWITCH_SHARE x the cells switching under the old prices, the prices
# must move far and the repair from them takes many rounds over a large LP: the full warm
# re-solve (the price search from the old prices) gets there sooner. What the restricted
# re-solve costs grows with the cells that switch (60-350 microseconds CPU each, national),
# the full one with all cells with a fixed part (7-12 s at 250 m, 25-29 s at 100 m), so the
# limit is a share of the cells plus a floor, not a share alone. Measured, CPU restricted
# against full: national 250 m (limit 84,200, the 15 %) urban_homes_inside_towns, 61,400 switching,
# 3.5 s against 6.7 s; new_nature_in_the_network, 125,600, 14.0 s against 6.9 s; national
# 100 m (limit 184,000) natura2000, 155,300, 12.8 s against about 27 s; new_work_land_is_new,
# 213,700, 73.8 s against 28.7 s; urban_homes_inside_towns, 361,400 (10 %, under the 15 %
# that alone decided before), 38.8 s against 29.1 s. The switching cells do not tell every
# case: edge_homes_next_to_towns at 100 m (142,000) costs 33.4 s restricted against 26.9 s.
# On a smaller grid the floor would let every change take the restriction: there the limit
# stays the 15 % of the cells (SWITCH_MOST) measured at 250 m before.
SWITCH_SHARE = 0.032
SWITCH_CELLS = 72_000
SWITCH_MOST = 0.15


@dataclass(frozen=True)
class Near:
    """The solved problem that warm-start prices come from, for a repair straight from
    them (:func:`solve_fast` with ``search=False``): its ``allowed`` options where they
    differ from the problem's (None: the same, e.g. only targets moved) and where its repair
    ended (None: not known; the repair then starts from the cells near a tie)."""

    before: np.ndarray | None = None
    end: RepairEnd | None = None
    # The solved problem's (lower, upper) per zoning where a target moved (None: the same).
    targets: tuple | None = None
    # The cells whose allowed options differ in ``before``, where the caller knows them (None:
    # found by comparing every cell's: 0.11 s CPU at national 100 m for a rule that changes few).
    changed: np.ndarray | None = None
    # Beyond this share of the cells switching the price search runs (None: the limit of
    # SWITCH_CELLS, SWITCH_SHARE and SWITCH_MOST).
    switch_share: float | None = None
    # Whether the repair stops once it outgrows the solved problem's (:meth:`free_limit`);
    # False where the caller takes the restricted answer whatever it costs.
    limit_growth: bool = True

    def switch_limit(self, n_cells: int) -> float:
        """The most cells that may switch for the repair to start from the prices."""
        if self.switch_share is not None:
            return self.switch_share * n_cells
        return min(SWITCH_CELLS + SWITCH_SHARE * n_cells, SWITCH_MOST * n_cells)

    def free_limit(self, start_cells: int) -> float:
        """The most cells the repair from ``end`` may free, having started with
        ``start_cells``: :data:`NEAR_GROWTH` times the more of those and ``end``'s last LP's,
        at least :data:`SWITCH_CELLS` (no limit without ``end`` or ``limit_growth``)."""
        if self.end is None or not self.limit_growth:
            return math.inf
        return max(NEAR_GROWTH * max(len(self.end.free.cells), start_cells), SWITCH_CELLS)

    def moved(self, problem, structure, prices, scale, local) -> Moved:
        """Where the repair starts: the cells priced under ``prices`` projected on the
        signs and caps this problem allows (as the path without ``near`` starts: a target
        dropped or a penalty lowered leaves the solved problem's prices outside them), the
        free cells (the solved problem's last LP's, else those near a tie; the local rows'
        cells; the switching cells) and the basis."""
        priced = price_cells(problem, structure, structure.project(prices))
        window = tie_window(problem, TAU_FINE * scale)
        if self.end is None:
            free = near_ties(problem, structure, priced, window, minimum=min_free(problem))
        else:
            free = _still_allowed(problem, structure, priced, self.end.free, scale)
        switching, options = _switching(
            problem, structure, priced, self.before, window, self.changed
        )
        free = free.join(*local_cells(problem, structure, local)).join(switching, options)
        free = free.join(*moved_target_cells(problem, structure, priced.prices, self.targets))
        return Moved(priced, free, None if self.end is None else self.end.basis, switching)


@dataclass(frozen=True)
class Moved:
    priced: PricedCells
    free: FreeCells
    basis: LPBasis | None
    switching: np.ndarray  # the cells whose best option the change moves


# Of the solved problem's last free cells, those this close to a tie (in value scales) under
# its exact prices start a neighbour's repair: the cells its LP must split. The others sit at
# their best option; where the neighbour's prices move enough to change that, the repair
# frees them. National 100 m: 277 k of 561 k cells, 11 k classes of 176 k, a lifted rule's
# re-solve 2.5 s CPU instead of 5.4 s.
TIED = 1e-6


def _still_allowed(problem, structure, priced, free: FreeCells, scale: float) -> FreeCells:
    """The solved problem's free cells that tie under the prices (:data:`TIED`), with the
    options the problem still allows, and each cell's best under the prices: a rule
    tightened may have taken every option the cell had in the last LP."""
    if free.options.shape[1] != problem.n_options or (
        len(free.cells) and free.cells[-1] >= problem.n_cells
    ):
        raise WarmStartError(
            f"near: the repair end has {len(free.cells)} free cells with "
            f"{free.options.shape[1]} options, not of a problem with {problem.n_cells} cells "
            f"and {problem.n_options} options; pass the Solution of this problem's neighbour"
        )
    tied = priced.margin[free.cells] < TIED * scale
    cells, options = free.cells[tied], free.options[tied]
    if structure.has_allowed:
        options &= structure.allowed[cells]
    options[np.arange(len(cells)), priced.choice[cells]] = True
    return FreeCells(cells, options)


def _switching(problem, structure, priced, before, window, changed=None):
    """The cells whose best option under the old prices is another than it was (an option
    lifted beats it, or it was taken away), each with the options near its new best and its
    old best: the cells a change of rules moves, as ``(cells, options)``. A cell whose best
    stays keeps it unless the prices move, and then the repair frees it."""
    nothing = np.zeros(0, dtype=np.int64), np.zeros((0, problem.n_options), dtype=bool)
    if before is None:
        return nothing
    now = np.ones_like(before) if problem.allowed is None else problem.allowed
    if changed is None:
        changed = np.flatnonzero((before != now).any(axis=1))
    # A cell that lost no option and whose best now was allowed before had that same best
    # before (the first of equals, in the price pass as in argmax below): only the others
    # can switch, and their values are what this costs (national 100 m: rules that change
    # 0.85-1.0 M cells switch a few hundred).
    best_now = priced.choice[changed]
    lost = (before[changed] & ~now[changed]).any(axis=1)
    changed = changed[lost | ~before[changed, best_now]]
    if len(changed) == 0:
        return nothing
    values = problem.value[changed].astype(np.float64)
    values += structure.adjustment(priced.prices)[structure.group[changed]]
    old = np.argmax(np.where(before[changed], values, -np.inf), axis=1)
    moves = old != priced.choice[changed]
    cells, old = changed[moves], old[moves]
    options = _near_best(problem, structure, priced.prices, cells, window)
    # The old best, where it is still allowed: the LP may keep the cell as it was.
    options[np.arange(len(cells)), old] |= now[cells, old]
    return cells, options


def moved_target_cells(problem, structure, prices, targets):
    """The cells a moved target needs, as ``(cells, options)``: per row whose bound moved
    from the solved problem's ``targets`` (lower, upper per zoning) by ``d`` hectares, the
    cells of its zone that give or take its claim first as the row's price moves (those a
    step of price nearest to switching, :func:`supply`) until they make up ``d``, each with
    its best option that delivers the claim and its best that does not.

    Under the old prices no cell switches for a moved target, so the repair would start
    without any cell that can meet it: the LP bought the hectares at the edge of its box,
    round after round, and its prices wandered off on rows the move does not touch (national
    100 m, nature moved from Groningen to Flevoland: 674 k cells joined in one round, the
    repair gave up at its growth limit after 40 s CPU and the full re-solve answered)."""
    nothing = np.zeros(0, dtype=np.int64), np.zeros((0, problem.n_options), dtype=bool)
    if targets is None:
        return nothing
    rows = problem.rows
    lower, upper = (
        np.array([side[l][z, k] for l, z, k in zip(rows.zoning, rows.zone, rows.claim)])
        for side in targets
    )
    # A bound that appears or goes away has no hectares to move; the box's projection and
    # the pricing deal with it. Each side on its own (a lower bound raised and an upper one
    # lowered would cancel in a sum), and a move within the feasibility test's tolerance is
    # its nudge of a target a hair out of reach, not a move.
    tiny = TOLERANCE * row_scale(problem)
    found = [nothing]
    for side_moved in (rows.lower - lower, rows.upper - upper):
        side_moved = np.nan_to_num(side_moved)
        for r in np.flatnonzero(np.abs(side_moved) > tiny):
            found.append(_cells_for_move(problem, structure, prices, r, side_moved[r]))
    return tuple(np.concatenate(part) for part in zip(*found))


def _cells_for_move(problem, structure, prices, r: int, moved: float):
    """The cells of row ``r``'s zone nearest to giving (``moved`` < 0) or taking its claim,
    until they make up ``|moved|`` hectares, with their options (:func:`moved_target_cells`)."""
    rows = problem.rows
    l, k = rows.zoning[r], rows.claim[r]
    cells = np.flatnonzero(problem.zones[l] == rows.zone[r])
    steps = supply(problem, structure, prices, cells, k, drawing=bool(moved > 0))
    enough = np.searchsorted(np.cumsum(steps.hectares), abs(moved)) + 1
    options = np.zeros((min(enough, len(steps.cells)), problem.n_options), dtype=bool)
    at = np.arange(len(options))
    options[at, steps.claim_option[:enough]] = True
    options[at, steps.other_option[:enough]] = True
    return steps.cells[:enough], options


@dataclass(frozen=True)
class Supply:
    """Cells that give or take a claim as its price moves, nearest first."""

    cells: np.ndarray  # (M,) int64
    step: np.ndarray  # (M,) the price move per hectare of the claim at which each switches
    hectares: np.ndarray  # (M,) of the claim each gives or takes
    claim_option: np.ndarray  # (M,) its best option delivering the claim
    other_option: np.ndarray  # (M,) its best option not delivering it


def supply(problem, structure, prices, cells, claim: int, *, drawing: bool) -> Supply:
    """Of ``cells``, those whose best option changes as the price of ``claim`` rises
    (``drawing``: a claim option loses by the step) or falls (a claim option wins by it),
    under ``prices`` (row order), sorted by that step."""
    values = _adjusted_values(problem, structure, prices, cells)
    serves = problem.contribution[:, claim] > 0
    with np.errstate(invalid="ignore"):
        best_claim = np.where(serves[None, :], values, -np.inf)
        best_other = np.where(~serves[None, :], values, -np.inf)
        on, off = best_claim.argmax(axis=1), best_other.argmax(axis=1)
        at = np.arange(len(cells))
        u_on, u_off = best_claim[at, on], best_other[at, off]
        per_ha = problem.contribution[on, claim]
        if drawing:
            take = np.isfinite(u_on) & (u_on < u_off)
            step = (u_off - u_on)[take] / per_ha[take]
        else:
            take = np.isfinite(u_on) & (u_on >= u_off) & np.isfinite(u_off)
            step = (u_on - u_off)[take] / per_ha[take]
    order = np.argsort(step, kind="stable")
    hectares = (problem.area_of(cells) * per_ha)[take]
    return Supply(
        cells[take][order], step[order], hectares[order], on[take][order], off[take][order]
    )


def value_scale(problem: Problem) -> float:
    """A typical spread of the values, the unit for temperatures and tolerances."""
    spread = float(np.std(np.asarray(problem.value_sample(), dtype=np.float64)))
    return spread if spread > 0 else problem.units.value


def initial_prices(problem: Problem, prices) -> np.ndarray:
    """Warm-start ``prices`` (per zoning, or in row order) as one array in row order; zeros
    for None. Raises :class:`WarmStartError` when they belong to another problem."""
    n_rows = len(problem.rows)
    if prices is None:
        return np.zeros(n_rows)
    rows = problem.rows
    if isinstance(prices, np.ndarray) and prices.ndim == 1:
        if prices.shape != (n_rows,):
            raise WarmStartError(f"prices: shape {prices.shape}, expected ({n_rows},) in row order")
        start = prices.astype(np.float64)
        _check_finite(problem, start, lambda r: f"prices[{r}]")
        return start
    per_zoning = [np.asarray(p, dtype=np.float64) for p in prices]
    if len(per_zoning) != problem.n_zonings:
        raise WarmStartError(
            f"prices: {len(per_zoning)} arrays for {problem.n_zonings} zonings; pass "
            f"Solution.prices of a problem with the same zonings"
        )
    for l, given in enumerate(per_zoning):
        expected = (problem.n_zones[l], problem.n_claims)
        if given.shape != expected:
            raise WarmStartError(
                f"prices: zoning {problem.zoning_names[l]!r} has shape {given.shape}, "
                f"expected {expected} (zones, claims); warm-start from a problem with the "
                f"same zonings, zones and claims"
            )
    start = np.array(
        [per_zoning[l][z, k] for l, z, k in zip(rows.zoning, rows.zone, rows.claim)],
        dtype=np.float64,
    ).reshape(n_rows)
    _check_finite(
        problem, start, lambda r: f"prices[{rows.zoning[r]}][{rows.zone[r]}, {rows.claim[r]}]"
    )
    return start


def _check_finite(problem: Problem, prices: np.ndarray, name) -> None:
    # A NaN passes every comparison and an infinity every bound: both would reach L-BFGS-B
    # and the kernels as nonsense rather than fail there.
    bad = np.flatnonzero(~np.isfinite(prices))
    if len(bad):
        r = int(bad[0])
        raise WarmStartError(
            f"{name(r)} = {prices[r]} (the price of {problem.describe_row(r)}): warm-start "
            f"prices must be finite; pass Solution.prices of a solved problem, or no prices"
        )


# -- 0. rows of small zones ---------------------------------------------------------------

# A target over a zone of at most this many cells, and at most this share of all cells, is
# *local*: the repair LP decides all its cells from the start, and finds its price exactly.
# Zones larger than that the price stage handles as it does provinces.
LOCAL_CELLS = 256
LOCAL_SHARE = 0.01


def local_rows(problem: Problem) -> np.ndarray:
    """(R,) bool: the target rows over zones of at most :data:`LOCAL_CELLS` cells (and
    :data:`LOCAL_SHARE` of all cells).

    The smoothed dual meets a target through the soft weights of the cells near its
    price's tie; over a few cells that target's price sits in a window a temperature wide,
    its curvature a few cells' against a province's millions, and L-BFGS crawls (200 single
    cells with a target took minutes instead of a second). Such rows leave the price stage
    (price 0 there) and their cells, each with every allowed option, go straight to the
    repair LP, which is exact and small for them.
    """
    rows = problem.rows
    local = np.zeros(len(rows), dtype=bool)
    limit = min(LOCAL_CELLS, LOCAL_SHARE * problem.n_cells)
    # A zone's cells counted over the cell groups, each in one zone of every zoning: one
    # pass over the cells (national 100 m, seven zonings: 0.02 s instead of 0.3 s a solve).
    groups = problem.groups
    group_cells = np.bincount(groups.group, minlength=groups.count)
    for l in range(problem.n_zonings):
        cells = np.bincount(groups.zones[:, l], weights=group_cells, minlength=problem.n_zones[l])
        in_zoning = rows.zoning == l
        local[in_zoning] = cells[rows.zone[in_zoning]] <= limit
    return local


def local_cells(problem: Problem, structure: DualStructure, local: np.ndarray):
    """The cells of the local rows' zones with every option they allow, as ``(cells,
    options)`` for :meth:`FreeCells.join`."""
    cells = np.flatnonzero(structure.groups_of(local)[structure.group])
    if structure.has_allowed:
        return cells, structure.allowed[cells]
    return cells, np.ones((len(cells), problem.n_options), dtype=bool)


# -- 1. prices from the smoothed dual ------------------------------------------------------

# Temperatures as fractions of the value scale: a rough one on the sample, a fine one on all
# cells. The fine prices come within about TAU_FINE of the optimal ones, so the cells left
# for the exact LP are those within a few TAU_FINE of a tie: about 0.1 % of them.
TAU_SAMPLE = 0.01
TAU_FINE = 0.0003
# Cells whose two best options are WINDOW apart keep their best option while the prices
# settle; they enter the smoothed dual as constants.
WINDOW = 0.03
MAX_ROUNDS = 20
# The value step of the aggregated LP, as a fraction of the value scale: coarse enough to
# leave a national grid a few ten thousand classes, fine enough for the repair to start near.
AGGREGATE_STEP = 0.05
# How far behind a cell's best under the sample stage's prices, in value scales, an option
# may be and still enter the aggregated LP. National 100 m: 567 k columns instead of 877 k,
# HiGHS 3.3 s CPU instead of 9 s, the same four repair rounds after it; at 1 scale the
# repair needed 7 rounds over 50% more cells, at 3 the LP kept 853 k columns.
AGGREGATE_WINDOW = 2.0
# Evaluations of the fine stage after which it gives way to the aggregated LP: a problem
# without large tied classes settles well within them.
FINE_EVALUATIONS = 300
# The share of all cells near a tie (active in the fine stage) beyond which the prices go to
# the aggregated LP without the fine stage: large tied classes make the smoothed dual stiff,
# and each evaluation visits them all. National 100 m: 13% near a tie under the sample's
# prices, 43% after the first round, 131 evaluations (5-6 s CPU) for prices the aggregated
# LP replaced; 250 m: 17%, replaced too; the synthetic instances: 3-4%, settled. A warm start
# too: national 100 m from its own optimum's prices x 1.1 or x 0.5, 16.1 and 14.9 s -> 11.4
# and 11.2 s (the fine stage spent its budget and the aggregated LP answered all the same);
# from the optimum itself 9.8 s -> 10.6 s wall, 13.2 -> 11.3 s CPU; the rule costs' three
# full re-solves 19.2-19.9 s CPU -> 11.2-13.6 s.
STIFF_SHARE = 0.1


@dataclass
class _Cells:
    """A set of cells as the kernels take them: contiguous arrays. With the cells in
    chunks (``structure.cells``), ``select`` and ``every`` give chunks instead, with the
    same ``smoothed_terms`` and ``smallest_area``."""

    value: np.ndarray
    allowed: np.ndarray
    group: np.ndarray
    area: np.ndarray
    has_allowed: bool

    @classmethod
    def select(cls, problem: Problem, structure: DualStructure, index, weight: float = 1.0):
        area = structure.area if len(structure.area) == 1 else structure.area[index]
        if structure.cells is not None:
            smallest = float(np.min(area)) * weight if len(area) else 0.0
            return structure.cells.select(index, weight, smallest)
        allowed = structure.allowed[index] if structure.has_allowed else structure.allowed
        return cls(
            value=np.ascontiguousarray(problem.value[index]),
            allowed=np.ascontiguousarray(allowed),
            group=np.ascontiguousarray(structure.group[index]),
            area=np.ascontiguousarray(area * weight),
            has_allowed=structure.has_allowed,
        )

    @classmethod
    def every(cls, problem: Problem, structure: DualStructure):
        """All cells, without copying the problem's arrays."""
        if structure.cells is not None:
            return structure.cells
        return cls(
            value=np.ascontiguousarray(problem.value),
            allowed=structure.allowed,
            group=structure.group,
            area=structure.area,
            has_allowed=structure.has_allowed,
        )

    @property
    def smallest_area(self) -> float:
        return float(np.min(self.area)) if len(self.area) else 0.0

    def smoothed_terms(self, adj: np.ndarray, tau: float, n_groups: int):
        return kernels.smoothed_dual_terms(
            self.value, self.allowed, self.has_allowed, self.group, self.area, adj, tau, n_groups
        )


class _SmoothedDual:
    """The smoothed dual over a set of cells, as a function of scaled prices for L-BFGS-B.

    Variables are ``lambda_r >= 0`` for lower targets and ``mu_r >= 0`` for upper bounds
    (price = lambda - mu), divided by the value scale; the function is divided by the total
    area, so both are of order one whatever the units. ``settled`` cells, whose best option
    is far ahead of the rest, add ``sum a_i (v + adj)`` of that option: a constant and a
    fixed (group, option) area.
    """

    def __init__(
        self,
        cells: _Cells,
        structure: DualStructure,
        scale: float,
        total_area: float,
        settled: tuple[float, np.ndarray] | None = None,
    ):
        self.cells = cells
        self.structure = structure
        self.scale = scale
        self.norm = total_area * scale
        self.settled_value, self.settled_area = settled or (0.0, None)
        self.lower_rows = np.flatnonzero(~np.isnan(structure.lower))
        self.upper_rows = np.flatnonzero(~np.isnan(structure.upper))
        self.lower = structure.lower[self.lower_rows]
        self.upper = structure.upper[self.upper_rows]
        penalty = structure.penalty[self.lower_rows] / scale
        self.bounds = [(0.0, None if np.isinf(p) else p) for p in penalty] + [(0.0, None)] * len(
            self.upper_rows
        )
        self.tau = 1.0
        self.evaluations = 0
        # Stop when every target is met to within half the smallest cell (of the sample's
        # weighted cells), or a millionth of the land: finer prices only shift which of the
        # near-tied cells the exact repair LP decides, not how many there are.
        self.gtol = max(0.5 * cells.smallest_area / total_area, 1e-6)

    def prices(self, z: np.ndarray) -> np.ndarray:
        p = np.zeros(self.structure.n_rows)
        p[self.lower_rows] += z[: len(self.lower_rows)]
        p[self.upper_rows] -= z[len(self.lower_rows) :]
        return p * self.scale

    def variables(self, prices: np.ndarray) -> np.ndarray:
        p = prices / self.scale
        return np.concatenate(
            [np.maximum(p[self.lower_rows], 0), np.maximum(-p[self.upper_rows], 0)]
        )

    def __call__(self, z: np.ndarray):
        self.evaluations += 1
        prices = self.prices(z)
        adj = self.structure.adjustment(prices)
        f, assigned = self.cells.smoothed_terms(adj, self.tau, self.structure.n_groups)
        if self.settled_area is not None:
            f += self.settled_value + float(np.sum(self.settled_area * adj))
            assigned = assigned + self.settled_area
        supply = self.structure.supply(assigned)
        lam = z[: len(self.lower_rows)] * self.scale
        mu = z[len(self.lower_rows) :] * self.scale
        f = f - lam @ self.lower + mu @ self.upper
        grad = np.concatenate(
            [supply[self.lower_rows] - self.lower, self.upper - supply[self.upper_rows]]
        )
        return f / self.norm, grad * (self.scale / self.norm)

    def minimise(
        self,
        prices: np.ndarray,
        tau: float,
        iterations: int = 500,
        radius: float = np.inf,
        evaluations: int = 15_000,
    ) -> tuple[np.ndarray, bool]:
        """L-BFGS-B from ``prices``, each scaled variable kept within ``radius`` of its start,
        for at most about ``evaluations`` evaluations.

        Returns the prices and whether they lie inside that trust region (not on its edge).
        """
        self.tau = tau
        z0 = self.variables(prices)
        if len(z0) == 0:
            return prices, True
        r = radius / self.scale
        bounds = [
            (max(lo, z - r), z + r if hi is None else min(hi, z + r))
            for z, (lo, hi) in zip(z0, self.bounds)
        ]
        # L-BFGS-B's small dense products only lose time to BLAS threads waking up.
        with threadpool_limits(limits=1, user_api="blas"):
            result = optimize.minimize(
                self,
                z0,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={
                    "maxiter": iterations,
                    "maxfun": evaluations,
                    "ftol": 1e-15,
                    "gtol": self.gtol,
                    "maxcor": 30,
                },
            )
        edge = np.abs(result.x - z0) >= r * (1 - 1e-6)
        return self.prices(result.x), not edge.any()


def smoothed_prices(
    problem: Problem,
    structure: DualStructure,
    prices: np.ndarray,
    scale: float,
    warm: bool = False,
) -> tuple[np.ndarray, float, bool]:
    """Near-optimal prices, the temperature they were found at, and whether the fine stage
    settled (False: it spent :data:`FINE_EVALUATIONS` first, or found more than
    :data:`STIFF_SHARE` of the cells near a tie).

    The sample stage starts from ``prices``; with ``warm`` prices (of a neighbouring
    problem) the fine stage starts from whichever of those and the sample's is better by
    its own objective: near prices lie closer than the sample's smoothing bias, far ones
    are better replaced.
    """
    total_area = float(np.sum(problem.area_of()))
    stride = max(1, problem.n_cells // SAMPLE_CELLS)
    sample = _Cells.select(
        problem, structure, stratified_sample(problem.n_cells, stride), weight=stride
    )
    start = prices
    prices, _ = _SmoothedDual(sample, structure, scale, total_area).minimise(
        prices, TAU_SAMPLE * scale
    )
    if warm:
        fine = _SmoothedDual(_Cells.every(problem, structure), structure, scale, total_area)
        fine.tau = TAU_FINE * scale
        prices = min((structure.project(start), prices), key=lambda p: fine(fine.variables(p))[0])
    tau = TAU_FINE * scale
    window = WINDOW * scale
    # Settled cells keep their best option, far enough ahead for the smoothing to be exact
    # to exp(-30), while no adjusted value moves more than half of (window - 30 tau). Each
    # round minimises within a trust region a few times that size (the local model is
    # unbounded where the active cells alone cannot meet a target), then re-centres on the
    # new prices; the round that moves less than the safe distance is exact and the last.
    # Far from the optimum a round that ends on the edge of its region doubles it; the
    # frozen cells make the local model a minorant of the smoothed dual, so a step that
    # raised the dual bound by more than smoothing explains is taken again from its centre,
    # shorter, and no later region grows back to the size that failed.
    safe = (window - 30 * tau) / 2
    reach = structure.reach()
    base_radius = 4 * safe / reach if reach > 0 else np.inf
    slack = tau * np.log(problem.n_options) * total_area
    radius, last_step = base_radius, None  # last_step: (centre, radius) of the last round
    too_far = np.inf  # the smallest radius whose step was taken back
    evaluations = 0
    # Cells visited, against a budget of FINE_EVALUATIONS evaluations over a tenth of them:
    # where most cells stay near a tie (a 100 m grid with the plausible plan: 1.5 M of 3.5 M)
    # the evaluations cost ten times as much and settle no sooner.
    visits, budget = 0, FINE_EVALUATIONS * problem.n_cells / 10
    for _ in range(MAX_ROUNDS):
        if evaluations >= FINE_EVALUATIONS or visits >= budget:
            break
        priced = price_cells(problem, structure, prices)
        if last_step is not None:
            centre, step_radius = last_step
            if step_radius > base_radius and priced.bound > centre.bound + slack:
                too_far = min(too_far, step_radius)
                priced, radius = centre, max(base_radius, step_radius / 4)
        active = priced.margin < window
        if np.count_nonzero(active) > STIFF_SHARE * problem.n_cells:
            return priced.prices, tau, False
        settled = ~active
        settled_part = (
            _assigned_value(problem, priced.choice, settled, structure.area),
            kernels.assigned_area(
                priced.choice,
                settled,
                structure.group,
                structure.area,
                structure.n_groups,
                problem.n_options,
            ),
        )
        cells = _Cells.select(problem, structure, np.flatnonzero(active))
        local = _SmoothedDual(cells, structure, scale, total_area, settled_part)
        n_active = max(int(active.sum()), 1)
        allowed = int(min(FINE_EVALUATIONS - evaluations, np.ceil((budget - visits) / n_active)))
        prices, inside = local.minimise(
            priced.prices, tau, radius=radius, evaluations=max(allowed, 1)
        )
        prices = structure.project(prices)
        evaluations += local.evaluations
        visits += local.evaluations * n_active
        progress.advance(evaluations, FINE_EVALUATIONS, "price evaluations", at_most=True)
        moved = np.max(np.abs(structure.adjustment(prices) - structure.adjustment(priced.prices)))
        if inside and moved <= safe and local.evaluations < allowed:
            return prices, tau, True
        last_step = (priced, radius)
        if not inside:
            radius = max(base_radius, min(2 * radius, too_far / 2))
    return prices, tau, False


def _assigned_value(problem: Problem, choice, selected, area) -> float:
    """The value of the ``selected`` cells' ``choice``: a pass over all cells, whose pages
    of paged values (engine.paging) go after it."""
    value = kernels.assigned_value(problem.value, choice, selected, area)
    problem.release_cells()
    return value


def stratified_sample(n: int, stride: int) -> np.ndarray:
    """One cell at a random place in every run of ``stride`` cells (fixed seed).

    A plain stride would alias with the raster's row length and sample a few columns only.
    """
    if stride == 1:
        return np.arange(n)
    starts = np.arange(0, n - stride + 1, stride)
    return starts + np.random.default_rng(0).integers(0, stride, size=len(starts))


# -- 2. the exact LP over the free cells ---------------------------------------------------


@dataclass(frozen=True)
class FreeCells:
    """The cells the repair LP decides, each with the options it may take there.

    An option far behind a cell's best under near-optimal prices cannot enter the optimum
    unless the prices move that far, so the LP leaves it out; the pricing step puts it back
    if they do.
    """

    cells: np.ndarray  # (M,) int64, ascending
    options: np.ndarray  # (M, O) bool

    def mask(self, n_cells: int) -> np.ndarray:
        """(N,) bool: True for the free cells."""
        is_free = np.zeros(n_cells, dtype=bool)
        is_free[self.cells] = True
        return is_free

    def join(self, cells: np.ndarray, options: np.ndarray) -> FreeCells:
        """These cells and options as well."""
        if len(cells) == 0:
            return self
        cells = np.ascontiguousarray(cells, dtype=np.int64)
        order = np.argsort(cells, kind="stable")
        return FreeCells(
            *kernels.joined_free(
                np.ascontiguousarray(self.cells, dtype=np.int64),
                np.ascontiguousarray(self.options, dtype=bool),
                cells,
                np.ascontiguousarray(options, dtype=bool),
                order,
            )
        )


def tie_window(problem: Problem, tau: float) -> float:
    """How far behind its best an option may be and still matter at temperature ``tau``.

    The smoothed dual gives an option ``d`` behind the best a weight of about
    ``exp(-d / tau)``; a claim that is met by a large class of near-identical cells sits
    where those cells' weights add up to the missing hectares, a few ``tau`` behind the tie
    for a small class and ``tau * ln(N)`` for one of all N cells. Beyond this window all
    options together weigh less than ``exp(-3)`` cells.
    """
    return tau * (3.0 + np.log(max(problem.n_cells, 1)))


def near_ties(
    problem: Problem, structure: DualStructure, priced, window: float, minimum: int
) -> FreeCells:
    """Cells whose runner-up is within ``window`` of their best option, with the options
    that are; never fewer than ``minimum`` of the closest cells: the LP needs a few cells
    around every binding target to find its exact price."""
    free = priced.margin < window
    if free.sum() < minimum:
        k = min(minimum, problem.n_cells)
        free[np.argpartition(priced.margin, k - 1)[:k]] = True
    cells = np.flatnonzero(free)
    per_cell_window = np.maximum(window, priced.margin[cells])
    return FreeCells(cells, _near_best(problem, structure, priced.prices, cells, per_cell_window))


def _adjusted_values(problem, structure, prices, cells) -> np.ndarray:
    """(M, O) ``v + adj`` of the given cells, -inf where an option is not allowed."""
    adj = structure.adjustment(prices)
    values = np.empty((len(cells), problem.n_options))
    for part in cell_windows(problem, cells):
        at = cells[part]
        values[part] = problem.value[at].astype(np.float64) + adj[structure.group[at]]
        if structure.has_allowed:
            values[part][~structure.allowed[at]] = -np.inf
    return values


def _near_best(problem, structure, prices, cells, window) -> np.ndarray:
    """(M, O) bool: the allowed options within ``window`` (scalar or per cell) of the best."""
    cells = np.asarray(cells)
    window = np.ascontiguousarray(window, dtype=np.float64).reshape(-1)
    adj = structure.adjustment(prices)
    options = np.empty((len(cells), problem.n_options), dtype=bool)
    for part in cell_windows(problem, cells):
        options[part] = kernels.near_best(
            cells[part],
            window if len(window) == 1 else window[part],
            problem.value,
            structure.allowed,
            structure.has_allowed,
            structure.group,
            adj,
        )
    return options


def cell_windows(problem: Problem, cells: np.ndarray):
    """Slices of ``cells`` for a pass over their values, each within a window of
    :data:`_CELL_SLICE` cells of the grid where ``cells`` ascend (one slice otherwise).
    Where the values are paged (:mod:`engine.paging`), the pages of each slice's span go
    once the caller has read them. The free cells are a third of the grid at 25 m, the
    classes' first cells a few in every page; and the kernel maps the cached pages around
    each one read (16 at a time), so a pass over either maps nearly all the values' pages
    unless it lets them go as it moves on."""
    if len(cells) == 0:
        return
    ascending = len(cells) < 2 or bool(np.all(cells[1:] >= cells[:-1]))
    if ascending:
        first = cells[0] // _CELL_SLICE + 1
        edges = np.arange(first, cells[-1] // _CELL_SLICE + 1) * _CELL_SLICE
        bounds = np.unique(np.concatenate([[0], np.searchsorted(cells, edges), [len(cells)]]))
    else:
        bounds = np.array([0, len(cells)])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        yield slice(lo, hi)
        within = cells[lo:hi]
        problem.release_cells(slice(within.min(), within.max() + 1))


# Cells of the grid per window of a pass over some cells' values (:func:`cell_windows`).
_CELL_SLICE = 1 << 21


@dataclass(frozen=True)
class _Classes:
    """Free cells that are interchangeable in the repair LP.

    Cells of the same group with the same options, whose values differ between those
    options by the same amounts, differ only by a constant the LP cannot see: the LP needs
    one column per option for all of them together. Real grids have many such cells (a
    land-use class whose suitabilities come from the same few layers), and they are the
    ones that tie.
    """

    of_cell: np.ndarray  # (M,) class of each free cell, classes ordered by their first cell
    first: np.ndarray  # (C,) index into the free cells of each class's first cell
    area: np.ndarray  # (C,) hectares
    key: np.ndarray  # (C,) uint64 hash of the class's key: the same class in the next round


def _interchangeable(
    problem: Problem, structure: DualStructure, free: FreeCells, cell_area: np.ndarray
) -> _Classes:
    """The classes of the free cells for the exact repair: the same group, options and
    differences between their values (:mod:`engine.solve.class_kernels`)."""
    m = len(free.cells)
    length = class_kernels.key_length(problem.n_options, 1)
    multipliers = class_kernels.hash_multipliers(length)
    hashes = np.empty(m, dtype=np.uint64)
    for part in cell_windows(problem, free.cells):
        hashes[part] = class_kernels.repair_hashes(
            free.cells[part], free.options[part], problem.value, structure.group, multipliers
        )
    of_cell = np.empty(m, dtype=index_type(m))
    first = class_kernels.group_by_hash(hashes, of_cell)
    if _keys_agree(problem, structure, free, of_cell, first, length):
        return _classes(hashes, first, of_cell, cell_area)
    # Two classes share a hash: the exact repair must not merge them, so group by the keys
    # themselves (several times slower).
    key = class_kernels.repair_keys(
        free.cells, free.options, problem.value, structure.group, length
    )
    problem.release_cells()  # paged values: the LP reads only its columns' few
    rows = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return _classes(hashes, first, inverse.ravel(), cell_area)


def _keys_agree(problem, structure, free: FreeCells, of_cell, first, length) -> bool:
    """Whether every free cell's key equals its class's first cell's: no two classes share
    a hash. Slice by slice of the free cells: a class's first cell comes before its
    others, so the keys of the classes that begin in a slice are taken as it is read."""
    first_keys = np.empty((len(first), length), dtype=np.int64)
    taken, agree = 0, True
    for part in cell_windows(problem, free.cells):
        begun = int(np.searchsorted(first, part.stop))
        new = first[taken:begun]
        first_keys[taken:begun] = class_kernels.repair_keys(
            free.cells[new], free.options[new], problem.value, structure.group, length
        )
        taken = begun
        agree &= class_kernels.keys_agree(
            free.cells[part],
            free.options[part],
            problem.value,
            structure.group,
            of_cell[part],
            first_keys,
        )
    return agree


def _classes(hashes, first, inverse, cell_area) -> _Classes:
    """The classes of the cells grouped by their hashes (first cell and class of each),
    ordered by their first cells."""
    order = np.argsort(first)
    # Each cell's class in the narrowest index type: 4 bytes a cell, not 8.
    kind = index_type(len(order))
    if np.array_equal(order, np.arange(len(order))):
        of_cell = inverse.astype(kind, copy=False)  # grouped in the order of first cells
    else:
        rank = np.empty(len(order), dtype=kind)
        rank[order] = np.arange(len(order))
        of_cell = rank[inverse]
    area = np.bincount(of_cell, weights=cell_area)
    return _Classes(of_cell=of_cell, first=first[order], area=area, key=hashes[first[order]])


# Cells per block of the per-cell numpy work of the repair (values, gains): a national
# grid's at once would be gigabytes, and it runs at the speed of memory.
_CHUNK = 1 << 16


# The first box of the repair LPs' prices around the start, as a fraction of the value scale:
# the aggregated LP's prices are about its step from the optimal ones.
BOX_RADIUS = AGGREGATE_STEP
# Prices further from zero than this many value scales get no box (see :meth:`Box.start`).
PRICE_LIMIT = 1e3
# What a repair LP may buy or sell at the edge of its box, relative to the row's scale, and
# be taken for rounding rather than a box too narrow: a tenth of what a target may be missed
# by (TOLERANCE). The rounding of what millions of fixed cells deliver makes a national LP
# trade a few 1e-9 cells at its edge; widening the box for that cost two more rounds.
BOX_TOLERANCE = 0.1 * TOLERANCE


@dataclass(frozen=True)
class Box:
    """How far the prices of a repair LP may move from those of the round before.

    The LP over a few free cells, the others fixed, has far fewer ways to meet a target
    than the whole problem: its exact prices can lie far off the optimal ones (at 250 m the
    first jumped 46 value scales from prices 0.06 from the optimum), and every cell they
    make improving joins the free set for good. Inside the box the LP may buy a hectare of a
    row at ``centre + radius`` and sell one at ``centre - radius``, so its prices stay
    within; where it does, the row *binds*, and the next box, around the new prices, is
    four times as wide there. An LP that buys and sells nothing is the exact LP.
    """

    centre: np.ndarray  # (R,) prices
    radius: np.ndarray  # (R,) inf: no box

    @classmethod
    def start(cls, prices: np.ndarray, scale: float, unboxed: np.ndarray) -> Box:
        # A price a thousand value scales from zero most likely comes from a warm start's
        # nonsense on a row the optimum is indifferent to (every allocation meets it alike):
        # a box would keep it there, and the dual bound would lose its last digits to it.
        # Without a box the LP finds the price it needs, however large. ``unboxed`` rows
        # (local ones) have no price to stay near.
        far = (np.abs(prices) > PRICE_LIMIT * scale) | unboxed
        return cls(prices, np.where(far, np.inf, BOX_RADIUS * scale))

    def around(self, prices: np.ndarray, binding: np.ndarray) -> Box:
        return Box(prices, np.where(binding, 4 * self.radius, self.radius))

    def reached(self, prices: np.ndarray) -> bool:
        """Whether any of ``prices`` lies on the box's edge."""
        return bool(np.any(np.abs(prices - self.centre) >= self.radius * (1 - 1e-9)))


@dataclass(frozen=True)
class RepairLP:
    """What a repair LP decided: its prices, what it traded at the edge of its box, and
    each class's share per option."""

    prices: np.ndarray  # (R,)
    traded: np.ndarray  # (R,) bought or sold at the box's edge, relative to the row's scale
    class_x: np.ndarray  # (C, O)
    classes: _Classes
    cell_area: np.ndarray  # (M,) of the free cells
    basis: LPBasis | None  # None: no LP was needed

    def x(self) -> sparse.csr_matrix:
        """(M, O) the shares per free cell, the positive ones; only the last LP's are
        needed, so only its classes are spread over their cells."""
        return _spread(self.class_x, self.classes, self.cell_area)


def _cell_area(problem: Problem, cells: np.ndarray | None = None) -> np.ndarray:
    """The hectares of ``cells`` (default all). A uniform area stays one number, broadcast,
    until the classes' areas are summed: an array of it was 8 bytes a cell (a whole grid's,
    or the free cells' through every repair LP: 0.15 GB at 25 m)."""
    n = problem.n_cells if cells is None else len(cells)
    if np.ndim(problem.area) == 0:
        return np.broadcast_to(np.float64(problem.area), (n,))
    return problem.area if cells is None else problem.area[cells]


def restricted_lp(
    problem: Problem,
    structure: DualStructure,
    choice: np.ndarray,
    free: FreeCells,
    box: Box | None = None,
    basis: LPBasis | AggregatedLP | None = None,
) -> RepairLP | None:
    """Solve the LP over the free cells and their options, the others fixed at ``choice``.

    Interchangeable free cells form one class. A class's hectares start on its first
    option (its *lead*); a column per other option moves hectares there, bounded by the
    class's area, with the change in value and in every target as its coefficients. Only a
    class with three or more options needs a row (what its columns move together is at
    most its area), so the LP has about as many rows as targets, however many cells are
    free, and HiGHS's dual simplex handles the rest as bounds.

    ``basis``, the last round's (or the aggregated LP's), starts HiGHS where that LP ended.
    None when the fixed cells make a hard target unreachable.
    """
    cell_area = _cell_area(problem, free.cells)
    classes = _interchangeable(problem, structure, free, cell_area)
    solved = _class_lp(problem, structure, choice, free, classes, box, basis)
    if solved is None:
        return None
    class_x, prices, traded, ended = solved
    return RepairLP(prices, traded, class_x, classes, cell_area, ended)


@dataclass(frozen=True)
class AggregatedLP:
    """The aggregated LP's optimum: its prices, and the start it gives the first repair LP.

    A repair class lies, but for the rounding of its differences, inside one aggregated
    class, so the aggregated LP's shares of that class say where the repair LP's hectares
    most likely go: a column moving a class wholly to an option starts at its bound, one
    the aggregated class split over several options in the basis. HiGHS completes what is
    no basis; a poor start costs only iterations (national 100 m: the first repair LP from
    here, against 4-5 s CPU from scratch).
    """

    prices: np.ndarray  # (R,)
    cell_class: np.ndarray  # (N,) the aggregated class of every cell
    class_x: np.ndarray  # (C, O) each class's share per option
    basis: LPBasis  # where HiGHS ended: the target rows and shortfalls, by name

    def carried(self, names: _LPNames, columns: _Columns) -> tuple[np.ndarray, np.ndarray]:
        col_status, row_status = self.basis.carried(names, columns)
        share = self.class_x[self.cell_class[columns.cell], columns.option]
        col_status[: len(share)] = np.where(
            share >= 1 - _WHOLE, _UPPER, np.where(share > _WHOLE, _BASIC, _NONBASIC)
        )
        # A class's row holds what its columns move together: at its bound (the class's
        # area) when nothing stays on the lead.
        stays = self.class_x[self.cell_class[columns.shared_cell], columns.shared_lead]
        row_status[len(row_status) - len(stays) :] = np.where(stays > _WHOLE, _BASIC, _UPPER)
        return col_status, row_status


# A share this close to 0 or 1 is taken for it when the aggregated optimum starts a repair.
_WHOLE = 1e-9


def aggregated_lp(
    problem: Problem,
    structure: DualStructure,
    scale: float,
    prices: np.ndarray,
    start: LPBasis | None = None,
) -> AggregatedLP | None:
    """The aggregated LP: every cell with the options it allows within
    :data:`AGGREGATE_WINDOW` value scales of its best under ``prices`` (the sample stage's),
    cells whose differences between options agree to :data:`AGGREGATE_STEP` of the value
    scale one class, at the values of its first cell, across groups where their options
    deliver to the same rows (a class's supply goes to its first cell's group, which meets
    every row its cells deliver to). No cell's values move by
    more than a step, so neither does the dual bound per hectare of its exact prices:
    near-optimal prices, whatever the temperature would have needed. An option left out
    could only enter if the prices moved by the window; the repair puts it back if they
    do. With every allowed option when those leave no allocation that meets the hard
    targets; None when none does (the repair then says which). ``start``: a neighbour's
    aggregated LP's basis (:attr:`RepairEnd.aggregated`), carried over by name."""
    cell_area = _cell_area(problem)
    step = AGGREGATE_STEP * scale
    for window in (AGGREGATE_WINDOW * scale, np.inf):
        classes = _aggregated_classes(problem, structure, prices, window, step, cell_area)
        # A cell's options depend on its own values alone: the classes' first cells' are
        # those the pass gave.
        first = classes.first
        free = FreeCells(first, _near_best(problem, structure, prices, first, window))
        classes = replace(classes, first=np.arange(len(first)))
        solved = _class_lp(problem, structure, None, free, classes, basis=start)
        if solved is not None:
            break
    else:
        return None
    class_x, prices, _, ended = solved
    if ended is None:
        # No LP was needed (every class had one option): nothing to carry by name.
        nothing = np.zeros(0, dtype=np.uint64)
        ended = LPBasis(_LPNames(nothing, nothing), np.zeros(0, np.int8), np.zeros(0, np.int8))
    # Held until the first repair LP has started from it (_classes made it in the
    # narrowest index type of a class).
    return AggregatedLP(prices, classes.of_cell, class_x, ended)


def _aggregated_classes(
    problem: Problem,
    structure: DualStructure,
    prices: np.ndarray,
    window: float,
    step: float,
    cell_area: np.ndarray,
) -> _Classes:
    """Every cell with its options within ``window`` of its best under ``prices``, in
    classes whose differences agree to multiples of ``step`` (the aggregated LP's).

    Cells of different groups whose options deliver only where their groups meet the same
    rows are alike to the LP: a target per municipality then splits only the aggregated
    classes that may take the claim it is on (national 100 m: 113 k classes instead of
    146 k). The repair LPs keep one group per class: across groups they took longer
    (province only at 100 m: 19-21 s instead of 18 s CPU, quiet machine)."""
    zones, reaches = structure.claim_zones
    length = class_kernels.key_length(problem.n_options, zones.shape[1])
    # The options are found and hashed in one pass without being held: a national grid's
    # at once would be gigabytes. Slice by slice of cells, as :func:`cell_windows`.
    n, adj = problem.n_cells, structure.adjustment(prices)
    multipliers = class_kernels.hash_multipliers(length)
    hashes = np.empty(n, dtype=np.uint64)
    for lo in range(0, n, _CELL_SLICE):
        part = slice(lo, min(lo + _CELL_SLICE, n))
        allowed = structure.allowed[part] if structure.has_allowed else structure.allowed
        hashes[part] = class_kernels.aggregated_hashes(
            problem.value[part],
            allowed,
            structure.has_allowed,
            structure.group[part],
            adj,
            window,
            step,
            zones,
            reaches,
            multipliers,
        )
        problem.release_cells(part)
    of_cell = np.empty(problem.n_cells, dtype=index_type(problem.n_cells))
    return _classes(hashes, class_kernels.group_by_hash(hashes, of_cell), of_cell, cell_area)


def _class_lp(problem, structure, choice, free: FreeCells, classes: _Classes, box=None, basis=None):
    """The LP of :func:`restricted_lp` over ``classes`` of the free cells: ``(class_x,
    prices, traded, basis)``, class_x the (C, O) share of each class per option, traded what
    each row bought or sold at the edge of the ``box`` (relative to its scale), basis where
    HiGHS ended (started from ``basis``); or None if infeasible. ``choice`` None: no cell is
    fixed."""
    n_groups, n_opt = structure.n_groups, problem.n_options
    if choice is None:
        # Every cell is free (the aggregated LP; ``free`` its classes' first cells).
        start_area = np.zeros((n_groups, n_opt))
    else:
        start_area = kernels.assigned_area(
            choice, ~free.mask(problem.n_cells), structure.group, structure.area, n_groups, n_opt
        )
    n_classes = len(classes.first)
    representative = free.cells[classes.first]
    group = structure.group[representative]
    options = free.options[classes.first]
    lead = np.argmax(options, axis=1)
    np.add.at(start_area, (group, lead), classes.area)
    start_supply = structure.supply(start_area)

    moves = options.copy()
    moves[np.arange(n_classes), lead] = False
    col_class, col_opt = np.nonzero(moves)
    col_lead = lead[col_class]
    n_x = len(col_class)
    col_cell = representative[col_class]
    gain = _column_gains(problem, col_cell, col_opt, col_lead)

    # What a hectare moved from the lead to the option adds to each target row, through a
    # table over the (group, lead, option) triples that occur: a national problem has few.
    triple = (group[col_class] * n_opt + col_lead) * n_opt + col_opt
    kinds, col_kind = _unique(triple)
    kind_group, kind_rest = np.divmod(kinds, n_opt * n_opt)
    kind_lead, kind_opt = np.divmod(kind_rest, n_opt)
    contribution = structure.contribution
    effect = problem.row_incidence(
        kind_group, contribution[kind_opt] - contribution[kind_lead]
    )  # (R, kinds)
    pick = sparse.csr_matrix(
        (np.ones(n_x), (col_kind.ravel(), np.arange(n_x))), shape=(len(kinds), n_x)
    )
    target_block = sparse.csr_matrix(effect @ pick)

    shared = np.flatnonzero(moves.sum(axis=1) >= 2)
    in_shared = np.isin(col_class, shared)
    share_row = np.searchsorted(shared, col_class[in_shared])
    share_block = sparse.csr_matrix(
        (np.ones(int(in_shared.sum())), (share_row, np.flatnonzero(in_shared))),
        shape=(len(shared), n_x),
    )

    rows = problem.rows
    n_rows = len(rows)
    elastic_rows = np.flatnonzero(rows.has_lower) if problem.elastic else np.zeros(0, int)
    n_s = len(elastic_rows)
    # A box lets the LP buy hectares of every row at centre + radius and sell them at
    # centre - radius: columns after the shortfalls, +1 and -1 in their row.
    boxed = np.zeros(0, dtype=int) if box is None else np.flatnonzero(np.isfinite(box.radius))
    n_b = 2 * len(boxed)
    slack_rows = np.concatenate([elastic_rows, boxed, boxed])
    slack_sign = np.concatenate([np.ones(n_s + n_b // 2), -np.ones(n_b // 2)])
    slack_block = sparse.csr_matrix(
        (slack_sign, (slack_rows, np.arange(n_s + n_b))), shape=(n_rows, n_s + n_b)
    )
    slack_cost = [structure.penalty[elastic_rows]]
    if box is not None:
        centre, radius = box.centre[boxed], box.radius[boxed]
        slack_cost += [centre + radius, radius - centre]
    # HiGHS's tolerances are absolute: it gets the LP in typical cells and value differences
    # (powers of two, so exactly), and the hectares and prices come back in the problem's units.
    units = problem.units
    class_area = classes.area / units.area
    row_lo = np.concatenate(
        [lower_bounds((rows.lower - start_supply) / units.area), np.zeros(len(shared))]
    )
    row_hi = np.concatenate(
        [upper_bounds((rows.upper - start_supply) / units.area), class_area[shared]]
    )
    names = _LPNames(
        cols=np.concatenate(
            [
                classes.key[col_class] ^ (col_opt.astype(np.uint64) + 1) * _MIX,
                _SLACK
                + np.concatenate([elastic_rows, n_rows + boxed, 2 * n_rows + boxed]).astype(
                    np.uint64
                ),
            ]
        ).astype(np.uint64),
        rows=np.concatenate([np.arange(n_rows, dtype=np.uint64), classes.key[shared]]),
    )
    columns = _Columns(
        cell=col_cell,
        option=col_opt,
        shared_cell=representative[shared],
        shared_lead=lead[shared],
    )
    if n_x + n_s + n_b == 0:
        # Every free class has one option and no target is elastic: nothing to decide, and
        # HiGHS calls an LP without columns "empty" rather than solving it.
        slack = TOLERANCE * row_scale(problem) / units.area
        if np.any(row_lo[:n_rows] > slack) or np.any(row_hi[:n_rows] < -slack):
            return None
        class_x = np.zeros((n_classes, n_opt))
        class_x[np.arange(n_classes), lead] = 1.0
        return class_x, np.zeros(n_rows), np.zeros(n_rows), None
    if len(shared):
        matrix = sparse.bmat([[target_block, slack_block], [share_block, None]], format="csc")
    else:
        matrix = sparse.hstack([target_block, slack_block], format="csc")
    del target_block, share_block, pick  # not held beside HiGHS's copy while it solves
    cost = np.concatenate([-gain, *slack_cost])
    cost /= units.value
    # HiGHS reads none of the cells' values: where they are paged, their memory is its.
    problem.release_cells()
    result = solve_lp(
        cost,
        matrix,
        row_lo,
        row_hi,
        np.zeros(n_x + n_s + n_b),
        np.concatenate([class_area[col_class], upper_bounds(np.full(n_s + n_b, np.nan))]),
        basis=None if basis is None else basis.carried(names, columns),
        # The aggregated optimum's start leaves about half the rows without a basic column.
        devex=isinstance(basis, AggregatedLP),
    )
    if result.status == "infeasible":
        return None
    if result.status != "optimal":
        raise RuntimeError(f"fast: the repair LP ended with status {result.status!r}")
    class_x = np.zeros((n_classes, n_opt))
    class_x[col_class, col_opt] = np.clip(result.x[:n_x], 0.0, None) / class_area[col_class]
    class_x[np.arange(n_classes), lead] = np.clip(1.0 - class_x.sum(axis=1), 0.0, None)
    class_x /= class_x.sum(axis=1, keepdims=True)
    # HiGHS minimises -objective; its row dual is d(-objective)/d(bound), which is our price.
    prices = result.row_dual[:n_rows] * units.value
    traded = np.zeros(n_rows)
    traded[boxed] = result.x[n_x + n_s :].reshape(2, -1).max(axis=0, initial=0.0)
    ended = LPBasis(names, result.col_status, result.row_status)
    return class_x, prices, traded / (row_scale(problem) / units.area), ended


# Names of a repair LP's columns and rows that outlive the round (see LPBasis): a class's
# key mixed with the option, a slack column's kind and row far above, a target row its index.
_MIX = np.uint64(0x9E3779B97F4A7C15)
_SLACK = np.uint64(2**63)


def _unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` through pandas's hash table: the columns'
    few kinds among hundreds of thousands of columns without sorting them."""
    import pandas as pd

    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(uniques), codes


def _column_gains(problem: Problem, cell, option, lead) -> np.ndarray:
    """Per column, the value of its option over its cell's lead option: the columns' values
    only ((classes, options) in float64 was 0.22 GB through the LP), slice by slice of
    their cells (the classes' first cells lie on most of the values' pages)."""
    gain = np.empty(len(cell))
    for part in cell_windows(problem, cell):
        at = cell[part]
        gain[part] = problem.value[at, option[part]].astype(np.float64)
        gain[part] -= problem.value[at, lead[part]]
    return gain


@dataclass(frozen=True)
class _LPNames:
    cols: np.ndarray  # uint64
    rows: np.ndarray  # uint64


@dataclass(frozen=True)
class _Columns:
    """What a repair LP's columns and class rows stand for, for a start that knows cells
    rather than names (:class:`AggregatedLP`): a cell of the class and the option each
    column moves hectares to; a cell of the class and its lead for each class row."""

    cell: np.ndarray  # (X,) int64
    option: np.ndarray  # (X,) int64
    shared_cell: np.ndarray  # (S,) int64
    shared_lead: np.ndarray  # (S,) int64


@dataclass(frozen=True)
class LPBasis:
    """Where HiGHS ended a repair LP, by names that outlive the round.

    The next round's LP differs little (a few thousand cells joined, the box moved): started
    from this basis HiGHS takes a few hundred iterations where it took thousands (national
    100 m: 0.2 s instead of 5.7 s). A column or row it had not is started nonbasic (a
    column at zero) or basic (a class's row); two names that collide only start it worse.
    """

    names: _LPNames
    col_status: np.ndarray  # int8 HighsBasisStatus
    row_status: np.ndarray

    def carried(self, names: _LPNames, columns: _Columns) -> tuple[np.ndarray, np.ndarray]:
        """Column and row statuses for an LP with these names (``columns`` are found by
        them)."""
        return (
            _carry(self.names.cols, self.col_status, names.cols, _NONBASIC),
            _carry(self.names.rows, self.row_status, names.rows, _BASIC),
        )


_NONBASIC, _BASIC, _UPPER = 0, 1, 2  # HighsBasisStatus kLower, kBasic, kUpper


def _carry(old: np.ndarray, status: np.ndarray, new: np.ndarray, missing: int) -> np.ndarray:
    # pandas (loaded with xarray by every run) looks the names up in a hash table: a
    # quarter of a stable sort and binary search's time at national 100 m's 670,000 columns.
    # A name that collides takes its first holder's status.
    import pandas as pd

    if len(old) == 0:
        return np.full(len(new), missing, dtype=np.int8)
    held = pd.Index(old)
    if not held.is_unique:
        first = ~held.duplicated(keep="first")
        held, status = held[first], status[first]
    at = held.get_indexer(new)
    return np.where(at >= 0, status[at], missing).astype(np.int8)


def _cell_spans(classes: _Classes, cell_area: np.ndarray) -> tuple:
    """The free cells grouped by class, each class's in index order (``order``), with their
    classes, areas and the span of their class's hectares each covers (``begin``, ``end``)."""
    order = np.argsort(classes.of_cell, kind="stable")
    of_cell = classes.of_cell[order]
    area = cell_area[order]
    filled = np.cumsum(area)
    class_start = np.searchsorted(of_cell, np.arange(len(classes.first)))
    before = np.where(class_start > 0, filled[np.maximum(class_start - 1, 0)], 0.0)
    end = filled - before[of_cell]
    return order, of_cell, area, end - area, end


def _spread(class_x: np.ndarray, classes: _Classes, cell_area: np.ndarray) -> sparse.csr_matrix:
    """Each class's hectares per option over its cells: cells in index order take the
    options in option order, so at most one cell per option boundary is split. In blocks
    of cells: the shares' (cells x options) temporaries of all free cells at once were the
    repair's peak (national 100 m: 570 k free cells, +99 bytes a cell of the grid). The
    positive shares only, as a CSR matrix (free cells x options): the dense one was 120
    bytes a free cell (2.3 GB at 25 m, the end of the solve's peak)."""
    order, of_cell, area, begin, end = _cell_spans(classes, cell_area)
    rows, options, shares = [], [], []
    for lo in range(0, len(order), _CHUNK):
        block = slice(lo, lo + _CHUNK)
        # Each block's classes' running hectares per option, rather than every class's.
        of_block = of_cell[block]
        hectares = class_x[of_block] * classes.area[of_block, None]
        upto = np.cumsum(hectares, axis=1)
        share = np.clip(
            np.minimum(end[block, None], upto) - np.maximum(begin[block, None], upto - hectares),
            0.0,
            None,
        )
        # Rounding in the running sums leaves slivers of a boundary in the neighbouring cell.
        share[share < 1e-9 * area[block, None]] = 0.0
        share /= share.sum(axis=1, keepdims=True)
        row, option = np.nonzero(share > 0)
        rows.append(order[block][row])
        options.append(option)
        shares.append(share[row, option])
    # A cell's entries are together and in option order: a stable sort by cell puts them in
    # the matrix's order.
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    by_cell = np.argsort(row, kind="stable")
    indptr = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=len(order)), out=indptr[1:])
    return sparse.csr_matrix(
        (
            np.concatenate(shares)[by_cell] if rows else np.zeros(0),
            np.concatenate(options)[by_cell] if rows else np.zeros(0, dtype=np.int64),
            indptr,
        ),
        shape=(len(order), class_x.shape[1]),
    )


def improving_options(problem, structure, priced, choice, free: FreeCells, tolerance: float):
    """Cells and options the LP left out that beat what it chose under its prices, as
    ``(cells, options)`` for :meth:`FreeCells.join`, or None when there are none."""
    switched = np.flatnonzero(~free.mask(problem.n_cells) & (priced.choice != choice))
    if len(switched):
        values = _adjusted_values(problem, structure, priced.prices, switched)
        rows = np.arange(len(switched))
        gain = values[rows, priced.choice[switched]] - values[rows, choice[switched]]
        switched = switched[gain > tolerance]
    switched_options = np.zeros((len(switched), problem.n_options), dtype=bool)
    switched_options[np.arange(len(switched)), choice[switched]] = True
    switched_options[np.arange(len(switched)), priced.choice[switched]] = True

    missing, best = _left_out(problem, structure, priced.prices, free, tolerance)
    missing_options = np.zeros((len(missing), problem.n_options), dtype=bool)
    missing_options[np.arange(len(missing)), best] = True

    if len(switched) == 0 and len(missing) == 0:
        return None
    return (
        np.concatenate([switched, free.cells[missing]]),
        np.concatenate([switched_options, missing_options]),
    )


def _left_out(problem, structure, prices, free: FreeCells, tolerance: float):
    """The free cells (indices into them) whose best option under ``prices`` beats every
    option the LP had by more than ``tolerance``, and that best option."""
    adj = structure.adjustment(prices)
    beats = np.empty(len(free.cells), dtype=bool)
    best = np.empty(len(free.cells), dtype=np.int64)
    for part in cell_windows(problem, free.cells):
        beats[part], best[part] = kernels.left_out(
            free.cells[part],
            free.options[part],
            problem.value,
            structure.allowed,
            structure.has_allowed,
            structure.group,
            adj,
            tolerance,
        )
    return np.flatnonzero(beats), best[beats]


def _widen(problem: Problem, structure: DualStructure, priced, free: FreeCells) -> FreeCells:
    """Twice as many free cells, the next-closest ties, with every option within their
    margin; all cells with all their options when that is most of them."""
    n = problem.n_cells
    if len(free.cells) == n and np.array_equal(
        free.options, _near_best(problem, structure, priced.prices, free.cells, np.inf)
    ):
        raise unmet(problem, "fast")
    k = 2 * max(len(free.cells), 1000)
    if k >= n:
        cells, window = np.arange(n), np.inf
    else:
        window = np.partition(priced.margin, k)[k]
        cells = np.flatnonzero(priced.margin <= window)
    return free.join(cells, _near_best(problem, structure, priced.prices, cells, window))


def _allocation_matrix(problem: Problem, choice, lp_cells, lp_x) -> sparse.csr_matrix:
    """One-hot rows for the fixed cells, the LP's fractions for the free ones.

    Built in the index type the matrix keeps (int32 below 2**31 entries), so that scipy
    copies nothing; the fixed cells' entries filled in blocks, since numpy indexes with a
    whole-grid intp copy of an index array otherwise: 20 bytes a cell at the peak, where
    per-cell counts, int64 offsets, a mask and their gathers took 45."""
    n, n_opt = problem.n_cells, problem.n_options
    per_lp = np.diff(lp_x.indptr)
    nnz = n + int(per_lp.sum()) - len(lp_cells)
    indptr = np.ones(n + 1, dtype=index_type(max(nnz, n_opt)))
    indptr[0] = 0
    indptr[lp_cells + 1] = per_lp
    np.cumsum(indptr, out=indptr)
    indices = np.empty(nnz, dtype=indptr.dtype)
    for begin in range(0, n, _CHUNK * 16):
        end = min(begin + _CHUNK * 16, n)
        # The LP's cells get theirs below; a row the LP left empty has no slot of its own
        # (its offset is the next row's, or the end).
        starts = indptr[begin:end]
        filled = indptr[begin + 1 : end + 1] > starts
        indices[starts[filled]] = choice[begin:end][filled]
    data = np.ones(nnz, dtype=np.float64)
    lp_row = np.repeat(np.arange(len(lp_cells)), per_lp)
    position = indptr[lp_cells][lp_row] + (np.arange(len(lp_row)) - lp_x.indptr[lp_row])
    indices[position] = lp_x.indices
    data[position] = lp_x.data
    return sparse.csr_matrix((data, indices, indptr), shape=(n, n_opt))


def _largest_share(x: sparse.csr_matrix) -> np.ndarray:
    """Each row's option of the largest share, the first of equals, as ``np.argmax`` gives
    it on the dense rows (a left-out zero is never the largest of a row with a share; a row
    without any, a cell without area, gives 0)."""
    counts = np.diff(x.indptr)
    out = np.zeros(x.shape[0], dtype=np.int64)
    has = counts > 0
    if not has.any():
        return out
    # The rows without entries hold no data, so each segment from one row's start to the
    # next such start is that row's.
    largest = np.maximum.reduceat(x.data, x.indptr[:-1][has])
    row = np.repeat(np.arange(x.shape[0]), counts)
    at = np.flatnonzero(x.data == np.repeat(largest, counts[has]))
    out[has] = x.indices[at[np.searchsorted(row[at], np.flatnonzero(has))]]
    return out
