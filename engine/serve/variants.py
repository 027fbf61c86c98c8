"""*Wat als?* Variants of a run, re-solved in a child process while the table talks.

A variant is a run's config with overrides (the CLI's ``--set`` keys:
``assumptions.housing_density_urban``, ``provinces.utrecht.targets.housing.lower``, ...) at a
resolution the user picks. :meth:`Variants.submit` checks the overrides at once (a bad key
is refused with the CLI's own message) and queues the solve. One child process
(:mod:`engine.serve.worker`) solves one variant at a time as a run does (compile, solve,
compaction), the solve repaired straight from the base run's prices, compares it with the base
(:func:`engine.analysis.compare.run_changes`) and draws its maps; the server keeps the
report rows, the changes (the prices among them) and the PNGs, not the arrays. A variant whose
targets do not fit is no error: elastic targets report their shortfall; hard targets that cannot be
met (:class:`~engine.solve.InfeasibleError`, :class:`~engine.compile.CapacityError`) end as
``infeasible`` with the message that names the claim, the zone and the missing hectares.
On request a variant is written as a normal whole run folder, by the same child.

Limits, so that a meeting's laptop keeps answering: at most ``max_queue`` variants waiting
or solving (then :class:`QueueFull`), ``max_kept`` kept, and a time limit per solve: the
child is killed when it runs over, the variant ends as ``timeout`` and the next one gets a
new child.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import RuimtepuzzelError

log = logging.getLogger(__name__)

__all__ = ["Variants", "Variant", "QueueFull", "VariantNotFound", "RESOLUTIONS"]

RESOLUTIONS = (1000, 250, 100)  # the grids a variant may be solved at (m)
NODATA = 255
UNCHANGED, UNCHANGED_CODE = "#d9d9d9", 254  # the change map's unchanged land (codes are < 254)
PRICE_SCALE = "RdBu_r"  # price change: blue where a claim got cheaper, red where scarcer
PRICE_TOLERANCE = 1e-6  # a price change below this (value per claim-ha) is the solver's noise
SAVE_LIMIT = 900.0  # seconds writing a variant's run folder may take
KEEP_SOLVED = 2  # variants whose compiled problem and solution the child keeps for saving
# Repair rounds a variant takes straight from its base's prices before the solver searches
# prices as a cold solve does: density 40 -> 60 or 70 settles in 4-5 rounds at 250 m, 150 in
# 8 at 1000 m.
NEAR_REPAIRS = 8


class QueueFull(RuimtepuzzelError):
    """Too many variants waiting: try again when one is done."""


class VariantNotFound(RuimtepuzzelError):
    """A variant id the server does not keep."""


@dataclass
class Variant:
    id: str
    name: str
    base: str
    overrides: dict
    resolution: float
    status: str = "queued"  # queued | running | done | infeasible | timeout | failed
    error: str | None = None
    submitted: float = field(default_factory=time.time)
    seconds: float | None = None
    report: dict | None = None
    changes: dict | None = None
    saved_as: str | None = None
    shortfall_ha: float | None = None  # what a variant that does not fit misses
    timings: dict = field(default_factory=dict)  # seconds per stage, from the child
    png: dict = field(default_factory=dict)  # map id -> PNG bytes, drawn by the child
    price_layers: list = field(default_factory=list)  # [{claim, id, limit}] prices that moved
    merged: dict = field(default_factory=dict)  # the base's overrides and the variant's
    time_limit: float | None = None  # seconds it may solve

    def public(self) -> dict:
        """What ``GET /api/variants/{id}`` answers."""
        out = {
            "id": self.id, "name": self.name, "base": self.base, "overrides": self.overrides,
            "resolution": self.resolution, "status": self.status, "error": self.error,
            "seconds": self.seconds, "saved_as": self.saved_as, "timings": self.timings,
            "shortfall_ha": self.shortfall_ha, "price_layers": self.price_layers,
            "time_limit": self.time_limit,
        }  # fmt: skip
        if self.report is not None:
            r = self.report
            out.update(
                objective=r["objective"],
                gap=r["gap"],
                solver_status=r["status"],
                targets=r["targets"],
                shortfall_ha=float(sum(t.get("shortfall_ha") or 0 for t in r["targets"])),
                changes=self.changes,
            )
        return out


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", str(name).lower()).strip("-")[:60]


def allocation_grid(compiled, choice, shape) -> np.ndarray:
    """The option code per cell of the grid (NODATA off the land), as in allocation.tif."""
    codes = np.array([o.code for o in compiled.config.options.values()], dtype=np.uint8)
    grid = np.full(shape, NODATA, dtype=np.uint8)
    grid.ravel()[compiled.cells.flat] = codes[np.asarray(choice)]
    return grid


class Variants:
    """The variants of one server: submitted, solved one at a time in a child, kept by id."""

    def __init__(
        self,
        runs: dict,
        *,
        save_dir: Path,
        max_queue: int = 4,
        max_kept: int = 20,
        time_limit: float = 300.0,
        analysis: str = "quick",
        warm: bool = True,
    ):
        from engine.serve.worker import SolveProcess

        self.runs = runs
        self.save_dir = Path(save_dir)
        self.max_queue, self.max_kept, self.time_limit = max_queue, max_kept, time_limit
        self.analysis = analysis
        self.kept: dict[str, Variant] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        # One thread hands the jobs to the child in order: the queue the limits count.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="praatkaart-solve")
        base = next(iter(runs.values()))
        self.process = SolveProcess(
            warm=(warm_up, (base.config_path, base.grid_name, base.resolution, base.overrides,
                            base.prices)) if warm else None
        )  # fmt: skip
        if warm:  # started now, so that the first click finds it ready
            self._pool.submit(self._start)

    def _start(self) -> None:
        try:
            self.process.call(len, (), timeout=60)
        except RuimtepuzzelError as err:
            log.warning("solve process: %s", err)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.process.close()

    def get(self, vid: str) -> Variant:
        if vid not in self.kept:
            raise VariantNotFound(f"no variant {vid!r}; GET /api/variants lists the variants kept")
        return self.kept[vid]

    def submit(self, base: str, overrides: dict, resolution=None, name: str | None = None):
        """Check and queue a variant; returns it (status queued). Raises the CLI's
        :class:`~engine.config.ConfigError` for bad overrides, :class:`QueueFull`."""
        from engine.config import load_config
        from engine.serve.runs import RunNotFound

        if base not in self.runs:
            raise RunNotFound(f"no run {base!r}; GET /api/runs lists the runs served")
        run = self.runs[base]
        resolution = float(resolution or run.resolution)
        if resolution not in RESOLUTIONS:
            raise RuimtepuzzelError(
                f"resolution {resolution:g}: choose one of {', '.join(map(str, RESOLUTIONS))} (m)"
            )
        if not isinstance(overrides, dict):
            raise RuimtepuzzelError(
                "overrides: an object of dotted keys, e.g. "
                '{"assumptions.housing_density_urban": 80}'
            )
        merged = {**run.overrides, **overrides}
        load_config(run.config_path, merged)  # the CLI's check and message, before queueing
        with self._lock:
            waiting = sum(v.status in ("queued", "running") for v in self.kept.values())
            if waiting >= self.max_queue:
                raise QueueFull(
                    f"{waiting} variants are waiting or solving (at most {self.max_queue}); "
                    f"submit again when one is done"
                )
            if len(self.kept) >= self.max_kept:
                self._forget_oldest()
            vid = f"v{next(self._ids)}"
            variant = Variant(vid, name or vid, base, dict(overrides), resolution)
            self.kept[vid] = variant
        variant.merged = merged
        self._pool.submit(self._solve, variant)
        return variant

    def _forget_oldest(self) -> None:
        done = [v for v in self.kept.values() if v.status not in ("queued", "running")]
        if not done:
            raise QueueFull(f"{self.max_kept} variants are kept and none is done")
        del self.kept[min(done, key=lambda v: v.submitted).id]

    def _job(self, variant: Variant) -> dict:
        base = self.runs[variant.base]
        return {
            "id": variant.id, "config": base.config_path, "grid": base.grid_name,
            "resolution": variant.resolution, "overrides": variant.merged,
            "prices": base.prices, "base_folder": str(base.folder), "base_report": base.report,
        }  # fmt: skip

    def _solve(self, variant: Variant) -> None:
        from engine.serve.worker import TimeLimit

        variant.status, variant.time_limit = "running", self.time_limit
        started = time.perf_counter()
        try:
            out = self.process.call(solve_variant, self._job(variant), timeout=self.time_limit)
        except TimeLimit:
            self._finish(variant, started, "timeout", (
                f"the solve took longer than the time limit of {self.time_limit:g} s and was "
                f"stopped; choose a coarser grid (resolution 1000) or a smaller change"
            ))  # fmt: skip
            return
        except RuimtepuzzelError as err:  # the child raised or died: a bug, logged there
            self._finish(variant, started, "failed", str(err))
            return
        variant.timings = out["timings"]
        if out["status"] != "done":
            variant.shortfall_ha = out.get("shortfall_ha")
            self._finish(variant, started, out["status"], out["error"])
            return
        variant.report, variant.changes = out["report"], out["changes"]
        variant.png, variant.price_layers = out["png"], out["price_layers"]
        self._finish(variant, started, "done")
        variant.timings["transfer"] = variant.seconds - sum(
            v for v in out["timings"].values() if isinstance(v, float)
        )

    def _finish(self, variant: Variant, started: float, status: str, error: str | None = None):
        variant.seconds = time.perf_counter() - started
        variant.status, variant.error = status, error
        log.info("variant %s %s in %.1f s", variant.id, status, variant.seconds)

    def save(self, vid: str, name: str | None = None):
        """Write a solved variant as a whole run folder in the save folder; returns its Run,
        added to the runs the server serves."""
        from engine.serve.runs import Run, run_id

        variant = self.get(vid)
        if variant.status != "done":
            raise RuimtepuzzelError(
                f"variant {vid} is {variant.status}: only a solved variant can be saved"
            )
        folder_name = slug(name or f"{variant.base}-{variant.name}")
        if not folder_name:
            raise RuimtepuzzelError("name: give the run a name with letters or digits")
        out = self.save_dir / folder_name
        if out.exists():
            raise RuimtepuzzelError(
                f"{folder_name}: a folder of that name exists in {self.save_dir}; "
                f"choose another name"
            )
        job = {**self._job(variant), "out": str(out), "seconds": variant.seconds or 0.0,
               "analysis": self.analysis}  # fmt: skip
        how = self._pool.submit(self.process.call, save_variant, job, timeout=SAVE_LIMIT)
        how = how.result()
        rid = run_id(out, self.runs)
        self.runs[rid] = Run.open(out, rid)
        variant.saved_as = rid
        log.info("variant %s saved as run %s in %s (%s)", vid, rid, out, how)
        return self.runs[rid]


# --- in the child process ------------------------------------------------------------------
# Module-level functions, so that the spawned child can import them by name.

_SOLVED: OrderedDict = OrderedDict()  # variant id -> (prepared, sol), the last KEEP_SOLVED


def _fits(prices, problem) -> bool:
    return prices is not None and [np.shape(a) for a in prices] == [a.shape for a in problem.lower]


def warm_up(config: str, grid: str, resolution: float, overrides: dict, prices) -> None:
    """A new child's first job: its imports, the base's grid and numba's compiled kernels
    (a 1000 m solve of the base config), so that the first click waits for none of them."""
    import engine
    from engine.run import prepare_run
    from engine.serve.layers import continuous_png
    from engine.serve.runs import grid_of

    continuous_png(np.zeros((2, 2)), PRICE_SCALE, -1.0, 1.0)  # matplotlib and its colour maps
    grid_of(grid, resolution)
    prepared = prepare_run(config, grid=grid_of(grid, 1000.0), overrides=overrides or None)
    problem = prepared.compiled.problem
    engine.solve(problem, **({"prices": prices} if _fits(prices, problem) else {}))


def _solve_from(problem, prices):
    """The variant solved from its base's prices: repaired straight from them (no price
    search, the bulk of a solve), else, when that does not settle in :data:`NEAR_REPAIRS`
    rounds, solved again with the search. Exact either way: a result counts only when
    certified optimal. ``timings["price_search"]`` says which ran."""
    import engine
    from engine.solve.solution import gaps_muted

    with gaps_muted():  # not settled: the search takes over
        sol = engine.solve(problem, prices=prices, search=False, max_repairs=NEAR_REPAIRS)
    searched = sol.status != "optimal"
    if searched:
        log.info("variant: no optimum in %d repairs from the base's prices", NEAR_REPAIRS)
        sol = engine.solve(problem, prices=prices)
    sol.timings["price_search"] = searched
    return sol


def _shortfall(err) -> float | None:
    rows = getattr(err, "rows", None) or []
    if hasattr(err, "shortfall_ha"):
        return err.shortfall_ha
    lower = [r["hectares"] for r in rows if r.get("side") == "lower" and "hectares" in r]
    return float(sum(lower)) if lower else None


def _row_prices(problem, prices) -> np.ndarray:
    """Per-zoning prices (Z_l, K) in the problem's row order."""
    rows = problem.rows
    out = np.zeros(len(rows))
    for l, p in enumerate(prices):
        on = np.asarray(rows.zoning) == l
        out[on] = np.asarray(p)[np.asarray(rows.zone)[on], np.asarray(rows.claim)[on]]
    return out


