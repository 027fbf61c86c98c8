"""Scenario sweeps on a LocalCluster: throughput, 1 -> 2 worker speed-up, warm-start gain,
and the robustness counts (issue 17): their cost, their memory, a Monte Carlo sample.

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


# -- robustness (issue 17): aggregation cost, memory, a Monte Carlo sample -----------------------
#
#   pytest benchmarks/test_sweep.py -s -k "robustness and 1000m"     # overhead, memory (1000 m)
#   pytest benchmarks/test_sweep.py -s -k "sample_250m_small"        # 6 samples at 250 m
#   pytest benchmarks/test_sweep.py -s -k "sample_250m_100"          # the 100-sample sweep

NATIONAL_SAMPLE = ROOT / "scenarios" / "national-sample.toml"


def _sample(resolution, n):
    s = load_scenario(NATIONAL_SAMPLE)
    s.resolution = resolution
    s.variants = s.variants[:n]  # the first n samples: the same draws as in a longer sweep
    return s


def _recount(scenario, out):
    """Seconds to count every variant again from its folder and to write the maps: what the
    sweep adds to its variants, measured apart from them."""
    from engine.config import load_config
    from engine.sweep import done_record, variant_key
    from engine.sweep.robustness import write_robustness
    from engine.sweep.tally import CHECKPOINT, province_grid, tally_sweep, uses_of

    (out / CHECKPOINT).unlink()
    records = {v.id: done_record(out / v.id, variant_key(scenario, v)) for v in scenario.variants}
    province, names = province_grid(scenario)
    uses = uses_of(load_config(scenario.base))
    t = time.perf_counter()
    tally = tally_sweep(scenario, out, records, uses, province)
    counting = time.perf_counter() - t
    t = time.perf_counter()
    write_robustness(tally, scenario, out, names)
    return counting, time.perf_counter() - t


def _overhead(benchmark, tmp_path, resolution, n):
    _built(resolution)
    s = _sample(resolution, n)
    out = tmp_path / "out"
    figures = {}

    def job():
        figures["sweep"] = _timed_sweep(s, out, 2)
        figures["count"], figures["write"] = _recount(s, out)

    benchmark.pedantic(job, rounds=1, iterations=1, warmup_rounds=0)
    share = (figures["count"] + figures["write"]) / figures["sweep"]
    benchmark.extra_info.update(
        {
            "variants": n,
            "resolution": resolution,
            "sweep_s": round(figures["sweep"], 2),
            "count_ms_per_variant": round(1000 * figures["count"] / n, 1),
            "write_s": round(figures["write"], 2),
            "overhead_share": round(share, 4),
        }
    )
    print(
        f"\n{n} samples at {resolution:g} m, 2 workers: sweep {figures['sweep']:.1f} s; counting "
        f"{1000 * figures['count'] / n:.0f} ms per variant, maps {figures['write']:.2f} s: "
        f"{100 * share:.1f}% of the sweep"
    )


def test_robustness_overhead_1000m(benchmark, tmp_path):
    _overhead(benchmark, tmp_path, 1000, 12)


def test_national_sample_250m_small(benchmark, tmp_path):
    """6 samples at 250 m with the maps: the overhead where the issue's goal is stated."""
    _overhead(benchmark, tmp_path, 250, 6)


def test_national_sample_250m_100(benchmark, tmp_path):
    """The 100-sample Monte Carlo sweep at 250 m on 2 workers, with its maps and page."""
    from engine.sweep import write_report

    _overhead(benchmark, tmp_path, 250, 100)
    t = time.perf_counter()
    write_report(tmp_path / "out")
    print(f"page: {time.perf_counter() - t:.1f} s")


MEMORY_SCRIPT = """
import json, resource, sys, time
from pathlib import Path
from engine.config import load_config
from engine.sweep import load_scenario
from engine.sweep.robustness import write_robustness
from engine.sweep.tally import province_grid, tally_sweep, uses_of

scenario_path, out, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
s = load_scenario(scenario_path)
s.resolution = 1000
s.variants = s.variants[:n]
records = json.loads((out / "records.json").read_text())
province, names = province_grid(s)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
tally = tally_sweep(s, out, records, uses_of(load_config(s.base)), province)
write_robustness(tally, s, out, names)
print(json.dumps({"n": tally.n, "seconds": time.perf_counter() - t, "rss_before_mb": before / 1024,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def test_robustness_memory_flat_1000m(benchmark, tmp_path):
    """Peak RSS of counting 100 and 1,000 variants at 1000 m and writing the maps, each in a
    fresh process. The variants are replayed: 8 real ones are solved, and the folders of the
    1,000 link to them in turn (solving 1,000 would take the machine half an hour and measure
    the solver, not the counts)."""
    import json
    import subprocess
    import sys

    from engine.sweep import variant_key

    _built(1000)
    real = _sample(1000, 8)
    solved = tmp_path / "solved"
    _timed_sweep(real, solved, 2)
    results = {}

    def job():
        for n in (100, 1000):
            s = _sample(1000, 1000)
            s.variants = s.variants[:n]
            out = tmp_path / f"replay-{n}"
            out.mkdir()
            records = {}
            for i, v in enumerate(s.variants):
                source = solved / real.variants[i % 8].id
                (out / v.id).symlink_to(source, target_is_directory=True)
                rec = json.loads(source.with_name(source.name + ".variant.json").read_text())
                records[v.id] = {**rec, "id": v.id, "key": variant_key(s, v)}
            (out / "records.json").write_text(json.dumps(records))
            run = subprocess.run(
                [sys.executable, "-c", MEMORY_SCRIPT, str(NATIONAL_SAMPLE), str(out), str(n)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[n] = json.loads(run.stdout.strip().splitlines()[-1])

    benchmark.pedantic(job, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update({str(n): r for n, r in results.items()})
    for n, r in results.items():
        print(
            f"\n{n} variants at 1000 m: counted and mapped in {r['seconds']:.1f} s, peak RSS "
            f"{r['peak_rss_mb']:.0f} MB (after imports and grid: {r['rss_before_mb']:.0f} MB)"
        )
