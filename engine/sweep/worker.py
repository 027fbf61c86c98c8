"""What runs on a Dask worker: one variant, as ``ruimtepuzzel run`` would, into its folder."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from engine.errors import RuimtepuzzelError
from engine.outputs import dumps_json, write_file

__all__ = ["run_variant", "worker_grid", "record_path"]

logger = logging.getLogger(__name__)

# The grids a worker has opened, by (grid, resolution): each is loaded into memory once per
# worker process and shared by all the variants that worker runs.
_GRIDS: dict = {}


def worker_grid(config, grid, resolution):
    from engine.run import open_run_grid

    key = (str(grid or config.grid), float(resolution or config.resolution))
    if key not in _GRIDS:
        _GRIDS[key] = open_run_grid(config, grid, resolution).load()
    return _GRIDS[key]


def _local_dask():
    """Inside a Dask worker, a ``.load()`` would go to the cluster's scheduler and wait for
    the other (busy, single-threaded) workers: 60 s instead of 0.5 s for the 250 m grid.
    A variant's own dask work runs in its own thread instead."""
    import dask

    return dask.config.set(scheduler="synchronous")


def record_path(folder) -> Path:
    """A variant's variant.json: ``OUT/<id>.variant.json``, beside its run folder
    ``OUT/<id>/`` and not in it, because ``run`` owns that folder whole (its manifest lists
    every file in it, and a rerun swaps the folder out)."""
    folder = Path(folder)
    return folder.with_name(f"{folder.name}.variant.json")


def run_variant(spec: dict, *_after) -> dict:
    """Run one variant into ``spec['out']`` as ``run`` does; returns its variant.json content,
    written to :func:`record_path` of the folder.

    ``_after``: the results of the tasks this one waits for (its warm-start neighbour), so
    that it starts from the neighbour's saved prices. Never raises for a failing variant:
    the error is recorded in variant.json with status "error" (a programming error is
    logged with its traceback as well).
    """
    from engine.compactness import sweep_columns
    from engine.config import load_config
    from engine.report import read_prices
    from engine.run import run
    from engine.solve import WarmStartError

    out = Path(spec["out"])
    record_file = record_path(out)
    record_file.parent.mkdir(parents=True, exist_ok=True)
    # The folder itself is left alone: run replaces it whole, and until then it must stay
    # the previous run, whole. Only the record goes, so that a variant killed from here on
    # is redone whatever its folder holds.
    record_file.unlink(missing_ok=True)
    record = {k: spec[k] for k in ("id", "index", "key", "axes", "overrides", "warm_from")}
    _limit_threads(spec.get("threads", 1))  # numba's setting is per thread: set it here
    t0 = time.perf_counter()
    timings: dict = {}
    with _local_dask():
        try:
            config = load_config(spec["base"], spec["overrides"])
            ds = worker_grid(config, spec["grid"], spec["resolution"])
            warm = None
            if spec.get("warm_dir") and not _failed(_after):
                warm = read_prices(Path(spec["warm_dir"]))

            def run_from(prices):
                return run(
                    config,
                    out,
                    grid=ds,
                    progress=False,
                    method=spec["method"],
                    prices=prices,
                    analysis=spec.get("analysis", "off"),
                )

            try:
                report = run_from(warm)
            except WarmStartError as err:
                # The neighbour's zones or claims differ (an axis changes them): start cold.
                logger.info(
                    "variant %s: starting cold, the prices of %s do not fit: %s",
                    spec["id"],
                    spec.get("warm_from"),
                    err,
                )
                warm = None
                report = run_from(None)
            timings = report["timings"]
            record.update(
                status=report["status"],
                error=None,
                objective=report["objective"],
                gap=report["gap"],
                solve_seconds=timings["solve"],
                warm_started=warm is not None and report["method"] == "fast",
                **sweep_columns(report),
            )
        except Exception as err:  # a failing variant is a result, not the end of the sweep
            if not isinstance(err, RuimtepuzzelError):
                logger.exception("variant %s failed", spec["id"])
            record.update(
                status="error",
                error=f"{type(err).__name__}: {err}",
                objective=None,
                gap=None,
                solve_seconds=None,
                warm_started=False,
            )
    record["seconds"] = time.perf_counter() - t0
    # Where the time went: run's stages (config, grid, compile, solve, write, analysis).
    record["stages"] = {k: v for k, v in timings.items() if isinstance(v, (int, float))}
    write_file(record_file, dumps_json(record))
    return record


def _failed(after) -> bool:
    """Whether the neighbour failed in this sweep: a failed run leaves the neighbour's
    folder as it was, so its prices there would be those of an earlier run (other
    settings), and the result would depend on what the folder happened to hold."""
    return any(isinstance(rec, dict) and rec.get("status") == "error" for rec in after)


def _limit_threads(n: int = 1):
    """Numba and BLAS threads per worker: oversubscribed numba threads slow the solver 10x."""
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except Exception:  # pragma: no cover - numba missing or threads fixed
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except Exception:  # pragma: no cover
        pass
    return n