def _price_layers(compiled, sol, base_prices, shape) -> tuple[list, dict]:
    """Per claim whose price moved somewhere: the change of its price in every cell (the sum
    over the zones the cell lies in, as the scarcity maps), drawn on a scale symmetric
    around no change. Returns ([{claim, id, limit}], {id: png})."""
    from engine.analysis.scarcity import group_prices
    from engine.serve.layers import continuous_png, gradient

    problem = compiled.problem
    delta = np.asarray(sol.row_prices, dtype=np.float64) - _row_prices(problem, base_prices)
    per_cell = group_prices(problem, delta)[problem.groups.group]  # (N, K)
    layers, pngs = [], {}
    for k, claim in enumerate(problem.claim_names):
        limit = float(np.abs(per_cell[:, k]).max()) if problem.n_cells else 0.0
        if limit <= PRICE_TOLERANCE:
            continue
        grid = np.full(shape, np.nan, dtype=np.float32)
        grid.ravel()[compiled.cells.flat] = per_cell[:, k]
        lid = f"price-{claim}"
        pngs[lid] = continuous_png(grid, PRICE_SCALE, -limit, limit)
        scale = gradient(PRICE_SCALE)
        layers.append({"claim": claim, "id": lid, "limit": limit, "gradient": scale})
    layers.sort(key=lambda x: -x["limit"])
    return layers, pngs


