"""Issue 15: the compile stage alone (config + grid -> Problem), wall and CPU, per step.

    pytest benchmarks/test_compile.py                   # national 1000 m, 250 m and 100 m
    pytest benchmarks/test_compile.py -k 1000 --benchmark-disable   # smoke run

The grid is opened (and built into the cache once) before timing. The steps are those of
report.json's ``timings.compile_detail``: ``cells`` (the land in scope and the layers read),
``suitability``, ``rules`` and ``problem``. The CPU time over the wall time says how many of
the cores the compile used; the load average beside it says how much of them it had.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from engine.compile import compile_problem
from engine.config import load_config
from engine.grid import open_grid

NATIONAL = Path(__file__).resolve().parents[1] / "configs" / "national.toml"


@pytest.mark.parametrize("resolution", [1000, 250, 100])
def test_compile_national(benchmark, resolution):
    config = load_config(NATIONAL)
    ds = open_grid("nl", resolution=resolution)
    result = {}

    def job():
        cpu = time.process_time()  # every thread of this process
        result["compiled"] = compile_problem(config, ds)
        result["cpu"] = time.process_time() - cpu

    benchmark.pedantic(job, rounds=1, iterations=1, warmup_rounds=1)
    compiled = result["compiled"]
    benchmark.extra_info.update(
        {
            "cells": compiled.cells.n,
            "cpu": round(result["cpu"], 3),
            "load": round(os.getloadavg()[0], 2),
            **{k: round(v, 3) for k, v in compiled.timings.items()},
        }
    )
    print(f"\n{resolution} m: {benchmark.extra_info}")
