"""Issue 15: the national run with the price stage over chunks, in one process and on a
2-process Dask LocalCluster, beside the in-memory path.

    pytest benchmarks/test_chunked.py -s -k "250"     # 250 m, the three ways (a minute)
    pytest benchmarks/test_chunked.py -s -k "100"     # 100 m, the three ways (~15 min loaded)

Each run is ``python -m engine.cli run configs/national.toml --analysis off`` in a fresh
process (``--memory 8GB`` for the chunked one, ``--memory 8GB --scheduler local`` for the
cluster), so its peak resident memory is its own: the largest of the process and the
processes it started (the cluster's workers), as ``wait4`` reports it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MODES = {
    "memory": [],
    "chunked": ["--memory", "8GB"],
    "cluster": ["--memory", "8GB", "--scheduler", "local"],
}


def national_run(resolution: int, flags: list[str], out: Path, analysis: str = "off") -> dict:
    """One run in a fresh process: report.json's figures, wall and CPU seconds, peak RSS."""
    command = [sys.executable, "-m", "engine.cli", "run", str(ROOT / "configs" / "national.toml")]
    command += ["--resolution", str(resolution), "--analysis", analysis, "--quiet"]
    start = time.perf_counter()
    child = subprocess.Popen([*command, *flags, "--out", str(out)], cwd=ROOT)
    # wait4's usage is the child's and that of the processes it waited for (the cluster's
    # workers): its maxrss the largest of them, this run's alone.
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    assert os.waitstatus_to_exitcode(status) == 0
    report = json.loads((out / "report.json").read_text())
    return {
        "objective": report["objective"],
        "gap": report["gap"],
        "status": report["status"],
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_gb": round(usage.ru_maxrss / 1e6, 2),  # KB
        "stages": {k: v for k, v in report["timings"].items() if isinstance(v, (int, float))},
    }


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("resolution", [250, 100])
def test_national_price_stage(benchmark, tmp_path, resolution, mode):
    result = {}

    def run():
        result.update(national_run(resolution, MODES[mode], tmp_path / "run"))

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(result)
    print(f"\nnational {resolution} m, {mode}: {result}")
    assert result["status"] == "optimal"
    assert result["gap"] <= 1e-9


@pytest.mark.parametrize("resolution", [250, 100])
def test_one_national_smoothed_pass(benchmark, resolution):
    """One evaluation of the smoothed dual over all cells: the kernel in memory, four chunks
    here, and four chunks on a 2-process LocalCluster (timed), with the same bits."""
    import numpy as np
    from dask.distributed import Client, LocalCluster

    from engine.run import prepare
    from engine.solve import kernels
    from engine.solve.chunked import cell_chunks
    from engine.solve.dual import dual_structure

    problem = prepare(ROOT / "configs" / "national.toml", resolution=resolution)[0].problem
    structure = dual_structure(problem)
    prices = np.random.default_rng(0).normal(size=structure.n_rows) * 0.01
    adj = structure.adjustment(structure.project(prices))
    tau, n_groups = 1e-3, structure.n_groups
    arrays = (problem.value, structure.allowed, structure.has_allowed, structure.group)

    def in_memory():
        return kernels.smoothed_dual_terms(*arrays, structure.area, adj, tau, n_groups)

    size = -(-problem.n_cells // 4)
    here = cell_chunks(problem, structure, size)
    info = {}
    for name, evaluate in (
        ("memory", in_memory),
        ("chunks_here", lambda: here.smoothed_terms(adj, tau, n_groups)),
    ):
        start = time.perf_counter()
        for _ in range(10):
            f, _ = evaluate()
        info[f"{name}_ms"] = round((time.perf_counter() - start) * 100, 1)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        start = time.perf_counter()
        there = cell_chunks(problem, structure, size, client)
        info["scatter_s"] = round(time.perf_counter() - start, 2)
        result = benchmark.pedantic(
            lambda: there.smoothed_terms(adj, tau, n_groups), rounds=10, iterations=1
        )
    info["cluster_ms"] = round(benchmark.stats.stats.median * 1000, 1)
    benchmark.extra_info.update(info)
    print(f"\none smoothed pass at {resolution} m: {info}")
    assert result[0] == f