def _plan(job: dict, lap=lambda stage: None):
    """Compile the variant, solve it from the base's prices and cluster it: (prepared, the
    exact solution, the plan). The page's plan, and the same plan again when a variant is
    saved after the child has let it go. ``lap(stage)`` is told of each stage's end."""
    import engine
    from engine.compactness import cluster
    from engine.run import prepare_run
    from engine.serve.runs import grid_of

    ds = grid_of(job["grid"], job["resolution"])
    prepared = prepare_run(job["config"], grid=ds, overrides=job["overrides"] or None)
    lap("compile")
    problem = prepared.compiled.problem
    warm = _fits(job["prices"], problem)
    exact = _solve_from(problem, job["prices"]) if warm else engine.solve(problem)
    lap("solve")
    plan = cluster(prepared.compiled, exact)
    lap("compact")
    return prepared, exact, plan


def solve_variant(job: dict) -> dict:
    """Compile, solve (warm-started), cluster, compare with the base and draw: everything a
    variant shows, as plain data the parent can keep (no arrays)."""
    from engine.analysis.compare import run_changes
    from engine.compile import CapacityError
    from engine.report import build_report
    from engine.serve.layers import categorical_png
    from engine.solve import InfeasibleError

    # Wall and CPU seconds per stage: on a shared machine the wall time is mostly the load.
    timings: dict = {"cpu": {}}
    clock = [time.perf_counter(), time.process_time()]

    def lap(stage: str) -> None:
        now = [time.perf_counter(), time.process_time()]
        timings[stage] = now[0] - clock[0]
        timings["cpu"][stage] = now[1] - clock[1]
        clock[:] = now

    try:
        prepared, exact, sol = _plan(job, lap)
    except (InfeasibleError, CapacityError) as err:  # hard targets that do not fit
        return {"status": "infeasible", "error": str(err), "shortfall_ha": _shortfall(err),
                "timings": timings}  # fmt: skip
    except RuimtepuzzelError as err:  # a layer the grid lacks, prices that do not fit, ...
        return {"status": "failed", "error": str(err), "timings": timings}
    timings["warm_start"] = _fits(job["prices"], prepared.compiled.problem)
    timings["price_search"] = exact.timings.get("price_search", True)
    timings["solve_detail"] = {k: v for k, v in exact.timings.items() if isinstance(v, float)}
    compiled, ds = prepared.compiled, prepared.ds
    _SOLVED[job["id"]] = (prepared, sol)
    while len(_SOLVED) > KEEP_SOLVED:
        _SOLVED.popitem(last=False)

    report = build_report(compiled, sol)
    alloc = allocation_grid(compiled, sol.choice, ds["land"].shape)
    base_alloc = _base_allocation(job["base_folder"])
    same = alloc.shape == base_alloc.shape
    changes, code = run_changes(
        job["base_report"], report, base_alloc, alloc if same else base_alloc
    )
    changes["same_grid"] = same
    if not same:
        changes["cells_changed"] = changes["hectares_changed"] = None
        changes["transitions"] = []
    lap("compare")

    colours = {o["code"]: o["colour"] for o in report["options"]}
    png = {"allocation": categorical_png(alloc, colours)}
    price_layers: list = []
    if same:
        # Changed cells in the colour of their new option, unchanged land grey.
        shown = np.where(code == 0, UNCHANGED_CODE, alloc)
        png["change"] = categorical_png(shown, {**colours, UNCHANGED_CODE: UNCHANGED})
        # The base's prices fit the variant's rows: the same zonings, zones and claims.
        if timings["warm_start"]:
            price_layers, more = _price_layers(compiled, sol, job["prices"], alloc.shape)
            png.update(more)
    lap("drawing")
    return {
        "status": "done", "report": report, "changes": changes, "png": png,
        "price_layers": price_layers, "timings": timings,
    }  # fmt: skip


def _base_allocation(folder: str) -> np.ndarray:
    import rasterio

    with rasterio.open(Path(folder) / "allocation.tif") as src:
        return src.read(1)


def save_variant(job: dict) -> str:
    """Write a variant as a whole run folder of exactly the plan the page showed: the
    child's own compiled problem and plan when it still keeps them, else solved again as
    the page solved it (from the base's prices: the same plan, where tied optima would let
    another start pick another); the child was replaced or has moved on."""
    from engine.report import write_outputs

    if job["id"] in _SOLVED:
        how, (prepared, sol) = "kept", _SOLVED[job["id"]]
    else:
        how, (prepared, _, sol) = "solved again", _plan(job)
    write_outputs(
        job["out"], prepared.compiled, sol, prepared.ds,
        timings={"solve": job["seconds"]}, deviations=prepared.deviations,
        extra_inputs=prepared.inputs, analysis=job["analysis"],
    )  # fmt: skip
    return how
