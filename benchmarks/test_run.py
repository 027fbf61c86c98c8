"""The main job end to end: config -> grid -> compile -> solve -> write, per stage.

    pytest benchmarks/test_run.py                      # all, incl. the national 250 m / 100 m
    pytest benchmarks/ --benchmark-disable -k "not national"   # CI smoke run

Goals (DESIGN.md, issue 4) on this 2-core machine: national at 250 m <= 30 s and at 100 m
<= 2 min, end to end. The grid is built (cached) before timing: the runs open it from cache.
The time per stage lands in the benchmark's extra_info (``--benchmark-json``) and is printed.
"""

from __future__ import annotations

import os
import time
import tomllib
from pathlib import Path

import pytest

from engine.run import run

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "configs" / "national.toml"
UTRECHT = ROOT / "configs" / "provinces" / "utrecht.toml"


def _built(resolution):
    from engine.grid import open_grid

    open_grid("nl", resolution=resolution)  # build into the cache once, untimed


def _run_once(benchmark, config, resolution, out, **options):
    _built(resolution)
    result = {}

    def job():
        # CPU time beside the wall time: on the shared machine the wall time is mostly the
        # other jobs' (process_time counts every thread of this process).
        cpu = time.process_time()
        result["report"] = run(
            config, out, grid="nl", resolution=resolution, progress=False, **options
        )
        result["cpu"] = time.process_time() - cpu
        result["load"] = os.getloadavg()[0]

    benchmark.pedantic(job, rounds=1, iterations=1, warmup_rounds=0)
    report = result["report"]
    stages = {k: round(v, 3) for k, v in report["timings"].items() if isinstance(v, float)}
    benchmark.extra_info.update(
        {
            "cpu": round(result["cpu"], 3),
            "load": round(result["load"], 2),
            "cells": report["cells"],
            "status": report["status"],
            "gap": report["gap"],
            "method": report["method"],
            **stages,
        }
    )
    print(
        f"\n{Path(config).stem} {resolution:g} m: {report['cells']:,} cells, "
        f"{report['method']} {report['status']}, CPU {result['cpu']:.1f} s "
        f"(load {result['load']:.1f}), stages {stages}"
    )
    assert report["status"] == "optimal"
    return report


def test_run_province_1000m(benchmark, tmp_path):
    _run_once(benchmark, UTRECHT, 1000, tmp_path)


def test_national_run_1000m(benchmark, tmp_path):
    _run_once(benchmark, NATIONAL, 1000, tmp_path)


def test_national_run_250m(benchmark, tmp_path):
    _run_once(benchmark, NATIONAL, 250, tmp_path)


def test_national_run_100m(benchmark, tmp_path):
    _run_once(benchmark, NATIONAL, 100, tmp_path)


def test_national_run_100m_without_compactness(benchmark, tmp_path):
    """Issue 12's figure: the main job within 2x of the 17.9 s of before the plausible plan,
    with every compactness entry off (compaction has its own budget, issue 13) and no
    analysis."""
    with open(NATIONAL, "rb") as f:
        entries = tomllib.load(f)["compactness"]
    off = {f"compactness.{entry}.enabled": False for entry in entries}
    _run_once(benchmark, NATIONAL, 100, tmp_path, overrides=off, analysis="off")


@pytest.mark.parametrize("resolution", [250, 100])
def test_national_main_job(benchmark, tmp_path, resolution):
    """Issue 15's "national 100 m main job <= 10 s": ``ruimtepuzzel run national
    --analysis off`` with the config's compactness (benchmarks/README.md, "Issue 15: the
    100 m main job, third session")."""
    _run_once(benchmark, NATIONAL, resolution, tmp_path, analysis="off")
