"""Scenario sweeps on a LocalCluster: throughput, 1 -> 2 worker speed-up, warm-start gain.

    pytest benchmarks/test_sweep.py -s                       # all, incl. 100 variants at 250 m
    pytest benchmarks/test_sweep.py -s -k "not national"     # the 1000 m ones only

Goals (issue 6) on this 2-core machine: 100 variants of scenarios/national-sweep.toml at 250 m
on a 2-worker LocalCluster in <= 5 min; the speed-up from 1 to 2 workers; the gain from warm
starts. Figures land in the benchmark's extra_info (``--benchmark-json``) and are printed.
"""

from __future__ import annotations

import time
from pathlib import Path

from engine.sweep import load_scenario, sweep

ROOT = Path(__file__).resolve().parents[1]
NATIONAL_SWEEP = ROOT / "scenarios" / "national-sweep.toml"


def _built(resolution):
    from engine.grid import open_grid

    open_grid("nl", resolution=resolution)  # build into the cache once, untimed


def _scenario(resolution, n, warm=False):
    s = load_scenario(NATIONAL_SWEEP, warm_start=warm)
    s.resolution = resolution
    # A prefix keeps every warm-start neighbour: a neighbour has a lower index.
    s.variants = s.variants[:n]
    return s


def _timed_sweep(scenario, out, workers):
    t = time.perf_counter()
    summary = sweep(scenario, out, workers=workers, progress=False)
    seconds = time.perf_counter() - t
    assert summary["computed"] == len(scenario.variants) and summary["failed"] == 0
    return seconds


def _speedup(benchmark, tmp_path, resolution, n):
    _built(resolution)
    times = {}

    def job():
        for workers in (1, 2):
            times[workers] = _timed_sweep(
                _scenario(resolution, n), tmp_path / f"w{workers}", workers
            )

    benchmark.pedantic(job, rounds=1, iterations=1, warmup_rounds=0)
    speedup = times[1] / times[2]
    benchmark.extra_info.update(
        {
            "variants": n,
            "resolution": resolution,
            "seconds_1_worker": round(times[1], 2),
            "seconds_2_workers": round(times[2], 2),
            "speedup": round(speedup, 2),
        }
    )
    print(
        f"\n{n} variants at {resolution:g} m: 1 worker {times[1]:.1f} s, "
        f"2 workers {times[2]:.1f} s, speed-up {speedup:.2f}x"
    )


def _warm_gain(benchmark, tmp_path, resolution, n):
    _built(resolution)
    times = {}
    solve = {}

    def job():
        for warm in (False, True):
            out = tmp_path / f"warm-{warm}"
            times[warm] = _timed_sweep(_scenario(resolution, n, warm), out, 2)
            import pandas as pd

            data = pd.read_parquet(out / "results.parquet").drop_duplicates("variant")
            solve[warm] = float(data["solve_seconds"].sum())

    benchmark.pedantic(job, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(
        {
            "variants": n,
            "resolution": resolution,
            "wall_cold": round(times[False], 2),
            "wall_warm": round(times[True], 2),
            "solve_sum_cold": round(solve[False], 2),
            "solve_sum_warm": round(solve[True], 2),
        }
    )
    print(
        f"\n{n} variants at {resolution:g} m, 2 workers: cold {times[False]:.1f} s "
        f"(solves {solve[False]:.1f} s), warm {times[True]:.1f} s (solves {solve[True]:.1f} s)"
    )


def test_sweep_speedup_1000m(benchmark, tmp_path):
    _speedup(benchmark, tmp_path, 1000, 8)


def test_sweep_warm_start_gain_1000m(benchmark, tmp_path):
    _warm_gain(benchmark, tmp_path, 1000, 12)


def test_national_sweep_100_variants_250m(benchmark, tmp_path):
    _built(250)
    result = {}

    def job():
        result["s"] = _timed_sweep(_scenario(250, 100), tmp_path / "out", 2)

    benchmark.pedantic(job, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update({"variants": 100, "seconds": round(result["s"], 1)})
    print(f"\n100 variants at 250 m on 2 workers: {result['s']:.0f} s (goal <= 300 s)")


def test_national_sweep_speedup_250m(benchmark, tmp_path):
    _speedup(benchmark, tmp_path, 250, 6)


def test_national_sweep_warm_start_gain_250m(benchmark, tmp_path):
    _warm_gain(benchmark, tmp_path, 250, 6)
