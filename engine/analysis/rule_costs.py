"""The cost of each hard rule: what lifting it would gain, and which claims it binds.

A hard rule is a set of (cell, option) pairs it forbids. Lifting it enlarges ``allowed``; the
objective can only rise. Under the optimal prices ``pi`` the Lagrangian bound of the relaxed
problem (``engine.solve.dual``) is

    D'(pi) = D(pi) + sum_i a_i max(0, max_(o newly allowed) u[i,o] - max_(o allowed) u[i,o])

with ``u`` the adjusted values, so ``0 <= gain <= D'(pi) - objective``. When that bound is
zero (no newly allowed option beats a cell's best under the current prices) the rule costs
nothing and the prices are decisive; otherwise the relaxed problem is re-solved and the gain
is the exact objective difference. The re-solves start from the optimum's prices and free only
the cells the rule moves (:func:`engine.solve.local.resolve_near`, certified on the whole
problem). They and the relaxations run in a thread pool when ``workers > 1``; each rule's
result depends on that rule alone, so it is the same whatever the number of workers.
:func:`plan_rule_costs` stops short of the re-solves, so that the analysis runs them in one
pool with the exchanges' (:mod:`engine.analysis.resolves`).

``binds`` lists the claims whose options gain from the lifting under the current prices: the
claims the rule keeps from land they would take.

Lifting one rule is not always a pure relaxation: a reservation picks its cells among those the
exclusions leave (the deepest polder cells first), so without Natura 2000 it moves into deeper
cells inside the sites and holds those for water storage only. ``cells_options_forbidden``
counts such (cell, option) pairs; where it is > 0 a negative ``gain`` is that real effect
(the rule saves value), where it is 0 a negative gain can only be the re-solve's tolerance
(``gap_relaxed``).
"""

from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numba
import numpy as np

from engine import progress
from engine.analysis.resolves import Resolve, resolve_cost, run_resolves
from engine.errors import RuimtepuzzelError
from engine.paging import cell_slices, release_pages
from engine.problem import Problem
from engine.solve import kernels
from engine.solve.chunked import cell_chunks
from engine.solve.dual import dual_structure
from engine.solve.fast import cell_windows
from engine.solve.local import resolve_near
from engine.solve.solution import gaps_muted

__all__ = [
    "rule_costs",
    "plan_rule_costs",
    "RuleCosts",
    "relaxed_problem",
    "compiled_relaxations",
    "RelaxationsAhead",
]


def relaxed_problem(
    problem: Problem, allowed: np.ndarray | None = None, *, lower=None, upper=None
) -> Problem:
    """A copy of ``problem`` with another ``allowed`` and/or other targets (arrays are shared)."""
    return Problem(
        value=problem.value, contribution=problem.contribution, zones=problem.zones,
        lower=problem.lower if lower is None else lower,
        upper=problem.upper if upper is None else upper,
        allowed=problem.allowed if allowed is None else allowed, area=problem.area,
        shortfall_penalty=problem.shortfall_penalty, option_names=problem.option_names,
        claim_names=problem.claim_names, zoning_names=problem.zoning_names,
        zone_names=problem.zone_names,
    )  # fmt: skip


def _resolve_method(problem: Problem, method: str) -> str:
    if method != "auto":
        return method
    from engine.solve.choice import estimate

    return estimate(problem)["method"]


def resolve(
    problem: Problem,
    method: str,
    sol=None,
    before=None,
    tested: bool = False,
    targets=None,
    changed=None,
):
    """The optimum of a neighbour of a solved problem. With the solved problem's solution
    ``sol`` and the fast backend: re-solved around its prices, from where its repair ended
    (:func:`engine.solve.local.resolve_near`, ``tested`` as there), ``before`` the solved
    problem's allowed options (``changed`` the cells where they differ, if known),
    ``targets`` its (lower, upper) where a target moved."""
    import engine

    method = _resolve_method(problem, method)
    # A re-solve is one piece of the analysis's count (progress.Tally): its own price
    # evaluations and LPs, two re-solves at a time, are not shown. Its status and gap go
    # into the analysis's tables, not to the log as warnings.
    with gaps_muted(), progress.muted():
        if method == "fast" and sol is not None:
            return resolve_near(
                problem,
                sol.row_prices,
                before,
                end=sol.repair_end,
                targets=targets,
                changed=changed,
                tested=tested,
            )
        return engine.solve(problem, method=method)


