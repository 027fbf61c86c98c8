"""Scenario sweeps: many variants of one base config on Dask, resumable, one results table.

A scenario file (``scenarios/*.toml``) names a base config and variant axes::

    [sweep]
    name = "demo"
    base = "../configs/national.toml"    # relative to the scenario file
    resolution = 1000                    # optional: the base config's otherwise
    combine = "grid"                     # "grid": every combination; "list": [[variant]] only
    warm_start = true                    # start a variant from its neighbour's prices

    [[axis]]
    name = "density"
    key = "assumptions.housing_density_urban"
    values = [45.0, 60.0, 80.0]
    labels = ["low", "mid", "high"]      # optional; default: the values as text

    [[axis]]                             # an axis whose points set several keys at once
    name = "provinces"
    points = [
      { label = "area", set = {} },
      { label = "west", set = { "provinces.zuid-holland.shares.nature" = 0.1 } },
    ]

    [[variant]]                          # with combine = "list": explicit variants
    id = "dense-no-n2000"                # optional; default: built from the settings
    warm_from = "base"                   # optional: the variant whose prices it starts from
    [variant.set]
    "assumptions.housing_density_urban" = 80.0
    "rules.exclusions.natura2000.enabled" = false

Every variant has a stable readable id (``density-low__storage-0.075``) and writes what
``ruimtepuzzel run`` writes under ``OUT/<id>/``, then ``variant.json`` last: a variant is done
when its ``variant.json`` exists with the same settings key, so a killed sweep run again
recomputes only what was not finished. ``OUT/results.parquet`` (and ``.csv``) has one row per
variant x zoning x zone x claim.

Warm starts are deterministic: a variant on a grid starts from the saved prices of a fixed
*neighbour*, the variant one step back along its last axis not at its first value (so the
neighbours form a tree rooted at the first variant), never from whichever variant happened to
finish first; 1 or N workers give the same results.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import RuimtepuzzelError

__all__ = ["Scenario", "Variant", "load_scenario", "sweep", "collect_results", "run_variant",
           "RESULT_COLUMNS", "ScenarioError"]

# The fixed columns of results.parquet, in order; the axis columns (axis_<name>) follow
# ``warm_from``.
VARIANT_COLUMNS = ["variant", "variant_index", "status", "error", "objective", "gap",
                   "seconds", "solve_seconds", "warm_from"]
ROW_COLUMNS = ["zoning", "zone", "claim", "lower_ha", "upper_ha", "allocated_ha",
               "shortfall_ha", "shadow_price"]
RESULT_COLUMNS = VARIANT_COLUMNS + ROW_COLUMNS


class ScenarioError(RuimtepuzzelError):
    """A scenario file error: file, key, what is wrong."""

    def __init__(self, file, key: str, problem: str):
        super().__init__(f"{file}: {key}: {problem}")


@dataclass(frozen=True)
class Variant:
    id: str
    index: int
    axes: dict              # axis name -> label
    overrides: dict         # dotted key -> value
    warm_from: str | None = None


@dataclass
class Scenario:
    path: Path
    name: str
    base: Path
    grid: str | None
    resolution: float | None
    method: str
    warm_start: bool
    axes: list[dict]        # [{"name", "labels": [...]}] in file order
    variants: list[Variant] = field(default_factory=list)
    inputs_sha: str | None = None

    def describe(self) -> dict:
        return {"name": self.name, "scenario": str(self.path), "base": str(self.base),
                "grid": self.grid, "resolution": self.resolution, "method": self.method,
                "warm_start": self.warm_start, "axes": self.axes,
                "variants": [{"id": v.id, "index": v.index, "axes": v.axes,
                              "overrides": v.overrides, "warm_from": v.warm_from}
                             for v in self.variants]}


# -- the scenario file ----------------------------------------------------------------------------


def _label(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", str(text)).strip("-.")
    return slug or "x"


def _read_axis(path, i: int, spec: dict) -> tuple[str, list[tuple[str, dict]]]:
    where = f"axis[{i}]"
    name = spec.get("name")
    if not name:
        raise ScenarioError(path, where, "an axis needs a name")
    where = f"axis.{name}"
    if "points" in spec:
        points = []
        for j, p in enumerate(spec["points"]):
            if "label" not in p or not isinstance(p.get("set", {}), dict):
                raise ScenarioError(path, f"{where}.points[{j}]",
                                    "a point is { label = \"...\", set = { key = value } }")
            points.append((str(p["label"]), dict(p.get("set", {}))))
    else:
        if "key" not in spec or "values" not in spec:
            raise ScenarioError(path, where, "give key and values, or points")
        keys = spec["key"] if isinstance(spec["key"], list) else [spec["key"]]
        values = list(spec["values"])
        labels = spec.get("labels") or [_label(v) for v in values]
        if len(labels) != len(values):
            raise ScenarioError(path, f"{where}.labels", f"{len(labels)} labels for "
                                f"{len(values)} values")
        points = [(str(lab), {k: v for k in keys}) for lab, v in zip(labels, values)]
    if not points:
        raise ScenarioError(path, where, "no values")
    labels = [p[0] for p in points]
    if len(set(map(_slug, labels))) != len(labels):
        raise ScenarioError(path, where, f"labels are not distinct: {labels}")
    return str(name), points


def load_scenario(path, *, warm_start: bool | None = None) -> Scenario:
    """Read a scenario file into its variants (in a fixed order). Raises ScenarioError.

    ``warm_start`` overrides the file's ``sweep.warm_start`` (benchmarks compare both)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such scenario file")
    with open(path, "rb") as fh:
        try:
            tree = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise ScenarioError(path, "(toml)", str(err)) from None
    head = tree.get("sweep")
    if not isinstance(head, dict) or "base" not in head:
        raise ScenarioError(path, "sweep.base", "missing: name the base config, e.g. "
                            'base = "../configs/national.toml"')
    base = (path.parent / head["base"]).resolve()
    if not base.is_file():
        raise ScenarioError(path, "sweep.base", f"{base} not found")
    combine = head.get("combine", "grid")
    if combine not in ("grid", "list"):
        raise ScenarioError(path, "sweep.combine", f"{combine!r}: choose grid or list")
    scenario = Scenario(
        path=path, name=str(head.get("name", path.stem)), base=base, grid=head.get("grid"),
        resolution=head.get("resolution"), method=str(head.get("method", "auto")),
        warm_start=bool(head.get("warm_start", True) if warm_start is None else warm_start),
        axes=[])
    fixed = dict(head.get("set", {}))  # overrides every variant shares
    variants: list[Variant] = []
    if combine == "grid":
        axes = [_read_axis(path, i, a) for i, a in enumerate(tree.get("axis", []))]
        if not axes:
            raise ScenarioError(path, "axis", "a grid sweep needs at least one [[axis]]")
        names = [a[0] for a in axes]
        if len(set(names)) != len(names):
            raise ScenarioError(path, "axis", f"axis names repeat: {names}")
        scenario.axes = [{"name": n, "labels": [p[0] for p in pts]} for n, pts in axes]
        def vid_of(idx):
            return "__".join(f"{_slug(n)}-{_slug(axes[a][1][i][0])}"
                             for a, (n, i) in enumerate(zip(names, idx)))

        ranges = [range(len(pts)) for _, pts in axes]
        for index, idx in enumerate(itertools.product(*ranges)):
            overrides = dict(fixed)
            for a, i in enumerate(idx):
                overrides.update(axes[a][1][i][1])
            labels = {n: axes[a][1][i][0] for a, (n, i) in enumerate(zip(names, idx))}
            vid = vid_of(idx)
            # The neighbour: one step back along the last axis not at its first value. The
            # neighbours form a tree rooted at the first variant: only that one starts cold.
            warm = None
            moved = [a for a, i in enumerate(idx) if i > 0]
            if scenario.warm_start and moved:
                prev = list(idx)
                prev[moved[-1]] -= 1
                warm = vid_of(prev)
            variants.append(Variant(vid, index, labels, overrides, warm))
    else:
        listed = tree.get("variant", [])
        if not listed:
            raise ScenarioError(path, "variant", 'combine = "list" needs [[variant]] entries')
        scenario.axes = [{"name": "variant", "labels": []}]
        for index, spec in enumerate(listed):
            sets = dict(spec.get("set", {}))
            vid = spec.get("id") or "__".join(
                f"{_slug(k.split('.')[-1])}-{_slug(_label(v))}" for k, v in sets.items()) or "base"
            vid = _slug(vid)
            warm = None
            if scenario.warm_start and spec.get("warm_from"):
                warm = _slug(spec["warm_from"])
            variants.append(Variant(vid, index, {"variant": vid}, {**fixed, **sets}, warm))
            scenario.axes[0]["labels"].append(vid)
    ids = [v.id for v in variants]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ScenarioError(path, "variant", f"variant ids repeat: {dup}")
    for v in variants:
        if v.warm_from is not None and v.warm_from not in ids:
            raise ScenarioError(path, f"variant.{v.id}.warm_from", f"{v.warm_from!r} is no variant")
    scenario.variants = variants
    return scenario


