"""The sweep driver: submit the variants not yet done to Dask, collect one results table."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from engine.errors import RuimtepuzzelError
from engine.outputs import dumps_json, run_folder_problems, write_file
from engine.sweep.robustness import write_robustness
from engine.sweep.scenario import Scenario, load_scenario, variant_key
from engine.sweep.tally import add_variant, province_grid, tally_sweep, uses_of
from engine.sweep.worker import record_path, run_variant

__all__ = [
    "sweep",
    "collect_results",
    "done_record",
    "check_options",
    "SweepError",
    "RESULT_COLUMNS",
    "SCHEDULER_TIMEOUT_S",
]

log = logging.getLogger(__name__)

# The fixed columns of results.parquet, in order; the axis columns (axis_<name>) follow
# ``warm_from``.
VARIANT_COLUMNS = [
    "variant",
    "variant_index",
    "status",
    "error",
    "objective",
    "gap",
    "seconds",
    "solve_seconds",
    "warm_from",
]
ROW_COLUMNS = [
    "zoning",
    "zone",
    "claim",
    "lower_ha",
    "upper_ha",
    "allocated_ha",
    "shortfall_ha",
    "shadow_price",
]
RESULT_COLUMNS = VARIANT_COLUMNS + ROW_COLUMNS

#: Seconds to wait for a running scheduler (--scheduler) to answer.
SCHEDULER_TIMEOUT_S = 10.0
#: Seconds between saves of the robustness counts while variants finish: a kill loses at
#: most the counting of the variants since, which a resumed sweep does again from their folders.
CHECKPOINT_EVERY_S = 30.0


class SweepError(RuimtepuzzelError):
    """Sweep options that cannot work (workers, threads, an unreachable scheduler)."""


def done_record(folder: Path, key: str) -> dict | None:
    """The variant.json (:func:`~engine.sweep.worker.record_path`) of the variant run into
    ``folder``, if it was run with this key and, unless it failed, ``folder`` is one whole
    run (:func:`engine.outputs.run_folder_problems`); else None (redo it)."""
    f = record_path(folder)
    if not f.is_file():
        return None
    try:
        rec = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if rec.get("key") != key:
        return None
    if rec.get("status") != "error":
        problems = run_folder_problems(folder)
        if problems:
            log.info(
                "%s: not a whole run (%s); the variant is run again",
                folder,
                "; ".join(problems[:3]),
            )
            return None
    return rec


def check_options(
    workers: int | None, scheduler: str | None, threads: int, analysis: str, timeout: float
) -> None:
    """Refuse options a sweep cannot run with, before any work (and before any wait)."""
    from engine.config.environment import ANALYSIS_LEVELS

    for name, value in (("workers", workers), ("threads", threads)):
        if value is None and name == "workers":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SweepError(
                f"{name} = {value!r}: a sweep needs at least 1; give --{name} 1 "
                f"or more" + (" (default: one per core)" if name == "workers" else " (default 1)")
            )
    if workers is not None and scheduler:
        raise SweepError(
            "give either workers (a local cluster) or scheduler (a running one), not both"
        )
    if analysis not in ANALYSIS_LEVELS:
        raise SweepError(f"analysis = {analysis!r}: use one of {', '.join(ANALYSIS_LEVELS)}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise SweepError(f"timeout = {timeout!r}: give the seconds to wait for the scheduler, > 0")


def _client(workers: int | None, scheduler: str | None, threads: int, timeout: float):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=timeout), None
        except Exception as err:  # refused, unknown host, timed out, garbage on the port
            raise SweepError(
                f"no Dask scheduler answers at {scheduler} within {timeout:g} s "
                f"({type(err).__name__}: {err}); start one there (dask scheduler), check "
                f"the address (tcp://HOST:8786) and that this machine can reach it, or run "
                f"on this machine with --workers N"
            ) from None
    env = {
        "NUMBA_NUM_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    cluster = LocalCluster(
        n_workers=workers or max(1, (os.cpu_count() or 1) // threads),
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=40,
        env=env,
    )
    return Client(cluster), cluster


def sweep(
    scenario,
    out_dir,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    threads: int = 1,
    analysis: str = "off",
    client=None,
    timeout: float = SCHEDULER_TIMEOUT_S,
) -> dict:
    """Run every variant not yet done, then write results.parquet/.csv; returns a summary.

    ``workers``: a LocalCluster of that many single-threaded workers (default: one per
    core); ``scheduler``: the address of a running Dask scheduler instead; ``client``: an
    existing ``distributed.Client`` (tests). ``threads``: numba threads per worker.
    ``analysis``: the analysis outputs ``run`` writes, per variant: "off" (default; a
    sweep's question is answered by the results table, and the maps and pages cost more
    than the solve), "quick" (price bounds) or "full" (with the re-solves for rule costs
    and exchanges). ``timeout``: seconds to wait for ``scheduler`` to answer. Bad options
    raise :class:`SweepError` before any work.
    """
    check_options(workers, scheduler, threads, analysis, timeout)
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_file(out / "sweep.json", dumps_json(scenario.describe()))
    records: dict[str, dict] = {}
    todo = []
    for v in scenario.variants:
        key = variant_key(scenario, v)
        rec = done_record(out / v.id, key)
        if rec is not None and not (retry_failed and rec["status"] == "error"):
            records[v.id] = rec
        else:
            todo.append((v, key))
    counter = RobustnessCounter(scenario, out, records)
    computed = 0
    t0 = time.perf_counter()
    if todo:
        own, made = None, client is None
        if made:
            client, own = _client(workers, scheduler, threads, timeout)
        try:
            futures = {}
            for v, key in todo:  # scenario order: a neighbour is submitted before its next
                spec = {
                    "id": v.id,
                    "index": v.index,
                    "key": key,
                    "axes": v.axes,
                    "overrides": v.overrides,
                    "warm_from": v.warm_from,
                    "base": str(scenario.base),
                    "grid": scenario.grid,
                    "resolution": scenario.resolution,
                    "method": scenario.method,
                    "out": str((out / v.id).resolve()),
                    "warm_dir": None,
                    "threads": threads,
                    "analysis": analysis,
                }
                after = []
                failed = records.get(v.warm_from, {}).get("status") == "error"
                if v.warm_from is not None and not failed:  # see worker._failed
                    spec["warm_dir"] = str((out / v.warm_from).resolve())
                    if v.warm_from in futures:
                        after.append(futures[v.warm_from])
                futures[v.id] = client.submit(
                    run_variant, spec, *after, pure=False, key=f"variant-{v.id}-{key}"
                )
            from dask.distributed import as_completed

            bar = None
            if progress:
                import sys

                from tqdm import tqdm

                bar = tqdm(
                    total=len(scenario.variants),
                    initial=len(records),
                    unit="variant",
                    desc=scenario.name,
                    file=sys.stderr,
                )
            ids = {f.key: vid for vid, f in futures.items()}
            for fut in as_completed(list(futures.values())):
                try:
                    rec = fut.result()
                except Exception as err:  # a worker died (memory?), or its neighbour's did:
                    # record it for this table, but write no variant.json, so a rerun redoes it
                    v = next(v for v, _ in todo if v.id == ids[fut.key])
                    rec = {
                        "id": v.id,
                        "index": v.index,
                        "axes": v.axes,
                        "overrides": v.overrides,
                        "warm_from": v.warm_from,
                        "status": "error",
                        "error": f"{type(err).__name__}: {err}",
                        "objective": None,
                        "gap": None,
                        "seconds": None,
                        "solve_seconds": None,
                    }
                records[rec["id"]] = rec
                counter.add(rec)
                computed += 1
                if bar is not None:
                    bar.update(1)
                    if rec["status"] == "error":
                        bar.write(f"{rec['id']}: {rec['error']}")
            if bar is not None:
                bar.close()
        finally:
            if made:
                client.close()
            if own is not None:
                own.close()
    counter.save()
    table = collect_results(scenario, out, records)
    robustness = counter.write()
    return {
        "variants": len(scenario.variants),
        "computed": computed,
        "reused": len(scenario.variants) - computed,
        "failed": sum(r["status"] == "error" for r in records.values()),
        "rows": len(table),
        "seconds": time.perf_counter() - t0,
        "results": str(out / "results.parquet"),
        "robustness": robustness,
    }


class RobustnessCounter:
    """The robustness counts of a sweep, kept up to date as its variants finish
    (:mod:`engine.sweep.tally`) and saved every :data:`CHECKPOINT_EVERY_S`."""

    def __init__(self, scenario: Scenario, out: Path, records: dict):
        from engine.config import load_config

        self.scenario, self.out = scenario, out
        self.by_id = {v.id: v for v in scenario.variants}
        province, self.names = province_grid(scenario)
        self.tally = tally_sweep(
            scenario, out, records, uses_of(load_config(scenario.base)), province
        )
        self.saved = time.monotonic()

    def add(self, record: dict) -> None:
        if record["status"] == "error" or record["id"] in self.tally.included:
            return
        add_variant(self.tally, self.by_id[record["id"]], self.out, record)
        if time.monotonic() - self.saved > CHECKPOINT_EVERY_S:
            self.save()

    def save(self) -> None:
        self.tally.save(self.out)
        self.saved = time.monotonic()

    def write(self) -> str | None:
        """The maps and tables of OUT/robustness/ (none while no variant has finished)."""
        if not self.tally.n:
            return None
        write_robustness(self.tally, self.scenario, self.out, self.names)
        return str(self.out / "robustness")


def _schema(axis_names):
    import pyarrow as pa

    fields = [
        ("variant", pa.string()),
        ("variant_index", pa.int64()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("objective", pa.float64()),
        ("gap", pa.float64()),
        ("seconds", pa.float64()),
        ("solve_seconds", pa.float64()),
        ("warm_from", pa.string()),
    ]
    fields += [(f"axis_{n}", pa.string()) for n in axis_names]
    fields += [
        ("zoning", pa.string()),
        ("zone", pa.string()),
        ("claim", pa.string()),
        ("lower_ha", pa.float64()),
        ("upper_ha", pa.float64()),
        ("allocated_ha", pa.float64()),
        ("shortfall_ha", pa.float64()),
        ("shadow_price", pa.float64()),
    ]
    return pa.schema(fields)


def collect_results(scenario: Scenario, out: Path, records: dict | None = None):
    """Build results.parquet and results.csv from the variant folders (scenario order)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    axis_names = [a["name"] for a in scenario.axes]
    rows = []
    for v in scenario.variants:
        rec = (records or {}).get(v.id) or done_record(out / v.id, variant_key(scenario, v))
        if rec is None:
            continue  # not run (yet)
        head = {
            "variant": v.id,
            "variant_index": v.index,
            "status": rec["status"],
            "error": rec.get("error"),
            "objective": rec.get("objective"),
            "gap": rec.get("gap"),
            "seconds": rec.get("seconds"),
            "solve_seconds": rec.get("solve_seconds"),
            "warm_from": v.warm_from,
        }
        head.update({f"axis_{n}": str(v.axes.get(n)) for n in axis_names})
        if rec["status"] == "error":
            rows.append(head)
            continue
        report = json.loads((out / v.id / "report.json").read_text())
        for t in report["targets"]:
            rows.append({**head, **{c: t.get(c) for c in ROW_COLUMNS}})
    schema = _schema(axis_names)
    frame = pd.DataFrame(rows, columns=schema.names)
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_file(out / "results.parquet", sink.getvalue().to_pybytes())
    write_file(out / "results.csv", frame.to_csv(index=False))
    return frame
