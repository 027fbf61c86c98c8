"""Exchange suggestions (*uitruil*, L11699, L11761): move part of a claim's target from the
province where it is dear to one where it is cheap.

For claim k and provinces a (dearer, price ``pi_a``) and b (cheaper, ``pi_b``), lowering a's
target by d ha and raising b's by d changes the objective by about ``(pi_a - pi_b) d`` at first,
less as the prices move towards each other. The hectares ``d*`` where they meet are estimated
from the cells themselves, other prices held fixed: lowering a's price to p releases the cells
of a whose k-option wins by less than ``(pi_a - p) c``; raising b's price to p draws in the cells
of b whose best k-option loses by less than ``(p - pi_b) c``; ``d*`` is where the two supply
curves cross. Every suggestion is then verified by re-solving the problem with the target moved;
the reported ``gain`` is that measured objective difference (``d`` is halved while the move
makes things worse or is infeasible).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from engine.analysis.conflict import _zoning_index
from engine.analysis.resolves import Resolve, resolve_cost, run_resolves
from engine.analysis.rule_costs import relaxed_problem, resolve
from engine.problem import Problem
from engine.solve.dual import dual_structure
from engine.solve.fast import supply

__all__ = [
    "exchange_suggestions",
    "plan_exchanges",
    "Exchanges",
    "apply_exchange",
    "candidate_pairs",
]


def candidate_pairs(
    problem: Problem, sol, zoning=None, *, min_difference: float = 1e-6, per_claim: int = 2
) -> list[dict]:
    """Per claim the pairs of zones (dearer, cheaper) with the largest price differences, each
    zone used once per claim; only rows with a lower target (a target can be moved)."""
    l = _zoning_index(problem, zoning)
    prices, lower = sol.prices[l], problem.lower[l]
    out = []
    for k in range(problem.n_claims):
        zs = np.flatnonzero(~np.isnan(lower[:, k]))
        if len(zs) < 2:
            continue
        p = prices[zs, k]
        order = np.argsort(-p, kind="stable")
        dear, cheap = list(zs[order]), list(zs[order][::-1])
        used: set = set()
        n = 0
        for a in dear:
            if n >= per_claim:
                break
            for b in cheap:
                if a in used or b in used or a == b:
                    continue
                if prices[a, k] - prices[b, k] <= min_difference or lower[a, k] <= 0:
                    break
                out.append(
                    {
                        "zoning": l,
                        "claim": k,
                        "from": int(a),
                        "to": int(b),
                        "difference": float(prices[a, k] - prices[b, k]),
                    }
                )
                used |= {a, b}
                n += 1
                break
    out.sort(key=lambda e: -e["difference"])
    return out


def _supply_curve(problem: Problem, sol, l: int, z: int, k: int, structure, releasing: bool):
    """Sorted price steps and cumulative claim hectares that move as zone z's price of claim k
    falls (releasing) or rises (drawing in) by the step."""
    cells = np.flatnonzero(problem.zones[l] == z)
    steps = supply(problem, structure, sol.row_prices, cells, k, drawing=not releasing)
    return steps.step, np.cumsum(steps.hectares)


def _hectares_at(staircase, step: float) -> float:
    """The cumulative hectares of a (steps, hectares) staircase at a price step."""
    steps, hectares = staircase
    if not len(steps) or steps[0] > step:
        return 0.0
    return hectares[np.searchsorted(steps, step, side="right") - 1]


def _meeting_point(pa, pb, rel, draw, cap):
    """Hectares d and price p where the released supply in a equals the drawn supply in b."""
    lo, hi = pb, pa
    for _ in range(60):
        p = 0.5 * (lo + hi)
        if _hectares_at(rel, pa - p) < _hectares_at(draw, p - pb):
            hi = p  # a releases too little: the price in a must fall further
        else:
            lo = p
    p = 0.5 * (lo + hi)
    ha, hb = _hectares_at(rel, pa - p), _hectares_at(draw, p - pb)
    return float(min(max(ha, hb), cap)), float(p)


def apply_exchange(problem: Problem, suggestion: dict) -> Problem:
    """The problem with ``suggestion['hectares']`` of the target moved from one zone to another."""
    l, k = suggestion["zoning_index"], suggestion["claim_index"]
    a, b, d = suggestion["from_index"], suggestion["to_index"], suggestion["hectares"]
    lower = [lo.copy() for lo in problem.lower]
    lower[l][a, k] -= d
    lower[l][b, k] += d
    lower[l][a, k] = max(lower[l][a, k], 0.0)
    return relaxed_problem(problem, lower=lower)


def exchange_suggestions(problem: Problem, sol, zoning=None, *, workers: int = 1, **options):
    """Exchange suggestions, best estimated gain first, each verified by a re-solve around
    the optimum's prices (``workers`` at a time); ``options`` as :func:`plan_exchanges`."""
    planned = plan_exchanges(problem, sol, zoning, **options)
    run_resolves(planned.resolves, "exchanges verified", workers=workers)
    return planned.entries()