@dataclass(frozen=True)
class _Relaxation:
    """A relaxation as the cells whose allowed options it changes and their rows: a rule
    lifted changes few cells, and 21 full (N, O) arrays at national 100 m held 1.1 GB."""

    cells: np.ndarray  # (M,) int64
    rows: np.ndarray  # (M, O) bool, the relaxation's allowed options of those cells

    @classmethod
    def of(cls, relaxed, base: np.ndarray) -> _Relaxation:
        if isinstance(relaxed, _Relaxation):  # built ahead (RelaxationsAhead)
            return relaxed
        allowed = relaxed() if callable(relaxed) else np.asarray(relaxed, dtype=bool)
        # Slice by slice of cells: an (N, O) comparison at once was 0.8 GB at national 25 m,
        # and the paged allowed options' pages (``--memory``) go back after each slice.
        changed = np.empty(len(allowed), dtype=bool)
        for part in cell_slices(len(allowed), _PASS_CELLS):
            changed[part] = (allowed[part] != base[part]).any(axis=1)
            release_pages(base[part])
        cells = np.flatnonzero(changed)
        return cls(cells, allowed[cells])

    def allowed(self, base: np.ndarray) -> np.ndarray:
        out = base.copy()
        out[self.cells] = self.rows
        return out

    def problem(self, problem: Problem, base: np.ndarray) -> Problem:
        """``problem`` with this relaxation's allowed options. Everything else, and what the
        problem derived from it (target rows, cell groups, units), is shared: a rule lifted
        changes none of it, and ``Problem`` would check every cell's values and options and
        group the cells again (national 100 m: 0.5 s CPU a rule). Only the changed cells can
        have lost every option, so only they are checked."""
        empty = ~self.rows.any(axis=1)
        if empty.any():
            raise RuimtepuzzelError(
                f"allowed[{int(self.cells[np.argmax(empty)])}, :] is all False without the "
                f"rule: every cell needs at least one allowed option"
            )
        lifted = copy.copy(problem)
        lifted.allowed = self.allowed(base)
        return lifted

    def forbidden(self, base: np.ndarray) -> int:
        """(cell, option) pairs allowed before and not here."""
        return int((base[self.cells] & ~self.rows).sum())


# Cells per slice of a pass over the values (4M: 240 MB of the national config's values).
_PASS_CELLS = 1 << 22


def _best_adjusted(problem: Problem, best: np.ndarray, adj: np.ndarray, group) -> np.ndarray:
    """Per cell its best option's adjusted value, slice by slice of cells, each slice's
    pages of paged values let go after it."""
    out = np.empty(problem.n_cells)
    for part in cell_slices(problem.n_cells, _PASS_CELLS):
        option = best[part].astype(np.int64)
        rows = np.arange(len(option))
        out[part] = problem.value[part][rows, option].astype(np.float64) + adj[group[part], option]
        problem.release_cells(part)
    return out


def _price_bound(problem: Problem, base, relaxation: _Relaxation, structure, adj, best_u):
    """Per claim and in total: sum_i a_i max(0, best newly allowed u - best u), and the
    (cell, option) pairs newly allowed."""
    cells, rows = relaxation.cells, relaxation.rows
    args = (base, problem.value, adj, structure.group, best_u, structure.area)
    some, gain_cell, pairs = [], [], 0
    # In windows of the grid, each window's pages let go (paged values): the cells a rule
    # changes lie all over the grid, and reading them at once mapped all of the values'
    # pages (national 25 m: 3.3 GB, the write stage's peak).
    for window in cell_windows(problem, cells):
        window_some, window_gain, window_pairs = new_option_gains(
            cells[window], rows[window], *args
        )
        some.append(window_some)
        gain_cell.append(window_gain)
        pairs += window_pairs
    if pairs == 0:
        return 0.0, np.zeros(problem.n_claims), 0
    some, gain_cell = np.concatenate(some), np.concatenate(gain_cell)
    # Summed over the cells with a new option only, in numpy's (pairwise) order: the bound
    # is the same to the bit as before the kernel (the report shows it).
    total = float(gain_cell[some].sum())
    # Per claim: the gain of the newly allowed options that deliver it. A cell whose best new
    # option gains nothing gains nothing for any claim: only the others are looked at.
    gaining = np.flatnonzero(gain_cell > 0)
    serves = problem.contribution > 0
    terms = [np.zeros((problem.n_claims, 0))]
    for window in cell_windows(problem, cells[gaining]):
        terms.append(claim_gains(cells, gaining[window], rows, *args, serves))
    terms = np.concatenate(terms, axis=1)
    per_claim = np.zeros(problem.n_claims)
    for k in np.flatnonzero(serves.any(axis=0)):
        per_claim[k] = float(np.sum(terms[k]))
    return total, per_claim, int(pairs)


