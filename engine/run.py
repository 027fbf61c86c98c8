"""The main job: config -> grid -> rules and suitability -> Problem -> solve -> outputs.

    from engine.run import run
    report = run("configs/national.toml", "out/national")
    report = run("configs/national.toml", "out/dense",
                 overrides={"assumptions.housing_density_urban": 80}, progress=False)

``run`` has no side effects but writing ``out_dir``, whole or not at all (see
:mod:`engine.outputs`: checked and locked before any work, staged beside it and swapped in
when every file is complete), and with a memory budget the process's hold on freed blocks
(:func:`engine.paging.hand_back_freed_blocks`); a sweep calls it once per variant.
``check`` does only the validation: config, then the config against the grid, then every
target against the land the rules leave for it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.analysis.outputs import analysis_level
from engine.analysis.rule_costs import AHEAD_CELLS, RelaxationsAhead
from engine.compactness import cluster
from engine.compile import Compiled, capacity, compile_problem, refusal, shortfalls
from engine.config import Config, ConfigError, load_config
from engine.outputs import RunFolder, sha256_file
from engine.paging import hand_back_freed_blocks
from engine.progress import Stages
from engine.report import stage_outputs
from engine.solve import warmup

log = logging.getLogger(__name__)

__all__ = ["run", "check", "open_run_grid", "prepare", "prepare_run", "Prepared"]


def _stage_names(level: str) -> list[str]:
    """The stages of a run in order: the analysis is one of them unless it is off, and the
    manifest (every file's sha256, then the folder swapped in) comes last."""
    analysis = [] if level == "off" else ["analysis"]
    return ["config", "grid", "compile", "solve", "compact", "write", *analysis, "manifest"]


def _as_config(config, overrides) -> Config:
    if isinstance(config, Config):
        if overrides:
            return load_config(config.path, {**config.overrides, **overrides})
        return config
    return load_config(config, overrides)


def open_run_grid(config: Config, grid=None, resolution=None):
    """The grid a run uses: a Dataset as given, else ``open_grid`` of a name or path, or a
    built grid folder (grid.json + GeoTIFFs)."""
    import xarray as xr

    if isinstance(grid, xr.Dataset):
        return grid
    from engine.grid import open_grid

    name = grid or config.grid
    if Path(str(name)).is_dir():
        from engine.grid.build import open_folder

        return open_folder(name)
    return open_grid(name, resolution=resolution or config.resolution)


def substitute_layers(config: Config, ds) -> tuple[object, list, list]:
    """Replace base layers by the datasets the config names, with their reasons.

    *Pas toe of leg uit* (L11371): a deviation from the base data is allowed with a reason,
    and the manifest records the dataset's name and location. A dataset gets the checks of a
    grid definition's layer (:func:`engine.grid.sources.read_replacement`): it must be
    readable, say which band, lie on the grid, hold values the layer can take and cover the
    land of the run.
    """
    if not config.layers:
        return ds, [], []
    from engine.compile import cell_mask
    from engine.config import did_you_mean
    from engine.grid.sources import read_replacement
    from engine.rules import province_index

    # [layers] is a section of the national file, also when a province file is run.
    file = config.files[0] if config.files else config.path
    land = cell_mask(config, ds, {s: province_index(config, ds, s) for s in config.province_slugs})
    ds = ds.copy()
    deviations, inputs = [], []
    for name, spec in config.layers.items():
        if name not in ds.data_vars:
            raise ConfigError(
                file,
                f"layers.{name}",
                "the grid has no such layer to replace",
                did_you_mean(name, list(ds.data_vars)),
            )
        base = ds[name]
        values, kept = read_replacement(spec, base, land, file)
        ds[name] = base.copy(data=values)
        ds[name].attrs = {**base.attrs, "provenance": f"{spec.dataset} ({spec.location})"}
        digest = sha256_file(spec.path)
        deviations.append(
            {
                "layer": name,
                "dataset": spec.dataset,
                "location": spec.location,
                "reason": spec.reason,
                "path": str(spec.path),
                "sha256": digest,
                "land_cells_from_base": kept,
            }
        )
        inputs.append({"role": f"layer {name}", "path": str(spec.path), "sha256": digest})
    return ds, deviations, inputs


@dataclass
class Prepared:
    """A run up to the solve: the config, the grid (with the config's layers in place), the
    compiled problem, and the deviations from the base data with their input records."""

    config: Config
    ds: object
    compiled: Compiled
    deviations: list
    inputs: list


def _compile(
    config, grid, resolution, overrides, stages, keep_layers=True, values_paged_in=None
) -> Prepared:
    from engine.config import check_environment

    stages = stages or Stages([], show=False)
    check_environment()  # a bad RUIMTEPUZZEL_* setting stops the run before any work
    stages.start("config")
    config = _as_config(config, overrides)
    stages.done()
    stages.start("grid")
    ds = open_run_grid(config, grid, resolution)
    ds, deviations, inputs = substitute_layers(config, ds)
    stages.done()
    stages.start("compile")
    compiled = compile_problem(config, ds, keep_layers=keep_layers, values_paged_in=values_paged_in)
    return Prepared(config, ds, compiled, deviations, inputs)


def prepare_run(
    config,
    *,
    grid=None,
    resolution=None,
    overrides=None,
    stages=None,
    keep_layers=True,
    values_paged_in=None,
) -> Prepared:
    """Everything a run does before the solve, and every refusal it makes before it: the
    environment, the config, the grid and the config's layers, the compiled problem, then
    the targets against the land (:func:`engine.compile.refusal`). Raises the
    :class:`~engine.errors.RuimtepuzzelError` that ``run`` and ``check`` stop with.

    ``stages``: an object with ``start(name)`` and ``done()`` (``run``'s progress), told of
    the stages config, grid and compile. ``keep_layers`` False lets the layers the rules
    read go once the rules are applied (for a run that does not apply them again: 49 bytes
    a cell, through the compile's building of the problem and the refusal's per-cell work,
    the peaks of a 25 m run's compile). ``values_paged_in``: a folder on disk for the
    values' file, paged by the kernel (:mod:`engine.paging`)."""
    prepared = _compile(config, grid, resolution, overrides, stages, keep_layers, values_paged_in)
    if not keep_layers:
        prepared.compiled.cells.release()
        prepared.compiled.cells.forget_positions()
    error = refusal(prepared.compiled)
    if error is not None:
        raise error
    if stages is not None:
        stages.done()
    return prepared


def prepare(config, *, grid=None, resolution=None, overrides=None) -> tuple[Compiled, object]:
    """Validate and compile without solving: (compiled, grid). Raises what ``run`` raises
    before its solve (:func:`prepare_run`)."""
    prepared = prepare_run(config, grid=grid, resolution=resolution, overrides=overrides)
    return prepared.compiled, prepared.ds


def run(
    config,
    out_dir,
    *,
    grid=None,
    resolution=None,
    progress=True,
    overrides=None,
    method: str = "auto",
    prices=None,
    analysis: str | None = None,
    lang: str | None = None,
    memory=None,
    scheduler: str | None = None,
) -> dict:
    """Run one config end to end and write its outputs to ``out_dir``; returns report.json.

    ``config``: a path or a loaded :class:`Config`; ``overrides``: dotted keys into the
    config (see :func:`engine.config.load_config`); ``grid``: a grid name, a path, or an
    ``xarray.Dataset``; ``resolution`` in metres (default: the config's). ``prices``: the
    row prices of a similar run (:func:`engine.report.read_prices`) to start the solver
    from; ``analysis``: full, quick or off (default: RUIMTEPUZZEL_ANALYSIS, else full);
    ``lang``: the language of report.html, summary.md and the legends (default Dutch).
    ``memory`` ("8GB") and ``scheduler`` (a Dask address, or "local"): the solver's price
    stage over chunks of cells sized for that memory, on that cluster
    (:class:`engine.solve.chunked.PriceStage`); with ``memory`` the values also live in a
    file the kernel pages (:mod:`engine.paging`), let go while HiGHS solves, and from then on
    this process hands freed blocks of 4 MiB or more back to the kernel, for the rest of its
    life (:func:`engine.paging.hand_back_freed_blocks`).
    """
    import engine
    from engine.i18n import check_language
    from engine.solve.chunked import PriceStage

    level = analysis_level(analysis)
    lang = check_language(lang)
    price_stage = PriceStage.of(memory, scheduler)
    if price_stage.memory and not hand_back_freed_blocks():
        log.debug("no mallopt in this C library: freed blocks stay with it")
    with RunFolder(out_dir) as folder:  # --out checked and locked before any work
        # The kernels the solve calls are compiled (first run) or loaded while the config
        # and the grid are read.
        warmup.in_background()
        stages = Stages(_stage_names(level), show=progress, on_start=folder.note)

        def on_output_stage(name: str) -> None:
            # stage_outputs names the analysis when it starts: a stage of its own.
            stages.done()
            stages.start(name)

        with stages, contextlib.ExitStack() as beside:
            # Only the analysis applies the rules again; the outputs read the few layers
            # they show again from the grid.
            prepared = prepare_run(
                config,
                grid=grid,
                resolution=resolution,
                overrides=overrides,
                stages=stages,
                keep_layers=level != "off",
                # With a memory budget the values live in a paged file in the staging
                # folder (on the output's disk): their pages go while HiGHS solves.
                values_paged_in=folder.stage if price_stage.memory else None,
            )
            compiled = prepared.compiled
            ahead = beside.enter_context(_relaxations_ahead(compiled, level, price_stage))
            stages.start("solve")
            with price_stage.solve_options(compiled.problem) as chunking:
                sol = engine.solve(
                    compiled.problem,
                    method=method,
                    **chunking,
                    **({} if prices is None else {"prices": prices}),
                )
            if level == "off":
                # Where the repair ended (its free cells, 0.44 GB at 25 m) is for the
                # analysis's re-solves only.
                sol.repair_end = None
            stages.done()
            stages.start("compact")
            sol = cluster(compiled, sol)
            stages.done()
            stages.start("write")
            timings = dict(stages.timings)
            timings["compile_detail"] = compiled.timings  # type: ignore[assignment]
            # core outputs, then conflicts, scarcity, rule costs, exchanges, report.html
            report, manifest = stage_outputs(
                folder.stage,
                compiled,
                sol,
                prepared.ds,
                timings=timings,
                deviations=prepared.deviations,
                extra_inputs=prepared.inputs,
                analysis=level,
                on_stage=on_output_stage,
                lang=lang,
                # Nothing after the report reads the values and the rules' mask but the
                # analysis: without it they go before the write stage's per-cell work.
                keep_problem=level != "off",
                ahead=ahead,
            )
            stages.done()
            stages.start("manifest")
            folder.commit(manifest)
            stages.done()
    return report


def _relaxations_ahead(compiled, level: str, price_stage):
    """The rules' relaxations built beside the solve and the compaction, where the analysis
    will want them, no memory budget holds the run and they are small
    (:data:`engine.analysis.rule_costs.AHEAD_CELLS`); else the analysis builds them, once the
    solve has let its memory go."""
    if level == "off" or price_stage.memory or compiled.problem.n_cells > AHEAD_CELLS:
        return contextlib.nullcontext()
    return RelaxationsAhead(compiled)


def check(config, *, grid=None, resolution=None, overrides=None) -> dict:
    """``run`` without the solve: the same checks, the same refusals (the same errors, raised
    the same way). Returns a summary: per zone and claim the target against the land its
    rules allow. A refusal carries the summary as its ``summary`` attribute."""
    prepared = _compile(config, grid, resolution, overrides, None)
    summary = _summary(prepared)
    error = refusal(prepared.compiled)
    if error is not None:
        error.summary = summary
        raise error
    return summary


def _summary(prepared: Prepared) -> dict:
    compiled, config = prepared.compiled, prepared.config
    p = compiled.problem
    cap = capacity(compiled)
    short = shortfalls(compiled)
    rows = []
    for l, zoning in enumerate(p.zoning_names):
        for z, zone in enumerate(p.zone_names[l]):
            if zoning.startswith("novex:") and z > 0:
                continue
            for k, claim in enumerate(p.claim_names):
                lo = compiled.stated_lower[l][z, k]
                if np.isnan(lo) and zoning != "province":
                    continue
                rows.append(
                    {
                        "zoning": zoning,
                        "zone": zone,
                        "claim": claim,
                        "lower_ha": None if np.isnan(lo) else float(lo),
                        "allowed_ha": float(cap[l][z, k]),
                    }
                )
    return {
        "config": str(config.path),
        "extends": [str(f) for f in config.extends],
        "scope": config.scope,
        "cells": int(p.n_cells),
        "cell_area_ha": compiled.area_ha,
        "rows": rows,
        "deviations": prepared.deviations,
        "notes": compiled.notes + short,
        "shortfalls": len(short),
        "grid": str(prepared.ds.attrs.get("grid_name")),
    }
