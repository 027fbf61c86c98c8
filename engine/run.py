"""The main job: config -> grid -> rules and suitability -> Problem -> solve -> outputs.

    from engine.run import run
    report = run("configs/national.toml", "out/national")
    report = run("configs/national.toml", "out/dense",
                 overrides={"assumptions.housing_density_urban": 80}, progress=False)

``run`` has no side effects but writing ``out_dir`` (atomically, see :mod:`engine.report`);
a sweep calls it once per variant. ``check`` does only the validation: config, then the config
against the grid, then every target against the land the rules leave for it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from engine.analysis.outputs import analysis_outputs
from engine.compile import Compiled, capacity, capacity_error, check_capacity, compile_problem
from engine.config import Config, ConfigError, load_config
from engine.report import sha256_file, write_outputs

__all__ = ["run", "check", "open_run_grid", "prepare"]


class _Stages:
    """Times the stages; shows progress on stderr when asked."""

    def __init__(self, progress: bool, total: int):
        self.timings: dict[str, float] = {}
        self.bar = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="ruimtepuzzel", unit="stage", file=sys.stderr,
                            bar_format="{desc}: {n_fmt}/{total_fmt} {postfix} [{elapsed}]")

    def start(self, name: str):
        self._name, self._t = name, time.perf_counter()
        if self.bar is not None:
            self.bar.set_postfix_str(name)

    def done(self):
        self.timings[self._name] = time.perf_counter() - self._t
        if self.bar is not None:
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _as_config(config, overrides) -> Config:
    if isinstance(config, Config):
        if overrides:
            return load_config(config.path, {**config.overrides, **overrides})
        return config
    return load_config(config, overrides)


def open_run_grid(config: Config, grid=None, resolution=None):
    """The grid a run uses: a Dataset as given, else ``open_grid`` of a name or path."""
    import xarray as xr

    if isinstance(grid, xr.Dataset):
        return grid
    from engine.grid import open_grid

    name = grid or config.grid
    if Path(str(name)).is_dir():  # a built grid folder (grid.json + GeoTIFFs)
        from engine.grid.build import open_folder

        return open_folder(name)
    return open_grid(name, resolution=resolution or config.resolution)


def substitute_layers(config: Config, ds) -> tuple[object, list, list]:
    """Replace base layers by the datasets the config names, with their reasons.

    *Pas toe of leg uit* (L11371): a deviation from the base data is allowed with a reason,
    and the manifest records the dataset's name and location.
    """
    if not config.layers:
        return ds, [], []
    import rioxarray

    ds = ds.copy()
    deviations, inputs = [], []
    for name, spec in config.layers.items():
        if name not in ds.data_vars:
            raise ConfigError(config.path, f"layers.{name}", "the grid has no such layer to "
                              "replace", f"layers: {', '.join(ds.data_vars)}")
        if not spec.path.is_file():
            raise ConfigError(config.path, f"layers.{name}.path", f"{spec.path} not found",
                              "give the path of a GeoTIFF, relative to the config file")
        src = rioxarray.open_rasterio(spec.path, masked=False).squeeze("band", drop=True)
        base = ds[name]
        aligned = src.rio.reproject_match(base, resampling=0).astype(base.dtype)
        aligned = aligned.assign_coords(x=base["x"], y=base["y"])
        aligned.attrs = {**base.attrs, "provenance": f"{spec.dataset} ({spec.location})"}
        ds[name] = aligned
        digest = sha256_file(spec.path)
        deviations.append({"layer": name, "dataset": spec.dataset, "location": spec.location,
                           "reason": spec.reason, "path": str(spec.path), "sha256": digest})
        inputs.append({"role": f"layer {name}", "path": str(spec.path), "sha256": digest})
    return ds, deviations, inputs


def prepare(config, *, grid=None, resolution=None, overrides=None) -> tuple[Compiled, object]:
    """Validate and compile without solving: (compiled, grid). Raises ConfigError."""
    config = _as_config(config, overrides)
    ds = open_run_grid(config, grid, resolution)
    ds, _, _ = substitute_layers(config, ds)
    compiled = compile_problem(config, ds)
    bad = check_capacity(compiled)
    if bad:
        raise capacity_error(bad[0], config)
    return compiled, ds


def run(config, out_dir, *, grid=None, resolution=None, progress=True, overrides=None,
        method: str = "auto", prices=None, analysis: str | None = None) -> dict:
    """Run one config end to end and write its outputs to ``out_dir``; returns report.json.

    ``config``: a path or a loaded :class:`Config`; ``overrides``: dotted keys into the
    config (see :func:`engine.config.load_config`); ``grid``: a grid name, a path, or an
    ``xarray.Dataset``; ``resolution`` in metres (default: the config's). ``prices``: the
    row prices of a similar run (:func:`engine.report.read_prices`) to start the solver
    from; ``analysis``: full, quick or off (default: RUIMTEPUZZEL_ANALYSIS, else full).
    """
    import engine

    stages = _Stages(progress, total=5)
    try:
        stages.start("config")
        config = _as_config(config, overrides)
        stages.done()
        stages.start("grid")
        ds = open_run_grid(config, grid, resolution)
        ds, deviations, inputs = substitute_layers(config, ds)
        stages.done()
        stages.start("compile")
        compiled = compile_problem(config, ds)
        bad = check_capacity(compiled)
        if bad:
            raise capacity_error(bad[0], config)
        stages.done()
        stages.start("solve")
        sol = engine.solve(compiled.problem, method=method,
                           **({} if prices is None else {"prices": prices}))
        stages.done()
        stages.start("write")
        timings = dict(stages.timings)
        timings["compile_detail"] = compiled.timings  # type: ignore[assignment]
        report = write_outputs(out_dir, compiled, sol, ds, timings=timings,
                               deviations=deviations, extra_inputs=inputs)
        # conflicts, scarcity, rule costs, exchanges, report.html
        report = analysis_outputs(out_dir, compiled, sol, ds, report, level=analysis)
        stages.done()
    finally:
        stages.close()
    return report


def check(config, *, grid=None, resolution=None, overrides=None) -> dict:
    """Validate only; returns a summary: per province and claim, target vs land allowed."""
    config = _as_config(config, overrides)
    ds = open_run_grid(config, grid, resolution)
    ds, deviations, _ = substitute_layers(config, ds)
    compiled = compile_problem(config, ds)
    p = compiled.problem
    cap = capacity(compiled)
    rows = []
    for l, zoning in enumerate(p.zoning_names):
        for z, zone in enumerate(p.zone_names[l]):
            if zoning.startswith("novex:") and z > 0:
                continue
            for k, claim in enumerate(p.claim_names):
                lo = compiled.stated_lower[l][z, k]
                if np.isnan(lo) and zoning != "province":
                    continue
                rows.append({"zoning": zoning, "zone": zone, "claim": claim,
                             "lower_ha": None if np.isnan(lo) else float(lo),
                             "allowed_ha": float(cap[l][z, k])})
    bad = check_capacity(compiled)
    return {
        "config": str(config.path), "scope": config.scope, "cells": int(p.n_cells),
        "cell_area_ha": compiled.area_ha, "rows": rows, "deviations": deviations,
        "problems": [str(capacity_error(b, config)) for b in bad], "notes": compiled.notes,
        "grid": str(ds.attrs.get("grid_name")), "out": None,
    }


def default_out(config_path) -> Path:
    return Path("out") / Path(config_path).stem
