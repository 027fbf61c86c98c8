"""The main job end to end: config -> grid -> compile -> solve -> write, per stage.

    pytest benchmarks/test_run.py                      # all, incl. the national 250 m / 100 m
    pytest benchmarks/ --benchmark-disable -k "not national"   # CI smoke run

Goals (DESIGN.md, issue 4) on this 2-core machine: national at 250 m <= 30 s and at 100 m
<= 2 min, end to end. The grid is built (cached) before timing: the runs open it from cache.
The time per stage lands in the benchmark's extra_info (``--benchmark-json``) and is printed.
"""

from __future__ import annotations

from pathlib import Path

from engine.run import run

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "configs" / "national.toml"
UTRECHT = ROOT / "configs" / "provinces" / "utrecht.toml"


def _built(resolution):
    from engine.grid import open_grid

    open_grid("nl", resolution=resolution)  # build into the cache once, untimed


def _run_once(benchmark, config, resolution, out):
    _built(resolution)
    result = {}

    def job():
        result["report"] = run(config, out, grid="nl", resolution=resolution, progress=False)

    benchmark.pedantic(job, rounds=1, iterations=1, warmup_rounds=0)
    report = result["report"]
    stages = {k: round(v, 3) for k, v in report["timings"].items() if isinstance(v, float)}
    benchmark.extra_info.update(
        {
            "cells": report["cells"],
            "status": report["status"],
            "gap": report["gap"],
            "method": report["method"],
            **stages,
        }
    )
    print(
        f"\n{Path(config).stem} {resolution:g} m: {report['cells']:,} cells, "
        f"{report['method']} {report['status']}, stages {stages}"
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
