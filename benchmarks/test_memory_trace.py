"""Issue 15 part 1: where a national run's memory goes, stage by stage, in bytes per cell.

    pytest benchmarks/test_memory_trace.py -s -k 250      # a minute
    pytest benchmarks/test_memory_trace.py -s -k 100      # a few minutes
    python benchmarks/test_memory_trace.py 100 [--memory 8GB] [--compaction-off]   # the table

Each trace is ``engine.run.run(configs/national.toml, analysis="off")`` in a fresh process,
with the run's stages and the compile's and the solver's steps labelled as they start (the
functions wrapped, nothing else changed). A thread samples the resident memory every 10 ms
and charges it to the label running then; tracemalloc gives the largest live numpy and
Python allocation of each label (numpy reports its buffers to it). Per label: the peak RSS,
the RSS it left, and tracemalloc's peak, each also in bytes per cell of the problem. The
25 m peak is about the per-cell part at 100 m times 16 plus the libraries (the RSS before
the grid is read).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class Tracer:
    """The label running now, and per label the largest RSS and traced bytes seen."""

    def __init__(self):
        import psutil

        self._process = psutil.Process()
        self.label = "start"
        self.order: list[str] = []
        self.peak_rss: dict[str, int] = {}
        self.end_rss: dict[str, int] = {}
        self.peak_traced: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self._charge()

    def _charge(self) -> None:
        rss = self._process.memory_info().rss
        label = self.label
        self.peak_rss[label] = max(self.peak_rss.get(label, 0), rss)

    def switch(self, label: str) -> None:
        """Close the running label (its tracemalloc peak, its RSS now), open ``label``."""
        self._charge()
        _, peak = tracemalloc.get_traced_memory()
        old = self.label
        self.peak_traced[old] = max(self.peak_traced.get(old, 0), peak)
        self.end_rss[old] = self._process.memory_info().rss
        tracemalloc.reset_peak()
        if label not in self.order:
            self.order.append(label)
        self.label = label

    def wrap(self, owner, name: str, label: str) -> None:
        """Run ``owner.name`` under ``label``, and give the caller's label back after it."""
        function = getattr(owner, name)
        tracer = self

        def labelled(*args, **kwargs):
            outer = tracer.label
            tracer.switch(label)
            try:
                return function(*args, **kwargs)
            finally:
                tracer.switch(outer)

        setattr(owner, name, labelled)

    def __enter__(self):
        tracemalloc.start()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.switch("end")
        self._stop.set()
        self._thread.join()
        tracemalloc.stop()


def _label_steps(tracer: Tracer) -> None:
    import importlib

    import engine.compactness
    import engine.compile
    import engine.progress
    import engine.report
    import engine.run
    from engine.rules import Cells

    # engine.solve is also the name of the solve function: the module by its full name.
    fast = importlib.import_module("engine.solve.fast")

    start = engine.progress.Stages.start

    def stage_start(self, name):
        tracer.switch(name)
        start(self, name)

    engine.progress.Stages.start = stage_start
    tracer.wrap(Cells, "preload", "compile: layers")
    for name, label in [
        ("option_values", "compile: suitability"),
        ("apply_rules", "compile: rules"),
        ("Problem", "compile: problem"),
    ]:
        tracer.wrap(engine.compile, name, label)
    tracer.wrap(engine.run, "refusal", "compile: refusal")
    for name, label in [
        ("dual_structure", "solve: setup"),
        ("smoothed_prices", "solve: smoothed"),
        ("aggregated_lp", "solve: aggregated LP"),
        ("near_ties", "solve: ties"),
        ("repair", "solve: repair"),
        ("restricted_lp", "solve: repair LP"),
        ("improving_options", "solve: pricing"),
        ("_allocation_matrix", "solve: allocation"),
        ("build_solution", "solve: certificate"),
    ]:
        tracer.wrap(fast, name, label)
    for owner, name, label in [
        (engine.report, "zone_totals", "write: zone totals"),
        (engine.report, "plausibility", "write: plausibility"),
        (engine.report, "compactness_section", "write: compactness"),
        (engine.compactness, "fragmentation", "write: fragmentation"),
        (engine.report, "build_manifest", "write: manifest"),
        (engine.report, "write_allocation_tif", "write: allocation.tif"),
    ]:
        tracer.wrap(owner, name, label)