@numba.njit(cache=True, nogil=True)
def new_option_gains(cells, rows, base, value, adj, group, best_u, area):
    """Per cell of a relaxation (``cells``, their options ``rows`` without the rule, ``base``
    the problem's allowed options): whether it gains an option, what its best newly allowed
    option gains over its best now under the prices (``best_u``), times its area, and the
    newly allowed (cell, option) pairs in all. One pass, no (cells, options) temporaries:
    the numpy form took 3.4 s for a rule that frees 2.9 M cells at national 100 m."""
    n, n_opt = rows.shape
    some = np.zeros(n, dtype=np.bool_)
    gain = np.zeros(n)
    pairs = 0
    for j in range(n):
        i = cells[j]
        best = -np.inf
        for o in range(n_opt):
            if rows[j, o] and not base[i, o]:
                pairs += 1
                some[j] = True
                u = np.float64(value[i, o]) + adj[group[i], o]
                if u > best:
                    best = u
        if some[j]:
            gain[j] = max(best - best_u[i], 0.0) * kernels._area(area, i)
    return some, gain, pairs


@numba.njit(cache=True, nogil=True)
def claim_gains(cells, gaining, rows, base, value, adj, group, best_u, area, serves):
    """(claims, gaining cells): what the best newly allowed option delivering each claim
    gains over the cell's best now, times its area (``gaining``: positions in ``cells``;
    the rest as :func:`new_option_gains`)."""
    n_opt, n_claims = serves.shape
    out = np.zeros((n_claims, len(gaining)))
    best = np.empty(n_claims)
    for t in range(len(gaining)):
        j = gaining[t]
        i = cells[j]
        best[:] = -np.inf
        for o in range(n_opt):
            if rows[j, o] and not base[i, o]:
                u = np.float64(value[i, o]) + adj[group[i], o]
                for k in range(n_claims):
                    if serves[o, k] and u > best[k]:
                        best[k] = u
        a = kernels._area(area, i)
        for k in range(n_claims):
            out[k, t] = max(best[k] - best_u[i], 0.0) * a
    return out


def rule_costs(problem: Problem, sol, relaxations: dict, *, workers: int = 1, **options):
    """Per rule: ``bound_gain`` from the prices, ``gain`` (exact), ``binds`` and how it was found.

    ``relaxations``: rule name -> the (N, O) ``allowed`` array without that rule (or a callable
    returning it, or the relaxation built ahead: :meth:`RelaxationsAhead.result`).
    ``workers`` threads price and re-solve the rules; ``options`` as :func:`plan_rule_costs`.
    """
    planned = plan_rule_costs(problem, sol, relaxations, workers=workers, **options)
    run_resolves(planned.resolves, "rules re-solved", workers=workers)
    return planned.entries()


@dataclass(frozen=True)
class RuleCosts:
    """The rules priced: their entries, and the re-solves that complete the entries of the
    rules their bound does not settle (:func:`engine.analysis.resolves.run_resolves`)."""

    results: list[dict]
    resolves: list[Resolve]

    def entries(self) -> list[dict]:
        """The entries, the costliest rule first (once the re-solves have run)."""
        return sorted(
            self.results,
            key=lambda e: -(e["gain"] if e["gain"] is not None else e["bound_gain"]),
        )