@dataclass(frozen=True)
class Exchanges:
    """The suggestions estimated, and the re-solves that verify them
    (:func:`engine.analysis.resolves.run_resolves`); none where they are not verified."""

    suggestions: list[dict]
    resolves: list[Resolve]

    def entries(self) -> list[dict]:
        """The suggestions (once verified: those that hold, the best measured gain first)."""
        if not self.resolves:
            return list(self.suggestions)
        return sorted((s for s in self.suggestions if s["verified"]), key=lambda e: -e["gain"])


def plan_exchanges(
    problem: Problem,
    sol,
    zoning=None,
    *,
    per_claim: int = 2,
    max_suggestions: int = 6,
    verify: bool = True,
    method: str = "auto",
    halvings: int = 4,
    min_difference: float = 1e-6,
) -> Exchanges:
    """:func:`exchange_suggestions` up to its re-solves: the suggestions estimated from the
    supply curves, and a re-solve to verify each, to be run with any other re-solves."""
    structure = dual_structure(problem)
    out = []
    for cand in candidate_pairs(
        problem, sol, zoning, per_claim=per_claim, min_difference=min_difference
    ):
        l, k, a, b = cand["zoning"], cand["claim"], cand["from"], cand["to"]
        pa, pb = float(sol.prices[l][a, k]), float(sol.prices[l][b, k])
        upper_b = problem.upper[l][b, k]
        cap = float(problem.lower[l][a, k])
        if not np.isnan(upper_b):
            cap = min(cap, float(upper_b - problem.lower[l][b, k]))
        rel = _supply_curve(problem, sol, l, a, k, structure, releasing=True)
        draw = _supply_curve(problem, sol, l, b, k, structure, releasing=False)
        d, p_meet = _meeting_point(pa, pb, rel, draw, cap)
        if d <= 0:
            continue
        out.append({
            "zoning": problem.zoning_names[l], "claim": problem.claim_names[k],
            "from": problem.zone_names[l][a], "to": problem.zone_names[l][b],
            "price_from": pa, "price_to": pb, "price_meet_estimate": p_meet,
            "hectares_estimate": d, "hectares": d,
            # Gain estimate: the area between the two prices as they close linearly.
            "gain_estimate": 0.5 * (pa - pb) * d,
            "gain": None, "verified": False,
            "zoning_index": l, "claim_index": k, "from_index": a, "to_index": b,
        })  # fmt: skip
    out.sort(key=lambda e: -e["gain_estimate"])
    out = out[:max_suggestions]
    if not verify:
        return Exchanges(out, [])
    scale = max(1.0, abs(sol.objective))
    # Each suggestion is verified on its own: the same whatever the number of workers.
    resolves = [
        Resolve(
            f"{s['claim']} {s['from']} -> {s['to']}",
            resolve_cost(s["gain_estimate"], scale),
            partial(_verify, problem, sol, s, method, halvings, scale),
        )
        for s in out
    ]
    return Exchanges(out, resolves)


def _verify(problem: Problem, sol, s: dict, method: str, halvings: int, scale: float) -> None:
    """Re-solve with the suggestion's hectares moved, halved while the move makes things
    worse or cannot be met; record the measured gain in ``s``."""
    from engine.solve import InfeasibleError

    d = s["hectares"]
    for _ in range(halvings + 1):
        s["hectares"] = d
        try:
            moved, targets = apply_exchange(problem, s), (problem.lower, problem.upper)
            rsol = resolve(moved, method, sol=sol, targets=targets)
        except InfeasibleError:
            d *= 0.5
            continue
        gain = float(rsol.objective - sol.objective)
        if gain > 1e-9 * scale:
            s.update(
                gain=gain,
                verified=True,
                objective_after=float(rsol.objective),
                status_after=rsol.status,
                # The prices after the move: near each other when d* was right.
                price_from_after=float(
                    rsol.prices[s["zoning_index"]][s["from_index"], s["claim_index"]]
                ),
                price_to_after=float(
                    rsol.prices[s["zoning_index"]][s["to_index"], s["claim_index"]]
                ),
            )
            return
        d *= 0.5
    s.update(gain=None, verified=False, hectares=0.0)