def compaction_off(config_path) -> dict:
    """Overrides that disable every compactness rule of a config: the run the 25 m figures
    are of."""
    from engine.config import load_config

    # An entry may name a claim for all its options: the entries, as the TOML has them.
    entries = {spec.entry for spec in load_config(config_path).compactness.values()}
    return {f"compactness.{entry}.enabled": False for entry in sorted(entries)}


def trace(resolution: int, memory: str | None = None, compaction: bool = True) -> dict:
    """Run the national config at ``resolution`` under the tracer; the figures per label."""
    from engine.run import run

    with tempfile.TemporaryDirectory() as tmp, Tracer() as tracer:
        _label_steps(tracer)
        base = tracer._process.memory_info().rss
        report = run(
            ROOT / "configs" / "national.toml",
            Path(tmp) / "run",
            resolution=resolution,
            analysis="off",
            progress=False,
            memory=memory,
            overrides=None if compaction else compaction_off(ROOT / "configs" / "national.toml"),
        )
    return {
        "resolution": resolution,
        "memory": memory,
        "compaction": compaction,
        "objective": report["objective"],
        "gap": report["gap"],
        "cells": report["cells"],
        "rss_before_gb": round(base / 1e9, 3),
        "labels": [
            {
                "label": label,
                "peak_rss": tracer.peak_rss.get(label, 0),
                "end_rss": tracer.end_rss.get(label, 0),
                "peak_traced": tracer.peak_traced.get(label, 0),
            }
            for label in tracer.order
        ],
    }


def table(result: dict, cells: int) -> str:
    """The trace as a Markdown table, GB and bytes per cell."""
    lines = [
        f"national {result['resolution']} m, memory {result['memory']}, "
        f"compaction {'on' if result.get('compaction', True) else 'off'}: {cells:,} cells, "
        f"objective {result['objective']!r}, gap {result['gap']:.1e}, "
        f"RSS before the run {result['rss_before_gb']} GB",
        "",
        "| step | peak RSS | B/cell | RSS after | B/cell | traced peak | B/cell |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["labels"]:
        figures = []
        for key in ("peak_rss", "end_rss", "peak_traced"):
            figures += [f"{row[key] / 1e9:.2f} GB", f"{row[key] / cells:.0f}"]
        lines.append(f"| {row['label']} | " + " | ".join(figures) + " |")
    return "\n".join(lines)


def traced_run(resolution: int, memory: str | None = None) -> dict:
    """``trace`` in a fresh process (this file as a script), so that the peaks are its own."""
    command = [sys.executable, __file__, str(resolution), "--json"]
    if memory:
        command += ["--memory", memory]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("memory", [None, "8GB"])
@pytest.mark.parametrize("resolution", [250, 100])
def test_national_memory_trace(benchmark, resolution, memory):
    result = {}

    def run():
        result.update(traced_run(resolution, memory))

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(result)
    print("\n" + table(result, result["cells"]))
    assert result["gap"] <= 1e-9


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("resolution", type=int)
    parser.add_argument("--memory")
    parser.add_argument(
        "--compaction-off", action="store_true", help="every compactness rule disabled"
    )
    parser.add_argument("--json", action="store_true", help="one JSON line, for the benchmark")
    args = parser.parse_args(argv)
    start = time.process_time()
    result = trace(args.resolution, args.memory, compaction=not args.compaction_off)
    result["cpu_s"] = round(time.process_time() - start, 1)
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result, result["cells"]), f"\n\nCPU {result['cpu_s']} s")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(sys.argv[1:])