def plan_rule_costs(
    problem: Problem,
    sol,
    relaxations: dict,
    *,
    method: str = "auto",
    workers: int = 1,
    tolerance: float = 1e-9,
    exact: bool = True,
    max_resolves: int | None = None,
) -> RuleCosts:
    """:func:`rule_costs` up to its re-solves: every rule priced (``workers`` threads), its
    bound's entry made, and a re-solve for each rule the bound does not settle, to be run
    with any other re-solves.

    ``exact=False`` skips the re-solves; ``max_resolves`` re-solves only the rules with the
    largest bounds. A rule not re-solved has ``gain`` None and ``method`` 'bound': its cost
    lies between 0 and ``bound_gain``.
    """
    structure = dual_structure(problem)
    prices = np.asarray(sol.row_prices, dtype=np.float64)
    adj = structure.adjustment(prices)
    # Best adjusted value per cell under the current rules: over chunks of cells, each
    # chunk's pages let go after it where the values are paged (``--memory``): the pass
    # over all cells at once held all of them (national 25 m: 4.5 GB, the write stage's
    # peak). The same sums to the bit (:mod:`engine.solve.chunked`).
    cells = cell_chunks(problem, structure, _PASS_CELLS)
    best, _, best_sum = cells.best_options(adj)
    best_u = _best_adjusted(problem, best, adj, structure.group)
    dual = best_sum - structure.target_term(prices)
    scale = max(1.0, abs(sol.objective))
    results, todo = [], []
    base = _base_allowed(problem)

    relaxed_all = list(relaxations.values())
    priced = progress.Tally([1.0] * len(relaxed_all), "rules priced", workers=workers)

    def bounded(index: int):
        # Each rule priced is one piece of the count: applying the other rules again is
        # not shown as a compile's "rules applied" would be.
        with priced.piece(index), progress.muted():
            relaxation = _Relaxation.of(relaxed_all[index], base)
            bound = _price_bound(problem, base, relaxation, structure, adj, best_u)
            forbidden = relaxation.forbidden(base)
        # The allowed options of the cells the rule changes (read for ``forbidden``), spread
        # over the grid: paged (``--memory``), their pages go.
        problem.release_cells()
        return relaxation, bound, forbidden

    # Building a relaxation (every rule but one applied again) and its bound run in the pool
    # too: on the main thread the bounds ran one after the other while the pool waited
    # (national 100 m: 6 % of the rule costs' wall time, sampled).
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        built = list(pool.map(bounded, range(len(relaxed_all))))
    for name, (relaxation, (extra, per_claim, pairs), forbidden) in zip(relaxations, built):
        bound_gain = max(0.0, dual + extra - sol.objective)
        binds = [problem.claim_names[k] for k in np.flatnonzero(per_claim > tolerance * scale)]
        entry = {
            "rule": name,
            "cells_options_freed": pairs,
            "cells_options_forbidden": forbidden,
            "bound_gain": bound_gain,
            "binds": binds,
            "gain": None,
            "objective_relaxed": None,
            "method": None,
        }
        # The bound holds for a pure relaxation only (see the module's docstring).
        if bound_gain <= tolerance * scale and forbidden == 0:
            entry.update(gain=0.0, objective_relaxed=float(sol.objective), method="prices")
        else:
            todo.append((entry, relaxation))
        results.append(entry)

    todo.sort(key=lambda item: -item[0]["bound_gain"])
    if max_resolves is not None:
        for entry, _ in todo[max_resolves:]:
            entry["method"] = "bound"
        todo = todo[:max_resolves]
    if not exact:
        for entry, _ in todo:
            entry["method"] = "bound"
        todo = []

    # A pure relaxation of a problem the feasibility test passes unchanged passes it
    # unchanged too: one test here instead of one per re-solve (national 100 m: 0.5 s CPU).
    tested = bool(todo) and _passes_unchanged(problem)

    def re_solve(entry: dict, relaxation: _Relaxation) -> None:
        rsol = resolve(
            relaxation.problem(problem, base),
            method,
            sol=sol,
            before=problem.allowed,
            tested=tested and entry["cells_options_forbidden"] == 0,
            changed=relaxation.cells,
        )
        gain = float(rsol.objective - sol.objective)
        entry.update(
            gain=max(gain, 0.0) if gain > -tolerance * scale else gain,
            objective_relaxed=float(rsol.objective),
            method="re-solve",
            status_relaxed=rsol.status,
            gap_relaxed=float(rsol.gap),
        )

    resolves = [
        Resolve(
            entry["rule"],
            resolve_cost(entry["bound_gain"], scale),
            partial(re_solve, entry, relaxation),
        )
        for entry, relaxation in todo
    ]
    return RuleCosts(results, resolves)


