"""Scenario sweeps: many variants of one base config on Dask, resumable, one results table.

A scenario file (``scenarios/*.toml``) names a base config and variant axes::

    [sweep]
    name = "demo"
    base = "../configs/national.toml"    # relative to the scenario file
    resolution = 1000                    # optional: the base config's otherwise
    combine = "grid"                     # "grid": every combination; "list": [[variant]] only;
                                         # "sample": samples = N and seed, distribution axes
    warm_start = true                    # start a variant from its neighbour's prices
    method = "auto"                      # optional: the solver backend
    set = { "run.targets" = "hard" }     # optional: overrides every variant shares

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

The file goes through the configs' validation (:mod:`engine.config.validation`): an unknown
key is refused with "did you mean ...", and every key a variant sets must exist in the base
config, before any variant runs.

Every variant has a stable readable id (``density-low__storage-0.075``) and writes what
``ruimtepuzzel run`` writes under ``OUT/<id>/``, then ``OUT/<id>.variant.json`` last,
beside the run folder so that the folder stays one whole run
(:func:`engine.outputs.verify_run_folder`): a variant is done when its ``variant.json``
exists with the same settings key and its folder is whole, so a killed sweep run again
recomputes only what was not finished. ``OUT/results.parquet`` (and ``.csv``) has one row per
variant x zoning x zone x claim.

Warm starts are deterministic: a variant on a grid starts from the saved prices of a fixed
*neighbour*, the variant one step back along its last axis not at its first value (so the
neighbours form a tree rooted at the first variant), never from whichever variant happened to
finish first; 1 or N workers give the same results.

What holds across the variants: as each finishes, its allocation is added to counts per cell
and option (:mod:`~engine.sweep.tally`, checkpointed, resumable bit for bit), from which
``OUT/robustness/`` gets the no-regret, frequency and per-axis change maps
(:mod:`~engine.sweep.robustness`). With ``combine = "sample"`` an axis may be a distribution,
drawn reproducibly per sample (:mod:`~engine.sweep.sampling`).

The package: :mod:`~engine.sweep.scenario` (the file format), :mod:`~engine.sweep.sampling`
(distributions), :mod:`~engine.sweep.worker` (one variant on a worker),
:mod:`~engine.sweep.driver` (Dask, the results table, the counts as variants finish),
:mod:`~engine.sweep.tally` (the counts), :mod:`~engine.sweep.robustness` (their maps and
tables) and :mod:`~engine.sweep.report` (the page).
"""

from __future__ import annotations

from engine.sweep.driver import (
    RESULT_COLUMNS,
    SCHEDULER_TIMEOUT_S,
    SweepError,
    check_options,
    collect_results,
    done_record,
    sweep,
)
from engine.sweep.report import write_report
from engine.sweep.scenario import Scenario, ScenarioError, Variant, load_scenario, variant_key
from engine.sweep.worker import run_variant

__all__ = [
    "Scenario",
    "Variant",
    "load_scenario",
    "sweep",
    "collect_results",
    "run_variant",
    "RESULT_COLUMNS",
    "SCHEDULER_TIMEOUT_S",
    "ScenarioError",
    "SweepError",
    "check_options",
    "done_record",
    "variant_key",
    "write_report",
]
