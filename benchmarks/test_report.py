"""Rendering report.html of a finished run: reading its rasters, drawing the maps, the
templates (issue 14: <= 3 s at 250 m; the page <= 5 MB).

    pytest benchmarks/test_report.py -k national --benchmark-only -s   # national 250 m
    pytest benchmarks/ --benchmark-disable -k "not national"           # CI smoke run

Each test makes its run folder once (untimed: a whole run with ``--analysis quick``, so the
conflict, scarcity and regret maps are there), then times ``render_report`` on it. The first
round is a warm-up: it pays for importing matplotlib and reading the province outlines. The
page's weight lands in the benchmark's extra_info and is printed.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.html import render_report
from engine.run import run

ROOT = Path(__file__).resolve().parents[1]
NATIONAL = ROOT / "configs" / "national.toml"
UTRECHT = ROOT / "configs" / "provinces" / "utrecht.toml"


def _render(benchmark, config, resolution, out):
    run(config, out, grid="nl", resolution=resolution, progress=False, analysis="quick")
    report = json.loads((out / "report.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    page = benchmark.pedantic(
        render_report, args=(report, manifest, out), rounds=3, iterations=1, warmup_rounds=1
    )
    megabytes = len(page.encode()) / 1e6
    benchmark.extra_info.update({"cells": report["cells"], "page_mb": round(megabytes, 2)})
    print(f"\n{config.stem} {resolution:g} m: {report['cells']:,} cells, page {megabytes:.2f} MB")
    assert "<img" in page


def test_report_province_1000m(benchmark, tmp_path):
    _render(benchmark, UTRECHT, 1000, tmp_path / "run")


def test_report_national_250m(benchmark, tmp_path):
    _render(benchmark, NATIONAL, 250, tmp_path / "run")