def _base_allowed(problem: Problem) -> np.ndarray:
    if problem.allowed is None:
        return np.ones((problem.n_cells, problem.n_options), dtype=bool)
    return problem.allowed


# Cells up to which a run builds the relaxations beside its solve. They are held until the
# analysis (national 100 m: 0.37 GB, 104 bytes a cell for 21 rules) with an (N, O) allowed
# array while one is built; at national 25 m (56 M cells, about 6 GB) they would add that to
# the solve's own peak, so larger runs build them in the analysis, after the solve.
AHEAD_CELLS = 8_000_000


class RelaxationsAhead:
    """The relaxations of ``compiled``'s rules (:func:`compiled_relaxations`, each as the
    cells it changes), built in a thread of its own while the run solves and compacts. They
    need the compiled rules and allowed options only, not the optimum, and the main job
    keeps one of two cores busy (national 100 m: the solve took 9.0 s with them beside it,
    9.3 s without; they took about 10 s of the analysis's CPU after it). Their bounds and
    re-solves need the prices: :func:`rule_costs` does those as before, with the same
    results.

    A context manager: leaving it (the run done, failed or interrupted) stops the building
    after the rule it is at, so that an error does not wait for the rest. ``result()``
    waits for all of them (and raises what building one raised); ``seconds`` is the
    building's wall time."""

    def __init__(self, compiled):
        self.seconds: float | None = None
        self._stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relaxations")
        self._future = pool.submit(self._build, compiled)
        pool.shutdown(wait=False)

    def _build(self, compiled) -> dict:
        clock = time.perf_counter()
        base = _base_allowed(compiled.problem)
        built = {}
        # The run's own stage owns the progress line meanwhile.
        with progress.muted():
            for name, relaxed in compiled_relaxations(compiled).items():
                if self._stop.is_set():
                    break
                built[name] = _Relaxation.of(relaxed, base)
        self.seconds = time.perf_counter() - clock
        return built

    def result(self) -> dict:
        """Rule name -> its relaxation, for :func:`rule_costs`; once: the relaxations are
        not held here after (0.37 GB at national 100 m, through the exchanges and maps)."""
        if self._stop.is_set() or self._future is None:
            raise RuntimeError("the relaxations built ahead were stopped or taken")
        future, self._future = self._future, None
        return future.result()

    def __enter__(self) -> RelaxationsAhead:
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()


def _passes_unchanged(problem: Problem) -> bool:
    """Whether the feasibility test gives ``problem`` itself (no target moved a hair)."""
    from engine.solve.feasibility import check_feasible

    return check_feasible(problem) is problem


def compiled_relaxations(compiled, kinds=("exclusions",)) -> dict:
    """Rule id -> a callable giving ``allowed`` with that rule switched off (the other rules,
    reservations included, applied as compiled). The targets stay as compiled. The minimum
    patch sizes of [compactness] count as one rule, ``min_patch``. The relaxations share
    what applying the rules works out that a rule left out does not change
    (:class:`engine.rules.RuleMemo`: national 250 m, 0.06-0.13 s CPU each instead of
    0.45 s, 0.5 s where the rule's options have a minimum patch size)."""
    import dataclasses

    from engine.rules import RuleMemo, apply_rules

    config = compiled.config
    rules = [r for r in config.rules if r.kind in kinds]
    memo = RuleMemo()

    def make(rule):
        def relaxed():
            without = dataclasses.replace(config, rules=[r for r in config.rules if r is not rule])
            eff = apply_rules(
                without, compiled.cells, compiled.area_ha, compiled.province_codes, None, memo
            )
            return np.ascontiguousarray(eff.allowed)

        return relaxed

    out = {}
    for r in rules:
        key = r.id if r.province is None else f"{r.id} ({r.province})"
        out[key] = make(r)
    if any(len(cells) for cells in compiled.effects.min_patch.values()):
        from engine.compactness import min_patch_relaxation

        out["min_patch"] = lambda: min_patch_relaxation(compiled)
    return out