def variant_key(scenario: Scenario, v: Variant) -> str:
    """A digest of everything that decides a variant's result (to tell stale outputs)."""
    text = json.dumps({"base": str(scenario.base), "inputs_sha": _inputs_sha(scenario),
                       "grid": scenario.grid, "resolution": scenario.resolution,
                       "method": scenario.method, "overrides": v.overrides,
                       "warm_from": v.warm_from}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _inputs_sha(scenario: Scenario) -> str:
    """A digest of every config file the base config reads (claims, rules, provinces...)."""
    if scenario.inputs_sha is None:
        from engine.config import load_config

        digest = hashlib.sha256()
        for f in sorted(map(str, load_config(scenario.base).files)):
            digest.update(f.encode() + b"\0" + Path(f).read_bytes())
        scenario.inputs_sha = digest.hexdigest()[:16]
    return scenario.inputs_sha


# -- on the worker --------------------------------------------------------------------------------

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


def _atomic_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def run_variant(spec: dict, *_after) -> dict:
    """Run one variant into ``spec['out']`` as ``run`` does; returns its variant.json content.

    ``_after``: the results of the tasks this one waits for (its warm-start neighbour), so
    that it starts from the neighbour's saved prices. Never raises for a failing variant:
    the error is recorded in variant.json with status "error".
    """
    from engine.config import load_config
    from engine.report import PRICES_FILE, read_prices
    from engine.run import run
    from engine.solve import WarmStartError

    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.tmp-*"):  # left by a killed write
        stale.unlink(missing_ok=True)
    (out / "variant.json").unlink(missing_ok=True)
    (out / PRICES_FILE).unlink(missing_ok=True)
    record = {k: spec[k] for k in ("id", "index", "key", "axes", "overrides", "warm_from")}
    _limit_threads(spec.get("threads", 1))  # numba's setting is per thread: set it here
    t0 = time.perf_counter()
    timings: dict = {}
    with _local_dask():
        try:
            config = load_config(spec["base"], spec["overrides"])
            ds = worker_grid(config, spec["grid"], spec["resolution"])
            warm = read_prices(Path(spec["warm_dir"])) if spec.get("warm_dir") else None

            def run_from(prices):
                return run(config, out, grid=ds, progress=False, method=spec["method"],
                           prices=prices, analysis=spec.get("analysis", "off"))

            try:
                report = run_from(warm)
            except WarmStartError:
                # The neighbour's zones or claims differ (an axis changes them): start cold.
                warm = None
                report = run_from(None)
            timings = report["timings"]
            record.update(status=report["status"], error=None, objective=report["objective"],
                          gap=report["gap"], solve_seconds=timings["solve"],
                          warm_started=warm is not None and report["method"] == "fast")
        except Exception as err:  # a failing variant is a result, not the end of the sweep
            record.update(status="error", error=f"{type(err).__name__}: {err}", objective=None,
                          gap=None, solve_seconds=None, warm_started=False)
    record["seconds"] = time.perf_counter() - t0
    # Where the time went: run's stages (config, grid, compile, solve, write, analysis).
    record["stages"] = {k: v for k, v in timings.items() if isinstance(v, (int, float))}
    _atomic_json(out / "variant.json", record)
    return record


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


# -- the driver -----------------------------------------------------------------------------------


def done_record(folder: Path, key: str) -> dict | None:
    """variant.json of a finished variant with this key, else None (redo it)."""
    f = folder / "variant.json"
    if not f.is_file():
        return None
    try:
        rec = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    if rec.get("key") != key:
        return None
    if rec.get("status") != "error" and not (folder / "report.json").is_file():
        return None
    return rec


def _client(workers: int | None, scheduler: str | None, threads: int):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    env = {"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cluster = LocalCluster(n_workers=workers or max(1, (os.cpu_count() or 1) // threads),
                           threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=40, env=env)
    return Client(cluster), cluster


def sweep(scenario, out_dir, *, workers: int | None = None, scheduler: str | None = None,
          progress: bool = True, retry_failed: bool = False, threads: int = 1,
          analysis: str = "off", client=None) -> dict:
    """Run every variant not yet done, then write results.parquet/.csv; returns a summary.

    ``workers``: a LocalCluster of that many single-threaded workers (default: one per
    core); ``scheduler``: the address of a running Dask scheduler instead; ``client``: an
    existing ``distributed.Client`` (tests). ``threads``: numba threads per worker.
    ``analysis``: the analysis outputs ``run`` writes, per variant: "off" (default; a
    sweep's question is answered by the results table, and the maps and pages cost more
    than the solve), "quick" (price bounds) or "full" (with the re-solves for rule costs
    and exchanges).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_json(out / "sweep.json", scenario.describe())
    records: dict[str, dict] = {}
    todo = []
    for v in scenario.variants:
        key = variant_key(scenario, v)
        rec = done_record(out / v.id, key)
        if rec is not None and not (retry_failed and rec["status"] == "error"):
            records[v.id] = rec
        else:
            todo.append((v, key))
    computed = 0
    t0 = time.perf_counter()
    if todo:
        own, made = None, client is None
        if made:
            client, own = _client(workers, scheduler, threads)
        try:
            futures = {}
            for v, key in todo:  # scenario order: a neighbour is submitted before its next
                spec = {"id": v.id, "index": v.index, "key": key, "axes": v.axes,
                        "overrides": v.overrides, "warm_from": v.warm_from,
                        "base": str(scenario.base), "grid": scenario.grid,
                        "resolution": scenario.resolution, "method": scenario.method,
                        "out": str((out / v.id).resolve()), "warm_dir": None,
                        "threads": threads, "analysis": analysis}
                after = []
                if v.warm_from is not None:
                    spec["warm_dir"] = str((out / v.warm_from).resolve())
                    if v.warm_from in futures:
                        after.append(futures[v.warm_from])
                futures[v.id] = client.submit(run_variant, spec, *after, pure=False,
                                              key=f"variant-{v.id}-{key}")
            from dask.distributed import as_completed

            bar = None
            if progress:
                import sys

                from tqdm import tqdm

                bar = tqdm(total=len(scenario.variants), initial=len(records), unit="variant",
                           desc=scenario.name, file=sys.stderr)
            ids = {f.key: vid for vid, f in futures.items()}
            for fut in as_completed(list(futures.values())):
                try:
                    rec = fut.result()
                except Exception as err:  # a worker died (memory?), or its neighbour's did:
                    # record it for this table, but write no variant.json, so a rerun redoes it
                    v = next(v for v, _ in todo if v.id == ids[fut.key])
                    rec = {"id": v.id, "index": v.index, "axes": v.axes,
                           "overrides": v.overrides, "warm_from": v.warm_from,
                           "status": "error", "error": f"{type(err).__name__}: {err}",
                           "objective": None, "gap": None, "seconds": None,
                           "solve_seconds": None}
                records[rec["id"]] = rec
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
    table = collect_results(scenario, out, records)
    return {"variants": len(scenario.variants), "computed": computed,
            "reused": len(scenario.variants) - computed,
            "failed": sum(r["status"] == "error" for r in records.values()),
            "rows": len(table), "seconds": time.perf_counter() - t0,
            "results": str(out / "results.parquet")}


def _schema(axis_names):
    import pyarrow as pa

    fields = [("variant", pa.string()), ("variant_index", pa.int64()), ("status", pa.string()),
              ("error", pa.string()), ("objective", pa.float64()), ("gap", pa.float64()),
              ("seconds", pa.float64()), ("solve_seconds", pa.float64()),
              ("warm_from", pa.string())]
    fields += [(f"axis_{n}", pa.string()) for n in axis_names]
    fields += [("zoning", pa.string()), ("zone", pa.string()), ("claim", pa.string()),
               ("lower_ha", pa.float64()), ("upper_ha", pa.float64()),
               ("allocated_ha", pa.float64()), ("shortfall_ha", pa.float64()),
               ("shadow_price", pa.float64())]
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
        head = {"variant": v.id, "variant_index": v.index, "status": rec["status"],
                "error": rec.get("error"), "objective": rec.get("objective"),
                "gap": rec.get("gap"), "seconds": rec.get("seconds"),
                "solve_seconds": rec.get("solve_seconds"), "warm_from": v.warm_from}
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
    tmp = out / f".results.parquet.tmp-{os.getpid()}"
    pq.write_table(table, tmp)
    os.replace(tmp, out / "results.parquet")
    tmp = out / f".results.csv.tmp-{os.getpid()}"
    frame.to_csv(tmp, index=False)
    os.replace(tmp, out / "results.csv")
    return frame


# -- the report -----------------------------------------------------------------------------------


def _text(x) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x)


def write_report(out_dir) -> Path:
    """Trade-off plots over the axes and an HTML page, ``OUT/report/index.html``."""
    import html

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    out = Path(out_dir)
    if not (out / "sweep.json").is_file():
        raise FileNotFoundError(f"{out}/sweep.json not found: run 'ruimtepuzzel sweep' first")
    meta = json.loads((out / "sweep.json").read_text())
    if not (out / "results.parquet").is_file():  # a sweep killed before its table: the
        collect_results(load_scenario(meta["scenario"]), out)  # variants done so far
    data = pd.read_parquet(out / "results.parquet")
    folder = out / "report"
    folder.mkdir(exist_ok=True)
    variants = data.drop_duplicates("variant").sort_values("variant_index")
    ok = data[data["status"] != "error"]
    prov = ok[ok["zoning"] == "province"]
    short = prov.groupby(["variant", "claim"])["shortfall_ha"].sum().unstack("claim")
    price = prov.groupby(["variant", "claim"])["shadow_price"].mean().unstack("claim")
    claims = [c for c in short.columns if (short[c].abs() > 0.5).any()
              or (price[c].abs() > 1e-9).any()]
    figures = []

    def save(fig, name, caption):
        fig.tight_layout()
        fig.savefig(folder / name, dpi=90)
        plt.close(fig)
        figures.append((name, caption))

    fig, ax = plt.subplots(figsize=(max(6, 0.18 * len(variants)), 3.2))
    good = variants[variants["status"] != "error"]
    ax.bar(good["variant_index"], good["objective"], color="#4477aa")
    bad = variants[variants["status"] == "error"]
    for i in bad["variant_index"]:
        ax.axvline(i, color="#cc3311", lw=1)
    ax.set_xlabel("variant (index; red: failed)")
    ax.set_ylabel("objective")
    save(fig, "objective.png", "Objective (suitability realised minus shortfall penalties) "
         "per variant.")
    for axis in meta["axes"]:
        col = f"axis_{axis['name']}"
        if col not in variants or len(axis["labels"]) < 2:
            continue
        order = [lab for lab in axis["labels"] if lab in set(variants[col])]
        by = variants.set_index("variant")[col]
        fig, axs = plt.subplots(1, 3, figsize=(13, 3.4))
        obj = good.groupby(col)["objective"].agg(["mean", "min", "max"]).reindex(order)
        axs[0].plot(order, obj["mean"], "o-", color="#4477aa")
        axs[0].fill_between(order, obj["min"], obj["max"], alpha=0.2, color="#4477aa")
        axs[0].set_title("objective (mean, range)")
        for c in claims:
            s = short[c].groupby(by.reindex(short.index)).mean().reindex(order)
            p = price[c].groupby(by.reindex(price.index)).mean().reindex(order)
            axs[1].plot(order, s, "o-", label=c)
            axs[2].plot(order, p, "o-", label=c)
        axs[1].set_title("shortfall, sum over provinces (ha)")
        axs[2].set_title("mean provincial shadow price")
        if claims:
            axs[2].legend(fontsize=7)
        for a in axs:
            a.set_xlabel(axis["name"])
        save(fig, f"axis-{_slug(axis['name'])}.png",
             f"Trade-offs along <b>{html.escape(axis['name'])}</b>, averaged over the other axes.")
    rows = []
    axis_cols = [f"axis_{a['name']}" for a in meta["axes"]]
    for _, v in variants.iterrows():
        cells = [v["variant_index"], f"<a href='../{html.escape(v['variant'])}/'>"
                 f"{html.escape(v['variant'])}</a>"]
        cells += [html.escape(str(v[c])) for c in axis_cols]
        cells += [html.escape(str(v["status"])),
                  "" if pd.isna(v["objective"]) else f"{v['objective']:,.1f}",
                  "" if pd.isna(v["gap"]) else f"{v['gap']:.1e}",
                  "" if pd.isna(v["seconds"]) else f"{v['seconds']:.1f}",
                  html.escape(_text(v["warm_from"])), html.escape(_text(v["error"]))]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = ["#", "variant"] + [a["name"] for a in meta["axes"]] + [
        "status", "objective", "gap", "seconds", "warm start from", "error"]
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(meta['name'])}: sweep report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:80em}}table{{border-collapse:collapse;
font-size:85%}}td,th{{border:1px solid #ccc;padding:2px 6px}}img{{max-width:100%}}</style>
</head><body>
<h1>{html.escape(meta['name'])}</h1>
<p>Base config <code>{html.escape(meta['base'])}</code>, scenario
<code>{html.escape(meta['scenario'])}</code>; {len(variants)} variants
({int((variants['status'] == 'error').sum())} failed). Results:
<a href="../results.parquet">results.parquet</a>, <a href="../results.csv">results.csv</a>.</p>
{''.join(f'<figure><img src="{n}"><figcaption>{c}</figcaption></figure>' for n, c in figures)}
<h2>Variants</h2>
<table><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr>
{''.join(rows)}</table>
</body></html>
"""
    page_path = folder / "index.html"
    tmp = folder / f".index.html.tmp-{os.getpid()}"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, page_path)
    return page_path
