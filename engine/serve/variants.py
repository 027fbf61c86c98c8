"""*Wat als?* Variants of a run, re-solved in the background while the table talks.

A variant is a run's config with overrides (the CLI's ``--set`` keys:
``assumptions.housing_density_urban``, ``provinces.utrecht.targets.housing.lower``, ...) at a
resolution the user picks. :meth:`Variants.submit` checks the overrides at once (a bad key
is refused with the CLI's own message) and queues the solve; one worker solves one variant
at a time, warm-started from the base run's prices (``prices.npz``), and keeps the result in
memory: its report rows, its allocation and what changed against the base
(:func:`engine.analysis.compare.run_changes`). A variant whose targets do not fit is no
error: elastic targets report their shortfall; hard targets that cannot be met end as
``infeasible`` with the message that names the claim, the zone and the missing hectares.
On request a variant is written as a normal whole run folder (:func:`engine.report.write_outputs`).

Limits, so that a meeting's laptop keeps answering: at most ``max_queue`` variants waiting
or solving (then :class:`QueueFull`), ``max_kept`` kept, and a time limit per solve: a solve
over it is reported as failed at the limit and its result thrown away when it ends (a running
solve cannot be interrupted, so the worker stays busy until then).
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import RuimtepuzzelError

log = logging.getLogger(__name__)

__all__ = ["Variants", "Variant", "QueueFull", "VariantNotFound", "RESOLUTIONS"]

RESOLUTIONS = (1000, 250, 100)  # the grids a variant may be solved at (m)
NODATA = 255


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
    status: str = "queued"  # queued | running | done | infeasible | failed
    error: str | None = None
    submitted: float = field(default_factory=time.time)
    seconds: float | None = None
    report: dict | None = None
    changes: dict | None = None
    saved_as: str | None = None
    # Kept for the map and for saving; dropped when the variant is.
    prepared: object = None
    sol: object = None
    allocation: np.ndarray | None = None
    change_code: np.ndarray | None = None

    def public(self) -> dict:
        """What ``GET /api/variants/{id}`` answers."""
        out = {
            "id": self.id, "name": self.name, "base": self.base, "overrides": self.overrides,
            "resolution": self.resolution, "status": self.status, "error": self.error,
            "seconds": self.seconds, "saved_as": self.saved_as,
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
    """The variants of one server: submitted, solved one at a time, kept by id."""

    def __init__(
        self,
        runs: dict,
        *,
        save_dir: Path,
        max_queue: int = 4,
        max_kept: int = 20,
        time_limit: float = 300.0,
        analysis: str = "quick",
    ):
        self.runs = runs
        self.save_dir = Path(save_dir)
        self.max_queue, self.max_kept, self.time_limit = max_queue, max_kept, time_limit
        self.analysis = analysis
        self.kept: dict[str, Variant] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="praatkaart-solve")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

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
        self._pool.submit(self._solve, variant, merged)
        return variant

    def _forget_oldest(self) -> None:
        done = [v for v in self.kept.values() if v.status not in ("queued", "running")]
        if not done:
            raise QueueFull(f"{self.max_kept} variants are kept and none is done")
        del self.kept[min(done, key=lambda v: v.submitted).id]

    def _solve(self, variant: Variant, overrides: dict) -> None:
        import engine
        from engine.analysis.compare import run_changes
        from engine.report import build_report
        from engine.run import prepare_run
        from engine.serve.runs import grid_of

        base = self.runs[variant.base]
        variant.status = "running"
        started = time.perf_counter()
        timer = threading.Timer(self.time_limit, self._too_long, (variant,))
        timer.start()
        try:
            ds = grid_of(base.grid_name, variant.resolution)
            prepared = prepare_run(base.config_path, grid=ds, overrides=overrides or None)
            problem = prepared.compiled.problem
            prices = base.prices
            fits = prices is not None and [a.shape for a in prices] == [
                a.shape for a in problem.lower
            ]
            sol = engine.solve(problem, **({"prices": prices} if fits else {}))
            report = build_report(prepared.compiled, sol)
            alloc = allocation_grid(prepared.compiled, sol.choice, ds["land"].shape)
        except RuimtepuzzelError as err:  # hard targets that do not fit, a layer the grid lacks
            from engine.solve import InfeasibleError

            infeasible = isinstance(err, InfeasibleError) or "leave only" in str(err)
            self._finish(variant, started, "infeasible" if infeasible else "failed", str(err))
            return
        except Exception as err:  # a bug: keep the traceback in the log, the message on the page
            log.exception("variant %s failed", variant.id)
            self._finish(variant, started, "failed", f"{type(err).__name__}: {err}")
            return
        finally:
            timer.cancel()
        if variant.status != "running":  # over the time limit: thrown away
            return
        same = alloc.shape == base.allocation.shape
        changes, code = run_changes(
            base.report, report, base.allocation, alloc if same else base.allocation
        )
        changes["same_grid"] = same
        if not same:
            changes["cells_changed"] = changes["hectares_changed"] = None
            changes["transitions"] = []
        variant.prepared, variant.sol, variant.allocation = prepared, sol, alloc
        variant.change_code = code if same else None
        variant.report, variant.changes = report, changes
        self._finish(variant, started, "done")

    def _finish(self, variant: Variant, started: float, status: str, error: str | None = None):
        if variant.status != "running":
            return
        variant.seconds = time.perf_counter() - started
        variant.status, variant.error = status, error
        log.info("variant %s %s in %.1f s", variant.id, status, variant.seconds)

    def _too_long(self, variant: Variant) -> None:
        if variant.status == "running":
            variant.seconds = self.time_limit
            variant.status = "failed"
            variant.error = (
                f"the solve took longer than the time limit of {self.time_limit:g} s; "
                f"choose a coarser grid (resolution 1000)"
            )

    def save(self, vid: str, name: str | None = None):
        """Write a solved variant as a whole run folder in the save folder; returns its Run,
        added to the runs the server serves."""
        from engine.report import write_outputs
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
        prepared = variant.prepared
        write_outputs(
            out,
            prepared.compiled,
            variant.sol,
            prepared.ds,
            timings={"solve": variant.seconds or 0.0},
            deviations=prepared.deviations,
            extra_inputs=prepared.inputs,
            analysis=self.analysis,
        )
        rid = run_id(out, self.runs)
        self.runs[rid] = Run.open(out, rid)
        variant.saved_as = rid
        log.info("variant %s saved as run %s in %s", vid, rid, out)
        return self.runs[rid]
