"""The first run on a machine against the next (issue 15): a fresh interpreter on an empty
package cache (``RUIMTEPUZZEL_CACHE``, ``NUMBA_CACHE_DIR`` unset), then another on the cache
the first one filled.

    pytest benchmarks/test_startup.py -s --benchmark-only    # the national 250 m job too
    pytest benchmarks/ --benchmark-disable -k "not national"  # CI smoke: ruimtepuzzel setup

The benchmark times the first interpreter; the wall and CPU seconds of both (the child's own
CPU, user + system) land in ``extra_info`` and are printed. The figures of benchmarks/README.md
("Issue 15: the first run") are the national job measured the same way from a wheel
installed in a fresh venv.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _interpreter(args: list[str], cache: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``python args`` on the package cache ``cache``."""
    env = {**os.environ, "RUIMTEPUZZEL_CACHE": str(cache)}
    env.pop("NUMBA_CACHE_DIR", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    clock = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - clock
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _first_and_next(benchmark, args: list[str], cache: Path, label: str) -> None:
    figures = {}

    def first():
        figures["first"] = _interpreter(args, cache)

    benchmark.pedantic(first, rounds=1, iterations=1, warmup_rounds=0)
    figures["next"] = _interpreter(args, cache)
    for run, (wall, cpu) in figures.items():
        benchmark.extra_info[f"{run}_wall_s"] = round(wall, 2)
        benchmark.extra_info[f"{run}_cpu_s"] = round(cpu, 2)
    print(
        f"\n{label}: "
        + ", ".join(f"{r} {w:.1f} s wall, {c:.1f} s CPU" for r, (w, c) in figures.items())
    )


def test_setup_first_and_next(benchmark, tmp_path):
    """Compiling every kernel a run calls, then loading them."""
    _first_and_next(benchmark, ["-m", "engine.cli", "setup", "--quiet"], tmp_path, "setup")


def test_national_250m_first_and_next_run(benchmark, tmp_path):
    """The job a new user runs first: grid built and kernels compiled on the way."""
    args = ["-m", "engine.cli", "run", "national", "--resolution", "250", "--analysis", "off"]
    args += ["--quiet", "--out", str(tmp_path / "out")]
    _first_and_next(benchmark, args, tmp_path / "cache", "national 250 m")
